"""Capacity scenario: what one event costs each part of a deployment, for the README's model.

The seed workload (bench/common.py) goes the whole way once per repetition: pushed into
a Hail buffer in requests of 100 (as batch ingest pushes it), then claimed, rolled up,
applied and released by one flusher (this process) into a store. Each Redis reports
the CPU its main thread used (`INFO cpu`), and the buffer its memory (`INFO memory`),
before and after each step:

* the buffer Redis: CPU per event pushed, CPU per event claimed and released, and
  bytes per event waiting (what a backlog costs);
* the flusher: CPU per event (decode, rollup, the calls), this process's own time;
* the store: CPU per event applied, on one Redis and summed over the masters of a
  3-master Redis Cluster (the same events: a batch is one call per hash slot there).

Each cost turns into a rate for one core: 1 / (CPU seconds per event). The masters of a
cluster share the events, so a cluster of M masters applies about M times the rate per
master's core, with no other work on those cores (README, Capacity).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from bench.common import PERIODS, Figures, redis_server, workload
from bench.flush import buffered
from hail.flusher import Flusher
from hailwhale.events import Event
from hailwhale.keys import KeySpace
from whale.connect import client as connect
from whale.store import Store

T = TypeVar("T")


def redis_cpu(clients: list[redis.Redis]) -> float:
    """CPU seconds the servers behind `clients` have used, main threads, all told."""
    total = 0.0
    for client in clients:
        cpu = client.info("cpu")
        total += cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    return total


def cost(clients: list[redis.Redis], action: Callable[[], T]) -> tuple[float, float, T]:
    """(Redis CPU seconds, this process's CPU seconds) that `action` took, and its result."""
    redis_before, own_before = redis_cpu(clients), time.process_time()
    result = action()
    return redis_cpu(clients) - redis_before, time.process_time() - own_before, result


def one_pass(buffer_redis: redis.Redis, store: Store, store_nodes: list[redis.Redis],
             events: list[Event], batch: int, now: float, figures: Figures | None,
             where: str) -> None:
    """Push `events`, flush them into `store`; their costs into `figures` (None: warm-up)."""
    memory_before = buffer_redis.info("memory")["used_memory"]
    push_cpu, _, buffer = cost([buffer_redis],
                               lambda: buffered(buffer_redis, events, now, f"capacity-{where}"))
    waiting = buffer_redis.info("memory")["used_memory"] - memory_before
    flusher = Flusher(buffer, store, batch_size=batch)
    store_before = redis_cpu(store_nodes)
    claim_cpu, flusher_cpu, _ = cost([buffer_redis], flusher.flush_all)
    store_cpu = redis_cpu(store_nodes) - store_before
    if figures is None:
        return
    n = len(events)
    if where == "one_redis":
        figures.add("buffer_push_us_per_event", push_cpu / n * 1e6, "buffer Redis CPU µs")
        figures.add("buffer_claim_release_us_per_event", claim_cpu / n * 1e6,
                    "buffer Redis CPU µs")
        figures.add("buffer_bytes_per_waiting_event", waiting / n, "bytes of used_memory")
        figures.add("flusher_cpu_us_per_event", flusher_cpu / n * 1e6, "flusher CPU µs")
        figures.add("flusher_events_per_core_s", n / flusher_cpu, "events per CPU second")
        figures.add("buffer_events_per_core_s", n / (push_cpu + claim_cpu),
                    "events per buffer Redis CPU second (push, claim, release)")
    figures.add(f"store_{where}_us_per_event", store_cpu / n * 1e6, "store Redis CPU µs")
    figures.add(f"store_{where}_events_per_core_s", n / store_cpu,
                "events per store Redis CPU second")


def capacity(repeat: int, events_count: int, batch: int) -> dict:
    """Each part's CPU (and the buffer's memory) per event, on one Redis and on a cluster."""
    from tests.cluster import Cluster

    now = time.time()
    events = workload(events_count, now)
    figures = Figures()
    with redis_server() as buffer_server, redis_server() as store_server, \
            tempfile.TemporaryDirectory() as tmp, Cluster(tmp, persist=False) as cluster:
        buffer_redis = buffer_server.client(timeout=60)
        single = store_server.client(timeout=60)
        spread = connect(cluster.url, socket_timeout=60)
        masters = [cluster.client(i) for i in range(len(cluster.nodes))]
        stores = [("one_redis", Store(single, PERIODS, KeySpace("c"), clock=lambda: now),
                   [single]),
                  ("cluster", Store(spread, PERIODS, KeySpace("c"), clock=lambda: now),
                   masters)]
        for where, store, nodes in stores:  # connections, scripts, slot tags: once
            one_pass(buffer_redis, store, nodes, events[:batch], batch, now, None, where)
        for _ in range(repeat):
            for where, store, nodes in stores:
                buffer_redis.flushall()
                single.flushall()
                cluster.flushall()
                one_pass(buffer_redis, store, nodes, events, batch, now, figures, where)
        figures.add("cluster_store_cpu_ratio",
                    figures.median("store_cluster_us_per_event")
                    / figures.median("store_one_redis_us_per_event"),
                    "cluster masters' CPU per event / one Redis's")
        for client in (buffer_redis, single, spread, *masters):
            client.close()
    return {
        "what": f"{events_count} seed-workload events pushed in requests of 100, then "
                f"flushed in batches of {batch} by one flusher: the CPU each Redis main "
                "thread and the flusher spend per event, and the buffer's memory per "
                "waiting event; the store as one Redis and as a 3-master cluster",
        "figures": figures.report(),
    }
