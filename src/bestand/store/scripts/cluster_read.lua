-- persons_read.lua on a Redis Cluster, one call per master: a command's keys share a slot
-- there, so each dedupe marker is read on its own (persons_read.lua asks EXISTS and MGET of
-- 64 at a time). Run as store/router.py's cross_slot makes it (the keys handed over as
-- arguments).
-- KEYS: the n persons' buckets, then dedupe keys (an event's marker on a person).
-- ARGV: n, then the version of each person the caller holds already (-1: none), then the n
--   person ids.
-- Returns {persons, markers} as persons_read.lua does: persons[i] = {redirect or '', version,
-- state or '', known} (a redirect that kept a state is 'survivor\31value'), markers[j] = the
-- dedupe marker, or ''.
local n = tonumber(ARGV[1])
local persons, markers = {}, {}
for i = 1, n do
  local value = redis.call('HGET', KEYS[i], ARGV[1 + n + i])
  if value and string.sub(value, 1, 1) == 'r' then
    persons[i] = {string.sub(value, 2), 0, '', 0}
  else
    local version, state = 0, ''
    if value then
      local colon = string.find(value, ':', 2, true)
      version = tonumber(string.sub(value, 2, colon - 1))
      state = string.sub(value, colon + 1)
    end
    if version > 0 and version == tonumber(ARGV[1 + i]) then
      persons[i] = {'', version, '', 1}
    else
      persons[i] = {'', version, state, 0}
    end
  end
end
for j = n + 1, #KEYS do
  markers[#markers + 1] = redis.call('GET', KEYS[j]) or ''
end
return {persons, markers}
