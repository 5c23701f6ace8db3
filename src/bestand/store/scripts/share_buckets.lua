-- Move what layouts 5 to 9 kept in buckets of their own into the buckets they share now
-- (layout 10, keys.py): a person's short explain log, its redirect and the persons it absorbed
-- become fields of its facts bucket, an identifier's meetings a field of its graph bucket,
-- each field's name marked. Safe to run again: a bucket moved is gone.
-- KEYS: pairs of a bucket to move and the bucket it moves into (the same name under another
--   prefix)
-- ARGV: the mark its fields get
-- Returns how many fields moved.
local mark = ARGV[1]
local RUN = 500 -- fields of one HSET (unpack's limit)
local moved = 0
for i = 1, #KEYS, 2 do
  local flat = redis.call('HGETALL', KEYS[i])
  local fields = {}
  for j = 1, #flat, 2 do
    fields[#fields + 1] = mark .. flat[j]
    fields[#fields + 1] = flat[j + 1]
  end
  for first = 1, #fields, 2 * RUN do
    redis.call('HSET', KEYS[i + 1], unpack(fields, first, math.min(first + 2 * RUN - 1, #fields)))
  end
  moved = moved + #flat / 2
  redis.call('DEL', KEYS[i])
end
return moved
