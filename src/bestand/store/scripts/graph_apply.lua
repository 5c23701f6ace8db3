-- Apply a decision of the identity rules, unless the graph changed since it was read.
-- KEYS: identity graph keys of the event's identifiers (all in the graph's hash slot).
-- ARGV: graph prefix, the plan as JSON:
--   owners   {token: owner read ('' for none)}, junk {token: junk reason read ('' for none)},
--   versions {person: version read}: the guard; any difference returns 0 (read and decide again)
--   person, absorbed [..], attach [..] (identifiers it now owns), describe [..] (names and
--   households: in its set, owned by nobody), met [[token, person]..], flag [[token, reason]..],
--   log [json..] (explain entries, appended to the person's log), max_log,
--   receipt (optional) {event, ttl, body}: what the event decided, kept for a redelivery
-- Returns 1 when applied.
local gp = ARGV[1]
local plan = cjson.decode(ARGV[2])
for token, expected in pairs(plan.owners) do
  if (redis.call('GET', gp .. ':i:' .. token) or '') ~= expected then return 0 end
end
for token, expected in pairs(plan.junk) do
  if (redis.call('GET', gp .. ':j:' .. token) or '') ~= expected then return 0 end
end
for person, expected in pairs(plan.versions) do
  if tonumber(redis.call('GET', gp .. ':v:' .. person) or '0') ~= tonumber(expected) then
    return 0
  end
end
local person = plan.person
local set = gp .. ':s:' .. person
local log = gp .. ':x:' .. person
for _, gone in ipairs(plan.absorbed) do
  local gone_set = gp .. ':s:' .. gone
  for _, member in ipairs(redis.call('SMEMBERS', gone_set)) do
    redis.call('SET', gp .. ':i:' .. member, person)
    redis.call('SADD', set, member)
  end
  local gone_log = gp .. ':x:' .. gone
  for _, entry in ipairs(redis.call('LRANGE', gone_log, 0, -1)) do
    redis.call('RPUSH', log, entry)
  end
  redis.call('DEL', gone_set, gone_log, gp .. ':v:' .. gone)
  -- Remember where it went (met sets still name it), and what the person absorbed, so that
  -- an erasure can remove these redirects too.
  redis.call('SET', gp .. ':r:' .. gone, person)
  redis.call('SADD', gp .. ':a:' .. person, gone)
  local gone_absorbed = gp .. ':a:' .. gone
  for _, older in ipairs(redis.call('SMEMBERS', gone_absorbed)) do
    redis.call('SET', gp .. ':r:' .. older, person)
    redis.call('SADD', gp .. ':a:' .. person, older)
  end
  redis.call('DEL', gone_absorbed)
end
for _, token in ipairs(plan.attach) do
  redis.call('SET', gp .. ':i:' .. token, person)
  redis.call('SADD', set, token)
end
for _, token in ipairs(plan.describe) do
  redis.call('SADD', set, token)
end
for _, pair in ipairs(plan.met) do
  redis.call('SADD', gp .. ':m:' .. pair[1], pair[2])
end
for _, pair in ipairs(plan.flag) do
  local token = pair[1]
  redis.call('SET', gp .. ':j:' .. token, pair[2])
  -- A junk identifier names nobody any more.
  local owner = redis.call('GET', gp .. ':i:' .. token)
  if owner then
    redis.call('SREM', gp .. ':s:' .. owner, token)
    redis.call('DEL', gp .. ':i:' .. token)
    if owner ~= person then redis.call('INCR', gp .. ':v:' .. owner) end
  end
end
-- A redelivered event decides the same again: skip entries the log already ends with.
local recent = {}
for _, entry in ipairs(redis.call('LRANGE', log, -50, -1)) do recent[entry] = true end
for _, entry in ipairs(plan.log) do
  if not recent[entry] then redis.call('RPUSH', log, entry) end
end
redis.call('LTRIM', log, -tonumber(plan.max_log), -1)
-- A merge or a junk flag happens once: if the worker dies before the resolved events reach
-- Kafka, the redelivered event finds the graph changed already and must repeat this answer.
if plan.receipt then
  redis.call('SET', gp .. ':e:' .. plan.receipt.event, plan.receipt.body, 'EX', plan.receipt.ttl)
end
redis.call('INCR', gp .. ':v:' .. person)
return 1
