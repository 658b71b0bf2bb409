"""The counting store: applies rollups to Redis and reads series back.

Writes go out as calls of one Lua script, whale/scripts/apply.lua, that runs a
list of ops: `HINCRBYFLOAT` per (series chunk, bucket), `PFADD` per unique
bucket, `ZADD GT` for the children and pk indexes, `HSETNX` for the metric
registry, and `EXPIREAT` for each key. The ops are built here from a Rollup;
the script only executes them, so a count of 20 keys is one command for
redis-py to pack and for Redis to parse, not 20 (profiled: those 20 were most
of a direct count's time).

On one Redis a rollup is one call. On a Redis Cluster a call may only touch
keys of one hash slot, so there is one call per slot, all pipelined (one round
trip per node). `apply_once` adds a batch marker to every call, and the script
writes nothing when its marker exists: on a cluster that is a marker per slot,
so a batch half applied when a node failed is finished, not doubled, by the
next attempt.

`EXPIREAT` is idempotent (a key's expiry follows from its name), so each
process sends it once per key and remembers that it did; this halves the ops
of a steady stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files

import orjson
from redis import Redis
from redis.exceptions import NoScriptError

from hailwhale.config import Limits
from hailwhale.connect import is_cluster
from hailwhale.events import Event
from hailwhale.keys import KeySpace, Path, key_slot
from hailwhale.periods import Periods
from whale.guard import CardinalityGuard
from whale.rollup import SUM, UNIQUE, Roller, Rollup

Number = int | float

_EXPIRY_MEMORY = 200_000
_IDS_PER_OP = 1000  # unpack() of many more arguments overflows Lua's C stack
_SCRIPT = (files("whale") / "scripts" / "apply.lua").read_text()
_NUMERALS = b"0123456789.e+-,"  # every byte of how Redis spells a finite sum


def to_number(raw: bytes | str | None) -> Number:
    """A Redis sum as a JSON-friendly number: integral values become ints."""
    if raw is None:
        return 0
    if type(raw) is bytes and len(raw) < 16 and b"." not in raw and b"e" not in raw:
        return int(raw)  # how Redis spells an integral sum: no float round trip needed
    value = float(raw)
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def to_numbers(raws: list[bytes]) -> list[Number]:
    """`to_number` of each sum, parsed in one orjson call (a graph reads tens of thousands).

    The same numbers: integral sums under 16 digits (so under 2**53) become ints,
    others floats, as `to_number` makes them; anything else goes through it.
    """
    joined = b",".join(raws)
    if raws and max(map(len, raws)) < 16 and not joined.translate(None, _NUMERALS):
        try:
            return orjson.loads(b"[" + joined + b"]")
        except orjson.JSONDecodeError:
            pass  # not sums HINCRBYFLOAT wrote: let to_number say what is wrong
    return [to_number(raw) for raw in raws]


@dataclass(frozen=True)
class Series:
    """One metric of one (pk, dimension path), as stored (a sum or a unique count)."""

    pk: Path
    path: Path
    metric: str
    kind: str = SUM


@dataclass
class Writes:
    """A rollup as apply.lua calls (keys, arguments): one, or one per slot on a cluster."""

    calls: list[tuple[list[str], list]]
    expiries: dict[str, int] = field(default_factory=dict)


class _Ops:
    """The ops of one apply.lua call, by command (the script's sections)."""

    __slots__ = ("incr", "incr_args", "zadd", "zadd_args", "hsetnx", "hsetnx_args",
                 "expire", "expire_args", "pfadd")

    def __init__(self) -> None:
        self.incr: list[str] = []
        self.incr_args: list = []
        self.zadd: list[str] = []
        self.zadd_args: list = []
        self.hsetnx: list[str] = []
        self.hsetnx_args: list = []
        self.expire: list[str] = []
        self.expire_args: list = []
        self.pfadd: list[tuple[str, list[str]]] = []

    def call(self, marker: str | None, ttl: int, events: int) -> tuple[list[str], list]:
        keys = [marker] if marker else []
        args: list = [ttl if marker else 0, events]
        for key, idents in self.pfadd:
            keys.append(key)
            args += ("PFADD", len(idents), 1)
            args += idents
        # EXPIREAT last: it does nothing to a key that does not exist yet
        for command, arity, op_keys, op_args in (
            ("HINCRBYFLOAT", 2, self.incr, self.incr_args),
            ("ZADD", 3, self.zadd, self.zadd_args),
            ("HSETNX", 2, self.hsetnx, self.hsetnx_args),
            ("EXPIREAT", 1, self.expire, self.expire_args),
        ):
            if op_keys:
                keys += op_keys
                args += (command, arity, len(op_keys))
                args += op_args
        return keys, args


class GroupCommit:
    """Calls `commit(items)` once for the items of callers that arrive together.

    While one commit is on its way to Redis, callers (greenlets of a server worker,
    or threads) that arrive meanwhile queue their items; when it returns, the first
    of them commits all the queued items in one call and the others wait for it.
    A lone caller commits at once; under load a round trip carries many requests.
    Every caller of a group gets that call's result or exception.
    """

    def __init__(self, commit: Callable[[list], object]):
        self.commit = commit
        self._lock = threading.Lock()  # gevent's own once monkey-patched (a worker)
        self._open, self._busy = _Group(), False

    def __call__(self, items: Iterable) -> object:
        with self._lock:
            group = self._open
            group.callers += 1
            group.items += items
            leading = not self._busy
            if leading:
                self._busy, self._open = True, _Group()
            elif group.callers == 1:  # it leads its group once the commit before returns
                wake = group.turn = threading.Event()
            else:  # it waits for the group's answer (events made only when someone waits)
                wake = group.done = group.done or threading.Event()
        if not leading:
            wake.wait()
            if wake is group.done:
                if group.error is not None:
                    raise group.error
                return group.result
        try:
            group.result = self.commit(group.items)
        except BaseException as error:
            group.error = error
            raise
        finally:
            with self._lock:
                if group.done is not None:
                    group.done.set()
                waiting = self._open
                if waiting.callers:
                    self._open = _Group()
                    waiting.turn.set()
                else:
                    self._busy = False
        return group.result


class _Group:
    __slots__ = ("callers", "items", "turn", "done", "result", "error")

    def __init__(self) -> None:
        self.callers = 0
        self.items: list = []
        self.turn: threading.Event | None = None
        self.done: threading.Event | None = None
        self.result: object = None
        self.error: BaseException | None = None


class Store:
    """Counts events into Redis and reads their series; takes a client it does not own."""

    def __init__(
        self,
        redis: Redis,
        periods: Periods,
        keys: KeySpace | None = None,
        clock: Callable[[], float] = time.time,
        children_limit: int = Limits().children,
    ):
        self.redis = redis
        self.periods = periods
        self.keys = keys or KeySpace()
        self.clock = clock
        self.roller = Roller(self.keys, periods)
        self.guard = CardinalityGuard(redis, self.keys, children_limit, periods.longest)
        self.cluster = is_cluster(redis)
        self._script = redis.register_script(_SCRIPT)
        self._expiry_sent: dict[str, int] = {}
        self._group_count = GroupCommit(self._count_now)

    # -- writing -----------------------------------------------------------

    def count(self, events: Sequence[Event]) -> None:
        """Count validated events directly, in one round trip (one per node on a cluster).

        Concurrent counts (a server's requests) are rolled up and written together
        (GroupCommit); each returns once its events are written.
        """
        self._group_count(events)

    def _count_now(self, events: list[Event]) -> None:
        now = self.clock()
        self.apply(self.rollup(events, now))

    def rollup(self, events: Sequence[Event], now: float) -> Rollup:
        """The writes that count `events`, new children past the limit as `_other`."""
        return self.roller.rollup(self.guard.admit(events, now), now)

    def apply(self, rollup: Rollup) -> None:
        """Write a rollup in one round trip (one per node on a cluster)."""
        self._run(self.writes(rollup))

    def apply_once(self, rollup: Rollup, marker: str, ttl: int) -> bool:
        """Write a rollup unless `marker` says it was written; False when nothing was.

        The script checks the marker and sets it (for `ttl` seconds) together with the
        writes, atomically. On a cluster each slot has its own copy of the marker
        (`KeySpace.in_slot`), so a second attempt writes exactly the slots the first
        did not reach.
        """
        return any(self._run(self.writes(rollup, marker, ttl)))

    def writes(self, rollup: Rollup, marker: str | None = None, ttl: int = 0) -> Writes:
        """The apply.lua calls that write `rollup` (guarded by `marker`, kept `ttl` s)."""
        if marker and ttl <= 0:
            raise ValueError("a batch marker needs a time to live of at least 1 s")
        groups: dict[int, _Ops] = {}
        if self.cluster:
            def ops_of(key: str) -> _Ops:
                slot = key_slot(key)
                ops = groups.get(slot)
                if ops is None:
                    ops = groups[slot] = _Ops()
                return ops
        else:
            single = groups[0] = _Ops()

            def ops_of(key: str) -> _Ops:
                return single

        for (key, bucket), amount in rollup.sums.items():
            ops = ops_of(key)
            ops.incr.append(key)
            ops.incr_args += (bucket, amount)
        for (key, member), at in rollup.last_seen.items():
            ops = ops_of(key)
            ops.zadd.append(key)
            ops.zadd_args += ("GT", at, member)
        for (key, metric), kind in rollup.kinds.items():
            ops = ops_of(key)
            ops.hsetnx.append(key)
            ops.hsetnx_args += (metric, kind)
        sent = self._expiry_sent
        queued = {key: at for key, at in rollup.expiries.items() if sent.get(key, 0) < at}
        for key, at in queued.items():
            ops = ops_of(key)
            ops.expire.append(key)
            ops.expire_args.append(at)
        for key, idents in rollup.uniques.items():
            ordered = sorted(idents)
            ops = ops_of(key)
            for first in range(0, len(ordered), _IDS_PER_OP):
                ops.pfadd.append((key, ordered[first:first + _IDS_PER_OP]))
        calls = [
            ops.call(marker and (self.keys.in_slot(marker, slot) if self.cluster else marker),
                     ttl, rollup.events)
            for slot, ops in groups.items()
        ]
        return Writes([call for call in calls if len(call[0]) > bool(marker)], queued)

    def queue_writes(self, pipe, writes: Writes) -> None:
        """Queue the script calls of `writes` on `pipe`."""
        sha = self._script.sha
        for keys, args in writes.calls:
            # execute_command: redis-py's cluster pipeline refuses its evalsha() method,
            # though it routes EVALSHA by its keys like any command
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)

    def _run(self, writes: Writes) -> list:
        """Execute `writes`: the script's answer per call (1 written, 0 marker found)."""
        if not writes.calls:
            return []
        pipe = self.redis.pipeline(transaction=False)
        self.queue_writes(pipe, writes)
        answers = pipe.execute(raise_on_error=False)
        unknown = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if unknown:
            # A server that restarted or flushed its scripts ran nothing of those calls.
            self.redis.script_load(_SCRIPT)
            pipe = self.redis.pipeline(transaction=False)
            self.queue_writes(pipe, Writes([writes.calls[i] for i in unknown]))
            for i, answer in zip(unknown, pipe.execute(raise_on_error=False)):
                answers[i] = answer
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        self.remember_expiries(writes.expiries)
        return answers

    def remember_expiries(self, expiries: dict[str, int]) -> None:
        if len(self._expiry_sent) + len(expiries) > _EXPIRY_MEMORY:
            self._expiry_sent.clear()
        self._expiry_sent.update(expiries)

    # -- reading -----------------------------------------------------------

    def metric_kinds(self, pk: Path) -> dict[str, str]:
        """Metric name -> `sum` or `unique`, for every metric counted under `pk`."""
        raw = self.redis.hgetall(self.keys.metrics(pk))
        return {name.decode(): kind.decode() for name, kind in raw.items()}

    def pks(self, since: float = 0) -> list[str]:
        """Every pk (its dim_key spelling) seen since `since`."""
        return [m.decode() for m in self.redis.zrangebyscore(self.keys.pks(), since, "+inf")]

    def children(self, pk: Path, path: Path, since: float) -> list[str]:
        """Segments of the children of `path` that counted an event since `since`."""
        members = self.redis.zrangebyscore(self.keys.children(pk, path), since, "+inf")
        return sorted(m.decode() for m in members)

    def children_of_many(self, pk: Path, paths: Iterable[Path], since: float) -> list[list[str]]:
        """`children` for several parents in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for path in paths:
            pipe.zrangebyscore(self.keys.children(pk, path), since, "+inf")
        return [sorted(m.decode() for m in members) for members in pipe.execute()]

    def points(
        self, series: Sequence[Series], interval: int, window: Sequence[int]
    ) -> list[list[Number]]:
        """Per-bucket values of each series over `window` (bucket starts), 0 when empty."""
        kept = self.periods.retention[interval]
        chunks = sorted({bucket // kept for bucket in window})
        pipe = self.redis.pipeline(transaction=False)
        for one in series:
            if one.kind == UNIQUE:
                for bucket in window:
                    pipe.execute_command("PFCOUNT", self.keys.unique(
                        one.pk, one.path, interval, one.metric, bucket))
            else:
                for chunk in chunks:
                    pipe.hgetall(self.keys.series(one.pk, one.path, interval, one.metric, chunk))
        replies = iter(pipe.execute())
        stamps = [str(bucket).encode() for bucket in window]  # the fields, as Redis has them
        out = []
        for one in series:
            if one.kind == UNIQUE:
                out.append([next(replies) for _ in window])
                continue
            stored: dict[bytes, bytes] = {}
            for _ in chunks:
                stored.update(next(replies))
            numbers = dict(zip(stored, to_numbers(list(stored.values()))))
            out.append([numbers.get(stamp, 0) for stamp in stamps])
        return out

    def unique_totals(
        self, series: Sequence[Series], interval: int, window: Sequence[int]
    ) -> list[int]:
        """Distinct ids over the whole window: PFCOUNT of the union of its buckets."""
        pipe = self.redis.pipeline(transaction=False)
        for one in series:
            pipe.execute_command(  # as pfcount(), which cluster pipelines refuse
                "PFCOUNT",
                *(self.keys.unique(one.pk, one.path, interval, one.metric, b) for b in window)
            )
        return pipe.execute()
