"""Soak: concurrent clients send random events to two Hail nodes while a reader polls.

Two `hailwhale hail` nodes (each its own buffer Redis and flusher) feed one store;
`hailwhale serve --no-buffer` on that store answers the reader's `/plotpoints`.
Each client keeps a connection to one node and sends a query-string event or a
JSON batch of 1 to 20 at a time, for a fixed time. At the end, once both buffers
are drained, the store's totals must equal the sums of the acknowledged events
exactly (drift 0: amounts are multiples of 1/8, so float sums are exact in any
order), with no 5xx, and the servers' memory must not keep growing.

    .venv/bin/python -m bench.soak [--seconds 60] [--clients 16]

Loopback only; prints one JSON object. tests/test_soak.py runs a short one. The `soak`
scenario of `make bench` is another one: one node, paced at 80% of its maximum rate
(bench/paced_soak.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import Counter

from bench.common import hailwhale, redis_server
from bench.watch import get_json, rss_mb

PERIOD = "1d:1y"  # a window that holds every event sent (they are at most an hour old)
COUNTRIES = {"US": ["CA", "NY", "TX"], "FR": ["IDF", "PACA"], "JP": ["13"], "BR": ["SP", "RJ"]}


class Tally:
    """What the acknowledged events add up to, per client (merged at the end)."""

    def __init__(self) -> None:
        self.events = 0
        self.requests = 0
        self.sums: Counter = Counter()
        self.errors: Counter = Counter()

    def add(self, events: list[dict]) -> None:
        self.requests += 1
        self.events += len(events)
        for event in events:
            country = next(iter(event["dimensions"]["geo"]))
            dollars = event["metrics"]["dollars"]
            for key in ("_", country):
                self.sums[(key, "hits")] += 1
                self.sums[(key, "dollars")] += dollars
                self.sums[(key, "clicks")] += event["metrics"].get("clicks", 0)


def random_event(rng: random.Random, now: float) -> dict:
    country = rng.choice(list(COUNTRIES))
    dimensions: dict = {"geo": {country: rng.choice(COUNTRIES[country])}}
    if rng.random() < 0.5:
        dimensions["site"] = ["site.com", f"page{rng.randint(1, 5)}"]
    metrics: dict = {"dollars": rng.randint(-800, 8000) / 8}
    if rng.random() < 0.5:
        metrics["clicks"] = rng.randint(1, 3)
    if rng.random() < 0.2:
        metrics["visitors"] = {"unique": f"u{rng.randint(1, 500)}"}
    return {"dimensions": dimensions, "metrics": metrics, "at": now - rng.uniform(0, 3600)}


def client(address: str, seed: int, stop: threading.Event, tally: Tally) -> None:
    rng = random.Random(seed)
    connection = http.client.HTTPConnection(address, timeout=30)
    while not stop.is_set():
        now = time.time()
        if rng.random() < 0.7:
            events = [random_event(rng, now)]
            query = urllib.parse.urlencode({k: json.dumps(v) for k, v in events[0].items()})
            request = ("GET", f"/count?{query}", None, {})
        else:
            events = [random_event(rng, now) for _ in range(rng.randint(1, 20))]
            request = ("POST", "/count", json.dumps(events),
                       {"Content-Type": "application/json"})
        try:
            connection.request(*request)
            answer = connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as error:
            tally.errors[type(error).__name__] += 1
            connection.close()
            continue
        if (answer.status, body) == (200, b"OK"):
            tally.add(events)
        else:
            tally.errors[str(answer.status)] += 1


def reader(address: str, stop: threading.Event, figures: dict) -> None:
    connection = http.client.HTTPConnection(address, timeout=30)
    query = urllib.parse.urlencode({"dimensions": "geo", "depth": 1, "period": "15s:3h",
                                    "metrics": json.dumps(["hits", "dollars", "dollars/hits"])})
    while not stop.wait(0.1):
        started = time.perf_counter()
        try:
            connection.request("GET", f"/plotpoints?{query}")
            answer = connection.getresponse()
            json.loads(answer.read())
        except (OSError, http.client.HTTPException, ValueError):
            figures["read_errors"] += 1
            connection.close()
            continue
        figures["reads"] += 1
        figures["read_ms_max"] = max(figures["read_ms_max"],
                                     (time.perf_counter() - started) * 1000)
        if answer.status != 200:
            figures["read_errors"] += 1


def soak(seconds: float = 60, clients: int = 16, seed: int = 1) -> dict:
    """Run the soak; the figures, with `drift` (expected - counted, per total) all 0 if right."""
    with redis_server() as store, redis_server() as buffer_a, redis_server() as buffer_b:
        nodes = [hailwhale("hail", "--redis-url", store.url, "--hail-url", buffer.url,
                           "--flush-interval", "0.2") for buffer in (buffer_a, buffer_b)]
        whale = hailwhale("serve", "--no-buffer", "--redis-url", store.url)
        servers = [*nodes, whale]
        try:
            stop = threading.Event()
            tallies = [Tally() for _ in range(clients)]
            figures = {"reads": 0, "read_errors": 0, "read_ms_max": 0.0}
            addresses = [node.url.removeprefix("http://") for node in nodes]
            threads = [threading.Thread(target=client, args=(addresses[i % 2], seed * 1000 + i,
                                                             stop, tallies[i]))
                       for i in range(clients)]
            threads.append(threading.Thread(target=reader, args=(
                whale.url.removeprefix("http://"), stop, figures)))
            started = time.monotonic()
            for thread in threads:
                thread.start()
            pids = [server.process.pid for server in servers]
            # Memory once warm (a quarter in), then at the end: growth is what a leak shows.
            stop.wait(seconds / 4)
            rss_warm = rss_mb(pids)
            stop.wait(max(0.0, started + seconds - time.monotonic()))
            stop.set()
            for thread in threads:
                thread.join(60)
            elapsed = time.monotonic() - started
            rss_end = rss_mb(pids)

            drain_started = time.monotonic()
            deadline = drain_started + 60
            while any(health["depth"] or health["in_flight"]
                      for _, health in (get_json(f"{node.url}/health") for node in nodes)):
                if time.monotonic() > deadline:
                    raise RuntimeError("the buffers did not drain in 60 s")
                time.sleep(0.05)
            drained_in = time.monotonic() - drain_started

            expected: Counter = Counter()
            errors: Counter = Counter()
            for tally in tallies:
                expected.update(tally.sums)
                errors.update(tally.errors)
            query = urllib.parse.urlencode({"dimensions": "geo", "depth": 1, "threshold": 0,
                                            "limit": 0, "period": PERIOD,
                                            "metrics": json.dumps(["hits", "dollars",
                                                                   "clicks"])})
            counted = get_json(f"{whale.url}/totals?{query}")[1][PERIOD]
            _, overall = get_json(f"{whale.url}/totals?period={PERIOD}&metrics="
                                  + urllib.parse.quote(json.dumps(["hits", "dollars", "clicks"])))
            counted["_"] = overall[PERIOD]["_"]
            drift = {f"{key}.{metric}": value - counted.get(
                         key if key == "_" else json.dumps(["geo", key], separators=(",", ":")),
                         {}).get(metric, 0)
                     for (key, metric), value in sorted(expected.items())}
            events = sum(tally.events for tally in tallies)
            return {
                "seconds": round(elapsed, 1),
                "clients": clients,
                "hail_nodes": len(nodes),
                "events": events,
                "requests": sum(tally.requests for tally in tallies),
                "events_per_s": round(events / elapsed),
                "errors": dict(errors),
                "server_errors_5xx": sum(n for code, n in errors.items() if code.startswith("5")),
                "reads": figures["reads"],
                "read_errors": figures["read_errors"],
                "read_ms_max": round(figures["read_ms_max"], 1),
                "drained_in_s": round(drained_in, 2),
                "totals_checked": len(drift),
                "drift": {name: value for name, value in drift.items() if value},
                "rss_mb_warm": rss_warm,
                "rss_mb_end": rss_end,
                "store_used_memory_mb": round(
                    store.client().info("memory")["used_memory"] / 2**20, 1),
            }
        finally:
            for server in servers:
                server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(soak(args.seconds, args.clients, args.seed), indent=2))


if __name__ == "__main__":
    main()
