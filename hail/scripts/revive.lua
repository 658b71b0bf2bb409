-- Put a batch set aside (bury.lua) back in flight, under its own id, for any flusher to
-- finish: its markers in the store make the retry apply each piece exactly once.
-- KEYS[1]  in-flight sorted set, batch id -> claim time
-- KEYS[2]  the batch's list
-- KEYS[3]  dead-letter hash, id -> JSON
-- KEYS[4]  where the batch's items were kept
-- ARGV[1]  batch id
-- Returns 1, or 0 when there is no such dead batch.
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 or redis.call('EXISTS', KEYS[4]) == 0 then
  return 0
end
redis.call('RENAME', KEYS[4], KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
-- claimed at time 0: every flusher resumes it at its next look at stale batches
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
