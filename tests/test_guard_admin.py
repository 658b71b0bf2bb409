"""Lifting a flood: `hailwhale guard list` and `forget`, then genuine names count again."""

from __future__ import annotations

import argparse
import json
import time

import pytest

from hailwhale import HailWhale
from hailwhale.config import Limits, load_config
from hailwhale.guard_cli import add_guard_parser, run_guard
from tests.cluster import Cluster
from whale import guard_admin
from whale.connect import client
from whale.reads import Series

NOW = time.time() // 3600 * 3600 + 1234.5
DAY = "1d:1y"


def guarded(redis, children: int = 10, pks: int = 10_000, metrics: int = 1_000) -> HailWhale:
    limits = Limits(children=children, pks=pks, metric_names=metrics)
    return HailWhale(redis=redis, limits=limits, clock=lambda: NOW)


def children(hw: HailWhale, parent, pk=None) -> dict:
    found = hw.dimensions(parent, ["hits"], period=DAY, pk=pk)["children"]
    return {c["name"]: c["totals"]["hits"] for c in found}


def total(hw: HailWhale, pk: tuple = (), path: tuple = (), metric: str = "hits") -> float:
    period = hw.periods.find(DAY)
    [points] = hw.store.points([Series(pk, path, metric)], period.interval, period.window(NOW))
    return sum(points)


def flood_children(hw: HailWhale, n: int = 30) -> None:
    """Two genuine children with traffic, then a flood of one-event random children."""
    for _ in range(3):
        hw.count(dimensions={"user": {"alice": "home"}}, metrics={"dollars": 5})
        hw.count(pk="shop", dimensions={"user": "bob"})
    hw.count(dimensions={"user": "bob"}, metrics={"hits": 2})
    hw.store.count([hw.event(dimensions={"user": {f"rnd{i}": "page"}}) for i in range(n)])


@pytest.fixture(params=["real", "fake"])
def redis(request, redis_server):
    return request.getfixturevalue("redis_client" if request.param == "real" else "fake_redis")


def test_forget_lifts_a_children_flood(redis):
    hw = guarded(redis)
    flood_children(hw)
    hw.count(dimensions={"user": "carol"})
    assert "carol" not in children(hw, "user")  # locked out: counted as _other
    [capped] = guard_admin.capped(redis, hw.store.keys, hw.periods, Limits(children=10), NOW)
    assert (capped["parent"], capped["names"], capped["at_least"]) == ("user", 10, True)
    assert capped["refused"] == 11  # more than 10: each parent keeps 11 refused names

    lines: list[str] = []
    done = guard_admin.forget_children(redis, hw.store.keys, hw.periods, ("user",), now=NOW,
                                       progress=lines.append, batch=4)
    assert sorted(done.names) == sorted(f"rnd{i}" for i in range(8))  # one hit each
    assert done.kept == 2 and done.deleted > 8 and lines[-1].endswith(f"{done.deleted} deleted")
    assert len(lines) > 2  # batches of 4 keys
    assert children(hw, "user") == {"alice": 3, "bob": 2, "_other": 23}
    assert not redis.keys("*rnd*")  # their series, their children's, their index entries
    assert children(hw, "user", pk="shop") == {"bob": 3}  # another pk is another parent
    assert hw.store.guard.report(NOW)["capped_parents"]["children"] == 0

    hw.count(dimensions={"user": "carol"}, metrics={"dollars": 7})
    assert children(hw, "user") == {"alice": 3, "bob": 2, "carol": 1, "_other": 23}
    totals = hw.totals(["user", "carol"], ["dollars"], period=DAY)[DAY]
    assert totals == {'["user","carol"]': {"dollars": 7}}
    assert total(hw, (), ("user",)) == 3 + 2 + 30 + 2  # the parent kept every event


def test_forget_every_child_or_those_matching(redis):
    hw = guarded(redis)
    flood_children(hw, n=12)
    keys, periods = hw.store.keys, hw.periods
    dry = guard_admin.forget_children(redis, keys, periods, ("user",), at_most=None,
                                      match="rnd1*", now=NOW, dry_run=True)
    assert sorted(dry.names) == ["rnd1"] and dry.deleted > 0
    assert "rnd1" in children(hw, "user")  # a dry run deletes nothing
    done = guard_admin.forget_children(redis, keys, periods, ("user",), at_most=None, now=NOW)
    assert done.kept == 0 and len(done.names) == 10
    assert children(hw, "user") == {"_other": 4}
    assert total(hw, (), ("user",)) == 3 + 2 + 12


def test_forget_a_top_level_flood(redis):
    hw = guarded(redis, children=3)
    hw.count(dimensions="site", metrics={"n": 1})
    hw.count(dimensions="site")
    for i in range(5):
        hw.count(dimensions=[f"junk{i}", "deeper"])
    guard_admin.forget_children(redis, hw.store.keys, hw.periods, (), now=NOW)
    assert children(hw, None) == {"site": 2, "_other": 3}
    assert not redis.keys("*junk*")
    hw.count(dimensions="news")
    assert children(hw, None) == {"site": 2, "news": 1, "_other": 3}


def test_forget_lifts_a_pk_flood(redis):
    hw = guarded(redis, pks=4)
    for _ in range(2):
        hw.count(pk="shop", dimensions="d")
        hw.count(pk=["shop", "eu"], dimensions="d")
    for i in range(6):
        hw.count(pk=f"rnd{i}", dimensions="d")
    hw.count(pk="bank")
    assert total(hw, ("bank",)) == 0 and total(hw, ("_other",)) == 5
    [capped] = guard_admin.capped(redis, hw.store.keys, hw.periods, Limits(pks=4), NOW)
    assert (capped["kind"], capped["names"], capped["refused"]) == ("pks", 4, 5)

    done = guard_admin.forget_pks(redis, hw.store.keys, hw.periods, now=NOW)
    assert sorted(done.names) == ["rnd0", "rnd1"] and done.kept == 2
    assert set(hw.store.pks()) == {"shop", '["shop","eu"]', "_other"}
    assert not redis.keys("*rnd*")
    hw.count(pk="bank", dimensions="d")
    assert total(hw, ("bank",), ("d",)) == 1
    assert guard_admin.report(redis, hw.store.keys, hw.periods, now=NOW)["capped_parents"] == {
        "children": 0, "pks": 0, "metric_names": 0}


def test_forget_lifts_a_metric_name_flood(redis):
    hw = guarded(redis, metrics=5)
    for visitor in ("v0", "v1", "v2"):
        hw.count(pk="shop", dimensions="d",
                 metrics={"dollars": 10, "visitors": {"unique": visitor}})
    hw.store.count([hw.event(pk="shop", dimensions="d", metrics={f"m{i}": 1})
                    for i in range(6)])
    hw.count(pk="shop", metrics={"clicks": 1})
    assert sorted(hw.store.metric_kinds(("shop",))) == [
        "_other", "dollars", "hits", "m0", "m1", "visitors"]

    done = guard_admin.forget_metrics(redis, hw.store.keys, hw.periods, ("shop",), now=NOW)
    assert done.names == ["m0", "m1"] and done.kept == 2  # dollars: 30, visitors: 3 ids
    assert not redis.keys("*:m0:*") and not redis.keys("*:m1:*")
    hw.count(pk="shop", dimensions="d", metrics={"clicks": 2})
    assert sorted(hw.store.metric_kinds(("shop",))) == [
        "_other", "clicks", "dollars", "hits", "visitors"]
    assert total(hw, ("shop",), ("d",), "clicks") == 2
    assert total(hw, ("shop",), (), "_other") == 5  # what was refused stays counted
    assert hw.store.guard.report(NOW)["capped_parents"]["metric_names"] == 0


# -- the command -------------------------------------------------------------------


def run(url: str, *argv: str, limits: Limits | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hailwhale")
    add_guard_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["guard", *argv, "--redis-url", url])
    config = load_config(environ={}, redis_url=url)
    if limits is not None:
        from dataclasses import replace

        config = replace(config, limits=limits)
    return run_guard(config, args)


def test_the_command_lists_and_forgets(redis_client, redis_url, capsys):
    hw = HailWhale(redis=redis_client, limits=Limits(children=10))  # the real clock: the CLI's
    hw.store.count([hw.event(dimensions=["user", f"rnd{i}"]) for i in range(14)])
    assert run(redis_url, "list", limits=Limits(children=10)) == 0
    out = capsys.readouterr().out
    assert "children of user (pk _): 10 of 10; 4 new names refused" in out
    assert run(redis_url, "list", "--json") == 0
    [capped] = json.loads(capsys.readouterr().out)["capped"]
    assert capped["parent"] == "user" and capped["refused"] == 4

    assert run(redis_url, "forget", "user", "--dry-run") == 0
    captured = capsys.readouterr()
    assert "would forget 10 children of user (pk _), kept 0" in captured.out
    assert "keys scanned" in captured.err
    assert run(redis_url, "forget", "user") == 0
    assert "forgot 10 children of user (pk _), kept 0" in capsys.readouterr().out
    assert run(redis_url, "list") == 0
    assert "nothing capped" in capsys.readouterr().out
    hw.count(dimensions=["user", "carol"])
    assert "carol" in [c["name"] for c in hw.dimensions("user")["children"]]


def test_the_command_refuses_unclear_targets(redis_url):
    from hailwhale.exceptions import InvalidInput

    with pytest.raises(InvalidInput):
        run(redis_url, "forget")
    with pytest.raises(InvalidInput):
        run(redis_url, "forget", "user", "--pks")
    with pytest.raises(InvalidInput):
        run(redis_url, "forget", "--pks", "--pk", "shop")


# -- a Redis Cluster: one key per delete ---------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = Cluster(tmp_path_factory.mktemp("guard-cluster"), persist=False).start()
    yield started
    started.stop()


def test_forget_on_a_cluster(cluster):
    cluster.flushall()
    redis = client(cluster.url)
    try:
        hw = guarded(redis)
        flood_children(hw)
        done = guard_admin.forget_children(redis, hw.store.keys, hw.periods, ("user",),
                                           now=NOW, batch=7)
        assert len(done.names) == 8
        assert children(hw, "user") == {"alice": 3, "bob": 2, "_other": 22}
        assert not [k for k in redis.scan_iter(match="*rnd*")]
        hw.count(dimensions={"user": "carol"})
        assert children(hw, "user")["carol"] == 1
    finally:
        redis.close()
