"""Events: what a client sends to `/count`, validated into the increments it stands for.

Pure (no I/O, no clock: callers pass `now`). Bad input raises InvalidEvent naming the
parameter as the client spelled it, so nothing of the event is counted.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain

import orjson

from hailwhale.config import Limits
from hailwhale.event_fields import (
    HITS,
    check_at,
    check_dimensions,
    check_metrics,
    check_pk,
    names_hits,
    remembered,
    spend_names,
)
from hailwhale.exceptions import InvalidEvent
from hailwhale.keys import Path
from hailwhale.periods import Periods
from hailwhale.values import (
    decode_value,
    is_empty,
    show,
)

ALIASES = {"pk": "category", "dimensions": "dimension", "metrics": "metric", "at": None}
FIELDS = frozenset(chain(ALIASES, filter(None, ALIASES.values())))
_NOT_OURS = "not an event written by Event.to_json"
_STR, _NUMBERS, _INTS = {str}, {int, float}, {int}


@dataclass(frozen=True)
class Event:
    """One valid event: its category, dimension prefixes, metrics and time.

    `intervals` are those whose window held `at` when the event was received, decided
    once, at parse: the event counts there however late it is rolled up (its buckets
    outlive the window by their retention). None for an event not parsed here (built
    by hand, or buffered by an earlier version): the roller then decides, once.
    """

    pk: Path
    paths: tuple[Path, ...]
    sums: dict[str, int | float]
    uniques: dict[str, str]
    at: float
    intervals: tuple[int, ...] | None = field(default=None, compare=False)

    def to_json(self) -> str:
        """Compact JSON for the Hail buffer; floats keep their exact value."""
        return self.to_json_bytes().decode()

    def to_json_bytes(self) -> bytes:
        """`to_json` in UTF-8, as the buffer keeps it."""
        # orjson would write NaN as null: refuse it, as parsing refuses it.
        if not (math.isfinite(self.at) and all(map(math.isfinite, self.sums.values()))):
            raise ValueError("an event with a non-finite number has no JSON")
        return orjson.dumps(vars(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """The event that `to_json` wrote."""
        try:
            data = orjson.loads(text)  # refuses NaN, Infinity and overflow, as `loads` does
        except orjson.JSONDecodeError as error:
            raise InvalidEvent("event", f"malformed JSON: {error}") from None
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: object) -> Event:
        """The event whose `to_json` text, parsed, is `data`."""
        try:
            at, paths = float(data["at"]), tuple(map(tuple, data["paths"]))
            intervals = data.get("intervals")
            intervals = None if intervals is None else tuple(intervals)
            event = cls(tuple(data["pk"]), paths, dict(data["sums"]), dict(data["uniques"]), at,
                        intervals)
        except (TypeError, KeyError, ValueError, IndexError, AttributeError):
            raise InvalidEvent("event", _NOT_OURS) from None
        names = [*event.pk, *chain(*paths), *event.sums, *event.uniques, *event.uniques.values()]
        # Types, not isinstance: JSON gives exact types, and orjson no non-finite float.
        if (not {*map(type, names)} <= _STR or not {*map(type, event.sums.values())} <= _NUMBERS
                or not {*map(type, intervals or ())} <= _INTS):
            raise InvalidEvent("event", _NOT_OURS)
        return event

    @classmethod
    def checked(cls, pk: Path, paths: tuple[Path, ...], sums: dict[str, int | float],
                uniques: dict[str, str], at: float, intervals: tuple[int, ...] | None) -> Event:
        """The event of parts its caller checked (parsing, or reading a buffered item back),
        built without the frozen dataclass's six `object.__setattr__` calls (half of it)."""
        event = object.__new__(cls)
        event.__dict__.update(pk=pk, paths=paths, sums=sums, uniques=uniques, at=at,
                              intervals=intervals)
        return event


def parse_event(
    params: Mapping[str, object], *, periods: Periods, limits: Limits, now: float, encoded: bool
) -> Event:
    """Validate one event from a query string or form (`encoded`) or a JSON object.

    `params` holds event fields only: a name it does not know is refused, so that a
    typo (`dimesions`) is a 400, not an event counted without its dimensions.
    """
    if type(params) is not dict and not isinstance(params, Mapping):
        raise InvalidEvent("event", f"an event is a JSON object, not {show(params)}")
    if not FIELDS.issuperset(params):
        raise unknown_field(next(name for name in params if name not in FIELDS), encoded)

    # One parameter at a time, so the first bad one is named whatever the encoding;
    # the names budget is spent in the same order and names the one that overdraws it.
    pk_param, pk_value = _given(params, "pk", encoded)
    pk, spent = ((), 0) if pk_value is None else remembered(check_pk, pk_param, pk_value, limits)
    spent = spend_names(0, spent, pk_param, limits)
    paths_param, paths_value = _given(params, "dimensions", encoded)
    paths, cost = remembered(check_dimensions, paths_param, paths_value, limits)
    spent = spend_names(spent, cost, paths_param, limits)
    metrics_param, metrics_value = _given(params, "metrics", encoded)
    sums, uniques = check_metrics(metrics_param, metrics_value, limits)
    # metric names are ASCII (one byte a character); the automatic `hits` costs nothing
    cost = sum(map(len, sums)) + sum(map(len, uniques))
    spend_names(spent, cost if names_hits(metrics_value) else cost - len(HITS), metrics_param,
           limits)
    at_param, at_value = _given(params, "at", encoded)
    if at_value is None:
        return Event.checked(pk, paths, sums, uniques, float(now), periods.intervals)
    at, intervals = check_at(at_param, at_value, periods, limits, now)
    return Event.checked(pk, paths, sums, uniques, at, intervals)


def parse_batch(items: object, *, periods: Periods, limits: Limits, now: float) -> list[Event]:
    """Validate a JSON array of events, every one of them, before returning any."""
    if not isinstance(items, (list, tuple)):
        raise InvalidEvent("batch", f"a batch is a JSON array of events, not {show(items)}")
    if not 0 < len(items) <= limits.batch:
        raise InvalidEvent("batch", f"a batch holds 1 to {limits.batch} events, not {len(items)}")
    events = []
    for index, item in enumerate(items):
        try:
            events.append(parse_event(item, periods=periods, limits=limits, now=now, encoded=False))
        except InvalidEvent as error:
            raise InvalidEvent(error.param, f"event {index}: {error.message}") from None
    return events


def unknown_field(name: object, encoded: bool) -> InvalidEvent:
    """The error that refuses a parameter (`encoded`) or JSON field an event does not have."""
    text = name if isinstance(name, str) else repr(name)
    # The error names the parameter; a client's 1 MiB key is not echoed back whole.
    param = text if len(text) <= 100 else text[:100] + "..."
    kind = "parameter" if encoded else "field"
    known = ("an event has pk, dimensions, metrics and at (or category, dimension, metric)"
             if encoded else "an event object has pk, dimensions, metrics and at")
    close = difflib.get_close_matches(text[:100], sorted(FIELDS), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    if text == "events" and not encoded:
        hint = "; a batch is a JSON array of event objects, not an object holding one"
    return InvalidEvent(param, f"unknown {kind} {show(text)}{hint}; {known}")


def _given(params: Mapping[str, object], name: str, encoded: bool) -> tuple[str, object]:
    """The key the client used for `name` and its value; None if missing or empty."""
    alias = ALIASES[name]
    if alias is not None and alias in params:
        if name in params:
            raise InvalidEvent(alias, f"give {name} or its alias {alias}, not both")
        name = alias
    elif name not in params:
        return name, None
    value = params[name]
    if encoded and isinstance(value, str):
        value = decode_value(value, name)
    return name, (None if is_empty(value) else value)
