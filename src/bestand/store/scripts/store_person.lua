-- Write a person's new state if nobody wrote it since it was read (compare and set).
-- KEYS: person key, then the dedupe keys of the events applied (one or more).
-- ARGV: version read, new version, new state, dedupe TTL in seconds, then the marker of each
-- dedupe key (the event's content digest, so that a reused id with other content shows).
-- Returns 1 when written, 0 when the version moved on, -1 when the person was merged away.
if redis.call('HEXISTS', KEYS[1], 'r') == 1 then return -1 end
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
local ttl = tonumber(ARGV[4])
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[3 + i] or '1', 'EX', ttl)
end
return 1
