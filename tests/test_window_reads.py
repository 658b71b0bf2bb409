"""Window reads on real redis-servers: totals summed in Redis, points, unique counts.

Every answer is compared, value and type, with what the Python path makes of the
same stored sums: each chunk read with HGETALL, every value decoded, and the
window's buckets added up with hailwhale/sums.py's exact_sum.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from hailwhale.events import Event
from hailwhale.keys import KeySpace
from hailwhale.sums import exact_sum
from tests.cluster import Cluster
from tests.hail_helpers import PERIODS, random_events
from whale.connect import client
from whale.numbers import to_numbers
from whale.reads import ChunkMemo, Series
from whale.rollup import CHUNK_BUCKETS, window_chunks
from whale.store import Store

NOW = time.time() // 3600 * 3600 + 1234.5
INTERVAL = 15
SPAN = INTERVAL * CHUNK_BUCKETS
_prefixes = itertools.count()


def fresh_store(redis) -> Store:
    """A store under a key prefix of its own (hypothesis runs many examples per test)."""
    return Store(redis, PERIODS, KeySpace(f"w{next(_prefixes)}"), clock=lambda: NOW)


def python_points(store: Store, one: Series, window: list[int]) -> list:
    """The window's values as the Python path reads them: HGETALL, decode, pick."""
    stored: dict[bytes, bytes] = {}
    for chunk in window_chunks(window, INTERVAL):
        stored.update(store.redis.hgetall(
            store.keys.series(one.pk, one.path, INTERVAL, one.metric, chunk)))
    numbers = dict(zip(stored, to_numbers(list(stored.values()))))
    return [numbers.get(str(bucket).encode(), 0) for bucket in window]


def same(a, b) -> bool:
    """Equal and of one type (a float total is not an int one), -0.0 aside."""
    return type(a) is type(b) and a == b


def store_spellings(store: Store, one: Series, spelled: dict[int, str]) -> None:
    pipe = store.redis.pipeline(transaction=False)
    for bucket, value in spelled.items():
        key = store.keys.series(one.pk, one.path, INTERVAL, one.metric, bucket // SPAN)
        pipe.hset(key, str(bucket), value)
    pipe.execute()


def increment(store: Store, one: Series, amounts: dict[int, list[float]]) -> None:
    """Each bucket's amounts added with HINCRBYFLOAT, as apply.lua writes sums."""
    pipe = store.redis.pipeline(transaction=False)
    for bucket, values in amounts.items():
        key = store.keys.series(one.pk, one.path, INTERVAL, one.metric, bucket // SPAN)
        for value in values:
            pipe.hincrbyfloat(key, str(bucket), value)
    pipe.execute()


SERIES = Series((), ("shop",), "dollars")
FIRST = int(NOW) // SPAN * SPAN - 3 * SPAN  # a window may start 3 chunks back

windows = st.builds(
    lambda start, length: list(range(FIRST + start * INTERVAL,
                                     FIRST + (start + length) * INTERVAL, INTERVAL)),
    st.integers(0, 2 * CHUNK_BUCKETS), st.integers(1, 3 * CHUNK_BUCKETS))
amounts = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(-(2.0**53), 2.0**53, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 0.2, 0.3, 1e-17, 1234.5678, 2.0**52 + 0.5, -(2.0**53), 2.0**53]),
    st.integers(-400, 400).map(lambda quarters: quarters / 4),
)
# Spellings HINCRBYFLOAT never writes but a total must read as the Python path does:
# long integers (exact past 2**53), long decimals, and the limits.
spellings = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["9007199254740992", "-9007199254740992", "9007199254740993",
                     "2.00000000000000001", "12345678901234567.5", "0.00000000000000001",
                     "27021597764222979", "1000000000000000", "-0.5"]),
    st.decimals(-(10**20), 10**20, places=17, allow_nan=False, allow_infinity=False)
    .map(lambda d: format(d, "f")),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=windows,
       written=st.dictionaries(st.integers(0, 4 * CHUNK_BUCKETS - 1),
                               st.lists(amounts, min_size=1, max_size=3), max_size=60),
       spelled=st.dictionaries(st.integers(0, 4 * CHUNK_BUCKETS - 1), spellings, max_size=6))
def test_window_totals_are_the_python_paths_bit_for_bit(redis_client, window, written,
                                                        spelled):
    store = fresh_store(redis_client)
    increment(store, SERIES, {FIRST + i * INTERVAL: values for i, values in written.items()})
    store_spellings(store, SERIES, {FIRST + i * INTERVAL: text for i, text in spelled.items()})
    expected = python_points(store, SERIES, window)
    assert store.points([SERIES], INTERVAL, window) == [expected]
    assert store.points([SERIES], INTERVAL, window) == [expected]  # from what it kept
    [total] = store.window_sums([SERIES], INTERVAL, window)
    assert same(total, exact_sum(expected)), (total, exact_sum(expected))
    [again] = store.window_sums([SERIES], INTERVAL, window)  # from what it kept
    assert same(again, total)


def test_a_changed_chunk_is_read_again_and_a_restored_one_is_not_wrong(redis_client):
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    increment(store, SERIES, {bucket: [0.1] for bucket in window})
    [before] = store.window_sums([SERIES], INTERVAL, window)
    assert before == exact_sum([0.1] * len(window))
    assert store.points([SERIES], INTERVAL, window) == [python_points(store, SERIES, window)]
    increment(store, SERIES, {window[5]: [2**40], window[-1]: [0.7]})
    [after] = store.window_sums([SERIES], INTERVAL, window)
    assert same(after, exact_sum(python_points(store, SERIES, window)))
    assert store.points([SERIES], INTERVAL, window) == [python_points(store, SERIES, window)]
    increment(store, SERIES, {window[5]: [-(2**40)]})
    [restored] = store.window_sums([SERIES], INTERVAL, window)
    assert same(restored, exact_sum(python_points(store, SERIES, window)))
    assert store.points([SERIES], INTERVAL, window) == [python_points(store, SERIES, window)]
    # the same chunks over a window that ends elsewhere: read over its own buckets
    shorter = window[:300]
    [part] = store.window_sums([SERIES], INTERVAL, shorter)
    assert same(part, exact_sum(python_points(store, SERIES, shorter)))
    assert store.points([SERIES], INTERVAL, shorter) == [python_points(store, SERIES, shorter)]


@pytest.mark.parametrize("odd", ["abc", "inf", "1e5", "1,2", "", " 5", "+5", "1.2.3", "0x10"])
def test_a_value_apply_lua_never_writes_is_read_as_the_python_path_reads_it(redis_client, odd):
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    increment(store, SERIES, {bucket: [1.5] for bucket in window[::7]})
    store_spellings(store, SERIES, {window[3]: odd})
    try:
        expected = exact_sum(python_points(store, SERIES, window))
    except (ValueError, OverflowError) as error:
        with pytest.raises(type(error)):
            store.window_sums([SERIES], INTERVAL, window)
    else:
        [total] = store.window_sums([SERIES], INTERVAL, window)
        assert same(total, expected)


def test_many_series_of_every_period_sum_as_their_points(redis_client):
    store = fresh_store(redis_client)
    store.apply(store.roller.rollup(random_events(random.Random(4), 3000, NOW), NOW))
    paths = [(), ("geo",), ("geo", "US"), ("site",), ("site", "page1"), ("nothing",)]
    for period in PERIODS.periods:
        window = period.window(NOW)
        series = [Series(pk, path, metric) for pk in [(), ("shop",)] for path in paths
                  for metric in ["dollars", "clicks", "hits"]]
        points = store.points(series, period.interval, window)
        assert store.window_sums(series, period.interval, window) == [
            exact_sum(values) for values in points]


def test_reads_stay_right_when_what_was_kept_is_dropped(redis_client):
    store = fresh_store(redis_client)
    store.decoded, store.summed = ChunkMemo(700), ChunkMemo(3)  # a few chunks' worth
    store.apply(store.roller.rollup(random_events(random.Random(9), 2000, NOW), NOW))
    window = PERIODS.find("15s:3h").window(NOW)
    series = [Series(pk, path, metric) for pk in [(), ("shop",)]
              for path in [(), ("geo",), ("site",)] for metric in ["dollars", "clicks"]]
    expected = [python_points(store, one, window) for one in series]
    for _ in range(3):
        assert store.points(series, INTERVAL, window) == expected
        assert store.window_sums(series, INTERVAL, window) == [exact_sum(v) for v in expected]


def test_unique_points_are_each_buckets_pfcount(redis_client):
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    events = [Event((), (("a",),), {"hits": 1}, {"users": f"u{i % 37}"}, window[i % 50 - 50] + 3)
              for i in range(400)]
    store.count(events)
    users = Series((), ("a",), "users", "unique")
    [points] = store.points([users], INTERVAL, window)
    keys = [store.keys.unique((), ("a",), INTERVAL, "users", bucket) for bucket in window]
    assert points == [redis_client.pfcount(key) for key in keys]
    assert sum(points) == 400 and points[-50:] == [8] * 50
    assert store.points([users], INTERVAL, window) == [points]  # the counts now cached
    [total] = store.unique_totals([users], INTERVAL, window)
    assert total == redis_client.pfcount(*keys)


@pytest.mark.parametrize("other", ["hash", "string"])
def test_a_bucket_that_is_no_hyperloglog_is_an_error_as_pfcount_says(redis_client, other):
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    store.count([Event((), (("a",),), {"hits": 1}, {"users": "u1"}, NOW)])
    key = store.keys.unique((), ("a",), INTERVAL, "users", window[3])
    redis_client.hset(key, "x", 1) if other == "hash" else redis_client.set(key, "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        store.points([Series((), ("a",), "users", "unique")], INTERVAL, window)


def test_reads_after_the_server_lost_its_scripts(redis_client):
    store = fresh_store(redis_client)
    window = PERIODS.find("15s:3h").window(NOW)
    store.count([Event((), (("a",),), {"hits": 1, "dollars": 2.5}, {"users": "u"}, NOW)])
    redis_client.script_flush()
    [total] = store.window_sums([Series((), ("a",), "dollars")], INTERVAL, window)
    redis_client.script_flush()
    [points] = store.points([Series((), ("a",), "dollars")], INTERVAL, window)
    assert total == 2.5 and points[-1] == 2.5


def test_fakeredis_reads_the_same(fake_redis, redis_client):
    events = random_events(random.Random(8), 500, NOW)
    stores = [fresh_store(fake_redis), fresh_store(redis_client)]
    for store in stores:
        store.apply(store.roller.rollup(events, NOW))
    window = PERIODS.find("1h:7d").window(NOW)
    series = [Series((), path, "dollars") for path in [(), ("geo",), ("site", "page2")]]
    uniques = [Series((), (), "visitors", "unique")]
    fake, real = ([store.window_sums(series, 3600, window), store.points(uniques, 3600, window)]
                  for store in stores)
    assert fake == real


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = Cluster(tmp_path_factory.mktemp("cluster"), persist=False).start()
    yield started
    started.stop()


def test_a_cluster_reads_what_one_redis_reads(cluster, redis_client):
    cluster.flushall()
    events = random_events(random.Random(6), 2000, NOW)
    on_cluster = client(cluster.url)
    try:
        stores = [fresh_store(on_cluster), fresh_store(redis_client)]
        for store in stores:
            store.apply(store.roller.rollup(events, NOW))
        window = PERIODS.find("15s:3h").window(NOW)
        paths = [(), ("geo",), ("geo", "FR"), ("site", "page3"), ("product",)]
        sums = [Series(pk, path, "dollars") for pk in [(), ("shop",)] for path in paths]
        uniques = [Series((), path, "visitors", "unique") for path in paths]
        answers = [(store.window_sums(sums, INTERVAL, window),
                    store.window_sums(sums, INTERVAL, window),
                    store.points(sums + uniques, INTERVAL, window),
                    store.unique_totals(uniques, INTERVAL, window)) for store in stores]
        assert answers[0] == answers[1]
    finally:
        on_cluster.close()
