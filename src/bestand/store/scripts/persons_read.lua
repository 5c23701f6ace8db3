-- Read persons' states and whether events were applied to them, for the reducer.
-- KEYS: the n persons' buckets, then dedupe keys (an event's marker on a person).
-- ARGV: n, then the version of each person the caller holds already (-1: none), then the n
--   person ids (a person's state is its field of its bucket, keys.py: 'v' .. version .. ':'
--   .. state, or 'r' .. the person it went into).
-- Returns {persons, markers}: persons[i] = {redirect or '', version, state or '', known}
-- (a person merged away has a redirect to the person it went into, and no state; known is 1
-- and the state left out when the caller holds that version already); markers[j] = the dedupe
-- marker (content digest and changes) when the event was applied, else ''.
local n = tonumber(ARGV[1])
local persons, markers = {}, {}
for i = 1, n do
  local value = redis.call('HGET', KEYS[i], ARGV[1 + n + i])
  if value and string.sub(value, 1, 1) == 'r' then
    persons[i] = {string.sub(value, 2), 0, '', 0}
  else
    local version, state = 0, ''
    if value then
      local colon = string.find(value, ':', 2, true)
      version = tonumber(string.sub(value, 2, colon - 1))
      state = string.sub(value, colon + 1)
    end
    if version > 0 and version == tonumber(ARGV[1 + i]) then
      persons[i] = {'', version, '', 1}
    else
      persons[i] = {'', version, state, 0}
    end
  end
end
-- Markers exist only for events applied before (a redelivery): a run of 64 dedupe keys is
-- fetched only when EXISTS finds one of them (every value an MGET hands to Lua becomes a
-- Lua value, an allocation each; EXISTS answers one count).
for first = n + 1, #KEYS, 64 do
  local last = math.min(first + 63, #KEYS)
  if redis.call('EXISTS', unpack(KEYS, first, last)) > 0 then
    for _, marker in ipairs(redis.call('MGET', unpack(KEYS, first, last))) do
      markers[#markers + 1] = marker or ''
    end
  else
    for _ = first, last do markers[#markers + 1] = '' end
  end
end
return {persons, markers}
