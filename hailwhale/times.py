"""Time ranges: times as people write them, and the period and window that answer a range.

Pure. A `from` or `to` is epoch seconds, ISO 8601 (no zone: UTC, as for an
event's `at`), `now`, or relative to now: `-6h`, `now-2d` (the graphite units of
periods). The Python API also takes datetimes (a naive one is local time, as
Python's own `datetime.timestamp()` reads it), dates (local midnight) and
timedeltas (that long before now).

A range reads every bucket from the one holding `from` to the one holding `to`.
`to` defaults to now, and a later `to` reads up to now, as the default window
does. `to` alone reads the period's length ending at `to`, as much of it as the
period still keeps. Without a period, the finest configured period that keeps
`from` (`to`, when alone) and answers at most `Limits.points` buckets per series
answers: a coarser period rather than a refusal, since the client did not pick
it. Past what every period keeps, `from` after `to`, or too many buckets in the
period asked for: InvalidQuery saying what would work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from hailwhale.config import limit_var
from hailwhale.exceptions import InvalidQuery
from hailwhale.periods import Period, Periods, PeriodSpec, Window, parse_span
from hailwhale.values import parse_time as parse_absolute

# A time as the Python API (and the HTTP Client) takes it: a datetime (naive: local
# time), a date, epoch seconds, a string as `from` and `to` take it (ISO 8601, `-6h`,
# `now`), or a timedelta (that long before now).
When = datetime | date | timedelta | float | str
_RELATIVE = re.compile(r"(?:now)?\s*-\s*(\d+\s*(?:mo|s|m|h|d|w|y))")
_SPOKEN = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60),
           ("second", 1))
# Epoch seconds past this (year 5138) are more likely milliseconds than a date.
_MILLISECONDS = 1e11


@dataclass(frozen=True)
class TimeRange:
    """A query's `from` and `to`, epoch seconds; None where not given."""

    start: float | None = None
    end: float | None = None


def parse_time(text: str, now: float, param: str) -> float:
    """Epoch seconds of a `from` or `to` as sent: epoch, ISO 8601, `now`, `-6h`, `now-6h`."""
    spoken = text.strip()
    if spoken == "now":
        return now
    relative = _RELATIVE.fullmatch(spoken)
    try:
        # A span of 400 digits overflows a float, one of 4300 is past what int() reads:
        # either is no time, as any span older than every period keeps is refused later.
        value = now - parse_span(relative.group(1)) if relative else parse_absolute(spoken)
    except (ValueError, OverflowError):
        value = math.nan
    if math.isfinite(value):
        return value
    raise InvalidQuery(param, f"{param} {spoken[:40]!r} is not a time: give epoch seconds, "
                              "ISO 8601 (UTC unless it says its zone), now, or a time before "
                              "now like -15m, -6h, -2d, -1w, -1mo or -1y")


def python_time(value: object, now: float) -> object:
    """A Python datetime, date or timedelta as epoch seconds; anything else as it is.

    A naive datetime is local time (Python's `datetime.timestamp()`), a date its
    local midnight, a timedelta that long before `now`.
    """
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time()).timestamp()
    if isinstance(value, timedelta):
        return now - value.total_seconds()
    return value


def to_epoch(value: object, now: float, param: str) -> float:
    """Epoch seconds of a time the Python API was given; InvalidQuery naming `param` if bad."""
    value = python_time(value, now)
    if isinstance(value, str):
        return parse_time(value, now, param)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise InvalidQuery(param, f"{param} must be a datetime, a timedelta (that long before "
                              "now), epoch seconds or a string like '2024-05-01T12:00:00Z' or "
                              f"'-6h', not {type(value).__name__} {str(value)[:40]!r}")


def show_time(t: float) -> str:
    """`t` for a message: ISO 8601 in UTC to the second, or the number past any date."""
    try:
        moment = datetime.fromtimestamp(math.floor(t), timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{t:g}"
    return moment.isoformat().replace("+00:00", "Z")


def short_span(seconds: float) -> str:
    """`seconds` compactly, largest units first: `20h50m`, `7d`, `1y`."""
    left, parts = int(seconds), []
    for name, size in _SPOKEN:
        if left >= size:
            parts.append(f"{left // size}{name[0]}")
            left %= size
    return "".join(parts) or "0s"


def say_span(seconds: int) -> str:
    """`seconds` in words when one unit says it exactly (`3 hours`), else compactly."""
    for name, size in _SPOKEN:
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {name}{'' if count == 1 else 's'}"
    return short_span(seconds)


def choose_window(periods: Periods, time_range: TimeRange, now: float, max_buckets: int,
                  wanted: Period | None = None, preferred_buckets: int | None = None,
                  names: tuple[str, str] = ("from", "to")) -> Window:
    """The window that answers `time_range`: in period `wanted`, or the finest that fits.

    `max_buckets` bounds the buckets per series. `preferred_buckets` (a graph's width
    in points): rather the finest period of at most that many buckets, else the one
    with the fewest. `names`: what the caller calls the start and the end, for errors.
    """
    start = time_range.start
    end = now if time_range.end is None else min(time_range.end, now)
    if start is not None and start > end:
        raise InvalidQuery(names[0], _after(start, end, now, names))
    param, anchor = (names[1], end) if start is None else (names[0], start)

    def keeps(period: Period) -> bool:
        return anchor >= periods.reach(period.interval, now)

    def span(period: Period) -> tuple[float, float]:
        if start is not None:
            return start, end
        derived = period.bucket(end) - (period.buckets - 1) * period.interval
        return max(derived, periods.reach(period.interval, now)), end

    def size(period: Period) -> int:
        return period.count_buckets(*span(period))

    every = [p for p in _finest_first(periods.periods, anchor, now) if keeps(p)]
    keeping = every if wanted is None else [wanted] if keeps(wanted) else []
    if not keeping:
        raise InvalidQuery(param, _too_old(periods, param, anchor, now, wanted, every))
    fitting = [p for p in keeping if size(p) <= max_buckets]
    if not fitting:
        fewest = min(keeping, key=size)
        others = [p for p in every if size(p) <= max_buckets]
        alone = f"{names[1]} alone" if start is None else None
        raise InvalidQuery(param, _too_many(fewest, size(fewest), max_buckets, wanted, others,
                                            alone, names[0]))
    chosen = fitting[0]
    if preferred_buckets:
        small = [p for p in fitting if size(p) <= preferred_buckets]
        chosen = small[0] if small else min(fitting, key=size)
    buckets = chosen.range_window(*span(chosen))
    return Window(chosen, buckets, ranged=True, past=buckets[-1] < chosen.bucket(now))


def _finest_first(periods: Sequence[Period], anchor: float, now: float) -> list[Period]:
    # Of periods sharing an interval (so a retention), the shortest whose own length
    # reaches back to the anchor first: its name says the answer best.
    return sorted(periods, key=lambda p: (p.interval, now - p.length > anchor, p.length))


def _kept_by(periods: Periods) -> str:
    """`15s:3h keeps 3 hours, 1h:7d 7 days`: each interval once, by its longest period."""
    longest: dict[int, Period] = {}
    for period in periods.periods:
        if period.length == periods.retention[period.interval]:
            longest.setdefault(period.interval, period)
    said = [f"{p.name} {say_span(p.length)}" for _, p in sorted(longest.items())]
    first, _, span = said[0].partition(" ")
    return ", ".join([f"{first} keeps {span}", *said[1:]])


def _after(start: float, end: float, now: float, names: tuple[str, str]) -> str:
    first, last = names
    if start > now:
        hint = f" ({first} is in epoch seconds, not milliseconds)" if start > _MILLISECONDS else ""
        return (f"{first} ({show_time(start)}) is in the future{hint}: a range ends at now at "
                f"the latest; give a {first} before now")
    return (f"{first} ({show_time(start)}) is after {last} ({show_time(end)}): give a {first} "
            f"before {last}")


def _too_old(periods: Periods, param: str, anchor: float, now: float,
             wanted: Period | None, others: list[Period]) -> str:
    if wanted is None:
        oldest = periods.longest
        return (f"{param} ({show_time(anchor)}) is older than every period keeps "
                f"({_kept_by(periods)}); the oldest you can ask is "
                f"{show_time(now - oldest)} (-{short_span(oldest)})")
    kept = periods.retention[wanted.interval]
    instead = f"use period {others[0].name}, or " if others else ""
    return (f"{param} ({show_time(anchor)}) is older than {wanted.name} keeps "
            f"({say_span(kept)}); the oldest it can answer is {show_time(now - kept)} "
            f"(-{short_span(kept)}): {instead}a later {param}")


def _too_many(period: Period, count: int, max_buckets: int, wanted: Period | None,
              others: list[Period], alone: str | None, first: str) -> str:
    """`alone`: how the end alone is spelled (`to alone`), when no start was given."""
    bound = f"at most {max_buckets} per series ({limit_var('points')})"
    most = f"a range of at most {short_span(max_buckets * period.interval)}"
    what = f"{alone} reads {period.name}'s length, which" if alone else "this range"
    if wanted is None:
        return (f"{what} is {count:,} buckets even in {period.name}, the coarsest period "
                f"that keeps it; {bound}: ask for {most}")
    instead = f"use period {others[0].name}, or " if others else ""
    return (f"{what} is {count:,} buckets of {short_span(period.interval)}; {bound}: "
            f"{instead}{f'give {first} too, ' if alone else ''}{most}")


def dataset_since(periods: Periods, period: PeriodSpec | None, since: float,
                  now: float) -> float:
    """`dataset`'s `start_at` cut to what the period (or, none named, any) still keeps.

    The seed's own example asks 30 days of a 7-day period: the points it keeps are
    the answer, never an error.
    """
    kept = [periods.find(period)] if period else periods.periods
    return max(since, min(periods.reach(p.interval, now) for p in kept))
