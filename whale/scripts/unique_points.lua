-- The distinct ids of each bucket of one unique series over a window (whale/reads.py): one
-- call instead of one PFCOUNT per bucket.
-- KEYS[1..n] the HyperLogLogs of the series' buckets, oldest first (one slot)
-- Returns the PFCOUNT of each, 0 where a bucket counted nothing.
local counts = {}
for k = 1, #KEYS do
  counts[k] = redis.call('PFCOUNT', KEYS[k])
end
return counts
