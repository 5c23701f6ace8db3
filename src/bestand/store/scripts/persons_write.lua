-- Write what a batch did to groups of persons, each group only if none of its persons was
-- written or merged away by someone else since it was read (compare and set on versions).
-- A group is the persons one batch's events join by merges; it is written all or nothing.
-- KEYS: the person keys and lookup buckets the groups touch.
-- ARGV: key schema (JSON, Keys.person_schema), dedupe TTL in seconds, the number of groups G,
--   then one group (JSON) each, then the new states and lookup records the groups name by
--   their ARGV index (KEYS also name the graph buckets of the cookies and device ids):
--   guard    [[person, version read]..]: each must still have that version and no redirect
--            (a person's state is its field of a person bucket, keys.py)
--   write    [[person, version, index of its state in ARGV]..]: new states
--   absorbed [[person, survivor]..]: merged away: a redirect, no state
--   markers  [[dedupe key, marker]..]: the events applied (content digest and changes)
--   lookups  [[version, checked, index of its record in ARGV, [token..]]..]: the records of
--            tokens, fields of their lookup buckets (keys.py; LookupSummary.packed: fields
--            separated by \30, the person id first, the
--            version second); a checked one is not written where a record of that or a newer
--            version is (the records of a person that passed its guard are newer than any
--            there); a cookie's or device id's (kind letter in K.movable) only where the
--            identity graph gives it to the record's person (it may have moved on since)
--   unlink   [token..]: lookup records of identifiers that name nobody now (junk)
-- Returns one 1 (written) or 0 (a guard failed: read and apply that group again) per group.
local K = cjson.decode(ARGV[1])
local ttl = tonumber(ARGV[2])
local groups = tonumber(ARGV[3])
-- A person's state is its field of the person bucket named by its id's first characters
-- (keys.py): 'v' .. version .. ':' .. state, or 'r' .. the person it went into after a merge.
local function person_key(id) return K.person .. string.sub(id, 1, tonumber(K.bucket_chars)) .. K.person_end end
local function movable(token) return string.find(K.movable, string.sub(token, 1, 1), 1, true) end
-- An identifier's graph entry: a field of the bucket named by its hash's first characters.
local B = tonumber(K.bucket_chars)
local function bucket_of(token) return K.identifier .. string.sub(token, 3, 2 + B) end
local function field_of(token) return string.sub(token, 1, 2) .. string.sub(token, 3 + B) end
-- The version a lookup record holds (its second field), -1 when there is none.
local function written_version(key, field)
  local record = redis.call('HGET', key, field)
  if not record then return -1 end
  return tonumber(string.match(record, '^[^\30]*\30([^\30]*)')) or -1
end
local out = {}
for g = 4, 3 + groups do
  local group = cjson.decode(ARGV[g])
  local holds = true
  for _, pair in ipairs(group.guard) do
    local value = redis.call('HGET', person_key(pair[1]), pair[1]) or 'v0:'
    local version = string.sub(value, 1, 1) == 'v' and tonumber(string.match(value, '^v(%d+):'))
    if version ~= tonumber(pair[2]) then
      holds = false
      break
    end
  end
  if holds then
    for _, row in ipairs(group.write) do
      redis.call('HSET', person_key(row[1]), row[1], 'v' .. row[2] .. ':' .. ARGV[row[3]])
    end
    for _, pair in ipairs(group.absorbed) do
      redis.call('HSET', person_key(pair[1]), pair[1], 'r' .. pair[2])
    end
    for _, pair in ipairs(group.markers) do
      redis.call('SET', pair[1], pair[2], 'EX', ttl)
    end
    for _, record in ipairs(group.lookups) do
      local version, checked, packed = tonumber(record[1]), record[2] == 1, ARGV[record[3]]
      local holder = string.match(packed, '^[^\30]*')
      -- Every token of a record gets the same record, a field of the token's lookup bucket.
      for _, token in ipairs(record[4]) do
        local key, field = K.lookup .. string.sub(token, 3, 2 + B), field_of(token)
        local held = not movable(token) or redis.call('HGET', bucket_of(token), field) == holder
        if held and (not checked or written_version(key, field) < version) then
          redis.call('HSET', key, field, packed)
        end
      end
    end
    for _, token in ipairs(group.unlink) do
      redis.call('HDEL', K.lookup .. string.sub(token, 3, 2 + B), field_of(token))
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
