-- Take out of persons' facts the counts by kind letter that layouts before 11 kept (a fact of
-- one letter but 'v': the identifiers among the facts give them now, keys.py). Safe to run
-- again.
-- KEYS: facts buckets. Returns how many persons' facts changed.
local changed = 0
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local field, text = flat[i], flat[i + 1]
    -- A person's facts: its id, which holds no ':' (a marked field, a log or a redirect, does).
    if not string.find(field, ':', 1, true) then
      local kept, dropped = {}, false
      for entry in string.gmatch(text, '[^\30]+') do
        local name = string.match(entry, '^[^\31]*')
        if #name == 1 and name ~= 'v' then dropped = true else kept[#kept + 1] = entry end
      end
      if dropped then
        redis.call('HSET', key, field, table.concat(kept, '\30'))
        changed = changed + 1
      end
    end
  end
end
return changed
