"""StatsD lines by outcome: counted in the buffer's Redis, read for `/health` and `/metrics`.

A listener adds its lines' outcomes in memory (`LineCounts.add`) and writes them, a
second's worth in one transaction (`save`); any process reads them (`line_counts`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from hail.statsd_lines import REASONS
from hailwhale.keys import KeySpace

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("hailwhale.statsd")

BUFFER_FULL = "buffer_full"  # the buffer was full: its 503
UNAVAILABLE = "unavailable"  # the buffer's Redis did not answer
OVERLOADED = "overloaded"  # MAX_QUEUED bytes of lines were waiting for the buffer already
REFUSED_BY = (*REASONS, BUFFER_FULL, UNAVAILABLE, OVERLOADED)  # every reason of a refusal


def line_counts(redis: Redis, keys: KeySpace, name: str = "hail") -> dict | None:
    """The StatsD lines fed into the buffer `name`, for `/health` and `/metrics`.

    `{"received": n, "accepted": n, "refused": n, "refused_by_reason": {reason: n}}`
    (every reason of REFUSED_BY, 0 included), counted since the buffer's Redis was
    created; None if no StatsD listener ever ran on it.
    """
    return read_line_counts(redis.hgetall(keys.statsd_lines(name)))


def read_line_counts(raw: Mapping[bytes, bytes]) -> dict | None:
    """The counts of `line_counts` from the HGETALL of the counts' hash."""
    if not raw:
        return None
    counts = {field.decode(): int(value) for field, value in raw.items()}
    by_reason = {reason: counts.get(f"refused:{reason}", 0) for reason in REFUSED_BY}
    refused = sum(by_reason.values())
    accepted = counts.get("accepted", 0)
    return {"received": accepted + refused, "accepted": accepted, "refused": refused,
            "refused_by_reason": by_reason}


class LineCounts:
    """Line outcomes not yet written, added to the counts' hash in one call (`save`)."""

    def __init__(self, redis: Redis, key: str):
        self.redis = redis
        self.key = key
        self._lock = threading.Lock()  # threads add while one saves
        # The hash exists from the start: /health shows a listener that got nothing yet.
        self.pending: Counter[str] = Counter({"accepted": 0})

    def add(self, accepted: int, refused: Mapping[str, int]) -> None:
        with self._lock:
            self.pending["accepted"] += accepted
            for reason, lines in refused.items():
                self.pending[f"refused:{reason}"] += lines

    def save(self) -> None:
        """Add the pending counts to Redis, all or none; kept for the next try if it fails."""
        with self._lock:
            taken, self.pending = self.pending, Counter()
        if not taken:
            return
        pipe = self.redis.pipeline(transaction=True)
        for field, lines in taken.items():
            pipe.hincrby(self.key, field, lines)
        try:
            pipe.execute()
        except RedisError as error:
            log.warning("statsd: the counts of lines wait in memory: Redis: %s", error)
            with self._lock:
                self.pending.update(taken)
