"""Time ranges over HTTP: `from` and `to` on /plotpoints, /totals and /dimensions.

Whale's app in-process (a fixed clock, so every bucket is known) on the real
redis-server, and one `hailwhale serve` process for the header over real HTTP.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from hailwhale.config import Config, Limits
from hailwhale.events import parse_event
from hailwhale.keys import KeySpace
from hailwhale.periods import Periods
from tests.servers import Served, get
from tests.test_access import call
from whale.app import make_app
from whale.store import Store

# Near the real time (keys expire by the real clock), mid-hour and mid-bucket.
NOW = time.time() // 3600 * 3600 + 1234.5
HOUR, DAY = 3600, 86400
HEADER = "X-HailWhale-Period"
# (dimensions, dollars, seconds ago): 15s:3h holds the first two, 1h:7d three, 1d:1y all
EVENTS = [({"sales": "p1"}, 5, 0), ({"sales": "p2"}, 7, 2 * HOUR),
          ({"sales": "p1"}, 11, 2 * DAY), ({"sales": "p3"}, 13, 30 * DAY)]


def whale(client, config: Config = Config(), events: list = EVENTS):
    """Whale's app on `client`, `events` counted, at NOW."""
    store = Store(client, config.periods, KeySpace("hw"), clock=lambda: NOW)
    store.count([parse_event({"dimensions": dims, "metrics": {"dollars": dollars},
                              "at": NOW - ago}, periods=config.periods, limits=Limits(),
                             now=NOW, encoded=False) for dims, dollars, ago in events])
    return make_app(store, config, clock=lambda: NOW)


@pytest.fixture
def app(redis_client):
    return whale(redis_client)


def ask(app, path: str, **params: object) -> tuple[int, object, dict]:
    status, headers, body = call(app, path, {k: str(v) for k, v in params.items()})
    return status, headers, json.loads(body)


def dollars(points: dict, key: str = "_") -> float:
    return sum(value for _, value in points[key]["dollars"])


def iso(t: float, zone: str = "Z") -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + zone


@pytest.mark.parametrize("start, period, total", [
    ("-1h", "15s:3h", 5), ("-3h", "15s:3h", 12), ("-1d", "1h:7d", 12), ("-3d", "1h:7d", 23),
    ("-7d", "1h:7d", 23), ("-31d", "1d:1y", 36), ("-1y", "1d:1y", 36),
])
def test_from_reads_the_finest_period_that_keeps_it_and_names_it(app, start, period, total):
    status, headers, points = ask(app, "/plotpoints", metrics="dollars", **{"from": start})
    assert status == 200 and headers[HEADER] == period
    assert HEADER in headers["Access-Control-Expose-Headers"]  # a browser may read it
    assert dollars(points) == total
    interval = Periods.parse(period).periods[0].interval
    stamps = [ms // 1000 for ms, _ in points["_"]["dollars"]]
    ago = {"h": HOUR, "d": DAY, "y": 365 * DAY}[start[-1]] * int(start[1:-1])
    assert stamps[0] <= NOW - ago < stamps[0] + interval
    assert stamps[-1] <= NOW < stamps[-1] + interval
    assert stamps == list(range(stamps[0], stamps[-1] + 1, interval))


def test_from_and_to_in_every_spelling_read_the_same_buckets(app):
    hour_ago = NOW - 2 * HOUR
    spellings = [
        (str(hour_ago - 60), str(hour_ago + 60)),
        (iso(hour_ago - 60), iso(hour_ago + 60)),
        (iso(hour_ago - 60, ""), iso(hour_ago + 60, "")),  # no zone: UTC
        (iso(hour_ago - 60 + 9 * HOUR, "+09:00"), iso(hour_ago + 60 + 9 * HOUR, "+09:00")),
        ("-121m", "-119m"), ("now-121m", "now-119m"),
    ]
    answers = [ask(app, "/plotpoints", metrics="dollars", **{"from": start, "to": end})
               for start, end in spellings]
    assert {headers[HEADER] for _, headers, _ in answers} == {"15s:3h"}
    points = [body["_"]["dollars"] for _, _, body in answers]
    assert all(p == points[0] for p in points) and len(points[0]) == 9
    assert sum(value for _, value in points[0]) == 7


def test_to_ends_the_range_and_a_later_to_reads_up_to_now(app):
    _, headers, points = ask(app, "/plotpoints", metrics="dollars",
                             **{"from": "-3d", "to": "-1d"})
    assert headers[HEADER] == "1h:7d" and dollars(points) == 11
    assert len(points["_"]["dollars"]) == 49
    _, _, later = ask(app, "/plotpoints", metrics="dollars", **{"from": "-1h", "to": NOW + DAY})
    _, _, until_now = ask(app, "/plotpoints", metrics="dollars", **{"from": "-1h"})
    assert later == until_now and len(later["_"]["dollars"]) == 241


def test_to_alone_reads_the_periods_length_ending_there(app):
    _, headers, points = ask(app, "/plotpoints", metrics="dollars", to="-1d")
    assert headers[HEADER] == "1h:7d" and dollars(points) == 11
    stamps = [ms // 1000 for ms, _ in points["_"]["dollars"]]
    assert stamps[-1] == (NOW - DAY) // HOUR * HOUR
    assert stamps[0] == (NOW - 7 * DAY) // HOUR * HOUR  # as far back as 1h:7d keeps
    _, headers, points = ask(app, "/plotpoints", metrics="dollars", to="-1h", period="15s:3h")
    assert headers[HEADER] == "15s:3h" and dollars(points) == 7


def test_totals_with_from_answer_the_one_period_that_read_it(app):
    _, headers, totals = ask(app, "/totals", metrics="dollars", depth=1, threshold=0,
                             dimensions="sales", **{"from": "-3d"})
    assert headers[HEADER] == "1h:7d"
    assert totals == {"1h:7d": {"sales": {"dollars": 23}, '["sales","p1"]': {"dollars": 16},
                                '["sales","p2"]': {"dollars": 7}}}
    _, headers, totals = ask(app, "/totals", metrics="dollars", period="1d:1y",
                             **{"from": "-1d"})
    assert headers[HEADER] == "1d:1y" and totals == {"1d:1y": {"_": {"dollars": 12}}}


def test_dimensions_list_the_children_active_in_the_range(app):
    _, headers, answer = ask(app, "/dimensions", dimensions="sales", metrics="dollars",
                             **{"from": "-3d"})
    assert headers[HEADER] == "1h:7d"
    assert answer == {"period": "1h:7d", "parent": "sales", "children": [
        {"name": "p1", "key": '["sales","p1"]', "totals": {"dollars": 16}},
        {"name": "p2", "key": '["sales","p2"]', "totals": {"dollars": 7}}]}
    _, _, answer = ask(app, "/dimensions", dimensions="sales", metrics="dollars",
                       **{"from": "-40d", "to": "-20d"})
    assert [child["name"] for child in answer["children"]] == ["p3"]


def test_without_a_range_nothing_changes(app):
    status, headers, totals = ask(app, "/totals", metrics="dollars", **{"from": ""})
    assert status == 200 and HEADER not in headers
    assert totals == {"15s:3h": {"_": {"dollars": 12}}, "1h:7d": {"_": {"dollars": 23}},
                      "1d:1y": {"_": {"dollars": 36}}}


def refusal(app, path: str = "/plotpoints", **params: object) -> dict:
    status, _, answer = ask(app, path, **params)
    assert status == 400, answer
    return answer


def test_a_range_older_than_every_period_keeps_is_a_400_with_the_oldest_time(app):
    answer = refusal(app, **{"from": "-2y"})
    assert answer["param"] == "from"
    assert answer["error"] == (
        f"from ({iso(NOW - 730 * DAY)}) is older than every period keeps (15s:3h keeps 3 "
        "hours, 1h:7d 7 days, 1d:1y 1 year); the oldest you can ask is "
        f"{iso(NOW - 365 * DAY)} (-1y)")
    assert refusal(app, to="-2y")["param"] == "to"


def test_a_range_older_than_the_period_asked_is_a_400_naming_one_that_keeps_it(app):
    answer = refusal(app, "/totals", period="15s:3h", **{"from": "-1d"})
    assert answer == {"param": "from", "error": (
        f"from ({iso(NOW - DAY)}) is older than 15s:3h keeps (3 hours); the oldest it can "
        f"answer is {iso(NOW - 3 * HOUR)} (-3h): use period 1h:7d, or a later from")}


@pytest.mark.parametrize("params, says", [
    ({"from": "-1h", "to": "-2h"}, "is after to"),
    ({"from": NOW + HOUR}, "is in the future: a range ends at now at the latest"),
    ({"from": NOW * 1000}, "(from is in epoch seconds, not milliseconds)"),
    ({"from": "yesterday"}, "is not a time: give epoch seconds, ISO 8601"),
    ({"from": "-6x"}, "is not a time"),
    ({"to": "1e999"}, "is not a time"),
])
def test_a_range_that_cannot_be_read_is_a_400_saying_why(app, params, says):
    for path in ("/plotpoints", "/totals", "/dimensions"):
        answer = refusal(app, path, **params)
        assert answer["param"] == next(iter(params)) and says in answer["error"], answer


def test_more_buckets_than_the_limit_is_a_400_offering_a_coarser_period(redis_client):
    app = whale(redis_client, Config(periods=Periods.parse("15s:2d,1h:30d")), EVENTS[:3])
    answer = refusal(app, period="15s:2d", **{"from": "-1d"})
    assert answer == {"param": "from", "error": (
        "this range is 5,761 buckets of 15s; at most 5000 per series "
        "(HAILWHALE_LIMIT_POINTS): use period 1h:30d, or a range of at most 20h50m")}
    _, headers, points = ask(app, "/plotpoints", metrics="dollars", **{"from": "-1d"})
    assert headers[HEADER] == "1h:30d" and dollars(points) == 12  # chosen, not refused
    _, headers, _ = ask(app, "/plotpoints", **{"from": "-20h"})
    assert headers[HEADER] == "15s:2d"
    small = whale(redis_client, Config(limits=Limits(points=10)))
    answer = refusal(small, **{"from": "-30d"})
    assert "31 buckets even in 1d:1y" in answer["error"] and "at most 10 per" in answer["error"]


def test_the_description_documents_from_to_and_the_header(app):
    _, _, spec = ask(app, "/openapi.json")
    for path in ("/plotpoints", "/totals", "/dimensions"):
        operation = spec["paths"][path]["get"]
        assert {"from", "to"} <= {p["name"] for p in operation["parameters"]}
        header = operation["responses"]["200"]["headers"][HEADER]
        assert header["schema"]["enum"] == ["15s:3h", "1h:7d", "1d:1y"]


def test_a_served_range_names_its_period_over_http(redis_server, redis_url):
    with Served("--redis-url", redis_url, "--no-buffer") as served:
        get(f"{served.url}/count?dimensions=ranged&metrics=%7B%22dollars%22%3A3%7D")
        status, headers, body = get(f"{served.url}/totals?metrics=dollars&from=-2d",
                                    headers={"Origin": "https://dash.example"})
    headers = {name.lower(): value for name, value in headers.items()}  # any case, as HTTP
    assert status == 200 and headers[HEADER.lower()] == "1h:7d"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-expose-headers"] == HEADER
    assert json.loads(body) == {"1h:7d": {"_": {"dollars": 3}}}
