"""The flusher: drains a Hail buffer into the Whale store, each event exactly once.

A batch goes through three steps:

1. claim: a Lua script moves up to `batch_size` items from the buffer into an
   in-flight batch with a fresh id (hail/buffer.py). From then on the batch is
   in Redis, not only in this process: if we die, it is still there.
2. apply: the batch is decoded and rolled up (identical increments summed: the
   overall series gets one increment per batch) and written to the store by one
   Lua call (whale/scripts/apply.lua) that first checks a marker
   `<prefix>:applied:<batch id>`, then makes the writes and sets the marker. The
   writes and the marker land together or not at all; if the marker exists, the
   batch was applied already and nothing is written. A script runs atomically, so
   no other flusher can slip in between the check and the writes.
   The store may be another Redis server than the buffer: the marker lives with
   the writes it guards, so no two-server transaction is needed. On a Redis
   Cluster a script may only touch one hash slot: there is one call, and one copy
   of the marker, per slot the batch writes to. A node that fails mid-batch leaves
   some slots applied (with their markers) and others not; the next attempt skips
   the first and writes the others, so the batch still counts once.
3. release: the batch and its in-flight entry are dropped, its dead letters
   recorded, in one Lua call that does nothing the second time.

So finishing (apply + release) a batch is idempotent, and that is why `resume`
is safe whenever it runs: after a crash at any step, on start, after a lost
connection, or on a batch another flusher holds (the lease ran out, or
`flush_all` wants everything applied now). A batch dies with the marker only
after `marker_ttl` (days), far longer than any batch stays in flight.

The buffer works on a Redis Cluster too: its keys share one hash tag, one slot.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import quote

from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from hail.buffer import Buffer, FlushStats, flusher_id
from hail.items import Decoded, decode
from hailwhale.config import Config
from hailwhale.events import Event
from hailwhale.exceptions import PoisonWrite
from hailwhale.expand import series_groups
from whale import telemetry
from whale.store import Store, poison_or_retry

log = logging.getLogger("hailwhale.flusher")

LEASE = 30.0  # seconds a claimed batch is its flusher's before others resume it
MARKER_TTL = 3 * 86400
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
POLL = 0.05  # how often `run` looks at the buffer depth between flushes
BEAT = 0.5  # how often `run` records that it is alive, at most
GROUP_SERIES = 200_000  # series one part of a batch writes, at most (an event alone may pass)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Decoding a batch makes ~10 objects per event and no reference cycle, yet those
    allocations set off cycle collections that took a third of it (profiled)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Flusher:
    """Moves events from a Buffer into a Store, batch by batch, each exactly once."""

    def __init__(self, buffer: Buffer, store: Store, batch_size: int = Config.flush_batch,
                 on_step: Callable[[str, str], None] | None = None, *,
                 lease: float = LEASE, marker_ttl: int = MARKER_TTL,
                 idempotency_window: int = Config.idempotency_window):
        self.buffer = buffer
        self.store = store
        self.batch_size = batch_size
        self.on_step = on_step
        self.lease = lease
        self.marker_ttl = marker_ttl
        self.idempotency_window = idempotency_window
        self.id = flusher_id()
        self._pending: set[str] = set()  # claimed here, not released yet (a Redis failed)

    def flush_once(self) -> int:
        """Claim one batch, apply it, release it; the events applied (0: buffer empty)."""
        return self._flush_batch()[1]

    def flush_all(self) -> int:
        """Apply every event buffered before the call; the events this call applied."""
        applied = self.resume()
        # Later pushes go behind the earlier ones: claiming today's depth from the head
        # (others' claims only help) takes every earlier event, even under steady load.
        owed = self.buffer.depth()
        while owed > 0:
            claimed, events = self._flush_batch()
            if not claimed:
                break
            owed -= claimed
            applied += events
        # Batches other flushers claimed meanwhile may hold earlier events: finish them too.
        return applied + self.resume()

    def resume(self, older_than: float | None = None) -> int:
        """Finish in-flight batches (claimed over `older_than` seconds ago; default all)."""
        claimed_before = float("inf") if older_than is None else self.store.clock() - older_than
        return sum(self._finish(batch_id, self.buffer.items(batch_id), time.perf_counter())
                   for batch_id in self.buffer.in_flight(claimed_before))

    def finish(self, batch_id: str) -> int:
        """Apply (exactly once) and release the in-flight batch `batch_id`; its events."""
        return self._finish(batch_id, self.buffer.items(batch_id), time.perf_counter())

    def run(self, interval: float = 1.0, trigger: int | None = None,
            stop: threading.Event | None = None) -> None:
        """Flush every `interval` seconds, or once `trigger` events wait, until `stop` is set.

        An unreachable Redis (store or buffer) is logged and retried with exponential
        backoff; the loop does not end on it.
        """
        stop = stop or threading.Event()
        trigger = self.batch_size if trigger is None else trigger
        delay, started, due, lease_due, beat_due = BACKOFF_FIRST, False, 0.0, 0.0, 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= beat_due:
                    self.buffer.beat(self.id, self.store.clock())
                    beat_due = time.monotonic() + BEAT
                if not started:
                    self.resume()  # our own batches from before a crash, among others
                    started = True
                for batch_id in list(self._pending):
                    self._finish(batch_id, self.buffer.items(batch_id), time.perf_counter())
                now = time.monotonic()
                if now >= lease_due:
                    lease_due = now + interval
                    self.resume(older_than=self.lease)  # a dead flusher's batches
                depth = self.buffer.depth()
                if depth and (now >= due or depth >= trigger):
                    # Under load the next flush waits `interval` (that is the batching);
                    # the first event after a quiet spell is flushed at once.
                    due = now + interval
                    while not stop.is_set() and self._flush_batch()[0] >= self.batch_size:
                        pass
                elif depth:
                    stop.wait(min(POLL, due - now))
                else:
                    self.buffer.wait(POLL)  # the doorbell rings when events arrive
            # BusyLoadingError included; on a cluster, a master down or just back
            except (ConnectionError, TimeoutError, ClusterDownError, TryAgainError) as error:
                log.warning("flusher: Redis unreachable (%s); retrying in %.1f s", error, delay)
            except RedisError:
                log.exception("flusher: Redis refused a command; retrying in %.1f s", delay)
            else:
                delay = BACKOFF_FIRST
                continue
            stop.wait(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    # -- one batch -----------------------------------------------------------

    def _step(self, step: str, batch_id: str) -> None:
        if self.on_step is not None:
            self.on_step(step, batch_id)

    def _flush_batch(self) -> tuple[int, int]:
        """Items claimed and events applied by one claim-apply-release."""
        started = time.perf_counter()
        batch = self.buffer.claim(self.batch_size, self.store.clock())
        if batch is None:
            return 0, 0
        self._pending.add(batch.id)
        self._step("claim", batch.id)
        return len(batch.items), self._finish(batch.id, batch.items, started)

    def _finish(self, batch_id: str, items: Sequence[bytes], started: float) -> int:
        """Apply (unless applied before) and release one batch; the events it applied.

        A batch whose writes Redis refuses for good (PoisonWrite), or that cannot be
        rolled up, is set aside whole as a dead letter and flushing goes on.
        """
        now = self.store.clock()
        with _cycle_collector_paused():
            batch = decode(items, now)
            try:
                count = self._apply(batch_id, batch, now)
            except PoisonWrite as error:
                return self._set_aside(batch_id, error.reason, now, len(items))
            except ResponseError as error:
                refused = poison_or_retry(error)  # the guard's reads, say, on a key of the
                if not isinstance(refused, PoisonWrite):  # wrong type: no retry fixes it
                    raise
                return self._set_aside(batch_id, refused.reason, now, len(items))
            except (RedisError, OSError):
                raise
            except Exception as error:  # a batch that cannot be rolled up: never retry blindly
                log.exception("flusher: batch %s cannot be applied", batch_id)
                return self._set_aside(batch_id, f"{type(error).__name__}: {error}", now,
                                       len(items))
        self._step("apply", batch_id)
        stats = FlushStats(now, count, time.perf_counter() - started) if count else None
        self._step("release", batch_id)
        released = self.buffer.release(batch_id, batch.dead, stats)
        telemetry.flushed(count, len(batch.dead) if released else 0)
        self._pending.discard(batch_id)
        return count

    def _apply(self, batch_id: str, batch: Decoded, now: float) -> int:
        """Write a decoded batch, each part once; the events written by this call.

        A batch is written in parts of at most GROUP_SERIES series each (so no rollup,
        and no saved plan, outgrows what one process and one Redis call can hold), each
        part under its own marker, derived from the batch's id and the part's place in
        it: the same on every retry. A request with an Idempotency-Key is claimed for
        this batch first (its key's marker in the store names the batch): a request
        another batch or the direct path counted is skipped, and one this batch claimed
        counts under markers of the batch, which live as long as the batch may be
        retried (a dead letter retried days later included), not only the key's window.
        With more than one part, every part is checked before the first is written, so
        a poison batch goes aside with nothing of it written.
        """
        store = self.store
        intervals = len(store.periods.intervals)
        parts: list[tuple[str, list[Event]]] = []
        for n, group in enumerate(series_groups(batch.events, intervals, GROUP_SERIES)):
            parts.append((batch_id if n == 0 else f"{batch_id}:g{n}", group))
        for request_key, events in batch.requests.items():
            if store.claim_request(request_key, batch_id, self.idempotency_window):
                name = f"{batch_id}:k:{quote(request_key, safe='')}"
                for n, group in enumerate(series_groups(events, intervals, GROUP_SERIES)):
                    parts.append((name if n == 0 else f"{name}:g{n}", group))
        if len(parts) > 1:
            for _, events in parts:
                store.check(store.rollup(events, now))
        count = 0
        for name, events in parts:
            if store.apply_once(lambda events=events: store.rollup(events, now),
                                store.keys.applied(name), self.marker_ttl):
                count += len(events)
        return count

    def _set_aside(self, batch_id: str, reason: str, now: float, items: int) -> int:
        log.error("flusher: batch %s (%d items) set aside as a dead letter: %s", batch_id,
                  items, reason)
        if self.buffer.bury(batch_id, reason, now, items):
            telemetry.set_aside()
        self._pending.discard(batch_id)
        return 0
