"""The counting store: applies rollups to Redis and reads series back.

Writes for one rollup go out in one round trip (a non-transactional
pipeline): `HINCRBYFLOAT` per (series chunk, bucket), `PFADD` per unique
bucket, `ZADD GT` for the children and pk indexes, `HSETNX` for the metric
registry, and `EXPIREAT` for each key. `EXPIREAT` is idempotent (a key's
expiry follows from its name), so each process sends it once per key and
remembers that it did; this halves the commands of a steady stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import WatchError

from hailwhale.events import Event
from hailwhale.keys import KeySpace, Path
from hailwhale.periods import Periods
from whale.rollup import SUM, UNIQUE, Roller, Rollup

Number = int | float

_EXPIRY_MEMORY = 200_000


def to_number(raw: bytes | str | None) -> Number:
    """A Redis sum as a JSON-friendly number: integral values become ints."""
    if raw is None:
        return 0
    value = float(raw)
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@dataclass(frozen=True)
class Series:
    """One metric of one (pk, dimension path), as stored (a sum or a unique count)."""

    pk: Path
    path: Path
    metric: str
    kind: str = SUM


class Store:
    """Counts events into Redis and reads their series; takes a client it does not own."""

    def __init__(
        self,
        redis: Redis,
        periods: Periods,
        keys: KeySpace | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.redis = redis
        self.periods = periods
        self.keys = keys or KeySpace()
        self.clock = clock
        self.roller = Roller(self.keys, periods)
        self._expiry_sent: dict[str, int] = {}

    # -- writing -----------------------------------------------------------

    def count(self, events: Sequence[Event]) -> None:
        """Count validated events directly, in one round trip."""
        self.apply(self.roller.rollup(events, self.clock()))

    def apply(self, rollup: Rollup) -> None:
        """Write a rollup in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        expiries = self.queue_writes(pipe, rollup)
        pipe.execute()
        self.remember_expiries(expiries)

    def apply_once(self, rollup: Rollup, marker: str, ttl: int) -> bool:
        """Write a rollup and set `marker` in one MULTI/EXEC, unless `marker` exists.

        WATCH on the marker makes this a no-op when the batch was applied before, or is
        applied by someone else between our check and our EXEC; False when skipped.
        """
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.watch(marker)
            if pipe.exists(marker):
                return False
            pipe.multi()
            expiries = self.queue_writes(pipe, rollup)
            pipe.set(marker, rollup.events, ex=ttl)
            try:
                pipe.execute()
            except WatchError:
                return False
        self.remember_expiries(expiries)
        return True

    def queue_writes(self, pipe, rollup: Rollup) -> dict[str, int]:
        """Queue a rollup's commands on `pipe`; returns the expiries queued."""
        for (key, bucket), amount in rollup.sums.items():
            pipe.hincrbyfloat(key, bucket, amount)
        for key, idents in rollup.uniques.items():
            pipe.pfadd(key, *idents)
        for (key, member), at in rollup.last_seen.items():
            pipe.zadd(key, {member: at}, gt=True)
        for (key, metric), kind in rollup.kinds.items():
            pipe.hsetnx(key, metric, kind)
        sent = self._expiry_sent
        queued = {key: at for key, at in rollup.expiries.items() if sent.get(key, 0) < at}
        for key, at in queued.items():
            pipe.expireat(key, at)
        return queued

    def remember_expiries(self, expiries: dict[str, int]) -> None:
        if len(self._expiry_sent) + len(expiries) > _EXPIRY_MEMORY:
            self._expiry_sent.clear()
        self._expiry_sent.update(expiries)

    # -- reading -----------------------------------------------------------

    def metric_kinds(self, pk: Path) -> dict[str, str]:
        """Metric name -> `sum` or `unique`, for every metric counted under `pk`."""
        raw = self.redis.hgetall(self.keys.metrics(pk))
        return {name.decode(): kind.decode() for name, kind in raw.items()}

    def pks(self, since: float = 0) -> list[str]:
        """Every pk (its dim_key spelling) seen since `since`."""
        return [m.decode() for m in self.redis.zrangebyscore(self.keys.pks(), since, "+inf")]

    def children(self, pk: Path, path: Path, since: float) -> list[str]:
        """Segments of the children of `path` that counted an event since `since`."""
        members = self.redis.zrangebyscore(self.keys.children(pk, path), since, "+inf")
        return sorted(m.decode() for m in members)

    def children_of_many(self, pk: Path, paths: Iterable[Path], since: float) -> list[list[str]]:
        """`children` for several parents in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for path in paths:
            pipe.zrangebyscore(self.keys.children(pk, path), since, "+inf")
        return [sorted(m.decode() for m in members) for members in pipe.execute()]

    def points(
        self, series: Sequence[Series], interval: int, window: Sequence[int]
    ) -> list[list[Number]]:
        """Per-bucket values of each series over `window` (bucket starts), 0 when empty."""
        kept = self.periods.retention[interval]
        chunks = sorted({bucket // kept for bucket in window})
        pipe = self.redis.pipeline(transaction=False)
        for one in series:
            if one.kind == UNIQUE:
                for bucket in window:
                    pipe.pfcount(self.keys.unique(one.pk, one.path, interval, one.metric, bucket))
            else:
                for chunk in chunks:
                    pipe.hgetall(self.keys.series(one.pk, one.path, interval, one.metric, chunk))
        replies = iter(pipe.execute())
        out = []
        for one in series:
            if one.kind == UNIQUE:
                out.append([next(replies) for _ in window])
                continue
            stored: dict[bytes, bytes] = {}
            for _ in chunks:
                stored.update(next(replies))
            out.append([to_number(stored.get(str(bucket).encode())) for bucket in window])
        return out

    def unique_totals(
        self, series: Sequence[Series], interval: int, window: Sequence[int]
    ) -> list[int]:
        """Distinct ids over the whole window: PFCOUNT of the union of its buckets."""
        pipe = self.redis.pipeline(transaction=False)
        for one in series:
            pipe.pfcount(
                *(self.keys.unique(one.pk, one.path, interval, one.metric, b) for b in window)
            )
        return pipe.execute()
