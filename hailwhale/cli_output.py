"""What the `hailwhale` command shows people: query answers as tables, and progress.

Numbers: an integer, or a float with an integral value, is shown as an
integer (`500`, not `500.0`); any other float with at most 6 decimals, or 6
significant digits below 1, never more than 15 significant digits (what a
double holds without noise), trailing zeros stripped: `17099.11`, not
`17099.109999999986`; `0.000123457`. No thousands separators, so a number
copies as it reads. Numbers are right-aligned, names left-aligned; times are
local. `--json` prints the answer itself, exact, for scripts.

A sparkline draws a series in at most 60 bars (`▁▂▃▄▅▆▇█`), each the mean of
its run of buckets, from 0 (or the lowest value, when negative) to the highest:
`▁` is that baseline exactly, anything above it at least `▂`.
"""

from __future__ import annotations

import math
import sys
import time
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TextIO

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60
SHOW_EVERY = 0.1  # seconds between two redraws of a progress line, at least


def number(value: object) -> str:
    """`value` for people: see the module's docstring for the rounding rule."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) <= 2**53:
        return str(int(value))
    magnitude = math.floor(math.log10(abs(value)))  # 4 for 17099.1, -4 for 0.000123
    if magnitude >= 15:  # no decimals left: round the integer part to 15 digits
        return format(Decimal(f"{value:.15g}"), "f")
    decimals = min(6 if magnitude >= 0 else 5 - magnitude, 14 - magnitude)
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def width(text: str) -> int:
    """Terminal columns `text` takes (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned table: numbers right, text left, a rule under the headers."""
    cells = [[number(cell) for cell in row] for row in rows]
    right = [bool(rows) and all(isinstance(row[n], int | float) for row in rows)
             for n in range(len(headers))]
    widths = [max([width(h), *(width(row[n]) for row in cells)]) for n, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [" " * (w - width(v)) + v if r else v + " " * (w - width(v))
                  for v, w, r in zip(values, widths, right)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def sparkline(values: Sequence[float], bars: int = SPARK_WIDTH) -> str:
    """`values` in at most `bars` characters (see the module's docstring)."""
    if not values:
        return ""
    run = math.ceil(len(values) / bars)
    means = [math.fsum(values[i:i + run]) / len(values[i:i + run])
             for i in range(0, len(values), run)]
    low, high = min(0.0, *means), max(means)
    if high <= low:
        return BARS[0] * len(means)
    return "".join(BARS[0] if v <= low else BARS[1 + round((v - low) / (high - low) * 6)]
                   for v in means)


def local_time(epoch: float, seconds: bool = True) -> str:
    """`epoch` in local time, to the second or the minute."""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def plotpoints_table(answer: dict) -> str:
    """`/plotpoints`' answer: one row per bucket, one column per series, then one line
    per series with its lowest, highest and last value and its sparkline."""
    series = [(key, metric, points) for key, metrics in answer.items()
              for metric, points in metrics.items()]
    if not series:
        return "no series"
    stamps = [ms / 1000 for ms, _ in series[0][2]]
    if not stamps:
        return "no buckets"
    seconds = any(stamp % 60 for stamp in stamps)
    zone = datetime.fromtimestamp(stamps[0]).astimezone().tzname()
    rows = [[local_time(stamp, seconds), *(points[n][1] for _, _, points in series)]
            for n, stamp in enumerate(stamps)]
    points_table = table([f"time ({zone})", *(f"{key} {metric}" for key, metric, _ in series)],
                         rows)
    graph = f"{local_time(stamps[0], seconds)} to {local_time(stamps[-1], seconds)}"
    summary = table(
        ["dimension", "metric", "min", "max", "last", graph],
        [[key, metric, min(values), max(values), values[-1], sparkline(values)]
         for key, metric, values in ((k, m, [v for _, v in p]) for k, m, p in series)])
    return points_table + "\n\n" + summary


def totals_table(answer: dict) -> str:
    """`/totals`' answer: one row per dimension and metric, one column per period."""
    periods = list(answer)
    keys = list(dict.fromkeys((key, metric) for totals in answer.values()
                              for key, metrics in totals.items() for metric in metrics))
    if not keys:
        return "no totals"
    rows = [[key, metric, *(answer[p].get(key, {}).get(metric, 0) for p in periods)]
            for key, metric in keys]
    return table(["dimension", "metric", *periods], rows)


def dimensions_table(answer: dict) -> str:
    """`/dimensions`' answer: a caption, then one row per child with its totals."""
    caption = f"children of {answer['parent']} over {answer['period']}"
    children = answer["children"]
    if not children:
        return f"{caption}: none active"
    metrics = list(children[0]["totals"])
    rows = [[child["name"], child["key"], *(child["totals"][m] for m in metrics)]
            for child in children]
    return caption + "\n" + table(["name", "key", *metrics], rows)


TABLES = {"plotpoints": plotpoints_table, "totals": totals_table,
          "dimensions": dimensions_table}


class Progress:
    """How a long operation goes: a line on stderr redrawn as it goes (on a terminal only,
    at most every SHOW_EVERY seconds), and a summary line there when it ends, either way."""

    def __init__(self, stream: TextIO | None = None, out: TextIO | None = None,
                 live: bool | None = None, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock
        self.started = clock()
        self._shown = -math.inf
        self._text = ""  # on screen now

    def update(self, text: str) -> None:
        """Show `text` as the state of things, unless the last one is too recent."""
        if not self.live:
            return
        now = self.clock()
        if now - self._shown < SHOW_EVERY:
            return
        self._shown = now
        self._draw(text)

    def say(self, line: str) -> None:
        """Print a line of results on stdout, keeping the progress line below it."""
        drawn = self._text if self.live and self.out.isatty() else ""
        if drawn:
            self._draw("")
        print(line, file=self.out, flush=True)
        if drawn:
            self._draw(drawn)

    def done(self, summary: str) -> None:
        """End: the progress line gives way to `summary` and the time it took."""
        if self._text:
            self._draw("")
        print(f"{summary} in {self.clock() - self.started:.1f} s", file=self.stream,
              flush=True)

    def _draw(self, text: str) -> None:
        import shutil  # it imports bz2 and lzma: only a terminal needs it

        text = text[:shutil.get_terminal_size().columns - 1]
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._text = text
