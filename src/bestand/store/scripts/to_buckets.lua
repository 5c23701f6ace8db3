-- Move keys that layouts 3 to 5 kept one per identifier or person into the buckets this
-- layout keeps them in (keys.py), once, when a worker of this release first starts on such a
-- store: graph entries, lookup records and meetings (named by an identifier), redirects,
-- absorbed persons and graph facts (named by a person). A string's value becomes the field's value, a
-- hash's fields (a set) its members joined by ','. A key moved already (another worker got to
-- it first) is skipped, so workers that start together do no harm.
-- Person states (a hash of v, s or r each) become 'v' .. v .. ':' .. s, or 'r' .. r; a
-- person's facts (a hash) 'name' .. '\31' .. value joined by '\30', its version first and
-- the others in their order.
-- KEYS: such keys, all under one prefix. ARGV: that prefix (which names the buckets too), the
--   characters that name a bucket, 'token', 'person', 'facts' or 'state' (what follows the
--   prefix; 'facts' a person too), and
--   for 'state' what ends a person bucket's name (the hash tag's '}').
-- Returns how many this call moved.
local prefix, B, named, ending = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4] or ''

local moved = 0
for _, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key).ok
  local id = string.sub(key, #prefix + 1, #key - #ending)
  local value
  if named == 'state' and kind == 'hash' then
    local f = redis.call('HMGET', key, 'r', 'v', 's')
    if f[1] then
      value = 'r' .. f[1]
    elseif f[2] then
      value = 'v' .. f[2] .. ':' .. (f[3] or '')
    end
  elseif named == 'facts' and kind == 'hash' then
    local pairs_read = redis.call('HGETALL', key)
    local version = redis.call('HGET', key, 'v')
    local entries = {version and ('v\31' .. version) or nil}
    for i = 1, #pairs_read, 2 do
      if pairs_read[i] ~= 'v' then
        entries[#entries + 1] = pairs_read[i] .. '\31' .. pairs_read[i + 1]
      end
    end
    value = table.concat(entries, '\30')
  elseif kind == 'string' then
    value = redis.call('GET', key)
  elseif kind == 'hash' then
    value = table.concat(redis.call('HKEYS', key), ',')
  end
  if value and (named == 'token' or #id > B) then
    local bucket, field
    if named == 'token' then
      bucket = prefix .. string.sub(id, 3, 2 + B)
      field = string.sub(id, 1, 2) .. string.sub(id, 3 + B)
    else
      bucket, field = prefix .. string.sub(id, 1, B) .. ending, id
    end
    redis.call('DEL', key)
    redis.call('HSET', bucket, field, value)
    moved = moved + 1
  end
end
return moved
