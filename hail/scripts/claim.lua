-- Move up to N items from the head of a Hail buffer into a new in-flight batch.
-- KEYS[1]  buffer list
-- KEYS[2]  the batch's list (must not exist yet)
-- KEYS[3]  in-flight sorted set, batch id -> claim time
-- ARGV[1]  N, the most items to claim
-- ARGV[2]  batch id
-- ARGV[3]  claim time (epoch seconds)
-- Returns the items claimed, oldest first (empty: nothing buffered, nothing recorded).
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then
  return items
end
for first = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, first, math.min(first + 999, #items)))
end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return items
