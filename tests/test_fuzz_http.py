"""Hostile input over HTTP: whatever a request holds, a 2xx or a 4xx, never a 500,
and never part of a request counted.

The app runs in-process on a real Redis with tight limits, so that random input
crosses every limit often: name length, path depth, prefixes, metrics, batch size,
body size, formula length and depth, and the bounds of a query.

The suite draws the same examples on every run (tests/conftest.py); `make fuzz`
draws fresh ones. What fuzzing found is pinned below with @example.
"""

from __future__ import annotations

import io
import json
import time
import urllib.parse

import pytest
from bottle import BaseRequest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from hailwhale.config import Config, Limits
from hailwhale.events import parse_event
from hailwhale.formulas import parse_metric
from tests.hail_helpers import PERIODS, dump, make_store
from tests.test_access import call
from whale.app import make_app
from whale.ingest import read_events
from whale.query_params import ALWAYS_ACCEPTED, QUERY_PARAMS, SAME_PARAM

NOW = time.time()
LIMITS = Limits(name_length=12, path_depth=3, prefixes=6, metrics=3, batch=4, request_bytes=600,
                formula_length=40, formula_depth=3, query_metrics=3, query_limit=4,
                answer_points=6000)
CONFIG = Config(limits=LIMITS)
# 60 examples (each a request to Redis) in the suite; `make fuzz` sets its own number.
EXAMPLES = 60 if settings.default.derandomize else settings.default.max_examples
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
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
known_metrics = st.sampled_from(["hits", "a", "b", "x", "a.b", "b/a", "-x*2+1", "5", "_other"])
paths = st.sampled_from(["", "_", "a", "p", '["a","b"]', '["a","d"]', "_other", '["a","_other"]'])
query_values = {
    "metrics": known_metrics | st.lists(known_metrics, max_size=4).map(_text) | formulas
    | st.lists(formulas, max_size=5).map(_text),
    "sort": known_metrics | formulas,
    "pk": paths | texts,
    "dimensions": paths | texts,
    # each a valid value half the time, so that many queries get an answer
    "period": st.sampled_from(["", "15s:3h", "1h:7d", "1d:1y"])
    | st.sampled_from(["15x10800", "2m:1h", "x"]),
    "depth": st.sampled_from(["0", "1", "2", ""]) | st.sampled_from(["3", "4", "-1", "x"]),
    "threshold": st.sampled_from(["0", "0.5", "0.1"])
    | st.sampled_from(["-1", "nan", "inf", "1e999", "x"]),
    "limit": st.sampled_from(["0", "1", "4", ""])
    | st.sampled_from(["5", "10", "-1", "1.5", "x", "9" * 400]),
}
query_values |= {alias: query_values[name] for alias, name in SAME_PARAM.items()}
query_names = st.sampled_from([*query_values, "tzoffset", "_", "key", "dimesions", "other", "",
                               "limit[]", "x" * 200])


def query_pair(names: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    return names.flatmap(lambda name: st.tuples(st.just(name), query_values.get(name, texts)))


# Mostly each parameter once (many get an answer), else anything (most a 400).
once_each = st.lists(query_pair(st.sampled_from(list(query_values))), max_size=4,
                     unique_by=lambda pair: SAME_PARAM.get(pair[0], pair[0]))
anything = st.lists(query_pair(query_names), max_size=6)
query_pairs = st.integers(0, 3).flatmap(lambda draw: anything if draw == 0 else once_each)


def refused_params(pairs: list[tuple[str, str]]) -> set[str]:
    """The parameters a query string may be refused for: unknown, or given twice."""
    names = [name for name, _ in pairs if name not in ALWAYS_ACCEPTED]
    unknown = {name for name in names if name not in QUERY_PARAMS}
    same = [SAME_PARAM.get(name, name) for name in names]
    twice = {name for name in names if same.count(SAME_PARAM.get(name, name)) > 1}
    return {name[:100] + ("..." if len(name) > 100 else "") for name in unknown | twice}


def seed(client) -> None:
    """A few children, grandchildren, `_other` and a unique metric to select among."""
    if client.exists("hw:pks"):
        return
    store = make_store(client, "hw", NOW)
    events = [{"dimensions": {"a": {"b": "c"}}, "metrics": {"b": 2, "x": 1}},
              {"dimensions": ["a", "d"], "metrics": {"a": 1, "x": {"unique": "u1"}}},
              {"dimensions": "a", "metrics": {"a.b": -3}, "pk": "p"},
              {"dimensions": {"a": "e"}, "metrics": ["b"], "at": NOW - 7200}]
    store.count([parse_event(e, periods=PERIODS, limits=Limits(), now=NOW, encoded=False)
                 for e in events])
    # What the cardinality guard counts past its limit: a child named `_other`.
    client.zadd(store.keys.children((), ("a",)), {"_other": NOW})


@FUZZ
@given(st.sampled_from(["/plotpoints", "/totals", "/dimensions"]), query_pairs)
@example(path="/plotpoints", pairs=[("metrics", "5")])  # a 500 once: a formula without names
@example(path="/totals", pairs=[("sort", "5"), ("depth", "1")])
@example(path="/dimensions", pairs=[("metrics", '["5", "1/0"]'), ("limit", "0")])
@example(path="/plotpoints", pairs=[("depth", "1"), ("depth", "2")])
@example(path="/plotpoints", pairs=[("metric", "a"), ("metrics", "b")])
@example(path="/totals", pairs=[("dimesions", "a")])
@example(path="/plotpoints", pairs=[("_", "1"), ("_", "2"), ("key", "k"), ("tzoffset", "-60")])
@example(path="/plotpoints", pairs=[("metrics", '["a","b","x","b/a"]')])
@example(path="/plotpoints", pairs=[("depth", "2"), ("limit", "0"), ("threshold", "0"),
                                    ("dimensions", "a")])
def test_any_query_answers_json_or_a_400(client, path, pairs):
    seed(client)
    app = make_app(make_store(client, "hw", NOW), CONFIG, clock=lambda: NOW)
    query = urllib.parse.urlencode(pairs, errors="surrogatepass")
    status, _, body = call(app, path, query)
    assert status in (200, 400), body
    answer = json.loads(body)
    assert isinstance(answer, dict)
    event(f"{status} {answer.get('param', '') if status == 400 else path}")
    if status == 400:
        assert set(answer) == {"error", "param"}
    refused = refused_params(pairs)
    if any("\ud800" <= c <= "\udfff" for pair in pairs for text in pair for c in text):
        assert answer["param"] == "query"  # not UTF-8: refused before anything else
    elif refused:
        assert status == 400 and answer["param"] in refused, answer
    elif status == 200 and path == "/plotpoints":
        assert all(len(series) <= LIMITS.query_metrics for series in answer.values())
        points = sum(len(points) for series in answer.values() for points in series.values())
        assert points <= LIMITS.answer_points
    elif status == 200 and path == "/dimensions":
        assert len(answer["children"]) <= LIMITS.query_limit


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
