-- Remove persons from the identity graph: every identifier, its meetings and claims, its
-- facts (version, counts, identifiers, describing tokens), the explain log, the receipts of
-- its logged events, its place in the claims of cookies it held before, and the redirects of
-- the persons it absorbed.
-- Every identifier named or erased gets a tombstone (its erasure time, the later one kept), so
-- a replay of events from before the erasure cannot bring the person back.
-- KEYS: the graph buckets of the identifiers named in an erasure request, one per identifier.
-- ARGV: key schema (JSON, Keys.graph_schema), erasure time (epoch seconds), the identifiers.
-- Returns {{person, token...}, ...}: each erased person with the identifiers it had.
local K = cjson.decode(ARGV[1])
local at = tonumber(ARGV[2])
local B = tonumber(K.bucket_chars)
local function bucket_of(token) return K.identifier .. string.sub(token, 3, 2 + B) end
local function field_of(token) return string.sub(token, 1, 2) .. string.sub(token, 3 + B) end
local seen, out = {}, {}
-- A person's explain log: a field of its facts bucket (marked K.log_field) while short, a
-- list once longer (graph_apply.lua).
local function log_bucket(person) return K.log_bucket .. string.sub(person, 1, B) end
local function log_of(person)
  local text = redis.call('HGET', log_bucket(person), K.log_field .. person)
  if not text then return redis.call('LRANGE', K.log .. person, 0, -1) end
  local entries, start = {}, 1
  while true do
    local stop = string.find(text, '\30', start, true)
    entries[#entries + 1] = string.sub(text, start, (stop or 0) - 1)
    if not stop then return entries end
    start = stop + 1
  end
end
local function tombstone(token)
  local key = K.tombstone .. token
  local before = tonumber(redis.call('GET', key) or '0')
  if at > before then redis.call('SET', key, at) end
end
-- An explain entry's kind, event id and identifiers (entries.py: fields split by \31, or
-- JSON as earlier releases and odd fields have it).
local function entry_of(text)
  if string.sub(text, 1, 1) == '{' then
    local decoded = cjson.decode(text)
    return decoded.k == 'move', decoded.e, decoded.t
  end
  local fields, start = {}, 1
  while true do
    local stop = string.find(text, '\31', start, true)
    fields[#fields + 1] = string.sub(text, start, (stop or 0) - 1)
    if not stop then break end
    start = stop + 1
  end
  return fields[1] == 'v', fields[3], {unpack(fields, 7)}
end
for i = 3, #ARGV do
  tombstone(ARGV[i])
end
for i = 3, #ARGV do
  local p = redis.call('HGET', bucket_of(ARGV[i]), field_of(ARGV[i]))
  if p and not seen[p] then
    seen[p] = true
    -- Its identifiers and describing tokens: the names of its facts of more than one letter
    -- but the claims ('@' + token). Its facts are its field of a facts bucket: 'name' ..
    -- '\31' .. value joined by '\30' (keys.py).
    local members = {}
    local facts = K.facts .. string.sub(p, 1, B)
    for field in string.gmatch(redis.call('HGET', facts, p) or '', '([^\30\31]*)\31[^\30]*') do
      if #field > 1 and string.sub(field, 1, 1) ~= '@' then members[#members + 1] = field end
    end
    for _, m in ipairs(members) do
      redis.call('HDEL', bucket_of(m), field_of(m))
      redis.call('HDEL', K.met .. string.sub(m, 3, 2 + B), K.met_field .. field_of(m))
      redis.call('DEL', K.claims .. m)
      tombstone(m)
    end
    local absorbed = K.absorbed .. string.sub(p, 1, B)
    for gone in string.gmatch(redis.call('HGET', absorbed, K.absorbed_field .. p) or '', '[^,]+') do
      redis.call('HDEL', K.redirect .. string.sub(gone, 1, B), K.redirect_field .. gone)
    end
    redis.call('HDEL', absorbed, K.absorbed_field .. p)
    -- Receipts of the events in its explain log (merges, junk flags) name it too, and so do
    -- the claims lists of the cookies it held before they moved on.
    local events = {}
    for _, entry in ipairs(log_of(p)) do
      local moved, e, tokens = entry_of(entry)
      if moved then
        for _, token in ipairs(tokens) do
          local claims = K.claims .. token
          for _, held in ipairs(redis.call('LRANGE', claims, 0, -1)) do
            if string.match(held, ':(.*)$') == p then redis.call('LREM', claims, 0, held) end
          end
        end
      end
      if e and not events[e] then
        events[e] = true
        if #e > 64 then e = redis.sha1hex(e) end
        redis.call('DEL', K.receipt .. e)
      end
    end
    redis.call('HDEL', log_bucket(p), K.log_field .. p)
    redis.call('HDEL', facts, p)
    redis.call('DEL', K.log .. p)
    local entry = {p}
    for _, m in ipairs(members) do entry[#entry + 1] = m end
    out[#out + 1] = entry
  end
end
return out
