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

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from redis import Redis

from hailwhale.config import Limits
from hailwhale.events import HITS, Event
from hailwhale.expand import expand
from hailwhale.keys import KeySpace, Path, dim_key
from hailwhale.values import OTHER
from whale.guard_indexes import Indexes
from whale.guard_report import CHILDREN, METRIC_NAMES, PKS, GuardReports, spell

_MEMORY = 200_000
_UNGUARDED = {HITS, OTHER}

Combo = tuple[Path, tuple[Path, ...], tuple[str, ...], tuple[str, ...]]
Refusals = defaultdict[tuple[str, tuple[Path, ...]], set[str]]  # (kind, parent) -> names
Placed = dict[Path, list[Path]]  # an event's dimension paths, `()` first -> its pk prefixes


class CardinalityGuard(GuardReports):
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
        indexes = Indexes(self.redis, now - self.retention)
        placed = {combo: _placed(event) for combo, event in combos.items()}
        for combo, event in combos.items():
            self._want(indexes, event, placed[combo], pks_index=True)
        indexes.fetch()
        refusals: Refusals = defaultdict(set)
        pks = {combo: self._admit_pk(indexes, refusals, combo[0]) for combo in combos}
        for combo, event in combos.items():
            if pks[combo] != event.pk:
                placed[combo] = _placed(replace(event, pk=pks[combo]))
                self._want(indexes, event, placed[combo], pks_index=False)
        indexes.fetch()  # only when a pk was cut: the indexes of the pks it became
        changes: dict[Combo, tuple[Path, set[Path], set[str]]] = {}
        for combo, event in combos.items():
            pk = pks[combo]
            capped = self._admit_paths(indexes, refusals, placed[combo], event.paths)
            metrics = self._admit_metrics(indexes, refusals, placed[combo][()],
                                          (*event.sums, *event.uniques))
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

    def _want(self, indexes: Indexes, event: Event, placed: Placed, pks_index: bool) -> None:
        """Ask for the names of `event` in each index its placement writes to."""
        keys = self.keys
        for path, namespaces in placed.items():
            for ns in namespaces:
                if path:
                    indexes.want(keys.children(ns, path[:-1]), path[-1])
                    continue
                if pks_index and ns:
                    indexes.want(keys.pks(), dim_key(ns))
                for metric in (*event.sums, *event.uniques):
                    if metric not in _UNGUARDED:
                        indexes.want(keys.metrics(ns), metric, registry=True)

    def _admit_pk(self, indexes: Indexes, refusals: Refusals, pk: Path) -> Path:
        """`pk`, cut at its first prefix the pks index has no room for."""
        key, limit = self.keys.pks(), self.limits[PKS]
        for n in range(1, len(pk) + 1):
            name = dim_key(pk[:n])
            if indexes.admit([key], name, limit):
                refusals[(PKS, ())].add(name)
                return (*pk[: n - 1], OTHER)
        return pk

    def _admit_paths(
        self, indexes: Indexes, refusals: Refusals, placed: Placed, paths: Iterable[Path]
    ) -> set[Path]:
        """The paths whose last segment was refused (their parent has no room for it)."""
        capped: set[Path] = set()
        for path in sorted(paths, key=len):  # a parent decides before its children
            if any(path[:n] in capped for n in range(1, len(path))):
                continue  # counted under `_other` higher up: nothing of it is stored
            namespaces = placed[path]
            keys = [self.keys.children(ns, path[:-1]) for ns in namespaces]
            full = indexes.admit(keys, path[-1], self.limits[CHILDREN])
            if full:
                capped.add(path)
                for i in full:
                    refusals[(CHILDREN, (namespaces[i], path[:-1]))].add(path[-1])
        return capped

    def _admit_metrics(
        self, indexes: Indexes, refusals: Refusals, namespaces: list[Path], metrics: Iterable[str]
    ) -> set[str]:
        """The metric names refused (the registry of one of `namespaces`, its pks, is full)."""
        refused: set[str] = set()
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

def _placed(event: Event) -> Placed:
    """The pk prefixes `event` counts under, per dimension path (overall `()` first)."""
    placed: Placed = {}
    for pk, path in expand(event):
        placed.setdefault(path, []).append(pk)
    return placed


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
