"""A rollup as apply.lua calls ("pieces"): bounded in arguments and bytes, one slot each.

Redis refuses a command of more than 1,048,576 arguments and drops the
connection, so no piece holds more than MAX_ARGS arguments or about MAX_BYTES
bytes: a large rollup becomes several pieces. Every op of one key goes into one
piece, its `EXPIREAT` last (it does nothing to a key that does not exist yet).
On a Redis Cluster a script may touch one hash slot only: pieces never mix slots.

A piece is `[slot, op keys, section arguments]` with every number spelled as a
string (a batch's integer sum may pass 64 bits), so a plan of pieces is plain
JSON: whale/store.py saves one before applying a batch in several pieces.
"""

from __future__ import annotations

from collections.abc import Callable

from hailwhale.keys import key_slot
from hailwhale.sums import total
from whale.rollup import Rollup

MAX_ARGS = 100_000
MAX_BYTES = 4 * 1024 * 1024
IDS_PER_OP = 1000  # unpack() of many more arguments overflows Lua's C stack
_NUMBER_BYTES = 24  # what one spelled number costs, about

Piece = list  # [slot: int, keys: list[str], args: list[str]]
# the script's sections, in the order they run: EXPIREAT last
SECTIONS = (("HINCRBYFLOAT", 2), ("ZADD", 3), ("HSETNX", 2), ("EXPIREAT", 1))


class _KeyOps:
    """Every op on one key."""

    __slots__ = ("incr", "zadd", "hsetnx", "expire", "pfadd", "size", "count")

    def __init__(self) -> None:
        self.incr: list[str] = []
        self.zadd: list[str] = []
        self.hsetnx: list[str] = []
        self.expire: list[str] = []
        self.pfadd: list[list[str]] = []
        self.size = 0  # bytes, about
        self.count = 0  # arguments


class _Piece:
    __slots__ = ("keys", "sections", "pfadd", "size", "count")

    def __init__(self) -> None:
        self.keys: dict[str, list[str]] = {command: [] for command, _ in SECTIONS}
        self.sections: dict[str, list[str]] = {command: [] for command, _ in SECTIONS}
        self.pfadd: list[tuple[str, list[str]]] = []
        self.size = 0
        self.count = 16  # the script's own arguments and the section headers

    def add(self, key: str, ops: _KeyOps) -> None:
        for command, arity in SECTIONS:
            args = getattr(ops, _FIELD[command])
            for first in range(0, len(args), arity):
                self.keys[command].append(key)
            self.sections[command] += args
        for idents in ops.pfadd:
            self.pfadd.append((key, idents))
        self.size += ops.size
        self.count += ops.count

    def encode(self, slot: int) -> Piece:
        keys: list[str] = []
        args: list[str] = []
        for key, idents in self.pfadd:
            keys.append(key)
            args += ("PFADD", str(len(idents)), "1", *idents)
        for command, arity in SECTIONS:
            op_keys = self.keys[command]
            if op_keys:
                keys += op_keys
                args += (command, str(arity), str(len(op_keys)))
                args += self.sections[command]
        return [slot, keys, args]


_FIELD = {"HINCRBYFLOAT": "incr", "ZADD": "zadd", "HSETNX": "hsetnx", "EXPIREAT": "expire"}


def _spell(number: int | float) -> str:
    return repr(number) if type(number) is float else str(number)


def pieces(rollup: Rollup, cluster: bool, expiry_sent: Callable[[str, int], bool],
           max_args: int = MAX_ARGS, max_bytes: int = MAX_BYTES) -> list[Piece]:
    """The script calls that write `rollup`; `expiry_sent(key, at)` skips known expiries."""
    if not cluster:
        single = _one_piece(rollup, expiry_sent, max_args, max_bytes)
        if single is not None:
            return single
    by_key: dict[str, _KeyOps] = {}

    def ops_of(key: str) -> _KeyOps:
        ops = by_key.get(key)
        if ops is None:
            ops = by_key[key] = _KeyOps()
        return ops

    for (key, bucket), amount in rollup.sums.items():
        ops = ops_of(key)
        spelled = _spell(total(amount))
        ops.incr += (str(bucket), spelled)
        ops.size += len(spelled) + 12
        ops.count += 3  # a key and two arguments
    for (key, member), at in rollup.last_seen.items():
        ops = ops_of(key)
        ops.zadd += ("GT", repr(at), member)
        ops.size += len(member.encode()) + _NUMBER_BYTES
        ops.count += 4
    for (key, metric), kind in rollup.kinds.items():
        ops = ops_of(key)
        ops.hsetnx += (metric, kind)
        ops.size += len(metric) + len(kind)
        ops.count += 3
    for key, idents in rollup.uniques.items():
        ordered = sorted(idents)
        ops = ops_of(key)
        for first in range(0, len(ordered), IDS_PER_OP):
            chunk = ordered[first:first + IDS_PER_OP]
            ops.pfadd.append(chunk)
            ops.size += sum(len(ident.encode()) for ident in chunk)
            ops.count += len(chunk) + 4
    for key, at in rollup.expiries.items():
        if key in by_key and not expiry_sent(key, at):
            ops = by_key[key]
            ops.expire.append(str(at))
            ops.size += _NUMBER_BYTES
            ops.count += 2

    open_pieces: dict[int, _Piece] = {}
    done: list[Piece] = []
    for key, ops in by_key.items():
        slot = key_slot(key) if cluster else 0
        ops.size += len(key.encode()) * (1 + len(ops.incr) // 2 + len(ops.zadd) // 3)
        piece = open_pieces.get(slot)
        if piece is not None and piece.size and (
                piece.count + ops.count > max_args or piece.size + ops.size > max_bytes):
            done.append(piece.encode(slot))
            piece = None
        if piece is None:
            piece = open_pieces[slot] = _Piece()
        piece.add(key, ops)
    done += [piece.encode(slot) for slot, piece in open_pieces.items()]
    return done


def _one_piece(rollup: Rollup, expiry_sent: Callable[[str, int], bool], max_args: int,
               max_bytes: int) -> list[Piece] | None:
    """The usual case, built the short way: everything in one piece, if it fits in one."""
    uniques = sum(map(len, rollup.uniques.values()))
    count = (3 * len(rollup.sums) + 4 * len(rollup.last_seen) + 3 * len(rollup.kinds)
             + 2 * len(rollup.expiries) + uniques + 4 * len(rollup.uniques) + 16)
    # keys run to ~100 bytes, ids to 800 (200 characters of UTF-8)
    if count > max_args or count * 100 + uniques * 800 > max_bytes:
        return None
    if not rollup.sums and not rollup.uniques and not rollup.last_seen and not rollup.kinds:
        return []
    keys: list[str] = []
    args: list[str] = []
    for key, idents in rollup.uniques.items():
        ordered = sorted(idents)
        for first in range(0, len(ordered), IDS_PER_OP):
            chunk = ordered[first:first + IDS_PER_OP]
            keys.append(key)
            args += ("PFADD", str(len(chunk)), "1", *chunk)
    sections: list[tuple[str, int, list[str], list[str]]] = []
    incr_keys, incr_args = [], []
    for (key, bucket), amount in rollup.sums.items():
        incr_keys.append(key)
        incr_args += (str(bucket), _spell(total(amount)))
    sections.append(("HINCRBYFLOAT", 2, incr_keys, incr_args))
    zadd_keys, zadd_args = [], []
    for (key, member), at in rollup.last_seen.items():
        zadd_keys.append(key)
        zadd_args += ("GT", repr(at), member)
    sections.append(("ZADD", 3, zadd_keys, zadd_args))
    hsetnx_keys, hsetnx_args = [], []
    for (key, metric), kind in rollup.kinds.items():
        hsetnx_keys.append(key)
        hsetnx_args += (metric, kind)
    sections.append(("HSETNX", 2, hsetnx_keys, hsetnx_args))
    expire_keys = [key for key, at in rollup.expiries.items() if not expiry_sent(key, at)]
    sections.append(("EXPIREAT", 1, expire_keys,
                     [str(rollup.expiries[key]) for key in expire_keys]))
    for command, arity, op_keys, op_args in sections:  # EXPIREAT last: see the module
        if op_keys:
            keys += op_keys
            args += (command, str(arity), str(len(op_keys)))
            args += op_args
    return [[0, keys, args]]


def piece_bytes(piece: Piece) -> int:
    """About how many bytes a piece sends."""
    _, keys, args = piece
    return sum(map(len, keys)) + sum(map(len, args))
