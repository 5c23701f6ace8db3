-- Read what the identity graph holds about an event's identifiers, for the pure rules.
-- KEYS: identity graph keys of the identifiers. ARGV: graph prefix, then one token per key.
-- Returns {tokens, persons}:
--   tokens[i] = {owner or '', junk reason or '', {persons met...}}, merged-away persons in the
--               met set replaced by whom they were merged into;
--   persons   = {{person, version, 'kind count kind count ...', {name tokens...}}, ...}
--               for every owner seen.
local gp = ARGV[1]

local function live(person)
  for _ = 1, 32 do
    local next_person = redis.call('GET', gp .. ':r:' .. person)
    if not next_person then return person end
    person = next_person
  end
  return person
end

local tokens, persons, seen = {}, {}, {}
for i = 1, #KEYS do
  local token = ARGV[1 + i]
  local owner = redis.call('GET', KEYS[i]) or ''
  local junk = redis.call('GET', gp .. ':j:' .. token) or ''
  local met, met_seen = {}, {}
  for _, person in ipairs(redis.call('SMEMBERS', gp .. ':m:' .. token)) do
    local now = live(person)
    if not met_seen[now] then
      met_seen[now] = true
      met[#met + 1] = now
    end
  end
  tokens[i] = {owner, junk, met}
  if owner ~= '' and not seen[owner] then
    seen[owner] = true
    local counts, names = {}, {}
    for _, member in ipairs(redis.call('SMEMBERS', gp .. ':s:' .. owner)) do
      local kind = string.sub(member, 1, 1)
      counts[kind] = (counts[kind] or 0) + 1
      if kind == 'm' then names[#names + 1] = member end
    end
    local flat = {}
    for kind, n in pairs(counts) do
      flat[#flat + 1] = kind
      flat[#flat + 1] = tostring(n)
    end
    persons[#persons + 1] = {owner, redis.call('GET', gp .. ':v:' .. owner) or '0',
                             table.concat(flat, ' '), names}
  end
end
return {tokens, persons}
