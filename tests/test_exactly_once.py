"""Counting never stops and never doubles: exact sums, all-or-nothing applies, bounded calls,
poison batches set aside, idempotency keys, chunks that survive a period change.

On real redis-servers (the session's, or one a test starts); the HTTP cases run the apps.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hail.app import make_hail_app
from hail.buffer import Buffer
from hail.flusher import Flusher
from hail.items import decode
from hailwhale.config import Config, Limits
from hailwhale.event_fields import MAX_VALUE
from hailwhale.events import parse_batch
from hailwhale.exceptions import InvalidEvent, PoisonWrite
from hailwhale.keys import KeySpace
from hailwhale.periods import Periods
from hailwhale.wsgi import buffering
from tests.hail_helpers import BUFFER_KEYS, PERIODS, dump, make_store, random_events
from tests.servers import HAILWHALE, command_env
from tests.test_access import call
from whale.app import make_app
from whale.reads import Series

HOUR = 3600


@pytest.fixture
def now() -> float:
    return (time.time() // 15) * 15 + 7.5  # mid-bucket


def events_of(batch: list[dict], now: float) -> list:
    return parse_batch(batch, periods=PERIODS, limits=Limits(), now=now)


def total(store, metric: str, now: float, pk=(), path=()) -> object:
    """The window total of one sum series in the 15 s period, as a client reads it."""
    period = store.periods.find(None)
    return sum_points(store.points([Series(pk, path, metric)], period.interval,
                                   period.window(now))[0])


def sum_points(points: list) -> object:
    if all(type(p) is int for p in points):
        return sum(points)
    return float(sum(map(Fraction, points)))


def flushed(redis_client, prefix: str, events: list, now: float, batch_size: int = 5000):
    """`events` pushed as one request and counted by a flusher; the store it counted into."""
    store = make_store(redis_client, prefix, now)
    buffer = Buffer(redis_client, KeySpace(prefix + "buf"))
    buffer.push(events, now)
    assert Flusher(buffer, store, batch_size=batch_size).flush_all() == len(events)
    return store


def direct(redis_client, prefix: str, events: list, now: float):
    store = make_store(redis_client, prefix, now)
    store.count(events)
    return store


# -- 1. values ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", [MAX_VALUE + 1, -MAX_VALUE - 1, 1.7e308, -1e300, 2.0**60])
def test_values_past_2_53_are_refused(value, now):
    with pytest.raises(InvalidEvent) as error:
        events_of([{"metrics": {"x": value}}], now)
    assert error.value.param == "metrics" and "2**53" in error.value.message


def test_the_first_poison_request_is_now_a_400_and_counting_goes_on(redis_client, now):
    """The batch whose sum was inf: answered OK, it stopped all counting. Now a 400."""
    store = make_store(redis_client, "hw", now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    app = make_app(store, Config(), buffering(buffer, Flusher(buffer, store)),
                   clock=lambda: now)
    poison = json.dumps([{"pk": "victim", "metrics": {"n": 1}},
                         {"pk": "evil", "metrics": {"x": 1.7e308}},
                         {"pk": "evil", "metrics": {"x": 1.7e308}}]).encode()
    for path in ("/count", "/count_now"):
        status, _, body = call(app, path, body=poison, method="POST",
                               headers={"Content-Type": "application/json"})
        assert (status, json.loads(body)["param"]) == (400, "metrics")
    assert buffer.depth() == 0 and redis_client.keys("hw:{victim*") == []
    assert call(app, "/count", {"pk": "victim", "metrics": '{"n": 1}'})[0] == 200
    assert json.loads(call(app, "/flush_hail", method="POST")[2]) == {"flushed": 1}
    assert total(store, "n", now, pk=("victim",)) == 1


@pytest.mark.parametrize("amounts, expected", [
    ([0.1] * 1000, 100),
    ([9e15, 1.5, -9e15], 1.5),  # summed naively: 2
    ([MAX_VALUE] * 3, 3 * MAX_VALUE),
    ([0.5, 0.25, 2, 0.25], 3),
])
def test_every_path_sums_exactly_and_integral_totals_are_ints(redis_client, now, amounts,
                                                                expected):
    events = events_of([{"metrics": {"x": a}} for a in amounts], now)
    for store in (flushed(redis_client, "viaflush", events, now),
                  direct(redis_client, "direct", events, now)):
        got = total(store, "x", now)
        assert got == expected and type(got) is type(expected)


_dyadic = st.integers(-2**40, 2**40).map(lambda k: k / 1024)  # exact in 17 decimals
_amount = st.one_of(st.integers(-MAX_VALUE, MAX_VALUE), _dyadic,
                    st.sampled_from([MAX_VALUE, -MAX_VALUE, 0.1, 1e-3, 2.0**52 + 0.5]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(st.sampled_from(["a", "b", "_"]), _amount), min_size=1,
                      max_size=300))
def test_both_paths_give_the_exact_model(redis_client, now, batch):
    """Random batches at the limits: flushed and direct totals are the exact sum, rounded once."""
    redis_client.flushall()
    events = events_of([{"dimensions": d, "metrics": {"x": a}} for d, a in batch], now)
    model: dict[tuple, list] = {}
    for dimension, amount in batch:
        for path in {(), () if dimension == "_" else (dimension,)}:
            model.setdefault(path, []).append(amount)
    for store in (flushed(redis_client, "viaflush", events, now),
                  direct(redis_client, "direct", events, now)):
        for path, amounts in model.items():
            exact = sum(map(Fraction, amounts))
            if all(type(a) is int for a in amounts):
                want = int(exact)
            else:
                want = float(exact)
                want = int(want) if want.is_integer() and abs(want) <= MAX_VALUE else want
            got = total(store, "x", now, path=path)
            assert got == want, (path, amounts)


# -- 2. all or nothing, 4. poison aside -------------------------------------------------

def _plant_in_the_middle(redis_client, store, events, now) -> bytes:
    """A key of the wrong type where one op in the middle of the batch's writes goes."""
    rollup = store.rollup(events, now)
    keys = sorted({key for key, _ in rollup.sums})
    planted = keys[len(keys) // 2]
    redis_client.set(planted, "not a hash")
    return planted.encode()


@pytest.mark.parametrize("piece_args", [None, 200])  # one call, or many pieces
def test_a_poison_batch_goes_aside_whole_and_a_retry_counts_it_once(redis_client, now,
                                                                      piece_args):
    events = random_events(random.Random(3), 120, now)
    store = make_store(redis_client, "buffered", now)
    if piece_args:
        store.piece_args = piece_args
        assert len(store._pieces(store.rollup(events, now))) > 5
    planted = _plant_in_the_middle(redis_client, store, events, now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events, now)
    later = events_of([{"pk": "later", "dimensions": "x"}] * 30, now)  # not on the planted key
    flusher = Flusher(buffer, store, batch_size=120)
    assert flusher.flush_once() == 0  # set aside, not retried
    assert [k for k in redis_client.keys("buffered:*") if b"applied" not in k] == [planted]
    [letter] = buffer.dead_letters()
    assert letter["batch"] and letter["events"] == 120 and "HWPOISON" in letter["reason"]
    assert "not a hash" not in letter["reason"] or planted.decode() in letter["reason"]
    buffer.push(later, now)
    assert flusher.flush_all() == 30  # flushing goes on at once
    stats, problems = buffer.health(now, 60)
    assert stats["dead_letters"] == 1 and problems[-1].startswith("1 dead letters wait")

    redis_client.delete(planted)  # the fix
    assert buffer.revive(letter["id"])
    assert flusher.flush_all() == 120
    assert not buffer.revive(letter["id"]) and buffer.dead_letters() == []
    assert flusher.flush_all() == 0
    counted = make_store(redis_client, "model", now)
    counted.count(events + later)
    assert dump(redis_client, "buffered") == dump(redis_client, "model")


def test_a_poison_direct_count_writes_nothing_and_is_a_500(redis_client, now):
    events = random_events(random.Random(5), 40, now)
    store = make_store(redis_client, "hw", now)
    planted = _plant_in_the_middle(redis_client, store, events, now)
    with pytest.raises(PoisonWrite):
        store.count(events)
    assert redis_client.keys("*") == [planted]
    app = make_app(store, Config(), clock=lambda: now)
    body = json.dumps([{"dimensions": "x"}]).encode()
    assert call(app, "/count_now", body=body, method="POST",
                headers={"Content-Type": "application/json"})[0] == 200
    redis_client.flushall()
    redis_client.hset("hw:{_|x}:metrics", "oops", "x")  # not a hash of the type... but a hash
    redis_client.set("hw:{_|_}:metrics", "a string")
    status, _, answer = call(app, "/count_now", {"dimensions": "x"})
    assert status == 500 and "nothing of it was counted" in json.loads(answer)["error"]
    assert sorted(redis_client.keys("*")) == [b"hw:{_|_}:metrics", b"hw:{_|x}:metrics"]


def test_a_garbage_sum_in_a_field_is_poison_too(redis_client, now):
    store = make_store(redis_client, "hw", now)
    [event] = events_of([{"metrics": {"x": 1}}], now)
    key, bucket = next(iter(store.rollup([event], now).sums))
    redis_client.hset(key, bucket, "garbage")
    with pytest.raises(PoisonWrite, match="not a number"):
        store.count([event])
    assert redis_client.keys("*") == [key.encode()]


# -- 3. bounded calls ---------------------------------------------------------------------

def test_the_second_poison_request_is_split_into_bounded_calls(redis_client, now):
    """100 events of 32 dimensions and 31 metrics: over 1,048,576 arguments as one call."""
    batch = [{"dimensions": {f"d{d}": f"e{e}" for d in range(32)},
              "metrics": {f"m{m}": 1 for m in range(31)}} for e in range(100)]
    store = flushed_in_pieces(redis_client, events_of(batch, now), now)
    assert total(store, "m7", now, path=("d3",)) == 100
    assert total(store, "hits", now, path=("d3", "e42")) == 1


def flushed_in_pieces(redis_client, events: list, now: float):
    """`events` flushed as one batch, checking that it took over 1,048,576 arguments in all
    and that no one call held more than the bound."""
    store = make_store(redis_client, "buffered", now)
    sizes: list[int] = []
    run = store._run

    def measured(calls, *args, **kwargs):
        if kwargs.get("mode", "write") == "write":
            sizes.extend(len(keys) + len(args_) for _, keys, args_ in calls)
        return run(calls, *args, **kwargs)

    store._run = measured
    buffer = Buffer(redis_client, KeySpace("buffered-buf"))
    for start in range(0, len(events), 1000):
        buffer.push(events[start:start + 1000], now)
    assert Flusher(buffer, store, batch_size=5000).flush_all() == len(events)
    assert sum(sizes) > 1_048_576 and max(sizes) <= store.piece_args + 2
    return store


def test_a_batch_of_5000_pks_with_21_metrics_flushes(redis_client, now):
    batch = [{"pk": f"pk{n}", "metrics": {f"m{m}": 1 for m in range(21)}} for n in range(5000)]
    events = [e for start in range(0, 5000, 1000)
              for e in events_of(batch[start:start + 1000], now)]
    store = flushed_in_pieces(redis_client, events, now)
    assert total(store, "m20", now, pk=("pk4999",)) == 1
    assert len(store.pks()) == 5000


def test_the_buffer_is_bounded_in_bytes(redis_client, now):
    buffer = Buffer(redis_client, BUFFER_KEYS, max_bytes=2000, retry_after=2)
    app = make_hail_app(buffer, Config(), clock=lambda: now)
    sent = 0
    while (answer := call(app, "/count", {"dimensions": "x" * 150}))[0] == 200:
        sent += 1
    status, headers, body = answer
    assert (status, headers["Retry-After"]) == (503, "2") and 0 < sent < 20
    assert buffer.stats(now)["bytes"] <= 2000
    assert buffer.claim(1000, now) is not None  # draining frees room
    assert call(app, "/count", {"dimensions": "x"})[0] == 200


def test_a_claim_is_bounded_in_bytes(redis_client, now):
    buffer = Buffer(redis_client, BUFFER_KEYS, batch_bytes=1000)
    buffer.push_items([f"{now!r} " + "x" * 300] * 10)
    sizes = []
    while (batch := buffer.claim(100, now)) is not None:
        sizes.append(len(batch.items))
    assert sizes == [3, 3, 3, 1]
    assert buffer.stats(now)["bytes"] == 0


# -- 5. idempotency keys ------------------------------------------------------------------

def test_an_idempotency_key_counts_once_across_hail_nodes_and_the_direct_path(
        redis_client, now):
    store = make_store(redis_client, "hw", now)
    nodes = [Buffer(redis_client, KeySpace("node1")), Buffer(redis_client, KeySpace("node2"))]
    whale = make_app(store, Config(), clock=lambda: now)
    hails = [make_hail_app(node, Config(), clock=lambda: now) for node in nodes]
    request = {"dimensions": "paid", "metrics": '{"dollars": 5}'}
    key = {"Idempotency-Key": "order-42"}
    for hail in hails:
        assert call(hail, "/count", request, headers=key)[0] == 200
        assert call(hail, "/count.gif", {**request, "idempotency_key": "order-42"})[0] == 200
    assert call(whale, "/count_now", request, headers=key)[0] == 200
    assert call(whale, "/count_now", request, headers=key)[0] == 200
    for node in nodes:
        Flusher(node, store).flush_all()
    assert total(store, "dollars", now, path=("paid",)) == 5
    assert call(whale, "/count_now", request, headers={"Idempotency-Key": "order-43"})[0] == 200
    assert total(store, "dollars", now, path=("paid",)) == 10
    assert 0 < redis_client.ttl("hw:idem:order-42") <= Config().idempotency_window


def test_a_refused_request_does_not_use_up_its_key(redis_client, now):
    store = make_store(redis_client, "hw", now)
    app = make_app(store, Config(), clock=lambda: now)
    key = {"Idempotency-Key": "k1"}
    assert call(app, "/count_now", {"dimensions": "a", "metrics": '{"x": "y"}'},
                headers=key)[0] == 400
    assert call(app, "/count_now", {"dimensions": "a"}, headers=key)[0] == 200
    assert total(store, "hits", now, path=("a",)) == 1


@pytest.mark.parametrize("headers, params, param", [
    ({"Idempotency-Key": ""}, {}, "Idempotency-Key"),
    ({"Idempotency-Key": "x" * 201}, {}, "Idempotency-Key"),
    ({}, {"idempotency_key": "caf\u00e9"}, "idempotency_key"),
    ({"Idempotency-Key": "a"}, {"idempotency_key": "b"}, "idempotency_key"),
])
def test_bad_idempotency_keys_are_400s(redis_client, now, headers, params, param):
    app = make_app(make_store(redis_client, "hw", now), Config(), clock=lambda: now)
    status, _, body = call(app, "/count_now", {"dimensions": "a", **params}, headers=headers)
    assert (status, json.loads(body)["param"]) == (400, param)
    assert redis_client.keys("*") == []


def test_a_retry_after_a_timeout_counts_once(redis_client, now):
    """The write landed but the answer was lost: the retry with the same key is a no-op."""
    store = make_store(redis_client, "hw", now)
    events = events_of([{"dimensions": "a", "metrics": {"n": 3}}], now)
    real_run = store._run

    def lost_answer(*args, **kwargs):
        real_run(*args, **kwargs)
        raise TimeoutError("the answer never came")

    store._run = lost_answer
    with pytest.raises(TimeoutError):
        store.count_once(events, "retry-me", 60)
    store._run = real_run
    assert not store.count_once(events, "retry-me", 60)
    assert total(store, "n", now, path=("a",)) == 3


# -- 8. period changes ----------------------------------------------------------------------

def test_a_longer_period_reads_every_bucket_stored_before(redis_client, redis_url, now):
    def run(*args: str) -> str:
        done = subprocess.run([*HAILWHALE, *args, "--redis-url", redis_url], env=command_env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    for hours_ago in (0, 2):
        at = str(time.time() - hours_ago * HOUR)
        run("count", "-d", "kept", "-m", '{"n": 2}', "--at", at, "--periods", "15s:3h")
    totals = json.loads(run("query", "totals", "--json", "-d", "kept", "-m", "n",
                            "--periods", "15s:6h,1h:7d", "--period", "15s:6h"))
    assert totals == {"15s:6h": {"kept": {"n": 4}}}
    store = make_store(redis_client, "hw", now)
    store.periods = Periods.parse("15s:30m")
    assert total(store, "n", time.time(), path=("kept",)) == 2  # the last 30 minutes


def test_the_dead_letters_command_lists_retries_and_drops(redis_client, redis_url, now):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*HAILWHALE, "dead-letters", *args, "--redis-url", redis_url],
                              env=command_env(), capture_output=True, text=True, timeout=60)

    events = events_of([{"dimensions": f"d{n % 5}"} for n in range(50)], time.time())
    store = make_store(redis_client, "hw", time.time())
    # the overall series, which both batches write
    planted = next(key for key, _ in store.rollup(events, time.time()).sums
                   if key.startswith("hw:{_|_}:15:hits:"))
    redis_client.set(planted, "not a hash")
    buffer = Buffer(redis_client, KeySpace("hw"))
    for start in (0, 25):
        buffer.push(events[start:start + 25], time.time())
        Flusher(buffer, store, batch_size=25).flush_once()
    listed = run("list")
    assert listed.returncode == 0 and listed.stdout.count("batch of 25 items") == 2
    assert "is a string, not a hash" in listed.stdout
    first, second = (json.loads(line)["id"] for line in run("list", "--json").stdout.split("\n")
                     if line)
    again = run("retry", first)
    assert again.returncode == 1 and "set aside again" in again.stdout  # not fixed yet
    redis_client.delete(planted)
    retried = run("retry", first)
    assert retried.returncode == 0 and "applied, 25 events counted" in retried.stdout
    assert run("retry", first).returncode == 2  # gone: nothing to retry twice
    dropped = run("drop", "--all")
    assert dropped.returncode == 0 and f"{second}: dropped" in dropped.stdout
    assert run("list").stdout.strip() == "no dead letters"
    counted = make_store(redis_client, "model", time.time())
    counted.count(events[:25])
    redis_client.delete(*redis_client.keys("hw:{hail}:*"), *redis_client.keys("hw:idem:*"))
    assert dump(redis_client, "hw") == dump(redis_client, "model")


def test_a_request_writing_too_many_series_is_a_400(redis_client, now):
    """Four worst-case events are 200k series: the request, not the flusher, refuses them."""
    from tests.test_event_memory import worst_event

    app = make_app(make_store(redis_client, "hw", now), Config(), clock=lambda: now)
    body = json.dumps([worst_event()] * 4, ensure_ascii=False).encode()
    status, _, answer = call(app, "/count_now", body=body, method="POST",
                             headers={"Content-Type": "application/json"})
    assert (status, json.loads(answer)["param"]) == (400, "batch")
    assert "205920 series, over the 200000" in json.loads(answer)["error"]
    assert redis_client.keys("*") == []


def test_a_batch_over_the_series_of_one_part_is_written_in_parts_each_once(
        redis_client, now, monkeypatch):
    monkeypatch.setattr("hail.flusher.GROUP_SERIES", 500)
    events = random_events(random.Random(12), 200, now)
    store = make_store(redis_client, "buffered", now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events, now)
    batch = buffer.claim(1000, now)
    flusher = Flusher(buffer, store)
    assert flusher._apply(batch.id, decode(batch.items, now), now) == 200
    assert len(redis_client.keys(f"buffered:applied:{batch.id}*")) > 3  # a marker a part
    assert flusher._apply(batch.id, decode(batch.items, now), now) == 0  # a retry: nothing
    counted = make_store(redis_client, "model", now)
    counted.count(events)
    assert dump(redis_client, "buffered") == dump(redis_client, "model")


def test_a_keyed_request_retried_after_its_window_still_counts_once(redis_client, now):
    """The batch is retried after the key's window: its own markers still say it was applied."""
    store = make_store(redis_client, "hw", now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    events = events_of([{"dimensions": "k", "metrics": {"n": 1}}], now)
    buffer.push(events, now, "K1")
    batch = buffer.claim(10, now)
    flusher = Flusher(buffer, store, idempotency_window=1)
    assert flusher._apply(batch.id, decode(batch.items, now), now) == 1
    redis_client.delete("hw:idem:K1")  # as if the window had passed
    assert flusher._apply(batch.id, decode(batch.items, now), now) == 0
    assert total(store, "n", now, path=("k",)) == 1
    # and the direct path, within the key's window again, skips it as well
    assert not store.count_once(events, "K1", 60)
    assert total(store, "n", now, path=("k",)) == 1


def test_a_wrong_type_key_the_guard_reads_is_poison_too(redis_client, now):
    """The guard reads indexes before any write: a refusal there sets the batch aside too,
    and the direct path answers 500, not a 503 that invites retries that cannot succeed."""
    redis_client.set("hw:{poisonpk|_}:metrics", "planted")
    store = make_store(redis_client, "hw", now)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events_of([{"pk": "poisonpk", "metrics": {"n": 1}}], now), now)
    buffer.push(events_of([{"pk": "victim", "metrics": {"n": 1}}], now), now)
    flusher = Flusher(buffer, store, batch_size=1)
    assert flusher.flush_all() == 1
    [letter] = buffer.dead_letters()
    assert "WRONGTYPE" in letter["reason"]
    assert total(store, "n", now, pk=("victim",)) == 1
    app = make_app(store, Config(), clock=lambda: now)
    status, _, _ = call(app, "/count_now", {"pk": "poisonpk"})
    assert status == 500
