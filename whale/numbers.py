"""Number decoding: the sums Redis answers, as the JSON numbers a client reads."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import orjson

from hailwhale.sums import ExactSum, exact, total

Number = int | float
# What window_totals.lua answers for a chunk: its kind, its exact partials, its integers.
Parts = tuple[bytes, Sequence[bytes], Sequence[bytes]]

_NUMERALS = b"0123456789.e+-,"  # every byte of how Redis spells a finite sum
_EXACT = 2**53  # past it, not every integer is a double
_COUNT = struct.Struct("<Q").unpack_from


def to_number(raw: bytes | str | None) -> Number:
    """A Redis sum as a JSON-friendly number: integral values become ints."""
    if raw is None:
        return 0
    if type(raw) is bytes and b"." not in raw and b"e" not in raw:
        return int(raw)  # how Redis spells an integral sum: exact, however long
    value = float(raw)
    if value.is_integer() and abs(value) < _EXACT:
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
            numbers = orjson.loads(b"[" + joined + b"]")
        except orjson.JSONDecodeError:
            pass  # not sums HINCRBYFLOAT wrote: let to_number say what is wrong
        else:
            if len(numbers) == len(raws):  # else a value held a comma
                return numbers
    return [to_number(raw) for raw in raws]


def window_total(parts: Sequence[Parts]) -> Number | None:
    """The total of a window from the parts window_totals.lua answered for its chunks:
    `exact_sum` of its points, bit for bit; None when a chunk holds a value it left out.

    Each chunk's partials add up exactly to its values read as doubles, and its
    integers are the spellings past what a double holds. So, as `exact_sum` does: all
    ints ('i'), an exact int; no value past 2**53, `math.fsum` (correctly rounded, a
    float); else rounded once from the exact sum.
    """
    kinds = {kind for kind, _, _ in parts}
    if b"?" in kinds:
        return None
    partials = [float(p) for _, spelled, _ in parts for p in spelled]
    integers = [int(i) for _, _, spelled in parts for i in spelled]
    if kinds <= {b"i"}:
        return sum(map(int, partials)) + sum(integers)
    if b"F" not in kinds and all(-_EXACT <= i <= _EXACT for i in integers):
        return math.fsum(partials + integers)  # integers this small are exact doubles
    summed: int | ExactSum = 0
    for value in partials + integers:
        summed = summed + exact(value)
    return total(summed)


def cached_counts(raws: list[bytes | None]) -> list[int | None]:
    """The distinct counts HyperLogLogs' headers cache, which PFCOUNT answers without
    counting again; None for a value that is not a HyperLogLog or whose cache is stale.

    Redis' header (hyperloglog.c, the same since 2.8.9): "HYLL", the encoding, 3
    unused bytes, then the count, 8 bytes little-endian, the top bit set when stale.
    """
    return [_COUNT(raw, 8)[0]
            if raw is not None and len(raw) > 15 and raw[15] < 0x80 and raw.startswith(b"HYLL")
            else None for raw in raws]
