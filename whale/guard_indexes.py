"""What one cardinality-guard lookup knows of the indexes it admits names into.

One `Indexes` serves one `CardinalityGuard.admit` call (whale/guard.py): the
names it wants are fetched in one round trip, pruned of names unseen for the
retention, and the names it admits take their places as it goes.
"""

from __future__ import annotations

from redis import Redis

from hailwhale.values import OTHER


class Indexes:
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
