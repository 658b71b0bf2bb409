"""The Python API: count and query from a program, no HTTP in between."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timezone

from redis import Redis

from hailwhale.config import Limits
from hailwhale.embedded import RedisServer
from hailwhale.events import Event, parse_event
from hailwhale.keys import KeySpace
from hailwhale.periods import DEFAULT_PERIODS, Periods, PeriodSpec, Window
from hailwhale.times import TimeRange, When, dataset_since, python_time, to_epoch
from whale.connect import client
from whale.query_params import Query

Point = tuple[datetime, float]


class HailWhale:
    """Count events and read graphs, on a Redis URL or an embedded Redis under ./data/.

    A period is taken in any spelling: `"15s:3h"`, `"15x10800"` or the seed's
    `(15, 10800)` (interval and length in seconds). Query methods take `start_at` and
    `end_at` (see `When`) as the HTTP API takes `from` and `to`.
    """

    def __init__(
        self,
        url: str | None = None,
        periods: str | PeriodSpec | Iterable[PeriodSpec] | Periods = DEFAULT_PERIODS,
        *,
        redis: Redis | None = None,
        data_dir: str = "data",
        key_prefix: str = "hw",
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ):
        from whale.store import Store  # whale builds on hailwhale; import when used

        self.periods = Periods.parse(periods)
        self.limits = limits or Limits()
        self.server: RedisServer | None = None
        if redis is None:
            if url is None:
                # Uses the embedded Redis already running on data_dir (a `hailwhale serve`'s),
                # or starts one that this object then owns.
                self.server = RedisServer(data_dir).start()
                url = self.server.url
            redis = client(url)
        self.store = Store(redis, self.periods, KeySpace(key_prefix), clock=clock,
                           children_limit=self.limits.children,
                           pks_limit=self.limits.pks,
                           metrics_limit=self.limits.metric_names)

    def close(self) -> None:
        """Close the connection, and stop the embedded Redis if this object started it.

        One found running (a server's, say) is left running: it is not ours to stop.
        """
        self.store.redis.close()
        if self.server:
            self.server.stop()  # only forgets an adopted server
            self.server = None

    def __enter__(self) -> HailWhale:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def event(self, encoded: bool = False, **params: object) -> Event:
        """Validate an event given as the `/count` parameters (`encoded`: as query strings).

        `at` may also be a datetime (naive: local time), a date or a timedelta (ago).
        """
        now = self.store.clock()
        params = {k: python_time(v, now) if k == "at" else v
                  for k, v in params.items() if v is not None}
        return parse_event(params, periods=self.periods, limits=self.limits, now=now,
                           encoded=encoded)

    def count(
        self,
        dimensions: object = None,
        metrics: object = None,
        pk: object = None,
        at: When | None = None,
    ) -> Event:
        """Count one event directly; raises InvalidEvent (nothing counted) if it is bad."""
        event = self.event(dimensions=dimensions, metrics=metrics, pk=pk, at=at)
        self.store.count([event])
        return event

    log = count  # the seed's name

    def _ask(self, period: PeriodSpec | None, start_at: When | None, end_at: When | None,
             every: bool = False, cut: bool = True, now: float | None = None,
             **params: object) -> tuple[Query, list[Window]]:
        """The Query of `params` and the windows that answer it (whale/queries.py) at `now`."""
        from whale import queries
        from whale.query_params import parse_query

        given = {k: v for k, v in params.items() if v is not None}
        if cut:
            query = parse_query(given, self.limits)
        else:
            query = parse_query(given, self.limits, threshold=None, limit=None)
        now = self.store.clock() if now is None else now
        if start_at is not None or end_at is not None:
            start = None if start_at is None else to_epoch(start_at, now, "start_at")
            end = None if end_at is None else to_epoch(end_at, now, "end_at")
            query = replace(query, range=TimeRange(start, end))
        return query, queries.windows(self.periods, query, period, now, every,
                                      names=("start_at", "end_at"))

    def plotpoints(
        self, dimensions: object = None, metrics: object = None,
        period: PeriodSpec | None = None, depth: int = 0, pk: object = None,
        threshold: float | None = None, limit: int | None = None, sort: str | None = None,
        start_at: When | None = None, end_at: When | None = None, empty: str | None = None,
    ) -> dict:
        """`{dim_key: {metric: [[epoch_ms, value], ...]}}`, as `/plotpoints` answers
        (`empty="null"`: None where a formula divides by an empty bucket)."""
        from whale import queries

        query, [window] = self._ask(
            period, start_at, end_at, dimensions=dimensions, metrics=metrics, pk=pk,
            depth=depth, threshold=threshold, limit=limit, sort=sort, empty=empty)
        return queries.plotpoints(self.store, query, window)

    def totals(
        self, dimensions: object = None, metrics: object = None,
        period: PeriodSpec | None = None, depth: int = 0, pk: object = None,
        threshold: float | None = None, limit: int | None = None, sort: str | None = None,
        start_at: When | None = None, end_at: When | None = None, empty: str | None = None,
    ) -> dict:
        """`{period: {dim_key: {metric: total}}}`, as `/totals` answers (a range: one period)."""
        from whale import queries

        query, windows = self._ask(
            period, start_at, end_at, every=True, dimensions=dimensions, metrics=metrics,
            pk=pk, depth=depth, threshold=threshold, limit=limit, sort=sort, empty=empty)
        return queries.totals(self.store, query, windows)

    def dimensions(
        self, dimensions: object = None, metrics: object = None,
        period: PeriodSpec | None = None, pk: object = None, threshold: float | None = None,
        limit: int | None = None, sort: str | None = None,
        start_at: When | None = None, end_at: When | None = None, empty: str | None = None,
    ) -> dict:
        """The children of a dimension with their totals, as `/dimensions` answers."""
        from whale import queries

        query, [window] = self._ask(
            period, start_at, end_at, cut=False, dimensions=dimensions, metrics=metrics,
            pk=pk, threshold=threshold, limit=limit, sort=sort, empty=empty)
        return queries.dimensions(self.store, query, window)

    def dataset(
        self, params: object = None, value: str = "hits", period: PeriodSpec | None = None,
        start_at: When | None = None, depth: int = 0, pk: object = None,
        end_at: When | None = None,
    ) -> list[Point] | dict[object, list[Point]]:
        """The seed's API: `[(datetime, value)]` for a path, or `{child: [...]}` with depth.

        With depth, keys are the child's segment below `params` (a tuple of
        segments for grandchildren); every child active in the window is
        included, without threshold or limit. `start_at` keeps the seed's meaning,
        the points stamped at or after it, as far back as the period keeps: an
        older one is cut to that, never an error (the seed's own example asks 30
        days of a 7-day period). Without a period, the finest that reaches back.
        """
        from whale import queries

        now = self.store.clock()
        since = None if start_at is None else to_epoch(start_at, now, "start_at")
        if since is not None:
            since = dataset_since(self.periods, period or None, since, now)
        query, [window] = self._ask(period, since, end_at, now=now, dimensions=params,
                                    metrics=[value], pk=pk, depth=depth, threshold=0, limit=0)
        reader = queries.Reader(self.store, query, window)

        def points(path) -> list[Point]:
            return [
                (datetime.fromtimestamp(ms / 1000, timezone.utc), v)
                for ms, v in reader.points(path, query.metrics[0])
                if since is None or ms / 1000 >= since
            ]

        if not depth:
            return points(query.path)
        base = len(query.path)
        out: dict[object, list[Point]] = {}
        for path in reader.selection()[1:]:
            below = path[base:]
            out[below[0] if len(below) == 1 else below] = points(path)
        return out
