"""expand(event): every (pk prefix, dimension path) pair an event counts under, once (pure)."""

from __future__ import annotations

from hailwhale.config import Limits
from hailwhale.events import Event, parse_event
from hailwhale.expand import expand, pk_prefixes
from hailwhale.periods import Periods

NOW = 1_700_000_000.0


def parsed(**params: object) -> Event:
    return parse_event(params, periods=Periods.parse(), limits=Limits(), now=NOW, encoded=False)


def test_an_event_without_pk_or_dimensions_counts_overall_only():
    assert pk_prefixes(()) == [()]
    assert expand(parsed()) == [((), ())]


def test_every_pk_prefix_crosses_overall_and_every_dimension_prefix():
    event = parsed(pk=["shop", "eu"], dimensions={"country": {"fr": "paris"}})
    dims = [(), ("country",), ("country", "fr"), ("country", "fr", "paris")]
    assert expand(event) == [(pk, path) for pk in (("shop",), ("shop", "eu")) for path in dims]


def test_each_pair_comes_once():
    event = parsed(pk="a", dimensions={"x": {"y": "v", "z": "v"}})
    pairs = expand(event)
    assert len(pairs) == len(set(pairs)) == 6
    assert {path for _, path in pairs} == {
        (), ("x",), ("x", "y"), ("x", "y", "v"), ("x", "z"), ("x", "z", "v")}


def test_the_window_is_decided_at_parse_once():
    periods = Periods.parse("15s:3h,1h:7d")
    late = parse_event({"at": NOW - 4 * 3600}, periods=periods, limits=Limits(), now=NOW,
                       encoded=False)
    assert late.intervals == (3600,)
    assert Event.from_json(late.to_json()).intervals == (3600,)
