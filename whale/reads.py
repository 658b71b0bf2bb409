"""Series reads: the points, window totals, indexes and registries a Store wrote.

A sum series is a hash per chunk of buckets (whale/rollup.py), a unique one a
HyperLogLog per bucket; all keys of a series share a hash tag, so every script call
here touches one Redis Cluster slot.

Every chunk is read with the digest of its content (SHA-1 of its DUMP, in the same
script call), and what this process made of a chunk is kept by that digest
(`ChunkMemo`): a chunk that did not change since (most of a window: only the newest
chunk takes writes) costs its digest, not its values. Points come to Python as they
are drawn (scripts/window_points.lua: a chunk's fields unless they are held), the
window's values picked in bucket order and decoded in one call (whale/numbers.py).
Window totals (ranking, /totals) never bring the buckets: scripts/window_totals.lua
adds each chunk's values up where they are, exactly, and answers a few numbers per
chunk. A unique series is counted per bucket from the counts its HyperLogLogs cache
(one MGET a series, whale/numbers.py reads them), and over a window by `PFCOUNT` of the
union of its buckets.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from itertools import repeat
from typing import Any

from redis import Redis
from redis.exceptions import NoScriptError

from hailwhale.keys import KeySpace, Path
from hailwhale.sums import exact_sum
from whale.numbers import Number, cached_counts, to_numbers, window_total
from whale.rollup import CHUNK_BUCKETS, SUM, UNIQUE, window_chunks

_ZERO = b"0"  # an empty bucket, as Redis would spell its sum


@dataclass(frozen=True)
class Series:
    """One metric of one (pk, dimension path), as stored (a sum or a unique count)."""

    pk: Path
    path: Path
    metric: str
    kind: str = SUM


@dataclass(frozen=True)
class ReadScript:
    """A script of whale/scripts that only reads, called by its SHA-1."""

    text: str
    sha: str

    @classmethod
    def named(cls, name: str) -> ReadScript:
        text = (files("whale") / "scripts" / name).read_text()
        return cls(text, hashlib.sha1(text.encode()).hexdigest())


WINDOW_TOTALS = ReadScript.named("window_totals.lua")
WINDOW_POINTS = ReadScript.named("window_points.lua")


class ChunkMemo:
    """What a script answered for chunks, by (key, first, last bucket read), each with the
    digest of the content it came from; at most `size` in weight, oldest dropped."""

    def __init__(self, size: int):
        self.size = size
        self._held: dict[tuple[str, int, int], tuple[bytes, object, int]] = {}
        self._weight = 0
        self._lock = threading.Lock()  # a server's requests keep at once

    def get(self, key: str, first: int, last: int) -> tuple[bytes, Any] | None:
        held = self._held.get((key, first, last))
        return None if held is None else held[:2]

    def keep(self, key: str, first: int, last: int, digest: bytes, found: object,
             weight: int = 1) -> None:
        held = self._held
        with self._lock:
            old = held.pop((key, first, last), None)
            if old is not None:
                self._weight -= old[2]
            while held and self._weight + weight > self.size:
                self._weight -= held.pop(next(iter(held)))[2]
            held[(key, first, last)] = (digest, found, weight)
            self._weight += weight


class SeriesReads:
    """The reading half of the Store (whale/store.py), which sets `redis` and `keys`."""

    redis: Redis
    keys: KeySpace

    @cached_property
    def summed(self) -> ChunkMemo:
        """The parts window_totals.lua answered: right while their chunk's digest is."""
        return ChunkMemo(20_000)

    @cached_property
    def decoded(self) -> ChunkMemo:
        """The values of chunks read for points, by digest: at most 500,000 numbers."""
        return ChunkMemo(500_000)

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
        sums = [one for one in series if one.kind != UNIQUE]
        uniques = [one for one in series if one.kind == UNIQUE]
        found = dict(zip(sums, self._sum_points(sums, interval, window)))
        if uniques:
            found.update(zip(uniques, self._unique_points(uniques, interval, window)))
        return [found[one] for one in series]

    def _unique_points(self, series: Sequence[Series], interval: int,
                       window: Sequence[int]) -> list[list[int]]:
        """Each bucket's PFCOUNT, most read as the count its HyperLogLog caches (one MGET a
        series): PFCOUNT where that count is stale, and where MGET answers no value but
        EXISTS finds a key (not a string: PFCOUNT says what is wrong)."""
        spelled = [str(bucket) for bucket in window]
        keyed = [self._unique_keys(one, interval, spelled) for one in series]
        pipe = self.redis.pipeline(transaction=False)
        for keys in keyed:
            pipe.execute_command("MGET", *keys)
        stored = pipe.execute()
        counts = [cached_counts(raws) for raws in stored]
        stale, absent = [], []
        for i, (row, raws) in enumerate(zip(counts, stored)):
            unknown = [j for j, count in enumerate(row) if count is None]
            stale += [(i, j) for j in unknown if raws[j] is not None]
            missing = [keyed[i][j] for j in unknown if raws[j] is None]
            if missing:  # most often empty buckets
                absent.append((i, missing))
        pipe = self.redis.pipeline(transaction=False)
        for _, keys in absent:
            pipe.execute_command("EXISTS", *keys)
        for i, j in stale:
            pipe.execute_command("PFCOUNT", keyed[i][j])
        answers = pipe.execute() if absent or stale else []
        recount = [(i, j) for (i, _), existing in zip(absent, answers) if existing
                   for j, raw in enumerate(stored[i]) if raw is None]
        for (i, j), count in zip(stale, answers[len(absent):]):
            counts[i][j] = count
        if recount:
            pipe = self.redis.pipeline(transaction=False)
            for i, j in recount:
                pipe.execute_command("PFCOUNT", keyed[i][j])
            for (i, j), count in zip(recount, pipe.execute()):
                counts[i][j] = count
        return [[count or 0 for count in row] for row in counts]

    def _sum_points(self, series: Sequence[Series], interval: int,
                    window: Sequence[int]) -> list[list[Number]]:
        spans = _chunk_spans(window, interval)
        stamps = [str(bucket).encode() for bucket in window]  # the fields, as Redis has them
        decoded = self.decoded
        calls, held = [], []
        for one in series:
            keys = [self.keys.series(one.pk, one.path, interval, one.metric, chunk)
                    for chunk, _, _, _ in spans]
            mine = [decoded.get(key, first, last) for key, (_, first, last, _) in zip(keys, spans)]
            calls.append((keys, [kept[0] if kept else "" for kept in mine]))
            held.append(mine)
        out = []
        replies = self._call_each(WINDOW_POINTS, calls)
        for (keys, _), mine, reply in zip(calls, held, replies):
            values: list[Number] = []
            for key, (_, first, last, _), kept, answer in zip(keys, spans, mine, reply):
                if len(answer) == 1:  # the digest we sent: unchanged
                    values += kept[1]
                    continue
                digest, flat = answer
                stored = dict(zip(flat[::2], flat[1::2]))
                buckets = stamps[(first - window[0]) // interval:(last - window[0]) // interval + 1]
                part = to_numbers(list(map(stored.get, buckets, repeat(_ZERO))))
                values += part
                if digest:
                    decoded.keep(key, first, last, digest, part, len(part))
            out.append(values)
        return out

    def window_sums(
        self, series: Sequence[Series], interval: int, window: Sequence[int]
    ) -> list[Number]:
        """The total of each sum series over `window`, exact: `exact_sum` of its points."""
        spans = _chunk_spans(window, interval)
        parts = self.summed
        calls, held = [], []
        for one in series:
            keys = [self.keys.series(one.pk, one.path, interval, one.metric, chunk)
                    for chunk, _, _, _ in spans]
            args: list = []
            mine = []
            for key, (_, first, last, whole) in zip(keys, spans):
                kept = parts.get(key, first, last)
                mine.append(kept)
                args += [first, last, int(whole), kept[0] if kept else ""]
            calls.append((keys, args))
            held.append(mine)
        totals = []
        replies = self._call_each(WINDOW_TOTALS, calls)
        for one, (keys, _), mine, reply in zip(series, calls, held, replies):
            found = []
            for key, (_, first, last, _), kept, answer in zip(keys, spans, mine, reply):
                if len(answer) == 1:  # the digest we sent: unchanged
                    found.append(kept[1])
                    continue
                digest, summed = answer[0], (answer[1], answer[2], answer[3])
                found.append(summed)
                if digest:
                    parts.keep(key, first, last, digest, summed)
            total = window_total(found)
            if total is None:  # a value HINCRBYFLOAT did not write: read it as points do
                total = exact_sum(self.points([one], interval, window)[0])
            totals.append(total)
        return totals

    def unique_totals(
        self, series: Sequence[Series], interval: int, window: Sequence[int]
    ) -> list[int]:
        """Distinct ids over the whole window: PFCOUNT of the union of its buckets."""
        spelled = [str(bucket) for bucket in window]
        pipe = self.redis.pipeline(transaction=False)
        for one in series:
            # execute_command: as pfcount(), which cluster pipelines refuse
            pipe.execute_command("PFCOUNT", *self._unique_keys(one, interval, spelled))
        return pipe.execute()

    def _unique_keys(self, one: Series, interval: int, buckets: list[str]) -> list[str]:
        """The HyperLogLogs of `one` for `buckets` (bucket starts, spelled): a window's
        hundreds of keys differ only in their last part, the bucket (hailwhale/keys.py)."""
        stem = self.keys.unique(one.pk, one.path, interval, one.metric, 0)[:-1]
        return [stem + bucket for bucket in buckets]

    def _call_each(self, script: ReadScript, calls: list[tuple[list[str], list]]) -> list:
        """The replies of `script` to each (keys, args), in one round trip."""
        replies = self._send(script, calls)
        lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:  # a server that restarted or flushed its scripts
            self.redis.script_load(script.text)
            for i, reply in zip(lost, self._send(script, [calls[i] for i in lost])):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _send(self, script: ReadScript, calls: list[tuple[list[str], list]]) -> list:
        pipe = self.redis.pipeline(transaction=False)
        for keys, args in calls:
            # execute_command: cluster pipelines refuse evalsha(), but route EVALSHA by its keys
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return pipe.execute(raise_on_error=False)


def _chunk_spans(window: Sequence[int], interval: int) -> list[tuple[int, int, int, bool]]:
    """(chunk, first and last bucket of the window in it, whether that is all the chunk)."""
    span = interval * CHUNK_BUCKETS
    out = []
    for chunk in window_chunks(window, interval):
        start, end = chunk * span, (chunk + 1) * span - interval
        first, last = max(window[0], start), min(window[-1], end)
        out.append((chunk, first, last, first == start and last == end))
    return out
