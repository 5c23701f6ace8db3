-- Cut the identifiers that layouts 3 to 6 stored as 22 characters of base64url (16 bytes of
-- the HMAC) to this layout's 16 (its first 12 bytes: the same text cut short, so what this
-- release keys the same value to), wherever they are stored as text, once, when a worker of
-- this release first starts on such a store. A field or key cut already (another worker got
-- to it first) is left as it is, so workers that start together do no harm.
-- KEYS: keys of one kind, all under one prefix.
-- ARGV: what they are, the characters an identifier keeps, the characters that name a bucket:
--   'fields'  buckets whose fields are identifiers less their bucket's characters (graph
--             entries, lookup records, meetings): each field cut
--   'facts'   facts buckets: a person's facts' names that are identifiers, or '@' and one
--   'logs'    log buckets: the identifiers of each person's explain entries
--   'log'     a long explain log (a list): the same, entry by entry
--   'key'     keys named by an identifier (claims, junk flags, tombstones), ARGV[4] their
--             prefix: renamed
-- (Receipts' JSON is rewritten by the worker: Lua's cjson writes an empty list as {}.)
-- Returns how many keys this call changed.
local what, W, B = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local LONG = 22

-- An identifier of an earlier layout ('k:' and 22 characters) cut short; any other text as it is.
local function cut(token)
  if type(token) == 'string' and #token == 2 + LONG and string.find(token, '^[a-z]:[%w_%-]+$') then
    return string.sub(token, 1, 2 + W)
  end
  return token
end

-- An explain entry with its identifiers cut (fields split by \31: the identifier it went by
-- is the fifth, the identifiers from the seventh; an entry kept as JSON stays as it is, and
-- readers cut what they take from it).
local function cut_entry(entry)
  if string.sub(entry, 1, 1) == '{' then return entry end
  local fields, start = {}, 1
  while true do
    local stop = string.find(entry, '\31', start, true)
    fields[#fields + 1] = string.sub(entry, start, (stop or 0) - 1)
    if not stop then break end
    start = stop + 1
  end
  for i = 5, #fields do
    if i ~= 6 then fields[i] = cut(fields[i]) end
  end
  return table.concat(fields, '\31')
end
local function cut_log(text)
  local entries, start = {}, 1
  while true do
    local stop = string.find(text, '\30', start, true)
    entries[#entries + 1] = cut_entry(string.sub(text, start, (stop or 0) - 1))
    if not stop then return table.concat(entries, '\30') end
    start = stop + 1
  end
end

-- A person's facts with the identifiers among their names cut ('name' .. '\31' .. value
-- joined by '\30'; a claim's name is '@' and an identifier).
local function cut_facts(facts)
  local entries = {}
  for name, value in string.gmatch(facts, '([^\30\31]*)\31([^\30]*)') do
    if string.sub(name, 1, 1) == '@' then
      name = '@' .. cut(string.sub(name, 2))
    else
      name = cut(name)
    end
    entries[#entries + 1] = name .. '\31' .. value
  end
  return table.concat(entries, '\30')
end

-- Every value of a hash through `rewrite`; whether one changed.
local function rewrite_values(key, rewrite)
  local held, touched = redis.call('HGETALL', key), false
  for i = 1, #held, 2 do
    local now = rewrite(held[i + 1])
    if now ~= held[i + 1] then
      redis.call('HSET', key, held[i], now)
      touched = true
    end
  end
  return touched
end

local changed = 0
for _, key in ipairs(KEYS) do
  local touched = false
  if what == 'fields' then
    local held = redis.call('HGETALL', key)
    for i = 1, #held, 2 do
      local field = held[i]
      if #field == 2 + LONG - B then
        redis.call('HDEL', key, field)
        redis.call('HSET', key, string.sub(field, 1, 2 + W - B), held[i + 1])
        touched = true
      end
    end
  elseif what == 'facts' then
    touched = rewrite_values(key, cut_facts)
  elseif what == 'logs' then
    touched = rewrite_values(key, cut_log)
  elseif what == 'log' then
    local entries = redis.call('LRANGE', key, 0, -1)
    for i, entry in ipairs(entries) do
      local now = cut_entry(entry)
      if now ~= entry then
        redis.call('LSET', key, i - 1, now)
        touched = true
      end
    end
  elseif what == 'key' then
    local prefix = ARGV[4]
    local token = string.sub(key, #prefix + 1)
    local short = cut(token)
    if short ~= token and redis.call('EXISTS', key) == 1 then
      redis.call('RENAME', key, prefix .. short)
      touched = true
    end
  end
  if touched then changed = changed + 1 end
end
return changed
