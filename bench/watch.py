"""What a soak watches while it runs: flush lag, memory and CPU of a node, a reader's graph.

Each watcher is a thread that samples on a fixed beat until stopped, so the soak's
figures say what held *throughout* the run, not only at its end. The soak's own
threads stay light (a few requests a second): the node's CPU is what is measured.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import urllib.parse

import psutil

from hailwhale.embedded import RedisServer


def get_json(url: str, timeout: float = 30) -> tuple[int, dict]:
    """(status, decoded JSON body) of one GET on its own connection."""
    address, _, path = url.removeprefix("http://").partition("/")
    connection = http.client.HTTPConnection(address, timeout=timeout)
    try:
        connection.request("GET", "/" + path)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def process_tree(pids: list[int]) -> list[int]:
    """These processes and all their descendants (those still running)."""
    tree: list[int] = []
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            tree += [pid, *(child.pid for child in parent.children(recursive=True))]
        except psutil.NoSuchProcess:
            continue
    return tree


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes and all their descendants, in MiB."""
    return round(sum(_each(process_tree(pids), lambda p: p.memory_info().rss)) / 2**20, 1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes (not their descendants) have used."""
    return sum(_each(pids, lambda p: p.cpu_times().user + p.cpu_times().system))


def _each(pids: list[int], read) -> list:
    """`read(process)` of each of `pids` still running."""
    found = []
    for pid in pids:
        try:
            found.append(read(psutil.Process(pid)))
        except psutil.NoSuchProcess:
            continue
    return found


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute (0 with fewer than 3)."""
    if len(samples) < 3:
        return 0.0
    return statistics.linear_regression(*zip(*samples)).slope * 60


def percentile(values: list[float], percent: float) -> float:
    """The nearest-rank percentile (0 of nothing)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))]


class Watcher(threading.Thread):
    """A daemon thread calling `sample()` every `every` seconds until `stop()`."""

    every = 1.0

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        beat = time.monotonic()
        while not self.halt.is_set():
            self.sample(time.monotonic() - self.started_at)
            beat += self.every
            self.halt.wait(max(0.0, beat - time.monotonic()))

    def sample(self, elapsed: float) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


class LagWatcher(Watcher):
    """Hail's /health every 0.25 s: the oldest event not yet flushed, the depth, the flushes."""

    every = 0.25

    def __init__(self, node_url: str) -> None:
        super().__init__()
        self.url = f"{node_url}/health"
        self.ages: list[float] = []
        self.depths: list[int] = []
        self.flushes: dict[float, dict] = {}  # the last flush each sample saw, by its time
        self.unhealthy: list[str] = []

    def sample(self, elapsed: float) -> None:
        try:
            status, health = get_json(self.url, timeout=5)
        except (OSError, http.client.HTTPException, ValueError) as error:
            self.unhealthy.append(f"{elapsed:.1f} s: {type(error).__name__}")
            return
        if status != 200:
            self.unhealthy.append(f"{elapsed:.1f} s: {status} {health.get('problems')}")
        self.ages.append(health.get("oldest_age_seconds") or 0.0)
        self.depths.append(health.get("depth", 0))
        last = health.get("last_flush")
        if last:
            self.flushes[last["time"]] = last


class MarkerWatcher(Watcher):
    """A marker event through the node every 0.5 s, timed from its OK until the store shows it.

    The user's view of flush lag: acknowledged, then readable in a graph. Markers
    count in their own dimension (`marker`), so they never mix with the soak's events.
    """

    every = 0.5
    POLL = 0.1

    def __init__(self, node_url: str, whale_url: str, dimension: str = "marker") -> None:
        super().__init__()
        self.node = node_url.removeprefix("http://")
        self.dimension = dimension
        self.totals = (f"{whale_url}/totals?dimensions={dimension}&period=15s:3h&metrics="
                       + urllib.parse.quote('["hits"]'))
        self.sent: list[float] = []  # when each acknowledged marker was answered
        self.lags: list[float] = []
        self.failed = 0
        self.caught_up = threading.Event()
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()

    def sample(self, elapsed: float) -> None:
        connection = http.client.HTTPConnection(self.node, timeout=10)
        try:
            connection.request("GET", f"/count?dimensions={self.dimension}")
            answer = connection.getresponse()
            if (answer.status, answer.read()) == (200, b"OK"):
                self.sent.append(time.monotonic())
            else:
                self.failed += 1
        except (OSError, http.client.HTTPException):
            self.failed += 1
        finally:
            connection.close()

    def _poll(self) -> None:
        while not self.caught_up.wait(self.POLL):
            try:
                status, totals = get_json(self.totals, timeout=10)
                seen = int(totals["15s:3h"][self.dimension]["hits"]) if status == 200 else None
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                continue
            now = time.monotonic()
            while seen is not None and len(self.lags) < min(seen, len(self.sent)):
                self.lags.append(now - self.sent[len(self.lags)])
            if self.halt.is_set() and len(self.lags) == len(self.sent):
                self.caught_up.set()

    def unseen(self) -> int:
        """Acknowledged markers the store did not show by the end."""
        return len(self.sent) - len(self.lags)

    def stop(self, wait: float = 10) -> None:
        """Stop sending; wait up to `wait` s for the store to show the markers sent."""
        super().stop()
        self.caught_up.wait(wait)
        self.caught_up.set()
        self.poller.join(30)


class MemoryWatcher(Watcher):
    """Every second: RSS of the node's processes, the buffer's used_memory, CPU seconds."""

    def __init__(self, node_pid: int, buffer: RedisServer) -> None:
        super().__init__()
        self.node_pid = node_pid
        self.buffer = buffer.client()
        self.rss: list[tuple[float, float]] = []
        self.buffer_mb: list[tuple[float, float]] = []

    def sample(self, elapsed: float) -> None:
        self.rss.append((elapsed, rss_mb([self.node_pid])))
        used = self.buffer.info("memory")["used_memory"]
        self.buffer_mb.append((elapsed, round(used / 2**20, 2)))

    def stop(self) -> None:
        super().stop()
        self.buffer.close()


class GraphReader(Watcher):
    """A reader polling one graph every second: `/plotpoints` of a parent and its children."""

    def __init__(self, whale_url: str, parent: str) -> None:
        super().__init__()
        query = urllib.parse.urlencode({"dimensions": parent, "depth": 1, "period": "15s:3h",
                                        "metrics": json.dumps(["hits", "n"])})
        self.url = f"{whale_url}/plotpoints?{query}"
        self.ms: list[float] = []
        self.statuses: dict[str, int] = {}

    def sample(self, elapsed: float) -> None:
        started = time.perf_counter()
        try:
            status, _ = get_json(self.url)
            outcome = str(status)
        except (OSError, http.client.HTTPException, ValueError) as error:
            outcome = type(error).__name__
        self.ms.append((time.perf_counter() - started) * 1000)
        self.statuses[outcome] = self.statuses.get(outcome, 0) + 1
