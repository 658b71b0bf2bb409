-- Apply one piece of the writes that count a rollup (built by whale/writes.py), all or
-- nothing, at most once per marker.
-- The rollup is computed in Python (whale/rollup.py); this script only runs its ops, so a
-- count is one round trip and one command to parse, however many keys it touches.
-- KEYS[1..g]  guard keys (g = ARGV[2]): if any exists, nothing is written; KEYS[1] is the
--             marker, set with the writes (for ARGV[1] seconds) when ARGV[1] > 0
-- KEYS[g+1..] then one key per op, in the order of the ops (a key repeats for each op on it)
-- ARGV[1]    the marker's time to live in seconds; 0 for no marker
-- ARGV[2]    g, the number of guard keys
-- ARGV[3]    the marker's value (the events of the batch)
-- ARGV[4]    'write', or 'check' to only check (guards ignored, nothing written)
-- ARGV[5..]  sections, each a command, its arity n and its op count c, then c ops of n
--            arguments; op j of the script runs `command KEYS[j] arguments...`
-- Returns 1 when the writes were made (or, for 'check', would succeed), 0 when a guard key
-- existed (nothing was written). Every op is checked before the first write: a key of the
-- wrong type, or a stored sum that is not a finite number, is an error reply starting
-- with HWPOISON and nothing is written (Redis never rolls a script back: check first).
local ttl, guards, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
if mode == 'write' then
  for g = 1, guards do
    if redis.call('EXISTS', KEYS[g]) == 1 then
      return 0
    end
  end
end

local wanted = {HINCRBYFLOAT = 'hash', HSETNX = 'hash', ZADD = 'zset'}
local exists = {}  -- key -> whether it held anything before this script
local function problem(command, key, i)
  if exists[key] == nil then
    local found = redis.call('TYPE', key)['ok']
    local want = wanted[command]
    if want and found ~= 'none' and found ~= want then
      return key .. ' is a ' .. found .. ', not a ' .. want
    end
    if command == 'PFADD' and found ~= 'none' then
      -- refused by anything but a HyperLogLog, and writes nothing
      local answer = redis.pcall('PFCOUNT', key)
      if type(answer) == 'table' and answer['err'] then
        return key .. ' is not a HyperLogLog'
      end
    end
    exists[key] = found ~= 'none'
  end
  if command == 'HINCRBYFLOAT' and exists[key] then
    local stored = redis.call('HGET', key, ARGV[i])
    if stored then
      local sum = tonumber(stored)
      if sum == nil or sum ~= sum then
        return key .. ' field ' .. ARGV[i] .. ' holds ' .. stored .. ', not a number'
      end
      sum = sum + tonumber(ARGV[i + 1])
      if sum == math.huge or sum == -math.huge then
        return key .. ' field ' .. ARGV[i] .. ' would overflow'
      end
    end
  end
  return nil
end

local function each_op(run)
  local k, i = guards + 1, 5
  while i <= #ARGV do
    local command, arity, count = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    i = i + 3
    for _ = 1, count do
      local found = run(command, KEYS[k], i, arity)
      if found then
        return found
      end
      k = k + 1
      i = i + arity
    end
  end
  return nil
end

local found = each_op(problem)
if found then
  return redis.error_reply('HWPOISON ' .. found)
end
if mode ~= 'write' then
  return 1
end
each_op(function(command, key, i, arity)
  redis.call(command, key, unpack(ARGV, i, i + arity - 1))
  return nil
end)
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ttl)
end
return 1
