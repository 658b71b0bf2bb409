-- Move up to N items (and about B bytes) from the head of a Hail buffer into a new batch.
-- KEYS[1]  buffer list
-- KEYS[2]  the batch's list (must not exist yet)
-- KEYS[3]  in-flight sorted set, batch id -> claim time
-- KEYS[4]  counter of the bytes waiting in the buffer list
-- ARGV[1]  N, the most items to claim
-- ARGV[2]  batch id
-- ARGV[3]  claim time (epoch seconds)
-- ARGV[4]  B: stop before the item that takes the batch past B bytes (one item at least)
-- Returns the items claimed, oldest first (empty: nothing buffered, nothing recorded).
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then
  return items
end
local limit, size, taken = tonumber(ARGV[4]), 0, 0
for i = 1, #items do
  if i > 1 and size + #items[i] > limit then
    break
  end
  size = size + #items[i]
  taken = i
end
for i = #items, taken + 1, -1 do
  items[i] = nil
end
for first = 1, taken, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, first, math.min(first + 999, taken)))
end
redis.call('LTRIM', KEYS[1], taken, -1)
local held = tonumber(redis.call('GET', KEYS[4]) or '0') - size
redis.call('SET', KEYS[4], math.max(held, 0))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return items
