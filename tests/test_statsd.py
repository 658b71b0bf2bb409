"""The StatsD listener (hail/statsd.py) in process, on a real Redis: sockets, buffer, counts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hail.buffer import Buffer
from hail.items import decode
from hail.statsd import StatsdListener
from hail.statsd_counts import line_counts
from hail.statsd_lines import LineReader
from hail.statsd_sockets import MAX_LINE, bind_statsd
from hailwhale.config import Limits, load_config
from hailwhale.events import Event, parse_event
from hailwhale.exceptions import ConfigError
from hailwhale.keys import KeySpace
from hailwhale.periods import DEFAULT_PERIODS, Periods
from hailwhale.processes import free_port
from tests.servers import wait_for

PERIODS = Periods.parse(DEFAULT_PERIODS)
KEYS = KeySpace("sd")


class Listening:
    """A listener on a free port in a thread, its buffer, and how to reach it."""

    def __init__(self, buffer: Buffer):
        self.buffer = buffer
        self.port = free_port()
        self.listener = StatsdListener(buffer, LineReader(PERIODS, Limits()),
                                       bind_statsd("127.0.0.1", self.port), save_every=0.02)
        self.thread = threading.Thread(target=self.listener.run)
        self.thread.start()
        self.started = time.time()

    def udp(self, data: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, ("127.0.0.1", self.port))

    def counts(self, received: int) -> dict:
        """The line counts once `received` lines are counted."""
        return wait_for(lambda: (counts := line_counts(self.buffer.redis, KEYS))
                        and counts["received"] >= received and counts, timeout=10,
                        what=f"{received} lines counted")

    def events(self) -> list[Event]:
        """The buffered events, their time (checked: when they arrived) set to 0."""
        items = self.buffer.redis.lrange(KEYS.buffer(), 0, -1)
        decoded = decode(items, time.time())
        assert not decoded.dead
        assert all(self.started <= event.at <= time.time() for event in decoded.events)
        return [replace(event, at=0) for event in decoded.events]

    def stop(self) -> None:
        self.listener.stop()
        self.thread.join(timeout=10)
        for sock in (self.listener.udp, self.listener.tcp):
            sock.close()


@pytest.fixture
def listening(redis_client: redis.Redis) -> Iterator[Listening]:
    running = Listening(Buffer(redis_client, KEYS))
    yield running
    running.stop()


def expected(**params: object) -> Event:
    """The event /count makes of `params`, its time set to 0."""
    event = parse_event(params, periods=PERIODS, limits=Limits(), now=time.time(),
                        encoded=False)
    return replace(event, at=0)


def test_a_datagram_counts_its_good_lines_and_refuses_its_bad_ones(listening):
    listening.udp(b"a:1|c\ntemperature:21|g\nnot a line\nb:2|ms|#route:home\n")
    counts = listening.counts(4)
    assert counts["accepted"] == 2 and counts["refused"] == 2
    assert counts["refused_by_reason"] == {"malformed": 1, "unsupported": 1, "invalid": 0,
                                           "buffer_full": 0, "unavailable": 0,
                                           "overloaded": 0}
    assert listening.events() == [expected(metrics={"a": 1}),
                                  expected(metrics={"b": 2, "b.count": 1},
                                           dimensions={"route": "home"})]
    listening.udp(b"api-x:1|c\nc:3|c")  # still listening
    counts = listening.counts(6)
    assert counts["accepted"] == 3 and counts["refused_by_reason"]["invalid"] == 1


def test_buffered_lines_are_items_like_counts(listening):
    """The items a /count request pushes and those of the same StatsD line are alike."""
    listening.udp(b"x:5|c|#pk:shop,a:b")
    listening.counts(1)
    [item] = listening.buffer.redis.lrange(KEYS.buffer(), 0, -1)
    head, _, body = item.partition(b" ")
    event = Event.from_json(body)
    assert float(head) == event.at  # received when it arrived
    assert replace(event, at=0) == expected(pk="shop", dimensions={"a": "b"},
                                            metrics={"x": 5})


def test_tcp_lines_span_reads_and_the_last_one_needs_no_newline(listening):
    with socket.create_connection(("127.0.0.1", listening.port)) as tcp:
        tcp.sendall(b"a:1|c\nb:")
        time.sleep(0.05)  # two reads for one line (no timing is asserted)
        tcp.sendall(b"2|c\r\n\nc:3|ms")
    counts = listening.counts(3)
    assert counts["accepted"] == 3
    assert listening.events() == [expected(metrics={"a": 1}), expected(metrics={"b": 2}),
                                  expected(metrics={"c": 3, "c.count": 1})]


def test_an_over_long_tcp_line_is_dropped_whole(listening):
    with socket.create_connection(("127.0.0.1", listening.port)) as tcp:
        tcp.sendall(b"a:1|c\n" + b"x" * (MAX_LINE + 10))
        tcp.sendall(b"y:1|c" * 100)  # the rest of that line, however it looks
        tcp.sendall(b"\nb:2|c\n")
    counts = listening.counts(3)
    # Over MAX_LINE before its newline came, it is malformed; read whole in one chunk, the
    # parser refuses it: one refused line either way.
    assert counts["accepted"] == 2 and counts["refused"] == 1
    assert listening.events() == [expected(metrics={"a": 1}), expected(metrics={"b": 2})]


def test_udp_and_tcp_share_the_port_and_many_clients_count_exactly(listening):
    def client(n: int) -> None:
        with socket.create_connection(("127.0.0.1", listening.port)) as tcp:
            tcp.sendall(b"".join(b"t:1|c\n" for _ in range(100)))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for _ in range(10):
                udp.sendto(b"\n".join([b"u:1|c"] * 10), ("127.0.0.1", listening.port))
                time.sleep(0.001)  # loopback drops nothing at this pace

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = listening.counts(1600)
    assert counts == {"received": 1600, "accepted": 1600, "refused": 0,
                      "refused_by_reason": counts["refused_by_reason"]}
    names = [next(iter(set(event.sums) - {"hits"})) for event in listening.events()]
    assert names.count("t") == 800 and names.count("u") == 800


def test_a_full_buffer_refuses_the_lines_and_the_listener_goes_on(redis_client):
    full = Listening(Buffer(redis_client, KEYS, max_events=3))
    try:
        full.udp(b"a:1|c\na:1|c\na:1|c")
        assert full.counts(3)["accepted"] == 3  # the buffer holds its maximum
        full.udp(b"b:1|c\nb:1|c")  # one push: all or none
        counts = full.counts(5)
        assert counts["accepted"] == 3 and counts["refused_by_reason"]["buffer_full"] == 2
        redis_client.delete(KEYS.buffer())  # as a flusher would drain it
        full.udp(b"c:1|c")
        assert full.counts(6)["accepted"] == 4
        assert full.events() == [expected(metrics={"c": 1})]
    finally:
        full.stop()


def test_a_buffer_that_does_not_answer_refuses_the_lines_and_keeps_their_counts(tmp_path):
    gone = redis.Redis(unix_socket_path=str(tmp_path / "nobody.sock"),
                       retry=Retry(NoBackoff(), 1))  # as hailwhale.wsgi.statsd_listener
    down = Listening(Buffer(gone, KEYS))
    try:
        down.udp(b"a:1|c\nb:1|c")
        wait_for(lambda: down.listener.counts.pending["refused:unavailable"] == 2,
                 what="the lines refused")
        down.udp(b"c:1|c")
        wait_for(lambda: down.listener.counts.pending["refused:unavailable"] == 3,
                 what="the listener to go on")
    finally:
        down.stop()


def test_no_listener_no_counts(redis_client):
    assert line_counts(redis_client, KEYS) is None
    assert "statsd" not in Buffer(redis_client, KEYS).stats(time.time())


def test_the_buffer_health_shows_the_lines(listening):
    listening.udp(b"a:1|c\nb:1|g")
    listening.counts(2)
    stats = listening.buffer.stats(time.time())
    assert stats["statsd"]["received"] == 2 and stats["statsd"]["refused"] == 1


def test_a_taken_port_is_an_error_and_binds_nothing():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            bind_statsd("127.0.0.1", port)
    with socket.socket() as taken:  # TCP taken, UDP free: the UDP socket is let go
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            bind_statsd("127.0.0.1", port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))


def test_the_udp_socket_asks_for_the_receive_buffer_configured():
    """HAILWHALE_STATSD_RECEIVE_BUFFER: bytes asked of the kernel (which shows them
    doubled); 0 keeps the system's default, as Etsy's StatsD does."""
    default = int(Path("/proc/sys/net/core/rmem_default").read_text())
    for asked, shown in ((0, default), (96 * 1024, 2 * 96 * 1024)):
        udp, tcp = bind_statsd("127.0.0.1", free_port(), receive_buffer=asked)
        try:
            assert udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == shown
        finally:
            udp.close()
            tcp.close()


def test_a_receive_buffer_past_what_the_kernel_takes_is_a_config_error():
    with pytest.raises(ConfigError, match="statsd_receive_buffer must be at most 2147483647"):
        load_config({"HAILWHALE_STATSD_RECEIVE_BUFFER": "99999999999"})
    assert load_config({"HAILWHALE_STATSD_RECEIVE_BUFFER": "2147483647"}
                       ).statsd_receive_buffer == 2**31 - 1


class StalledBuffer(Buffer):
    """A buffer whose pushes wait until `go` is set: Redis busy with a long script."""

    go, waiting = threading.Event(), threading.Event()

    def push_items(self, items) -> None:
        self.waiting.set()
        self.go.wait(10)
        super().push_items(items)


def test_lines_wait_in_memory_while_the_buffer_is_slow_then_are_refused_counted(
        redis_client, monkeypatch):
    monkeypatch.setattr("hail.statsd.MAX_QUEUED", 40)  # bytes
    stalled = Listening(StalledBuffer(redis_client, KEYS))
    try:
        stalled.udp(b"a:1|c")  # taken by the pusher, which waits
        assert StalledBuffer.waiting.wait(10)
        listener = stalled.listener
        for n in range(1, 11):  # 12 bytes each (a newline added): 3 wait, 7 overflow
            stalled.udp(b"b:1|c\nb:1|c")
            wait_for(lambda n=n: listener._queued // 12
                     + listener.counts.pending["refused:overloaded"] // 2 == n,
                     what="the datagram to be read")
        StalledBuffer.go.set()
        counts = stalled.counts(21)
        assert counts["accepted"] == 1 + 6
        assert counts["refused_by_reason"]["overloaded"] == 14
    finally:
        StalledBuffer.go.set()
        stalled.stop()


# -- hostile input (an attack review found each of these) ---------------------------------

def test_a_value_padded_with_thousands_of_zeros_counts_and_never_stops_the_listener(listening):
    # int() refuses 4300 digits, zeros included: this stopped the pushing thread.
    listening.udp(b"zz:" + b"0" * 5000 + b"1|c")
    listening.udp(b"zz:" + b"9" * 5000 + b"|c")
    counts = listening.counts(received=2)
    assert (counts["accepted"], counts["refused_by_reason"]["invalid"]) == (1, 1)
    listening.udp(b"after:1|c")
    assert listening.counts(received=3)["accepted"] == 2
    sums = [event.sums for event in listening.events()]
    assert sorted(sums, key=sorted) == [{"after": 1, "hits": 1}, {"hits": 1, "zz": 1}]


def test_a_line_the_reader_cannot_read_is_refused_and_the_listener_goes_on(listening,
                                                                          monkeypatch):
    parse = LineReader._parse

    def broken(self, line, now):
        if line.startswith(b"boom"):
            raise RuntimeError("a bug of ours")
        return parse(self, line, now)

    monkeypatch.setattr(LineReader, "_parse", broken)
    listening.udp(b"boom:1|c\nfine:1|c")
    counts = listening.counts(received=2)
    assert (counts["accepted"], counts["refused_by_reason"]["malformed"]) == (1, 1)


def test_a_line_carries_at_most_100_values(listening):
    listening.udp(b"many:" + b":".join([b"1"] * 100) + b"|d")
    listening.udp(b"more:" + b":".join([b"1"] * 101) + b"|d")
    listening.udp(b"ids:" + b":".join(b"u%d" % n for n in range(101)) + b"|s")
    counts = listening.counts(received=3)
    assert (counts["accepted"], counts["refused_by_reason"]["invalid"]) == (1, 2)
    assert len(listening.events()) == 100


def test_pushes_stay_bounded_whatever_the_lines_make(listening, monkeypatch):
    import hail.statsd

    monkeypatch.setattr(hail.statsd, "PUSH_MAX_ITEMS", 150)
    pushed: list[int] = []
    push = listening.buffer.push_items
    monkeypatch.setattr(listening.buffer, "push_items",
                        lambda items: pushed.append(len(items)) or push(items))
    listening.udp(b"\n".join(b"m%d:" % n + b":".join([b"1"] * 100) + b"|d"
                             for n in range(10)))
    assert listening.counts(received=10)["accepted"] == 10
    assert sum(pushed) == 1000 and max(pushed) <= 150


def test_a_failed_pushing_thread_ends_the_listener_for_its_supervisor(redis_client,
                                                                     monkeypatch):
    buffer = Buffer(redis_client, KEYS)

    def broken(items):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(buffer, "push_items", broken)
    port = free_port()
    listener = StatsdListener(buffer, LineReader(PERIODS, Limits()),
                              bind_statsd("127.0.0.1", port), save_every=0.02)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            listener.run()
        except RuntimeError as error:
            failed.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x:1|c", ("127.0.0.1", port))
    thread.join(timeout=10)
    assert not thread.is_alive() and failed  # the process would exit: its supervisor restarts it
    for sock in (listener.udp, listener.tcp):
        sock.close()


def test_past_the_most_connections_the_one_idle_longest_is_closed(listening, monkeypatch):
    import hail.statsd

    monkeypatch.setattr(hail.statsd, "MAX_CONNECTIONS", 3)
    idle = [socket.create_connection(("127.0.0.1", listening.port)) for _ in range(3)]
    idle[0].sendall(b"unfinished:1|c")  # a line without its newline
    time.sleep(0.2)
    for sock in idle[1:]:
        sock.sendall(b"busy:1|c\n")
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", listening.port)) as new:
        new.sendall(b"new:1|c\n")
        counts = listening.counts(received=4)
    assert counts["accepted"] == 3 and counts["refused_by_reason"]["overloaded"] == 1
    assert idle[0].recv(10) == b""  # closed by the listener
    for sock in idle:
        sock.close()
