"""Periods: `interval:length` spans, the buckets they cut time into, retention.

Every interval is a fixed number of seconds; buckets start at multiples of the
interval since the epoch (UTC), so any node computes the same bucket for an
event without coordination.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hailwhale.exceptions import ConfigError, InvalidQuery

DEFAULT_PERIODS = "15s:3h,1h:7d,1d:1y"

UNIT_SECONDS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mo": 30 * 86400,
    "y": 365 * 86400,
}

# The units a span is named in (`span_name`): exact, and no `w` or `mo` (7d, 30d read better).
_NAMING_UNITS = ("y", "d", "h", "m", "s")
_SPAN = re.compile(r"^\s*(\d+)\s*(mo|s|m|h|d|w|y)\s*$")
_LEGACY = re.compile(r"^\s*(\d+)x(\d+)\s*$")


def parse_span(text: str) -> int:
    """Seconds in a span such as `15s`, `3h` or `1mo`."""
    match = _SPAN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a span like 15s, 5m, 3h, 7d, 2w, 1mo or 1y")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def span_name(seconds: int) -> str:
    """`seconds` in the largest unit that divides it: `15s`, `3h`, `7d`, `1y`."""
    for unit in _NAMING_UNITS:
        if seconds and seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Period:
    """A graph window: `buckets` buckets of `interval` seconds, `length` in all."""

    interval: int
    length: int
    name: str

    @property
    def buckets(self) -> int:
        return self.length // self.interval

    def bucket(self, t: float) -> int:
        """Start (epoch seconds) of the bucket that holds time `t`."""
        return bucket_start(t, self.interval)

    def window(self, now: float) -> list[int]:
        """Bucket starts of the window that ends with the bucket holding `now`."""
        last = self.bucket(now)
        first = last - (self.buckets - 1) * self.interval
        return list(range(first, last + 1, self.interval))

    def range_window(self, start: float, end: float) -> list[int]:
        """Bucket starts from the bucket holding `start` to the one holding `end`."""
        return list(range(self.bucket(start), self.bucket(end) + 1, self.interval))

    def count_buckets(self, start: float, end: float) -> int:
        """How many buckets `range_window(start, end)` holds, without building it."""
        return max(0, (self.bucket(end) - self.bucket(start)) // self.interval + 1)


# A period as a caller may give one: `15s:3h`, legacy `15x10800`, the seed's
# `(interval_seconds, length_seconds)`, or a Period.
PeriodSpec = str | tuple[int, int] | list[int] | Period


@dataclass(frozen=True)
class Window:
    """The buckets one answer covers: `period`'s, bucket starts `buckets`.

    `ranged`: a time range (`from`, `to`) chose them, so the answer names the period.
    `past`: they end before the bucket holding now.
    """

    period: Period
    buckets: list[int]
    ranged: bool = False
    past: bool = False

    @classmethod
    def latest(cls, period: Period, now: float) -> Window:
        """The period's own window: its length, ending with the bucket holding `now`."""
        return cls(period, period.window(now))


def bucket_start(t: float, interval: int) -> int:
    """Start of the `interval`-second bucket holding `t`, aligned to the epoch."""
    return int(t // interval) * interval


def to_period(spec: PeriodSpec) -> Period:
    """A Period from any spelling of one (see PeriodSpec); ValueError saying what is wrong."""
    if isinstance(spec, Period):
        return spec
    if isinstance(spec, str):
        return parse_period(spec)
    if _is_pair(spec):
        interval, length = spec
        return _checked(interval, length, f"{span_name(interval)}:{span_name(length)}",
                        repr(tuple(spec)))
    raise ValueError(f"{spec!r} is not a period: give one like '15s:3h', '15x10800' or "
                     "(15, 10800) (interval and length in seconds)")


def _is_pair(spec: object) -> bool:
    return (isinstance(spec, (tuple, list)) and len(spec) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in spec))


def parse_period(text: str) -> Period:
    """Parse `15s:3h` (graphite style) or the legacy `15x10800` (seconds)."""
    text = text.strip()
    legacy = _LEGACY.match(text)
    try:
        if legacy:
            interval, length = int(legacy.group(1)), int(legacy.group(2))
        else:
            interval_text, sep, length_text = text.partition(":")
            if not sep:
                raise ValueError("expected interval:length, e.g. 15s:3h")
            interval, length = parse_span(interval_text), parse_span(length_text)
    except ValueError as error:
        raise ValueError(f"period {text!r}: {error}") from None
    return _checked(interval, length, text, repr(text))


def _checked(interval: int, length: int, name: str, shown: str) -> Period:
    if interval <= 0:
        raise ValueError(f"period {shown}: the interval must be at least 1 second")
    if length < interval or length % interval:
        raise ValueError(f"period {shown}: the length must be a whole number of intervals")
    return Period(interval, length, name)


class Periods:
    """The configured periods, in the order given, and what follows from them."""

    def __init__(self, periods: Iterable[Period]):
        self.periods = tuple(periods)
        if not self.periods:
            raise ConfigError("at least one period must be configured")
        self.retention: dict[int, int] = {}
        for period in self.periods:
            kept = self.retention.get(period.interval, 0)
            self.retention[period.interval] = max(kept, period.length)
        self.intervals = tuple(sorted(self.retention))

    @classmethod
    def parse(cls, spec: str | PeriodSpec | Iterable[PeriodSpec] | Periods = DEFAULT_PERIODS,
              ) -> Periods:
        """Periods from `15s:3h,1h:7d`, one period, or a list of them in any spelling.

        The seed's `[(15, 3600*3), (3600, 3600*24*7)]` is named `15s:3h,1h:7d`.
        """
        if isinstance(spec, Periods):
            return spec
        if isinstance(spec, str):
            items: list = spec.split(",")
        elif isinstance(spec, Period) or _is_pair(spec):
            items = [spec]
        else:
            try:
                items = list(spec)
            except TypeError:
                raise ConfigError(f"{spec!r} is not a list of periods") from None
        try:
            return cls(to_period(item) for item in items
                       if not (isinstance(item, str) and not item.strip()))
        except ValueError as error:
            raise ConfigError(str(error)) from None

    @property
    def names(self) -> list[str]:
        return [period.name for period in self.periods]

    @property
    def longest(self) -> int:
        return max(self.retention.values())

    def find(self, name: PeriodSpec | None) -> Period:
        """The configured period named (or equal to) `name`, in any spelling; the first if None."""
        if name is None or name == "":
            return self.periods[0]
        for period in self.periods:
            if period.name == name:
                return period
        try:
            wanted = to_period(name)
        except ValueError:
            wanted = None
        for period in self.periods:
            if wanted and (period.interval, period.length) == (wanted.interval, wanted.length):
                return period
        shown = name.name if isinstance(name, Period) else repr(name)
        raise InvalidQuery(
            "period", f"unknown period {shown}; configured periods: {', '.join(self.names)}")

    def reach(self, interval: int, now: float) -> float:
        """The oldest time whose `interval` bucket is still kept (every later bucket is too).

        A bucket's data expires its retention after the bucket ends (whale/rollup.py),
        so the bucket holding `now - retention` is the oldest still readable.
        """
        return now - self.retention[interval]

    def window_start(self, interval: int, now: float) -> int:
        """Oldest bucket an event may still land in for `interval`."""
        buckets = self.retention[interval] // interval
        return bucket_start(now, interval) - (buckets - 1) * interval

    def intervals_holding(self, at: float, now: float) -> list[int]:
        """Intervals whose retention window holds time `at` (future included)."""
        return [i for i in self.intervals if bucket_start(at, i) >= self.window_start(i, now)]

    def __repr__(self) -> str:
        return f"Periods({','.join(self.names)!r})"
