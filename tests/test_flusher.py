"""The flusher on real Redis servers: every buffered event counted exactly once.

Each test counts the same events directly under the prefix `direct` and through
a buffer and a flusher under `buffered`, and compares every key of the two.
"""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import redis

from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale.embedded import RedisServer
from tests.hail_helpers import BUFFER_KEYS, buffer_and_flush, dump, make_store, random_events

ROOT = __file__.rsplit("/tests/", 1)[0]


@pytest.fixture(scope="module")
def spare_servers(tmp_path_factory):
    """Two more servers, for buffers apart from the store."""
    servers = [RedisServer(tmp_path_factory.mktemp(f"buf{i}"), persist=False).start()
               for i in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def buffer_clients(spare_servers):
    clients = [server.client() for server in spare_servers]
    for client in clients:
        client.flushall()
    yield clients
    for client in clients:
        client.close()


@pytest.fixture
def now():
    return time.time()


def assert_same_counts(client, now, events, buffered_prefix="buffered"):
    make_store(client, "direct", now).count(events)
    direct, buffered = dump(client, "direct"), dump(client, buffered_prefix)
    assert buffered == direct
    assert len(direct) > 10 and all(expires for *_, expires in direct.values())


def clone(client: redis.Redis) -> redis.Redis:
    """Another client on the same server (its own connections)."""
    pool = client.connection_pool
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **pool.connection_kwargs))


def first_waits(read: Callable, barrier: threading.Barrier) -> Callable:
    """`read`, but its first call waits at `barrier`."""
    calls = []

    def wrapper(*args):
        if not calls:
            calls.append(barrier.wait())
        return read(*args)

    return wrapper


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("seed", range(3))
def test_buffered_totals_equal_direct_totals(redis_client, buffer_clients, now, seed):
    rng = random.Random(seed)
    events = random_events(rng, 300, now)
    buffer_and_flush(buffer_clients[0], redis_client, events, now, rng)
    assert_same_counts(redis_client, now, events)


def test_a_batch_applied_twice_counts_once(redis_client, now):
    events = random_events(random.Random(5), 40, now)
    store = make_store(redis_client, "buffered", now)
    rollup, marker = store.roller.rollup(events, now), store.keys.applied("b1")
    assert store.apply_once(rollup, marker, 60)
    assert not store.apply_once(rollup, marker, 60)
    assert_same_counts(redis_client, now, events)


@pytest.mark.parametrize("step", ["claim", "apply", "release"])
def test_a_flusher_killed_at_any_step_loses_and_doubles_nothing(
        redis_client, buffer_clients, spare_servers, redis_url, now, step):
    events = random_events(random.Random(7), 60, now)
    buffer = Buffer(buffer_clients[0], BUFFER_KEYS)
    buffer.push(events, now)
    child = subprocess.run(
        [sys.executable, "-m", "tests.hail_helpers", spare_servers[0].url, redis_url, step,
         "2", "25", repr(now)], cwd=ROOT, capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    [stuck] = buffer.in_flight()
    assert redis_client.exists(f"buffered:applied:{stuck}") == (step != "claim")
    flusher = Flusher(buffer, make_store(redis_client, "buffered", now), batch_size=25)
    resumed = flusher.flush_all()
    assert resumed == (35 if step == "claim" else 10)
    assert_same_counts(redis_client, now, events)


def test_two_flushers_at_once_count_each_event_once(redis_client, buffer_clients, now):
    events = random_events(random.Random(11), 400, now)
    Buffer(buffer_clients[0], BUFFER_KEYS).push(events, now)
    Buffer(buffer_clients[0], BUFFER_KEYS).claim(30, now)  # a batch both will resume
    both_read = threading.Barrier(2, timeout=10)
    flushers = []
    for _ in range(2):
        buffer = Buffer(clone(buffer_clients[0]), BUFFER_KEYS)
        # Both read the in-flight batch before either applies it: a real race on one batch.
        buffer.items = first_waits(buffer.items, both_read)
        flushers.append(Flusher(buffer, make_store(clone(redis_client), "buffered", now),
                                batch_size=9))
    applied = []
    threads = [threading.Thread(target=lambda f=f: applied.append(f.flush_all()))
               for f in flushers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(applied) == 400
    assert_same_counts(redis_client, now, events)


def test_a_batch_applied_by_another_flusher_meanwhile_is_skipped(redis_client, now):
    """The WATCH race: the other flusher applies between our marker check and our EXEC."""
    events = random_events(random.Random(13), 50, now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events, now)
    other = Flusher(Buffer(clone(redis_client), BUFFER_KEYS),
                    make_store(clone(redis_client), "buffered", now))
    store = make_store(redis_client, "buffered", now)
    run = store._run

    def racing(*args, **kwargs):
        store._run = run
        assert other.resume() == 50
        return run(*args, **kwargs)

    store._run = racing
    assert Flusher(buffer, store).flush_all() == 0
    assert_same_counts(redis_client, now, events)


def test_a_store_down_for_a_while_delays_counts_and_loses_none(
        tmp_path, buffer_clients, now, caplog):
    store_server = RedisServer(tmp_path / "store", extra_config={"appendfsync": "always"})
    store_server.start()
    try:
        store_client = store_server.client(timeout=1)
        buffer = Buffer(buffer_clients[0], BUFFER_KEYS)
        flusher = Flusher(buffer, make_store(store_client, "buffered", now), batch_size=20)
        events = random_events(random.Random(17), 90, now)
        stop = threading.Event()
        thread = threading.Thread(target=flusher.run, kwargs=dict(interval=0.02, stop=stop))
        thread.start()
        idle = lambda: buffer.depth() == 0 and not buffer.in_flight()  # noqa: E731
        buffer.push(events[:30], now)
        wait_for(idle)
        store_server.kill()
        buffer.push(events[30:60], now)
        wait_for(lambda: "unreachable" in caplog.text and buffer.in_flight())
        buffer.push(events[60:], now)
        store_server.start()
        wait_for(idle)
        stop.set()
        thread.join(10)
        assert_same_counts(store_client, now, events)
    finally:
        store_server.stop()
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_two_buffers_feeding_one_store_count_as_one(redis_client, buffer_clients, now):
    rng = random.Random(19)
    events = random_events(rng, 200, now)
    one = Buffer(redis_client, BUFFER_KEYS, name="solo")
    one.push(events, now)
    Flusher(one, make_store(redis_client, "one", now)).flush_all()
    halves = [Buffer(client, BUFFER_KEYS) for client in buffer_clients]
    for event in events:
        rng.choice(halves).push([event], now)
    assert sum(Flusher(half, make_store(redis_client, "two", now), batch_size=16).flush_all()
               for half in halves) == 200
    assert dump(redis_client, "two") == dump(redis_client, "one")


def test_an_undecodable_item_becomes_a_dead_letter_and_the_rest_counts(redis_client, now):
    events = random_events(random.Random(23), 10, now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events[:5], now)
    buffer.push_items([b"garbage", f'{now!r} {{"pk": 1}}', b"\xff\xfe"])
    buffer.push(events[5:], now)
    assert Flusher(buffer, make_store(redis_client, "buffered", now)).flush_all() == 10
    dead = buffer.dead_letters()
    assert [letter["item"] for letter in dead] == ["garbage", f'{now!r} {{"pk": 1}}', "\\xff\\xfe"]
    assert all(letter["reason"] and letter["at"] == now for letter in dead)
    assert buffer.stats(now)["dead_letters"] == 3
    assert_same_counts(redis_client, now, events)


def test_run_flushes_at_once_when_idle_then_per_interval_or_trigger(redis_client, now):
    events = random_events(random.Random(29), 12, now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    polls = []
    depth = buffer.depth
    buffer.depth = lambda: polls.append(1) or depth()  # run polls the depth between flushes
    flusher = Flusher(buffer, make_store(redis_client, "buffered", now), batch_size=5)
    stop = threading.Event()
    thread = threading.Thread(target=flusher.run, kwargs=dict(interval=60, trigger=10, stop=stop))
    thread.start()
    try:
        wait_for(lambda: polls)
        buffer.push(events[:1], now)  # a quiet flusher wakes on the doorbell and flushes it
        wait_for(lambda: depth() == 0 and not buffer.in_flight())
        buffer.push(events[1:9], now)
        seen = len(polls)
        wait_for(lambda: len(polls) > seen + 2)
        assert depth() == 8  # under the trigger, and the interval (60 s) has not passed
        buffer.push(events[9:], now)  # 11 >= trigger: flushed now
        wait_for(lambda: depth() == 0 and not buffer.in_flight())
    finally:
        stop.set()
        thread.join(10)
    assert_same_counts(redis_client, now, events)


def test_run_resumes_a_dead_flushers_batch_after_the_lease(redis_client, now):
    events = random_events(random.Random(31), 20, now)
    clock = [now]
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events, now)
    stale = buffer.claim(8, now)
    store = make_store(redis_client, "buffered", now)
    store.clock = lambda: clock[0]
    flusher = Flusher(buffer, store, lease=30)
    flusher.flush_once()  # the 12 left; the 8 are another (live) flusher's for now
    assert buffer.in_flight() == [stale.id]
    assert flusher.resume(older_than=30) == 0
    clock[0] = now + 31
    assert flusher.resume(older_than=30) == 8
    assert not buffer.in_flight()
