"""Roll events up into the Redis writes that count them (pure, no I/O).

An event is counted under every prefix of its pk (or `_` without one), every
dimension prefix plus overall `_`, every interval whose window holds it, and
every metric. A `Rollup` collects those writes; rolling up several events
into one sums identical increments, which is what makes a batch flush cheap:
the overall series gets one increment per batch, not one per event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from hailwhale.events import Event
from hailwhale.keys import KeySpace, Path, dim_key
from hailwhale.periods import Periods, bucket_start

SUM = "sum"
UNIQUE = "unique"


@dataclass
class Rollup:
    """The writes that count a set of events, with identical increments summed."""

    sums: defaultdict[tuple[str, int], float] = field(default_factory=lambda: defaultdict(int))
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


def pk_namespaces(pk: Path) -> list[Path]:
    """The pks an event counts under: each prefix of its pk, or overall alone."""
    return [pk[:n] for n in range(1, len(pk) + 1)] if pk else [()]


class Roller:
    """Turns events into a Rollup for one key space and set of periods."""

    def __init__(self, keys: KeySpace, periods: Periods):
        self.keys = keys
        self.periods = periods

    def rollup(self, events: Iterable[Event], now: float) -> Rollup:
        """The writes for `events`, as of time `now` (which decides the windows)."""
        out = Rollup()
        keys, retention = self.keys, self.periods.retention
        longest = self.periods.longest
        for event in events:
            out.events += 1
            intervals = self.periods.intervals_holding(event.at, now)
            index_expiry = (int(event.at) // longest + 2) * longest
            for pk in pk_namespaces(event.pk):
                if pk:
                    out.touch(keys.pks(), dim_key(pk), event.at)
                    out.expire(keys.pks(), index_expiry)
                registry = keys.metrics(pk)
                for metric in event.sums:
                    out.kinds.setdefault((registry, metric), SUM)
                for metric in event.uniques:
                    out.kinds.setdefault((registry, metric), UNIQUE)
                out.expire(registry, index_expiry)
                for path in ((), *event.paths):
                    if path:
                        children = keys.children(pk, path[:-1])
                        out.touch(children, path[-1], event.at)
                        out.expire(children, index_expiry)
                    for interval in intervals:
                        bucket = bucket_start(event.at, interval)
                        kept = retention[interval]
                        chunk = bucket // kept
                        for metric, amount in event.sums.items():
                            key = keys.series(pk, path, interval, metric, chunk)
                            out.sums[(key, bucket)] += amount
                            out.expire(key, (chunk + 2) * kept)
                        for metric, ident in event.uniques.items():
                            key = keys.unique(pk, path, interval, metric, bucket)
                            out.uniques[key].add(ident)
                            out.expire(key, bucket + interval + kept)
        return out
