"""Queries: which dimensions to show, and their points and totals per window.

`/plotpoints`, `/totals` and `/dimensions` share one selection: the parent
path, then (per `depth`) the children active in the window whose absolute
window total of the sort metric is at least `threshold` of their immediate
parent's, at most `limit` per parent, largest first, ties by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hailwhale.config import Limits
from hailwhale.events import decode_value, parse_path
from hailwhale.exceptions import InvalidInput, InvalidQuery
from hailwhale.formulas import Formula, parse_metric
from hailwhale.keys import Path, dim_key
from hailwhale.periods import Period, Periods
from whale.rollup import SUM, UNIQUE
from whale.store import Number, Series, Store

MAX_DEPTH = 3


@dataclass(frozen=True)
class Query:
    """A parsed `/plotpoints`, `/totals` or `/dimensions` request."""

    pk: Path
    path: Path
    metrics: tuple[Formula, ...]
    sort: Formula
    depth: int = 0
    threshold: float | None = 0.1
    limit: int | None = 10


def _param(params: Mapping[str, object], name: str, alias: str | None = None) -> object:
    value = params.get(name)
    if (value is None or value == "") and alias:
        value = params.get(alias)
    return None if value == "" else value


def _number(params: Mapping[str, object], name: str, default, kind=float, low=0, high=None):
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise InvalidQuery(name, f"{name} must be a {kind.__name__}, not {raw!r}") from None
    if value != value or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidQuery(name, f"{name} must be {bounds}, not {raw!r}")
    return value


def _metric_texts(value: object) -> list[str]:
    if value is None:
        return ["hits"]
    decoded = decode_value(value, "metrics") if isinstance(value, str) else value
    if isinstance(decoded, str):
        decoded = [decoded]
    if not isinstance(decoded, list) or not decoded:
        raise InvalidQuery("metrics", "metrics must be a name, a formula or a JSON list of them")
    if not all(isinstance(item, str) for item in decoded):
        raise InvalidQuery("metrics", "every metric must be a string (a name or a formula)")
    return decoded


def parse_query(
    params: Mapping[str, object], limits: Limits, *, threshold: float | None = 0.1,
    limit: int | None = 10,
) -> Query:
    """A Query from request parameters; `threshold`/`limit` are the defaults to use."""
    try:
        pk = parse_path(_param(params, "pk", "category"), "pk", limits)
        path = parse_path(_param(params, "dimensions", "dimension"), "dimensions", limits)
    except InvalidInput as error:
        raise InvalidQuery(error.param, error.message) from None
    options = dict(max_length=limits.formula_length, max_depth=limits.formula_depth)
    metrics = tuple(
        parse_metric(text, **options) for text in _metric_texts(_param(params, "metrics", "metric"))
    )
    sort_text = _param(params, "sort")
    if sort_text is None:
        sort = metrics[0]
    else:
        sort = parse_metric(str(sort_text).lstrip("-"), param="sort", **options)
    return Query(
        pk=pk,
        path=path,
        metrics=metrics,
        sort=sort,
        depth=_number(params, "depth", 0, int, 0, MAX_DEPTH),
        threshold=_number(params, "threshold", threshold),
        limit=_number(params, "limit", limit, int),
    )


def clean(value: float) -> Number:
    """Integral floats as ints, so JSON shows `500`, not `500.0`."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


class Reader:
    """Reads and memoizes the points and totals of one query's window."""

    def __init__(self, store: Store, query: Query, period: Period, now: float):
        self.store = store
        self.query = query
        self.period = period
        self.window = period.window(now)
        self.kinds = store.metric_kinds(query.pk)
        self._points: dict[tuple[Path, str], list[Number]] = {}
        self._totals: dict[tuple[Path, str], Number] = {}

    def _series(self, path: Path, name: str) -> Series:
        return Series(self.query.pk, path, name, self.kinds.get(name, SUM))

    def load(self, paths: Sequence[Path], names: Sequence[str]) -> None:
        """Fetch, in one round trip each, what is not read yet."""
        wanted = [(p, n) for p in paths for n in names if (p, n) not in self._points]
        if wanted:
            interval = self.period.interval
            series = [self._series(p, n) for p, n in wanted]
            for key, values in zip(wanted, self.store.points(series, interval, self.window)):
                self._points[key] = values
        uniques = [
            (p, n) for p in paths for n in names
            if self.kinds.get(n) == UNIQUE and (p, n) not in self._totals
        ]
        if uniques:
            series = [self._series(p, n) for p, n in uniques]
            totals = self.store.unique_totals(series, self.period.interval, self.window)
            self._totals.update(zip(uniques, totals))

    def points(self, path: Path, formula: Formula) -> list[list[Number]]:
        self.load([path], formula.names)
        columns = [self._points[(path, name)] for name in formula.names]
        if formula.text == formula.names[0]:  # a plain metric: its stored values as they are
            return [[bucket * 1000, value] for bucket, value in zip(self.window, columns[0])]
        out = []
        for i, bucket in enumerate(self.window):
            values = {name: column[i] for name, column in zip(formula.names, columns)}
            out.append([bucket * 1000, clean(formula.evaluate(values))])
        return out

    def total(self, path: Path, formula: Formula) -> Number:
        self.load([path], formula.names)
        values = {}
        for name in formula.names:
            if (path, name) in self._totals:
                values[name] = self._totals[(path, name)]
            else:
                values[name] = sum(self._points[(path, name)])
        return clean(formula.evaluate(values))

    def children(self, parents: Sequence[Path]) -> list[list[Path]]:
        since = self.window[0]
        found = self.store.children_of_many(self.query.pk, parents, since)
        return [[(*parent, name) for name in names] for parent, names in zip(parents, found)]

    def ranked(self, parent: Path, children: list[Path], threshold: float | None,
               limit: int | None) -> list[Path]:
        """Children ranked by |sort total| descending, ties by name, then cut."""
        sort = self.query.sort
        self.load([parent, *children], sort.names)
        floor = abs(self.total(parent, sort)) * threshold if threshold else None
        scored = [(abs(self.total(child, sort)), child) for child in children]
        if floor is not None:
            scored = [item for item in scored if item[0] >= floor]
        scored.sort(key=lambda item: (-item[0], item[1][-1]))
        if limit:
            scored = scored[:limit]
        return [child for _, child in scored]

    def selection(self) -> list[Path]:
        """The parent, then the shown descendants, each child followed by its own."""
        query = self.query
        tree: dict[Path, list[Path]] = {}
        level = [query.path]
        for _ in range(query.depth):
            for parent, children in zip(level, self.children(level)):
                tree[parent] = self.ranked(parent, children, query.threshold, query.limit)
            level = [child for parent in level for child in tree[parent]]
            if not level:
                break
        ordered: list[Path] = []

        def walk(path: Path) -> None:
            ordered.append(path)
            for child in tree.get(path, []):
                walk(child)

        walk(query.path)
        return ordered


def _all_names(query: Query) -> list[str]:
    return list(dict.fromkeys(name for f in query.metrics for name in f.names))


def plotpoints(store: Store, query: Query, period: Period, now: float) -> dict:
    """`{dim_key: {metric: [[epoch_ms, value], ...]}}` for the query's window."""
    reader = Reader(store, query, period, now)
    paths = reader.selection()
    reader.load(paths, _all_names(query))
    return {
        dim_key(path): {f.text: reader.points(path, f) for f in query.metrics} for path in paths
    }


def totals(store: Store, query: Query, periods: Sequence[Period], now: float) -> dict:
    """`{period: {dim_key: {metric: total}}}`, each over the same window as plotpoints."""
    out = {}
    for period in periods:
        reader = Reader(store, query, period, now)
        paths = reader.selection()
        reader.load(paths, _all_names(query))
        out[period.name] = {
            dim_key(path): {f.text: reader.total(path, f) for f in query.metrics}
            for path in paths
        }
    return out


def dimensions(store: Store, query: Query, period: Period, now: float) -> dict:
    """The children of the query's path active in the window, with their totals."""
    reader = Reader(store, query, period, now)
    [children] = reader.children([query.path])
    shown = reader.ranked(query.path, children, query.threshold, query.limit)
    reader.load(shown, _all_names(query))
    return {
        "period": period.name,
        "parent": dim_key(query.path),
        "children": [
            {
                "name": child[-1],
                "key": dim_key(child),
                "totals": {f.text: reader.total(child, f) for f in query.metrics},
            }
            for child in shown
        ],
    }


def find_periods(periods: Periods, name: object) -> list[Period]:
    """The period asked for, or every configured one when none is named."""
    if name is None or name == "":
        return list(periods.periods)
    return [periods.find(str(name))]
