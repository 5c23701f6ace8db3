-- Read what the identity graph holds about a batch's identifiers, for the rules.
-- KEYS: identity graph keys of the identifiers (all in the graph's hash slot).
-- ARGV: key schema (JSON, Keys.graph_schema), the kind letters that only describe (names,
--   households), the number of identifiers n, then n tokens, then receipt ids of the events.
-- Returns {tokens, persons, receipts}:
--   tokens[i]   = {owner or '', junk reason or '', {persons met...}, erasure time or ''};
--                 merged-away persons in the met set are replaced by whom they went into
--   persons     = {{person, version, 'kind count kind count ...', {describing tokens...}}, ...}
--                 for every owner seen (counts of linking kinds only)
--   receipts[j] = what event j decided when it merged or flagged junk, or ''
local K = cjson.decode(ARGV[1])
local describing = ARGV[2]
local n = tonumber(ARGV[3])

local function live(person)
  for _ = 1, 32 do
    local next_person = redis.call('GET', K.redirect .. person)
    if not next_person then return person end
    person = next_person
  end
  return person
end

local tokens, persons, seen = {}, {}, {}
for i = 1, n do
  local token = ARGV[3 + i]
  local owner = redis.call('GET', KEYS[i]) or ''
  local junk = redis.call('GET', K.junk .. token) or ''
  local erased = redis.call('GET', K.tombstone .. token) or ''
  local met, met_seen = {}, {}
  for _, person in ipairs(redis.call('SMEMBERS', K.met .. token)) do
    local now = live(person)
    if not met_seen[now] then
      met_seen[now] = true
      met[#met + 1] = now
    end
  end
  tokens[i] = {owner, junk, met, erased}
  if owner ~= '' and not seen[owner] then
    seen[owner] = true
    local counts, described = {}, {}
    for _, member in ipairs(redis.call('SMEMBERS', K.identifiers .. owner)) do
      local kind = string.sub(member, 1, 1)
      if string.find(describing, kind, 1, true) then
        described[#described + 1] = member
      else
        counts[kind] = (counts[kind] or 0) + 1
      end
    end
    local flat = {}
    for kind, count in pairs(counts) do
      flat[#flat + 1] = kind
      flat[#flat + 1] = tostring(count)
    end
    persons[#persons + 1] = {owner, redis.call('GET', K.version .. owner) or '0',
                             table.concat(flat, ' '), described}
  end
end
local receipts = {}
for j = 4 + n, #ARGV do
  receipts[#receipts + 1] = redis.call('GET', K.receipt .. ARGV[j]) or ''
end
return {tokens, persons, receipts}
