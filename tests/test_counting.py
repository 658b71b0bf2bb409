"""Counting and querying through the Python API, on a real redis-server and on fakeredis."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest

from hailwhale import HailWhale
from hailwhale.exceptions import InvalidEvent, InvalidQuery
from whale.rollup import CHUNK_BUCKETS

# Near the real time, so that keys a test writes do not expire at once; mid-bucket.
NOW = time.time() // 3600 * 3600 + 1234.5


class Clock:
    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["real", "fake"])
def hw(request, redis_server) -> HailWhale:
    if request.param == "real":
        client = request.getfixturevalue("redis_client")
    else:
        client = request.getfixturevalue("fake_redis")
    return HailWhale(redis=client, clock=Clock())


@pytest.fixture
def real_hw(redis_client) -> HailWhale:
    return HailWhale(redis=redis_client, clock=Clock())


def last(points: list) -> float:
    return points[-1][1]


def test_every_prefix_is_counted(hw):
    hw.count(dimensions={"sales": "p42"}, metrics={"dollars": 500})
    points = hw.plotpoints("sales", ["dollars"], period="15s:3h", depth=1)
    assert list(points) == ["sales", '["sales","p42"]']
    assert last(points["sales"]["dollars"]) == 500
    assert last(points['["sales","p42"]']["dollars"]) == 500
    overall = hw.plotpoints(None, ["dollars", "hits"], period="15s:3h")
    assert last(overall["_"]["dollars"]) == 500
    assert last(overall["_"]["hits"]) == 1


def test_window_has_every_bucket_in_epoch_ms(hw):
    hw.count(dimensions="a")
    points = hw.plotpoints("a", period="15s:3h")["a"]["hits"]
    assert len(points) == 720
    stamps = [ms for ms, _ in points]
    assert stamps[-1] == (int(NOW) // 15 * 15) * 1000
    assert all(b - a == 15_000 for a, b in zip(stamps, stamps[1:]))
    assert [v for _, v in points].count(0) == 719
    assert len(hw.plotpoints("a", period="1h:7d")["a"]["hits"]) == 168
    assert len(hw.plotpoints("a", period="1d:1y")["a"]["hits"]) == 365


def test_bucket_alignment_at_boundaries(hw):
    boundary = int(NOW) // 3600 * 3600
    hw.count(dimensions="edge", at=boundary - 0.001)
    hw.count(dimensions="edge", at=boundary)
    hw.count(dimensions="edge", at=boundary + 14.999)
    points = dict(hw.plotpoints("edge", period="15s:3h")["edge"]["hits"])
    assert points[(boundary - 15) * 1000] == 1
    assert points[boundary * 1000] == 2
    hourly = dict(hw.plotpoints("edge", period="1h:7d")["edge"]["hits"])
    assert hourly[(boundary - 3600) * 1000] == 1
    assert hourly[boundary * 1000] == 2


def test_iso_and_datetime_at(hw):
    hw.count(dimensions="t", at=datetime.fromtimestamp(NOW - 3600, timezone.utc))
    iso = datetime.fromtimestamp(NOW - 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    hw.count(dimensions="t", at=iso)
    hourly = dict(hw.plotpoints("t", period="1h:7d")["t"]["hits"])
    assert hourly[int(NOW - 3600) // 3600 * 3600 * 1000] == 2


def test_old_event_skips_intervals_whose_window_it_is_outside(hw):
    hw.count(dimensions="old", at=NOW - 5 * 3600)
    totals = hw.totals("old")
    assert totals["15s:3h"]["old"]["hits"] == 0
    assert totals["1h:7d"]["old"]["hits"] == 1
    assert totals["1d:1y"]["old"]["hits"] == 1


def test_float_sums_are_not_rounded(hw):
    for amount in (0.5, 0.25, 1e-3, 2.5e10):
        hw.count(dimensions="f", metrics={"x": amount})
    total = hw.totals("f", "x", period="15s:3h")["15s:3h"]["f"]["x"]
    assert total == pytest.approx(0.5 + 0.25 + 1e-3 + 2.5e10, rel=1e-15)
    hw.count(dimensions="g", metrics={"x": 0.1})
    assert hw.totals("g", "x", period="15s:3h")["15s:3h"]["g"]["x"] == 0.1


def test_unique_counts_are_the_union_over_the_window(hw):
    for offset, user in [(0, "ann"), (0, "bob"), (-60, "ann"), (-120, "cy"), (-120, "ann")]:
        hw.count(dimensions="u", metrics={"visitors": {"unique": user}}, at=NOW + offset)
    totals = hw.totals("u", ["visitors", "hits"], period="15s:3h")["15s:3h"]["u"]
    assert totals == {"visitors": 3, "hits": 5}
    points = [v for _, v in hw.plotpoints("u", "visitors", period="15s:3h")["u"]["visitors"]]
    assert sum(points) == 5  # per bucket: 2 + 1 + 2, the window total is not their sum
    assert points[-1] == 2


def test_pk_namespaces_are_separate_and_rolled_up(hw):
    hw.count(pk=["Product", "123"], dimensions="x")
    hw.count(dimensions="x")
    assert hw.totals("x", period="15s:3h", pk="Product")["15s:3h"]["x"]["hits"] == 1
    assert hw.totals("x", period="15s:3h", pk='["Product","123"]')["15s:3h"]["x"]["hits"] == 1
    assert hw.totals("x", period="15s:3h")["15s:3h"]["x"]["hits"] == 1


def test_depth_threshold_limit_and_sort(hw):
    sizes = {"a": 50, "b": 30, "c": 12, "d": 5, "e": 3}
    for name, dollars in sizes.items():
        hw.count(dimensions=["shop", name], metrics={"dollars": dollars, "clicks": 100 - dollars})
    shown = hw.plotpoints("shop", ["dollars"], period="15s:3h", depth=1)
    assert list(shown) == ["shop", '["shop","a"]', '["shop","b"]', '["shop","c"]']
    shown = hw.plotpoints("shop", ["dollars"], period="15s:3h", depth=1, threshold=0, limit=2)
    assert list(shown)[1:] == ['["shop","a"]', '["shop","b"]']
    by_clicks = hw.totals("shop", ["dollars"], period="15s:3h", depth=1, threshold=0,
                          limit=2, sort="-clicks")["15s:3h"]
    assert list(by_clicks)[1:] == ['["shop","e"]', '["shop","d"]']
    assert by_clicks['["shop","e"]'] == {"dollars": 3}


def test_depth_two_nests_grandchildren_after_their_parent(hw):
    hw.count(dimensions={"country": {"US": "CA"}})
    hw.count(dimensions={"country": {"FR": "Paris"}})
    keys = list(hw.totals("country", period="15s:3h", depth=2)["15s:3h"])
    assert keys == ["country", '["country","FR"]', '["country","FR","Paris"]',
                    '["country","US"]', '["country","US","CA"]']


def test_formulas(hw):
    hw.count(dimensions="f", metrics={"dollars": 30, "clicks": 2, "views": 8})
    hw.count(dimensions="f", metrics={"dollars": 10, "clicks": 2, "views": 8}, at=NOW - 60)
    totals = hw.totals("f", ["dollars/hits", "clicks/views*100", "(dollars+clicks)/hits",
                             "dollars/nothing"], period="15s:3h")["15s:3h"]["f"]
    assert totals == {"dollars/hits": 20, "clicks/views*100": 25, "(dollars+clicks)/hits": 22,
                      "dollars/nothing": 0}
    points = hw.plotpoints("f", "dollars/hits", period="15s:3h")["f"]["dollars/hits"]
    assert points[-1][1] == 30
    assert points[0][1] == 0  # an empty bucket divides by zero: 0


def test_dimensions_lists_children_with_totals(hw):
    hw.count(dimensions={"sales": "p1"}, metrics={"dollars": 5})
    hw.count(dimensions={"sales": "p2"}, metrics={"dollars": 7})
    answer = hw.dimensions("sales", ["dollars"], period="15s:3h")
    assert answer == {
        "period": "15s:3h",
        "parent": "sales",
        "children": [
            {"name": "p2", "key": '["sales","p2"]', "totals": {"dollars": 7}},
            {"name": "p1", "key": '["sales","p1"]', "totals": {"dollars": 5}},
        ],
    }


def test_dataset_is_the_seed_api(hw):
    hw.count(dimensions=["pageviews", "site.com", "site.com/main"], metrics={"time_on_page": 4})
    flat = hw.dataset(["pageviews", "site.com"], value="time_on_page", period="1h:7d")
    assert flat[-1] == (datetime.fromtimestamp(int(NOW) // 3600 * 3600, timezone.utc), 4)
    nested = hw.dataset(["pageviews", "site.com"], value="time_on_page", period="1h:7d", depth=1)
    assert list(nested) == ["site.com/main"]
    recent = hw.dataset(["pageviews"], period="1h:7d", start_at=NOW - 7200)
    assert len(recent) == 2


def test_bad_event_counts_nothing(hw):
    with pytest.raises(InvalidEvent) as error:
        hw.count(dimensions="x", metrics={"dollars": 5, "bad": "five"})
    assert error.value.param == "metrics"
    assert hw.totals(None, period="15s:3h")["15s:3h"]["_"]["hits"] == 0


def test_unknown_period_names_the_configured_ones(hw):
    with pytest.raises(InvalidQuery) as error:
        hw.plotpoints("x", period="5m:1h")
    assert error.value.param == "period"
    assert "15s:3h, 1h:7d, 1d:1y" in error.value.message


def test_keys_are_hash_tagged_and_expire(real_hw, redis_client):
    real_hw.count(dimensions={"a{b}": "c|d"}, metrics={"dollars": 1, "v": {"unique": "x"}})
    keys = [k.decode() for k in redis_client.keys("*")]
    assert keys
    for key in keys:
        if key != "hw:pks":
            assert key.count("{") == 1 and key.count("}") == 1, key
        assert redis_client.ttl(key) > 0, key


def test_buckets_really_vanish_by_expiry(redis_client):
    """Sum chunks (CHUNK_BUCKETS buckets each) expire when their last bucket is out of the
    window; everything else within the window's length."""
    hw = HailWhale(redis=redis_client, periods="1s:2s")
    hw.count(dimensions="short", metrics={"x": 1, "v": {"unique": "u"}})
    chunks = {k for k in redis_client.keys("*") if re.search(rb":\d+$", k)}
    assert chunks and redis_client.dbsize() > len(chunks)
    for key in chunks:
        assert 0 < redis_client.ttl(key) <= CHUNK_BUCKETS + 2
    deadline = time.monotonic() + 10
    while redis_client.dbsize() > len(chunks) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(redis_client.keys("*")) == chunks


def test_dimensions_has_no_threshold_or_limit_unless_given(hw):
    hw.count(dimensions=["d", "big"], metrics={"n": 1000})
    hw.count(dimensions=["d", "tiny"], metrics={"n": 1})
    names = [c["name"] for c in hw.dimensions("d", "n")["children"]]
    assert names == ["big", "tiny"]
    assert [c["name"] for c in hw.dimensions("d", "n", threshold=0.1)["children"]] == ["big"]
    assert [c["name"] for c in hw.dimensions("d", "n", limit=1)["children"]] == ["big"]
