-- Move graph entries and lookup records that layouts 3 and 4 kept as a string key each
-- (<prefix><kind>:<hash> -> value) into the buckets this layout keeps them in (keys.py), once,
-- when a worker of this release first starts on such a store. A key moved already (another
-- worker got to it first) is skipped, so workers that start together do no harm.
-- KEYS: such keys, all under one prefix. ARGV: that prefix (Keys.buckets or Keys.lookups,
--   which name the buckets too), the characters of a hash that name its bucket.
-- Returns how many this call moved.
local prefix, B = ARGV[1], tonumber(ARGV[2])
local moved = 0
for _, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if value then
    local token = string.sub(key, #prefix + 1)
    redis.call('HSET', prefix .. string.sub(token, 3, 2 + B),
      string.sub(token, 1, 2) .. string.sub(token, 3 + B), value)
    redis.call('DEL', key)
    moved = moved + 1
  end
end
return moved
