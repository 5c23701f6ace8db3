-- Read persons' states and whether events were applied to them, for the reducer.
-- KEYS: n person keys, then dedupe keys (an event's marker on a person).
-- ARGV: n, then the version of each person the caller holds already (-1: none).
-- Returns {persons, markers}: persons[i] = {redirect or '', version, state or '', known}
-- (a person merged away has a redirect to the person it went into, and no state; known is 1
-- and the state left out when the caller holds that version already); markers[j] = the dedupe
-- marker (content digest and changes) when the event was applied, else ''.
local n = tonumber(ARGV[1])
local persons, markers = {}, {}
for i = 1, n do
  local fields = redis.call('HMGET', KEYS[i], 'r', 'v', 's')
  local version = tonumber(fields[2] or '0')
  if not fields[1] and version > 0 and version == tonumber(ARGV[1 + i]) then
    persons[i] = {'', version, '', 1}
  else
    persons[i] = {fields[1] or '', version, fields[3] or '', 0}
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
