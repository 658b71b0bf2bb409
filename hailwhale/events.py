"""Events: what a client sends to `/count`, validated into the increments it stands for.

Pure (no I/O, no clock: callers pass `now`). Bad input raises InvalidEvent naming the
parameter as the client spelled it, so nothing of the event is counted.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import TypeVar

import orjson

from hailwhale.config import Limits
from hailwhale.exceptions import InvalidEvent
from hailwhale.keys import OVERALL, Path
from hailwhale.periods import Periods
from hailwhale.values import (
    check_name,
    decode_value,
    is_empty,
    is_number,
    iso,
    parse_time,
    segment,
    show,
    spell_number,
    to_path,
)

HITS = "hits"
ALIASES = {"pk": "category", "dimensions": "dimension", "metrics": "metric", "at": None}
FIELDS = frozenset(chain(ALIASES, filter(None, ALIASES.values())))
_SURROGATE = re.compile("[\ud800-\udfff]")
_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
MAX_VALUE = 2**53  # |metric value| at most this: no sum of accepted events can overflow
_NOT_OURS = "not an event written by Event.to_json"
_STR, _NUMBERS, _INTS = {str}, {int, float}, {int}
_REMEMBERED = 4096  # pk and dimensions values, and metric names, checked and remembered
_REMEMBERED_BYTES = 512  # a longer spelling is checked every time
_known: dict[tuple, tuple] = {}
_metric_names: set[str] = set()
T = TypeVar("T")


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
    pk, spent = ((), 0) if pk_value is None else _remembered(_pk, pk_param, pk_value, limits)
    spent = _spend(0, spent, pk_param, limits)
    paths_param, paths_value = _given(params, "dimensions", encoded)
    paths, cost = _remembered(_dimensions, paths_param, paths_value, limits)
    spent = _spend(spent, cost, paths_param, limits)
    metrics_param, metrics_value = _given(params, "metrics", encoded)
    sums, uniques = _metrics(metrics_param, metrics_value, limits)
    # metric names are ASCII (one byte a character); the automatic `hits` costs nothing
    cost = sum(map(len, sums)) + sum(map(len, uniques))
    _spend(spent, cost if _names_hits(metrics_value) else cost - len(HITS), metrics_param,
           limits)
    at_param, at_value = _given(params, "at", encoded)
    if at_value is None:
        return Event.checked(pk, paths, sums, uniques, float(now), periods.intervals)
    return Event.checked(pk, paths, sums, uniques, *_at(at_param, at_value, periods, limits, now))


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


def _remembered(check: Callable[[str, object, Limits], tuple[T, int]], param: str,
                value: object, limits: Limits) -> tuple[T, int]:
    """`check(param, value, limits)` for a pk or dimensions value, remembered by its JSON
    spelling and the limits that bound it: a stream repeats a few hundred. Only what
    passed is remembered, so an error is always found, and named, by checking."""
    try:
        spelling = value if type(value) is str else orjson.dumps(value)
    except TypeError:  # not JSON (a Python caller's set, an int past 64 bits)
        return check(param, value, limits)
    if len(spelling) > _REMEMBERED_BYTES:
        return check(param, value, limits)
    key = (check, spelling, limits.path_depth, limits.prefixes, limits.name_length)
    found = _known.get(key)
    if found is None:
        found = check(param, value, limits)
        if len(_known) >= _REMEMBERED:
            _known.clear()
        _known[key] = found
    return found


def _utf8(names: Iterable[str]) -> int:
    return sum(map(len, map(str.encode, names)))  # no surrogates: refused before


def _spend(spent: int, cost: int, param: str, limits: Limits) -> int:
    """`spent` plus `cost` bytes of names; past the event's names budget, a 400."""
    spent += cost
    if spent > limits.names_bytes:
        raise InvalidEvent(param, f"the names of one event (pk, dimension names and metric "
                                  f"names together) are over {limits.names_bytes} bytes of "
                                  "UTF-8; send fewer or shorter names")
    return spent


def _names_hits(value: object) -> bool:
    """Whether the client named `hits` itself (the automatic one costs no budget)."""
    if isinstance(value, str):
        return value == HITS
    return isinstance(value, (list, tuple, dict)) and HITS in value


def _pk(param: str, value: object, limits: Limits) -> tuple[Path, int]:
    """The pk path of `value`, and the UTF-8 bytes of its names."""
    pk = to_path(param, value, limits)
    return pk, _utf8(pk)


def _dimensions(param: str, value: object, limits: Limits) -> tuple[tuple[Path, ...], int]:
    """The dimension prefixes of `value`, and the UTF-8 bytes of their names."""
    if value is None or value in (OVERALL, [OVERALL], (OVERALL,)):
        return (), 0
    prefixes: dict[Path, None] = {}  # a dict keeps first-seen order

    def emit(path: Path) -> None:
        if len(path) > limits.path_depth:
            raise InvalidEvent(param, f"the path under {show(path[0])} is more than "
                                      f"{limits.path_depth} names deep; flatten it")
        if path not in prefixes and len(prefixes) >= limits.prefixes:
            raise InvalidEvent(param, f"more than {limits.prefixes} dimension prefixes in one "
                                      "event; send fewer or shallower dimensions")
        prefixes[path] = None

    def walk(parent: Path, node: object) -> None:
        # Recursion is bounded: emit() raises past path_depth before walk() goes deeper.
        if isinstance(node, dict):
            for name, child in node.items():
                path = (*parent, segment(name, param, limits))
                emit(path)
                walk(path, child)
        elif isinstance(node, (list, tuple)):
            for item in node:
                parent = (*parent, segment(item, param, limits))
                emit(parent)
        else:
            emit((*parent, segment(node, param, limits)))

    walk((), value)
    return tuple(prefixes), _utf8(map(itemgetter(-1), prefixes))


def _metrics(param: str, value: object, limits: Limits) -> tuple[dict, dict[str, str]]:
    sums: dict[str, int | float] = {}
    uniques: dict[str, str] = {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        for item in value:
            name = _metric_name(item, param, limits, sums, uniques)
            sums[name] = sums.get(name, 0) + 1
    elif isinstance(value, dict):
        few = len(value) <= limits.metrics  # then no name passes the count (keys differ)
        for name, amount in value.items():
            if not (few and type(name) is str and name in _metric_names
                    and len(name) <= limits.name_length):
                name = _metric_name(name, param, limits, sums, uniques)
            kind = type(amount)
            if (kind is int or kind is float) and -MAX_VALUE <= amount <= MAX_VALUE:
                sums[name] = amount  # the usual value, at once (NaN fails the comparison)
            elif isinstance(amount, dict):
                uniques[name] = _unique_id(name, amount, param, limits)
            elif not is_number(amount):
                raise InvalidEvent(param, f"metric {name}: {show(amount)} is not a finite "
                                          'number; send a number or {"unique": id}')
            elif not -MAX_VALUE <= amount <= MAX_VALUE:
                raise InvalidEvent(param, f"metric {name}: {show(amount)} is out of range; "
                                          f"values are at most 2**53 ({MAX_VALUE}) either way")
            else:
                sums[name] = amount
    elif value is not None:
        raise InvalidEvent(param, "metrics are a name, a JSON list of names or a JSON object "
                                  f"of name: number, not {show(value)}")
    return (sums if HITS in sums else {HITS: 1, **sums}), uniques


def _metric_name(name: object, param: str, limits: Limits, sums: dict, uniques: dict) -> str:
    """`name`, if it is a good name for one more metric of an event holding these."""
    if type(name) is not str or name not in _metric_names:
        if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
            raise InvalidEvent(param, f"metric name {show(name)} must be a string of letters, "
                                      "digits, _ and . not starting with a digit or .")
        if len(_metric_names) >= _REMEMBERED:
            _metric_names.clear()
        _metric_names.add(name)
    if len(name) > limits.name_length:  # ASCII, no control character: in NFC, only too
        check_name(name, param, limits, "metric name")  # long (check_name says so)
    if name not in sums and name not in uniques and len(sums) + len(uniques) >= limits.metrics:
        raise InvalidEvent(param, f"more than {limits.metrics} metrics in one event")
    return name


def _unique_id(name: str, amount: dict, param: str, limits: Limits) -> str:
    if name == HITS:
        raise InvalidEvent(param, "hits is always a sum; give the distinct count another name")
    if list(amount) != ["unique"]:
        raise InvalidEvent(param, f'metric {name}: a distinct count is {{"unique": id}} alone')
    uid = amount["unique"]
    if not isinstance(uid, (str, bool)):
        uid = spell_number(uid)
    if not isinstance(uid, str) or not uid:
        raise InvalidEvent(param, f"metric {name}: the unique id must be a non-empty string "
                                  f"or a number, not {show(amount['unique'])}")
    if _SURROGATE.search(uid):
        raise InvalidEvent(param, f"metric {name}: the unique id holds a lone surrogate")
    uid = unicodedata.normalize("NFC", uid)
    if len(uid) > limits.unique_id_length:
        raise InvalidEvent(param, f"metric {name}: the unique id is over "
                                  f"{limits.unique_id_length} characters")
    return uid


def _at(
    param: str, value: object, periods: Periods, limits: Limits, now: float
) -> tuple[float, tuple[int, ...]]:
    """The event's time and the intervals whose window holds it at `now`: the one check."""
    if value is None:
        return float(now), periods.intervals
    try:
        at = parse_time(value.strip()) if isinstance(value, str) else None
        at = float(value) if is_number(value) else at
    except OverflowError:
        at = math.inf
    except ValueError:
        at = None
    if at is None:
        raise InvalidEvent(param, "expected epoch seconds or ISO 8601 such as "
                                  f"2024-05-01T12:00:00Z, not {show(value)}")
    latest = now + limits.future_seconds
    intervals = tuple(periods.intervals_holding(at, now)) if math.isfinite(at) else ()
    if at <= latest and intervals:
        return at, intervals
    earliest = min(periods.window_start(interval, now) for interval in periods.intervals)
    raise InvalidEvent(param, f"{show(value)} is outside the accepted range, {iso(earliest)} "
                              f"to {iso(latest)} ({earliest} to {math.floor(latest)} epoch "
                              "seconds)")


