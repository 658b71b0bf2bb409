"""The Hail buffer: a Redis list of validated events waiting for a flusher.

Exactly once, the buffer's half (the flusher's half is in hail/flusher.py):

* `push` appends all events of a request or none, in one Lua call that refuses
  when the list is full (BufferFull, a 503 with Retry-After: never a silent drop).
* `claim` moves up to N items from the head of the list into a batch list with a
  fresh id and records the id, with its claim time, in the in-flight set, all in
  one Lua call: an item is always in the buffer or in exactly one batch.
* `release` removes the batch, and records its dead letters and the flush, in one
  Lua call that does nothing if the batch was released already. So two flushers
  finishing one batch write its dead letters once.

An item is `<receive time> <event JSON>`: the receive time tells `/health` the age
of the oldest waiting event without decoding it. Every key of a buffer shares the
hash tag `{<name>}` (KeySpace.hail), so the scripts run on a Redis Cluster too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from uuid import uuid4

from redis import Redis

from hailwhale.connect import pinned
from hailwhale.events import Event
from hailwhale.exceptions import BufferFull
from hailwhale.group_commit import GroupCommit
from hailwhale.keys import KeySpace


def load_script(redis: Redis, name: str):
    """A Lua script of hail/scripts, registered on `redis` (sent once, then run by SHA)."""
    return redis.register_script((files("hail") / "scripts" / name).read_text())


def item(event: Event, received: float) -> str:
    """The buffer's spelling of an event received at `received`."""
    return _head(received) + event.to_json()


def _head(received: float) -> str:
    return f"{received!r} "


def received_at(raw: bytes | str | None) -> float | None:
    """The receive time of a buffered item; None if it has none (a foreign item)."""
    if raw is None:
        return None
    head = (raw.decode(errors="replace") if isinstance(raw, bytes) else raw).partition(" ")[0]
    try:
        return float(head)
    except ValueError:
        return None


@dataclass(frozen=True)
class Batch:
    """Items claimed from the buffer under one id, oldest first."""

    id: str
    items: list[bytes]


@dataclass(frozen=True)
class FlushStats:
    """What `/health` shows of the last flush."""

    time: float
    events: int
    seconds: float


class Buffer:
    """One Hail buffer in Redis; takes a client it does not own."""

    def __init__(self, redis: Redis, keys: KeySpace, max_events: int = 1_000_000, *,
                 name: str = "hail", retry_after: int = 1):
        self.redis = redis
        self.keys = keys
        self.name = name
        self.max_events = max_events
        self.retry_after = retry_after
        self.list_key = keys.buffer(name)
        self.doorbell_key = keys.doorbell(name)
        self.in_flight_key = keys.in_flight(name)
        self.dead_key = keys.dead_letters(name)
        self.last_flush_key = keys.last_flush(name)
        self._push = load_script(redis, "push.lua")
        self._group_push = GroupCommit(self._push_now)  # one push at a time, so:
        self._pusher: Redis | None = None  # a connection of its own, made at the first push
        self._claim = load_script(redis, "claim.lua")
        self._release = load_script(redis, "release.lua")

    def push(self, events: Sequence[Event], now: float) -> None:
        """Buffer every event of a request, or none of them (BufferFull) when full."""
        if events:
            head = _head(now)  # item(), with the receive time spelled once per request
            self.push_items([head + event.to_json() for event in events])

    def push_items(self, items: Sequence[str | bytes]) -> None:
        """Buffer raw items as they are (tests use it to plant garbage).

        Pushes that arrive while another is on its way to Redis go together in the
        next call (GroupCommit): one round trip per group under load. A call is all
        or none, so each request's items still are.
        """
        if not self._group_push(items):
            raise BufferFull(self.retry_after)

    def _push_now(self, items: list[str | bytes]) -> bool:
        if self._pusher is None:  # here, not in __init__: a Redis down at start is a 503 only
            self._pusher = pinned(self.redis)
        return bool(self._push(keys=[self.list_key, self.doorbell_key],
                               args=[self.max_events, *items], client=self._pusher))

    def wait(self, timeout: float) -> bool:
        """Block until the buffer stops being empty (True) or `timeout` seconds pass."""
        return self.redis.blpop([self.doorbell_key], timeout=timeout) is not None

    def depth(self) -> int:
        """Items waiting in the buffer (not counting claimed batches)."""
        return self.redis.llen(self.list_key)

    def claim(self, size: int, now: float) -> Batch | None:
        """Move up to `size` items into a new in-flight batch; None when the buffer is empty."""
        batch_id = uuid4().hex
        keys = [self.list_key, self.keys.batch(self.name, batch_id), self.in_flight_key]
        items = self._claim(keys=keys, args=[size, batch_id, repr(now)])
        return Batch(batch_id, items) if items else None

    def in_flight(self, claimed_before: float = float("inf")) -> list[str]:
        """Ids of the batches claimed (and not released) before `claimed_before`, oldest first."""
        ids = self.redis.zrangebyscore(self.in_flight_key, "-inf", f"({claimed_before!r}")
        return [batch_id.decode() for batch_id in ids]

    def items(self, batch_id: str) -> list[bytes]:
        """The items of an in-flight batch (empty once it is released)."""
        return self.redis.lrange(self.keys.batch(self.name, batch_id), 0, -1)

    def release(self, batch_id: str, dead_letters: Sequence[str] = (),
                stats: FlushStats | None = None) -> bool:
        """Drop a batch once applied, adding its dead letters; False if released already."""
        keys = [self.in_flight_key, self.keys.batch(self.name, batch_id), self.dead_key,
                self.last_flush_key]
        flush = [repr(stats.time), stats.events, repr(stats.seconds)] if stats else ["", 0, 0]
        return bool(self._release(keys=keys, args=[batch_id, *flush, *dead_letters]))

    def dead_letters(self, start: int = 0, stop: int = -1) -> list[dict]:
        """Dead letters, oldest first: `{"item", "reason", "at"}`."""
        return [json.loads(raw) for raw in self.redis.lrange(self.dead_key, start, stop)]

    def stats(self, now: float) -> dict:
        """Depth, age of the oldest waiting event, batches in flight, last flush, dead letters."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.list_key)
        pipe.lindex(self.list_key, 0)
        pipe.zcard(self.in_flight_key)
        pipe.zrange(self.in_flight_key, 0, 0)
        pipe.hgetall(self.last_flush_key)
        pipe.llen(self.dead_key)
        depth, head, in_flight, oldest_batch, last, dead = pipe.execute()
        times = [received_at(head)]
        if oldest_batch:
            times.append(received_at(
                self.redis.lindex(self.keys.batch(self.name, oldest_batch[0].decode()), 0)))
        oldest = min((t for t in times if t is not None), default=None)
        return {
            "depth": depth,
            "oldest_age_seconds": None if oldest is None else max(0.0, now - oldest),
            "in_flight": in_flight,
            "last_flush": {
                "time": float(last[b"time"]),
                "events": int(last[b"events"]),
                "seconds": float(last[b"seconds"]),
            } if last else None,
            "dead_letters": dead,
        }
