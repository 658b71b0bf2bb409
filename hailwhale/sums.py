"""Exact sums: a batch is added up without rounding, then rounded once, correctly.

Integers add exactly as Python ints. A float joins a sum as an `ExactSum`: every
finite double is an integer multiple of 2**-1074, so the sum is kept as that
integer, and `value()` divides once (Python's int / int is correctly rounded).
So `0.1` counted 1000 times in one batch is `100.0`, whatever the order, and the
same events give the same write whichever path batched them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_SCALE = 1074  # 2**-1074: the smallest subnormal double
_ONE = 1 << _SCALE
_EXACT_INTS = 2**53 << _SCALE  # integral sums up to here are written as ints


class ExactSum:
    """A sum of ints and floats, kept exact until `value()`."""

    __slots__ = ("scaled",)

    def __init__(self, scaled: int):
        self.scaled = scaled

    @classmethod
    def of(cls, value: float) -> ExactSum:
        numerator, denominator = value.as_integer_ratio()  # denominator: a power of two
        return cls(numerator << (_SCALE + 1 - denominator.bit_length()))

    def __add__(self, other: object) -> ExactSum:
        if type(other) is int:
            return ExactSum(self.scaled + (other << _SCALE))
        if type(other) is ExactSum:
            return ExactSum(self.scaled + other.scaled)
        if type(other) is float:
            return ExactSum(self.scaled + ExactSum.of(other).scaled)
        return NotImplemented

    __radd__ = __add__

    def value(self) -> int | float:
        """The sum, correctly rounded to a double (an int when it is one exactly)."""
        if not self.scaled & (_ONE - 1) and abs(self.scaled) <= _EXACT_INTS:
            return self.scaled >> _SCALE
        return self.scaled / _ONE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExactSum) and other.scaled == self.scaled

    def __repr__(self) -> str:
        return f"ExactSum({self.value()!r})"


def exact_floats(values: list[float]) -> ExactSum:
    """The exact sum of finite floats, added in C: math.fsum rounds the sum correctly, and
    again what that rounding left out, until nothing is (once or twice for usual values)."""
    parts: list[float] = []
    rest = values
    while part := math.fsum(rest):  # 0.0 only when the sum is exactly 0
        parts.append(part)
        rest = values + [-done for done in parts]
    return ExactSum(sum(ExactSum.of(part).scaled for part in parts))


def exact(amount: int | float) -> int | ExactSum:
    """An amount ready to be summed exactly: ints as they are, floats as ExactSum."""
    return amount if type(amount) is int else ExactSum.of(amount)


def total(amount: int | float | ExactSum) -> int | float:
    """The number to write for a summed amount."""
    return amount.value() if type(amount) is ExactSum else amount


def exact_sum(values: Iterable[int | float]) -> int | float:
    """The sum of `values`, exact, rounded once (an int when every value is one)."""
    values = list(values)
    kinds = set(map(type, values))
    if kinds <= {int}:
        return sum(values)
    if not values or -(2**53) <= min(values) and max(values) <= 2**53:
        return math.fsum(values)  # correctly rounded, and ints this small are exact floats
    summed: int | ExactSum = 0
    for value in values:
        summed = summed + exact(value)
    return total(summed)
