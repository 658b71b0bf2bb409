-- Append a request's items to a Hail buffer, all or none.
-- KEYS[1]  buffer list
-- KEYS[2]  doorbell list: gets one token when the buffer goes from empty to not
-- KEYS[3]  counter of the bytes waiting in the buffer list
-- ARGV[1]  max_events: refuse when the list already holds this many items
-- ARGV[2]  max_bytes: refuse when the items would take the list past this many bytes
-- ARGV[3..] items (hail/buffer.py says how an event is spelled)
-- Returns the list length after the push, or 0 when refused (nothing appended).
local waiting = redis.call('LLEN', KEYS[1])
if waiting >= tonumber(ARGV[1]) then
  return 0
end
local size = 0
for i = 3, #ARGV do
  size = size + #ARGV[i]
end
local held = 0
if waiting == 0 then
  -- wakes an idle flusher blocked on the doorbell at once (one token is enough)
  redis.call('RPUSH', KEYS[2], 1)
  redis.call('LTRIM', KEYS[2], 0, 0)
else
  held = tonumber(redis.call('GET', KEYS[3]) or '0')
  if held + size > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[3], held + size)
local length = 0
-- unpack() of thousands of values overflows Lua's C stack: push in chunks.
for first = 3, #ARGV, 1000 do
  length = redis.call('RPUSH', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
return length
