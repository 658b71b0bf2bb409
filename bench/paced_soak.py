"""The soak of issue 15, point 4: a node's maximum rate, then a long run at 80% of it, judged.

One `hailwhale hail` node (its own buffer Redis and flusher, default settings)
feeds a store; `hailwhale serve --no-buffer` on the store answers a reader's graph.
In one run:

1. warm: 2 s of single-event GET /count as fast as the node answers, on the soak's
   connections;
2. bare: the same load on the yardstick (a bare Bottle `OK`, bench/bare.py), for scale;
3. max: the node's maximum rate, with the load generator (wrk, bench/pace.lua) the soak
   then uses: the CPU it takes from the node is the same in both (reported for each), and
   with the soak's observers (below) already watching;
4. soak: `seconds` at 80% of that rate, paced over twice the connections, while the
   node's /health is sampled every 0.25 s (the oldest event not yet flushed), a marker
   event every 0.5 s is timed from its OK until the store shows it, a reader polls
   `/plotpoints` every second, and the node's memory is sampled every second.

Between phases the buffer drains. At the end every phase's events are checked
against the store: each acknowledged request counted once, none lost, none doubled
(pace.py). `.venv/bin/python -m bench.run --only soak [--quick]` reports it;
`python -m bench.paced_soak [--seconds 60]` prints the scenario alone.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
from pathlib import Path

import psutil

from bench import pace
from bench.common import Figures, bare, hailwhale, redis_server
from bench.watch import (
    GraphReader,
    LagWatcher,
    MarkerWatcher,
    MemoryWatcher,
    cpu_seconds,
    get_json,
    percentile,
    process_tree,
    slope_per_minute,
)

SHARE = 0.8  # of the node's maximum rate
# wrk threads, one connection each (pace.lua); as many connections as the ingest
# scenario's wrk: Hail answers 15-30% more with 32 than with 16 (granian's threads)
THREADS = 32
TOTALS_PERIOD = "1d:1y"  # a window that holds every event of the run
# Memory is flat when its slope after the first third stays under these. The node's
# Python processes (supervisor, server master and workers, flusher) grow for the first
# ~30 s of a phase as their caches learn its names, then stay flat (a 180 s run at
# 800 requests/s: every process within 1 MiB from 30 s on), and RSS moves by 1 MiB
# arenas: two steps in the 40 s measured read as 3 MiB a minute. A leak of one small
# object (~100 bytes) a request is ~30 MiB a minute at 5,000 requests/s.
RSS_SLOPE_MIB_PER_MIN = 4.0
# The buffer holds up to a flush interval of events (~1 MiB at the soak's rates);
# what it keeps beyond that would be events or keys left behind.
BUFFER_SLOPE_MIB_PER_MIN = 1.0
MEMORY_SECONDS = 30  # shorter soaks report memory without judging it


def _drain(node_url: str, timeout: float = 120) -> float:
    """Seconds until the node's buffer holds nothing waiting and nothing in flight."""
    started = time.monotonic()
    while True:
        _, health = get_json(f"{node_url}/health")
        if not health.get("depth") and not health.get("in_flight"):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the node's buffer did not drain in {timeout:g} s: {health}")
        time.sleep(0.05)


def _counted(whale_url: str, phase: str) -> dict[str, dict]:
    """/totals of every series below `phase` (depth 2), over a window that holds the run."""
    query = urllib.parse.urlencode({"dimensions": phase, "depth": 2, "threshold": 0,
                                    "limit": 0, "period": TOTALS_PERIOD,
                                    "metrics": json.dumps(["hits", "n"])})
    status, answer = get_json(f"{whale_url}/totals?{query}")
    if status != 200:
        raise RuntimeError(f"/totals answered {status}: {answer}")
    return answer[TOTALS_PERIOD]


def _redis_cpu(server) -> float:
    info = server.client().info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def _cpu_pressure() -> str:
    """The kernel's CPU pressure (share of time some task waited for a CPU): how busy the
    machine was besides the soak; empty where /proc/pressure is missing."""
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return ""


class NodeCpu:
    """CPU seconds of the node's processes, its flusher and its buffer's Redis between reads."""

    def __init__(self, pid: int, buffer) -> None:
        self.pid, self.buffer = pid, buffer
        self.reset()

    def reset(self) -> None:
        self.started = time.monotonic()
        self.pids = process_tree([self.pid])
        self.flusher = [pid for pid in self.pids if _is_flusher(pid)]
        self.node, self.flush = cpu_seconds(self.pids), cpu_seconds(self.flusher)
        self.redis = _redis_cpu(self.buffer)

    def cores(self) -> tuple[float, float, float]:
        """(node's processes, its flusher, buffer Redis) in cores since the last reset."""
        wall = time.monotonic() - self.started
        return ((cpu_seconds(self.pids) - self.node) / wall,
                (cpu_seconds(self.flusher) - self.flush) / wall,
                (_redis_cpu(self.buffer) - self.redis) / wall)


def _is_flusher(pid: int) -> bool:
    """Whether `pid` is a `hailwhale flush` child (the node runs its flusher as one)."""
    try:
        return "flush" in psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return False


def paced_soak(seconds: float = 60, max_seconds: float = 10, threads: int = THREADS,
               share: float = SHARE) -> dict:
    """Run the phases; the scenario for bench/run.py (what, figures, targets, details)."""
    figures = Figures()
    details: dict = {}
    with redis_server() as store, redis_server() as buffer:
        node = hailwhale("hail", "--redis-url", store.url, "--hail-url", buffer.url)
        whale = hailwhale("serve", "--no-buffer", "--redis-url", store.url)
        loads: list[pace.Load] = []
        try:
            count_url = f"{node.url}/count"
            # as many connections as the soak: the server's threads for them exist before
            # memory is watched
            loads.append(pace.run(count_url, "warm", min(2, max_seconds), 2 * threads))
            _drain(node.url)
            with bare() as baseline:
                yardstick = pace.run(f"{baseline.url}/count", "bare", max_seconds, threads)
            cpu = NodeCpu(node.process.pid, buffer)
            # The maximum under the soak's own observers (its /health sampling, markers and
            # graph reader, on their own series): 80% of it is then a rate the node can
            # keep while it is watched, which the same machine's cores must also serve.
            observers = [LagWatcher(node.url), MarkerWatcher(node.url, whale.url, "marker_max"),
                         GraphReader(whale.url, "max")]
            for observer in observers:
                observer.start()
            top = pace.run(count_url, "max", max_seconds, threads)
            node_cores_max, flusher_cores_max, redis_cores_max = cpu.cores()
            for observer in observers:
                observer.stop()
            loads.append(top)
            details["max_drained_in_s"] = round(_drain(node.url), 2)

            lag = LagWatcher(node.url)
            markers = MarkerWatcher(node.url, whale.url)
            memory = MemoryWatcher(node.process.pid, buffer)
            reader = GraphReader(whale.url, "soak")
            watchers = [lag, markers, memory, reader]
            for watcher in watchers:
                watcher.start()
            cpu.reset()
            details["cpu_pressure_before"] = _cpu_pressure()
            # Twice the connections, each at half the pace: a connection waits for its answer
            # before the next request, so with as many as at the maximum the rate would be
            # capped by the latency (32 / 20 ms), not set by the schedule.
            soak = pace.run(count_url, "soak", seconds, 2 * threads, rate=share * top.rate)
            node_cores_soak, flusher_cores_soak, redis_cores_soak = cpu.cores()
            details["cpu_pressure_after"] = _cpu_pressure()
            for watcher in watchers:
                watcher.stop()
            loads.append(soak)
            details["soak_drained_in_s"] = round(_drain(node.url), 2)
            checks = {load.phase: pace.check(load, _counted(whale.url, load.phase))
                      for load in loads}
        finally:
            node.stop()
            whale.stop()

    figures.add("bare_requests_per_s", yardstick.rate, "requests/s")
    figures.add("max_requests_per_s", top.rate, "requests/s")
    figures.add("max_per_bare", top.rate / yardstick.rate, "max / bare")
    figures.add("soak_requests_per_s", soak.rate, "requests/s")
    figures.add("soak_share_of_max", soak.rate / top.rate, "soak / max")
    figures.add("soak_p50_ms", soak.latency_ms["p50"], "ms")
    figures.add("soak_p99_ms", soak.latency_ms["p99"], "ms")
    figures.add("lag_oldest_max_s", max(lag.ages, default=0.0), "s")
    figures.add("lag_oldest_p99_s", percentile(lag.ages, 99), "s")
    figures.add("lag_marker_max_s", max(markers.lags, default=0.0), "s")
    figures.add("lag_marker_p99_s", percentile(markers.lags, 99), "s")
    figures.add("markers_unseen", markers.unseen() + markers.failed, "markers")
    figures.add("depth_max", max(lag.depths, default=0), "events")
    flushes = list(lag.flushes.values())
    figures.add("flush_seconds_max", max((f["seconds"] for f in flushes), default=0.0), "s")
    figures.add("flush_events_max", max((f["events"] for f in flushes), default=0), "events")
    figures.add("lost", sum(check["lost"] for check in checks.values()), "events")
    figures.add("doubled", sum(check["doubled"] for check in checks.values()), "events")
    figures.add("server_errors_5xx", sum(load.server_errors for load in loads)
                + sum(n for code, n in reader.statuses.items() if code.startswith("5")),
                "responses")
    figures.add("reader_p50_ms", percentile(reader.ms, 50), "ms")
    figures.add("reader_p99_ms", percentile(reader.ms, 99), "ms")
    figures.add("reader_not_200", sum(n for code, n in reader.statuses.items()
                                      if code != "200"), "responses")
    warm = [(t, v) for t, v in memory.rss if t >= seconds / 3]
    figures.add("rss_start_mib", warm[0][1] if warm else 0.0, "MiB")
    figures.add("rss_end_mib", warm[-1][1] if warm else 0.0, "MiB")
    figures.add("rss_slope_mib_per_min", slope_per_minute(warm), "MiB/min")
    figures.add("rss_growth_bytes_per_request",
                slope_per_minute(warm) * 2**20 / 60 / soak.rate, "bytes/request")
    buffered = [(t, v) for t, v in memory.buffer_mb if t >= seconds / 3]
    figures.add("buffer_used_memory_end_mib", buffered[-1][1] if buffered else 0.0, "MiB")
    figures.add("buffer_slope_mib_per_min", slope_per_minute(buffered), "MiB/min")
    figures.add("node_cores_max", node_cores_max, "cores")
    figures.add("node_cores_soak", node_cores_soak, "cores")
    figures.add("flusher_cores_soak", flusher_cores_soak, "cores")
    # CPU a flush of the longest one's size needed: far below its wall time, the
    # flusher waited for a CPU (a busy machine), not for its own work
    figures.add("flusher_cpu_s_per_longest_flush",
                flusher_cores_soak / soak.rate * figures.median("flush_events_max"), "s")
    figures.add("wrk_cores_max", top.cpu_seconds / top.seconds, "cores")
    figures.add("wrk_cores_soak", soak.cpu_seconds / soak.seconds, "cores")
    figures.add("buffer_redis_cores_soak", redis_cores_soak, "cores")
    details.update({
        "phases": {load.phase: {
            "seconds": round(load.seconds, 2), "requests_per_s": round(load.rate),
            "acknowledged": load.acknowledged, "in_doubt": load.in_doubt,
            "socket_errors": load.errors, "statuses": load.statuses,
            "latency_ms": load.latency_ms, **checks[load.phase]} for load in loads},
        "buffer_redis_cores_max": round(redis_cores_max, 3),
        "flusher_cores_max": round(flusher_cores_max, 3),
        "rss_mib_every_10_s": [v for t, v in memory.rss[::10]],
        "buffer_used_memory_mib_every_10_s": [v for t, v in memory.buffer_mb[::10]],
        "health_samples": len(lag.ages), "flushes_seen": len(flushes),
        "health_not_ok": lag.unhealthy[:10],
        "markers": len(markers.sent), "reads": len(reader.ms),
        "reader_statuses": reader.statuses,
    })
    targets = [
        {"figure": "soak_share_of_max", "at_least": round(share * 0.97, 3)},
        {"figure": "lag_oldest_max_s", "below": 2},
        {"figure": "lag_marker_max_s", "below": 2},
        {"figure": "markers_unseen", "below": 1},
        {"figure": "lost", "below": 1},
        {"figure": "doubled", "below": 1},
        {"figure": "server_errors_5xx", "below": 1},
        {"figure": "reader_not_200", "below": 1},
    ]
    if seconds >= MEMORY_SECONDS:
        targets += [{"figure": "rss_slope_mib_per_min", "below": RSS_SLOPE_MIB_PER_MIN},
                    {"figure": "buffer_slope_mib_per_min", "below": BUFFER_SLOPE_MIB_PER_MIN}]
    else:
        details["memory"] = (f"not judged: a slope over less than {MEMORY_SECONDS} s is one "
                             "allocator step (an arena is 1 MiB)")
    return {
        "what": f"one `hailwhale hail` node (buffer Redis + flusher, defaults), single-event "
                f"GET /count from wrk -t{threads} -c{threads} (bench/pace.lua, one numbered "
                f"event a request): its maximum rate for {max_seconds:g} s, then {seconds:g} s "
                f"paced at {share:.0%} of it; /health sampled every 0.25 s, a marker event "
                f"every 0.5 s timed until /totals shows it, a reader polling /plotpoints of "
                f"a parent and its {threads} children every 1 s, RSS of the node's processes "
                f"every 1 s (slope after the first third); at the end the store's totals "
                f"checked per series against the requests answered 200 OK",
        "figures": figures.report(),
        "targets": targets,
        "details": details,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="the soak's length")
    parser.add_argument("--max-seconds", type=float, default=10,
                        help="the maximum rate's measurement")
    args = parser.parse_args()
    print(json.dumps(paced_soak(args.seconds, args.max_seconds), indent=2))


if __name__ == "__main__":
    main()
