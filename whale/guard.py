"""The cardinality guard: a parent dimension holds at most `limit` children.

Past that, an event's new child is counted as `_other` (and nothing below it),
so a flood of random dimension values cannot fill Redis with series. The
guard reads the children indexes the rollup writes: a child already in its
parent's index is admitted; a new one is admitted while the parent has room.
Each process remembers the (pk, dimension paths) combinations it admitted, so
a steady stream of known values costs one set lookup an event and no round
trip. Two processes admitting new children of one
nearly full parent at the same instant may pass the limit by a few; that is
the price of not locking.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from redis import Redis

from hailwhale.events import OTHER, Event
from hailwhale.keys import KeySpace, Path, dim_key
from whale.rollup import pk_namespaces

_MEMORY = 200_000


class CardinalityGuard:
    """Rewrites events so that no parent gets more than `limit` children."""

    def __init__(self, redis: Redis, keys: KeySpace, limit: int, retention: int):
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self.retention = retention  # children unseen for this long no longer count
        # (pk, paths) of events whose every child was admitted: nothing to look up
        self._admitted: set[tuple[Path, tuple[Path, ...]]] = set()

    def admit(self, events: Sequence[Event], now: float) -> list[Event]:
        """The events, with children past their parent's limit replaced by `_other`."""
        wanted: dict[tuple[str, str], tuple[Path, Path]] = {}
        combos: dict[tuple[Path, tuple[Path, ...]], list[tuple[str, str]]] = {}
        for event in events:
            combo = (event.pk, event.paths)
            if combo in self._admitted or combo in combos:
                continue  # a stream repeats a few combinations: look each up once
            children = combos[combo] = []
            for pk in pk_namespaces(event.pk):
                for path in event.paths:
                    child = (self.keys.children(pk, path[:-1]), path[-1])
                    children.append(child)
                    wanted[child] = (pk, path[:-1])
        if not wanted:
            return list(events)
        refused = self._check(wanted, now)
        for combo, children in combos.items():
            if not refused.intersection(children):
                self._remember(combo)
        if not refused:
            return list(events)
        return [self._rewrite(event, refused) for event in events]

    def _check(self, wanted: dict[tuple[str, str], tuple[Path, Path]], now: float) -> set:
        parents = sorted({key for key, _ in wanted})
        pipe = self.redis.pipeline(transaction=False)
        for key in parents:
            pipe.zremrangebyscore(key, "-inf", f"({now - self.retention}")
            pipe.zcard(key)
        for key, member in wanted:
            pipe.zscore(key, member)
        replies = pipe.execute()
        sizes = dict(zip(parents, replies[1 : 2 * len(parents) : 2]))
        refused: set[tuple[str, str]] = set()
        overflow: defaultdict[str, int] = defaultdict(int)
        for (key, member), score in zip(wanted, replies[2 * len(parents) :]):
            if score is None and sizes[key] >= self.limit:
                refused.add((key, member))
                pk, parent = wanted[(key, member)]
                overflow[self._parent_name(pk, parent)] += 1
                continue
            if score is None:
                sizes[key] += 1  # room taken by a child admitted in this call
        if overflow:
            self._record(overflow)
        return refused

    def _rewrite(self, event: Event, refused: set[tuple[str, str]]) -> Event:
        capped: set[Path] = set()
        for pk in pk_namespaces(event.pk):
            for path in event.paths:
                if (self.keys.children(pk, path[:-1]), path[-1]) in refused:
                    capped.add(path)
        if not capped:
            return event
        paths: dict[Path, None] = {}
        for path in event.paths:
            cut = next((n for n in range(1, len(path) + 1) if path[:n] in capped), None)
            paths[path if cut is None else (*path[: cut - 1], OTHER)] = None
        return replace(event, paths=tuple(paths))

    def _remember(self, combo: tuple[Path, tuple[Path, ...]]) -> None:
        if len(self._admitted) >= _MEMORY:
            self._admitted.clear()
        self._admitted.add(combo)

    def _parent_name(self, pk: Path, parent: Path) -> str:
        return dim_key(parent) if not pk else f"{dim_key(pk)} {dim_key(parent)}"

    def _record(self, overflow: dict[str, int]) -> None:
        """Count the new children refused (counted as `_other`), per parent, for `/health`."""
        pipe = self.redis.pipeline(transaction=False)
        for parent, events in overflow.items():
            pipe.hincrby(self.keys.capped(), parent, events)
        pipe.expire(self.keys.capped(), self.retention)
        pipe.execute()

    def report(self) -> dict:
        """What `/health` shows: the limit, and the parents that reached it."""
        capped = self.redis.hgetall(self.keys.capped())
        parents = {k.decode(): int(v) for k, v in capped.items()}
        return {"limit": self.limit, "capped_parents": parents}
