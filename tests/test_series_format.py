"""`format=series`: /plotpoints and /totals as lists in the server's order, with paths.

The same figures as the keyed answers, each series with its dim_key and its path, so
a client neither re-sorts (JSON objects lose the order of integer-like keys) nor
re-parses a dim_key into a path.
"""

from __future__ import annotations

import json
import time

from hailwhale.config import Config, Limits
from hailwhale.events import parse_event
from hailwhale.keys import KeySpace
from tests.test_access import call
from whale.app import make_app
from whale.store import Store

NOW = time.time() // 60 * 60 + 7.5
# Children named like array indexes, which JSON.parse moves to the front of an object.
EVENTS = [({"codes": "7"}, 30), ({"codes": "x"}, 25), ({"codes": "404"}, 10),
          (["codes", "404", "a"], 10), (["codes", "[draft]"], 5)]


def app(client):
    config = Config()
    store = Store(client, config.periods, KeySpace("hw"), clock=lambda: NOW)
    store.count([parse_event({"dimensions": dims, "metrics": {"hits": hits}, "at": NOW},
                             periods=config.periods, limits=Limits(), now=NOW, encoded=False)
                 for dims, hits in EVENTS])
    return make_app(store, config, clock=lambda: NOW)


def ask(whale, path: str, **params: str) -> object:
    status, _, body = call(whale, path, params)
    assert status == 200, body
    return json.loads(body)


def test_plotpoints_as_series_keep_the_ranking_and_give_paths(redis_client):
    whale = app(redis_client)
    keyed = ask(whale, "/plotpoints", dimensions="codes", depth="2", threshold="0")
    listed = ask(whale, "/plotpoints", dimensions="codes", depth="2", threshold="0",
                 format="series")
    assert listed["period"] == Config().periods.names[0]
    assert [(s["key"], s["path"]) for s in listed["series"]] == [
        ("codes", ["codes"]), ('["codes","7"]', ["codes", "7"]),
        ('["codes","x"]', ["codes", "x"]), ('["codes","404"]', ["codes", "404"]),
        ('["codes","404","a"]', ["codes", "404", "a"]),
        ('["codes","[draft]"]', ["codes", "[draft]"])]
    assert {s["key"]: s["points"] for s in listed["series"]} == keyed


def test_totals_as_series_per_period(redis_client):
    whale = app(redis_client)
    keyed = ask(whale, "/totals", dimensions="codes", depth="1", threshold="0")
    listed = ask(whale, "/totals", dimensions="codes", depth="1", threshold="0",
                 format="series")
    assert [p["period"] for p in listed["periods"]] == list(keyed)
    for period in listed["periods"]:
        assert [s["path"][-1] for s in period["series"]] == ["codes", "7", "x", "404",
                                                              "[draft]"]
        assert {s["key"]: s["totals"] for s in period["series"]} == keyed[period["period"]]
        assert period["series"][0]["totals"] == {"hits": 80}


def test_an_unknown_format_is_a_400_that_names_the_choices(redis_client):
    status, _, body = call(app(redis_client), "/plotpoints", {"format": "csv"})
    assert status == 400
    answer = json.loads(body)
    assert answer["param"] == "format" and "'series'" in answer["error"]
