"""Unique blocks: a window's distinct count merges blocks of 16 buckets, and equals the
union of its buckets exactly, whatever the window, the data's age or the blocks' record.

A HyperLogLog union is register-wise, so the block's HyperLogLog (every id of its
buckets added) and the merge of its buckets' are the same registers: PFCOUNT of the
blocks and edge buckets must equal PFCOUNT of every bucket, to the unit.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest

from hailwhale.events import Event
from hailwhale.keys import KeySpace
from tests.cluster import Cluster
from tests.hail_helpers import PERIODS
from whale.connect import client
from whale.reads import Series
from whale.rollup import UNIQUE_BLOCK, block_of, window_blocks
from whale.store import Store

NOW = time.time()  # the keys expire by the real clock: a window of now
INTERVAL = 15
SPAN = INTERVAL * UNIQUE_BLOCK
USERS = Series((), ("a",), "users", "unique")
_prefixes = itertools.count()


def fresh_store(redis, clock: float = NOW) -> Store:
    return Store(redis, PERIODS, KeySpace(f"u{next(_prefixes)}"), clock=lambda: clock)


def bucket_union(redis, store: Store, window: list[int]) -> int:
    """What the contract says a window's count is: PFCOUNT of the union of its buckets."""
    keys = [store.keys.unique((), ("a",), INTERVAL, "users", bucket) for bucket in window]
    return redis.pfcount(*keys)


def visits(window: list[int], rng: random.Random, n: int = 3000) -> list[Event]:
    """`n` visits of 800 users in random buckets of the window."""
    return [Event((), (("a",),), {"hits": 1}, {"users": f"user{rng.randrange(800)}"},
                  rng.choice(window) + rng.uniform(0, INTERVAL - 1)) for _ in range(n)]


def test_blocks_and_edge_buckets_cover_the_window_each_bucket_once():
    window = PERIODS.find("15s:3h").window(NOW)
    for since in (None, 0, window[300], window[-1] + 1):
        blocks, buckets = window_blocks(window, INTERVAL, since)
        covered = sorted(buckets + [b + i * INTERVAL for b in blocks for i in range(UNIQUE_BLOCK)])
        assert covered == list(window)
        assert all(block % SPAN == 0 and since is not None and block >= since for block in blocks)
    blocks, buckets = window_blocks(window, INTERVAL, 0)
    assert len(blocks) >= 720 // UNIQUE_BLOCK - 1 and len(buckets) < 2 * UNIQUE_BLOCK
    assert window_blocks(window, INTERVAL, None) == ([], list(window))
    first = next(bucket for bucket in window if bucket % SPAN == 0)
    assert {block_of(first + n * INTERVAL, INTERVAL) for n in range(UNIQUE_BLOCK)} == {first}


def test_a_windows_count_equals_the_union_of_its_buckets(redis_client):
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    store.count(visits(window, random.Random(5)))
    assert redis_client.hget(store.keys.unique_blocks_since(), "since") is not None
    rng = random.Random(6)
    windows = [window, window[1:], window[:-1], window[17:333]] + [
        window[a:b] for a, b in (sorted(rng.sample(range(721), 2)) for _ in range(10))]
    for part in windows:
        [total] = store.unique_totals([USERS], INTERVAL, part)
        assert total == bucket_union(redis_client, store, part), (part[0], len(part))


def test_data_from_before_the_blocks_is_read_bucket_by_bucket(redis_client):
    """An older HailWhale wrote bucket HyperLogLogs only: its ids still count."""
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    for bucket in window[:400]:  # what an older version left, before the upgrade
        redis_client.pfadd(store.keys.unique((), ("a",), INTERVAL, "users", bucket),
                           f"old{bucket}")
    store.count(visits(window[400:], random.Random(7)))  # the upgraded one, from window[400]
    redis_client.hset(store.keys.unique_blocks_since(), "since", window[400])
    [total] = store.unique_totals([USERS], INTERVAL, window)
    assert total == bucket_union(redis_client, store, window) > 800 + 300
    redis_client.delete(store.keys.unique_blocks_since())  # no record: buckets alone
    assert store.unique_totals([USERS], INTERVAL, window) == [total]


def test_a_block_expires_with_its_first_bucket_and_is_then_not_read(redis_client):
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    first = [bucket for bucket in window[:-UNIQUE_BLOCK] if bucket % SPAN == 0][-1]
    store.count([Event((), (("a",),), {"hits": 1}, {"users": "u"}, first + 1 + n * INTERVAL)
                 for n in range(UNIQUE_BLOCK)])
    block = store.keys.unique_block((), ("a",), INTERVAL, "users", first)
    bucket = store.keys.unique((), ("a",), INTERVAL, "users", first)
    assert abs(redis_client.ttl(block) - redis_client.ttl(bucket)) <= 1
    # Later, the block's first bucket is past the retention: the block is not read.
    later = fresh_store(redis_client, clock=first + PERIODS.retention[INTERVAL] + INTERVAL)
    later.keys = store.keys
    redis_client.delete(block, bucket)  # as the expiry would have
    [total] = later.unique_totals([USERS], INTERVAL, [first + n * INTERVAL
                                                      for n in range(UNIQUE_BLOCK)])
    assert total == 1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("cluster"), persist=False) as started:
        yield started


def test_blocks_on_a_cluster_count_as_on_one_redis(cluster, redis_client):
    on_cluster = client(cluster.url)
    window = PERIODS.find("15s:3h").window(NOW)
    stores = [fresh_store(on_cluster), fresh_store(redis_client)]
    for store in stores:
        store.count(visits(window, random.Random(9)))
    totals = [store.unique_totals([USERS], INTERVAL, window[5:700]) for store in stores]
    assert totals[0] == totals[1] == [bucket_union(redis_client, stores[1], window[5:700])]
    on_cluster.close()


def test_blocks_are_trusted_from_the_start_only_in_a_fresh_key_space(redis_client):
    fresh = fresh_store(redis_client)
    fresh.count([Event((), (), {"hits": 1}, {}, NOW)])
    assert float(redis_client.hget(fresh.keys.unique_blocks_since(), "since")) == 0
    redis_client.delete(fresh.keys.unique_blocks_since())  # as if an older version wrote
    upgraded = fresh_store(redis_client, clock=NOW + 1)
    upgraded.keys = fresh.keys
    upgraded.count([Event((), (), {"hits": 1}, {"users": "u"}, NOW)])
    assert float(redis_client.hget(fresh.keys.unique_blocks_since(), "since")) == NOW + 1
    assert redis_client.ttl(fresh.keys.unique_blocks_since()) > 0
