-- wrk script of the soak (bench/soak.py): one numbered event per GET /count, paced,
-- with what each thread's requests came to, for an exactly-once check.
--
--   wrk -t16 -c16 -d60s -s bench/pace.lua URL -- <phase> <requests/s per thread, 0: no pause>
--
-- Run with as many threads as connections: a thread then has one request in flight at
-- a time, so it knows which request each answer is for (wrk's Lua is told the answer,
-- not the connection). Request n of thread t counts the event
--   dimensions {"<phase>": {"t<t>": "k<n % 16>"}}, metrics {"n": n}
-- so each series' hits and n sum say exactly which requests it holds. Per thread and
-- series, the script keeps the acknowledged requests (answered 200 OK) and the
-- requests in doubt: never answered (the connection broke, or the run ended first) or
-- answered 5xx. done() prints one JSON line for bench/soak.py.
--
-- Pacing: request i of a thread is due at start + i / rate (an absolute schedule, so
-- a late answer is caught up after, not lost); delay() waits for it, in whole ms
-- rounded up, as wrk's timers count. The clock is CLOCK_MONOTONIC through LuaJIT's FFI.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } hailwhale_timespec;
int clock_gettime(int clock, hailwhale_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local SERIES = 16
local timespec = ffi.new("hailwhale_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   phase = args[1]
   local rate = tonumber(args[2])
   interval = rate > 0 and 1000 / rate or 0
   n = 0            -- requests made
   pending = nil    -- the request in flight, if any
   started = nil
   acked_hits, acked_n = {}, {}
   for k = 0, SERIES - 1 do acked_hits[k], acked_n[k] = 0, 0 end
   doubt = {}       -- numbers of the requests in doubt
   statuses = {}    -- answers other than 200 OK, by status
   prefix = "/count?dimensions=" .. string.format(
      "%%7B%%22%s%%22%%3A%%7B%%22t%d%%22%%3A%%22k", phase, id)
end

function delay()
   local now = now_ms()
   if not started then started = now end
   local due = started + n * interval
   return due > now and math.ceil(due - now) or 0
end

function request()
   if not started then  -- wrk's check of the script, before any delay(): not sent
      return wrk.format("GET", "/count")
   end
   if pending then table.insert(doubt, pending) end  -- its connection broke
   n = n + 1
   pending = n
   return wrk.format("GET", prefix .. (n % SERIES) .. "%22%7D%7D&metrics=%7B%22n%22%3A"
                     .. n .. "%7D")
end

function response(status, headers, body)
   if status == 200 and body == "OK" then
      local k = pending % SERIES
      acked_hits[k] = acked_hits[k] + 1
      acked_n[k] = acked_n[k] + pending
   else
      statuses[status] = (statuses[status] or 0) + 1
      if status >= 500 then table.insert(doubt, pending) end
   end
   pending = nil
end

local function list(items)
   local out = {}
   for i, item in ipairs(items) do out[i] = string.format("%d", item) end
   return "[" .. table.concat(out, ",") .. "]"
end

local function series(values)
   local out = {}
   for k = 0, SERIES - 1 do out[k + 1] = string.format("%d", values[k]) end
   return "[" .. table.concat(out, ",") .. "]"
end

function done(summary, latency, requests)
   local parts = {}
   for _, thread in ipairs(threads) do
      local doubted = thread:get("doubt")
      local last = thread:get("pending")
      if last then table.insert(doubted, last) end  -- still in flight when the run ended
      local codes = {}
      for status, count in pairs(thread:get("statuses")) do
         table.insert(codes, string.format('"%d":%d', status, count))
      end
      table.insert(parts, string.format(
         '{"thread":%d,"sent":%d,"acked_hits":%s,"acked_n":%s,"doubt":%s,"statuses":{%s}}',
         thread:get("id"), thread:get("n"), series(thread:get("acked_hits")),
         series(thread:get("acked_n")), list(doubted), table.concat(codes, ",")))
   end
   local errors = summary.errors
   local phase = threads[1]:get("phase")  -- set by init(), in the threads' states only
   io.write(string.format(
      'HAILWHALE-PACE {"phase":"%s","seconds":%.3f,"requests":%d,"errors":'
         .. '{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f},"threads":[%s]}\n',
      phase, summary.duration / 1e6, summary.requests, errors.connect, errors.read,
      errors.write, errors.status, errors.timeout, latency:percentile(50) / 1000,
      latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      table.concat(parts, ",")))
end
