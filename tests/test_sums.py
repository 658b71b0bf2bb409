"""hailwhale/sums.py, pure: exact sums, rounded once (no Redis)."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from hailwhale.sums import ExactSum, exact, exact_sum, total

amounts = st.one_of(st.integers(-2**53, 2**53),
                    st.floats(-2**53, 2**53, allow_nan=False, allow_infinity=False))


@given(st.lists(amounts, min_size=1, max_size=50))
def test_a_sum_is_the_exact_sum_rounded_once(values):
    summed = 0
    for value in values:
        summed = summed + exact(value)
    exactly = sum(map(Fraction, values))
    got = total(summed)
    if all(type(v) is int for v in values):
        assert got == exactly and type(got) is int
    else:
        assert got == float(exactly)  # int/int is correctly rounded, as is float(Fraction)
        assert got == math.fsum(values)


def test_the_classic_cases():
    def add(values):
        summed = 0
        for value in values:
            summed = summed + exact(value)
        return total(summed)

    assert add([0.1] * 1000) == 100.0
    assert add([9e15, 1.5, -9e15]) == 1.5
    assert add([2**53] * 3) == 27021597764222976
    assert add([0.5, 0.5]) == 1 and type(add([0.5, 0.5])) is int
    assert ExactSum.of(5e-324).value() == 5e-324


def test_window_totals_are_exact_too():
    assert exact_sum([2**53, 2**53, 3]) == 18014398509481987
    assert exact_sum([0.1] * 10) == 1.0
    assert exact_sum([2**60, 0.5]) == float(2**60)
    assert type(exact_sum([-(2**53)])) is int
