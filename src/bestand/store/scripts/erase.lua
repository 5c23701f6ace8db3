-- Remove persons from the identity graph: every identifier, its meetings, the identifier set,
-- the version, the explain log and the redirects of the persons it absorbed.
-- KEYS: identity graph keys of the identifiers named in an erasure request.
-- ARGV: graph prefix.
-- Returns {{person, token...}, ...}: each erased person with the identifiers it had.
local gp = ARGV[1]
local seen, out = {}, {}
for i = 1, #KEYS do
  local p = redis.call('GET', KEYS[i])
  if p and not seen[p] then
    seen[p] = true
    local set = gp .. ':s:' .. p
    local members = redis.call('SMEMBERS', set)
    for _, m in ipairs(members) do
      redis.call('DEL', gp .. ':i:' .. m, gp .. ':m:' .. m)
    end
    for _, gone in ipairs(redis.call('SMEMBERS', gp .. ':a:' .. p)) do
      redis.call('DEL', gp .. ':r:' .. gone)
    end
    redis.call('DEL', set, gp .. ':x:' .. p, gp .. ':v:' .. p, gp .. ':a:' .. p)
    local entry = {p}
    for _, m in ipairs(members) do entry[#entry + 1] = m end
    out[#out + 1] = entry
  end
end
return out
