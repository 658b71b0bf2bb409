"""Flusher throughput: batches pre-aggregated (one rollup per 5000 events) vs one per event.

Workload: 3-level nested dimensions `{country: {region: city}}` over 50 cities
(5 countries x 2 regions x 5 cities) drawn with a Zipf-like skew, 2 metrics
(`dollars`, `clicks`, plus the implicit `hits`), the 3 default periods, events of
the last 2 seconds (a live stream). Starts its own redis-server on a unix socket,
bounds each measurement, prints one JSON object.

    .venv/bin/python bench/flush.py [--events 50000] [--batch 5000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hail.buffer import Buffer  # noqa: E402
from hail.flusher import Flusher  # noqa: E402
from hailwhale.config import Limits  # noqa: E402
from hailwhale.embedded import RedisServer  # noqa: E402
from hailwhale.events import Event, parse_event  # noqa: E402
from hailwhale.keys import KeySpace  # noqa: E402
from hailwhale.periods import DEFAULT_PERIODS, Periods  # noqa: E402
from whale.store import Series, Store  # noqa: E402

PERIODS = Periods.parse(DEFAULT_PERIODS)
CITIES = [(f"c{c}", f"r{c}{r}", f"city{c}{r}{i}") for c in range(5) for r in range(2)
          for i in range(5)]


def workload(n: int, now: float, seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    weights = [1 / rank ** 1.1 for rank in range(1, len(CITIES) + 1)]
    events = []
    for country, region, city in rng.choices(CITIES, weights, k=n):
        params = {"dimensions": {country: {region: city}},
                  "metrics": {"dollars": rng.randint(1, 4000) / 4, "clicks": 1},
                  "at": now - rng.uniform(0, 2)}
        events.append(parse_event(params, periods=PERIODS, limits=Limits(), now=now,
                                  encoded=False))
    return events


def overall_hits(store: Store, now: float) -> float:
    [[hits]] = store.points([Series((), (), "hits")], 86400, [int(now) // 86400 * 86400])
    return hits


def batched(redis, events: list[Event], batch: int, now: float) -> dict:
    buffer = Buffer(redis, KeySpace("bench"), max_events=len(events) + 1)
    started = time.perf_counter()
    for first in range(0, len(events), 100):  # requests of 100 events
        buffer.push(events[first:first + 100], now)
    pushed = time.perf_counter() - started
    store = Store(redis, PERIODS, KeySpace("batched"), clock=lambda: now)
    started = time.perf_counter()
    applied = Flusher(buffer, store, batch_size=batch).flush_all()
    seconds = time.perf_counter() - started
    writes = store.roller.rollup(events[:batch], now)
    return {"events": applied, "seconds": round(seconds, 3),
            "events_per_s": round(applied / seconds),
            "push_events_per_s": round(len(events) / pushed),
            "sum_increments_per_batch": len(writes.sums),
            "overall_hits_counted": overall_hits(store, now)}


def per_event(redis, events: list[Event], seconds: float, now: float) -> dict:
    store = Store(redis, PERIODS, KeySpace("per_event"), clock=lambda: now)
    done, deadline = 0, time.monotonic() + seconds
    started = time.perf_counter()
    for event in events:
        store.apply(store.roller.rollup([event], now))
        done += 1
        if done % 100 == 0 and time.monotonic() > deadline:
            break
    elapsed = time.perf_counter() - started
    return {"events": done, "seconds": round(elapsed, 3), "events_per_s": round(done / elapsed),
            "sum_increments_per_event": len(store.roller.rollup(events[:1], now).sums)}


def flusher_batch_of_one(redis, events: list[Event], seconds: float, now: float) -> dict:
    buffer = Buffer(redis, KeySpace("bench1"), max_events=len(events) + 1)
    buffer.push(events, now)
    flusher = Flusher(buffer, Store(redis, PERIODS, KeySpace("one"), clock=lambda: now), 1)
    done, deadline = 0, time.monotonic() + seconds
    started = time.perf_counter()
    while time.monotonic() < deadline and flusher.flush_once():
        done += 1
    elapsed = time.perf_counter() - started
    return {"events": done, "seconds": round(elapsed, 3), "events_per_s": round(done / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10, help="cap per per-event run")
    args = parser.parse_args()
    now = time.time()
    events = workload(args.events, now)
    with tempfile.TemporaryDirectory() as tmp, RedisServer(tmp, persist=False) as server:
        redis = server.client(timeout=30)
        report = {
            "cores": os.cpu_count(),
            "workload": {"events": len(events), "dimension_values": 5 + 10 + 50,
                         "depth": 3, "metrics": ["dollars", "clicks", "hits"],
                         "periods": PERIODS.names},
            "flusher_batched": batched(redis, events, args.batch, now),
            "one_rollup_and_pipeline_per_event": per_event(redis, events, args.seconds, now),
            "flusher_batch_of_one": flusher_batch_of_one(redis, events, args.seconds / 2, now),
        }
        redis.close()
    batched_rate = report["flusher_batched"]["events_per_s"]
    report["speedup"] = round(batched_rate / report["one_rollup_and_pipeline_per_event"]
                              ["events_per_s"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
