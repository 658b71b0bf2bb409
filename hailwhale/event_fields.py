"""The fields of an event checked one by one: pk, dimensions, metrics and at.

Pure, as hailwhale/events.py, which calls them in order. A pk or dimensions value is
checked once per spelling and remembered (a stream repeats a few hundred).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import TypeVar

import orjson

from hailwhale.config import Limits
from hailwhale.exceptions import InvalidEvent
from hailwhale.keys import OVERALL, Path
from hailwhale.periods import Periods
from hailwhale.values import (
    check_name,
    is_number,
    iso,
    parse_time,
    segment,
    show,
    spell_number,
    to_path,
)

HITS = "hits"
_SURROGATE = re.compile("[\ud800-\udfff]")
_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
MAX_VALUE = 2**53  # |metric value| at most this: no sum of accepted events can overflow
_REMEMBERED = 4096  # pk and dimensions values, and metric names, checked and remembered
_REMEMBERED_BYTES = 512  # a longer spelling is checked every time
_known: dict[tuple, tuple] = {}
_metric_names: set[str] = set()
T = TypeVar("T")


def remembered(check: Callable[[str, object, Limits], tuple[T, int]], param: str,
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


def spend_names(spent: int, cost: int, param: str, limits: Limits) -> int:
    """`spent` plus `cost` bytes of names; past the event's names budget, a 400."""
    spent += cost
    if spent > limits.names_bytes:
        raise InvalidEvent(param, f"the names of one event (pk, dimension names and metric "
                                  f"names together) are over {limits.names_bytes} bytes of "
                                  "UTF-8; send fewer or shorter names")
    return spent


def names_hits(value: object) -> bool:
    """Whether the client named `hits` itself (the automatic one costs no budget)."""
    if isinstance(value, str):
        return value == HITS
    return isinstance(value, (list, tuple, dict)) and HITS in value


def check_pk(param: str, value: object, limits: Limits) -> tuple[Path, int]:
    """The pk path of `value`, and the UTF-8 bytes of its names."""
    pk = to_path(param, value, limits)
    return pk, _utf8(pk)


def check_dimensions(param: str, value: object, limits: Limits) -> tuple[tuple[Path, ...], int]:
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


def check_metrics(param: str, value: object, limits: Limits) -> tuple[dict, dict[str, str]]:
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


def check_at(
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


