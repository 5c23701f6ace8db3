-- Resolve an event's identifiers to one person, atomically.
-- KEYS: identity graph keys of the event's identifiers.
-- ARGV: graph prefix, candidate person id, event id, event time, then one token per key.
-- Returns {person, absorbed...}: the person the identifiers now belong to, and the persons
-- merged into it by this event. The survivor of a merge is the smallest person id, so the
-- outcome does not depend on the order in which events arrive.
local gp, candidate, event_id, at = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local current = {}
local found, persons = {}, {}
for i = 1, #KEYS do
  local p = redis.call('GET', KEYS[i])
  current[i] = p
  if p and not found[p] then
    found[p] = true
    persons[#persons + 1] = p
  end
end
local survivor = candidate
if #persons > 0 then
  table.sort(persons)
  survivor = persons[1]
end
local sset = gp .. ':s:' .. survivor
local absorbed = {}
for j = 2, #persons do
  local b = persons[j]
  local via = {}
  for i = 1, #KEYS do
    if current[i] == b then via[#via + 1] = ARGV[4 + i] end
  end
  local bset = gp .. ':s:' .. b
  local members = redis.call('SMEMBERS', bset)
  for _, m in ipairs(members) do
    redis.call('SET', gp .. ':i:' .. m, survivor)
    redis.call('SADD', sset, m)
  end
  redis.call('DEL', bset)
  local blog = gp .. ':x:' .. b
  for _, entry in ipairs(redis.call('LRANGE', blog, 0, -1)) do
    redis.call('RPUSH', gp .. ':x:' .. survivor, entry)
  end
  redis.call('DEL', blog)
  redis.call('RPUSH', gp .. ':x:' .. survivor,
    cjson.encode({event = event_id, at = at, absorbed = b, into = survivor, via = via}))
  absorbed[#absorbed + 1] = b
end
for i = 1, #KEYS do
  if current[i] ~= survivor then
    redis.call('SET', KEYS[i], survivor)
    redis.call('SADD', sset, ARGV[4 + i])
  end
end
local out = {survivor}
for _, b in ipairs(absorbed) do out[#out + 1] = b end
return out
