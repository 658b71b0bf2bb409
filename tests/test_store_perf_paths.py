"""The store's fast paths on a real redis-server: apply.lua, group commits, reading back.

Each path must give what the plain commands would: these tests run on the session's
real server (not fakeredis) and compare against the counts a user sees.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from hail.buffer import Buffer
from hailwhale.events import Event
from hailwhale.exceptions import PoisonWrite
from hailwhale.group_commit import GroupCommit
from tests.hail_helpers import BUFFER_KEYS, PERIODS, make_store, random_events
from whale.numbers import to_number
from whale.reads import WINDOW_TOTALS, Series
from whale.rollup import window_chunks


@pytest.fixture
def now():
    return time.time()


def calls(redis, command: str) -> int:
    stats = redis.info("commandstats").get(f"cmdstat_{command}")
    return stats["calls"] if stats else 0


def event(now: float, **sums: float) -> Event:
    return Event((), (("a",),), {"hits": 1, **sums}, {}, now)


def test_one_count_is_one_script_call_whatever_it_touches(redis_client, now):
    store = make_store(redis_client, "hw", now)
    store.count(random_events(random.Random(1), 1, now))
    before = calls(redis_client, "evalsha"), calls(redis_client, "hincrbyfloat")
    store.count([event(now, dollars=2.5)])
    assert calls(redis_client, "evalsha") == before[0] + 1
    assert calls(redis_client, "hincrbyfloat") == before[1] + 2 * 2 * 3  # 2 paths, 2 metrics


def test_a_marker_makes_the_second_apply_a_no_op_and_expires(redis_client, now):
    store = make_store(redis_client, "hw", now)
    rollup = store.roller.rollup([event(now, dollars=2)], now)
    assert store.apply_once(rollup, "hw:applied:x", 60)
    assert not store.apply_once(rollup, "hw:applied:x", 60)
    assert 0 < redis_client.ttl("hw:applied:x") <= 60
    assert redis_client.get("hw:applied:x") == b"1"
    [[total]] = store.points([Series((), ("a",), "dollars")], 86400, [int(now) // 86400 * 86400])
    assert total == 2


def test_thousands_of_unique_ids_and_keys_in_one_call(redis_client, now):
    store = make_store(redis_client, "hw", now)
    events = [Event((), ((f"d{i % 700}",),), {"hits": 1}, {"users": f"u{i}"}, now)
              for i in range(5000)]
    store.count(events)
    [overall] = store.unique_totals([Series((), (), "users", "unique")], 15,
                                    [int(now) // 15 * 15])
    assert abs(overall - 5000) < 5000 * 0.02  # HyperLogLog: within its 0.81% error, roughly
    hits = store.points([Series((), (f"d{i}",), "hits") for i in range(700)], 15,
                        [int(now) // 15 * 15])
    assert sum(values[0] for values in hits) == 5000


def test_a_server_that_lost_its_scripts_gets_them_again(redis_client, now):
    store = make_store(redis_client, "hw", now)
    store.count([event(now)])
    redis_client.script_flush()
    store.count([event(now)])
    [[hits]] = store.points([Series((), ("a",), "hits")], 15, [int(now) // 15 * 15])
    assert hits == 2


def test_unique_keys_get_their_expiry_with_their_first_write(redis_client, now):
    store = make_store(redis_client, "hw", now)
    store.count([Event((), (), {"hits": 1}, {"users": "u1"}, now)])
    keys = redis_client.keys("hw:*:users:u*")
    assert len(keys) == 3 and all(redis_client.ttl(key) > 0 for key in keys)  # one per interval


def test_concurrent_counts_share_round_trips_and_all_count(redis_client, now):
    store = make_store(redis_client, "hw", now)
    store.count([event(now)])
    before = calls(redis_client, "evalsha")
    threads = [threading.Thread(target=lambda: [store.count([event(now, dollars=0.5)])
                                                for _ in range(25)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    [[hits], [dollars]] = store.points(
        [Series((), ("a",), "hits"), Series((), ("a",), "dollars")], 15, [int(now) // 15 * 15])
    assert (hits, dollars) == (201, 100)
    assert calls(redis_client, "evalsha") - before <= 200


def test_concurrent_pushes_all_land_each_request_whole(redis_client, now):
    buffer = Buffer(redis_client, BUFFER_KEYS)
    events = random_events(random.Random(2), 4, now)
    threads = [threading.Thread(target=lambda: [buffer.push(events, now) for _ in range(20)])
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    items = redis_client.lrange(buffer.list_key, 0, -1)
    assert len(items) == 6 * 20 * 4
    firsts = [i for i, item in enumerate(items) if item.endswith(events[0].to_json().encode())]
    assert all(items[i + 3].endswith(events[3].to_json().encode()) for i in firsts)


def grouped(first: int, rest: tuple[int, ...], **options: object) -> tuple[list, dict]:
    """`first` commits alone while `rest` queue behind it and commit as one group; a commit
    holding 13 raises ValueError. What each commit got, and what each caller was answered."""
    seen: list[list[int]] = []
    gate = threading.Event()

    def commit(items: list[int]) -> int:
        seen.append(list(items))
        gate.wait(5)
        if 13 in items:
            raise ValueError("13")
        return sum(items)

    group = GroupCommit(commit, **options)
    answers: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            answers[n] = group([n])
        except ValueError as error:
            answers[n] = error

    leader = threading.Thread(target=call, args=(first,))
    leader.start()
    while not seen:
        time.sleep(0.001)
    queued = [threading.Thread(target=call, args=(n,)) for n in rest]
    for thread in queued:
        thread.start()
    time.sleep(0.05)  # they queue behind the first commit
    gate.set()
    for thread in [leader, *queued]:
        thread.join(5)
    return seen, answers


def test_group_commit_gives_every_caller_its_groups_answer():
    seen, answers = grouped(1, (12, 13, 14))
    assert seen[0] == [1] and sorted(seen[1]) == [12, 13, 14] and len(seen) == 2
    assert answers[1] == 1 and all(isinstance(answers[n], ValueError) for n in (12, 13, 14))


def test_after_a_poison_write_each_caller_of_the_group_commits_alone():
    """The attack: one request writing to a key of the wrong type (a poison write) made
    the concurrent requests grouped with it answer 500 too, uncounted. Told that such an
    error is the items' (`alone`), each caller commits its own, and only 13 is refused."""
    seen, answers = grouped(14, (12, 13, 15), alone=(ValueError,))
    assert seen[0] == [14] and sorted(seen[1]) == [12, 13, 15]
    assert sorted(map(tuple, seen[2:])) == [(12,), (13,), (15,)]  # then each by itself
    assert (answers[14], answers[12], answers[15]) == (14, 12, 15)
    assert isinstance(answers[13], ValueError)


def test_concurrent_counts_grouped_with_a_poison_one_still_count(redis_client, now):
    """On a real store: a key planted with the wrong type poisons the counts that write
    to it; the counts grouped with them (any of 40 concurrent ones) are not refused."""
    store = make_store(redis_client, "hw", now)
    redis_client.set(store.keys.children((), ("bad",)), "not a sorted set")
    good = Event((), (("good",), ("good", "x")), {"hits": 1}, {}, now)
    bad = Event((), (("bad",), ("bad", "x")), {"hits": 1}, {}, now)
    refused: list[str] = []

    def count(event: Event) -> None:
        for _ in range(10):
            try:
                store.count([event])
            except PoisonWrite:
                refused.append(event.paths[0][0])

    threads = [threading.Thread(target=count, args=(bad if n % 8 == 0 else good,))
               for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert refused == ["bad"] * 50
    [totals] = store.window_sums([Series((), ("good",), "hits")], 15,
                                 PERIODS.find("15s:3h").window(now))
    assert totals == 350


@pytest.mark.parametrize("raw, number", [
    (None, 0), (b"500", 500), (b"-3", -3), (b"-0", 0), (b"12.25", 12.25), (b"1e+20", 1e20),
    (b"27021597764222979", 27021597764222979), (b"0.1", 0.1), ("7", 7),
])
def test_sums_read_back_as_json_friendly_numbers(raw, number):
    value = to_number(raw)
    assert value == number and type(value) is type(number)


def test_points_are_in_window_order_with_zeros_where_nothing_was_counted(redis_client, now):
    store = make_store(redis_client, "hw", now)
    period = PERIODS.find("15s:3h")
    window = period.window(now)
    store.count([event(window[0] + 1, dollars=1), event(window[-1], dollars=3)])
    [values] = store.points([Series((), ("a",), "dollars")], 15, window)
    assert values[0] == 1 and values[-1] == 3 and not any(values[1:-1])


def test_window_totals_are_one_script_call_per_series_and_reuse_unchanged_chunks(
        redis_client, now):
    store = make_store(redis_client, "hw", now)
    window = PERIODS.find("15s:3h").window(now)
    store.count([event(bucket + 1, dollars=0.1) for bucket in window])
    dollars = [Series((), ("a",), "dollars"), Series((), (), "dollars")]
    chunks = len(window_chunks(window, 15))
    redis_client.script_load(WINDOW_TOTALS.text)  # so that no call is refused as unknown
    before = {name: calls(redis_client, name) for name in ("evalsha", "hvals", "hgetall")}
    first = store.window_sums(dollars, 15, window)
    assert calls(redis_client, "evalsha") - before["evalsha"] == 2
    read = (calls(redis_client, "hvals") + calls(redis_client, "hgetall")
            - before["hvals"] - before["hgetall"])
    assert read == 2 * chunks  # each chunk once, inside the script
    store.count([event(window[-1], dollars=1)])  # changes the last chunk of each
    before = {name: calls(redis_client, name) for name in ("hvals", "hgetall")}
    second = store.window_sums(dollars, 15, window)
    assert [round(b - a, 6) for a, b in zip(first, second)] == [1, 1]
    assert (calls(redis_client, "hvals") + calls(redis_client, "hgetall")
            - before["hvals"] - before["hgetall"]) == 2  # only the changed chunks


def test_unique_points_read_the_counts_hyperloglogs_cache(redis_client, now):
    store = make_store(redis_client, "hw", now)
    window = PERIODS.find("15s:3h").window(now)
    store.count([Event((), (("a",),), {"hits": 1}, {"users": f"u{i}"}, now) for i in range(3)])
    users = [Series((), ("a",), "users", "unique")]
    counted = {name: calls(redis_client, name) for name in ("mget", "exists", "pfcount")}
    for stale in (1, 0):  # the newest bucket's count is stale once, then cached
        [points] = store.points(users, 15, window)
        assert points[-1] == 3 and not any(points[:-1])
        now_counted = {name: calls(redis_client, name) for name in counted}
        assert {name: now_counted[name] - counted[name] for name in counted} == {
            "mget": 1, "exists": 1, "pfcount": stale}
        counted = now_counted
