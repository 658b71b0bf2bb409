"""Bounded by design: what one query may ask, how long it may run, which parameters
it takes, and that nothing a client forges ends up in /graph.js.

The requests are the ones that once answered 130 MB, pinned a worker, answered a
500 or put a forged host next to the read key; the parent here has 250 children,
not the 10,000 of the original report (the bounds are what is tested, not speed).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from types import SimpleNamespace

import pytest

from hailwhale.config import Config, Limits
from hailwhale.embedded import RedisServer
from hailwhale.events import parse_event
from hailwhale.exceptions import InvalidQuery
from hailwhale.keys import KeySpace
from hailwhale.periods import Periods
from tests.hail_helpers import PERIODS, make_store
from tests.servers import Served, get
from tests.test_access import call
from whale import deadline
from whale.app import make_app
from whale.store import Store

NOW = time.time()
CHILDREN = 250
FORMULA = "+".join(["hits"] * 39)  # 194 characters
MANY = "dimensions=user&depth=1&limit=0&threshold=0"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Redis of this module's own, holding a parent `user` with 250 children."""
    with RedisServer(tmp_path_factory.mktemp("bounds"), persist=False) as server:
        with server.client() as client:
            events = [
                parse_event({"dimensions": {"user": f"u{i:03}"},
                             "metrics": {"dollars": i + 1, "clicks": 1}},
                            periods=PERIODS, limits=Limits(), now=NOW, encoded=False)
                for i in range(CHILDREN)
            ]
            make_store(client, "hw", NOW).count(events)
        yield server


@pytest.fixture(scope="module")
def store(server):
    with server.client() as client:
        yield make_store(client, "hw", NOW)


def whale(store, **config: object):
    return make_app(store, Config(**config), clock=lambda: NOW)


def ask(app, path: str, query: str, **headers: str) -> tuple[int, object]:
    status, response_headers, body = call(app, path, query, headers=headers)
    if response_headers["Content-Type"].startswith("application/json"):
        return status, json.loads(body)
    return status, body.decode()


def test_limit_0_means_the_most_children_100(store):
    app = whale(store)
    status, points = ask(app, "/plotpoints", MANY)
    assert status == 200
    assert len(points) == 1 + 100
    assert all(len(series["hits"]) == 720 for series in points.values())
    status, totals = ask(app, "/totals", MANY)
    assert status == 200
    assert {len(keys) for keys in totals.values()} == {101}
    status, children = ask(app, "/dimensions", "dimensions=user&limit=0")
    assert status == 200 and len(children["children"]) == 100


def test_dimensions_without_a_limit_lists_the_largest_100(store):
    status, answer = ask(whale(store), "/dimensions", "dimensions=user&metrics=dollars")
    assert status == 200
    assert [child["name"] for child in answer["children"]] == [
        f"u{i:03}" for i in range(CHILDREN - 1, CHILDREN - 101, -1)]


def test_limit_over_100_is_a_400_that_says_the_bound(store):
    app = whale(store)
    assert len(ask(app, "/plotpoints", MANY.replace("limit=0", "limit=100"))[1]) == 101
    for path in ("/plotpoints", "/totals", "/dimensions"):
        status, error = ask(app, path, MANY.replace("limit=0", "limit=101"))
        assert (status, error["param"]) == (400, "limit"), path
        assert "between 0 and 100" in error["error"]


def test_three_metrics_over_many_children(store):
    metrics = urllib.parse.quote(json.dumps(["hits", "dollars", "dollars/hits"]))
    status, points = ask(whale(store), "/plotpoints", f"{MANY}&metrics={metrics}")
    assert status == 200 and len(points) == 101
    assert all(list(series) == ["hits", "dollars", "dollars/hits"] for series in points.values())
    child = points['["user","u007"]']  # ranked by hits, all 1: the first 100 by name
    assert sum(v for _, v in child["dollars"]) == 8
    assert sum(v for _, v in child["dollars/hits"]) == 8


def test_at_most_10_metrics_or_formulas(store):
    app = whale(store)
    ten = urllib.parse.quote(json.dumps(["hits"] * 5 + ["dollars/hits"] * 5))
    assert ask(app, "/plotpoints", f"metrics={ten}")[0] == 200
    eleven = urllib.parse.quote(json.dumps(["hits"] * 11))
    for path in ("/plotpoints", "/totals", "/dimensions"):
        status, error = ask(app, path, f"metrics={eleven}")
        assert (status, error["param"]) == (400, "metrics"), path
        assert "at most 10 metrics or formulas, not 11" in error["error"]


def test_a_long_formula_over_many_children(store):
    query = f"{MANY}&metrics={urllib.parse.quote(FORMULA)}&sort={urllib.parse.quote(FORMULA)}"
    status, points = ask(whale(store), "/plotpoints", query)
    assert status == 200 and len(points) == 101
    assert sum(v for _, v in points["user"][FORMULA]) == 39 * CHILDREN
    assert sum(v for _, v in points['["user","u000"]'][FORMULA]) == 39


def test_a_formula_without_a_metric_name_is_answered(store):
    app = whale(store)
    status, points = ask(app, "/plotpoints", "metrics=5")
    assert status == 200
    assert list(points) == ["_"] and {v for _, v in points["_"]["5"]} == {5}
    status, totals = ask(app, "/totals", "metrics=5&sort=5&depth=1&period=1h:7d")
    assert (status, totals) == (200, {"1h:7d": {"_": {"5": 5}, "user": {"5": 5}}})
    status, answer = ask(app, "/dimensions", "dimensions=user&metrics=1/0&limit=1")
    assert status == 200 and answer["children"][0]["totals"] == {"1/0": 0}


def test_at_most_1000000_points_per_answer(store):
    ten = urllib.parse.quote(json.dumps(["hits"] * 10))
    # every period: 101 dimensions x 10 metrics x (720 + 168 + 365) buckets
    status, error = ask(whale(store), "/totals", f"{MANY}&metrics={ten}")
    assert (status, error["param"]) == (400, "limit")
    assert "1,265,530 points" in error["error"] and "bound of 1,000,000" in error["error"]
    small = whale(store, limits=Limits(answer_points=72_000))
    status, error = ask(small, "/plotpoints", MANY)  # 101 x 1 x 720 = 72,720
    assert (status, error["param"]) == (400, "limit")
    assert "72,720 points" in error["error"] and "72,000" in error["error"]
    assert ask(small, "/plotpoints", MANY.replace("limit=0", "limit=99"))[0] == 200


def test_a_query_past_its_timeout_is_a_503(store):
    app = whale(store, query_timeout=1e-9)
    for path in ("/plotpoints", "/totals", "/dimensions"):
        status, error = ask(app, path, f"{MANY}&metrics={urllib.parse.quote(FORMULA)}")
        assert status == 503, path
        assert error["param"] is None and "HAILWHALE_QUERY_TIMEOUT" in error["error"]


def test_a_long_query_stops_part_way(store, monkeypatch):
    """The deadline is checked as the query goes, not only when it starts."""
    ticks = iter(range(10**6))
    monkeypatch.setattr(deadline, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    query = f"{MANY}&metrics={urllib.parse.quote(FORMULA)}"
    # each look at the clock is one second later: the 6th is past a 5 s timeout
    assert ask(whale(store, query_timeout=5), "/plotpoints", query)[0] == 503
    start = next(ticks)
    assert ask(whale(store, query_timeout=10**5), "/plotpoints", query)[0] == 200
    assert next(ticks) - start > 10  # far from its only look


def test_a_served_query_past_its_timeout_frees_the_worker(server):
    with Served("--redis-url", server.url, "--no-buffer",
                HAILWHALE_QUERY_TIMEOUT="0.000000001") as served:
        for _ in range(4):  # more than the workers: each was free again
            status, _, body = get(f"{served.url}/plotpoints?{MANY}")
            assert status == 503, body
        status, _, body = get(f"{served.url}/health")
        assert status == 200, body


def test_unique_metrics_over_a_window_of_more_buckets_than_one_read_takes(server):
    periods = Periods.parse("1s:30m")  # 1800 HyperLogLogs per series
    with server.client() as client:
        store = Store(client, periods, KeySpace("long"), clock=lambda: NOW)
        store.count([parse_event({"dimensions": {"user": f"u{i}"},
                                  "metrics": {"visitors": {"unique": f"v{i % 3}"}}},
                                 periods=periods, limits=Limits(), now=NOW, encoded=False)
                     for i in range(3)])
        app = make_app(store, Config(periods=periods), clock=lambda: NOW)
        status, totals = ask(app, "/totals", "dimensions=user&depth=1&metrics=visitors")
        assert status == 200
        assert totals["1s:30m"] == {"user": {"visitors": 3}, '["user","u0"]': {"visitors": 1},
                                    '["user","u1"]': {"visitors": 1},
                                    '["user","u2"]': {"visitors": 1}}
        status, points = ask(app, "/plotpoints", "dimensions=user&metrics=visitors")
        assert status == 200 and sum(v for _, v in points["user"]["visitors"]) == 3


ROUTES = ["/plotpoints", "/totals", "/dimensions"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(("query", "param", "says"), [
    ("dimesions=user", "dimesions", "did you mean dimensions?"),
    ("since=-6h", "since", "unknown parameter 'since'"),
    ("dimensions=user&depth=1&depth=2", "depth", "'depth' is given twice"),
    ("metric=hits&metrics=dollars", "metrics", "'metrics' and 'metric' are one parameter"),
    ("pk=a&category=b", "category", "'category' and 'pk' are one parameter"),
    ("limit=1&limit=1", "limit", "given twice"),
])
def test_unknown_and_repeated_parameters_are_400s_naming_them(store, path, query, param, says):
    status, error = ask(whale(store), path, query)
    assert (status, error["param"]) == (400, param)
    assert says in error["error"]


@pytest.mark.parametrize("path", ROUTES)
def test_cache_busters_keys_and_tzoffset_are_accepted(store, path):
    status, _ = ask(whale(store), path, "_=1&_=2&key=k&key=k&tzoffset=-120&dimensions=user")
    assert status == 200


def test_meta_and_graph_js_take_their_own_parameters_only(store):
    app = whale(store)
    assert ask(app, "/meta", "pk=_&_=1&key=k")[0] == 200
    status, error = ask(app, "/meta", "dimensions=user")
    assert (status, error["param"]) == (400, "dimensions")
    status, error = ask(app, "/meta", "pk=a&pk=b")
    assert (status, error["param"]) == (400, "pk")
    status, script = ask(app, "/graph.js", "dimension=user&metric=dollars&depth=1&live=1&_=3")
    assert status == 200 and '"dimension": "user"' in script
    for query, param in (("dimesion=user", "dimesion"), ("live=1&autoupdate=0", "autoupdate"),
                         ("metric=a&metrics=b", "metrics"), ("base=https://evil.example", "base")):
        status, error = ask(app, "/graph.js", query)
        assert (status, error["param"]) == (400, param), query


def test_graph_js_names_no_server_a_client_could_forge(store):
    app = whale(store, read_key="r-0123456789")
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example",
              "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example;proto=https"}
    status, script = ask(app, "/graph.js", "dimension=user&key=r-0123456789", **forged)
    assert status == 200
    assert "evil" not in script and '"base"' not in script
    assert '{"options": {"dimension": "user", "key": "r-0123456789"}}' in script
    # the script finds its server from where the browser loaded it
    assert "currentScript" in script and "script.src" in script


@pytest.mark.parametrize(("params", "param", "says"), [
    ({"depth": 1.5}, "depth", "depth must be a whole number, not 1.5"),
    ({"depth": True}, "depth", "depth must be a whole number, not True"),
    ({"threshold": True}, "threshold", "threshold must be a number, not True"),
    ({"limit": "9" * 500}, "limit", "..."),  # a long value is not echoed whole
])
def test_numbers_from_a_json_body_are_taken_as_they_are(params, param, says):
    from whale.query_params import parse_query

    with pytest.raises(InvalidQuery) as refused:
        parse_query(params, Limits())
    assert refused.value.param == param and says in refused.value.message
    assert len(refused.value.message) < 200
    assert parse_query({"depth": 2.0}, Limits()).depth == 2
