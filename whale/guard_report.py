"""What the cardinality guard reports: capped parents for `/health` and for operators.

`CardinalityGuard` (whale/guard.py) records each refused name in a sorted set
per parent and marks the parent in a sorted set per kind; these read them back.
"""

from __future__ import annotations

import time

import orjson
from redis import Redis

from hailwhale.keys import KeySpace, Path, dim_key
from hailwhale.values import OTHER

CHILDREN, PKS, METRIC_NAMES = "children", "pks", "metric_names"
KINDS = (CHILDREN, PKS, METRIC_NAMES)
RECENT = 5  # refused names `capped()` shows per parent, newest first


def spell(*parts: Path) -> str:
    """A capped parent as the member of its `capped_by` set: a JSON list of paths."""
    return orjson.dumps([list(part) for part in parts]).decode()


def unspell(member: bytes | str) -> list[Path]:
    """The paths `spell` wrote."""
    return [tuple(part) for part in orjson.loads(member)]


class GuardReports:
    """The reporting half of the guard; it sets `redis`, `keys`, `limits` and `retention`."""

    redis: Redis
    keys: KeySpace
    limits: dict[str, int]
    retention: int

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


def _present(reply: object) -> bool:
    """Whether HEXISTS (a bool) or ZSCORE (a score or None) found the member."""
    return reply if isinstance(reply, bool) else reply is not None
