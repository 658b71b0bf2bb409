"""Whale's HTTP API end to end: `hailwhale serve` in a real process on a real Redis."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.servers import Served, get


@pytest.fixture(scope="module")
def whale(redis_server):
    with Served("--redis-url", redis_server.url) as served:
        yield served


@pytest.fixture
def url(whale, redis_url):
    """The server's base URL, its store emptied for this test."""
    return whale.url


def query(url: str, path: str, **params: object) -> tuple[int, dict, object]:
    encoded = urllib.parse.urlencode(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    )
    status, headers, body = get(f"{url}{path}?{encoded}")
    ctype = headers.get("Content-Type", "")
    return status, headers, json.loads(body) if ctype.startswith("application/json") else body


def flush(url: str) -> int:
    """POST /flush_hail: everything /count buffered so far is counted when it answers."""
    status, _, body = get(f"{url}/flush_hail", b"")
    assert status == 200
    return json.loads(body)["flushed"]


def window_sum(points: dict, key: str, metric: str) -> float:
    """The series' sum over the window (a 15 s boundary may fall between count and read)."""
    return sum(value for _, value in points[key][metric])


def test_count_then_plotpoints_shows_every_prefix(url):
    status, headers, body = query(url, "/count", dimensions={"sales": "p42"},
                                  metrics={"dollars": 500})
    assert (status, body) == (200, b"OK")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert flush(url) in (0, 1)  # 0: the flusher child, woken by the doorbell, was first
    status, _, points = query(url, "/plotpoints", dimensions="sales", metrics="dollars",
                              depth=1, period="15s:3h")
    assert status == 200
    assert list(points) == ["sales", '["sales","p42"]']
    assert len(points["sales"]["dollars"]) == 720
    assert window_sum(points, '["sales","p42"]', "dollars") == 500
    _, _, overall = query(url, "/plotpoints", metrics=["dollars", "hits"], period="15s:3h")
    assert window_sum(overall, "_", "dollars") == 500
    assert window_sum(overall, "_", "hits") == 1


def test_count_now_post_form_json_and_batch(url):
    form = urllib.parse.urlencode({"dimensions": "form", "metrics": '{"n": 1}'}).encode()
    assert get(f"{url}/count_now", form)[:1] == (200,)
    event = json.dumps({"dimensions": "json", "metrics": {"n": 2}}).encode()
    assert get(f"{url}/count", event, {"Content-Type": "application/json"})[0] == 200
    flush(url)
    batch = json.dumps([{"dimensions": "batch", "metrics": {"n": i}} for i in range(5)])
    assert get(f"{url}/count_now", batch.encode(), {"Content-Type": "application/json"})[0] == 200
    _, _, totals = query(url, "/totals", metrics="n", period="15s:3h", depth=1, threshold=0)
    assert totals["15s:3h"]["_"]["n"] == 1 + 2 + 10
    assert totals["15s:3h"]["batch"]["n"] == 10


def test_a_bad_event_in_a_batch_counts_nothing(url):
    batch = [{"dimensions": "ok"}, {"dimensions": "bad", "metrics": {"x": "NaN"}}]
    status, _, body = get(f"{url}/count", json.dumps(batch).encode(),
                          {"Content-Type": "application/json"})
    assert status == 400
    answer = json.loads(body)
    assert answer["param"] == "metrics" and "event 1" in answer["error"]
    _, _, totals = query(url, "/totals", period="15s:3h")
    assert totals["15s:3h"]["_"]["hits"] == 0


@pytest.mark.parametrize(
    "params, param",
    [
        ({"dimensions": "{bad json"}, "dimensions"),
        ({"metrics": '{"x": NaN}'}, "metrics"),
        ({"metrics": '{"x": Infinity}'}, "metrics"),
        ({"metrics": '{"x": "5"}'}, "metrics"),
        ({"dimensions": '["a", "_"]'}, "dimensions"),
        ({"at": "1999-01-01T00:00:00"}, "at"),
        ({"dimensions": "x" * 201}, "dimensions"),
        ({"dimensions": "a\u0001b"}, "dimensions"),
    ],
)
def test_rejections_are_400_with_param(url, params, param):
    status, _, answer = query(url, "/count", **params)
    assert status == 400
    assert answer["param"] == param and answer["error"]


def test_count_gif_is_a_beacon(url):
    status, headers, body = get(f"{url}/count.gif?dimensions=beacon")
    assert status == 200 and headers["Content-Type"] == "image/gif"
    assert body.startswith(b"GIF89a")
    flush(url)
    _, _, totals = query(url, "/totals", dimensions="beacon", period="15s:3h")
    assert totals["15s:3h"]["beacon"]["hits"] == 1


def test_totals_without_period_answers_every_period(url):
    query(url, "/count", dimensions="t", metrics={"dollars": 4})
    flush(url)
    _, _, totals = query(url, "/totals", dimensions="t", metrics=["dollars", "dollars/hits"])
    assert totals == {p: {"t": {"dollars": 4, "dollars/hits": 4}}
                      for p in ("15s:3h", "1h:7d", "1d:1y")}


def test_dimensions_and_unknown_period(url):
    query(url, "/count", dimensions={"sales": "p1"})
    flush(url)
    status, _, answer = query(url, "/dimensions", dimensions="sales")
    assert status == 200
    assert answer == {"period": "15s:3h", "parent": "sales",
                      "children": [{"name": "p1", "key": '["sales","p1"]',
                                    "totals": {"hits": 1}}]}
    status, _, answer = query(url, "/plotpoints", period="2m:1h")
    assert status == 400 and answer["param"] == "period"
    assert "15s:3h" in answer["error"]


def test_formula_errors_are_400(url):
    status, _, answer = query(url, "/plotpoints", metrics="dollars/(hits", period="15s:3h")
    assert status == 400 and answer["param"] == "metrics"


def test_count_is_buffered_and_flush_hail_counts_it(url):
    for n in range(3):
        query(url, "/count", dimensions="later", metrics={"n": n})
    assert flush(url) + flush(url) <= 3  # the background flusher may have taken some
    _, _, totals = query(url, "/totals", dimensions="later", metrics="n", period="15s:3h")
    assert totals["15s:3h"]["later"]["n"] == 3
    status, _, body = get(f"{url}/flush_hail")  # the GET old clients use
    assert (status, body) == (200, b"OK")


def test_direct_serve_counts_count_at_once(redis_server, redis_url):
    with Served("--redis-url", redis_server.url, "--no-buffer") as served:
        query(served.url, "/count", dimensions="now")
        _, _, totals = query(served.url, "/totals", dimensions="now", period="15s:3h")
        assert totals["15s:3h"]["now"]["hits"] == 1
        assert get(f"{served.url}/flush_hail", b"")[2] == b'{"flushed":0}'


def test_health_openapi_cors_and_unknown_paths(url):
    # the store was just emptied, the flusher's heartbeat with it: the next beat is < 1 s away
    deadline = time.monotonic() + 5
    while (status := query(url, "/health")[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    status, _, health = query(url, "/health")
    assert status == 200 and health["store"] == "ok" and health["problems"] == []
    assert health["buffer"]["status"] == "ok" and health["buffer"]["depth"] == 0
    assert health["cardinality"] == {
        "limits": {"children": 10_000, "pks": 10_000, "metric_names": 1000},
        "capped_parents": {"children": 0, "pks": 0, "metric_names": 0}}
    status, _, spec = query(url, "/openapi.json")
    assert status == 200
    assert {"/count", "/count_now", "/count.gif", "/plotpoints", "/totals", "/dimensions",
            "/health"} <= set(spec["paths"])
    status, headers, _ = get(f"{url}/nowhere")
    assert status == 404 and headers["Content-Type"].startswith("application/json")


def test_cors_allow_list(redis_server):
    with Served("--redis-url", redis_server.url, "--cors-origins",
                "https://admin.example") as served:
        _, headers, _ = get(f"{served.url}/totals", headers={"Origin": "https://admin.example"})
        assert headers["Access-Control-Allow-Origin"] == "https://admin.example"
        _, headers, _ = get(f"{served.url}/totals", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in headers
