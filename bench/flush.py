"""Flush scenarios: one flusher vs one write per event, vs the yardstick, and on a cluster.

Workload (bench/common.py): 3-level nested dimensions over 50 cities drawn with a
Zipf-like skew, `dollars` and `clicks` plus the implicit `hits`, the 3 default
periods, events of the last 2 seconds (a live stream). Events are pushed into a
Hail buffer as requests of 100 (not timed), then one flusher (this process, one
core; Redis has the other) claims, decodes, rolls up and applies them in batches.
The baseline applies the same events one rollup and one write per event.
"""

from __future__ import annotations

import tempfile
import time

from bench.common import PERIODS, Figures, bare, redis_server, workload, wrk
from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale.events import Event
from hailwhale.keys import KeySpace
from whale.connect import client as connect
from whale.store import Store


def buffered(buffer_redis, events: list[Event], now: float, name: str) -> Buffer:
    """A Hail buffer `name` holding `events`, pushed in requests of 100 as batch ingest sends."""
    buffer = Buffer(buffer_redis, KeySpace("bench"), max_events=len(events) + 1, name=name)
    for first in range(0, len(events), 100):
        buffer.push(events[first:first + 100], now)
    return buffer


def flusher_rate(buffer_redis, store_redis, events: list[Event], batch: int, now: float,
                 name: str = "hail") -> tuple[float, float]:
    """Events/s (wall clock) and events per CPU second of one flusher draining `events`."""
    buffer = buffered(buffer_redis, events, now, name)
    flusher = Flusher(buffer, Store(store_redis, PERIODS, KeySpace("flushed"),
                                    clock=lambda: now), batch_size=batch)
    wall, cpu = time.perf_counter(), time.process_time()
    applied = flusher.flush_all()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert applied == len(events), (applied, len(events))
    return applied / wall, applied / cpu


def per_event_rate(store_redis, events: list[Event], seconds: float, now: float) -> float:
    """Events/s applying one event at a time: its own rollup and write (one round trip)."""
    store = Store(store_redis, PERIODS, KeySpace("per_event"), clock=lambda: now)
    done, deadline = 0, time.monotonic() + seconds
    started = time.perf_counter()
    for event in events:
        store.apply(store.roller.rollup([event], now))
        done += 1
        if done % 50 == 0 and time.monotonic() > deadline:
            break
    return done / (time.perf_counter() - started)


def flush(repeat: int, events_count: int, batch: int, seconds: float,
          connections: int = 32) -> dict:
    """The flusher (batched) vs one write per event, on one Redis; and vs the yardstick."""
    now = time.time()
    events = workload(events_count, now)
    figures = Figures()
    with redis_server() as server, bare() as baseline:
        redis = server.client(timeout=60)
        flusher_rate(redis, redis, events[:batch], batch, now, name="warm-up")
        for _ in range(repeat):
            # the yardstick of issue 15 (bench/bare.py), measured in the same repetition
            bare_rate = wrk(f"{baseline.url}/count", seconds, connections)["requests_per_s"]
            figures.add("bare_requests_per_s", bare_rate, "requests/s")
            redis.flushall()
            rate, cpu_rate = flusher_rate(redis, redis, events, batch, now)
            figures.add("flusher_events_per_s", rate, "events/s")
            figures.add("flusher_events_per_cpu_s", cpu_rate, "events per flusher CPU second")
            figures.add("events_per_bare_request", rate / bare_rate,
                        "flusher events/s per bare request/s")
            redis.flushall()
            single = per_event_rate(redis, events, seconds, now)
            figures.add("per_event_events_per_s", single, "events/s")
            figures.add("ratio", rate / single, "flusher / per event")
        redis.close()
    return {
        "what": f"one flusher applying {events_count} seed-workload events in batches of "
                f"{batch} (claim, decode, roll up, apply once, release) vs one rollup and "
                "one write per event, same Redis; and vs the bare endpoint's requests/s "
                f"(wrk -t2 -c{connections}, the same repetition)",
        "figures": figures.report(),
        "targets": [{"figure": "ratio", "at_least": 8},
                    {"figure": "events_per_bare_request", "at_least": 17}],
    }


def flush_cluster(repeat: int, events_count: int, batch: int) -> dict:
    """The same flush into a 3-master Redis Cluster vs into one Redis."""
    from tests.cluster import Cluster

    now = time.time()
    events = workload(events_count, now)
    figures = Figures()
    with redis_server() as server, tempfile.TemporaryDirectory() as tmp, \
            Cluster(tmp, persist=False) as cluster:
        redis = server.client(timeout=60)
        store = connect(cluster.url, socket_timeout=60)
        for target in (redis, store):  # connections, scripts, the slot-tag table: once per process
            flusher_rate(redis, target, events[:batch], batch, now, name="warm-up")
        for _ in range(repeat):
            redis.flushall()
            single, _ = flusher_rate(redis, redis, events, batch, now)
            figures.add("one_redis_events_per_s", single, "events/s")
            redis.flushall()
            cluster.flushall()
            spread, _ = flusher_rate(redis, store, events, batch, now)
            figures.add("cluster_events_per_s", spread, "events/s")
            figures.add("ratio", spread / single, "cluster / one Redis")
        store.close()
        redis.close()
    return {
        "what": f"the flush above ({events_count} events, batches of {batch}, the buffer on "
                "one Redis) into a 3-master Redis Cluster vs into one Redis: one apply.lua "
                "call per hash slot, pipelined per node",
        "figures": figures.report(),
    }
