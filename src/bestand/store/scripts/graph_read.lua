-- Read what the identity graph holds about a batch's identifiers, for the rules.
-- KEYS: the graph buckets of the identifiers, one per identifier in ARGV's order (all in the
--   graph's hash slot; an identifier's field in its bucket is the token without the bucket's
--   characters, keys.py).
-- ARGV: key schema (JSON, Keys.graph_schema), the number of identifiers n, then n tokens,
--   the number of persons k whose facts the caller holds, then k pairs person, graph version
--   (the facts of such a person still at that version are not sent), then receipt ids of the
--   events.
-- Returns one string of three sections split by \29, their rows by \30, a row's fields by
-- \31 (no token, person id, count or JSON text holds a control character; a reply of nested
-- arrays cost Redis a tenth more and the worker a Python object per field):
--   tokens:   i, owner or '', 1 if junk else '', erasure time or '', then the persons met
--             (merged-away ones replaced by whom they went into), for each identifier i
--             (1-based) the graph knows anything of; unknown ones have no row
--   persons:  person, then its facts as field, value, ... for every owner seen
--             (v: graph version, a kind letter: how many identifiers of that kind, a
--             describing token: 1, an identifier: empty, '@' and a cookie: when claimed);
--             person, '=' where the caller holds its facts at the version they have
--   receipts: j, body for each event j (1-based) that merged or flagged junk before
--   claims:   i, then 'time:person' for each claim of a cookie or device id that moved
--             between persons (its holders by the time they claimed it, oldest first;
--             merged-away persons replaced by whom they went into); the facts of every
--             person named there are in the persons section too
local K = cjson.decode(ARGV[1])
local B = tonumber(K.bucket_chars)
local n = tonumber(ARGV[2])
local k = tonumber(ARGV[3 + n])
local known = {}
for j = 1, k do known[ARGV[2 + n + 2 * j]] = ARGV[3 + n + 2 * j] end

-- Redirects, meetings and absorbed persons are fields of buckets (keys.py): a person's of its
-- facts bucket, marked K.redirect_field; an identifier's meetings of its graph bucket, marked
-- K.met_field; a set is its members joined by ','.
local function redirect_of(person)
  return redis.call('HGET', K.redirect .. string.sub(person, 1, B), K.redirect_field .. person)
end
local function split_members(value)
  local out = {}
  if value then
    for member in string.gmatch(value, '[^,]+') do out[#out + 1] = member end
  end
  return out
end

local function live(person)
  for _ = 1, 32 do
    local next_person = redirect_of(person)
    if not next_person then return person end
    person = next_person
  end
  return person
end

-- Values of keys that seldom exist (junk flags, erasure times, receipts), false where none:
-- every value an MGET hands to Lua becomes a Lua value (an allocation each), EXISTS answers
-- one count, so a run of keys is fetched only when EXISTS finds one of them.
local RUN = 64
local function seldom(keys)
  local values = {}
  for first = 1, #keys, RUN do
    local last = math.min(first + RUN - 1, #keys)
    if redis.call('EXISTS', unpack(keys, first, last)) > 0 then
      local got = redis.call('MGET', unpack(keys, first, last))
      for j = 1, #got do values[first + j - 1] = got[j] end
    else
      for j = first, last do values[j] = false end
    end
  end
  return values
end

-- Keys of one kind are read with one call each: a call from Lua costs more than its command.
local junk_keys, erased_keys = {}, {}
for i = 1, n do
  junk_keys[i] = K.junk .. ARGV[2 + i]
  erased_keys[i] = K.tombstone .. ARGV[2 + i]
end
local owners = {}
for i = 1, n do
  local token = ARGV[2 + i]
  owners[i] = redis.call('HGET', KEYS[i], string.sub(token, 1, 2) .. string.sub(token, 3 + B))
end
local junk = seldom(junk_keys)
local erased = seldom(erased_keys)

-- Whom each identifier met, and where those persons went.
-- Only an owned or junk identifier can have met anyone: graph_apply records meetings of owned
-- identifiers only, an owner goes only when the identifier is flagged junk, and an erasure
-- deletes the met sets of what it unowns. New identifiers (a new visitor's cookie, every
-- order id) skip the call.
local met_read, members, member_seen, went = {}, {}, {}, {}
local none = {}
for i = 1, n do
  local token = ARGV[2 + i]
  met_read[i] = (owners[i] or junk[i]) and split_members(redis.call('HGET',
    K.met .. string.sub(token, 3, 2 + B),
    K.met_field .. string.sub(token, 1, 2) .. string.sub(token, 3 + B))) or none
  for _, person in ipairs(met_read[i]) do
    if not member_seen[person] then
      member_seen[person] = true
      members[#members + 1] = person
    end
  end
end
for _, member in ipairs(members) do
  local target = redirect_of(member)
  if target then went[member] = live(target) end
end

-- Claims of the cookies and device ids that moved between persons (they met someone).
local claim_rows = {}
for i = 1, n do
  local token = ARGV[2 + i]
  if owners[i] and #met_read[i] > 0 and string.find(K.movable, string.sub(token, 1, 1), 1, true) then
    local entries = redis.call('LRANGE', K.claims .. token, 0, -1)
    if #entries > 0 then
      local row = {i}
      for _, entry in ipairs(entries) do
        local time, person = string.match(entry, '^([^:]*):(.*)$')
        row[#row + 1] = time .. ':' .. live(person)
      end
      claim_rows[#claim_rows + 1] = row
    end
  end
end

local rows, persons, seen, seen_list = {}, {}, {}, {}
for i = 1, n do
  local owner, met_now = owners[i], met_read[i]
  if owner or junk[i] or erased[i] or #met_now > 0 then
    local row = {i, owner or '', junk[i] and 1 or '', erased[i] or ''}
    local met_seen = {}
    for _, person in ipairs(met_now) do
      local now = went[person] or person
      if not met_seen[now] then
        met_seen[now] = true
        row[#row + 1] = now
      end
    end
    rows[#rows + 1] = table.concat(row, '\31')
    if owner and not seen[owner] then
      seen[owner] = true
      seen_list[#seen_list + 1] = owner
    end
  end
end
local claims = {}
for j, row in ipairs(claim_rows) do
  for k = 2, #row do
    local person = string.match(row[k], ':(.*)$')
    if not seen[person] then
      seen[person] = true
      seen_list[#seen_list + 1] = person
    end
  end
  claims[j] = table.concat(row, '\31')
end
-- Facts the caller holds at their version are not sent again (a version changes with every
-- change of the facts): one short answer instead of every field as a Lua string.
-- A person's facts are its field of a facts bucket: 'name' .. '\31' .. value joined by '\30',
-- the version first (keys.py); the reply takes them with every separator a '\31'.
for j, owner in ipairs(seen_list) do
  local text = redis.call('HGET', K.facts .. string.sub(owner, 1, B), owner)
  if known[owner] and text and string.match(text, '^v\31(%d+)') == known[owner] then
    persons[j] = owner .. '\31='
  elseif text then
    persons[j] = owner .. '\31' .. (string.gsub(text, '\30', '\31'))
  else
    persons[j] = owner
  end
end
local receipt_keys = {}
for j = 4 + n + 2 * k, #ARGV do receipt_keys[#receipt_keys + 1] = K.receipt .. ARGV[j] end
local receipts = {}
for j, body in ipairs(seldom(receipt_keys)) do
  if body then receipts[#receipts + 1] = j .. '\31' .. body end
end
return table.concat(rows, '\30') .. '\29' .. table.concat(persons, '\30') .. '\29'
  .. table.concat(receipts, '\30') .. '\29' .. table.concat(claims, '\30')
