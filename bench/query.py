"""Query scenario: `/plotpoints` and `/totals` latency for a depth-1 graph of 50 children.

Seeds 3 hours of data: every 15 s bucket of the `15s:3h` window has events for each
of 50 children of `shop` (720 buckets x 50 children), then asks, one request at a
time (wrk -c1), for the graph of `shop` and its 50 children over that window (51
series of 720 points) and for the totals of the same over every configured period.
"""

from __future__ import annotations

import random
import time
import urllib.parse

from bench.common import PERIODS, Figures, hailwhale, redis_server, wrk
from hailwhale.config import Limits
from hailwhale.events import parse_event
from hailwhale.keys import KeySpace
from whale.store import Store

CHILDREN = 50
QUERY = {"dimensions": "shop", "metrics": "dollars", "depth": 1, "limit": CHILDREN,
         "threshold": 0}


def seed(redis, now: float) -> int:
    """One event per child per 15 s bucket of the last 3 hours; the events written."""
    rng = random.Random(5)
    store = Store(redis, PERIODS, KeySpace(), clock=lambda: now)
    window = PERIODS.find("15s:3h").window(now)
    written = 0
    for first in range(0, len(window), 60):
        events = [
            parse_event({"dimensions": {"shop": f"p{child}"},
                         "metrics": {"dollars": rng.randint(1, 400) / 4},
                         "at": min(now, bucket + rng.uniform(0, 15))},
                        periods=PERIODS, limits=Limits(), now=now, encoded=False)
            for bucket in window[first:first + 60] for child in range(CHILDREN)
        ]
        store.apply(store.roller.rollup(events, now))
        written += len(events)
    return written


def query(repeat: int, seconds: float) -> dict:
    figures = Figures()
    with redis_server() as redis:
        client = redis.client(timeout=60)
        events = seed(client, time.time())
        client.close()
        plot = urllib.parse.urlencode({**QUERY, "period": "15s:3h"})
        totals = urllib.parse.urlencode(QUERY)
        with hailwhale("serve", "--no-buffer", "--redis-url", redis.url) as whale:
            for _ in range(repeat):
                for name, path in (("plotpoints", f"/plotpoints?{plot}"),
                                   ("totals", f"/totals?{totals}")):
                    result = wrk(whale.url + path, seconds, connections=1, threads=1)
                    figures.add(f"{name}_p50_ms", result["p50_ms"], "ms")
                    figures.add(f"{name}_p99_ms", result["p99_ms"], "ms")
                    figures.add(f"{name}_requests_per_s", result["requests_per_s"],
                                "requests/s")
    return {
        "what": f"one request at a time (wrk -t1 -c1 -d{seconds}s): GET /plotpoints of `shop` "
                f"and its {CHILDREN} children over 15s:3h (51 series x 720 points), and GET "
                f"/totals of the same over {','.join(PERIODS.names)}; {events} events seeded",
        "figures": figures.report(),
        "targets": [{"figure": "plotpoints_p50_ms", "below": 50},
                    {"figure": "totals_p50_ms", "below": 50}],
    }
