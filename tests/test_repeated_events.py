"""Events that repeat a pk, dimensions or metric names (a stream repeats a few hundred)
parse as the first of them did, under the limits of their own request."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailwhale.config import Limits
from hailwhale.events import Event, parse_batch, parse_event
from hailwhale.exceptions import InvalidEvent
from hailwhale.periods import Periods

PERIODS = Periods.parse("15s:3h,1h:7d,1d:1y")
NOW = 1_700_000_000.0


def parsed(params: dict, limits: Limits = Limits(), encoded: bool = False):
    """The event, or the (param, message) of the error."""
    try:
        event = parse_event(params, periods=PERIODS, limits=limits, now=NOW, encoded=encoded)
    except InvalidEvent as error:
        return error.param, error.message
    return event, event.intervals


names = st.one_of(st.sampled_from(["a", "b", "_", "_other", "", "x" * 9, "\u200b", "e\u0301"]),
                  st.integers(-3, 3), st.booleans(), st.none(), st.floats(-2, 2))
values = st.recursive(names, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c", "é"]),
                                                 inner, max_size=3)), max_leaves=8)
metrics = st.one_of(st.sampled_from(["hits", "clicks", "9x", "a.b"]),
                    st.lists(st.sampled_from(["hits", "clicks", "x" * 9]), max_size=3),
                    st.dictionaries(st.sampled_from(["hits", "dollars", "x" * 9, "1a"]),
                                    st.one_of(st.integers(-2**54, 2**54), st.floats(),
                                              st.booleans(), st.just({"unique": "u"})),
                                    max_size=3))
tight = [Limits(), Limits(name_length=4), Limits(path_depth=2), Limits(prefixes=2),
         Limits(names_bytes=6), Limits(metrics=1)]


@given(st.fixed_dictionaries({}, optional={"pk": values, "dimensions": values,
                                           "metrics": metrics, "category": values}),
       st.permutations(tight))
def test_an_event_parses_alike_however_often_and_under_whichever_limits_it_came(params, order):
    first = {limits: parsed(params, limits) for limits in order}
    for limits in reversed(order):
        assert parsed(params, limits) == first[limits]


@pytest.mark.parametrize("limits, param", [
    (Limits(path_depth=2), "dimensions"), (Limits(prefixes=2), "dimensions"),
    (Limits(name_length=3), "dimensions"), (Limits(names_bytes=14), "metrics"),
    (Limits(metrics=1), "metrics"), (Limits(name_length=6), "metrics"),
])
def test_a_tighter_limit_refuses_what_a_looser_one_let_through(limits, param):
    event = {"dimensions": {"shop": {"aisle": "bin"}}, "metrics": {"dollars": 2, "clicks": 1}}
    for _ in range(2):
        assert isinstance(parsed(event)[0], Event)
    assert parsed(event, limits)[0] == param


def test_a_batch_of_repeated_events_names_the_bad_one():
    good = {"dimensions": {"shop": "p1"}, "metrics": {"dollars": 2.5}}
    bad = {"dimensions": {"shop": "p1"}, "metrics": {"dollars": float("nan")}}
    with pytest.raises(InvalidEvent) as error:
        parse_batch([good] * 5 + [bad], periods=PERIODS, limits=Limits(), now=NOW)
    assert error.value.param == "metrics" and error.value.message.startswith("event 5: ")
    events = parse_batch([good] * 3, periods=PERIODS, limits=Limits(), now=NOW)
    assert [event.sums for event in events] == [{"hits": 1, "dollars": 2.5}] * 3
