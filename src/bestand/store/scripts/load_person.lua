-- Read a person's state for the reducer.
-- KEYS: person key, dedupe key of the event about to be applied.
-- Returns {redirect, applied, version, state}: redirect is the survivor when the person was
-- merged away ('' otherwise); applied is the marker (the content digest) of the event when it
-- was applied to this person before, '' otherwise (also before it was merged away: the
-- survivor then holds the event's effect already).
local applied = redis.call('GET', KEYS[2]) or ''
local r = redis.call('HGET', KEYS[1], 'r')
if r then return {r, applied, 0, ''} end
local fields = redis.call('HMGET', KEYS[1], 'v', 's')
return {'', applied, tonumber(fields[1] or '0'), fields[2] or ''}
