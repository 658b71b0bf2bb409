-- Set a whole batch aside as a dead letter (it failed for a reason no retry can fix).
-- KEYS[1]  in-flight sorted set, batch id -> claim time
-- KEYS[2]  the batch's list
-- KEYS[3]  dead-letter hash, id -> JSON
-- KEYS[4]  where the batch's items are kept until a retry or a drop
-- ARGV[1]  batch id
-- ARGV[2]  the dead letter, JSON {"batch", "reason", "at", "items"}
-- Returns 1, or 0 when the batch is no longer in flight (released or set aside already).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[4])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1
