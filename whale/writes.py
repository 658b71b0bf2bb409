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


class _Piece:
    """One script call being filled: its PFADDs, and each section's keys and arguments."""

    __slots__ = ("slot", "keys", "sections", "pfadd", "size", "count")

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.keys: dict[str, list[str]] = {command: [] for command, _ in SECTIONS}
        self.sections: dict[str, list[str]] = {command: [] for command, _ in SECTIONS}
        self.pfadd: list[tuple[str, list[str]]] = []
        self.size = 0
        self.count = 16  # the script's own arguments and the section headers

    def encode(self) -> Piece:
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
        return [self.slot, keys, args]


def _spell(number: int | float) -> str:
    return repr(number) if type(number) is float else str(number)


def pieces(rollup: Rollup, cluster: bool, expiry_sent: Callable[[str, int], bool],
           max_args: int = MAX_ARGS, max_bytes: int = MAX_BYTES) -> list[Piece]:
    """The script calls that write `rollup`; `expiry_sent(key, at)` skips known expiries.

    In three passes over the rollup, with no object per key (a batch may touch hundreds
    of thousands): what each key's ops cost, which piece each key goes to (all of a
    key's ops in one piece, pieces within the bounds, one slot each), then the ops.
    """
    if not cluster:
        single = _one_piece(rollup, expiry_sent, max_args, max_bytes)
        if single is not None:
            return single
    # key -> [arguments, bytes, ops that repeat the key in KEYS], keys as they first come
    cost: dict[str, list[int]] = {}
    spelled = [_spell(total(amount)) for amount in rollup.sums.values()]
    for (key, _), text in zip(rollup.sums, spelled):
        c = cost.get(key) or cost.setdefault(key, [0, 0, 0])
        c[0] += 3  # a key and two arguments
        c[1] += len(text) + 12
        c[2] += 1
    for key, member in rollup.last_seen:
        c = cost.get(key) or cost.setdefault(key, [0, 0, 0])
        c[0] += 4
        c[1] += len(member.encode()) + _NUMBER_BYTES
        c[2] += 1
    for (key, metric), kind in rollup.kinds.items():
        c = cost.get(key) or cost.setdefault(key, [0, 0, 0])
        c[0] += 3
        c[1] += len(metric) + len(kind)
    chunks: list[tuple[str, list[str]]] = []
    for key, idents in rollup.uniques.items():
        ordered = sorted(idents)
        c = cost.get(key) or cost.setdefault(key, [0, 0, 0])
        for first in range(0, len(ordered), IDS_PER_OP):
            chunk = ordered[first:first + IDS_PER_OP]
            chunks.append((key, chunk))
            c[0] += len(chunk) + 4
            c[1] += sum(len(ident.encode()) for ident in chunk)
    expiring = [(key, at) for key, at in rollup.expiries.items()
                if key in cost and not expiry_sent(key, at)]
    for key, _ in expiring:
        c = cost[key]
        c[0] += 2
        c[1] += _NUMBER_BYTES

    built: list[_Piece] = []
    order: list[int] = []  # pieces as they are closed, then the ones left open
    open_pieces: dict[int, int] = {}  # slot -> the piece being filled
    home: dict[str, _Piece] = {}
    for key, (count, size, repeats) in cost.items():
        slot = key_slot(key) if cluster else 0
        size += len(key.encode()) * (1 + repeats)
        n = open_pieces.get(slot)
        if n is not None and built[n].size and (
                built[n].count + count > max_args or built[n].size + size > max_bytes):
            order.append(n)
            n = None
        if n is None:
            n = open_pieces[slot] = len(built)
            built.append(_Piece(slot))
        piece = home[key] = built[n]
        piece.count += count
        piece.size += size
    order += open_pieces.values()

    for key, chunk in chunks:
        home[key].pfadd.append((key, chunk))
    for ((key, bucket), text) in zip(rollup.sums, spelled):
        piece = home[key]
        piece.keys["HINCRBYFLOAT"].append(key)
        piece.sections["HINCRBYFLOAT"] += (str(bucket), text)
    for (key, member), at in rollup.last_seen.items():
        piece = home[key]
        piece.keys["ZADD"].append(key)
        piece.sections["ZADD"] += ("GT", repr(at), member)
    for (key, metric), kind in rollup.kinds.items():
        piece = home[key]
        piece.keys["HSETNX"].append(key)
        piece.sections["HSETNX"] += (metric, kind)
    for key, at in expiring:
        piece = home[key]
        piece.keys["EXPIREAT"].append(key)
        piece.sections["EXPIREAT"].append(str(at))
    return [built[n].encode() for n in order]


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
