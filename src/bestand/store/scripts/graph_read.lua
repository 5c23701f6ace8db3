-- Read what the identity graph holds about an event's identifiers, for the pure rules.
-- KEYS: identity graph keys of the identifiers. ARGV: graph prefix, then one token per key.
-- Returns {tokens, persons}: tokens[i] = {owner or '', junk reason or '', {persons met...}};
-- persons = {{person, version, 'kind count kind count ...'}, ...} for every owner seen.
local gp = ARGV[1]
local tokens, persons, seen = {}, {}, {}
for i = 1, #KEYS do
  local token = ARGV[1 + i]
  local owner = redis.call('GET', KEYS[i]) or ''
  local junk = redis.call('GET', gp .. ':j:' .. token) or ''
  tokens[i] = {owner, junk, redis.call('SMEMBERS', gp .. ':m:' .. token)}
  if owner ~= '' and not seen[owner] then
    seen[owner] = true
    local counts = {}
    for _, member in ipairs(redis.call('SMEMBERS', gp .. ':s:' .. owner)) do
      local kind = string.sub(member, 1, 1)
      counts[kind] = (counts[kind] or 0) + 1
    end
    local flat = {}
    for kind, n in pairs(counts) do
      flat[#flat + 1] = kind
      flat[#flat + 1] = tostring(n)
    end
    persons[#persons + 1] = {owner, redis.call('GET', gp .. ':v:' .. owner) or '0',
                             table.concat(flat, ' ')}
  end
end
return {tokens, persons}
