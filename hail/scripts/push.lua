-- Append requests' items to a Hail buffer: each request all or none, in order, each only
-- if the buffer has room when its turn comes (a group commit brings several in one call).
-- KEYS[1]  buffer list
-- KEYS[2]  doorbell list: gets one token when the buffer goes from empty to not
-- KEYS[3]  counter of the bytes waiting in the buffer list
-- ARGV[1]  max_events: a request is refused when the list already holds this many items
-- ARGV[2]  max_bytes: a request is refused when its items would take the list past this
--          many bytes (unless the list is empty: one request larger than that still goes)
-- ARGV[3]  n, the number of requests; ARGV[4..3+n] each request's number of items
-- ARGV[4+n..] the items, request after request (hail/items.py says how an event is spelled)
-- Returns how many requests were taken: the first ones; from the first refused on, every
-- request is refused, and a refused request appends nothing.
local max_events, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local requests = tonumber(ARGV[3])
local first = 4 + requests
local waiting = redis.call('LLEN', KEYS[1])
local was_empty = waiting == 0
local held = 0
if not was_empty then
  held = tonumber(redis.call('GET', KEYS[3]) or '0')
end
local taken, last = 0, first - 1
for r = 1, requests do
  if waiting >= max_events then
    break
  end
  local count = tonumber(ARGV[3 + r])
  local size = 0
  for i = last + 1, last + count do
    size = size + #ARGV[i]
  end
  if waiting > 0 and held + size > max_bytes then
    break
  end
  waiting, held, last, taken = waiting + count, held + size, last + count, r
end
if taken == 0 then
  return 0
end
if was_empty then
  -- wakes an idle flusher blocked on the doorbell at once (one token is enough)
  redis.call('RPUSH', KEYS[2], 1)
  redis.call('LTRIM', KEYS[2], 0, 0)
end
redis.call('SET', KEYS[3], held)
-- unpack() of thousands of values overflows Lua's C stack: push in chunks.
for from = first, last, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, from, math.min(from + 999, last)))
end
return taken
