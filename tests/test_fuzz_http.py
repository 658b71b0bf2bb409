"""Hostile input over HTTP: whatever a request holds, a 2xx or a 4xx, never a 500,
and never part of a request counted.

The app runs in-process on a real Redis with tight limits, so that random input
crosses every limit often: name length, path depth, prefixes, metrics, batch size,
body size and formula length and depth.
"""

from __future__ import annotations

import io
import json
import time
import urllib.parse

import pytest
from bottle import BaseRequest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hailwhale.config import Config, Limits
from hailwhale.formulas import parse_metric
from hailwhale.ingest import read_events
from tests.hail_helpers import PERIODS, dump, make_store
from tests.test_access import call
from whale.app import make_app

NOW = time.time()
LIMITS = Limits(name_length=12, path_depth=3, prefixes=6, metrics=3, batch=4, request_bytes=600,
                formula_length=40, formula_depth=3)
CONFIG = Config(limits=LIMITS)
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

names = st.sampled_from(["", "_", "_other", "hits", "a", "b.c", "1x", "x" * 13, "é", "\x00",
                         "\ud800", "[", "{", '"', "key"]) | st.text(max_size=14)
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | names
           | st.floats(NOW - 10**6, NOW + 10**3))
jsonish = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=8) | st.dictionaries(names, kids, max_size=8),
    max_leaves=40,
)
params = st.sampled_from(["pk", "category", "dimensions", "dimension", "metrics", "metric",
                          "at", "key", "other"])


def _text(value: object) -> str:
    try:
        return json.dumps(value)
    except ValueError:  # an int too long to print
        return "9" * 5000


texts = names | jsonish.map(_text) | st.sampled_from(["[", '{"a":', "[NaN]", "1e999"])
events = st.dictionaries(params, jsonish, max_size=5)
bodies = (
    (jsonish.map(_text) | st.lists(events, max_size=6).map(_text) | events.map(_text)
     | st.dictionaries(params, texts, max_size=4).map(
         lambda fields: urllib.parse.urlencode(fields, errors="surrogatepass")))
    .map(lambda text: text.encode("utf-8", "surrogatepass"))
    | st.binary(max_size=700)
)
content_types = st.sampled_from(["application/json", "text/plain", "",
                                 "application/x-www-form-urlencoded", "text/json; charset=utf-8"])


@pytest.fixture
def client(redis_server):
    """A clean database of the session's own server (flushed per example, below)."""
    with redis_server.client() as redis:
        redis.flushall()
        yield redis


def _request(method: str, query: str, body: bytes, content_type: str) -> BaseRequest:
    environ = {"REQUEST_METHOD": method, "QUERY_STRING": query, "CONTENT_TYPE": content_type,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    return BaseRequest(environ)


def check_count(client, method: str, query: str, body: bytes, content_type: str) -> None:
    """One /count_now: a 2xx counts every event of the request, a 4xx counts nothing."""
    client.flushall()
    app = make_app(make_store(client, "hw", NOW), CONFIG, clock=lambda: NOW)
    status, headers, answer = call(app, "/count_now", query, method=method, body=body,
                                   headers={"Content-Type": content_type})
    event(f"{status}")
    assert status in (200, 400, 413), answer
    if status != 200:
        error = json.loads(answer)
        assert set(error) == {"error", "param"} and error["error"]
        assert client.dbsize() == 0, "a refused request counted something"
        return
    assert answer == b"OK"
    expected = read_events(_request(method, query, body, content_type), periods=PERIODS,
                           limits=LIMITS, now=NOW)
    make_store(client, "model", NOW).count(expected)
    assert dump(client, "hw") == dump(client, "model"), "a request was counted in part"


@FUZZ
@given(st.dictionaries(params, texts, max_size=6))
def test_any_query_string_counts_all_or_nothing(client, fields):
    check_count(client, "GET", urllib.parse.urlencode(fields, errors="surrogatepass"), b"", "")


@FUZZ
@given(bodies, content_types, st.dictionaries(params, texts, max_size=2))
def test_any_body_counts_all_or_nothing(client, body, content_type, fields):
    check_count(client, "POST", urllib.parse.urlencode(fields, errors="surrogatepass"), body,
                content_type)


def test_over_the_limits_is_a_400_or_413_naming_the_part(client):
    cases = [
        ({"dimensions": "x" * 13}, "dimensions", 400),
        ({"dimensions": json.dumps(["a", "b", "c", "d"])}, "dimensions", 400),
        ({"dimensions": json.dumps({k: "v" for k in "abcd"})}, "dimensions", 400),
        ({"metrics": json.dumps(["m1", "m2", "m3", "m4"])}, "metrics", 400),
    ]
    for fields, param, status in cases:
        app = make_app(make_store(client, "hw", NOW), CONFIG, clock=lambda: NOW)
        code, _, body = call(app, "/count_now", fields)
        assert (code, json.loads(body)["param"]) == (status, param), fields
    batch = json.dumps([{"dimensions": "a"}] * 5).encode()
    code, _, body = call(app, "/count_now", method="POST", body=batch,
                         headers={"Content-Type": "application/json"})
    assert (code, json.loads(body)["param"]) == (400, "batch")
    big = json.dumps([{"dimensions": "a" * 12}] * 30).encode()
    code, _, body = call(app, "/count_now", method="POST", body=big,
                         headers={"Content-Type": "application/json"})
    assert (code, json.loads(body)["param"]) == (413, "body")
    code, _, body = call(app, "/plotpoints", {"metrics": "((((a))))"})
    assert (code, json.loads(body)["param"]) == (400, "metrics")
    assert client.dbsize() == 0


def test_input_that_is_not_utf8_is_a_400(client):
    app = make_app(make_store(client, "hw", NOW), CONFIG, clock=lambda: NOW)
    for path in ("/count_now", "/totals", "/meta", "/graph.js"):
        code, _, body = call(app, path, "dimensions=%ED%A0%80")
        assert (code, json.loads(body)["param"]) == (400, "query"), path
    code, _, body = call(app, "/count_now", method="POST", body=b"dimensions=%ff",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (code, json.loads(body)["param"]) == (400, "body")
    code, _, body = call(app, "/count_now", method="POST", body=b'{"dimensions": "\xff"}',
                         headers={"Content-Type": "application/json"})
    assert (code, json.loads(body)["param"]) == (400, "body")
    assert client.dbsize() == 0


formulas = st.text(alphabet="ab.19e()+-*/ _x", max_size=60) | names
query_values = {
    "metrics": formulas | st.lists(formulas, max_size=3).map(_text),
    "sort": formulas,
    "pk": texts,
    "dimensions": texts,
    "period": st.sampled_from(["", "15s:3h", "1h:7d", "1d:1y", "15x10800", "2m:1h", "x"]),
    "depth": st.sampled_from(["0", "1", "2", "3", "4", "-1", "x", ""]),
    "threshold": st.sampled_from(["0", "0.5", "-1", "nan", "inf", "1e999", "x"]),
    "limit": st.sampled_from(["0", "1", "10", "-1", "1.5", "x"]),
}


@FUZZ
@given(st.sampled_from(["/plotpoints", "/totals", "/dimensions"]),
       st.fixed_dictionaries({}, optional=query_values))
def test_any_query_answers_json_or_a_400(client, path, fields):
    app = make_app(make_store(client, "hw", NOW), CONFIG, clock=lambda: NOW)
    status, _, body = call(app, path, urllib.parse.urlencode(fields, errors="surrogatepass"))
    assert status in (200, 400), body
    answer = json.loads(body)
    assert isinstance(answer, dict)
    if status == 400:
        assert set(answer) == {"error", "param"}


@pytest.mark.parametrize("text", [
    "(" * 100 + "a" + ")" * 100,
    "-" * 9_999 + "a",
    "a" + "+a" * 4_999,
    "a*" * 4_999 + "a",
    "((a+b)*(a-b)/" * 500 + "1" + ")" * 500,
])
def test_formula_parsing_is_linear_for_hostile_text(text):
    started = time.perf_counter()
    try:
        parse_metric(text, max_length=10_000, max_depth=100)
    except Exception as error:  # InvalidQuery (too deep, too long) is fine, a hang is not
        assert type(error).__name__ == "InvalidQuery"
    assert time.perf_counter() - started < 1.0
