-- Replace a lookup record unless it already holds a newer version.
-- KEYS: lookup record key. ARGV: version, then field, value pairs (including 'v').
-- Returns 1 when written, 0 when a newer or equal version was there.
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if cur >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
