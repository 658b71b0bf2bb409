"""The cardinality guard: past a limit, new pks, metric names and children count as `_other`."""

from __future__ import annotations

import json
import time

import pytest

from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale import HailWhale
from hailwhale.config import Limits
from hailwhale.events import Event
from whale.reads import Series

NOW = time.time() // 3600 * 3600 + 1234.5
DAY = "1d:1y"


def guarded(redis, children: int = 3, pks: int = 10_000, metrics: int = 1_000) -> HailWhale:
    limits = Limits(children=children, pks=pks, metric_names=metrics)
    return HailWhale(redis=redis, limits=limits, clock=lambda: NOW)


def total(hw: HailWhale, pk: tuple = (), path: tuple = (), metric: str = "hits") -> float:
    """A series' total over the day period's window, read from the store (any pk)."""
    period = hw.periods.find(DAY)
    [points] = hw.store.points([Series(pk, path, metric)], period.interval, period.window(NOW))
    return sum(points)


@pytest.fixture(params=["real", "fake"])
def client(request, redis_server):
    return request.getfixturevalue("redis_client" if request.param == "real" else "fake_redis")


# -- children per parent ---------------------------------------------------------


def test_new_children_past_the_limit_count_as_other(client):
    hw = guarded(client)
    for n in range(6):
        hw.count(dimensions={"user": {f"u{n}": "page"}}, metrics={"n": n})
    hw.count(dimensions={"user": {"u1": "again"}})  # a known child stays itself
    children = {c["name"]: c["totals"] for c in hw.dimensions("user", ["hits", "n"])["children"]}
    assert children == {"u0": {"hits": 1, "n": 0}, "u1": {"hits": 2, "n": 1},
                        "u2": {"hits": 1, "n": 2}, "_other": {"hits": 3, "n": 3 + 4 + 5}}
    # nothing is lost: the parent and overall still count every event
    totals = hw.totals("user", ["hits", "n"], period="15s:3h")["15s:3h"]["user"]
    assert totals == {"hits": 7, "n": 15}
    # nothing below `_other` is stored
    assert not client.keys("*u5*")
    assert hw.store.guard.report(NOW) == {
        "limits": {"children": 3, "pks": 10_000, "metric_names": 1_000},
        "capped_parents": {"children": 1, "pks": 0, "metric_names": 0}}
    [capped] = hw.store.guard.capped(NOW)
    assert capped["kind"] == "children" and (capped["pk"], capped["parent"]) == ("_", "user")
    assert (capped["names"], capped["limit"], capped["refused"]) == (3, 3, 3)
    assert sorted(capped["recent"]) == ["u3", "u4", "u5"] and not capped["at_least"]


def test_top_level_dimensions_are_capped_too_and_pks_apart(client):
    hw = guarded(client, children=2)
    for name in ("a", "b", "c"):
        hw.count(dimensions=name)
        hw.count(dimensions=name, pk="shop")
    top = [c["name"] for c in hw.dimensions(None)["children"]]
    assert sorted(top) == ["_other", "a", "b"]
    assert sorted(c["name"] for c in hw.dimensions(None, pk="shop")["children"]) == [
        "_other", "a", "b"]


def test_other_takes_no_place_of_a_child(client):
    hw = guarded(client, children=2)
    for name in ("a", "b", "c", "d"):
        hw.count(dimensions=["x", name])
    client.zrem(hw.store.keys.children((), ("x",)), "a")  # as if `a` had aged out
    hw.count(dimensions=["x", "e"])  # room for one: `_other` does not hold it
    names = sorted(c["name"] for c in hw.dimensions("x")["children"])
    assert names == ["_other", "b", "e"]


def test_the_flusher_applies_the_guard(redis_client):
    hw = guarded(redis_client, children=2)
    buffer = Buffer(redis_client, hw.store.keys)
    buffer.push([hw.event(dimensions=["x", f"v{n}"]) for n in range(5)], NOW)
    Flusher(buffer, hw.store).flush_all()
    names = sorted(c["name"] for c in hw.dimensions("x")["children"])
    assert names == ["_other", "v0", "v1"]


# -- pks -------------------------------------------------------------------------


def test_new_pks_past_the_limit_count_under_pk_other(client):
    hw = guarded(client, pks=3)
    for n in range(6):
        hw.count(pk=f"p{n}", dimensions="d", metrics={"dollars": 10})
    hw.count(pk="p1", dimensions="d")  # a known pk stays itself
    assert sorted(hw.store.pks()) == ["_other", "p0", "p1", "p2"]
    assert total(hw, ("p1",)) == 2
    assert total(hw, ("_other",)) == 3
    assert total(hw, ("_other",), metric="dollars") == 30
    assert total(hw, ("_other",), ("d",)) == 3  # its dimensions, as any pk's
    assert not client.keys("*p5*")
    assert hw.store.guard.report(NOW)["capped_parents"] == {
        "children": 0, "pks": 1, "metric_names": 0}
    [capped] = hw.store.guard.capped(NOW)
    assert (capped["kind"], capped["pk"], capped["names"], capped["refused"]) == (
        "pks", None, 3, 3)


def test_a_list_pk_is_cut_where_the_limit_is_reached(client):
    hw = guarded(client, pks=2)
    hw.count(pk="shop")
    hw.count(pk=["shop", "eu"])
    hw.count(pk=["shop", "us"], metrics={"n": 1})  # `shop` known; ["shop","us"] is one too many
    hw.count(pk="bank")
    assert set(hw.store.pks()) == {"shop", '["shop","eu"]', '["shop","_other"]', "_other"}
    assert total(hw, ("shop",)) == 3  # still counts every event of its pks
    assert total(hw, ("shop", "_other"), metric="n") == 1
    assert total(hw, ("_other",)) == 1


# -- metric names per pk -----------------------------------------------------------


def test_new_metric_names_past_the_limit_count_as_metric_other(client):
    hw = guarded(client, metrics=3)  # hits and two more
    hw.count(metrics={"a": 1, "b": 2})
    hw.count(dimensions="d", metrics={"c": 3, "e": 4.5, "a": 10})
    hw.count(metrics={"visitors": {"unique": "u1"}})  # a unique past the limit adds 1
    hw.count(metrics={"b": 5})
    assert sorted(hw.store.metric_kinds(())) == ["_other", "a", "b", "hits"]
    totals = hw.totals(None, ["hits", "a", "b", "_other"], period=DAY, depth=1)[DAY]
    assert totals["_"] == {"hits": 4, "a": 11, "b": 7, "_other": 3 + 4.5 + 1}
    assert totals["d"] == {"hits": 1, "a": 10, "b": 0, "_other": 7.5}
    assert not client.keys("*:visitors:*") and not client.keys("*:c:*")
    # per pk: another pk has its own registry
    hw.count(pk="shop", metrics={"c": 1, "e": 1})
    assert sorted(hw.store.metric_kinds(("shop",))) == ["c", "e", "hits"]
    assert hw.store.guard.report(NOW)["capped_parents"]["metric_names"] == 1
    [capped] = hw.store.guard.capped(NOW)
    assert (capped["kind"], capped["pk"], capped["names"], capped["refused"]) == (
        "metric_names", "_", 3, 3)


def test_hits_is_never_refused(client):
    hw = guarded(client, metrics=1)
    hw.count(pk="p", metrics={"hits": 5})
    hw.count(pk="p", metrics={"x": 2})
    assert sorted(hw.store.metric_kinds(("p",))) == ["_other", "hits"]
    assert total(hw, ("p",)) == 6 and total(hw, ("p",), metric="_other") == 2


# -- exact counters, public report ---------------------------------------------------


def test_refused_names_are_counted_once_per_parent(redis_client):
    hw = guarded(redis_client, children=6)
    store = hw.store
    for name in "abcdef":
        hw.count(pk=["x", "y"], dimensions=["user", name])
    flood = [hw.event(pk=["x", "y"], dimensions=["user", f"f{n % 5}"]) for n in range(40)]
    for start in range(0, 40, 8):  # the same 5 names, over and over, in several calls
        store.count(flood[start:start + 8])
    store.rollup(flood, NOW)  # a batch rolled up again (a flusher's retry): no new names
    capped = {(c["pk"], c["parent"]): c["refused"] for c in store.guard.capped(NOW)}
    # each pk counts the event under its own `user`: each refused the 5 names, once
    assert capped == {("x", "user"): 5, ('["x","y"]', "user"): 5}
    assert store.guard.report(NOW)["capped_parents"]["children"] == 2
    assert total(hw, ("x",), ("user", "_other")) == 40


def test_refused_names_kept_are_bounded_by_the_limit(fake_redis):
    hw = guarded(fake_redis, children=3)
    hw.store.count([hw.event(dimensions=["u", f"v{n}"]) for n in range(50)])
    [capped] = hw.store.guard.capped(NOW)
    assert capped["refused"] == 4 and capped["at_least"]  # more than 3
    assert fake_redis.zcard(hw.store.keys.refused((), ("u",))) == 4


def test_the_report_names_nothing(client):
    hw = guarded(client, children=1, pks=1, metrics=2)
    for n in range(3):
        hw.count(pk=f"secretpk{n}", dimensions=["secretdim", f"secretchild{n}"],
                 metrics={f"secretmetric{n}": 1})
        hw.count(dimensions=["secretdim", f"secretchild{n}"], metrics={f"secretmetric{n}": 1})
    report = hw.store.guard.report(NOW)
    assert "secret" not in json.dumps(report)
    assert report["capped_parents"] == {"children": 2, "pks": 1, "metric_names": 2}
    named = json.dumps(hw.store.guard.capped(NOW))
    assert "secretpk2" in named and "secretchild2" in named and "secretmetric2" in named


def test_an_unchanged_stream_costs_no_lookup(redis_client):
    hw = guarded(redis_client, children=2, metrics=3)
    events = [Event((), (("a",), ("a", "b")), {"hits": 1, "m": 2}, {}, NOW)] * 3
    assert hw.store.guard.admit(events, NOW) == events
    before = redis_client.info("stats")["total_commands_processed"]
    assert hw.store.guard.admit(events, NOW) == events
    assert redis_client.info("stats")["total_commands_processed"] == before + 1  # INFO itself


def test_the_defaults_are_the_configured_limits(fake_redis):
    hw = HailWhale(redis=fake_redis, clock=lambda: NOW)
    assert hw.store.guard.report(NOW)["limits"] == {
        "children": 10_000, "pks": 10_000, "metric_names": 1_000}
