"""Events: what a client sends to `/count`, validated into the increments it stands for.

Pure (no I/O, no clock: callers pass `now`). Bad input raises InvalidEvent naming the
parameter as the client spelled it, so nothing of the event is counted.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain
from operator import itemgetter
from typing import TypeGuard

import orjson

from hailwhale.config import Limits
from hailwhale.exceptions import InvalidEvent
from hailwhale.periods import Periods

Path = tuple[str, ...]

OVERALL, OTHER, HITS = "_", "_other", "hits"
ALIASES = {"pk": "category", "dimensions": "dimension", "metrics": "metric", "at": None}
FIELDS = frozenset(chain(ALIASES, filter(None, ALIASES.values())))
# Unicode categories Cc (control characters), Cs (surrogates) and Cf (invisible format
# and bidi controls: U+200B, U+202E, U+FEFF, tag characters...), as one class: a
# category lookup per character costs several times the regex on every name. The Cf
# ranges are Unicode 15.1's (a superset of the 13 and 14 of Python 3.10 and 3.11);
# tests/test_events.py checks the class against the running Python's own table.
_FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff"  # Cc, Cs
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"  # Cf
)
_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")  # the same class, on ASCII: 3x as fast
_SURROGATE = re.compile("[\ud800-\udfff]")
_KINDS = {"Cc": "a control character", "Cs": "a lone surrogate",
          "Cf": "an invisible format or bidi control character"}
_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
MAX_VALUE = 2**53  # |metric value| at most this: no sum of accepted events can overflow
_NOT_OURS = "not an event written by Event.to_json"
_STR, _NUMBERS = {str}, {int, float}


@dataclass(frozen=True)
class Event:
    """One valid event: its category, dimension prefixes, metrics and time."""

    pk: Path
    paths: tuple[Path, ...]
    sums: dict[str, int | float]
    uniques: dict[str, str]
    at: float

    def to_json(self) -> str:
        """Compact JSON for the Hail buffer; floats keep their exact value."""
        # orjson (~10x the standard library here, a hot path of Hail) writes NaN as null
        # and refuses ints past 64 bits, where json.dumps refuses and writes: defer to it.
        if math.isfinite(self.at) and all(map(_finite, self.sums.values())):
            try:
                return orjson.dumps(vars(self)).decode()
            except TypeError:
                pass
        return json.dumps(vars(self), separators=(",", ":"), ensure_ascii=False, allow_nan=False)

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
            event = cls(tuple(data["pk"]), paths, dict(data["sums"]), dict(data["uniques"]), at)
        except (TypeError, KeyError, ValueError, IndexError):
            raise InvalidEvent("event", _NOT_OURS) from None
        names = [*event.pk, *chain(*paths), *event.sums, *event.uniques, *event.uniques.values()]
        # Types, not isinstance: JSON gives exact types, and orjson no non-finite float.
        if not {*map(type, names)} <= _STR or not {*map(type, event.sums.values())} <= _NUMBERS:
            raise InvalidEvent("event", _NOT_OURS)
        return event


def loads(text: str | bytes, param: str) -> object:
    """Strict JSON: no NaN or Infinity, no overflow to infinity, no crash on deep nesting."""
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_finite_float)
    except RecursionError:
        raise InvalidEvent(param, "JSON nested too deeply") from None
    except ValueError as error:
        raise InvalidEvent(param, f"malformed JSON: {error}") from None


def decode_value(text: str, param: str = "value") -> object:
    """A query-string value: JSON if it starts with `[`, `{` or `"`, else the plain string."""
    if not text.startswith(("[", "{", '"')):
        return text
    try:
        return loads(text, param)
    except InvalidEvent as error:
        hint = 'a value starting with [, { or " is read as JSON (send a plain name as "...")'
        raise InvalidEvent(param, f"{error.message}; {hint}") from None


def parse_path(value: object, param: str, limits: Limits) -> Path:
    """The path a query reads (pk or parent dimension): a name or a JSON list of names.

    `_other`, where the cardinality guard counts what is past a limit, is readable
    here like any name; only events may not write it.
    """
    if isinstance(value, str):
        value = decode_value(value, param)
    return _path(param, None if _is_empty(value) else value, limits, query=True)


def parse_event(
    params: Mapping[str, object], *, periods: Periods, limits: Limits, now: float, encoded: bool
) -> Event:
    """Validate one event from a query string or form (`encoded`) or a JSON object.

    `params` holds event fields only: a name it does not know is refused, so that a
    typo (`dimesions`) is a 400, not an event counted without its dimensions.
    """
    if not isinstance(params, Mapping):
        raise InvalidEvent("event", f"an event is a JSON object, not {_show(params)}")
    for name in params:
        if name not in FIELDS:
            raise unknown_field(name, encoded)

    def given(name: str) -> tuple[str, object]:
        """The key the client used for `name` and its value; None if missing or empty."""
        keys = [key for key in (name, ALIASES[name]) if key and key in params]
        if len(keys) == 2:
            raise InvalidEvent(keys[1], f"give {name} or its alias {keys[1]}, not both")
        value = params[keys[0]] if keys else None
        if encoded and isinstance(value, str):
            value = decode_value(value, keys[0])
        return (keys[0] if keys else name), (None if _is_empty(value) else value)

    # One parameter at a time, so the first bad one is named whatever the encoding;
    # the names budget is spent in the same order and names the one that overdraws it.
    pk_param, pk_value = given("pk")
    pk = _path(pk_param, pk_value, limits)
    spent = _spend(0, pk, pk_param, limits)
    paths_param, paths_value = given("dimensions")
    paths = _dimensions(paths_param, paths_value, limits)
    spent = _spend(spent, map(itemgetter(-1), paths), paths_param, limits)
    metrics_param, metrics_value = given("metrics")
    sums, uniques = _metrics(metrics_param, metrics_value, limits)
    named = [name for name in chain(sums, uniques) if name != HITS or _names_hits(metrics_value)]
    _spend(spent, named, metrics_param, limits)
    return Event(pk, paths, sums, uniques, _at(*given("at"), periods, limits, now))


def parse_batch(items: object, *, periods: Periods, limits: Limits, now: float) -> list[Event]:
    """Validate a JSON array of events, every one of them, before returning any."""
    if not isinstance(items, (list, tuple)):
        raise InvalidEvent("batch", f"a batch is a JSON array of events, not {_show(items)}")
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
    return InvalidEvent(param, f"unknown {kind} {_show(text)}{hint}; {known}")


def _spend(spent: int, names: Iterable[str], param: str, limits: Limits) -> int:
    """`spent` plus the UTF-8 bytes of `names`; past the event's names budget, a 400."""
    spent += sum(map(len, map(str.encode, names)))  # no surrogates: refused before
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


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite double")
    return value


def _path(param: str, value: object, limits: Limits, query: bool = False) -> Path:
    if value is None or value in (OVERALL, [OVERALL], (OVERALL,)):
        return ()
    if isinstance(value, dict):
        raise InvalidEvent(param, "a path is a name or a JSON list of names, not a JSON object")
    items = value if isinstance(value, (list, tuple)) else [value]
    if len(items) > limits.path_depth:
        raise InvalidEvent(param, f"a path has at most {limits.path_depth} names, not {len(items)}")
    return tuple(_segment(item, param, limits, query) for item in items)


def _dimensions(param: str, value: object, limits: Limits) -> tuple[Path, ...]:
    if value is None or value in (OVERALL, [OVERALL], (OVERALL,)):
        return ()
    prefixes: dict[Path, None] = {}  # a dict keeps first-seen order

    def emit(path: Path) -> None:
        if len(path) > limits.path_depth:
            raise InvalidEvent(param, f"the path under {_show(path[0])} is more than "
                                      f"{limits.path_depth} names deep; flatten it")
        if path not in prefixes and len(prefixes) >= limits.prefixes:
            raise InvalidEvent(param, f"more than {limits.prefixes} dimension prefixes in one "
                                      "event; send fewer or shallower dimensions")
        prefixes[path] = None

    def walk(parent: Path, node: object) -> None:
        # Recursion is bounded: emit() raises past path_depth before walk() goes deeper.
        if isinstance(node, dict):
            for name, child in node.items():
                path = (*parent, _segment(name, param, limits))
                emit(path)
                walk(path, child)
        elif isinstance(node, (list, tuple)):
            for item in node:
                parent = (*parent, _segment(item, param, limits))
                emit(parent)
        else:
            emit((*parent, _segment(node, param, limits)))

    walk((), value)
    return tuple(prefixes)


def _segment(value: object, param: str, limits: Limits, query: bool = False) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        raise InvalidEvent(param, "null is not a name; use a string, or leave that branch out")
    elif (text := _spell(value)) is None:
        raise InvalidEvent(param, f"expected a name, found {_show(value)} (a list is one path: "
                                  "it holds names only)")
    text = _name(text, param, limits, "name")
    if text == OVERALL:
        raise InvalidEvent(param, "_ means overall on its own; it cannot be part of a path")
    if text == OTHER and not query:
        raise InvalidEvent(param, "_other is reserved for children past the limit; rename it")
    return text


def _name(text: str, param: str, limits: Limits, what: str) -> str:
    """`text` in NFC (so "café" is one name however it was typed), if it is a valid name."""
    if not text:
        raise InvalidEvent(param, f"empty {what}s are not allowed")
    bad = (_ASCII_CONTROL if text.isascii() else _FORBIDDEN).search(text)
    if bad is not None:
        char = bad.group()
        kind = _KINDS.get(unicodedata.category(char), "a control character")
        raise InvalidEvent(param, f"{what} {_show(text)} holds U+{ord(char):04X}, {kind}; "
                                  "remove it")
    text = unicodedata.normalize("NFC", text)
    if len(text) > limits.name_length:
        raise InvalidEvent(param, f"{what} {_show(text)} is over {limits.name_length} characters")
    return text


def _metrics(param: str, value: object, limits: Limits) -> tuple[dict, dict[str, str]]:
    sums: dict[str, int | float] = {}
    uniques: dict[str, str] = {}

    def check(name: object) -> str:
        if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
            raise InvalidEvent(param, f"metric name {_show(name)} must be a string of letters, "
                                      "digits, _ and . not starting with a digit or .")
        _name(name, param, limits, "metric name")  # ASCII: already in NFC
        if name not in sums and name not in uniques and len(sums) + len(uniques) >= limits.metrics:
            raise InvalidEvent(param, f"more than {limits.metrics} metrics in one event")
        return name

    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        for item in value:
            name = check(item)
            sums[name] = sums.get(name, 0) + 1
    elif isinstance(value, dict):
        for key, amount in value.items():
            name = check(key)
            if isinstance(amount, dict):
                uniques[name] = _unique_id(name, amount, param, limits)
            elif not _is_number(amount):
                raise InvalidEvent(param, f"metric {name}: {_show(amount)} is not a finite "
                                          'number; send a number or {"unique": id}')
            elif not -MAX_VALUE <= amount <= MAX_VALUE:
                raise InvalidEvent(param, f"metric {name}: {_show(amount)} is out of range; "
                                          f"values are at most 2**53 ({MAX_VALUE}) either way")
            else:
                sums[name] = amount
    elif value is not None:
        raise InvalidEvent(param, "metrics are a name, a JSON list of names or a JSON object "
                                  f"of name: number, not {_show(value)}")
    return (sums if HITS in sums else {HITS: 1, **sums}), uniques


def _unique_id(name: str, amount: dict, param: str, limits: Limits) -> str:
    if name == HITS:
        raise InvalidEvent(param, "hits is always a sum; give the distinct count another name")
    if list(amount) != ["unique"]:
        raise InvalidEvent(param, f'metric {name}: a distinct count is {{"unique": id}} alone')
    uid = amount["unique"]
    if not isinstance(uid, (str, bool)):
        uid = _spell(uid)
    if not isinstance(uid, str) or not uid:
        raise InvalidEvent(param, f"metric {name}: the unique id must be a non-empty string "
                                  f"or a number, not {_show(amount['unique'])}")
    if _SURROGATE.search(uid):
        raise InvalidEvent(param, f"metric {name}: the unique id holds a lone surrogate")
    uid = unicodedata.normalize("NFC", uid)
    if len(uid) > limits.unique_id_length:
        raise InvalidEvent(param, f"metric {name}: the unique id is over "
                                  f"{limits.unique_id_length} characters")
    return uid


def _at(param: str, value: object, periods: Periods, limits: Limits, now: float) -> float:
    if value is None:
        return float(now)
    try:
        at = _timestamp(value.strip()) if isinstance(value, str) else None
        at = float(value) if _is_number(value) else at
    except OverflowError:
        at = math.inf
    except ValueError:
        at = None
    if at is None:
        raise InvalidEvent(param, "expected epoch seconds or ISO 8601 such as "
                                  f"2024-05-01T12:00:00Z, not {_show(value)}")
    latest = now + limits.future_seconds
    if math.isfinite(at) and at <= latest and periods.intervals_holding(at, now):
        return at
    earliest = min(periods.window_start(interval, now) for interval in periods.intervals)
    raise InvalidEvent(param, f"{_show(value)} is outside the accepted range, {_iso(earliest)} "
                              f"to {_iso(latest)} ({earliest} to {math.floor(latest)} epoch "
                              "seconds)")


def _timestamp(text: str) -> float:
    """Epoch seconds of a numeric string or an ISO 8601 time (UTC if no zone)."""
    if _NUMBER.fullmatch(text):
        return float(text)
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    """True for an int or a finite float, not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _spell(value: object) -> str | None:
    """The JSON spelling of an int or finite float; None for others and absurd ints."""
    if not _is_number(value) or (isinstance(value, int) and value.bit_length() > 4096):
        return None
    return json.dumps(value)


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(math.floor(t), timezone.utc).isoformat().replace("+00:00", "Z")


def _show(value: object) -> str:
    """A short description of `value` for an error message, safe for any input."""
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    if isinstance(value, (dict, list, tuple)):
        return "a JSON object" if isinstance(value, dict) else "a JSON list"
    if isinstance(value, int) and value.bit_length() >= 200:
        return "a very large number"
    return json.dumps(value) if value is None or isinstance(value, bool) else repr(value)[:60]
