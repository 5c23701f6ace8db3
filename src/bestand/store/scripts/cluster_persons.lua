-- Person writes on a Redis Cluster: one call per master and step, each item all or nothing
-- under the versions read (compare and set). A group of persons a batch merges may lie in
-- several slots: the persons it absorbs become redirects that keep their state ('keep'), then
-- the survivor is written ('write'), then the kept states go ('drop'); a redirect that keeps
-- its state is folded into its survivor by the batch that merges it, until the survivor
-- names it as absorbed (store/cluster_profiles.py).
-- Run as store/router.py's cross_slot makes it (the keys handed over as arguments).
-- KEYS: the person buckets and dedupe keys the items touch (all on this master).
-- ARGV: key schema (JSON, Keys.person_schema), dedupe TTL in seconds, the step, the number of
--   items N, then one item (JSON) each, then the new states the items name by ARGV index:
--   guard    [[person, version read]..]: each must still have that version (a redirect that
--            keeps its state has the version of that state)
--   write    [[person, version, index of its state in ARGV]..]: new states ('write')
--   absorbed [[person, survivor]..]: 'keep': a redirect that keeps the person's value;
--            'write': a redirect; 'drop': a redirect that kept a state to survivor keeps none
--   markers  [[dedupe key, marker]..]: the events applied ('write')
-- Returns one 1 (written) or 0 (a guard failed) per item.
local K = cjson.decode(ARGV[1])
local ttl = tonumber(ARGV[2])
local step = ARGV[3]
local items = tonumber(ARGV[4])
local B = tonumber(K.bucket_chars)
local function person_key(id) return K.person .. string.sub(id, 1, B) .. K.person_end end
-- The version of a person's value: 'v' .. version .. ':' .. state, or a redirect that kept
-- it ('r' .. survivor .. '\31' .. that value); nil for a plain redirect.
local function version_of(value)
  local kept = string.find(value, '\31', 1, true)
  if string.sub(value, 1, 1) == 'r' then
    if not kept then return nil end
    value = string.sub(value, kept + 1)
  end
  return tonumber(string.match(value, '^v(%d+):'))
end
local out = {}
for i = 5, 4 + items do
  local item = cjson.decode(ARGV[i])
  local holds = true
  for _, pair in ipairs(item.guard or {}) do
    if version_of(redis.call('HGET', person_key(pair[1]), pair[1]) or 'v0:') ~= tonumber(pair[2]) then
      holds = false
      break
    end
  end
  if holds then
    for _, row in ipairs(item.write or {}) do
      redis.call('HSET', person_key(row[1]), row[1], 'v' .. row[2] .. ':' .. ARGV[row[3]])
    end
    for _, pair in ipairs(item.absorbed or {}) do
      local key, redirect = person_key(pair[1]), 'r' .. pair[2]
      local value = redis.call('HGET', key, pair[1]) or 'v0:'
      if step == 'keep' then
        if string.sub(value, 1, 1) == 'v' then
          redis.call('HSET', key, pair[1], redirect .. '\31' .. value)
        end
      elseif step == 'write' then
        redis.call('HSET', key, pair[1], redirect)
      elseif string.sub(value, 1, #redirect + 1) == redirect .. '\31' then
        redis.call('HSET', key, pair[1], redirect)
      end
    end
    for _, pair in ipairs(item.markers or {}) do
      redis.call('SET', pair[1], pair[2], 'EX', ttl)
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
