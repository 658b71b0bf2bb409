"""Query scenario: read latency of a depth-1 graph of 50 children, against the yardstick.

Seeds 3 hours of data: every 15 s bucket of the `15s:3h` window has events for each
of 50 children of `shop` (720 buckets x 50 children), each with `dollars` (a sum) and
`visitors` (a unique id), then asks, one request at a time (wrk -c1):

* `plotpoints_top10`: the graph of `shop` and its top 10 children by dollars (the
  default limit; all 50 ranked, threshold 0): 11 series of 720 points;
* `plotpoints`: the same with all 50 children shown (51 series of 720 points);
* `totals`: the totals of the same 51 over every configured period;
* `unique_top10`: `plotpoints_top10` of `visitors` (a HyperLogLog per bucket), ranked
  by it: 50 unions of 720 HyperLogLogs, then 11 x 720 counts;
* `unique_by_dollars_top10`: the same graph ranked by dollars (`sort=dollars`): what
  drawing unique series costs, apart from ranking by them.

Meanwhile every child is counted 10 times a second (`LIVE_WRITES`), as a dashboard's
graph is read while its events arrive: the newest chunk of every series changes
between two requests, so reads that keep what they read of unchanged chunks
(whale/reads.py) still read those.

The absolute targets (issue 15) are for a machine whose yardstick, the bare Bottle
endpoint on HailWhale's server stack (bench/bare.py, wrk -t2 -c32), serves 18,000
requests/s; each run measures the yardstick too, and `*_p50_ms_at_yardstick` is a
latency scaled to that machine (p50 x yardstick requests/s / 18,000).
"""

from __future__ import annotations

import random
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

from bench.common import PERIODS, Figures, bare, hailwhale, redis_server, wrk
from hailwhale.config import Limits
from hailwhale.events import parse_event
from hailwhale.keys import KeySpace
from whale.store import Store

CHILDREN = 50
LIVE_WRITES = 10  # counts of every child a second while the requests run
YARDSTICK = 18_000  # requests/s of the bare endpoint on the machine the targets are for
QUERY = {"dimensions": "shop", "metrics": "dollars", "depth": 1, "limit": CHILDREN,
         "threshold": 0}
TOP10 = {"dimensions": "shop", "metrics": "dollars", "depth": 1, "threshold": 0,
         "period": "15s:3h"}
REQUESTS = {
    "plotpoints_top10": ("/plotpoints", TOP10),
    "plotpoints": ("/plotpoints", {**QUERY, "period": "15s:3h"}),
    "totals": ("/totals", QUERY),
    "unique_top10": ("/plotpoints", {**TOP10, "metrics": "visitors"}),
    "unique_by_dollars_top10": ("/plotpoints", {**TOP10, "metrics": "visitors",
                                                "sort": "dollars"}),
}


def event(rng: random.Random, child: int, at: float, now: float):
    return parse_event({"dimensions": {"shop": f"p{child}"},
                        "metrics": {"dollars": rng.randint(1, 400) / 4,
                                    "visitors": {"unique": f"u{rng.randint(0, 999)}"}},
                        "at": at}, periods=PERIODS, limits=Limits(), now=now, encoded=False)


def seed(redis, now: float) -> int:
    """One event per child per 15 s bucket of the last 3 hours; the events written."""
    rng = random.Random(5)
    store = Store(redis, PERIODS, KeySpace(), clock=lambda: now)
    window = PERIODS.find("15s:3h").window(now)
    written = 0
    for first in range(0, len(window), 60):
        events = [event(rng, child, min(now, bucket + rng.uniform(0, 15)), now)
                  for bucket in window[first:first + 60] for child in range(CHILDREN)]
        store.apply(store.roller.rollup(events, now))
        written += len(events)
    return written


@contextmanager
def live_writes(redis) -> Iterator[None]:
    """Every child counted LIVE_WRITES times a second, now, until the block ends."""
    stop = threading.Event()

    def write() -> None:
        rng = random.Random(6)
        store = Store(redis, PERIODS, KeySpace())
        while not stop.wait(1 / LIVE_WRITES):
            now = time.time()
            store.count([event(rng, child, now, now) for child in range(CHILDREN)])

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()


def query(repeat: int, seconds: float) -> dict:
    figures = Figures()
    with redis_server() as redis:
        client = redis.client(timeout=60)
        events = seed(client, time.time())
        with bare() as baseline, live_writes(client), \
                hailwhale("serve", "--no-buffer", "--redis-url", redis.url) as whale:
            for _ in range(repeat):
                yardstick = wrk(f"{baseline.url}/count", seconds, connections=32)
                rate = figures.add("bare_requests_per_s", yardstick["requests_per_s"],
                                   "requests/s")
                for name, (path, params) in REQUESTS.items():
                    url = f"{whale.url}{path}?{urllib.parse.urlencode(params)}"
                    result = wrk(url, seconds, connections=1, threads=1)
                    figures.add(f"{name}_p50_ms", result["p50_ms"], "ms")
                    figures.add(f"{name}_p99_ms", result["p99_ms"], "ms")
                    figures.add(f"{name}_requests_per_s", result["requests_per_s"],
                                "requests/s")
                    figures.add(f"{name}_p50_ms_at_yardstick",
                                result["p50_ms"] * rate / YARDSTICK, "ms")
                    if result["non_2xx"] or result["socket_errors"]:
                        figures.add(f"{name}_errors", result["non_2xx"], "responses")
                top10 = figures.values["plotpoints_top10_p50_ms"][-1]
                for name, unique in (("unique_vs_sum", "unique_top10"),
                                     ("unique_drawn_vs_sum", "unique_by_dollars_top10")):
                    figures.add(name, figures.values[f"{unique}_p50_ms"][-1] / top10, "x")
        client.close()
    return {
        "what": f"one request at a time (wrk -t1 -c1 -d{seconds}s), over 15s:3h unless "
                f"said: GET /plotpoints of `shop` and its top 10 of {CHILDREN} children "
                f"(11 series x 720 points; all ranked), the same with all {CHILDREN} shown "
                f"(51 x 720), GET /totals of the 51 over {','.join(PERIODS.names)}, and the "
                f"top-10 graph of a unique metric, ranked by it and by dollars; {events} "
                f"events seeded, every child counted {LIVE_WRITES} times a second meanwhile; "
                f"the yardstick, "
                f"the bare endpoint (wrk -t2 -c32), in the same run; *_at_yardstick: p50 "
                f"scaled to a yardstick of {YARDSTICK:,} requests/s",
        "figures": figures.report(),
        "targets": [{"figure": "plotpoints_top10_p50_ms_at_yardstick", "below": 5},
                    {"figure": "plotpoints_p50_ms_at_yardstick", "below": 15},
                    {"figure": "totals_p50_ms_at_yardstick", "below": 5},
                    {"figure": "unique_vs_sum", "below": 2}],
    }
