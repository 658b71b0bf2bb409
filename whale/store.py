"""The counting store: writes rollups to Redis, each exactly once when asked.

Writes go out as calls of one Lua script, whale/scripts/apply.lua, that runs a
list of ops (whale/writes.py builds them from a Rollup): `HINCRBYFLOAT` per
(series chunk, bucket), `PFADD` per unique bucket, `ZADD GT` for the children
and pk indexes, `HSETNX` for the metric registry, and `EXPIREAT` for each key.
The script checks every op before its first write, so a piece is written all or
nothing; a check that fails is a `PoisonWrite`, which no retry can fix. Reads
of what it wrote are whale/reads.py's (a Store is also a `SeriesReads`).

Exactly once (`apply_once`): a rollup that fits in one call on one Redis is one
script call that checks a marker and sets it with the writes, atomically. A
larger one (or any on a Redis Cluster, one call per slot) is split into pieces;
the pieces are saved as a plan under the marker before the first is applied,
and each piece has its own marker. A retry, by this process or another, runs the
saved plan: the same pieces, each written once, whatever the retry would have
computed itself (its clock, the guard's state). The single call refuses to run
while a plan exists, and a plan is dropped once its marker is set.

`EXPIREAT` is idempotent (a key's expiry follows from its name), so each
process sends it once per key and remembers that it did; this halves the ops
of a steady stream.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from importlib.resources import files

import orjson
from redis import Redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)

from hailwhale.config import Limits
from hailwhale.events import Event
from hailwhale.exceptions import PoisonWrite
from hailwhale.group_commit import GroupCommit
from hailwhale.keys import KeySpace
from hailwhale.periods import Periods
from whale.connect import is_cluster
from whale.guard import CardinalityGuard
from whale.reads import SeriesReads
from whale.rollup import Roller, Rollup
from whale.writes import MAX_ARGS, MAX_BYTES, Piece, piece_bytes, pieces

_EXPIRY_MEMORY = 200_000
_PIPELINE_BYTES = 16 * 1024 * 1024  # pieces sent in one round trip, at most
# Errors a retry can fix: the server is loading, out of memory, read-only, or busy.
_TRANSIENT = {"LOADING", "OOM", "READONLY", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
              "NOREPLICAS", "MISCONF"}
_RETRIED = (NoScriptError, ClusterError, ClusterDownError, TryAgainError, ReadOnlyError,
            MovedError, AskError)
_SCRIPT = (files("whale") / "scripts" / "apply.lua").read_text()


class Store(SeriesReads):
    """Counts events into Redis and reads their series; takes a client it does not own."""

    def __init__(
        self,
        redis: Redis,
        periods: Periods,
        keys: KeySpace | None = None,
        clock: Callable[[], float] = time.time,
        children_limit: int = Limits().children,
        pks_limit: int = Limits().pks,
        metrics_limit: int = Limits().metric_names,
    ):
        self.redis = redis
        self.periods = periods
        self.keys = keys or KeySpace()
        self.clock = clock
        self.roller = Roller(self.keys, periods)
        self.guard = CardinalityGuard(redis, self.keys, children_limit, periods.longest,
                                      pks_limit=pks_limit, metrics_limit=metrics_limit)
        self.cluster = is_cluster(redis)
        self._script = redis.register_script(_SCRIPT)
        self._expiry_sent: dict[str, int] = {}
        self.piece_args, self.piece_bytes = MAX_ARGS, MAX_BYTES  # per script call
        # a poison write is one request's doing: the others grouped with it still count
        self._group_count = GroupCommit(self._count_now, alone=(PoisonWrite,))

    # -- writing -----------------------------------------------------------

    def count(self, events: Sequence[Event]) -> None:
        """Count validated events directly, in one round trip (one per node on a cluster).

        Concurrent counts (a server's requests) are rolled up and written together
        (GroupCommit); each returns once its events are written.
        """
        self._group_count(events)

    def _count_now(self, events: list[Event]) -> None:
        if events:
            now = self.clock()
            self.apply(self.rollup(events, now))

    def count_once(self, events: Sequence[Event], request_key: str, window: int) -> bool:
        """Count a request's events unless a request with the same idempotency key was
        counted in the last `window` seconds; False when it was (nothing written)."""
        now = self.clock()
        return self.apply_once(lambda: self.rollup(events, now),
                               self.keys.idempotent(request_key), window)

    def rollup(self, events: Sequence[Event], now: float) -> Rollup:
        """The writes that count `events`, new children past the limit as `_other`.

        The guard reads indexes first: one holding a key of the wrong type is a
        PoisonWrite, as a write to it would be (whale/writes.py's script checks those).
        """
        try:
            admitted = self.guard.admit(events, now)
        except ResponseError as error:
            refused = poison_or_retry(error)
            if refused is error:  # one a retry may fix
                raise
            raise refused from error
        return self.roller.rollup(admitted, now)

    def apply(self, rollup: Rollup) -> None:
        """Write a rollup: one round trip unless it is large (then checked, then written)."""
        calls = self._pieces(rollup)
        if len(calls) > 1:
            self._run(calls, mode="check")
        self._run(calls)
        self.remember_expiries(rollup.expiries)

    def apply_once(self, rollup: Rollup | Callable[[], Rollup], marker: str, ttl: int) -> bool:
        """Write a rollup unless `marker` says it was written; False when nothing was.

        `rollup` may be a function that builds it, called only when needed. Raises
        PoisonWrite (nothing written) when a write cannot succeed however often it is
        tried, and redis-py's errors when Redis is unreachable (retry: still once).
        """
        if ttl <= 0:
            raise ValueError("a marker needs a time to live of at least 1 s")
        plan_key = self.keys.plan(marker)
        plan = self.redis.get(plan_key) if self.cluster else None
        if plan is None:
            if self.cluster and self.redis.exists(marker):
                return False
            built = rollup if isinstance(rollup, Rollup) else rollup()
            calls = self._pieces(built)
            if not calls:
                return True
            if len(calls) == 1 and not self.cluster:
                # the hot path: one call that checks the marker (and that no plan exists)
                if self._run(calls, [marker, plan_key], ttl)[0] == 1:
                    self.remember_expiries(built.expiries)
                    return True
                plan = self.redis.get(plan_key)  # refused: applied, or another's plan
            else:
                plan = self._save_plan(plan_key, marker, calls, ttl)
            if plan is None:
                return False
        self._run_plan(orjson.loads(plan), marker, plan_key, ttl)
        return True

    def _run_plan(self, calls: list[Piece], marker: str, plan_key: str, ttl: int) -> None:
        """Check every piece, then write each unless its marker exists; then mark it done."""
        self._run(calls, mode="check")
        guards = [[self._piece_marker(marker, i, call[0])] for i, call in enumerate(calls)]
        self._run(calls, guards, ttl)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(marker, 1, ex=ttl)
        pipe.delete(plan_key)
        pipe.execute()

    def check(self, rollup: Rollup) -> None:
        """Check every write of `rollup` without making one: PoisonWrite if one would fail."""
        self._run(self._pieces(rollup), mode="check")

    def claim_request(self, request_key: str, owner: str, window: int) -> bool:
        """Claim the request with this idempotency key for `owner` (a batch); False when
        another batch, or the direct path, counted or claimed it in the last `window` s."""
        marker = self.keys.idempotent(request_key)
        if self.redis.set(marker, owner, nx=True, ex=window):
            return True
        return self.redis.get(marker) == owner.encode()

    def _save_plan(self, plan_key: str, marker: str, calls: list[Piece], ttl: int) -> bytes | None:
        """Save the pieces as the plan of `marker`, or take the plan saved first; None: applied."""
        encoded = orjson.dumps(calls)
        if not self.redis.set(plan_key, encoded, nx=True, ex=ttl):
            encoded = self.redis.get(plan_key)
            if encoded is None:  # finished and dropped meanwhile
                return None
        # A single call that won before the plan existed has set the marker: then stop.
        if self.redis.exists(marker):
            return None
        return encoded

    def _piece_marker(self, marker: str, index: int, slot: int) -> str:
        own = f"{marker}:{index}"
        return self.keys.in_slot(own, slot) if self.cluster else own

    def _pieces(self, rollup: Rollup) -> list[Piece]:
        sent = self._expiry_sent
        return pieces(rollup, self.cluster, lambda key, at: sent.get(key, 0) >= at,
                      self.piece_args, self.piece_bytes)

    def _run(self, calls: list[Piece], guards: list | None = None, ttl: int = 0,
             mode: str = "write") -> list:
        """Run pieces (`guards`: one list of guard keys for all, or one per piece)."""
        if guards and not isinstance(guards[0], list):
            guards = [guards] * len(calls)
        answers: list = []
        for start, stop in _rounds(calls):
            pipe = self.redis.pipeline(transaction=False)
            for i in range(start, stop):
                self._queue(pipe, calls[i], guards[i] if guards else [], ttl, mode)
            replies = pipe.execute(raise_on_error=False)
            unknown = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if unknown:
                # A server that restarted or flushed its scripts ran nothing of those calls.
                self.redis.script_load(_SCRIPT)
                pipe = self.redis.pipeline(transaction=False)
                for i in unknown:
                    self._queue(pipe, calls[start + i], guards[start + i] if guards else [],
                                ttl, mode)
                for i, reply in zip(unknown, pipe.execute(raise_on_error=False)):
                    replies[i] = reply
            for reply in replies:
                if isinstance(reply, Exception):
                    raise poison_or_retry(reply)
            answers += replies
        return answers

    def _queue(self, pipe, call: Piece, guards: list[str], ttl: int, mode: str) -> None:
        _, keys, args = call
        # execute_command: redis-py's cluster pipeline refuses its evalsha() method,
        # though it routes EVALSHA by its keys like any command
        pipe.execute_command("EVALSHA", self._script.sha, len(guards) + len(keys), *guards,
                             *keys, ttl if guards else 0, len(guards), 1, mode, *args)

    def remember_expiries(self, expiries: dict[str, int]) -> None:
        if len(self._expiry_sent) + len(expiries) > _EXPIRY_MEMORY:
            self._expiry_sent.clear()
        self._expiry_sent.update(expiries)

def _rounds(calls: list[Piece]) -> Iterable[tuple[int, int]]:
    """Index ranges of pieces to send together: at most _PIPELINE_BYTES a round trip."""
    start, size = 0, 0
    for i, call in enumerate(calls):
        size += piece_bytes(call)
        if size > _PIPELINE_BYTES and i > start:
            yield start, i
            start, size = i, piece_bytes(call)
    if start < len(calls):
        yield start, len(calls)


def poison_or_retry(error: Exception) -> Exception:
    """A write's error as it should be handled: PoisonWrite unless a retry can fix it."""
    if not isinstance(error, ResponseError) or isinstance(error, _RETRIED):
        return error
    words = set(re.findall(r"\b[A-Z]{3,}\b", str(error)))
    if "HWPOISON" not in words and words & _TRANSIENT:
        return error
    return PoisonWrite(str(error))
