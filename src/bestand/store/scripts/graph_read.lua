-- Read what the identity graph holds about a batch's identifiers, for the rules.
-- KEYS: identity graph keys of the identifiers (all in the graph's hash slot).
-- ARGV: key schema (JSON, Keys.graph_schema), the number of identifiers n, then n tokens,
--   then receipt ids of the events.
-- Returns {tokens, persons, receipts}:
--   tokens[i]   = {owner or '', junk reason or '', {persons met...}, erasure time or ''};
--                 merged-away persons in the met set are replaced by whom they went into
--   persons     = {{person, {field, value, ...}}, ...} for every owner seen: its facts hash
--                 (v: graph version, a kind letter: how many identifiers of that kind, a
--                 describing token: 1)
--   receipts[j] = what event j decided when it merged or flagged junk, or ''
local K = cjson.decode(ARGV[1])
local n = tonumber(ARGV[2])

local function live(person)
  for _ = 1, 32 do
    local next_person = redis.call('GET', K.redirect .. person)
    if not next_person then return person end
    person = next_person
  end
  return person
end

-- Keys of one kind are read with one MGET each: a call from Lua costs more than its command.
local junk_keys, erased_keys = {}, {}
for i = 1, n do
  junk_keys[i] = K.junk .. ARGV[2 + i]
  erased_keys[i] = K.tombstone .. ARGV[2 + i]
end
local owners = n > 0 and redis.call('MGET', unpack(KEYS, 1, n)) or {}
local junk = n > 0 and redis.call('MGET', unpack(junk_keys)) or {}
local erased = n > 0 and redis.call('MGET', unpack(erased_keys)) or {}

-- Whom each identifier met; where those persons went is read with one MGET per 1,000 of them.
-- Only an owned or junk identifier can have met anyone: graph_apply records meetings of owned
-- identifiers only, an owner goes only when the identifier is flagged junk, and an erasure
-- deletes the met sets of what it unowns. New identifiers (a new visitor's cookie, every
-- order id) skip the call.
local met_read, members, member_seen, went = {}, {}, {}, {}
local none = {}
for i = 1, n do
  met_read[i] = (owners[i] or junk[i]) and redis.call('SMEMBERS', K.met .. ARGV[2 + i]) or none
  for _, person in ipairs(met_read[i]) do
    if not member_seen[person] then
      member_seen[person] = true
      members[#members + 1] = person
    end
  end
end
for first = 1, #members, 1000 do
  local last = math.min(first + 999, #members)
  local keys = {}
  for j = first, last do keys[#keys + 1] = K.redirect .. members[j] end
  for j, target in ipairs(redis.call('MGET', unpack(keys))) do
    if target then went[members[first + j - 1]] = live(target) end
  end
end

local tokens, persons, seen, seen_list = {}, {}, {}, {}
for i = 1, n do
  local token = ARGV[2 + i]
  local owner = owners[i] or ''
  local met, met_seen = {}, {}
  for _, person in ipairs(met_read[i]) do
    local now = went[person] or person
    if not met_seen[now] then
      met_seen[now] = true
      met[#met + 1] = now
    end
  end
  tokens[i] = {owner, junk[i] or '', met, erased[i] or ''}
  if owner ~= '' and not seen[owner] then
    seen[owner] = true
    seen_list[#seen_list + 1] = owner
  end
end
for j, owner in ipairs(seen_list) do
  persons[j] = {owner, redis.call('HGETALL', K.facts .. owner)}
end
local receipt_keys = {}
for j = 3 + n, #ARGV do receipt_keys[#receipt_keys + 1] = K.receipt .. ARGV[j] end
local receipts = {}
if #receipt_keys > 0 then
  for j, body in ipairs(redis.call('MGET', unpack(receipt_keys))) do receipts[j] = body or '' end
end
return {tokens, persons, receipts}
