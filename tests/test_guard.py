"""The cardinality guard: past the limit, new children count under `_other`."""

from __future__ import annotations

import time

from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale import HailWhale
from hailwhale.config import Limits

NOW = time.time() // 3600 * 3600 + 1234.5


def guarded(redis_client, limit: int = 3) -> HailWhale:
    return HailWhale(redis=redis_client, limits=Limits(children=limit), clock=lambda: NOW)


def test_new_children_past_the_limit_count_as_other(redis_client):
    hw = guarded(redis_client)
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
    assert not redis_client.keys("*u5*")
    assert hw.store.guard.report() == {"limit": 3, "capped_parents": {"user": 3}}


def test_top_level_dimensions_are_capped_too_and_pks_apart(redis_client):
    hw = guarded(redis_client, limit=2)
    for name in ("a", "b", "c"):
        hw.count(dimensions=name)
        hw.count(dimensions=name, pk="shop")
    top = [c["name"] for c in hw.dimensions(None)["children"]]
    assert sorted(top) == ["_other", "a", "b"]
    assert sorted(c["name"] for c in hw.dimensions(None, pk="shop")["children"]) == [
        "_other", "a", "b"]


def test_the_flusher_applies_the_guard(redis_client):
    hw = guarded(redis_client, limit=2)
    buffer = Buffer(redis_client, hw.store.keys)
    buffer.push([hw.event(dimensions=["x", f"v{n}"]) for n in range(5)], NOW)
    Flusher(buffer, hw.store).flush_all()
    names = sorted(c["name"] for c in hw.dimensions("x")["children"])
    assert names == ["_other", "v0", "v1"]
