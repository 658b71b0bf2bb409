"""The soak's load: wrk with bench/pace.lua, and whether the store holds each answered event once.

wrk (C, one event loop per thread) reaches the node's maximum rate on a fraction
of a core; a Python generator would need more CPU than the node it loads. Each
wrk thread keeps one connection, numbers its requests and paces them on an
absolute schedule (see pace.lua), so the store's totals can be checked against
exactly the requests that were answered 200 OK.
"""

from __future__ import annotations

import itertools
import json
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.common import ensure_wrk

SCRIPT = Path(__file__).resolve().parent / "pace.lua"
SERIES = 16  # series per thread: pace.lua's SERIES
MARK = "HAILWHALE-PACE "


@dataclass
class Load:
    """One wrk run of pace.lua: what it sent, what was answered, and its own CPU."""

    phase: str
    threads: int
    seconds: float
    requests: int
    latency_ms: dict
    errors: dict
    per_thread: list[dict]
    cpu_seconds: float  # wrk's own user + system time

    @property
    def rate(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds

    @property
    def acknowledged(self) -> int:
        return sum(sum(thread["acked_hits"]) for thread in self.per_thread)

    @property
    def in_doubt(self) -> int:
        return sum(len(thread["doubt"]) for thread in self.per_thread)

    @property
    def statuses(self) -> dict[str, int]:
        """Answers other than 200 OK, by HTTP status."""
        found: dict[str, int] = {}
        for thread in self.per_thread:
            for status, count in thread["statuses"].items():
                found[status] = found.get(status, 0) + count
        return found

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.startswith("5"))


def run(url: str, phase: str, seconds: float, threads: int, rate: float = 0) -> Load:
    """wrk on `url` (a node's /count) for `seconds`, at `rate` requests/s in all (0: at most)."""
    per_thread = rate / threads if rate else 0
    command = [ensure_wrk(), f"-t{threads}", f"-c{threads}", f"-d{max(1, round(seconds))}s",
               "--timeout", "30s", "-s", str(SCRIPT), url, "--", phase, f"{per_thread:.6f}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the child reaped since
    out = done.stdout
    found = [line for line in out.splitlines() if line.startswith(MARK)]
    if done.returncode or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or out}")
    report = json.loads(found[0].removeprefix(MARK))
    return Load(phase=phase, threads=threads, seconds=report["seconds"],
                requests=report["requests"], latency_ms=report["latency_ms"],
                errors=report["errors"], per_thread=report["threads"],
                cpu_seconds=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def totals_path(phase: str, thread: int, series: int) -> str:
    """The key /totals answers a request's series under (depth 2 below `phase`)."""
    return json.dumps([phase, f"t{thread}", f"k{series}"], separators=(",", ":"))


def check(load: Load, counted: dict[str, dict]) -> dict:
    """Each series' counted hits and n sum against its answered and in-doubt requests.

    A series is right when what it holds beyond its acknowledged requests is some of
    its requests in doubt (each at most once): hits beyond = how many, n beyond =
    the sum of their numbers. `counted` is /totals' answer for the phase (depth 2).
    """
    lost = doubled = counted_in_doubt = 0
    wrong: list[str] = []
    for thread in load.per_thread:
        for series in range(SERIES):
            path = totals_path(load.phase, thread["thread"], series)
            held = counted.get(path, {})
            extra_hits = round(held.get("hits", 0)) - thread["acked_hits"][series]
            extra_n = round(held.get("n", 0)) - thread["acked_n"][series]
            doubt = [n for n in thread["doubt"] if n % SERIES == series]
            if _some_of(doubt, extra_hits, extra_n):
                counted_in_doubt += extra_hits
                continue
            wrong.append(f"{path}: {extra_hits:+d} hits, {extra_n:+d} n beyond the "
                         f"acknowledged; in doubt: {doubt}")
            if extra_hits < 0:
                lost += -extra_hits
            elif extra_hits > len(doubt):
                doubled += extra_hits - len(doubt)
            else:  # as many as could be, but not the ones in doubt: some lost, some doubled
                lost, doubled = lost + 1, doubled + 1
    return {"lost": lost, "doubled": doubled, "in_doubt_counted": counted_in_doubt,
            "wrong_series": wrong[:10]}


def _some_of(doubt: list[int], how_many: int, total: int) -> bool:
    """Whether `how_many` distinct requests of `doubt` have numbers summing to `total`."""
    if not 0 <= how_many <= len(doubt):
        return False
    if len(doubt) > 20:  # a broken run: too many subsets; the sum's bounds still tell
        ordered = sorted(doubt)
        return sum(ordered[:how_many]) <= total <= sum(ordered[len(ordered) - how_many:])
    return any(sum(chosen) == total for chosen in itertools.combinations(doubt, how_many))
