"""The Hail buffer on a real Redis: all-or-nothing pushes, refusal when full, stats."""

from __future__ import annotations

import random
import threading
from itertools import chain

import pytest

from hail.buffer import Buffer, FlushStats
from hailwhale.exceptions import BufferFull
from hailwhale.keys import KeySpace
from tests.hail_helpers import BUFFER_KEYS, random_events

NOW = 1_700_000_000.0


@pytest.fixture
def events():
    return random_events(random.Random(1), 5, NOW)


def test_push_appends_every_event_with_its_receive_time(redis_client, events):
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events, NOW)
    buffer.push(events[:2], NOW + 1)
    assert buffer.depth() == 7
    assert redis_client.lindex("buf:{hail}:buffer", 0) == f"{NOW!r} {events[0].to_json()}".encode()
    assert buffer.stats(NOW + 10)["oldest_age_seconds"] == 10


def test_full_buffer_refuses_the_whole_request_and_appends_nothing(redis_client, events):
    buffer = Buffer(redis_client, BUFFER_KEYS, max_events=3, retry_after=2)
    buffer.push(events[:2], NOW)
    buffer.push(events[:2], NOW)  # under the limit when it came: all of it is taken
    with pytest.raises(BufferFull) as refused:
        buffer.push(events, NOW)
    assert refused.value.retry_after == 2
    assert buffer.depth() == 4


def test_claim_and_release_move_thousands_of_items_in_one_call(redis_client):
    buffer = Buffer(redis_client, BUFFER_KEYS)
    items = [f"{NOW!r} item{i}" for i in range(2500)]  # more than Lua's unpack() takes
    buffer.push_items(items)
    batch = buffer.claim(3000, NOW)
    assert [item.decode() for item in batch.items] == items
    assert (buffer.depth(), buffer.in_flight(), buffer.items(batch.id)) == (0, [batch.id],
                                                                             batch.items)
    assert buffer.claim(3000, NOW) is None
    dead = [f'"{i}"' for i in range(2500)]
    assert buffer.release(batch.id, dead, FlushStats(NOW, 0, 0.5))
    assert not buffer.release(batch.id, dead)  # once only: no second set of dead letters
    assert (buffer.in_flight(), buffer.items(batch.id)) == ([], [])
    assert buffer.stats(NOW)["dead_letters"] == 2500


def test_stats_of_an_empty_buffer(redis_client):
    assert Buffer(redis_client, BUFFER_KEYS).stats(NOW) == {
        "depth": 0, "bytes": 0, "oldest_age_seconds": None, "in_flight": 0,
        "last_flush": None, "dead_letters": 0, "last_flusher_beat_age_seconds": None,
    }


def test_stats_count_in_flight_batches_and_show_the_last_flush(redis_client, events):
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events[:2], NOW)
    buffer.push(events[2:], NOW + 5)
    first = buffer.claim(2, NOW + 6)
    stats = buffer.stats(NOW + 10)
    assert (stats["depth"], stats["in_flight"], stats["oldest_age_seconds"]) == (3, 1, 10)
    buffer.release(first.id, [], FlushStats(NOW + 11, 2, 0.25))
    stats = buffer.stats(NOW + 12)
    assert stats["oldest_age_seconds"] == 7
    assert stats["last_flush"] == {"time": NOW + 11, "events": 2, "seconds": 0.25}


def test_in_flight_lists_batches_claimed_before_a_time(redis_client, events):
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events, NOW)
    old, new = buffer.claim(2, NOW), buffer.claim(2, NOW + 60)
    assert buffer.in_flight() == [old.id, new.id]
    assert buffer.in_flight(claimed_before=NOW + 30) == [old.id]


def test_buffers_of_different_names_are_apart(redis_client, events):
    one, two = Buffer(redis_client, BUFFER_KEYS), Buffer(redis_client, BUFFER_KEYS, name="b:2")
    one.push(events, NOW)
    assert (one.depth(), two.depth()) == (5, 0)
    assert two.list_key == "buf:{b%3A2}:buffer"


def test_a_push_after_redis_closed_the_quiet_connection_goes_through(redis_client, events,
                                                                     monkeypatch):
    """The attack: Redis closes a connection idle past its `timeout` setting (or on CLIENT
    KILL, or a restart), and the pusher's own connection then failed the next push: a 503
    while Redis was up. After a quiet spell (QUIET; 0 here) it is checked first."""
    monkeypatch.setattr("hail.buffer.QUIET", 0.0)
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push(events[:1], NOW)
    assert redis_client.client_kill_filter(_id=buffer._pusher.client_id()) == 1
    buffer.push(events[1:2], NOW)
    assert buffer.depth() == 2


def test_requests_pushed_together_are_each_taken_as_if_alone(redis_client, events):
    """The attack: concurrent pushes share one call (a group commit), and the script
    checked the bound once for the call, so 100 requests of 1,000 events filled a buffer
    of 30,000 to 37,000. Each request is now taken, in order, only if the buffer held
    fewer than max_events when its turn came: 5 requests of 3 into a buffer of 7."""
    buffer = Buffer(redis_client, BUFFER_KEYS, max_events=7)
    items = [[f"{NOW!r} r{n}e{i}".encode() for i in range(3)] for n in range(5)]
    assert buffer._push_now(items) == [True, True, True, False, False]  # 0, 3, 6 < 7
    assert buffer.depth() == 9
    assert buffer.stats(NOW)["bytes"] == sum(map(len, chain(*items[:3])))
    assert buffer._push_now(items[:1]) == [False]
    # by bytes too: a request past max_bytes is refused, and so are those after it in
    # the same call (the first is taken whole, even past the bound, into an empty list)
    roomy = Buffer(redis_client, KeySpace("bytes"), max_bytes=100)
    big = [[b"x" * 120], [b"y" * 60], [b"z" * 30]]
    assert roomy._push_now(big) == [True, False, False]


def test_concurrent_requests_stay_within_the_bound_by_one_request(redis_client):
    buffer = Buffer(redis_client, BUFFER_KEYS, max_events=1000)
    request = [f"{NOW!r} e{i}".encode() for i in range(100)]
    refused: list[int] = []

    def push() -> None:
        for _ in range(4):
            try:
                buffer.push_items(request)
            except BufferFull:
                refused.append(1)

    threads = [threading.Thread(target=push) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert buffer.depth() == 1000 and len(refused) == 100 - 10
