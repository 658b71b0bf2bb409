"""StatsD in, side by side with Etsy's StatsD and Graphite's carbon-cache: loss-free lines/s.

Both daemons get the same stream (bench/statsd_stream.py: half counters, half timers on
300 country/region/city paths; tags for HailWhale, dotted names for StatsD) on loopback
UDP from sender processes, one line per datagram and PACKED per datagram, with the same
socket receive buffer: stock (neither asks: net.core.rmem_default) and BIG_BUFFER (both
ask; the bench raises net.core.rmem_max to it when lower, as root, and puts it back).
Behind Etsy's StatsD (flushing every second) is a carbon-cache with a 1 s schema
(bench/carbon.py); behind HailWhale, its buffer, flusher and store on one Redis.

A step sends at one rate for STEP_SECONDS (MIN_LINES at least), then reads what the
daemon counted, to the line: carbon's whisper points of every path's counter and timer
count; HailWhale's `/totals`. It is loss-free when counted == sent (lost = sent minus
counted; more than sent is counted too: `hailwhale_over_counted_lines`). Each step
also reads the datagrams the daemon's socket dropped (/proc/net/udp): the lines the
socket took, sent minus dropped, must all be counted once
(`*_received_not_counted_once`: 0 when every loss is the socket's). The search
doubles the rate from FIRST_RATE while loss-free (halves it while not), then bisects:
the highest loss-free rate found. When every line was counted but the senders could
not reach the rate (they share the 2 cores), the figure is a floor (`*_sender_limited`).
HailWhale's search starts at AHEAD times StatsD's figure for the same buffer and
packing and doubles up to CEILING lines/s (then its figure is a floor): every line it
takes is flushed before the next step, at its flusher's rate (`*_flushed_lines_per_s`:
the step's lines over the time until all were counted), so its figure is a burst rate,
lines taken without loss and all counted once, not a sustained one.

CPU: the daemon's processes (StatsD and carbon; HailWhale's supervisor, listeners,
flusher, HTTP workers and Redis) at the highest loss-free step: cores while sending,
and microseconds per line from the first line sent to the last one counted.
Time to readable: one line sent until Graphite could answer it (carbon's cache or
file) with StatsD's default 10 s flush and with a 1 s flush; HailWhale: `/totals`.

    .venv/bin/python -m bench.run --only statsd
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.carbon import Carbon, carbon_version, ensure_carbon
from bench.common import Figures
from bench.statsd_daemons import (
    EtsyStatsd,
    HailWhaleStatsd,
    node_version,
    socket_drops,
    statsd_version,
)
from bench.statsd_daemons import ensure_statsd as ensure_etsy
from bench.statsd_stream import PACKED, PATHS, Senders

STEP_SECONDS = 2.0  # each rate is held this long
MIN_LINES = 20_000  # and sends this many lines at least
FIRST_RATE = 25_000  # lines/s
MIN_RATE = 1_000
AHEAD = 1.5  # HailWhale's search starts at this many times StatsD's figure
CEILING = 300_000  # and doubles up to this rate (lines/s), or that start if higher
SETTLE = 3.0  # seconds a count may stay still before it is final
BIG_BUFFER = 8 * 1024 * 1024  # bytes of receive buffer both daemons ask for
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")
RMEM_DEFAULT = Path("/proc/sys/net/core/rmem_default")


def ensure_statsd() -> None:
    """Etsy's StatsD and Graphite's carbon-cache, installed when missing."""
    ensure_etsy()
    ensure_carbon()


@contextmanager
def rmem_max(at_least: int | None = None, exactly: int | None = None):
    """net.core.rmem_max raised to `at_least` (or set to `exactly`) meanwhile, as root."""
    before = int(RMEM_MAX.read_text())
    wanted = exactly if exactly is not None else max(before, at_least or 0)
    if wanted != before:
        if os.geteuid() != 0:
            print(f"bench: net.core.rmem_max is {before}, not {wanted}; run as root to set it",
                  flush=True)
            wanted = before
        else:
            RMEM_MAX.write_text(str(wanted))
    try:
        yield wanted
    finally:
        if wanted != before:
            RMEM_MAX.write_text(str(before))


def hailwhale(buffer: int) -> HailWhaleStatsd:
    """HailWhale asking for `buffer` bytes of receive buffer (0: the stock one). A listener
    that does not read HAILWHALE_STATSD_RECEIVE_BUFFER asks for 32 MiB: then rmem_max is
    lowered while it starts, so that its socket gets the stock buffer all the same."""
    whale = HailWhaleStatsd(buffer)
    stock = int(RMEM_DEFAULT.read_text())
    if buffer == 0 and whale.receive_buffer() != stock and os.geteuid() == 0:
        whale.stop()
        with rmem_max(exactly=stock // 2):  # the kernel doubles what is asked
            whale = HailWhaleStatsd(buffer)
    return whale


# -- the search ------------------------------------------------------------------------


def _counted(daemon, before: int, lines: int, timeout: float = 300) -> int:
    """The final count of a step's `lines`: all of them, or what stays still SETTLE s
    while the daemon holds none for later (HailWhale's flusher may take longer between
    two totals)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = daemon.total() - before
        if count >= lines:
            return count
        if count != last or not daemon.idle():
            last, since = count, time.monotonic()
        elif time.monotonic() - since > SETTLE:
            return count
        time.sleep(0.2)
    return last


def _step(daemon, name: str, per_datagram: int, rate: float, steps: list[dict],
          seconds: float) -> tuple[bool, float]:
    """Send at `rate` lines/s: whether every line was counted, and the rate reached."""
    lines = max(MIN_LINES, int(rate * seconds)) // per_datagram * per_datagram  # full ones
    senders = Senders(daemon.port, lines, per_datagram, rate, daemon.spelling, round(rate))
    drops = socket_drops(daemon.port)
    before, cpu, started = daemon.total(), daemon.cpu(), time.monotonic()
    reached = senders.send()
    sending, cpu_sending = time.monotonic() - started, daemon.cpu() - cpu
    counted = _counted(daemon, before, lines)
    took = time.monotonic() - started
    drops = socket_drops(daemon.port) - drops
    steps.append({"rate": round(rate), "reached": round(reached), "lines": lines,
                  "counted": counted, "socket_drops": drops,
                  # lines the socket took (sent - dropped) that were not counted once
                  "received_not_counted_once": lines - drops * per_datagram - counted,
                  "seconds_to_count": round(took - sending, 1),
                  "cpu_cores": round(cpu_sending / sending, 2),
                  "cpu_us_per_line": round((daemon.cpu() - cpu) / lines * 1e6, 2)})
    print(f"bench: statsd {name}: {rate:,.0f} lines/s asked, {reached:,.0f} sent, "
          f"{counted:,} of {lines:,} counted, {steps[-1]['socket_drops']:,} dropped by the "
          "socket", flush=True)
    return counted == lines, min(rate, reached)


def loss_free(daemon, name: str, per_datagram: int, start: float = FIRST_RATE,
              ceiling: float = math.inf, quick: bool = False) -> tuple[float, bool, list]:
    """The highest rate (lines/s) found at which `daemon` counts every line; whether the
    senders were the limit (then it is a floor); the steps.

    From `start`, doubling while loss-free (up to `ceiling`), halving while not (down to
    MIN_RATE); then two bisection steps between the best loss-free and worst lossy rate
    (`quick`: one, and steps half as long). A step's rate is the one the senders reached.
    """
    steps: list[dict] = []
    seconds = STEP_SECONDS / 2 if quick else STEP_SECONDS
    good, bad, rate, limited = 0.0, math.inf, start, False
    while MIN_RATE <= rate <= ceiling:
        counted, reached = _step(daemon, name, per_datagram, rate, steps, seconds)
        if counted:
            good = max(good, reached)
            if reached < 0.9 * rate:  # the senders could not go faster
                limited = True
                break
            rate *= 2
            if bad < math.inf:
                break
        else:
            bad, rate = reached, rate / 2
            if good:
                break
    for _ in range((1 if quick else 2) if good and bad < math.inf and not limited else 0):
        rate = math.sqrt(good * bad)
        counted, reached = _step(daemon, name, per_datagram, rate, steps, seconds)
        if counted:
            good = max(good, reached)
        else:
            bad = reached
    return good, limited, steps


def _best(steps: list[dict], rate: float) -> dict:
    """The step of the highest loss-free rate `rate`."""
    return next(step for step in steps if step["counted"] == step["lines"]
                and min(step["rate"], step["reached"]) == round(rate))


# -- the scenario ----------------------------------------------------------------------


def _searches(figures: Figures, steps: dict, carbon: Carbon, setting: str,
              buffer: int | None, quick: bool) -> None:
    """Both daemons with one receive buffer, one line per datagram and packed."""
    rates = {}
    etsy = EtsyStatsd(carbon, flush_ms=1000, buffer=buffer)
    try:
        etsy.create_names()
        figures.add(f"statsd_{setting}_receive_buffer_kib", etsy.receive_buffer() / 1024, "KiB")
        for per_datagram, packing in ((1, "single"), (PACKED, "packed")):
            name = f"statsd_{setting}_{packing}"
            rates[packing], limited, steps[name] = loss_free(etsy, name, per_datagram,
                                                             quick=quick)
            _rate_figures(figures, name, rates[packing], limited, steps[name])
        figures.add(f"statsd_{setting}_received_not_counted_once", sum(
            abs(step["received_not_counted_once"]) for packing in ("single", "packed")
            for step in steps[f"statsd_{setting}_{packing}"]), "lines")
    finally:
        etsy.stop()
    whale = hailwhale(buffer or 0)
    try:
        figures.add(f"hailwhale_{setting}_receive_buffer_kib", whale.receive_buffer() / 1024,
                    "KiB")
        for per_datagram, packing in ((1, "single"), (PACKED, "packed")):
            name = f"hailwhale_{setting}_{packing}"
            baseline = max(rates[packing], MIN_RATE)
            ours, limited, steps[name] = loss_free(whale, name, per_datagram,
                                                   start=AHEAD * baseline,
                                                   ceiling=max(CEILING, AHEAD * baseline),
                                                   quick=quick)
            _rate_figures(figures, name, ours, limited, steps[name])
            big = max(steps[name], key=lambda step: step["counted"])
            figures.add(f"{name}_flushed_lines_per_s", big["counted"] / (
                big["lines"] / big["reached"] + big["seconds_to_count"]), "lines/s")
            figures.add(f"{setting}_{packing}_ratio", ours / baseline,
                        "hailwhale / statsd (a StatsD that loses lines at MIN_RATE: MIN_RATE)")
            # What HailWhale applies for good against what StatsD takes without loss.
            figures.add(f"{setting}_{packing}_sustained_ratio",
                        figures.values[f"{name}_flushed_lines_per_s"][-1] / baseline,
                        "hailwhale flushed / statsd loss-free")
            figures.add(f"hailwhale_{setting}_{packing}_over_counted_lines", sum(
                max(0, step["counted"] - step["lines"]) for step in steps[name]), "lines")
        lines = whale.lines()
        steps[f"hailwhale_{setting}_lines"] = lines
        figures.add(f"hailwhale_{setting}_received_not_counted_once", sum(
            abs(step["received_not_counted_once"]) for packing in ("single", "packed")
            for step in steps[f"hailwhale_{setting}_{packing}"]), "lines")
        # Every line the listener took is counted once: accepted == what /totals shows.
        figures.add(f"hailwhale_{setting}_accepted_minus_counted",
                    abs(lines.get("accepted", 0) - whale.total()), "lines")
    finally:
        whale.stop()


def _rate_figures(figures: Figures, name: str, rate: float, limited: bool,
                  steps: list[dict]) -> None:
    figures.add(f"{name}_lines_per_s", rate, "lines/s")
    # 1: every line sent was counted, and the senders could send no faster (a floor)
    figures.add(f"{name}_sender_limited", int(limited), "yes")
    if rate:
        best = _best(steps, rate)
        figures.add(f"{name}_cpu_cores", best["cpu_cores"], "cores while sending")
        figures.add(f"{name}_cpu_us_per_line", best["cpu_us_per_line"],
                    "us of CPU per line, sent to counted")


def _latencies(figures: Figures, carbon: Carbon) -> None:
    whale = hailwhale(0)
    try:
        for n in range(7):
            time.sleep(random.uniform(0, 2))  # a line at any moment of the flusher's cycle
            figures.add("hailwhale_latency_s", whale.latency(f"lat{n}"), "s")
    finally:
        whale.stop()
    for flush_ms, figure, samples in ((1000, "statsd_1s_flush_latency_s", 7),
                                      (10_000, "statsd_latency_s", 2)):  # 10 s: its default
        etsy = EtsyStatsd(carbon, flush_ms=flush_ms)
        kind = "slow" if flush_ms > 1000 else "fast"  # carbon's schema: 10 s or 1 s points
        try:
            for n in range(samples):
                time.sleep(random.uniform(0, flush_ms / 1000))
                figures.add(figure, etsy.latency(f"lat.{kind}.n{n}"), "s")
        finally:
            etsy.stop()
    figures.add("latency_ratio", figures.median("hailwhale_latency_s")
                / figures.median("statsd_latency_s"), "hailwhale / statsd (10 s flush)")
    figures.add("latency_ratio_1s_flush", figures.median("hailwhale_latency_s")
                / figures.median("statsd_1s_flush_latency_s"), "hailwhale / statsd (1 s flush)")


def statsd(quick: bool = False) -> dict:
    """The StatsD scenario: both daemons with both buffers, single and packed; latency."""
    ensure_statsd()
    figures = Figures()
    steps: dict[str, object] = {}
    carbon = Carbon()
    try:
        with rmem_max(at_least=BIG_BUFFER) as limit:
            for setting, buffer in (("stock", None), ("8mib", BIG_BUFFER)):
                _searches(figures, steps, carbon, setting, buffer, quick)
        _latencies(figures, carbon)
    finally:
        carbon.stop()
    settings = [(s, p) for s in ("stock", "8mib") for p in ("single", "packed")]
    return {
        "what": f"loopback UDP from sender processes, the same lines to both: half counters, "
                f"half timers on {len(PATHS)} country/region/city paths (DogStatsD tags for "
                "HailWhale, dotted names for StatsD); the highest rate at which every line "
                f"is counted, to the line (steps of {STEP_SECONDS:g} s; HailWhale's search "
                f"starts at {AHEAD}x StatsD's and stops at {CEILING:,} lines/s: a floor), "
                "one line per datagram and "
                f"{PACKED} per datagram; receive buffer stock (net.core.rmem_default "
                f"{int(RMEM_DEFAULT.read_text())}) and {BIG_BUFFER // 2**20} MiB asked by "
                f"both (net.core.rmem_max {limit} during the run); Etsy's StatsD "
                f"{statsd_version()} on Node {node_version()}, its graphite backend flushing "
                f"every 1 s to Graphite's carbon-cache {carbon_version()} (1 s schema), "
                "counted in carbon's whisper files; HailWhale counted by /totals; CPU of "
                "each daemon's processes (StatsD + carbon; HailWhale's listeners, flusher, "
                "HTTP, Redis); flushed: HailWhale's flusher's sustained rate; latency from "
                "send to readable (Graphite: carbon's cache or file)",
        "figures": figures.report(),
        "steps": steps,
        "targets": [
            *({"figure": f"{s}_{p}_ratio", "at_least": 1.1} for s, p in settings),
            *({"figure": f"hailwhale_{s}_{p}_over_counted_lines", "below": 1}
              for s, p in settings),
            *({"figure": f"hailwhale_{s}_accepted_minus_counted", "below": 1}
              for s in ("stock", "8mib")),
            *({"figure": f"hailwhale_{s}_received_not_counted_once", "below": 1}
              for s in ("stock", "8mib")),
            {"figure": "latency_ratio", "below": 1},
            {"figure": "latency_ratio_1s_flush", "below": 1},
        ],
    }


if __name__ == "__main__":
    import json
    print(json.dumps(statsd(quick="--quick" in sys.argv), indent=2))
