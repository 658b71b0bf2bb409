"""Grafana out: the JSON API data source plugin's requests, replayed against Whale.

The request bodies are the plugin's own documented examples (its README, in
github.com/simPod/GrafanaJsonDatasource), verbatim first, then with our pk and metric
names; answers are checked for their shape and their values against /plotpoints on a
real Redis.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from hailwhale.config import Config, Limits
from hailwhale.events import parse_event
from hailwhale.periods import bucket_start
from tests.hail_helpers import PERIODS, make_store
from tests.test_access import call
from whale.app import make_app
from whale.grafana_openapi import grafana_paths

READ_KEY, WRITE_KEY = "r-grafana-0123456789", "w-grafana-0123456789"
READ = {"X-HailWhale-Key": READ_KEY}
NOW = bucket_start(time.time(), 3600) + 1800.0  # mid-hour: 1h buckets split predictably
ROOT = Path(__file__).resolve().parent.parent
EVENTS = [
    {"pk": "shop", "dimensions": {"sales": "p42"}, "metrics": {"dollars": 500}, "at": NOW - 3600},
    {"pk": "shop", "dimensions": {"sales": "p7"}, "metrics": {"dollars": 100}, "at": NOW - 600},
    {"pk": "shop", "dimensions": {"sales": "p42"}, "metrics": {"dollars": 200}, "at": NOW - 60},
    {"pk": "shop", "dimensions": {"sales": "p42"}, "metrics": {"dollars": 1000},
     "at": NOW - 5 * 3600},  # too old for 15s:3h, kept by 1h:7d
    {"pk": "shop", "dimensions": {"country": "US"}, "metrics": {"visits.count": 3},
     "at": NOW - 30},
    {"dimensions": "services", "metrics": "clicks", "at": NOW - 30},
]

# The plugin's README examples, verbatim.
README_METRICS = {"metric": "DescribeMetricList",
                  "payload": {"cloud": "cf6591c5dad211eaa22100163e120f6e", "namespace": "MySQL"}}
README_OPTIONS = {"metric": "DescribeMetricList", "payload": {"namespace": "acs_ecs"},
                  "name": "cms_metric"}
README_QUERY = {
    "panelId": 1,
    "range": {"from": "2016-10-31T06:33:44.866Z", "to": "2016-10-31T12:33:44.866Z",
              "raw": {"from": "now-6h", "to": "now"}},
    "rangeRaw": {"from": "now-6h", "to": "now"},
    "interval": "30s",
    "intervalMs": 30000,
    "maxDataPoints": 550,
    "targets": [
        {"target": "Packets", "refId": "A", "payload": {"additional": "optional json"}},
        {"target": "Errors", "refId": "B"},
    ],
    "filters": [{"key": "City", "operator": "=", "value": "Berlin"}],
}
README_VARIABLE = {
    "payload": {"target": "systems"},
    "range": {"from": "2022-02-14T08:09:32.164Z", "to": "2022-02-21T08:09:32.164Z",
              "raw": {"from": "now-7d", "to": "now"}},
}


def iso(t: float) -> str:
    """`t` as Grafana sends a range: ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def grafana_range(start: float, end: float) -> dict:
    return {"from": iso(start), "to": iso(end), "raw": {"from": "now-2h", "to": "now"}}


@pytest.fixture
def app(redis_client):
    """Whale with both keys on a real Redis, the events counted."""
    store = make_store(redis_client, "gf", NOW)
    whale = make_app(store, Config(read_key=READ_KEY, write_key=WRITE_KEY), clock=lambda: NOW)
    status, _, body = call(whale, "/count_now", method="POST", body=json.dumps(EVENTS).encode(),
                           headers={"Content-Type": "application/json",
                                    "X-HailWhale-Key": WRITE_KEY})
    assert status == 200, body
    return whale


def post(app, path: str, document: dict, headers: dict | None = None) -> tuple[int, object]:
    status, _, body = call(app, path, method="POST", body=json.dumps(document).encode(),
                           headers={"Content-Type": "application/json",
                                    **(READ if headers is None else headers)})
    return status, json.loads(body)


def plotpoints(app, **params: object) -> tuple[str, dict]:
    status, headers, body = call(app, "/plotpoints", params, headers=READ)
    assert status == 200, body
    return headers.get("X-HailWhale-Period"), json.loads(body)


def total(series: dict) -> float:
    return sum(value for value, _ in series["datapoints"])


def test_the_health_check_answers_200_with_the_read_key(app):
    for path in ("/grafana/", "/grafana"):
        status, headers, body = call(app, path, headers=READ)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        assert call(app, path)[0] == 401  # "Save & test" also tests the key
        assert call(app, path, headers={"X-HailWhale-Key": WRITE_KEY})[0] == 403


@pytest.mark.parametrize("path", ["/grafana/metrics", "/grafana/metric-payload-options",
                                  "/grafana/query", "/grafana/variable"])
def test_every_endpoint_needs_the_read_key(app, path):
    status, answer = post(app, path, {}, headers={})
    assert status == 401 and "read key" in answer["error"]
    assert post(app, path, {}, headers={"Authorization": f"Bearer {WRITE_KEY}"})[0] == 403
    document = {"payload": {"target": "pks"}, "name": "pk", "range": grafana_range(NOW - 60, NOW),
                "targets": []}
    fields = {name: document[name] for name in {
        "/grafana/metric-payload-options": ["name"], "/grafana/query": ["range", "targets"],
        "/grafana/variable": ["payload"]}.get(path, [])}
    assert post(app, path, fields, headers={"Authorization": f"Bearer {READ_KEY}"})[0] == 200


def test_metrics_lists_the_pks_metrics_with_the_builders_fields(app):
    status, overall = post(app, "/grafana/metrics", {})  # the README's first request
    assert status == 200
    assert [m["value"] for m in overall] == ["clicks", "hits"]
    assert [f["name"] for f in overall[0]["payloads"]] == [
        "pk", "dimensions", "depth", "threshold", "limit"]
    status, answer = post(app, "/grafana/metrics", README_METRICS)
    assert status == 400 and "unknown payload field 'cloud'" in answer["error"]
    # A typed formula stays selectable, first; the builder reloads metrics per pk.
    status, shop = post(app, "/grafana/metrics",
                        {"metric": "dollars/hits", "payload": {"pk": "shop"}})
    assert [m["value"] for m in shop] == ["dollars/hits", "dollars", "hits", "visits.count"]
    assert shop[1] == {"label": "dollars", "value": "dollars", "payloads": shop[0]["payloads"]}


def test_payload_options_drill_into_dimensions(app):
    status, answer = post(app, "/grafana/metric-payload-options", README_OPTIONS)
    assert status == 400 and "unknown payload field 'namespace'" in answer["error"]
    asked = {"metric": "dollars", "payload": {"pk": "shop"}, "name": "pk"}
    assert post(app, "/grafana/metric-payload-options", asked) == (200, [
        {"label": "_ (overall)", "value": "[]"}, {"label": "shop", "value": '["shop"]'}])
    asked = {"metric": "dollars", "payload": {"pk": "shop", "dimensions": "sales"},
             "name": "dimensions"}
    assert post(app, "/grafana/metric-payload-options", asked)[1] == [
        {"label": "_ (overall)", "value": "[]"},
        {"label": "sales", "value": '["sales"]'},
        {"label": '["sales","p42"]', "value": '["sales","p42"]'},
        {"label": '["sales","p7"]', "value": '["sales","p7"]'},
    ]
    depths = post(app, "/grafana/metric-payload-options", {**asked, "name": "depth"})[1]
    assert [d["value"] for d in depths] == ["0", "1", "2", "3"]
    status, answer = post(app, "/grafana/metric-payload-options", {**asked, "name": "limit"})
    assert status == 400 and "'limit' has no choices" in answer["error"]


def test_variables_list_pks_metrics_and_children(app):
    status, answer = post(app, "/grafana/variable", README_VARIABLE)
    assert status == 400 and "not 'systems'" in answer["error"]
    ranged = {"range": grafana_range(NOW - 7200, NOW)}
    pks = post(app, "/grafana/variable", {"payload": {"target": "pks"}, **ranged})[1]
    assert pks == [{"__text": "_", "__value": "[]"}, {"__text": "shop", "__value": '["shop"]'}]
    metrics = post(app, "/grafana/variable",
                   {"payload": {"target": "metrics", "pk": "shop"}, **ranged})[1]
    assert [m["__value"] for m in metrics] == ["dollars", "hits", "visits.count"]
    # Chained variables, Raw JSON on: the plugin pastes each value into the JSON text.
    def pasted(text: str, **values: str) -> dict:
        for name, value in values.items():
            text = text.replace(f"${name}", value)
        return json.loads(text)

    query = '{"target": "dimensions", "pk": $pk, "dimensions": $dim}'
    shop = pks[1]["__value"]
    tops = post(app, "/grafana/variable",
                {"payload": pasted(query, pk=shop, dim="[]"), **ranged})[1]
    assert tops == [{"__text": "country", "__value": '["country"]'},
                    {"__text": "sales", "__value": '["sales"]'}]
    text = query.replace("$pk", shop)
    children = post(app, "/grafana/variable",
                    {"payload": pasted(text, dim=tops[1]["__value"]), **ranged})[1]
    assert children == [{"__text": "p42", "__value": '["sales","p42"]'},
                        {"__text": "p7", "__value": '["sales","p7"]'}]
    # The variable editor pastes them as JSON strings instead: the same paths.
    as_strings = {"target": "dimensions", "pk": shop, "dimensions": tops[1]["__value"]}
    assert post(app, "/grafana/variable", {"payload": as_strings, **ranged})[1] == children
    # Children active in the range: p7 sold last 10 minutes ago, p42 1 minute ago.
    lately = {"payload": pasted(text, dim='["sales"]'), "range": grafana_range(NOW - 300, NOW)}
    assert [c["__text"] for c in post(app, "/grafana/variable", lately)[1]] == ["p42"]


def test_pks_counted_under_looser_limits_leave_the_pickers_working(redis_client):
    """The attack: a pk 8 names deep, counted, then the path depth limit lowered to 4:
    the pk variable and picker answered 400 (`param: pk`, though none was sent) and
    listed no pk at all. The pk the limits no longer allow is left out; the rest list."""
    store = make_store(redis_client, "gf", NOW)
    deep = {"pk": [f"p{n}" for n in range(8)], "dimensions": "a"}
    store.count([parse_event(event, periods=PERIODS, limits=Limits(), now=NOW, encoded=False)
                 for event in (deep, {"pk": "shallow", "dimensions": "a"})])
    strict = make_app(store, Config(limits=Limits(path_depth=4)), clock=lambda: NOW)
    ranged = {"range": grafana_range(NOW - 60, NOW)}
    status, pks = post(strict, "/grafana/variable", {"payload": {"target": "pks"}, **ranged},
                       headers={})
    listed = [json.loads(pk["__value"]) for pk in pks]
    assert status == 200 and listed[0] == []
    # the prefixes of up to 4 names stay, as does the other pk; deeper ones are left out
    assert sorted(map(len, listed)) == [0, 1, 1, 2, 3, 4] and ["shallow"] in listed
    status, options = post(strict, "/grafana/metric-payload-options",
                           {"name": "pk", "metric": "hits", "payload": {}}, headers={})
    assert status == 200 and len(options) == 6


def test_query_answers_plotpoints_value_first(app):
    status, answer = post(app, "/grafana/query", README_QUERY)  # 2016: kept by no period
    assert status == 400 and answer["param"] == "range.from"
    assert answer["error"].startswith("range.from (2016-10-31T06:33:44Z) is older than every")
    start, end = NOW - 7200, NOW
    ranged = {**README_QUERY, "range": grafana_range(start, end)}
    status, answer = post(app, "/grafana/query", ranged)
    assert status == 400 and "query A: unknown payload field 'additional'" in answer["error"]
    document = {**ranged, "maxDataPoints": 1000,
                "targets": [
                    {"target": "dollars", "refId": "A",
                     "payload": {"pk": "shop", "dimensions": "sales", "depth": "1"}},
                    {"target": "dollars/hits", "refId": "B", "payload": {"pk": "shop"}},
                ]}
    status, answer = post(app, "/grafana/query", document)
    assert status == 200, answer
    assert [(s["target"], s["refId"]) for s in answer] == [
        ("sales", "A"), ('["sales","p42"]', "A"), ('["sales","p7"]', "A"), ("_", "B")]
    period, points = plotpoints(app, pk="shop", dimensions="sales", depth=1, metrics="dollars",
                                **{"from": iso(start), "to": iso(end)})
    assert period == "15s:3h"  # 481 buckets fit in 1000 points
    for series in answer[:3]:
        flot = points[series["target"]]["dollars"]
        assert series["datapoints"] == [[value, stamp] for stamp, value in flot]
    assert [total(s) for s in answer[:3]] == [800, 700, 100]
    # A formula, per bucket: dollars per hit of each sale (a bucket without one: 0).
    assert [value for value, _ in answer[3]["datapoints"] if value] == [500, 100, 200]
    stamps = [stamp for _, stamp in answer[0]["datapoints"]]
    assert (stamps[0], stamps[-1]) == (bucket_start(start, 15) * 1000, bucket_start(end, 15) * 1000)


def test_query_honours_the_range_and_max_data_points(app):
    def series(start: float, end: float, points: int | None = None, **payload) -> list:
        document = {"range": grafana_range(start, end), "maxDataPoints": points, "targets": [
            {"target": "dollars", "refId": "A", "payload": {"pk": "shop", **payload}}]}
        status, answer = post(app, "/grafana/query", document)
        assert status == 200, answer
        return answer

    [recent] = series(NOW - 1200, NOW - 300, 1000)
    stamps = [stamp for _, stamp in recent["datapoints"]]
    assert stamps[0] == bucket_start(NOW - 1200, 15) * 1000
    assert stamps[-1] == bucket_start(NOW - 300, 15) * 1000
    assert total(recent) == 100  # the sale 10 minutes ago, alone
    [hourly] = series(NOW - 7200, NOW, 100)  # 481 buckets of 15s do not fit: 1h does
    assert [stamp for _, stamp in hourly["datapoints"]] == [
        bucket_start(NOW - 7200 + h * 3600, 3600) * 1000 for h in range(3)]
    period, points = plotpoints(app, pk="shop", metrics="dollars", period="1h:7d",
                                **{"from": iso(NOW - 7200), "to": iso(NOW)})
    assert hourly["datapoints"] == [[v, t] for t, v in points["_"]["dollars"]]
    [older] = series(NOW - 6 * 3600, NOW, 1000)  # past what 15s:3h keeps: 1h:7d answers
    assert len(older["datapoints"]) == 7 and total(older) == 1800
    # 3 points: no period fits (days make 4 buckets here), so the one with the fewest.
    [daily] = series(NOW - 3 * 86400, NOW, 3)
    assert [stamp for _, stamp in daily["datapoints"]] == [
        bucket_start(NOW - 3 * 86400 + d * 86400, 86400) * 1000 for d in range(4)]
    assert total(daily) == 1800


def test_builder_fields_and_variables_arrive_regex_escaped(app):
    # The builder pastes `$dim` (["country"]) and `$metric` (visits.count) regex-escaped.
    document = {"range": grafana_range(NOW - 600, NOW), "targets": [
        {"target": "visits\\.count", "refId": "A",
         "payload": {"pk": "\\[\"shop\"\\]", "dimensions": "\\[\"country\"\\]", "depth": "1"}}]}
    status, answer = post(app, "/grafana/query", document)
    assert status == 200, answer
    assert [(s["target"], total(s)) for s in answer] == [("country", 3), ('["country","US"]', 3)]


@pytest.mark.parametrize("target, payload, param, says", [
    ("dollars/", {"pk": "shop"}, "metrics", "query A: "),
    ("dollars", {"pk": "shop", "depth": "9"}, "depth", "depth must be between 0 and 3"),
    ("dollars", {"pk": "shop", "metrics": "x"}, "metrics", "unknown payload field 'metrics'"),
    ("dollars", "not an object", "payload", "a payload is a JSON object"),
    (7, {}, "target", "target is a string, not 7"),
])
def test_a_bad_target_is_a_400_that_says_what_is_wrong(app, target, payload, param, says):
    document = {"range": grafana_range(NOW - 600, NOW), "targets": [
        {"target": target, "refId": "A", "payload": payload}]}
    status, answer = post(app, "/grafana/query", document)
    assert status == 400 and answer["param"] == param and says in answer["error"], answer


@pytest.mark.parametrize("document, param", [
    ({"targets": []}, "range"),
    ({"range": {"from": "yesterday-ish"}, "targets": []}, "range.from"),
    ({"range": grafana_range(NOW - 60, NOW), "maxDataPoints": 0, "targets": []},
     "maxDataPoints"),
    ({"range": grafana_range(NOW - 60, NOW), "targets": {"target": "hits"}}, "targets"),
    ({"range": grafana_range(NOW - 60, NOW), "targets": [{"target": "hits"}] * 11}, "targets"),
])
def test_a_bad_query_request_is_a_400_naming_the_field(app, document, param):
    status, answer = post(app, "/grafana/query", document)
    assert status == 400 and answer["param"] == param, answer


def test_a_target_without_a_metric_yet_asks_for_nothing(app):
    document = {"range": grafana_range(NOW - 60, NOW), "targets": [{"refId": "A", "target": ""}]}
    assert post(app, "/grafana/query", document) == (200, [])


def test_the_provisioning_example_reaches_whale_with_the_read_key(app):
    [source] = yaml.safe_load((ROOT / "grafana-datasource.yaml.example").read_text())[
        "datasources"]
    assert source["type"] == "simpod-json-datasource" and source["access"] == "proxy"
    assert source["url"] == f"http://localhost:{Config().port}/grafana"
    assert source["jsonData"]["defaultEditorMode"] == "builder"
    # What Grafana's proxy does: the secure header, $HAILWHALE_READ_KEY from its environment.
    name = source["jsonData"]["httpHeaderName1"]
    value = source["secureJsonData"]["httpHeaderValue1"]
    assert value == "$HAILWHALE_READ_KEY"
    status, _, _ = call(app, "/grafana/", headers={name: READ_KEY})
    assert status == 200


def test_the_openapi_description_covers_every_grafana_route(app):
    described = grafana_paths(Config(), [])
    routes = {(route.rule, route.method) for route in app.routes
              if route.rule.startswith("/grafana") and route.method != "OPTIONS"}
    assert routes == {(path, method.upper()) for path, operations in described.items()
                      for method in operations}
