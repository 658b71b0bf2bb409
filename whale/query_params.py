"""Query parameters: a request's parameters checked, then parsed into a Query."""

from __future__ import annotations

import difflib
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from hailwhale.config import DEFAULT_CHILDREN, DEFAULT_THRESHOLD, Limits
from hailwhale.exceptions import InvalidInput, InvalidQuery
from hailwhale.formulas import Formula, parse_metric
from hailwhale.keys import Path
from hailwhale.times import TimeRange, parse_time
from hailwhale.values import decode_value, parse_path
from whale.deadline import Deadline

MAX_DEPTH = 3
# What /plotpoints, /totals and /dimensions take; `tzoffset` (the original plugin's)
# is accepted and ignored: windows are UTC buckets, the plugin shows local time.
QUERY_PARAMS = frozenset({
    "pk", "category", "dimensions", "dimension", "metrics", "metric", "period", "depth",
    "threshold", "limit", "sort", "tzoffset", "from", "to", "format", "empty",
})
# `format=series`: /plotpoints and /totals as lists in the server's order, each series
# with its path (what the jQuery plugin asks for), rather than objects keyed by dim_key.
SERIES_FORMAT = "series"
# `empty=null`: a formula's value that a division by an empty (0) bucket leaves without
# one is null, so a graph of `dollars/hits` has gaps rather than drops to 0; `zero`
# (the default, as the contract says) answers 0.
EMPTY_CHOICES = ("zero", "null")
# Names the period that answered a time range (hailwhale/times.py chose it).
PERIOD_HEADER = "X-HailWhale-Period"
# Taken by every endpoint, even repeated (a proxy may add its own): `_`, a cache-buster
# (jQuery's cache: false), and the access key, which whale/access.py reads.
ALWAYS_ACCEPTED = frozenset({"_", "key"})
# Aliases: one parameter with two spellings, so giving both is giving it twice.
SAME_PARAM = {"category": "pk", "dimension": "dimensions", "metric": "metrics"}


@dataclass(frozen=True)
class Query:
    """A parsed `/plotpoints`, `/totals` or `/dimensions` request."""

    pk: Path
    path: Path
    metrics: tuple[Formula, ...]
    sort: Formula
    depth: int = 0
    threshold: float | None = DEFAULT_THRESHOLD
    limit: int = DEFAULT_CHILDREN
    max_points: int = Limits.answer_points
    max_buckets: int = Limits.points  # per series, when a time range sets the window
    range: TimeRange | None = None  # `from` and `to`; None: the period's latest window
    listed: bool = False  # format=series
    empty_null: bool = False  # empty=null
    deadline: Deadline = field(default_factory=lambda: Deadline(None), compare=False)


def _shown(name: str) -> str:
    """A parameter name for an error: a client's 1 MiB name is not echoed back whole."""
    return name if len(name) <= 100 else name[:100] + "..."


def check_params(
    items: Iterable[tuple[str, str]], known: Collection[str],
    aliases: Mapping[str, str] = SAME_PARAM,
) -> dict[str, str]:
    """`items`, (name, value) pairs as sent, as a dict; a name not `known` or given twice
    (an alias counts as its parameter) is a 400 naming it. `_` and `key` always pass."""
    given: dict[str, str] = {}  # parameter -> the spelling that gave it
    params: dict[str, str] = {}
    for name, value in items:
        if name in ALWAYS_ACCEPTED:
            params[name] = value
            continue
        if name not in known:
            close = difflib.get_close_matches(name[:100], sorted(known), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InvalidQuery(_shown(name), f"unknown parameter {_shown(name)!r}{hint}; "
                                             f"this endpoint takes {', '.join(sorted(known))}")
        same = aliases.get(name, name)
        if same in given:
            first = given[same]
            twice = "is given twice" if first == name else f"and {first!r} are one parameter"
            raise InvalidQuery(name, f"{name!r} {twice}: give it once")
        given[same] = name
        params[name] = value
    return params


def _param(params: Mapping[str, object], name: str, alias: str | None = None) -> object:
    value = params.get(name)
    if (value is None or value == "") and alias:
        value = params.get(alias)
    return None if value == "" else value


def _number(params: Mapping[str, object], name: str, default, kind=float, low=0, high=None,
            note: str = ""):
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:60] + "..."
    # A JSON body (Grafana's payload) gives numbers as they are: 1.5 or true is no int.
    inexact = isinstance(raw, bool) or (
        kind is int and isinstance(raw, float) and not raw.is_integer())
    try:
        value = kind(raw)
    except (TypeError, ValueError, OverflowError):
        inexact = True
    if inexact:
        what = "a whole number" if kind is int else "a number"
        raise InvalidQuery(name, f"{name} must be {what}, not {shown}") from None
    if value != value or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}{note}" if high is not None else f"at least {low}"
        raise InvalidQuery(name, f"{name} must be {bounds}, not {shown}")
    return value


def _metric_texts(value: object, limits: Limits) -> list[str]:
    if value is None:
        return ["hits"]
    decoded = decode_value(value, "metrics") if isinstance(value, str) else value
    if isinstance(decoded, str):
        decoded = [decoded]
    if not isinstance(decoded, list) or not decoded:
        raise InvalidQuery("metrics", "metrics must be a name, a formula or a JSON list of them")
    if len(decoded) > limits.query_metrics:
        raise InvalidQuery("metrics", f"a query takes at most {limits.query_metrics} metrics "
                                      f"or formulas, not {len(decoded)}")
    if not all(isinstance(item, str) for item in decoded):
        raise InvalidQuery("metrics", "every metric must be a string (a name or a formula)")
    return decoded


def parse_query(
    params: Mapping[str, object], limits: Limits, timeout: float | None = None, *,
    threshold: float | None = DEFAULT_THRESHOLD, limit: int | None = DEFAULT_CHILDREN,
    now: float | None = None,
) -> Query:
    """A Query from request parameters (checked by `check_params` first, for a request).

    `threshold` and `limit` are the defaults (a `limit` of None or 0: the most,
    `limits.query_limit`); the query's deadline is `timeout` seconds from now.
    `from` and `to` make its time range (relative ones from `now`, default the clock's).
    """
    deadline = Deadline(timeout)
    try:
        pk = parse_path(_param(params, "pk", "category"), "pk", limits)
        path = parse_path(_param(params, "dimensions", "dimension"), "dimensions", limits)
    except InvalidInput as error:
        raise InvalidQuery(error.param, error.message) from None
    options = dict(max_length=limits.formula_length, max_depth=limits.formula_depth)
    texts = _metric_texts(_param(params, "metrics", "metric"), limits)
    metrics = tuple(parse_metric(text, **options) for text in texts)
    sort_text = _param(params, "sort")
    if sort_text is None:
        sort = metrics[0]
    else:
        sort = parse_metric(str(sort_text).lstrip("-"), param="sort", **options)
    most = limits.query_limit
    given_limit = _number(params, "limit", limit, int, 0, most, f" (0: {most})")
    return Query(
        pk=pk,
        path=path,
        metrics=metrics,
        sort=sort,
        depth=_number(params, "depth", 0, int, 0, MAX_DEPTH),
        threshold=_number(params, "threshold", threshold),
        limit=min(given_limit or most, most),
        max_points=limits.answer_points,
        max_buckets=limits.points,
        range=_time_range(params, now),
        listed=_listed(params),
        empty_null=_empty_null(params),
        deadline=deadline,
    )


def _listed(params: Mapping[str, object]) -> bool:
    given = _param(params, "format")
    if given is not None and given != SERIES_FORMAT:
        raise InvalidQuery("format", f"format is {SERIES_FORMAT!r} (lists, each series with "
                                     f"its path) or absent (objects keyed by dim_key), "
                                     f"not {_shown(str(given))!r}")
    return given == SERIES_FORMAT


def _empty_null(params: Mapping[str, object]) -> bool:
    given = _param(params, "empty")
    if given is not None and given not in EMPTY_CHOICES:
        raise InvalidQuery("empty", "empty is 'null' (a formula divided by an empty bucket "
                                    "answers null there) or 'zero' (0, the default), "
                                    f"not {_shown(str(given))!r}")
    return given == "null"


def _time_range(params: Mapping[str, object], now: float | None) -> TimeRange | None:
    given = {name: _param(params, name) for name in ("from", "to")}
    if all(value is None for value in given.values()):
        return None
    now = time.time() if now is None else now
    start, end = (None if value is None else parse_time(str(value), now, name)
                  for name, value in given.items())
    return TimeRange(start, end)
