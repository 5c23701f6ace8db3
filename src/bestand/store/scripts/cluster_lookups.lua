-- Lookup records on a Redis Cluster, written after their person's compare-and-set, one call
-- per master. A record is written where no record of its person of that or a newer version
-- is (the version check persons_write.lua makes for records written again); a cookie's or
-- device id's only where the batch's graph read found it with the record's person (the
-- caller leaves the others out: the graph lives on another master).
-- Run as store/router.py's cross_slot makes it (the keys handed over as arguments).
-- KEYS: the lookup buckets the records touch (all on this master).
-- ARGV: key schema (JSON, Keys.person_schema), then JSON {lookups: [[version, index of its
--   record in ARGV, [token..]]..], unlink: [token..]}, then the records (LookupSummary.packed:
--   the person id first, the version second, separated by \30).
-- Returns how many records were written.
local K = cjson.decode(ARGV[1])
local work = cjson.decode(ARGV[2])
local B = tonumber(K.bucket_chars)
local function key_of(token) return K.lookup .. string.sub(token, 3, 2 + B) end
local function field_of(token) return string.sub(token, 1, 2) .. string.sub(token, 3 + B) end
local written = 0
for _, record in ipairs(work.lookups) do
  local version, packed = tonumber(record[1]), ARGV[record[2]]
  local holder = string.match(packed, '^[^\30]*')
  for _, token in ipairs(record[3]) do
    local key, field = key_of(token), field_of(token)
    local held = redis.call('HGET', key, field)
    local newer = held and string.match(held, '^[^\30]*') == holder
      and (tonumber(string.match(held, '^[^\30]*\30([^\30]*)')) or -1) >= version
    if not newer then
      redis.call('HSET', key, field, packed)
      written = written + 1
    end
  end
end
for _, token in ipairs(work.unlink) do
  redis.call('HDEL', key_of(token), field_of(token))
end
return written
