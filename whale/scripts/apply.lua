-- Apply the writes that count a rollup (built by whale/store.py), at most once per marker.
-- The rollup itself is computed in Python (whale/rollup.py); this script only runs its ops,
-- so that a count is one round trip and one command to parse, however many keys it touches.
-- KEYS[1]    the batch marker when ARGV[1] > 0: if it exists, nothing is written
-- KEYS[...]  then one key per op, in the order of the ops (a key repeats for each op on it)
-- ARGV[1]    the marker's time to live in seconds; 0 for no marker (KEYS[1] is then an op's)
-- ARGV[2]    the marker's value (the events of the batch)
-- ARGV[3..]  sections, each a command, its arity n and its op count c, then c ops of n
--            arguments; op j of the script runs `command KEYS[j] arguments...`
-- Returns 1 when the writes were made, 0 when the marker existed (nothing was written).
local ttl = tonumber(ARGV[1])
local k = 1
if ttl > 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
  end
  k = 2
end
local i = 3
while i <= #ARGV do
  local command, arity, count = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  for _ = 1, count do
    redis.call(command, KEYS[k], unpack(ARGV, i, i + arity - 1))
    k = k + 1
    i = i + arity
  end
end
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
end
return 1
