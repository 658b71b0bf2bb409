"""Queries: which dimensions to show, and their points and totals per window.

`/plotpoints`, `/totals` and `/dimensions` share one selection: the parent
path, then (per `depth`) the children active in the window whose absolute
window total of the sort metric is at least `threshold` of their immediate
parent's, at most `limit` per parent, largest first, ties by name.

Bounded by design: a query names at most `Limits.query_metrics` metrics or
formulas, shows at most `Limits.query_limit` children per parent (`limit=0`, and
/dimensions without a limit, mean that many) and answers at most
`Limits.answer_points` points (dimensions x metrics x buckets, the periods of
/totals together), and a time range at most `Limits.points` buckets per series;
past these, a 400 that says the bound. Past its `timeout` a
query stops with a 503. A query runs in a thread of a server worker, which no timer
can interrupt in the middle of Python code, so the deadline is checked between Redis
round trips, each of a bounded number of keys, and between the series computed.
Parameters are checked and parsed into a Query by whale/query_params.py; a
Window says which buckets of which period answer it (`windows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from hailwhale.exceptions import InvalidQuery
from hailwhale.formulas import Formula
from hailwhale.keys import Path, dim_key
from hailwhale.periods import Periods, PeriodSpec, Window
from hailwhale.selection import rank, tree_order
from hailwhale.sums import exact_sum
from hailwhale.times import choose_window
from whale.deadline import Deadline
from whale.numbers import Number
from whale.query_params import Query
from whale.reads import Series
from whale.rollup import SUM, UNIQUE, window_chunks
from whale.store import Store

# Keys per Redis round trip: a series chunk holds a few hundred buckets and a children
# set at most Limits.children members, so every reply stays small and the deadline is
# checked often.
_KEYS_PER_READ = 1000
# A HyperLogLog is read as its count (a number a key), so a round trip takes more of them.
_HLLS_PER_READ = 10_000
_PARENTS_PER_READ = 10
_TOTALS_PER_CHECK = 500
HITS = "hits"  # every event adds 1 to it unless it sets it itself


def clean(value: float) -> Number:
    """Integral floats as ints, so JSON shows `500`, not `500.0`."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _answered(value: float | None) -> Number | None:
    return None if value is None else clean(value)


def _batches(items: Sequence, size: int, deadline: Deadline) -> Iterator[Sequence]:
    """`items` `size` at a time (one at least), the deadline checked before each."""
    size = max(1, size)
    for first in range(0, len(items), size):
        deadline.check()
        yield items[first:first + size]


class Reader:
    """Reads and memoizes the points and totals of one query's window."""

    def __init__(self, store: Store, query: Query, window: Window):
        self.store = store
        self.query = query
        self.period = window.period
        self.window = window.buckets
        self.past = window.past
        self.deadline = query.deadline
        self.kinds = store.metric_kinds(query.pk)
        self._points: dict[tuple[Path, str], list[Number]] = {}
        self._totals: dict[tuple[Path, str], Number] = {}

    def _series(self, path: Path, name: str) -> Series:
        return Series(self.query.pk, path, name, self.kinds.get(name, SUM))

    def _read(self, wanted: list[tuple[Path, str]]) -> Iterator[tuple[tuple[Path, str], list]]:
        """Per-bucket values of `wanted` (path, name) series, a bounded round trip at a time."""
        interval, window = self.period.interval, self.window
        # A sum series is a hash per chunk of buckets, a unique one a HyperLogLog per bucket.
        chunks = len(window_chunks(window, interval))
        per_read = {SUM: _KEYS_PER_READ // chunks, UNIQUE: _HLLS_PER_READ // len(window)}
        for kind, each in per_read.items():
            mine = [item for item in wanted if self.kinds.get(item[1], SUM) == kind]
            for batch in _batches(mine, each, self.deadline):
                series = [self._series(p, n) for p, n in batch]
                yield from zip(batch, self.store.points(series, interval, window))

    def load(self, paths: Sequence[Path], names: Sequence[str]) -> None:
        """Fetch the per-bucket points of `paths` x `names` not read yet."""
        wanted = [(p, n) for p in paths for n in names if (p, n) not in self._points]
        for key, values in self._read(wanted):
            self._points[key] = values
            if key not in self._totals and self.kinds.get(key[1]) != UNIQUE:
                self._totals[key] = exact_sum(values)

    def load_totals(self, paths: Sequence[Path], names: Sequence[str]) -> None:
        """Fetch the window totals of `paths` x `names` not known yet (no points kept)."""
        wanted = [(p, n) for p in paths for n in names if (p, n) not in self._totals]
        sums = [item for item in wanted if self.kinds.get(item[1]) != UNIQUE]
        interval, window = self.period.interval, self.window
        chunks = len(window_chunks(window, interval))
        for batch in _batches(sums, _KEYS_PER_READ // chunks, self.deadline):
            series = [self._series(p, n) for p, n in batch]
            self._totals.update(zip(batch, self.store.window_sums(series, interval, window)))
        uniques = [item for item in wanted if self.kinds.get(item[1]) == UNIQUE]
        for batch in _batches(uniques, _HLLS_PER_READ // len(window), self.deadline):
            series = [self._series(p, n) for p, n in batch]
            self._totals.update(zip(batch, self.store.unique_totals(series, interval, window)))

    def points(self, path: Path, formula: Formula) -> list[list[Number | None]]:
        """`[[epoch_ms, value], ...]` of `formula` for `path`, one per bucket (None: a
        division by an empty bucket, with `empty=null`)."""
        self.load([path], formula.names)
        stamps = [bucket * 1000 for bucket in self.window]
        if formula.is_name:  # its stored values as they are
            return [list(point) for point in zip(stamps, self._points[(path, formula.text)])]
        columns = {name: self._points[(path, name)] for name in formula.names}
        values = formula.evaluate_columns(columns, len(stamps), self.query.empty_null)
        return [[stamp, _answered(value)] for stamp, value in zip(stamps, values)]

    def total(self, path: Path, formula: Formula, ranking: bool = False) -> Number | None:
        """`formula` over the window totals of its parts for `path` (`ranking`: a
        division by an empty total counts 0, whatever `empty` asks to answer)."""
        self.load_totals([path], formula.names)
        if formula.is_name:  # as stored: an integral total past 2**53 stays exact
            return clean(self._totals[(path, formula.text)])
        return _answered(formula.evaluate({name: self._totals[(path, name)]
                                           for name in formula.names},
                                          self.query.empty_null and not ranking))

    def children(self, parents: Sequence[Path]) -> list[list[Path]]:
        """The children of each parent active in the window."""
        since = self.window[0]
        found: list[list[str]] = []
        for batch in _batches(parents, _PARENTS_PER_READ, self.deadline):
            found += self.store.children_of_many(self.query.pk, batch, since)
        children = [[(*parent, name) for name in names] for parent, names in zip(parents, found)]
        if not self.past:
            return children
        # The index knows when a child was last seen, not whether it was seen in a window
        # that ended before: a child counted in the window has hits there (every event adds
        # hits), one seen only later has none.
        self.load_totals([child for kids in children for child in kids], [HITS])
        return [[child for child in kids if self._totals[(child, HITS)]] for kids in children]

    def ranked(self, parent: Path, children: list[Path], threshold: float | None,
               limit: int | None) -> list[Path]:
        """Children ranked by |sort total| descending, ties by name, then cut."""
        sort = self.query.sort
        self.load_totals([parent, *children], sort.names)
        totals = []
        for batch in _batches(children, _TOTALS_PER_CHECK, self.deadline):
            totals += [(child, self.total(child, sort, ranking=True)) for child in batch]
        return rank(self.total(parent, sort, ranking=True), totals, threshold, limit)

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
        return tree_order(query.path, tree)

    def spend(self, paths: Sequence[Path], spent: int = 0) -> int:
        """`spent` plus the points `paths` make; past the query's bound, a 400 saying it."""
        query = self.query
        points = spent + len(paths) * len(query.metrics) * len(self.window)
        if points > query.max_points:
            raise InvalidQuery(
                "limit" if len(paths) > 1 else "metrics",
                f"the answer would hold {points:,} points ({len(paths)} dimensions x "
                f"{len(query.metrics)} metrics x {len(self.window)} buckets"
                f"{', with the periods before' if spent else ''}), over the bound of "
                f"{query.max_points:,} per answer: ask for fewer metrics, a smaller limit or "
                "depth, or a period with fewer buckets")
        return points


def _all_names(query: Query) -> list[str]:
    return list(dict.fromkeys(name for f in query.metrics for name in f.names))


def windows(periods: Periods, query: Query, period: PeriodSpec | None, now: float,
            every: bool = False, names: tuple[str, str] = ("from", "to")) -> list[Window]:
    """The windows that answer `query`, with the `period` asked for (None or "": none).

    With a time range: one, in `period` or the period hailwhale/times.py picks
    (`names`: of its start and end, for errors). Without: the latest window of
    `period`, or of the first configured one (of every one with `every`, as /totals
    answers).
    """
    wanted = None if period is None or period == "" else periods.find(period)
    if query.range is not None:
        return [choose_window(periods, query.range, now, query.max_buckets, wanted,
                              names=names)]
    if wanted is None and every:
        return [Window.latest(p, now) for p in periods.periods]
    return [Window.latest(wanted or periods.find(None), now)]


def _series(paths: Sequence[Path], values: Callable[[Path], dict], name: str) -> list[dict]:
    """`format=series`: each path's values with its dim_key and path, in order."""
    return [{"key": dim_key(path), "path": list(path), name: values(path)} for path in paths]


def plotpoints(store: Store, query: Query, window: Window) -> dict:
    """`{dim_key: {metric: [[epoch_ms, value], ...]}}` for the window; with
    `format=series`, `{"period": p, "series": [{"key", "path", "points"}, ...]}`."""
    reader = Reader(store, query, window)
    paths = reader.selection()
    reader.spend(paths)
    reader.load(paths, _all_names(query))

    def points(path: Path) -> dict:
        reader.deadline.check()
        return {f.text: reader.points(path, f) for f in query.metrics}

    if query.listed:
        return {"period": window.period.name, "series": _series(paths, points, "points")}
    return {dim_key(path): points(path) for path in paths}


def totals(store: Store, query: Query, windows: Sequence[Window]) -> dict:
    """`{period: {dim_key: {metric: total}}}`, each over its window (as plotpoints'); with
    `format=series`, `{"periods": [{"period", "series": [{"key", "path", "totals"}]}]}`."""
    out = {}
    spent = 0
    for window in windows:
        reader = Reader(store, query, window)
        paths = reader.selection()
        spent = reader.spend(paths, spent)
        reader.load_totals(paths, _all_names(query))

        def totals_of(path: Path, reader: Reader = reader) -> dict:
            return {f.text: reader.total(path, f) for f in query.metrics}

        if query.listed:
            out[window.period.name] = _series(paths, totals_of, "totals")
        else:
            out[window.period.name] = {dim_key(path): totals_of(path) for path in paths}
    if query.listed:
        return {"periods": [{"period": name, "series": series} for name, series in out.items()]}
    return out


def dimensions(store: Store, query: Query, window: Window) -> dict:
    """The children of the query's path active in the window, with their totals."""
    reader = Reader(store, query, window)
    [children] = reader.children([query.path])
    shown = reader.ranked(query.path, children, query.threshold, query.limit)
    reader.spend(shown)
    reader.load_totals(shown, _all_names(query))
    return {
        "period": window.period.name,
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
