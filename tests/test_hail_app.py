"""Hail's HTTP API over real HTTP (wsgiref in a thread) on a real Redis buffer."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, make_server

import fakeredis
import pytest

from hail.app import make_hail_app
from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale.config import Config
from hailwhale.embedded import RedisServer
from tests.hail_helpers import BUFFER_KEYS, make_store
from tests.servers import get
from whale.app import PIXEL, make_app
from whale.reads import Series


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def served(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def url_of(base: str, path: str, **params: object) -> str:
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    return f"{base}{path}?{urllib.parse.urlencode(encoded)}"


@pytest.fixture
def now():
    return time.time()


@pytest.fixture
def buffer(redis_client):
    return Buffer(redis_client, BUFFER_KEYS)


@pytest.fixture
def hail(buffer, now) -> Iterator[str]:
    with served(make_hail_app(buffer, Config(), clock=lambda: now)) as base:
        yield base


def test_count_buffers_and_answers_at_once_then_a_flush_counts(hail, buffer, redis_client, now):
    status, headers, body = get(url_of(hail, "/count", dimensions={"sales": "p42"},
                                       metrics={"dollars": 500}))
    assert (status, body, headers["Access-Control-Allow-Origin"]) == (200, b"OK", "*")
    status, headers, body = get(url_of(hail, "/count.gif", dimensions="sales"))
    assert (status, headers["Content-Type"], body) == (200, "image/gif", PIXEL)
    batch = json.dumps([{"dimensions": "sales", "metrics": {"dollars": i}} for i in range(3)])
    assert get(f"{hail}/count", batch.encode(), {"Content-Type": "application/json"})[0] == 200
    assert buffer.depth() == 5
    store = make_store(redis_client, "hw", now)
    assert Flusher(buffer, store).flush_all() == 5
    [points] = store.points([Series((), ("sales",), "dollars")], 15, [int(now) // 15 * 15])
    assert points == [503]


@pytest.mark.parametrize("params", [
    {"metrics": {"dollars": "lots"}},
    {"dimensions": "[broken"},
    {"dimensions": {"a": None}},
    {"at": "yesterday-ish"},
])
def test_bad_events_get_the_same_400_as_whale_and_nothing_is_buffered(hail, buffer, now,
                                                                       params):
    whale_app = make_app(make_store(fakeredis.FakeRedis(), "hw", now), Config(),
                         clock=lambda: now)
    with served(whale_app) as whale:
        expected = get(url_of(whale, "/count", **params))
    status, headers, body = get(url_of(hail, "/count", **params))
    assert (status, json.loads(body)) == (expected[0], json.loads(expected[2]))
    assert status == 400 and set(json.loads(body)) == {"error", "param"}
    assert buffer.depth() == 0


def test_a_full_buffer_answers_503_with_retry_after_and_buffers_nothing(redis_client, now):
    buffer = Buffer(redis_client, BUFFER_KEYS, max_events=2, retry_after=3)
    with served(make_hail_app(buffer, Config(), clock=lambda: now)) as hail:
        for _ in range(2):
            assert get(url_of(hail, "/count", dimensions="a"))[0] == 200
        status, headers, body = get(url_of(hail, "/count", dimensions="a"))
        assert (status, headers["Retry-After"]) == (503, "3")
        assert json.loads(body)["error"].startswith("the buffer is full")
        assert get(url_of(hail, "/count.gif", dimensions="a"))[0] == 503
        assert buffer.depth() == 2


def test_health_shows_the_buffer(hail, buffer, now):
    get(url_of(hail, "/count", dimensions="a"))
    buffer.beat("a flusher", now)
    status, _, body = get(f"{hail}/health")
    health = json.loads(body)
    assert (status, health["status"], health["depth"], health["in_flight"]) == (200, "ok", 1, 0)
    assert health["oldest_age_seconds"] == 0 and health["last_flush"] is None
    assert health["problems"] == []


def test_health_is_degraded_without_a_flusher_with_old_events_or_dead_letters(
        redis_client, buffer, now):
    clock = [now]
    with served(make_hail_app(buffer, Config(health_max_lag=30), clock=lambda: clock[0])) as hail:
        get(url_of(hail, "/count", dimensions="a"))
        status, _, body = get(f"{hail}/health")
        assert (status, json.loads(body)["problems"]) == (503, [
            "no flusher is alive: nothing drains the buffer (run `hailwhale flush`, or "
            "`hailwhale serve`/`hail` without --no-flusher)"])
        clock[0] = now + 31
        buffer.beat("a flusher", clock[0])
        status, _, body = get(f"{hail}/health")
        health = json.loads(body)
        assert (status, health["status"]) == (503, "degraded")
        assert health["problems"] == ["the oldest buffered event is 31 s old, more than 30 s: "
                                      "events are not being flushed in time"]
        batch = buffer.claim(10, clock[0])
        buffer.bury(batch.id, "HWPOISON a reason", clock[0], 1)
        health = json.loads(get(f"{hail}/health")[2])
        assert health["problems"] == ["1 dead letters wait: see `hailwhale dead-letters list`, "
                                      "then retry or drop them"]
        assert "a reason" not in json.dumps(health)  # the public answer names nothing


def test_an_unreachable_buffer_is_a_quick_503(tmp_path, now):
    server = RedisServer(tmp_path, persist=False).start()
    buffer = Buffer(server.client(timeout=1), BUFFER_KEYS)
    server.kill()
    with served(make_hail_app(buffer, Config(), clock=lambda: now)) as hail:
        started = time.monotonic()
        status, _, body = get(url_of(hail, "/count", dimensions="a"))
        assert (status, json.loads(body)["error"]) == (
            503, "the buffer is unavailable; try again shortly")
        assert get(f"{hail}/health")[0] == 503
        assert time.monotonic() - started < 2


def test_preflight_and_cors_origins_like_whale(redis_client, now):
    config = Config(cors_origins=("https://shop.example",))
    app = make_hail_app(Buffer(redis_client, BUFFER_KEYS), config, clock=lambda: now)
    with served(app) as hail:
        status, headers, _ = get_with_method(f"{hail}/count", "OPTIONS",
                                             {"Origin": "https://shop.example"})
        assert (status, headers["Access-Control-Allow-Origin"]) == (204, "https://shop.example")
        _, headers, _ = get(url_of(hail, "/count", dimensions="a"),
                            headers={"Origin": "https://elsewhere.example"})
        assert "Access-Control-Allow-Origin" not in headers


def get_with_method(url: str, method: str, headers: dict) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, dict(answer.headers), answer.read()
