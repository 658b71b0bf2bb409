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
* `bury` sets a whole batch aside (a poison batch: a write no retry can fix) as a
  dead letter, in one Lua call; `revive` puts it back in flight under its own id,
  so a retry after a fix still applies it exactly once; `drop` deletes it.

The buffer is bounded in events (`max_events`) and in bytes (`max_bytes`, a
counter kept by the push and claim scripts), and a batch in bytes (`batch_bytes`).

Items are spelled by hail/items.py.
Every key of a buffer shares the hash tag `{<name>}` (KeySpace.hail), so the
scripts run on a Redis Cluster too.

Flushers record a heartbeat here (`beat`), so `/health` knows whether one is alive.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from itertools import chain
from uuid import uuid4

import orjson
from redis import Redis

from hail.items import item_head, received_at
from hail.statsd_counts import read_line_counts
from hailwhale.config import Config
from hailwhale.events import Event
from hailwhale.exceptions import BufferFull
from hailwhale.group_commit import GroupCommit
from hailwhale.keys import KeySpace
from whale.connect import pinned, revive


def load_script(redis: Redis, name: str):
    """A Lua script of hail/scripts, registered on `redis` (sent once, then run by SHA)."""
    return redis.register_script((files("hail") / "scripts" / name).read_text())


PUSH_MAX_ITEMS = 50_000  # items of concurrent requests pushed in one call, at most
PUSH_MAX_BYTES = 16 * 1024 * 1024
QUIET = 0.5  # seconds without a push after which the pusher's connection is checked first


FLUSHER_SILENCE = 10.0  # seconds without a heartbeat after which no flusher counts as alive


def problems(stats: dict, max_lag: float) -> list[str]:
    """What keeps a buffer's events from being counted, one sentence each (from `stats`)."""
    found = []
    age = stats["oldest_age_seconds"]
    if age is not None and age > max_lag:
        found.append(f"the oldest buffered event is {age:.0f} s old, more than {max_lag:g} s: "
                     "events are not being flushed in time")
    beat = stats["last_flusher_beat_age_seconds"]
    if beat is None or beat > min(FLUSHER_SILENCE, max_lag):
        found.append("no flusher is alive: nothing drains the buffer (run `hailwhale flush`, "
                     "or `hailwhale serve`/`hail` without --no-flusher)")
    if stats["dead_letters"]:
        found.append(f"{stats['dead_letters']} dead letters wait: see `hailwhale dead-letters "
                     "list`, then retry or drop them")
    return found


def flusher_id() -> str:
    """How a flusher is named in the heartbeats: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


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

    def __init__(self, redis: Redis, keys: KeySpace, max_events: int = Config.buffer_max, *,
                 max_bytes: int = Config.buffer_max_bytes,
                 batch_bytes: int = Config.flush_batch_bytes,
                 name: str = "hail", retry_after: int = 1):
        self.redis = redis
        self.keys = keys
        self.name = name
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.batch_bytes = batch_bytes
        self.retry_after = retry_after
        self.list_key = keys.buffer(name)
        self.doorbell_key = keys.doorbell(name)
        self.in_flight_key = keys.in_flight(name)
        self.dead_key = keys.dead_letters(name)
        self.last_flush_key = keys.last_flush(name)
        self.bytes_key = keys.buffered_bytes(name)
        self.flushers_key = keys.flushers(name)
        self._push = load_script(redis, "push.lua")
        # one push at a time, each within what one Redis command takes, so:
        self._group_push = GroupCommit(self._push_now, max_items=PUSH_MAX_ITEMS,
                                       max_bytes=PUSH_MAX_BYTES, per_caller=True)
        self._pusher: Redis | None = None  # a connection of its own, made at the first push
        self._pushed = 0.0  # when it last pushed (monotonic)
        self._claim = load_script(redis, "claim.lua")
        self._release = load_script(redis, "release.lua")
        self._bury = load_script(redis, "bury.lua")
        self._revive = load_script(redis, "revive.lua")

    def push(self, events: Sequence[Event], now: float, request_key: str | None = None) -> None:
        """Buffer every event of a request, or none of them (BufferFull) when full.

        `request_key`, the request's Idempotency-Key, goes with each event, so that
        the flusher counts the request once however often it was sent.
        """
        if not events:
            return
        head = item_head(now, request_key).encode()  # spelled once per request
        if request_key is None:
            self.push_items([head + event.to_json_bytes() for event in events])
        else:  # one item: a claim never splits the request its key stands for
            self.push_items([head + b"[" + b",".join(event.to_json_bytes() for event in events)
                             + b"]"])

    def push_items(self, items: Sequence[str | bytes]) -> None:
        """Buffer raw items as they are (tests use it to plant garbage).

        Pushes that arrive while another is on its way to Redis go together in the
        next call (GroupCommit): one round trip per group under load. The script takes
        each request's items whole or not at all, in order, each only if the buffer had
        room when its turn came (once one is refused, so are those after it in the call).
        """
        if not self._group_push(items):
            raise BufferFull(self.retry_after)

    def _push_now(self, requests: list[list[str | bytes]]) -> list[bool]:
        """Push each request's items, in order, while the buffer has room; whether each was."""
        if self._pusher is None:  # here, not in __init__: a Redis down at start is a 503 only
            self._pusher = pinned(self.redis)
        elif time.monotonic() - self._pushed > QUIET:
            revive(self._pusher)  # Redis may have closed it meanwhile
        self._pushed = time.monotonic()
        keys = [self.list_key, self.doorbell_key, self.bytes_key]
        args = [self.max_events, self.max_bytes, len(requests), *map(len, requests)]
        taken = self._push(keys=keys, args=[*args, *chain.from_iterable(requests)],
                           client=self._pusher)
        return [n < taken for n in range(len(requests))]

    def wait(self, timeout: float) -> bool:
        """Block until the buffer stops being empty (True) or `timeout` seconds pass."""
        return self.redis.blpop([self.doorbell_key], timeout=timeout) is not None

    def depth(self) -> int:
        """Items waiting in the buffer (not counting claimed batches)."""
        return self.redis.llen(self.list_key)

    def claim(self, size: int, now: float) -> Batch | None:
        """Move up to `size` items (and `batch_bytes`) into a new in-flight batch.

        None when the buffer is empty.
        """
        batch_id = uuid4().hex
        keys = [self.list_key, self.keys.batch(self.name, batch_id), self.in_flight_key,
                self.bytes_key]
        items = self._claim(keys=keys, args=[size, batch_id, repr(now), self.batch_bytes])
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
        """Drop a batch once applied, adding its dead letters; False if released already.

        `dead_letters`: JSON `{"item", "reason", "at"}` of its items that are not events.
        """
        keys = [self.in_flight_key, self.keys.batch(self.name, batch_id), self.dead_key,
                self.last_flush_key]
        flush = [repr(stats.time), stats.events, repr(stats.seconds)] if stats else ["", 0, 0]
        dead = [part for n, letter in enumerate(dead_letters)
                for part in (f"{batch_id}.{n}", letter)]
        return bool(self._release(keys=keys, args=[batch_id, *flush, *dead]))

    def bury(self, batch_id: str, reason: str, now: float, events: int) -> bool:
        """Set a whole in-flight batch aside as a dead letter; False if it is gone already."""
        letter = orjson.dumps({"batch": batch_id, "reason": reason, "at": now, "events": events})
        keys = [self.in_flight_key, self.keys.batch(self.name, batch_id), self.dead_key,
                self.keys.dead_batch(self.name, batch_id)]
        return bool(self._bury(keys=keys, args=[batch_id, letter]))

    def dead_letters(self) -> list[dict]:
        """Dead letters, oldest first: `{"id", "reason", "at"}` and `"batch"` and `"events"`
        for a batch set aside whole, or `"item"` for an item that is not an event."""
        letters = [{"id": key.decode(), **orjson.loads(raw)}
                   for key, raw in self.redis.hgetall(self.dead_key).items()]
        return sorted(letters, key=lambda letter: (letter["at"], letter["id"]))

    def revive(self, letter_id: str) -> bool:
        """Put a batch set aside back in flight, for a flusher to apply (exactly once)."""
        keys = [self.in_flight_key, self.keys.batch(self.name, letter_id), self.dead_key,
                self.keys.dead_batch(self.name, letter_id)]
        return bool(self._revive(keys=keys, args=[letter_id]))

    def drop(self, letter_id: str) -> bool:
        """Delete a dead letter (and a dead batch's items); False if there is none."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.dead_key, letter_id)
        pipe.delete(self.keys.dead_batch(self.name, letter_id))
        return bool(pipe.execute()[0])

    def beat(self, flusher: str, now: float) -> None:
        """Record that `flusher` is alive and draining this buffer."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.flushers_key, {flusher: now})
        pipe.zremrangebyscore(self.flushers_key, "-inf", now - 86400)
        pipe.execute()

    def health(self, now: float, max_lag: float) -> tuple[dict, list[str]]:
        """`stats`, and what keeps this buffer's events from being counted (`problems`)."""
        stats = self.stats(now)
        return stats, problems(stats, max_lag)

    def stats(self, now: float) -> dict:
        """Depth, age of the oldest waiting event, batches in flight, last flush, dead letters."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.list_key)
        pipe.lindex(self.list_key, 0)
        pipe.zcard(self.in_flight_key)
        pipe.zrange(self.in_flight_key, 0, 0)
        pipe.hgetall(self.last_flush_key)
        pipe.hlen(self.dead_key)
        pipe.get(self.bytes_key)
        pipe.zrange(self.flushers_key, -1, -1, withscores=True)
        pipe.hgetall(self.keys.statsd_lines(self.name))
        depth, head, in_flight, oldest_batch, last, dead, size, beat, statsd = pipe.execute()
        times = [received_at(head)]
        if oldest_batch:
            times.append(received_at(
                self.redis.lindex(self.keys.batch(self.name, oldest_batch[0].decode()), 0)))
        oldest = min((t for t in times if t is not None), default=None)
        statsd = read_line_counts(statsd)
        return {
            "depth": depth,
            "bytes": int(size or 0) if depth else 0,
            "oldest_age_seconds": None if oldest is None else max(0.0, now - oldest),
            "in_flight": in_flight,
            "last_flush": {
                "time": float(last[b"time"]),
                "events": int(last[b"events"]),
                "seconds": float(last[b"seconds"]),
            } if last else None,
            "dead_letters": dead,
            "last_flusher_beat_age_seconds": max(0.0, now - beat[0][1]) if beat else None,
            **({"statsd": statsd} if statsd else {}),  # lines of a StatsD listener, if one ran
        }
