-- Remove persons from the identity graph: every identifier, its meetings and claims, the
-- identifier set, its facts (version, counts), the explain log, the receipts of its logged
-- events, its place in the claims of cookies it held before, and the redirects of the persons
-- it absorbed.
-- Every identifier named or erased gets a tombstone (its erasure time, the later one kept), so
-- a replay of events from before the erasure cannot bring the person back.
-- KEYS: identity graph keys of the identifiers named in an erasure request.
-- ARGV: key schema (JSON, Keys.graph_schema), erasure time (epoch seconds).
-- Returns {{person, token...}, ...}: each erased person with the identifiers it had.
local K = cjson.decode(ARGV[1])
local at = tonumber(ARGV[2])
local seen, out = {}, {}
local function tombstone(token)
  local key = K.tombstone .. token
  local before = tonumber(redis.call('GET', key) or '0')
  if at > before then redis.call('SET', key, at) end
end
local prefix = K.identifier
for i = 1, #KEYS do
  tombstone(string.sub(KEYS[i], #prefix + 1))
end
for i = 1, #KEYS do
  local p = redis.call('GET', KEYS[i])
  if p and not seen[p] then
    seen[p] = true
    local set = K.identifiers .. p
    local members = redis.call('HKEYS', set)
    for _, m in ipairs(members) do
      redis.call('DEL', K.identifier .. m, K.met .. m, K.claims .. m)
      tombstone(m)
    end
    for _, gone in ipairs(redis.call('HKEYS', K.absorbed .. p)) do
      redis.call('DEL', K.redirect .. gone)
    end
    -- Receipts of the events in its explain log (merges, junk flags) name it too, and so do
    -- the claims lists of the cookies it held before they moved on.
    local events = {}
    for _, entry in ipairs(redis.call('LRANGE', K.log .. p, 0, -1)) do
      local decoded = cjson.decode(entry)
      if decoded.k == 'move' then
        for _, token in ipairs(decoded.t) do
          local claims = K.claims .. token
          for _, held in ipairs(redis.call('LRANGE', claims, 0, -1)) do
            if string.match(held, ':(.*)$') == p then redis.call('LREM', claims, 0, held) end
          end
        end
      end
      local e = decoded.e
      if e and not events[e] then
        events[e] = true
        if #e > 64 then e = redis.sha1hex(e) end
        redis.call('DEL', K.receipt .. e)
      end
    end
    redis.call('DEL', set, K.log .. p, K.facts .. p, K.absorbed .. p)
    local entry = {p}
    for _, m in ipairs(members) do entry[#entry + 1] = m end
    out[#out + 1] = entry
  end
end
return out
