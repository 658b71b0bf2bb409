-- Drop an applied batch; record its dead letters and the flush, exactly once.
-- KEYS[1]  in-flight sorted set, batch id -> claim time
-- KEYS[2]  the batch's list
-- KEYS[3]  dead-letter hash, id -> JSON
-- KEYS[4]  last-flush hash
-- ARGV[1]  batch id
-- ARGV[2]  flush time, ARGV[3] events applied, ARGV[4] seconds taken
--          (ARGV[2] empty: the batch was applied before, leave the last flush alone)
-- ARGV[5..] dead letters of items that are not events: id, JSON {"item", "reason", "at"}
-- Returns 1, or 0 when another flusher released the batch already (then nothing changes).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[2])
for first = 5, #ARGV, 1000 do
  redis.call('HSET', KEYS[3], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[4], 'time', ARGV[2], 'events', ARGV[3], 'seconds', ARGV[4])
end
return 1
