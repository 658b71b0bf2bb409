"""Number decoding: the sums Redis answers, as the JSON numbers a client reads."""

from __future__ import annotations

import orjson

Number = int | float

_NUMERALS = b"0123456789.e+-,"  # every byte of how Redis spells a finite sum


def to_number(raw: bytes | str | None) -> Number:
    """A Redis sum as a JSON-friendly number: integral values become ints."""
    if raw is None:
        return 0
    if type(raw) is bytes and b"." not in raw and b"e" not in raw:
        return int(raw)  # how Redis spells an integral sum: exact, however long
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
