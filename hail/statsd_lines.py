"""StatsD and DogStatsD lines read into the events they stand for, validated as /count's.

Pure (no I/O, no clock: callers pass `now`). The mapping (DESIGN.md, Integrations):

* `name:value|c[|@rate]`: metric `name` += value / rate;
* `name:value|ms`, `|h`, `|d`: `name` += value and `name.count` += 1 / rate;
* `name:id|s`: `name` counts distinct ids (`{"unique": id}`);
* gauges (`|g`), events (`_e{`) and service checks (`_sc|`) are refused;
* `|#sales:p42,country:US` are the dimensions `{"sales": "p42", "country": "US"}`, a tag
  without a value a one-segment path, `pk:<name>` the pk; DogStatsD's multi-value lines
  (`name:1:2:3|h`, one event per value) and timestamps (`|T<epoch seconds>`, the event's
  `at`) are read too, its container ids and other fields skipped as its agent does.

Each event is validated by hailwhale/events.py's parse_event, the very checks and
limits /count runs, and spelled as Event.to_json spells it, so the flusher reads it as
any buffered event. Speed: parse_event runs once per line shape (name, type and tags)
and once per distinct set line, and is remembered; a shape's values are checked per
line against the same bound (events.MAX_VALUE); a line seen before is one dict lookup.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import orjson

from hailwhale.config import Limits
from hailwhale.event_fields import MAX_VALUE
from hailwhale.events import HITS, Event, parse_event
from hailwhale.exceptions import InvalidEvent
from hailwhale.periods import Periods

# Why a line was refused: the `reason` of a Refusal, a label of the listener's counts.
MALFORMED = "malformed"  # not StatsD: no name:value|type, a bad number or rate, not UTF-8
UNSUPPORTED = "unsupported"  # gauges, events, service checks, unknown types: nothing to add
INVALID = "invalid"  # a name, tag, pk or value that /count refuses too
REASONS = (MALFORMED, UNSUPPORTED, INVALID)

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_SECONDS = re.compile(r"\d{1,12}", re.ASCII)
_MAX_DIGITS = len(str(MAX_VALUE))
_TIMERS = frozenset({"ms", "h", "d"})
_TYPES = _TIMERS | {"c", "s"}
_TO_TIME = '},"uniques":{},"at":'  # from the end of a line's sums to its time
_CACHED = 10_000  # lines and shapes remembered; forgotten all at once past this
# Only short lines and shapes are remembered, so that what is remembered stays a few MB.
_CACHED_BYTES = 512
# Where parse_event names a parameter, a StatsD user reads a part of the line.
_PARTS = {"pk": "the pk tag: ", "dimensions": "the tags: ", "at": "the timestamp (|T): "}


@dataclass(frozen=True)
class Refusal:
    """A line that counts nothing: why (`reason`, one of REASONS) and what to fix."""

    reason: str
    message: str
    line: str  # the line, cut short for a log


class Timed(tuple):
    """The complete JSON of the events of a line with its own time (`|T`)."""


@dataclass
class Reading:
    """What a batch of lines came to: the events' JSON and each line's outcome."""

    events: list[str] = field(default_factory=list)  # Event.to_json's spelling
    accepted: int = 0  # lines (a multi-value line is one line of several events)
    refused: Counter[str] = field(default_factory=Counter)  # lines, by reason
    refusals: list[Refusal] = field(default_factory=list)  # the first few, for the log

    @property
    def received(self) -> int:
        return self.accepted + sum(self.refused.values())


class LineReader:
    """Reads StatsD lines into events, as /count would validate them, remembering shapes."""

    def __init__(self, periods: Periods, limits: Limits):
        self.periods = periods
        self.limits = limits
        # What follows the time in an event received now: every interval holds it.
        self._after_time = ',"intervals":' + orjson.dumps(periods.intervals).decode() + "}"
        # raw line -> an event's JSON up to its time, a tuple of them, or a Refusal
        self._lines: dict[bytes, str | tuple | Refusal] = {}
        # (name, timer or counter, tags) -> the JSON of its events up to their sums
        self._shapes: dict[tuple[str, bool, str], str] = {}

    def read(self, lines: list[bytes], now: float, keep: int = 10) -> Reading:
        """The events of `lines` received at `now`, and the first `keep` refusals.

        Empty lines are no lines: a trailing newline counts nothing.
        """
        reading = Reading()
        events, refused, cache = reading.events, reading.refused, self._lines
        tail = f"{float(now)!r}{self._after_time}"
        accepted = 0
        for line in lines:
            if not line:
                continue
            read = cache.get(line)
            if read is None:
                read = self._read_new(line, now)
            kind = read.__class__
            if kind is str:
                events.append(read + tail)
                accepted += 1
            elif kind is Refusal:
                refused[read.reason] += 1
                if len(reading.refusals) < keep:
                    reading.refusals.append(read)
            elif kind is Timed:
                events.extend(read)
                accepted += 1
            else:
                events.extend([body + tail for body in read])
                accepted += 1
        reading.accepted = accepted
        return reading

    def events(self, line: bytes, now: float) -> list[Event] | Refusal:
        """The events of one line received at `now`, or why it counts nothing."""
        reading = self.read([line], now)
        if reading.refusals:
            return reading.refusals[0]
        return [Event.from_json(text) for text in reading.events]

    def _read_new(self, line: bytes, now: float) -> str | tuple | Refusal:
        try:
            read = self._parse(line, now)
        except _Refused as refused:
            read = Refusal(refused.reason, refused.message, _shown(line))
        except Exception as error:  # a bug of ours, say: a line never stops the listener
            read = Refusal(MALFORMED, f"could not be read ({type(error).__name__}: "
                                      f"{str(error)[:100]})", _shown(line))
        # A line's own time (|T) is judged against `now`, never kept; nor are long lines
        # or multi-value ones, which would make the memory grow with their size.
        if len(line) <= _CACHED_BYTES and b"|T" not in line and read.__class__ is not tuple:
            if len(self._lines) >= _CACHED:
                self._lines.clear()
            self._lines[line] = read
        return read

    def _parse(self, line: bytes, now: float) -> str | tuple:
        try:
            text = line.decode()
        except UnicodeDecodeError:
            raise _Refused(MALFORMED, "the line is not UTF-8") from None
        text = text.removesuffix("\r")
        if text.startswith("_e{"):
            raise _Refused(UNSUPPORTED, "DogStatsD events are not counted; send a counter")
        if text.startswith("_sc|"):
            raise _Refused(UNSUPPORTED, "DogStatsD service checks are not counted")
        name, colon, rest = text.partition(":")
        fields = rest.split("|")
        if not colon or len(fields) < 2:
            raise _Refused(MALFORMED, "a StatsD line is name:value|type, such as clicks:1|c")
        kind = fields[1]
        if kind not in _TYPES:
            what = "gauges are" if kind == "g" else f"the type {kind[:10]!r} is"
            raise _Refused(UNSUPPORTED, f"{what} not counted; counters (c), timers (ms), "
                                        "histograms (h), distributions (d) and sets (s) are")
        rate, tags, at = 1, "", None
        for extra in fields[2:]:
            if extra.startswith("@"):
                rate = _rate(extra[1:])
            elif extra.startswith("#"):
                tags = extra[1:]
            elif extra.startswith("T"):
                at = _time(extra[1:])
            # else a field DogStatsD's agent skips too: a container id (c:), external data...
        if kind == "s":
            uids = fields[0].split(":")
            if len(uids) > self.limits.statsd_values:
                raise _Refused(INVALID, f"a line carries at most {self.limits.statsd_values} "
                                        f"values (HAILWHALE_LIMIT_STATSD_VALUES), not "
                                        f"{len(uids)}; send more lines")
            events = [self._event(*self._tags(tags), {name: {"unique": uid}}, at, now)
                      for uid in uids]
            return Timed(map(Event.to_json, events)) if at is not None else tuple(
                map(_up_to_time, events))
        values = fields[0].split(":")
        if len(values) > self.limits.statsd_values:
            raise _Refused(INVALID, f"a line carries at most {self.limits.statsd_values} "
                                    f"values (HAILWHALE_LIMIT_STATSD_VALUES), not "
                                    f"{len(values)}; send more lines")
        amounts = [_amount(value) for value in values]
        timer = kind in _TIMERS
        if at is not None:
            return Timed(self._event(*self._tags(tags), _metrics(name, amount, rate, timer),
                                     at, now).to_json() for amount in amounts)
        head = self._shape(name, kind, tags, now)
        if timer:  # the sums after `hits`, as _metrics has them
            count = _json(1 if rate == 1 else _bounded(1 / rate))
            spelled = [f'{head}"{name}":{_json(amount)},"{name}.count":{count}{_TO_TIME}'
                       for amount in amounts]
        else:
            spelled = [f'{head}"{name}":{_json(_bounded(amount / rate) if rate != 1 else amount)}'
                       + _TO_TIME for amount in amounts]
        return spelled[0] if len(spelled) == 1 else tuple(spelled)

    def _shape(self, name: str, kind: str, tags: str, now: float) -> str:
        """The JSON of a line's event up to its sums, validated once per (name, type, tags)."""
        timer = kind in _TIMERS
        key = (name, timer, tags)
        shape = self._shapes.get(key)
        if shape is None:
            event = self._event(*self._tags(tags), _metrics(name, 1, 1, timer), None, now)
            hits = "" if name == HITS else f'"{HITS}":1,'
            head = orjson.dumps({"pk": event.pk, "paths": event.paths}).decode()
            shape = head[:-1] + ',"sums":{' + hits
            if len(tags) + len(name) <= _CACHED_BYTES:
                if len(self._shapes) >= _CACHED:
                    self._shapes.clear()
                self._shapes[key] = shape
        return shape

    def _event(self, pk: str | None, dimensions: dict, metrics: dict, at: int | None,
               now: float) -> Event:
        params = {"pk": pk, "dimensions": dimensions, "metrics": metrics}
        if at is not None:
            params["at"] = at
        try:
            return parse_event(params, periods=self.periods, limits=self.limits, now=now,
                               encoded=False)
        except InvalidEvent as error:
            raise _Refused(INVALID, _PARTS.get(error.param, "") + error.message) from None

    def _tags(self, text: str) -> tuple[str | None, dict]:
        """The pk and dimensions of DogStatsD tags (`sales:p42,beta,pk:shop`)."""
        tags = [tag for tag in text.split(",") if tag] if text else []
        # Each tag is one prefix at least: past the limit, parse_event would refuse it too.
        if len(tags) > self.limits.prefixes + 1:
            raise _Refused(INVALID, f"the tags: more than {self.limits.prefixes} dimension "
                                    "prefixes in one event; send fewer tags")
        pk = None
        dimensions: dict[str, dict] = {}
        for tag in tags:
            key, colon, value = tag.partition(":")
            if key == "pk" and colon:
                if pk is not None:
                    raise _Refused(INVALID, "the pk tag is given twice; a line has one pk")
                pk = value
            else:  # {key: {value: {}}}: the paths [key] and [key, value], values side by side
                children = dimensions.setdefault(key, {})
                if colon:
                    children[value] = {}
        return pk, dimensions


class _Refused(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _rate(text: str) -> int | float:
    rate = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not 0 < rate <= 1:
        raise _Refused(MALFORMED, f"the sample rate @{text[:20]} is not a number in (0, 1]")
    return 1 if rate == 1 else rate


def _time(text: str) -> int:
    if not _SECONDS.fullmatch(text):
        raise _Refused(MALFORMED, f"the timestamp T{text[:20]} is not epoch seconds")
    return int(text)


def _amount(text: str) -> int | float:
    """A value as StatsD spells it: an integer stays exact, anything else is a double."""
    if not _NUMBER.fullmatch(text):
        raise _Refused(MALFORMED, f"the value {text[:20]!r} is not a number")
    if text.lstrip("+-").isdigit():
        digits = text.lstrip("+-").lstrip("0") or "0"  # int() refuses 4300 digits, zeros too
        value = (math.inf if len(digits) > _MAX_DIGITS
                 else -int(digits) if text.startswith("-") else int(digits))
    else:
        value = float(text)
    return _bounded(value)


def _bounded(value: int | float) -> int | float:
    """`value` if /count takes it (finite, |value| <= 2**53); integral quotients as ints."""
    if not -MAX_VALUE <= value <= MAX_VALUE:  # NaN and infinities fail this too
        raise _Refused(INVALID, f"the value is out of range; values are at most 2**53 "
                                f"({MAX_VALUE}) either way, after dividing by the sample rate")
    if value.__class__ is float and value.is_integer():
        return int(value)
    return value


def _metrics(name: str, amount: int | float, rate: int | float, timer: bool) -> dict:
    """The metrics of one value: `{name: value / rate}`, or a timer's value and count."""
    if timer:
        count = 1 if rate == 1 else _bounded(1 / rate)
        return {HITS: 1, name: amount, f"{name}.count": count}
    return {HITS: 1, name: amount if rate == 1 else _bounded(amount / rate)}


def _json(value: int | float) -> str:
    return int.__repr__(value) if value.__class__ is int else float.__repr__(value)


def _up_to_time(event: Event) -> str:
    """Event.to_json's spelling of `event` up to its time: `"at":` ends it."""
    data = dict(vars(event))
    del data["at"], data["intervals"]
    return orjson.dumps(data).decode()[:-1] + ',"at":'


def _shown(line: bytes) -> str:
    text = line.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= 100 else text[:100] + "..."
