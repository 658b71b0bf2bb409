"""The cardinality guard: bounded pks, metric names per pk, and children per parent.

Past a limit, a new name is counted as `_other`, an ordinary name every query
reads, so a flood of random values cannot fill Redis with series:

* a new pk past `pks_limit` (the pks index holds every pk prefix): the pk is cut
  there, `"x"` -> `_other`, `["Product","x"]` -> `["Product","_other"]`;
* a new metric name past `metrics_limit` in a pk's registry: its value is added
  to metric `_other` (a unique metric past it adds 1 there: one event);
* a new child past `limit` in its parent's children index: the path is cut there,
  `["user","x","page"]` -> `["user","_other"]` (nothing below `_other` is stored).

`_other` never counts against a limit (a pk `[..., "_other"]` does: one at most
per pk above it), and `hits` is never refused. The
guard reads the indexes the rollup writes (whale/rollup.py): a name already in
its index is admitted; a new one while the index has room. Children and pks
unseen for the longest retention drop out of their index (and stop counting);
metric names stay while their pk's registry lives (`hailwhale guard forget`
lifts a flood). An event counted under several pks (`["a","b"]` counts under
`a` too) is cut once for all of them when any of them refuses.

Each refused name is recorded in a sorted set per parent (name -> last
refusal, the newest `limit` + 1 kept), so the count of refused names is exact
whatever repeats them (the same value, a retried batch) and its memory bounded:
past `limit` refused names it reads "at least `limit` + 1". A
sorted set per kind lists the capped parents. `report()`, for `/health`, names
none of them; `capped()`, for operators, does.

Each process remembers the events (pk, paths and metric names) it admitted
whole, so a steady stream of known values costs one set lookup an event and
no round trip; other events cost one round trip (two when a pk is refused),
plus one to record refusals. Two processes admitting new names into one nearly
full index at the same instant may pass the limit by a few: the price of not
locking.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from redis import Redis

from hailwhale.config import Limits
from hailwhale.events import HITS, OTHER, Event
from hailwhale.keys import KeySpace, Path, dim_key
from whale.rollup import pk_namespaces

CHILDREN, PKS, METRIC_NAMES = "children", "pks", "metric_names"
KINDS = (CHILDREN, PKS, METRIC_NAMES)
RECENT = 5  # refused names `capped()` shows per parent, newest first

_MEMORY = 200_000
_UNGUARDED = {HITS, OTHER}

Combo = tuple[Path, tuple[Path, ...], tuple[str, ...], tuple[str, ...]]
Refusals = defaultdict[tuple[str, tuple[Path, ...]], set[str]]  # (kind, parent) -> names


def spell(*parts: Path) -> str:
    """A capped parent as the member of its `capped_by` set: a JSON list of paths."""
    return json.dumps([list(part) for part in parts], separators=(",", ":"), ensure_ascii=False)


def unspell(member: bytes | str) -> list[Path]:
    """The paths `spell` wrote."""
    return [tuple(part) for part in json.loads(member)]


class CardinalityGuard:
    """Rewrites events so that no index grows past its limit; new names go to `_other`."""

    def __init__(
        self,
        redis: Redis,
        keys: KeySpace,
        limit: int,
        retention: int,
        *,
        pks_limit: int = Limits().pks,
        metrics_limit: int = Limits().metric_names,
    ):
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self.limits = {CHILDREN: limit, PKS: pks_limit, METRIC_NAMES: metrics_limit}
        self.retention = retention  # names unseen for this long no longer count
        # events whose every name was admitted: nothing to look up
        self._admitted: set[Combo] = set()

    # -- counting ------------------------------------------------------------

    def admit(self, events: Sequence[Event], now: float) -> list[Event]:
        """The events, with new pks, metric names and children past a limit as `_other`."""
        combos: dict[Combo, Event] = {}
        admitted = self._admitted
        for event in events:
            combo = (event.pk, event.paths, tuple(event.sums), tuple(event.uniques))
            if combo not in admitted and combo not in combos:
                combos[combo] = event  # a stream repeats a few combinations: look each up once
        if not combos:
            return list(events)
        indexes = _Indexes(self.redis, now - self.retention)
        for event in combos.values():
            self._want(indexes, event.pk, event)
        indexes.fetch()
        refusals: Refusals = defaultdict(set)
        pks = {combo: self._admit_pk(indexes, refusals, combo[0]) for combo in combos}
        for combo, event in combos.items():
            if pks[combo] != event.pk:
                self._want(indexes, pks[combo], event, pk_prefixes=False)
        indexes.fetch()  # only when a pk was cut: the indexes of the pks it became
        changes: dict[Combo, tuple[Path, set[Path], set[str]]] = {}
        for combo, event in combos.items():
            pk = pks[combo]
            capped = self._admit_paths(indexes, refusals, pk, event.paths)
            metrics = self._admit_metrics(indexes, refusals, pk, (*event.sums, *event.uniques))
            if pk != event.pk or capped or metrics:
                changes[combo] = (pk, capped, metrics)
            else:
                self._remember(combo)
        if refusals:
            self._record(refusals, now)
        if not changes:
            return list(events)
        out = []
        for event in events:
            change = changes.get((event.pk, event.paths, tuple(event.sums), tuple(event.uniques)))
            out.append(event if change is None else _rewrite(event, *change))
        return out

    def _want(self, indexes: _Indexes, pk: Path, event: Event, pk_prefixes: bool = True) -> None:
        keys = self.keys
        for n in range(1, len(pk) + 1 if pk_prefixes else 0):
            indexes.want(keys.pks(), dim_key(pk[:n]))
        for ns in pk_namespaces(pk):
            for path in event.paths:
                indexes.want(keys.children(ns, path[:-1]), path[-1])
            for metric in (*event.sums, *event.uniques):
                if metric not in _UNGUARDED:
                    indexes.want(keys.metrics(ns), metric, registry=True)

    def _admit_pk(self, indexes: _Indexes, refusals: Refusals, pk: Path) -> Path:
        """`pk`, cut at its first prefix the pks index has no room for."""
        key, limit = self.keys.pks(), self.limits[PKS]
        for n in range(1, len(pk) + 1):
            name = dim_key(pk[:n])
            if indexes.admit([key], name, limit):
                refusals[(PKS, ())].add(name)
                return (*pk[: n - 1], OTHER)
        return pk

    def _admit_paths(
        self, indexes: _Indexes, refusals: Refusals, pk: Path, paths: Iterable[Path]
    ) -> set[Path]:
        """The paths whose last segment was refused (their parent has no room for it)."""
        capped: set[Path] = set()
        namespaces = pk_namespaces(pk)
        for path in sorted(paths, key=len):  # a parent decides before its children
            if any(path[:n] in capped for n in range(1, len(path))):
                continue  # counted under `_other` higher up: nothing of it is stored
            keys = [self.keys.children(ns, path[:-1]) for ns in namespaces]
            full = indexes.admit(keys, path[-1], self.limits[CHILDREN])
            if full:
                capped.add(path)
                for i in full:
                    refusals[(CHILDREN, (namespaces[i], path[:-1]))].add(path[-1])
        return capped

    def _admit_metrics(
        self, indexes: _Indexes, refusals: Refusals, pk: Path, metrics: Iterable[str]
    ) -> set[str]:
        """The metric names refused (a registry of one of the event's pks is full)."""
        refused: set[str] = set()
        namespaces = pk_namespaces(pk)
        for metric in metrics:
            if metric in _UNGUARDED or metric in refused:
                continue
            keys = [self.keys.metrics(ns) for ns in namespaces]
            full = indexes.admit(keys, metric, self.limits[METRIC_NAMES])
            if full:
                refused.add(metric)
                for i in full:
                    refusals[(METRIC_NAMES, (namespaces[i],))].add(metric)
        return refused

    def _remember(self, combo: Combo) -> None:
        if len(self._admitted) >= _MEMORY:
            self._admitted.clear()
        self._admitted.add(combo)

    def _record(self, refusals: Refusals, now: float) -> None:
        """Add the refused names to their parent's set, bounded, and mark the parent capped."""
        keys, cutoff = self.keys, f"({now - self.retention}"
        pipe = self.redis.pipeline(transaction=False)
        for (kind, parent), names in refusals.items():
            if kind == CHILDREN:
                key = keys.refused(*parent)
            elif kind == METRIC_NAMES:
                key = keys.refused_metrics(*parent)
            else:
                key = keys.refused_pks()
            pipe.zremrangebyscore(key, "-inf", cutoff)
            pipe.zadd(key, dict.fromkeys(sorted(names), now), gt=True)
            # the newest `limit` + 1 stay: exact up to the limit, and "more" past it
            pipe.zremrangebyrank(key, 0, -self.limits[kind] - 2)
            pipe.expire(key, self.retention)
            pipe.zadd(keys.capped_by(kind), {spell(*parent): now}, gt=True)
        for kind in {kind for kind, _ in refusals}:
            pipe.zremrangebyscore(keys.capped_by(kind), "-inf", cutoff)
            pipe.expire(keys.capped_by(kind), self.retention)
        pipe.execute()

    # -- reporting -----------------------------------------------------------

    def report(self, now: float | None = None) -> dict:
        """What `/health` shows: the limits and how many parents reached each; no names."""
        since = (time.time() if now is None else now) - self.retention
        pipe = self.redis.pipeline(transaction=False)
        for kind in KINDS:
            pipe.zcount(self.keys.capped_by(kind), since, "+inf")
        return {"limits": dict(self.limits), "capped_parents": dict(zip(KINDS, pipe.execute()))}

    def capped(self, now: float | None = None) -> list[dict]:
        """For operators: each capped parent, its names now, and the names it refused.

        `refused` is exact up to the limit; past it `at_least` is true (a parent keeps
        the newest `limit` + 1 refused names, no more). `recent` lists the newest few.
        """
        since = (time.time() if now is None else now) - self.retention
        keys = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for kind in KINDS:
            pipe.zrevrangebyscore(keys.capped_by(kind), "+inf", since, withscores=True)
        found = [(kind, unspell(member), at)
                 for kind, members in zip(KINDS, pipe.execute()) for member, at in members]
        for kind, parent, _ in found:
            if kind == METRIC_NAMES:
                refused, registry = keys.refused_metrics(*parent), keys.metrics(*parent)
                pipe.hlen(registry)
                pipe.hexists(registry, OTHER)
            else:
                index = keys.children(*parent) if kind == CHILDREN else keys.pks()
                refused = keys.refused(*parent) if kind == CHILDREN else keys.refused_pks()
                pipe.zcount(index, since, "+inf")
                pipe.zscore(index, OTHER)
            pipe.zcount(refused, since, "+inf")
            pipe.zrevrangebyscore(refused, "+inf", since, start=0, num=RECENT)
        replies = iter(pipe.execute())
        out = []
        for kind, parent, at in found:
            names = next(replies)
            names -= _present(next(replies))  # `_other` is no name of its own
            refused, recent = next(replies), next(replies)
            out.append({
                "kind": kind,
                "pk": dim_key(parent[0]) if parent else None,
                "parent": dim_key(parent[1]) if kind == CHILDREN else None,
                "names": names,
                "limit": self.limits[kind],
                "refused": refused,
                "at_least": refused > self.limits[kind],
                "last_refused": at,
                "recent": [name.decode() for name in recent],
            })
        return out


class _Indexes:
    """What one `admit` call knows of the indexes: per key, its size and some members.

    Sizes leave `_other` out. Names the call admits are added as it goes, so two
    new names of one call take two places.
    """

    def __init__(self, redis: Redis, cutoff: float):
        self.redis = redis
        self.cutoff = cutoff
        self.sizes: dict[str, int] = {}
        self.members: dict[tuple[str, str], bool] = {}
        self._wanted: dict[str, dict[str, None]] = {}
        self._registries: set[str] = set()

    def want(self, key: str, name: str, registry: bool = False) -> None:
        if (key, name) not in self.members:
            self._wanted.setdefault(key, {})[name] = None
            if registry:
                self._registries.add(key)

    def fetch(self) -> None:
        """Look up every wanted name, in one round trip."""
        if not self._wanted:
            return
        wanted, self._wanted = self._wanted, {}
        pipe = self.redis.pipeline(transaction=False)
        for key, names in wanted.items():
            if key in self._registries:
                pipe.hlen(key)
                pipe.hmget(key, [OTHER, *names])
            else:
                pipe.zremrangebyscore(key, "-inf", f"({self.cutoff}")
                pipe.zcard(key)
                pipe.zmscore(key, [OTHER, *names])
        replies = iter(pipe.execute())
        for key, names in wanted.items():
            if key not in self._registries:
                next(replies)  # names pruned
            size, (other, *found) = next(replies), next(replies)
            if key not in self.sizes:
                self.sizes[key] = size - (other is not None)
            for name, value in zip(names, found):
                self.members.setdefault((key, name), value is not None)

    def admit(self, keys: list[str], name: str, limit: int) -> list[int]:
        """Where `name` is refused: the positions of the `keys` whose index is full.

        When none is, `name` is admitted, taking a place in each index it is new to.
        """
        new = [key for key in keys if not self.members[(key, name)]]
        if any(self.sizes[key] >= limit for key in new):
            return [i for i, key in enumerate(keys) if key in new and self.sizes[key] >= limit]
        for key in new:
            self.members[(key, name)] = True
            self.sizes[key] += 1
        return []


def _present(reply: object) -> bool:
    """Whether HEXISTS (a bool) or ZSCORE (a score or None) found the member."""
    return reply if isinstance(reply, bool) else reply is not None


def _rewrite(event: Event, pk: Path, capped: set[Path], metrics: set[str]) -> Event:
    """`event` counted under `pk`, its capped paths cut to `_other`, its refused metrics too."""
    paths = event.paths
    if capped:
        cut: dict[Path, None] = {}
        for path in paths:
            n = next((n for n in range(1, len(path) + 1) if path[:n] in capped), None)
            cut[path if n is None else (*path[: n - 1], OTHER)] = None
        paths = tuple(cut)
    sums, uniques = event.sums, event.uniques
    if metrics:
        other: list[int | float] = [amount for m, amount in sums.items() if m in metrics]
        other += [1 for m in uniques if m in metrics]  # one event, not its id: no kind mix
        sums = {m: amount for m, amount in sums.items() if m not in metrics}
        if OTHER in sums:
            other.append(sums[OTHER])
        sums[OTHER] = _add(other)
        uniques = {m: ident for m, ident in uniques.items() if m not in metrics}
    return replace(event, pk=pk, paths=paths, sums=sums, uniques=uniques)


def _add(amounts: list[int | float]) -> int | float:
    """The sum, exact for ints and correctly rounded otherwise (as a batch sums)."""
    if all(type(amount) is int for amount in amounts):
        return sum(amounts)
    return math.fsum(amounts)
