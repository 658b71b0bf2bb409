"""Redis key names and the public spelling of dimension paths, built in one place.

A series lives under `<prefix>:{<pk>|<dim>}:...`. The hash tag `{...}` keeps
every key of one (pk, dimension) pair in one Redis Cluster slot. Path segments
are percent-encoded (`/`, `|`, `{`, `}`, `:` and `%` included), long ones
digested, so no name can collide with another or break out of the tag; the
empty path is `_`, which no encoded segment list can spell because `_` is not
a valid segment.
"""

from __future__ import annotations

import base64
import hashlib
from binascii import crc_hqx
from functools import lru_cache
from urllib.parse import quote

import orjson

from hailwhale.config import Config

Path = tuple[str, ...]

OVERALL = "_"
SLOTS = 16384  # Redis Cluster hash slots


_SHORT = 32  # a segment spelled longer than this in a key is spelled by its digest


@lru_cache(maxsize=65536)
def encode_path(path: Path) -> str:
    """Collision-free spelling of a path for use inside a key (cached: the hot path).

    Each segment is percent-encoded, or, past 32 bytes so, spelled `#` and a 96-bit
    digest: every key repeats its whole pk and dimension path, so long names would
    multiply into megabytes per event (README, Limits). `#` is percent-encoded in a
    spelled segment, so a digest never equals one; each segment keeps its own
    spelling, so a child's keys still start with its parent's.
    """
    if not path:
        return OVERALL
    return "/".join(_segment(segment) for segment in path)


def _segment(segment: str) -> str:
    spelled = quote(segment, safe="")
    if len(spelled) <= _SHORT:
        return spelled
    digest = hashlib.blake2b(segment.encode(), digest_size=12).digest()
    return "#" + base64.urlsafe_b64encode(digest).decode()


def dim_key(path: Path) -> str:
    """The key clients see: `_`, a lone segment, or the compact JSON list."""
    if not path:
        return OVERALL
    if len(path) == 1 and path[0][:1] not in ("[", "{", '"'):
        return path[0]
    return orjson.dumps(list(path)).decode()  # byte for byte json.dumps's, ensure_ascii=False


class KeySpace:
    """Every key HailWhale writes, under one prefix."""

    def __init__(self, prefix: str = Config.key_prefix):
        self.prefix = prefix

    def tag(self, pk: Path, path: Path) -> str:
        return f"{self.prefix}:{{{encode_path(pk)}|{encode_path(path)}}}"

    def series(self, pk: Path, path: Path, interval: int, metric: str, chunk: int) -> str:
        """Hash of bucket start -> sum, for one retention-long chunk of buckets."""
        return f"{self.tag(pk, path)}:{interval}:{metric}:{chunk}"

    def unique(self, pk: Path, path: Path, interval: int, metric: str, bucket: int) -> str:
        """HyperLogLog of the distinct ids seen in one bucket."""
        return f"{self.tag(pk, path)}:{interval}:{metric}:u{bucket}"

    def children(self, pk: Path, path: Path) -> str:
        """Sorted set of child segment -> last time an event reached it."""
        return f"{self.tag(pk, path)}:children"

    def metrics(self, pk: Path) -> str:
        """Hash of metric name -> `sum` or `unique`, for one pk."""
        return f"{self.tag(pk, ())}:metrics"

    def pks(self) -> str:
        """Sorted set of pk (as its dim_key spelling) -> last time it was seen."""
        return f"{self.prefix}:pks"

    # -- Hail: one buffer's keys share the hash tag {<name>}, so its scripts run on a cluster

    def hail(self, name: str = "hail") -> str:
        """The prefix and hash tag of every key of the Hail buffer `name`."""
        return f"{self.prefix}:{{{quote(name, safe='')}}}"

    def buffer(self, name: str = "hail") -> str:
        """List of buffered items, oldest first, each `<receive time> <event JSON>`."""
        return f"{self.hail(name)}:buffer"

    def doorbell(self, name: str = "hail") -> str:
        """List that gets a token when the buffer `name` stops being empty."""
        return f"{self.hail(name)}:doorbell"

    def in_flight(self, name: str = "hail") -> str:
        """Sorted set of claimed, not yet released batch id -> claim time."""
        return f"{self.hail(name)}:in_flight"

    def batch(self, name: str, batch_id: str) -> str:
        """List of the items of one claimed batch."""
        return f"{self.hail(name)}:batch:{batch_id}"

    def dead_letters(self, name: str = "hail") -> str:
        """Hash of dead letter id -> JSON `{"reason", "at", ...}`: what the flusher set aside."""
        return f"{self.hail(name)}:dead_letters"

    def dead_batch(self, name: str, batch_id: str) -> str:
        """List of the items of a batch set aside whole (poison), kept for a retry."""
        return f"{self.hail(name)}:dead:{batch_id}"

    def last_flush(self, name: str = "hail") -> str:
        """Hash `time`, `events`, `seconds` of the last batch a flusher applied."""
        return f"{self.hail(name)}:last_flush"

    def flushers(self, name: str = "hail") -> str:
        """Sorted set of flusher id -> last heartbeat: who drains the buffer `name`."""
        return f"{self.hail(name)}:flushers"

    def buffered_bytes(self, name: str = "hail") -> str:
        """Counter of the bytes waiting in the buffer `name` (its byte bound)."""
        return f"{self.hail(name)}:bytes"

    def statsd_lines(self, name: str = "hail") -> str:
        """Hash of the StatsD lines fed into the buffer `name`: `received`, `accepted`,
        `refused:<reason>` -> count (hail/statsd_counts.py)."""
        return f"{self.hail(name)}:statsd"

    def applied(self, batch_id: str) -> str:
        """Marker, in the store, that a batch was applied (so applying it again is a no-op)."""
        return f"{self.prefix}:applied:{batch_id}"

    def idempotent(self, request_key: str) -> str:
        """Marker, in the store, that the request with this Idempotency-Key was counted."""
        return f"{self.prefix}:idem:{quote(request_key, safe='')}"

    def plan(self, marker: str) -> str:
        """The script calls of a write split in pieces, saved before the first piece runs."""
        return f"{marker}:plan"

    def in_slot(self, key: str, slot: int) -> str:
        """The copy of a tagless `key` (a batch marker) that lives in Redis Cluster slot `slot`."""
        return f"{key}:{{{slot_tag(slot)}}}"

    # -- the cardinality guard's own records (whale/guard.py)

    def refused(self, pk: Path, path: Path) -> str:
        """Sorted set of new children of `path` the guard sent to `_other` -> last refusal."""
        return f"{self.tag(pk, path)}:refused"

    def refused_metrics(self, pk: Path) -> str:
        """Sorted set of new metric names of `pk` the guard sent to `_other` -> last refusal."""
        return f"{self.tag(pk, ())}:refused_metrics"

    def refused_pks(self) -> str:
        """Sorted set of new pks (dim_key spelling) the guard sent to `_other` -> last refusal."""
        return f"{self.prefix}:refused_pks"

    def capped_by(self, kind: str) -> str:
        """Sorted set of the parents (JSON) where the guard refused a new `kind` -> last refusal."""
        return f"{self.prefix}:capped:{kind}"


def key_slot(key: str) -> int:
    """The Redis Cluster slot of `key`: CRC16 of its hash tag, or of the whole key without one."""
    raw = key.encode()
    start = raw.find(b"{")
    if start > -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1:end]
    return crc_hqx(raw, 0) % SLOTS


def slot_tag(slot: int) -> str:
    """The shortest decimal number whose CRC16 is `slot`: a hash tag that lands in `slot`."""
    return _slot_tags()[slot]


@lru_cache(maxsize=1)
def _slot_tags() -> list[str]:
    # ~170k CRCs (the coupon collector's 16384 ln 16384), once per process, on a cluster only
    tags: list[str | None] = [None] * SLOTS
    missing, number = SLOTS, 0
    while missing:
        text = str(number)
        slot = crc_hqx(text.encode(), 0) % SLOTS
        if tags[slot] is None:
            tags[slot] = text
            missing -= 1
        number += 1
    return tags  # type: ignore[return-value]
