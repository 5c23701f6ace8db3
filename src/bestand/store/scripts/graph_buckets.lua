-- Move graph entries that layouts 3 and 4 kept as a string key each (<p>:{g}:i:<kind>:<hash>
-- -> person id) into the buckets this layout keeps them in (keys.py), once, when a worker of
-- this release first starts on such a store. A key moved already (another worker got to it
-- first) is skipped, so workers that start together do no harm.
-- KEYS: such keys. ARGV: key schema (JSON, Keys.graph_schema).
-- Returns how many entries this call moved.
local K = cjson.decode(ARGV[1])
local B = tonumber(K.bucket_chars)
local moved = 0
for _, key in ipairs(KEYS) do
  local person = redis.call('GET', key)
  if person then
    local token = string.sub(key, #K.identifier + 1)
    redis.call('HSET', K.identifier .. string.sub(token, 3, 2 + B),
      string.sub(token, 1, 2) .. string.sub(token, 3 + B), person)
    redis.call('DEL', key)
    moved = moved + 1
  end
end
return moved
