-- Read persons' states and whether events were applied to them, for the reducer.
-- KEYS: n person keys, then dedupe keys (an event's marker on a person).
-- ARGV: n.
-- Returns {persons, markers}: persons[i] = {redirect or '', version, state or ''} (a person
-- merged away has a redirect to the person it went into, and no state); markers[j] = the
-- dedupe marker (content digest and changes) when the event was applied, else ''.
local n = tonumber(ARGV[1])
local persons, markers = {}, {}
for i = 1, n do
  local fields = redis.call('HMGET', KEYS[i], 'r', 'v', 's')
  persons[i] = {fields[1] or '', tonumber(fields[2] or '0'), fields[3] or ''}
end
for j = n + 1, #KEYS do
  markers[#markers + 1] = redis.call('GET', KEYS[j]) or ''
end
return {persons, markers}
