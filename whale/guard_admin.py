"""Lifting a cardinality flood: what the guard capped, and forgetting the flooded names.

A flood of random values fills an index (children of a parent, pks, metric
names of a pk) up to its limit, and every later genuine name counts as
`_other` until the flooded names age out (the longest period: a year by
default). `forget_children`, `forget_pks` and `forget_metrics` end that now:
they delete the flooded names' series (SCAN, then UNLINK in batches; one key
per command on a Redis Cluster) and their index entries, so new names are
admitted again, under their own names.

Which names are flooded: by default those whose window total over the longest
period is at most `at_most` (1): `hits` for children and pks, the metric itself
(its absolute sum, or its distinct ids) for metric names. A flood of random
values is made of such names; a genuine name with that little traffic goes with
them. `at_most=None` forgets every name; `match` (a glob) narrows either.
`_other` is never forgotten: it holds what was refused, which the parent still
counts. The forgotten names' data is gone, so for the window they covered the
children of a parent no longer add up to it (the parent keeps every event).

Stop the flood first: names counted again while a forget runs may lose that
count, or come back into the index. Each process of a server keeps admitting
the events it admitted before (it remembers them), which only matters if the
flood's own values come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from urllib.parse import unquote

import orjson
from redis import Redis

from hailwhale.config import Limits
from hailwhale.events import HITS
from hailwhale.keys import OVERALL, KeySpace, Path, dim_key, encode_path
from hailwhale.periods import Period, Periods
from hailwhale.values import OTHER
from whale.connect import is_cluster
from whale.guard import CardinalityGuard
from whale.guard_report import CHILDREN, METRIC_NAMES, PKS, unspell
from whale.reads import Series
from whale.rollup import SUM, UNIQUE
from whale.store import Store

BATCH = 1000  # keys a SCAN step asks for, and keys one UNLINK (or pipeline) deletes

Progress = Callable[[str], None]


@dataclass
class Forgotten:
    """What a forget did (or, with `dry_run`, would do)."""

    names: list[str] = field(default_factory=list)  # forgotten, as the index spells them
    kept: int = 0  # names of the index left as they were
    scanned: int = 0  # keys SCAN returned
    deleted: int = 0  # keys deleted


def capped(
    redis: Redis, keys: KeySpace, periods: Periods, limits: Limits | None = None,
    now: float | None = None,
) -> list[dict]:
    """Every capped parent, with its names and the new names it refused (see `guard.capped`)."""
    return _guard(redis, keys, periods, limits or Limits()).capped(now)


def report(
    redis: Redis, keys: KeySpace, periods: Periods, limits: Limits | None = None,
    now: float | None = None,
) -> dict:
    """The limits and the number of capped parents of each kind (no names)."""
    return _guard(redis, keys, periods, limits or Limits()).report(now)


def forget_children(
    redis: Redis, keys: KeySpace, periods: Periods, parent: Path, pk: Path = (), *,
    at_most: float | None = 1, match: str | None = None, now: float | None = None,
    dry_run: bool = False, progress: Progress | None = None, batch: int = BATCH,
) -> Forgotten:
    """Forget the flooded children of `parent` under `pk`: their series, those of
    everything below them, and their entries in the children index."""
    now = time.time() if now is None else now
    index = keys.children(pk, parent)
    names = [m.decode() for m in redis.zrange(index, 0, -1)]
    names = [name for name in names if name != OTHER]
    store = Store(redis, periods, keys)
    series = [Series(pk, (*parent, name), HITS) for name in names]
    doomed = set(_select(store, names, series, at_most, match, now, batch))
    out = Forgotten(sorted(doomed), len(names) - len(doomed))
    if not doomed:
        return out
    depth = len(parent)
    tag = encode_path(pk) + "|" + (encode_path(parent) + "/" if parent else "")

    def below(key_pk: Path, path: Path, rest: str) -> bool:
        return key_pk == pk and len(path) > depth and path[:depth] == parent \
            and path[depth] in doomed

    out.scanned, out.deleted = _delete(redis, keys, tag, below, dry_run, progress, batch)
    if not dry_run:
        _remove(redis, index, sorted(doomed), batch)
        redis.delete(keys.refused(pk, parent))
        _uncap(redis, keys, CHILDREN, lambda parts: parts == [pk, parent] or (
            parts[0] == pk and len(parts[1]) > depth and parts[1][:depth] == parent
            and parts[1][depth] in doomed))
    return out


def forget_pks(
    redis: Redis, keys: KeySpace, periods: Periods, *, at_most: float | None = 1,
    match: str | None = None, now: float | None = None, dry_run: bool = False,
    progress: Progress | None = None, batch: int = BATCH,
) -> Forgotten:
    """Forget the flooded pks, and the pks below them: every key of theirs, and their
    entries in the pks index (`match` globs the pk's spelling, e.g. `["shop","*"]`)."""
    now = time.time() if now is None else now
    spelled = [m.decode() for m in redis.zrange(keys.pks(), 0, -1)]
    pks = {name: parse_dim_key(name) for name in spelled}
    names = [name for name in spelled if pks[name][-1:] != (OTHER,)]
    store = Store(redis, periods, keys)
    series = [Series(pks[name], (), HITS) for name in names]
    chosen = {pks[name] for name in _select(store, names, series, at_most, match, now, batch)}

    def gone(pk: Path) -> bool:
        return any(pk[:n] in chosen for n in range(1, len(pk) + 1))

    doomed = [name for name in spelled if gone(pks[name])]
    out = Forgotten(sorted(dim_key(pk) for pk in chosen), len(names) - len(chosen))
    if not doomed:
        return out
    out.scanned, out.deleted = _delete(
        redis, keys, "", lambda pk, path, rest: gone(pk), dry_run, progress, batch)
    if not dry_run:
        _remove(redis, keys.pks(), doomed, batch)
        redis.delete(keys.refused_pks())
        _uncap(redis, keys, PKS, lambda parts: True)
        for kind in (CHILDREN, METRIC_NAMES):
            _uncap(redis, keys, kind, lambda parts: gone(parts[0]))
    return out


def forget_metrics(
    redis: Redis, keys: KeySpace, periods: Periods, pk: Path = (), *,
    at_most: float | None = 1, match: str | None = None, now: float | None = None,
    dry_run: bool = False, progress: Progress | None = None, batch: int = BATCH,
) -> Forgotten:
    """Forget the flooded metric names of `pk` (not of the pks below it): their series
    under every dimension of `pk`, and their entries in its metric registry."""
    now = time.time() if now is None else now
    registry = keys.metrics(pk)
    kinds = {name.decode(): kind.decode() for name, kind in redis.hgetall(registry).items()}
    names = sorted(name for name in kinds if name not in (HITS, OTHER))
    store = Store(redis, periods, keys)
    series = [Series(pk, (), name, kinds[name]) for name in names]
    doomed = set(_select(store, names, series, at_most, match, now, batch))
    out = Forgotten(sorted(doomed), len(names) - len(doomed))
    if not doomed:
        return out

    def series_of(key_pk: Path, path: Path, rest: str) -> bool:
        parts = rest.split(":")  # `:<interval>:<metric>:<chunk or u<bucket>>`
        return key_pk == pk and len(parts) == 4 and parts[2] in doomed

    tag = encode_path(pk) + "|"
    out.scanned, out.deleted = _delete(redis, keys, tag, series_of, dry_run, progress, batch)
    if not dry_run:
        names_ = sorted(doomed)
        for start in range(0, len(names_), batch):
            redis.hdel(registry, *names_[start:start + batch])
        redis.delete(keys.refused_metrics(pk))
        _uncap(redis, keys, METRIC_NAMES, lambda parts: parts == [pk])
    return out


def parse_dim_key(text: str) -> Path:
    """The path a dim_key spells: `_`, a lone segment, or a JSON list."""
    if text == OVERALL:
        return ()
    return tuple(orjson.loads(text)) if text.startswith("[") else (text,)


def _guard(redis: Redis, keys: KeySpace, periods: Periods, limits: Limits) -> CardinalityGuard:
    return CardinalityGuard(redis, keys, limits.children, periods.longest,
                            pks_limit=limits.pks, metrics_limit=limits.metric_names)


def _select(
    store: Store, names: list[str], series: list[Series], at_most: float | None,
    match: str | None, now: float, batch: int,
) -> list[str]:
    """The names (each with its series) matching `match` whose window total is at most
    `at_most` (every matching name when it is None)."""
    chosen = [(name, one) for name, one in zip(names, series)
              if match is None or fnmatchcase(name, match)]
    if at_most is None:
        return [name for name, _ in chosen]
    totals = _totals(store, [one for _, one in chosen], now, batch)
    return [name for (name, _), total in zip(chosen, totals) if abs(total) <= at_most]


def _totals(store: Store, series: list[Series], now: float, batch: int) -> Iterator[float]:
    """Each series' total over the longest period (the coarsest interval keeping it)."""
    periods = store.periods
    interval = max(i for i, kept in periods.retention.items() if kept == periods.longest)
    window = Period(interval, periods.longest, "").window(now)
    for start in range(0, len(series), batch):
        part = series[start:start + batch]
        sums = [one for one in part if one.kind == SUM]
        uniques = [one for one in part if one.kind == UNIQUE]
        found: dict[Series, float] = {}
        if sums:
            found.update(zip(sums, map(sum, store.points(sums, interval, window))))
        if uniques:
            found.update(zip(uniques, store.unique_totals(uniques, interval, window)))
        yield from (found[one] for one in part)


def _delete(
    redis: Redis, keys: KeySpace, tag: str, doomed: Callable[[Path, Path, str], bool],
    dry_run: bool, progress: Progress | None, batch: int,
) -> tuple[int, int]:
    """Delete the keys `<prefix>:{<tag>...}...` for which `doomed(pk, path, rest)`:
    SCAN (every master of a cluster), UNLINK in batches; (keys scanned, keys deleted)."""
    head = f"{keys.prefix}:{{"
    scanned = deleted = 0
    pending: list[str] = []

    def report() -> None:
        if progress is not None:
            verb = "would delete" if dry_run else "deleted"
            progress(f"{scanned} keys scanned, {deleted} {verb}")

    def flush() -> None:
        nonlocal deleted
        if not dry_run:
            _unlink(redis, pending)
        deleted += len(pending)
        pending.clear()
        report()

    for raw in redis.scan_iter(match=_glob(head + tag) + "*", count=batch):
        scanned += 1
        if scanned % batch == 0:  # a scan that finds little to delete shows progress too
            report()
        key = raw.decode()
        parsed = _parse_key(key, head)
        if parsed is not None and doomed(*parsed):
            pending.append(key)
            if len(pending) >= batch:
                flush()
    flush()
    return scanned, deleted


def _parse_key(key: str, head: str) -> tuple[Path, Path, str] | None:
    """(pk, path, what follows the tag) of a key `<prefix>:{<pk>|<path>}...`; None for
    other keys (a Hail buffer's, say)."""
    end = key.find("}", len(head))
    if not key.startswith(head) or end < 0:
        return None
    pk, sep, path = key[len(head):end].partition("|")
    if not sep:
        return None
    return _decode(pk), _decode(path), key[end + 1:]


def _decode(text: str) -> Path:
    return () if text == OVERALL else tuple(unquote(part) for part in text.split("/"))


def _glob(text: str) -> str:
    """`text` matched literally by a SCAN pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _unlink(redis: Redis, doomed: list[str]) -> None:
    if not doomed:
        return
    if is_cluster(redis):  # keys of many slots: one command each, pipelined per node
        pipe = redis.pipeline(transaction=False)
        for key in doomed:
            pipe.unlink(key)
        pipe.execute()
    else:
        redis.unlink(*doomed)


def _remove(redis: Redis, index: str, members: Iterable[str], batch: int) -> None:
    """ZREM `members` from the sorted set `index`, `batch` at a time."""
    members = list(members)
    for start in range(0, len(members), batch):
        redis.zrem(index, *members[start:start + batch])


def _uncap(redis: Redis, keys: KeySpace, kind: str, lifted: Callable[[list], bool]) -> None:
    """Drop the parents for which `lifted(paths)` from the capped parents of `kind`."""
    key = keys.capped_by(kind)
    gone = [m for m in redis.zrange(key, 0, -1) if lifted(unspell(m))]
    _remove(redis, key, gone, BATCH)
