"""Series reads: the points, unique totals, indexes and registries a Store wrote."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from redis import Redis

from hailwhale.keys import KeySpace, Path
from whale.numbers import Number, to_numbers
from whale.rollup import SUM, UNIQUE, window_chunks


@dataclass(frozen=True)
class Series:
    """One metric of one (pk, dimension path), as stored (a sum or a unique count)."""

    pk: Path
    path: Path
    metric: str
    kind: str = SUM


class SeriesReads:
    """The reading half of the Store (whale/store.py), which sets `redis` and `keys`."""

    redis: Redis
    keys: KeySpace

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
        chunks = window_chunks(window, interval)
        pipe = self.redis.pipeline(transaction=False)
        for one in series:
            if one.kind == UNIQUE:
                for bucket in window:
                    pipe.execute_command("PFCOUNT", self.keys.unique(
                        one.pk, one.path, interval, one.metric, bucket))
            else:
                for chunk in chunks:
                    pipe.hgetall(self.keys.series(one.pk, one.path, interval, one.metric, chunk))
        replies = iter(pipe.execute())
        stamps = [str(bucket).encode() for bucket in window]  # the fields, as Redis has them
        out = []
        for one in series:
            if one.kind == UNIQUE:
                out.append([next(replies) for _ in window])
                continue
            stored: dict[bytes, bytes] = {}
            for _ in chunks:
                stored.update(next(replies))
            numbers = dict(zip(stored, to_numbers(list(stored.values()))))
            out.append([numbers.get(stamp, 0) for stamp in stamps])
        return out

    def unique_totals(
        self, series: Sequence[Series], interval: int, window: Sequence[int]
    ) -> list[int]:
        """Distinct ids over the whole window: PFCOUNT of the union of its buckets."""
        pipe = self.redis.pipeline(transaction=False)
        for one in series:
            pipe.execute_command(  # as pfcount(), which cluster pipelines refuse
                "PFCOUNT",
                *(self.keys.unique(one.pk, one.path, interval, one.metric, b) for b in window)
            )
        return pipe.execute()
