-- Apply a batch's decisions of the identity rules in order, each only if the graph still holds
-- what it was decided on; stop at the first that finds the graph changed.
-- KEYS: the graph buckets of the decisions' identifiers (all in the graph's hash slot).
-- ARGV: key schema (JSON, Keys.graph_schema), the batch's stop id, max explain entries kept
--   per person, the kind letters that only describe (names, households: in a person's
--   facts, never owned), then one plan (JSON) per decision:
--   owners   {token: owner read ('' for none)}, junk {token: ''} (tokens read as not junk),
--   versions {person: version read}: the guard; any difference stops the batch here
--   person, absorbed [..], attach [..] (identifiers it now owns), describe [..] (names and
--   households: in its facts, owned by nobody), met [[token, person]..], flag [[token, reason]..],
--   log [entry..] (explain entries as identity/entries.py stores them, appended to the
--   person's log),
--   move (optional) [[token, former holder, entry, time]..]: cookies and device ids the person
--   takes over: out of the holder's facts, counts and claims, its version raised, the entry in
--   its log; the cookie's claims list gains 'time:person' (the former holder's claim first),
--   claim (optional) ['@' .. token, time, ..]: when the person claimed them (facts fields),
--   repeats (optional: 1 when
--   the log holds entries a redelivered event may decide again),
--   receipt (optional) {event, ttl, body}: what the event decided, kept for a redelivery
-- A batch too large for one call is sent as several calls in one pipeline with the same stop
-- id: once one call stopped, the later ones apply nothing.
-- Returns how many plans were applied (all of them, or those before the stop).
local K = cjson.decode(ARGV[1])
local stop = K.batch_stop .. ARGV[2]
local max_log = tonumber(ARGV[3])
local max_claims = tonumber(K.max_claims)
local describing = ARGV[4]
if redis.call('EXISTS', stop) == 1 then return 0 end

-- An identifier's graph entry: a field of the bucket named by its hash's first characters.
local B = tonumber(K.bucket_chars)
local function bucket_of(token) return K.identifier .. string.sub(token, 3, 2 + B) end
local function field_of(token) return string.sub(token, 1, 2) .. string.sub(token, 3 + B) end
local function owner_of(token) return redis.call('HGET', bucket_of(token), field_of(token)) end
local function own(token, person) redis.call('HSET', bucket_of(token), field_of(token), person) end

-- A person's facts are its field of the facts bucket named by its id's first characters: what
-- a hash of its own held, 'name' .. '\31' .. value (empty for an identifier) joined by '\30',
-- its version first, the others in order (keys.py). The script reads a person's facts once
-- and changes them as a table (a field keeps its place, a new one goes last, as in a Redis
-- hash), and writes back those it changed before it returns (store_facts); a person whose
-- version is all it asks for is not taken apart.
local held_facts, held_order, held_text = {}, {}, {}
local function facts_bucket(person) return K.facts .. string.sub(person, 1, B) end
local function facts_text(person)
  local text = held_text[person]
  if text == nil then
    text = redis.call('HGET', facts_bucket(person), person) or ''
    held_text[person] = text
  end
  return text
end
local function facts_of(person)
  local f = held_facts[person]
  if f then return f end
  f = {names = {}, values = {}, at = {}, n = 0, changed = false}
  for name, value in string.gmatch(facts_text(person), '([^\30\31]*)\31([^\30]*)') do
    f.n = f.n + 1
    f.names[f.n], f.values[f.n], f.at[name] = name, value, f.n
  end
  held_facts[person] = f
  held_order[#held_order + 1] = person
  return f
end
local function fact(person, name)
  if name == 'v' and not held_facts[person] then
    return string.match(facts_text(person), '^v\31(%d+)')
  end
  local f = facts_of(person)
  local i = f.at[name]
  return i and f.values[i]
end
local function set_fact(person, name, value)
  local f = facts_of(person)
  local i = f.at[name]
  if not i then
    f.n = f.n + 1
    i = f.n
    f.names[i], f.at[name] = name, i
  end
  f.values[i] = tostring(value)
  f.changed = true
end
local function add_fact(person, name, delta)
  set_fact(person, name, tonumber(fact(person, name) or '0') + tonumber(delta))
end
local function drop_fact(person, name)
  local f = facts_of(person)
  local i = f.at[name]
  if i then
    f.values[i], f.at[name], f.changed = nil, nil, true
  end
end
local function facts_list(person) -- {name, value, name, value, ..} in order
  local f, out = facts_of(person), {}
  for i = 1, f.n do
    if f.values[i] then
      out[#out + 1] = f.names[i]
      out[#out + 1] = f.values[i]
    end
  end
  return out
end
local function drop_facts(person)
  facts_of(person) -- written back (removed) with the others
  held_facts[person] = {names = {}, values = {}, at = {}, n = 0, changed = true}
end
local function store_facts()
  for _, person in ipairs(held_order) do
    local f = held_facts[person]
    if f.changed then
      local first = f.at.v
      local entries = {first and ('v\31' .. f.values[first]) or nil}
      for i = 1, f.n do
        local value = f.values[i]
        if value and i ~= first then entries[#entries + 1] = f.names[i] .. '\31' .. value end
      end
      if #entries > 0 then
        redis.call('HSET', facts_bucket(person), person, table.concat(entries, '\30'))
      else
        redis.call('HDEL', facts_bucket(person), person)
      end
      f.changed = false
    end
  end
end

-- The guard: what the decision was made on must still hold. (Read key by key: an MGET
-- before a SET in one script leaves the key 16 bytes larger, measured on Redis 7.0.)
local function guard_holds(plan)
  for token, expected in pairs(plan.owners) do
    if (owner_of(token) or '') ~= expected then return false end
  end
  for token, expected in pairs(plan.junk) do
    if (redis.call('GET', K.junk .. token) or '') ~= expected then return false end
  end
  for person, version in pairs(plan.versions) do
    if tonumber(fact(person, 'v') or '0') ~= tonumber(version) then return false end
  end
  return true
end

local function describes(token)
  return string.find(describing, string.sub(token, 1, 1), 1, true) ~= nil
end

-- Commands that take many members are called once per list (a call from Lua costs several
-- times its command), in runs short enough for Lua's stack.
local RUN = 500
local function each_run(command, key, list, step)
  for first = 1, #list, RUN * step do
    redis.call(command, key, unpack(list, first, math.min(first + RUN * step - 1, #list)))
  end
end

-- A person's identifiers are fields of its facts with empty values, and the graph's sets (an
-- identifier's meetings, the persons absorbed) hashes of member -> '': Redis 7.0 keeps a
-- small hash as one listpack, a set of strings as a hash table of its own allocations, about
-- twice the memory (keys.py).
-- A person's explain log: while short (K.log_inline bytes), one string of its entries split
-- by \30, a field of the person's facts bucket (its id marked K.log_field); once longer, a
-- list of its own (K.log, as earlier layouts kept every log), appended to in place.
local LOG_INLINE = tonumber(K.log_inline)
local function log_bucket(person) return K.log_bucket .. string.sub(person, 1, B) end
local function log_field(person) return K.log_field .. person end
local function split_log(text)
  local entries, start = {}, 1
  while true do
    local stop = string.find(text, '\30', start, true)
    entries[#entries + 1] = string.sub(text, start, (stop or 0) - 1)
    if not stop then return entries end
    start = stop + 1
  end
end
local function log_of(person, last) -- its entries, the last `last` of them (nil: all)
  local text = redis.call('HGET', log_bucket(person), log_field(person))
  if not text then return redis.call('LRANGE', K.log .. person, last and -last or 0, -1) end
  local entries = split_log(text)
  if last and #entries > last then return {unpack(entries, #entries - last + 1)} end
  return entries
end
local function drop_log(person)
  redis.call('HDEL', log_bucket(person), log_field(person))
  redis.call('DEL', K.log .. person)
end
local function append_log(person, entries) -- keeps the last max_log entries
  if #entries == 0 then return end
  local long = K.log .. person
  if redis.call('EXISTS', long) == 0 then
    local bucket = log_bucket(person)
    local text = redis.call('HGET', bucket, log_field(person))
    local added = table.concat(entries, '\30')
    local joined = text and (text .. '\30' .. added) or added
    local plain = true -- no entry holds the separator (an earlier release's entry might)
    for _, entry in ipairs(entries) do
      if string.find(entry, '\30', 1, true) then plain = false end
    end
    if plain and #joined <= LOG_INLINE then
      local all = split_log(joined)
      if #all > max_log then joined = table.concat({unpack(all, #all - max_log + 1)}, '\30') end
      redis.call('HSET', bucket, log_field(person), joined)
      return
    end
    redis.call('HDEL', bucket, log_field(person))
    local before = text and split_log(text) or {}
    for _, entry in ipairs(entries) do before[#before + 1] = entry end
    entries = before
  end
  local length = 0
  for first = 1, #entries, RUN do
    length = redis.call('RPUSH', long, unpack(entries, first, math.min(first + RUN - 1, #entries)))
  end
  if length > max_log then redis.call('LTRIM', long, -max_log, -1) end
end

-- Redirects, meetings and absorbed persons are fields of buckets too: a person's of its facts
-- bucket (its id marked K.redirect_field or K.absorbed_field), an identifier's meetings of its
-- graph bucket (its field marked K.met_field); a set is its members joined by ','.
local function person_bucket(prefix, person) return prefix .. string.sub(person, 1, B) end
local function split_members(value)
  local out = {}
  if value then
    for member in string.gmatch(value, '[^,]+') do out[#out + 1] = member end
  end
  return out
end
local function add_member(key, field, member)
  local value = redis.call('HGET', key, field)
  for _, held in ipairs(split_members(value)) do
    if held == member then return end
  end
  redis.call('HSET', key, field, value and (value .. ',' .. member) or member)
end

local function pairs_of(list)
  local out = {}
  for _, member in ipairs(list) do
    out[#out + 1] = member
    out[#out + 1] = ''
  end
  return out
end

local function apply(plan)
  local person = plan.person
  for _, gone in ipairs(plan.absorbed) do
    -- Its facts join the survivor's: its identifiers become the survivor's, describing tokens
    -- are kept once, claims go along.
    local gone_facts = facts_list(gone)
    local fields = {}
    for i = 1, #gone_facts, 2 do
      local field = gone_facts[i]
      if #field > 1 then
        if string.sub(field, 1, 1) ~= '@' and not describes(field) then
          own(field, person)
        end
        fields[#fields + 1] = field
        fields[#fields + 1] = gone_facts[i + 1]
      end
    end
    for i = 1, #fields, 2 do set_fact(person, fields[i], fields[i + 1]) end
    append_log(person, log_of(gone))
    drop_log(gone)
    drop_facts(gone)
    -- Remember where it went (met sets still name it), and what the person absorbed, so that
    -- an erasure can remove these redirects too.
    local absorbed = person_bucket(K.absorbed, person)
    local absorbed_field = K.absorbed_field .. person
    redis.call('HSET', person_bucket(K.redirect, gone), K.redirect_field .. gone, person)
    add_member(absorbed, absorbed_field, gone)
    local gone_absorbed = person_bucket(K.absorbed, gone)
    local gone_field = K.absorbed_field .. gone
    for _, older in ipairs(split_members(redis.call('HGET', gone_absorbed, gone_field))) do
      redis.call('HSET', person_bucket(K.redirect, older), K.redirect_field .. older, person)
      add_member(absorbed, absorbed_field, older)
    end
    redis.call('HDEL', gone_absorbed, gone_field)
  end
  for _, move in ipairs(plan.move or {}) do
    local token, former = move[1], move[2]
    local claims = K.claims .. token
    if redis.call('EXISTS', claims) == 0 then
      local since = fact(former, '@' .. token) or '0'
      redis.call('RPUSH', claims, since .. ':' .. former)
    end
    if redis.call('RPUSH', claims, move[4] .. ':' .. person) > max_claims then
      redis.call('LTRIM', claims, -max_claims, -1)
    end
    drop_fact(former, token)
    drop_fact(former, '@' .. token)
    add_fact(former, 'v', 1)
    append_log(former, {move[3]})
    own(token, person)
    set_fact(person, token, '')
  end
  local claim = plan.claim or {}
  for i = 1, #claim, 2 do set_fact(person, claim[i], claim[i + 1]) end
  for _, token in ipairs(plan.attach) do own(token, person) end
  for _, token in ipairs(plan.attach) do set_fact(person, token, '') end
  for _, token in ipairs(plan.describe) do set_fact(person, token, '1') end
  for _, pair in ipairs(plan.met) do
    add_member(K.met .. string.sub(pair[1], 3, 2 + B), K.met_field .. field_of(pair[1]), pair[2])
  end
  for _, pair in ipairs(plan.flag) do
    local token = pair[1]
    redis.call('SET', K.junk .. token, pair[2])
    -- A junk identifier names nobody any more.
    local owner = owner_of(token)
    if owner then
      redis.call('HDEL', bucket_of(token), field_of(token))
      redis.call('DEL', K.claims .. token)
      if describes(token) then
        drop_fact(owner, token)
      else
        drop_fact(owner, token)
        drop_fact(owner, '@' .. token)
      end
      if owner ~= person then add_fact(owner, 'v', 1) end
    end
  end
  -- A redelivered event may refuse or flag the same again (plan.repeats): skip entries the
  -- log already ends with. New persons, links and merges are never decided twice.
  if plan.repeats then
    local recent, fresh = {}, {}
    for _, entry in ipairs(log_of(person, 50)) do recent[entry] = true end
    for _, entry in ipairs(plan.log) do
      if not recent[entry] then fresh[#fresh + 1] = entry end
    end
    append_log(person, fresh)
  else
    append_log(person, plan.log)
  end
  -- A merge or a junk flag happens once: if the worker dies before the batch is committed,
  -- the redelivered event finds the graph changed already and must repeat this answer.
  if plan.receipt then
    redis.call('SET', K.receipt .. plan.receipt.event, plan.receipt.body, 'EX', plan.receipt.ttl)
  end
  add_fact(person, 'v', 1)
end

local applied = 0
for i = 5, #ARGV do
  local plan = cjson.decode(ARGV[i])
  if not guard_holds(plan) then
    redis.call('SET', stop, '1', 'EX', 60)
    store_facts()
    return applied
  end
  apply(plan)
  applied = applied + 1
end
store_facts()
return applied
