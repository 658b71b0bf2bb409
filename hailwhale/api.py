"""The Python API: count and query from a program, no HTTP in between."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from redis import Redis

from hailwhale.config import Limits
from hailwhale.embedded import RedisServer
from hailwhale.events import Event, parse_event
from hailwhale.keys import KeySpace
from hailwhale.periods import DEFAULT_PERIODS, Periods
from whale.connect import client

Point = tuple[datetime, float]


def _when(value: datetime | float | None) -> float | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    return value


class HailWhale:
    """Count events and read graphs, on a Redis URL or an embedded Redis under ./data/."""

    def __init__(
        self,
        url: str | None = None,
        periods: str | Iterable[str] | Periods = DEFAULT_PERIODS,
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
        """Validate an event given as the `/count` parameters (`encoded`: as query strings)."""
        params = {k: _when(v) if k == "at" else v for k, v in params.items() if v is not None}
        return parse_event(
            params, periods=self.periods, limits=self.limits, now=self.store.clock(),
            encoded=encoded,
        )

    def count(
        self,
        dimensions: object = None,
        metrics: object = None,
        pk: object = None,
        at: datetime | float | None = None,
    ) -> Event:
        """Count one event directly; raises InvalidEvent (nothing counted) if it is bad."""
        event = self.event(dimensions=dimensions, metrics=metrics, pk=pk, at=at)
        self.store.count([event])
        return event

    log = count  # the seed's name

    def _query(self, dimensions, metrics, pk, depth, threshold, limit, sort, cut=True):
        from whale.query_params import parse_query

        params = {
            "pk": pk, "dimensions": dimensions, "metrics": metrics, "depth": depth,
            "threshold": threshold, "limit": limit, "sort": sort,
        }
        given = {k: v for k, v in params.items() if v is not None}
        if cut:
            return parse_query(given, self.limits)
        return parse_query(given, self.limits, threshold=None, limit=None)

    def plotpoints(
        self, dimensions: object = None, metrics: object = None, period: str | None = None,
        depth: int = 0, pk: object = None, threshold: float | None = None,
        limit: int | None = None, sort: str | None = None,
    ) -> dict:
        """`{dim_key: {metric: [[epoch_ms, value], ...]}}`, as `/plotpoints` answers."""
        from whale import queries

        query = self._query(dimensions, metrics, pk, depth, threshold, limit, sort)
        return queries.plotpoints(self.store, query, self.periods.find(period), self.store.clock())

    def totals(
        self, dimensions: object = None, metrics: object = None, period: str | None = None,
        depth: int = 0, pk: object = None, threshold: float | None = None,
        limit: int | None = None, sort: str | None = None,
    ) -> dict:
        """`{period: {dim_key: {metric: total}}}`, as `/totals` answers."""
        from whale import queries

        query = self._query(dimensions, metrics, pk, depth, threshold, limit, sort)
        chosen = queries.find_periods(self.periods, period)
        return queries.totals(self.store, query, chosen, self.store.clock())

    def dimensions(
        self, dimensions: object = None, metrics: object = None, period: str | None = None,
        pk: object = None, threshold: float | None = None, limit: int | None = None,
        sort: str | None = None,
    ) -> dict:
        """The children of a dimension with their totals, as `/dimensions` answers."""
        from whale import queries

        query = self._query(dimensions, metrics, pk, 0, threshold, limit, sort, cut=False)
        return queries.dimensions(
            self.store, query, self.periods.find(period), self.store.clock()
        )

    def dataset(
        self, params: object = None, value: str = "hits", period: str | None = None,
        start_at: datetime | float | None = None, depth: int = 0, pk: object = None,
    ) -> list[Point] | dict[object, list[Point]]:
        """The seed's API: `[(datetime, value)]` for a path, or `{child: [...]}` with depth.

        With depth, keys are the child's segment below `params` (a tuple of
        segments for grandchildren); every child active in the window is
        included, without threshold or limit.
        """
        from whale import queries

        query = self._query(params, [value], pk, depth, 0, 0, None)
        period_ = self.periods.find(period)
        reader = queries.Reader(self.store, query, period_, self.store.clock())
        since = _when(start_at)

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
