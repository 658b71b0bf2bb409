"""The flusher's fast reads: an item read with its shape remembered is the event
Event.from_json reads, and exact float sums added in C are exact (no Redis)."""

from __future__ import annotations

import math
from fractions import Fraction

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hail.items import decode, read_event
from hailwhale.events import Event
from hailwhale.sums import exact_floats

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
paths = st.lists(names, min_size=1, max_size=3).map(tuple)
events = st.builds(
    Event,
    pk=st.lists(names, max_size=2).map(tuple),
    paths=st.lists(paths, max_size=4).map(tuple),
    sums=st.dictionaries(names, st.one_of(st.integers(-2**53, 2**53),
                                          st.floats(-2**53, 2**53, allow_nan=False)),
                         max_size=3),
    uniques=st.dictionaries(names, names, max_size=2),
    at=st.floats(0, 2e9),
    intervals=st.one_of(st.none(), st.lists(st.integers(1, 86400), max_size=3).map(tuple)),
)


@given(st.lists(events, min_size=1, max_size=20))
def test_a_batch_reads_back_as_from_json_reads_each_event(batch):
    bodies = [event.to_json().encode() for event in batch]
    for _ in range(2):  # the second time, every shape is remembered
        assert [read_event(body) for body in bodies] == [Event.from_json(b) for b in bodies]
        got = decode([b"1.5 " + body for body in bodies], 0.0).events
        assert [(e, e.intervals) for e in got] == [(e, e.intervals) for e in batch]


SHAPE = b'{"pk":["shop"],"paths":[["a"],["a","b"]]'


@pytest.mark.parametrize("values", [
    b'"sums":{"hits":1},"uniques":{},"at":5.0}',  # an older spelling: no intervals
    b'"sums":{"hits":1},"uniques":{},"at":5,"intervals":[15]}',  # an int time
    b'"sums":{"hits":1},"uniques":{},"at":5.0,"intervals":[15],"pk":["x"]}',  # a later pk
    b'"sums":{"hits":1},"uniques":{},"at":5.0,"intervals":null}',
    b'"sums":{"hits":true},"uniques":{},"at":5.0,"intervals":[15]}',
    b'"sums":{"hits":1},"uniques":{"u":1},"at":5.0,"intervals":[15]}',
    b'"sums":{"hits":1},"uniques":{},"at":5.0,"intervals":[1.5]}',
    b'"sums":[],"uniques":{},"at":5.0,"intervals":[15]}',
    b'"sums":{"hits":1},"uniques":{},"at":"5","intervals":[15]}',
    b'"sums":{"hits":1},"uniques":{},"at":5.0,"intervals":[15]',
    b'"sums":{"hits":1}}',
])
def test_odd_values_after_a_known_shape_read_as_from_json_reads_them(values):
    read_event(SHAPE + b',"sums":{"hits":1},"uniques":{},"at":1.0,"intervals":[15]}')
    body = SHAPE + b"," + values
    try:
        expected = Event.from_json(body)
    except Exception as error:  # whatever it is, read_event says the same
        with pytest.raises(type(error)) as raised:
            read_event(body)
        assert str(raised.value) == str(error)
    else:
        got = read_event(body)
        assert (got, got.intervals) == (expected, expected.intervals)


@pytest.mark.parametrize("shape", [
    b'{"pk":[],"paths":[],"pk":["x"]',  # a repeated field
    b'{"pk":[],"paths":[],"extra":1',
    b'{"paths":[["a"]],"pk":[]',
])
def test_a_shape_spelled_otherwise_is_read_as_from_json_reads_it(shape):
    body = shape + b',"sums":{"hits":1},"uniques":{},"at":1.0,"intervals":[15]}'
    for _ in range(2):
        got, expected = read_event(body), Event.from_json(body)
        assert (got, got.intervals) == (expected, expected.intervals)
    later = shape + b',"sums":{"hits":2},"uniques":{},"at":1.0,"intervals":[15],"pk":["y"]}'
    assert read_event(later) == Event.from_json(later)


floats = st.floats(-2**53, 2**53, allow_nan=False, allow_infinity=False)


@given(st.lists(st.one_of(floats, st.sampled_from([0.1, 5e-324, -5e-324, 2.0**53, 1e-300]))))
def test_floats_added_in_c_are_exact(values):
    assert Fraction(exact_floats(values).scaled, 1 << 1074) == sum(map(Fraction, values))


def test_the_classic_float_sums():
    assert exact_floats([0.1] * 1000).value() == 100.0
    assert exact_floats([9e15, 1.5, -9e15]).value() == 1.5
    assert exact_floats([1e300, 1e-300, -1e300]).value() == 1e-300
    assert exact_floats([]).value() == 0 and exact_floats([0.5, 0.5]).value() == 1
    assert math.isclose(exact_floats([0.1, 0.2]).value(), 0.30000000000000004, rel_tol=0)
    assert orjson.dumps(exact_floats([2.5] * 4).value()) == b"10"
