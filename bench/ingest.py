"""HTTP scenarios under wrk: ingest (Hail's and Whale's `/count`), batch ingest, direct count
(`/count_now`).

Each repetition measures the subject and the yardstick of issue 15 one after the other
in the same run, so their ratio holds on a noisy machine: a bare Bottle endpoint on
gunicorn + gevent, 2 workers (bench/bare.py), the stack HailWhale served with before.
Hail and Whale run without a flusher here (the flush scenario measures that apart);
their buffer is emptied between runs.
"""

from __future__ import annotations

import json
import random
import tempfile
import urllib.parse

from bench.common import (
    Figures,
    Process,
    bare,
    event_params,
    hailwhale,
    post_script,
    redis_server,
    wrk,
)

# One event of the seed workload, as a query string (what a browser beacon sends).
EVENT_QUERY = urllib.parse.urlencode({
    "dimensions": json.dumps({"c0": {"r00": "city000"}}, separators=(",", ":")),
    "metrics": json.dumps({"dollars": 12.5, "clicks": 1}, separators=(",", ":")),
})
BATCH = 100


def _measure(figures: Figures, name: str, url: str, seconds: float, connections: int,
             script: str | None = None) -> dict:
    result = wrk(url, seconds, connections, script=script)
    figures.add(f"{name}_requests_per_s", result["requests_per_s"], "requests/s")
    figures.add(f"{name}_p50_ms", result["p50_ms"], "ms")
    figures.add(f"{name}_p99_ms", result["p99_ms"], "ms")
    figures.add(f"{name}_p99_per_p50", result["p99_ms"] / max(result["p50_ms"], 0.001),
                "p99 / p50")
    if result["non_2xx"] or result["socket_errors"]:
        figures.add(f"{name}_errors", result["non_2xx"], "responses")
    return result


def ingest_and_direct(repeat: int, seconds: float, connections: int) -> dict:
    """Hail's and Whale's `/count`, Hail batch POSTs and Whale's `/count_now`, each against
    the bare endpoint."""
    ingest, batch, direct = Figures(), Figures(), Figures()
    rng = random.Random(3)
    body = json.dumps([event_params(rng) for _ in range(BATCH)], separators=(",", ":"))
    with redis_server() as redis, tempfile.TemporaryDirectory() as tmp, bare() as baseline, \
            hailwhale("hail", "--redis-url", redis.url, "--no-flusher",
                      "--buffer-max", "100000000") as hail, \
            hailwhale("serve", "--redis-url", redis.url, "--no-flusher",
                      "--buffer-max", "100000000") as whale:
        script = post_script(body, tmp)
        client = redis.client(timeout=30)
        for _ in range(repeat):
            bare_rate = _measure(ingest, "bare", f"{baseline.url}/count", seconds,
                                 connections)["requests_per_s"]
            hail_rate = _measure(ingest, "hail", f"{hail.url}/count?{EVENT_QUERY}", seconds,
                                 connections)["requests_per_s"]
            ingest.add("ratio", hail_rate / bare_rate, "hail / bare")
            whale_rate = _measure(ingest, "whale", f"{whale.url}/count?{EVENT_QUERY}", seconds,
                                  connections)["requests_per_s"]
            ingest.add("whale_ratio", whale_rate / bare_rate, "whale / bare")
            # One keep-alive connection: a Nagle / delayed-ACK stall would show as ~40 ms.
            for name, url in (("bare", f"{baseline.url}/count"),
                              ("hail", f"{hail.url}/count?{EVENT_QUERY}"),
                              ("whale", f"{whale.url}/count?{EVENT_QUERY}")):
                one = wrk(url, min(seconds, 2), connections=1, threads=1)
                ingest.add(f"{name}_one_connection_p50_ms", one["p50_ms"], "ms")
            client.flushall()

            rate = _measure(batch, "batch", f"{hail.url}/count", seconds, connections,
                            script)["requests_per_s"]
            batch.add("events_per_s", rate * BATCH, "events/s")
            # the yardstick of issue 15: the bare endpoint's requests/s of this repetition
            batch.add("bare_requests_per_s", bare_rate, "requests/s")
            batch.add("events_per_bare_request", rate * BATCH / bare_rate,
                      "events/s per bare request/s")
            client.flushall()

            bare_rate = _measure(direct, "bare", f"{baseline.url}/count", seconds,
                                 connections)["requests_per_s"]
            whale_rate = _measure(direct, "count_now", f"{whale.url}/count_now?{EVENT_QUERY}",
                                  seconds, connections)["requests_per_s"]
            direct.add("ratio", whale_rate / bare_rate, "count_now / bare")
            direct.add("events_per_s", whale_rate, "events/s")
            client.flushall()
        client.close()
    return {
        "ingest": {
            "what": "GET /count on Hail and on Whale (`hailwhale serve`, buffered; one event "
                    "in the query string) vs the yardstick: a bare Bottle endpoint answering "
                    "OK on gunicorn + gevent, one worker per core (HailWhale serves with "
                    f"granian), wrk -t2 -c{connections} -d{seconds}s",
            "figures": ingest.report(),
            "targets": [{"figure": "ratio", "at_least": 1.5},
                        {"figure": "whale_ratio", "at_least": 1.5},
                        {"figure": "hail_p99_per_p50", "below": 4},
                        {"figure": "whale_p99_per_p50", "below": 4}],
        },
        "batch_ingest": {
            "what": f"POST /count on Hail, a JSON array of {BATCH} seed-workload events "
                    f"per request, wrk -t2 -c{connections} -d{seconds}s",
            "figures": batch.report(),
            "targets": [{"figure": "events_per_bare_request", "at_least": 17}],
        },
        "direct_count": {
            "what": "GET /count_now on Whale (counted in Redis before answering) vs the "
                    f"yardstick, wrk -t2 -c{connections} -d{seconds}s",
            "figures": direct.report(),
            "targets": [{"figure": "ratio", "at_least": 1.0},
                        {"figure": "count_now_p99_per_p50", "below": 4}],
        },
    }


def floor(repeat: int, seconds: float, connections: int) -> dict:
    """How close to the yardstick Bottle on HailWhale's server can be (bench/floor.py), next
    to Hail's `/count` and Whale's `/count_now`, in the same repetitions."""
    figures = Figures()
    with redis_server() as redis, bare() as baseline, \
            Process(["-m", "bench.floor", "--redis-url", redis.url], ready="/ok") as server, \
            hailwhale("hail", "--redis-url", redis.url, "--no-flusher",
                      "--buffer-max", "100000000") as hail, \
            hailwhale("serve", "--redis-url", redis.url, "--no-flusher") as whale:
        client = redis.client(timeout=30)
        subjects = (("ok", f"{server.url}/ok"), ("push", f"{server.url}/push"),
                    ("hail_count", f"{hail.url}/count?{EVENT_QUERY}"),
                    ("floor_count_now", f"{server.url}/count_now"),
                    ("count_now", f"{whale.url}/count_now?{EVENT_QUERY}"))
        for _ in range(repeat):
            bare_rate = _measure(figures, "bare", f"{baseline.url}/count", seconds,
                                 connections)["requests_per_s"]
            for name, url in subjects:
                rate = _measure(figures, name, url, seconds, connections)["requests_per_s"]
                figures.add(f"{name}_ratio", rate / bare_rate, f"{name} / bare")
            client.flushall()
        client.close()
    return {
        "floor": {
            "what": "What no change to HailWhale's request handling can pass: a bare Bottle "
                    "app on HailWhale's server (granian) answering OK (`ok`), buffering a "
                    "constant event with Hail's Buffer (`push`), counting it with Whale's "
                    "Store (`floor_count_now`), next to Hail's `/count` and Whale's "
                    f"`/count_now`, each vs the yardstick, wrk -t2 -c{connections} "
                    f"-d{seconds}s",
            "figures": figures.report(),
        },
    }
