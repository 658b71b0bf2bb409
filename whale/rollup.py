"""Roll events up into the Redis writes that count them (pure, no I/O).

An event is counted under every (pk prefix, dimension path) pair of its
expansion (hailwhale/expand.py), every interval whose window held it when it
was received (decided at parse), and every metric. A `Rollup` collects those
writes; rolling up several events into one sums identical increments, which is
what makes a batch flush cheap: the overall series gets one increment per
batch, not one per event. Sums are exact (hailwhale/sums.py) until written, so
batching never changes a total.

A sum series is stored in chunks of CHUNK_BUCKETS buckets (`chunk_of`): the
boundaries depend on the interval alone, not on the configured lengths, so a
longer period, or a new one, reads every bucket stored before it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from hailwhale.events import Event
from hailwhale.expand import expand
from hailwhale.keys import KeySpace, Path, dim_key
from hailwhale.periods import Periods, bucket_start
from hailwhale.sums import ExactSum, exact_floats

_at = attrgetter("at")

SUM = "sum"
UNIQUE = "unique"
# 256 buckets a hash: under Redis 6.2's default hash-max-ziplist-entries (512) a chunk
# stays a compact ziplist, a fraction of a hash table's memory (bench/memory.py), and a
# 720-bucket window is still only 3 to 4 reads per series.
CHUNK_BUCKETS = 256


def chunk_of(bucket: int, interval: int) -> int:
    """The chunk a bucket's sum is stored in (fixed by the interval alone)."""
    return bucket // (interval * CHUNK_BUCKETS)


def window_chunks(window: Sequence[int], interval: int) -> range:
    """The chunks that hold a window's buckets (a window is contiguous)."""
    if not window:
        return range(0)
    return range(chunk_of(window[0], interval), chunk_of(window[-1], interval) + 1)


def chunk_end(chunk: int, interval: int) -> int:
    """When a chunk's last bucket ends (epoch seconds)."""
    return (chunk + 1) * interval * CHUNK_BUCKETS


@dataclass
class Rollup:
    """The writes that count a set of events, with identical increments summed."""

    # amounts are ints or ExactSum (hailwhale/sums.py): write them with sums.total()
    sums: defaultdict[tuple[str, int], int | ExactSum] = field(
        default_factory=lambda: defaultdict(int))
    uniques: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    last_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    expiries: dict[str, int] = field(default_factory=dict)
    events: int = 0

    def touch(self, key: str, member: str, at: float) -> None:
        if self.last_seen.get((key, member), -1.0) < at:
            self.last_seen[(key, member)] = at

    def expire(self, key: str, at: int) -> None:
        if self.expiries.get(key, 0) < at:
            self.expiries[key] = at


class Roller:
    """Turns events into a Rollup for one key space and set of periods."""

    def __init__(self, keys: KeySpace, periods: Periods):
        self.keys = keys
        self.periods = periods

    def rollup(self, events: Iterable[Event], now: float) -> Rollup:
        """The writes for `events`; `now` decides the windows of events parsed elsewhere.

        In passes: events are first grouped per (pk, dimension paths, second, intervals),
        one dict lookup per event (a stream repeats a few hundred such signatures), and
        each group summed; each signature is then added to its (pk, path, buckets) cells,
        one per prefix; only then is each cell expanded into keys, so a batch builds each
        key once, not once per event.
        """
        Signature = tuple[Path, tuple[Path, ...], int, tuple[int, ...] | None]
        signatures: dict[Signature, list[Event]] = {}
        for event in events:
            # intervals are whole seconds: same second, same buckets
            signature = (event.pk, event.paths, int(event.at), event.intervals)
            group = signatures.get(signature)
            if group is None:
                signatures[signature] = [event]
            else:
                group.append(event)
        cells: dict[tuple[Path, Path, tuple[tuple[int, int], ...]], _Cell] = {}
        buckets_at: dict[tuple[int, tuple[int, ...] | None], tuple[tuple[int, int], ...]] = {}
        retention = self.periods.retention
        for (_, _, second, intervals), group in signatures.items():
            signed = _Cell.of(group)
            buckets = buckets_at.get((second, intervals))
            if buckets is None:
                held = intervals
                if held is None:  # not parsed here: decided now, once
                    held = self.periods.intervals_holding(second, now)
                # an interval another node's periods have and ours lack has no retention here
                buckets = buckets_at[(second, intervals)] = tuple(
                    (i, bucket_start(second, i)) for i in held if i in retention)
            for pk, path in expand(group[0]):
                cell = cells.get((pk, path, buckets))
                if cell is None:
                    cell = cells[(pk, path, buckets)] = _Cell()
                cell.merge(signed)
        out = self._expand(cells)
        out.events = sum(map(len, signatures.values()))
        return out

    def _expand(self, cells: dict) -> Rollup:
        out = Rollup()
        keys, retention, longest = self.keys, self.periods.retention, self.periods.longest
        for (pk, path, buckets), cell in cells.items():
            index_expiry = (int(cell.last_at) // longest + 2) * longest
            if pk:
                out.touch(keys.pks(), dim_key(pk), cell.last_at)
                out.expire(keys.pks(), index_expiry)
            if not path:
                registry = keys.metrics(pk)
                for metric in cell.sums:
                    out.kinds.setdefault((registry, metric), SUM)
                for metric in cell.uniques:
                    out.kinds.setdefault((registry, metric), UNIQUE)
                out.expire(registry, index_expiry)
            else:
                children = keys.children(pk, path[:-1])
                out.touch(children, path[-1], cell.last_at)
                out.expire(children, index_expiry)
            for interval, bucket in buckets:
                kept = retention[interval]
                chunk = chunk_of(bucket, interval)
                chunk_expiry = chunk_end(chunk, interval) + kept
                for metric, amount in cell.sums.items():
                    key = keys.series(pk, path, interval, metric, chunk)
                    out.sums[(key, bucket)] += amount
                    out.expire(key, chunk_expiry)
                for metric, idents in cell.uniques.items():
                    key = keys.unique(pk, path, interval, metric, bucket)
                    out.uniques[key].update(idents)
                    out.expire(key, bucket + interval + kept)
        return out


class _Cell:
    """What the events of one (pk, path, buckets) add up to."""

    __slots__ = ("sums", "uniques", "last_at")

    def __init__(self) -> None:
        self.sums: dict[str, int | ExactSum] = {}
        self.uniques: dict[str, set[str]] = {}
        self.last_at = 0.0

    @classmethod
    def of(cls, events: list[Event]) -> _Cell:
        """What `events` add up to: ints as they come, each metric's floats all at once."""
        cell = cls()
        sums, uniques = cell.sums, cell.uniques
        floats: dict[str, list[float]] = {}
        for event in events:
            for metric, amount in event.sums.items():
                if type(amount) is int:
                    sums[metric] = sums.get(metric, 0) + amount
                elif metric in floats:
                    floats[metric].append(amount)
                else:
                    floats[metric] = [amount]
            if event.uniques:
                for metric, ident in event.uniques.items():
                    uniques.setdefault(metric, set()).add(ident)
        for metric, amounts in floats.items():
            sums[metric] = sums.get(metric, 0) + exact_floats(amounts)
        cell.last_at = max(0.0, max(map(_at, events)))
        return cell

    def merge(self, other: _Cell) -> None:
        sums = self.sums
        for metric, amount in other.sums.items():
            sums[metric] = sums.get(metric, 0) + amount
        for metric, idents in other.uniques.items():
            self.uniques.setdefault(metric, set()).update(idents)
        if other.last_at > self.last_at:
            self.last_at = other.last_at
