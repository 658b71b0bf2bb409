"""Failures at the process level, each against real servers.

Covered elsewhere, at the library level: a flusher killed at each step
(tests/test_flusher.py::test_a_flusher_killed_at_any_step_loses_and_doubles_nothing),
the store down then back under a running flusher
(test_a_store_down_for_a_while_delays_counts_and_loses_none), and the embedded
store's data kept across a clean stop of `hailwhale serve`
(tests/test_cli.py::test_serve_starts_the_embedded_redis_and_keeps_its_data).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from hailwhale import HailWhale
from hailwhale.embedded import RedisServer
from tests.servers import Served, get
from whale.reads import Series


def wait_for(condition: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.02)


def count_url(base: str, dimensions: object, n: int = 1) -> str:
    query = urllib.parse.urlencode({"dimensions": json.dumps(dimensions),
                                    "metrics": json.dumps({"n": n})})
    return f"{base}/count?{query}"


class Load:
    """Client threads sending `/count` until stopped; each event its own child dimension.

    An event is acknowledged when it got `200 OK`; one whose request failed in any
    other way (an error, a reset) is `unsure`: it may or may not have been buffered.
    """

    def __init__(self, url: str, clients: int, keyed: bool = False):
        self.address = urllib.parse.urlsplit(url).netloc
        self.clients = clients
        self.keyed = keyed  # retry each event with its Idempotency-Key until it is OK
        self.acknowledged: list[set[str]] = [set() for _ in range(clients)]
        self.unsure: list[set[str]] = [set() for _ in range(clients)]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(c,), daemon=True)
                        for c in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    @property
    def total(self) -> int:
        return sum(map(len, self.acknowledged))

    def _client(self, client: int) -> None:
        if self.keyed:
            return self._retrying_client(client)
        connection = http.client.HTTPConnection(self.address, timeout=10)
        seq = 0
        while not self.stop.is_set():
            event = f"e{seq}"
            seq += 1
            query = urllib.parse.urlencode({"dimensions": json.dumps([f"c{client}", event])})
            try:
                connection.request("GET", f"/count?{query}")
                answer = connection.getresponse()
                body = answer.read()
            except (OSError, http.client.HTTPException):
                self.unsure[client].add(event)
                connection.close()
                time.sleep(0.01)  # the server is going away: do not spin
                continue
            (self.acknowledged if (answer.status, body) == (200, b"OK") else
             self.unsure)[client].add(event)  # a 503 buffered nothing, but stay strict


    def _retrying_client(self, client: int) -> None:
        """What the README tells clients to do: same key, backoff, until OK."""
        seq = 0
        while not self.stop.is_set():
            event = f"e{seq}"
            seq += 1
            query = urllib.parse.urlencode({"dimensions": json.dumps([f"c{client}", event])})
            headers = {"Idempotency-Key": f"c{client}-{event}"}
            delay = 0.01
            while True:
                connection = http.client.HTTPConnection(self.address, timeout=5)
                try:
                    connection.request("GET", f"/count?{query}", headers=headers)
                    answer = connection.getresponse()
                    if (answer.status, answer.read()) == (200, b"OK"):
                        break
                except (OSError, http.client.HTTPException):
                    pass
                finally:
                    connection.close()
                time.sleep(delay)
                delay = min(delay * 2, 0.3)
            self.acknowledged[client].add(event)


def counted_events(data: Path, client: int) -> dict[str, object]:
    """Each event of one load client -> its hits, read from the store itself (every child:
    a query answer lists at most 100)."""
    hw = HailWhale(f"unix://{data}/redis.sock")
    try:
        period = hw.store.periods.find("15s:3h")
        window = period.window(time.time())
        children = hw.store.children((), (f"c{client}",), 0)
        series = [Series((), (f"c{client}", child), "hits") for child in children]
        points = hw.store.points(series, period.interval, window)
        return {child: sum(values) for child, values in zip(children, points)}
    finally:
        hw.close()


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def sigkill_all_but_redis(served: Served, data: Path) -> None:
    """SIGKILL `hailwhale serve` and every process under it but its embedded Redis, which
    gets SIGTERM from the kernel as its parent dies and saves; wait until all are gone."""
    master = served.process.pid
    doomed = [pid for pid in [*_children_of(master),
                              *(c for p in _children_of(master) for c in _children_of(p))]
              if "redis-server" not in Path(f"/proc/{pid}/cmdline").read_text()]
    for pid in [master, *doomed]:
        os.kill(pid, signal.SIGKILL)
    served.process.wait(10)
    wait_for(lambda: not any(map(_alive, doomed)), what="the workers and flusher to die")
    redis_pid = int((data / "redis.pid").read_text()) if (data / "redis.pid").exists() else 0
    wait_for(lambda: not _alive(redis_pid), what="the embedded redis-server to stop")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_store_killed_and_restarted_while_hail_keeps_accepting(tmp_path):
    store = RedisServer(tmp_path / "store", extra_config={"appendfsync": "always"}).start()
    try:
        with RedisServer(tmp_path / "buffer", persist=False) as buffer, \
                Served("--redis-url", store.url, "--hail-url", buffer.url,
                       "--flush-interval", "0.05", command="hail") as hail:
            hw = HailWhale(store.url)

            def overall() -> dict:
                return hw.totals(metrics=["hits", "n"], period="15s:3h")["15s:3h"]["_"]

            for i in range(40):
                assert get(count_url(hail.url, ["before", f"e{i}"], i))[:3:2] == (200, b"OK")
            wait_for(lambda: overall()["hits"] == 40, what="the first 40 counted")
            store.kill()
            for i in range(40, 100):
                assert get(count_url(hail.url, ["during", f"e{i}"], i))[:3:2] == (200, b"OK")
            status, _, body = get(f"{hail.url}/health")
            assert status == 200 and json.loads(body)["depth"] + json.loads(body)["in_flight"]
            store.start()
            wait_for(lambda: overall()["hits"] == 100, what="all 100 counted after recovery")
            health = lambda: json.loads(get(f"{hail.url}/health")[2])  # noqa: E731
            wait_for(lambda: health()["depth"] == health()["in_flight"] == 0, what="drained")
            assert overall() == {"hits": 100, "n": sum(range(100))}
            during = hw.dimensions("during", period="15s:3h", threshold=0, limit=0)["children"]
            assert len(during) == 60 and {c["totals"]["hits"] for c in during} == {1}
            hw.close()
    finally:
        store.stop()


def test_buffer_down_is_a_quick_503_and_hail_recovers_by_itself(tmp_path, redis_url):
    buffer = RedisServer(tmp_path / "buffer", persist=False).start()
    try:
        with Served("--redis-url", redis_url, "--hail-url", buffer.url, "--no-flusher",
                    command="hail") as hail:
            assert get(count_url(hail.url, "a"))[0] == 200
            buffer.kill()
            for _ in range(5):
                started = time.monotonic()
                status, headers, body = get(count_url(hail.url, "a"), timeout=5)
                assert status == 503 and time.monotonic() - started < 1.0
                assert json.loads(body)["error"] == "the buffer is unavailable; try again shortly"
            status, _, body = get(f"{hail.url}/health")
            assert (status, json.loads(body)["status"]) == (503, "error")
            buffer.start()
            wait_for(lambda: get(count_url(hail.url, "a"))[0] == 200, what="recovery")
            # up again: only degraded, for the flusher this test runs none of
            status, _, body = get(f"{hail.url}/health")
            assert (status, json.loads(body)["status"]) == (503, "degraded")
    finally:
        buffer.stop()


def test_sigkill_mid_load_then_restart_counts_every_acknowledged_event_once(tmp_path):
    """`hailwhale serve` on its embedded store, SIGKILLed (master, workers, flusher) mid-load.

    An OK means the event is in the buffer in Redis; the embedded redis-server is
    another program, which gets SIGTERM when HailWhale dies and saves as it stops.
    """
    data = tmp_path / "data"
    served = Served("--data-dir", str(data), "--flush-interval", "0.05", cwd=tmp_path)
    with Load(served.url, clients=6) as load:
        wait_for(lambda: load.total >= 400, what="400 acknowledged events")
        sigkill_all_but_redis(served, data)

    with Served(cwd=tmp_path, HAILWHALE_DATA_DIR=str(data)) as restarted:
        assert get(f"{restarted.url}/flush_hail", b"")[0] == 200
        for client in range(load.clients):
            counted = counted_events(data, client)
            acknowledged, unsure = load.acknowledged[client], load.unsure[client]
            assert set(counted.values()) <= {1}, "an event was counted twice"
            assert acknowledged <= set(counted), "an acknowledged event was lost"
            assert set(counted) <= acknowledged | unsure
        status, _, body = get(f"{restarted.url}/totals?period=15s:3h")
        total = json.loads(body)["15s:3h"]["_"]["hits"]
        # Requests cut off by the kill may have been buffered without their OK reaching
        # the client: at most one per client.
        assert load.total <= total <= load.total + load.clients
        print(f"acknowledged {load.total}, counted {total}, "
              f"cut off {sum(map(len, load.unsure))}")


def test_sigkill_mid_load_with_retrying_clients_counts_exactly_what_was_sent(tmp_path):
    """The same kill, with clients that retry each event under its Idempotency-Key until it
    is OK, through the kill and the restart: counted exactly the events sent, each once."""
    data = tmp_path / "data"
    served = Served("--data-dir", str(data), "--flush-interval", "0.05", cwd=tmp_path)
    with Load(served.url, clients=6, keyed=True) as load:
        wait_for(lambda: load.total >= 200, what="200 acknowledged events")
        sigkill_all_but_redis(served, data)
        restarted = Served(cwd=tmp_path, HAILWHALE_DATA_DIR=str(data))
        load.address = urllib.parse.urlsplit(restarted.url).netloc
        before = load.total
        wait_for(lambda: load.total >= before + 60, what="60 more events after the restart")
    try:
        assert get(f"{restarted.url}/flush_hail", b"")[0] == 200
        for client in range(load.clients):
            counted = counted_events(data, client)
            assert counted == dict.fromkeys(load.acknowledged[client], 1)
        _, _, body = get(f"{restarted.url}/totals?period=15s:3h")
        assert json.loads(body)["15s:3h"]["_"]["hits"] == load.total
        print(f"sent and counted exactly {load.total} events across a SIGKILL")
    finally:
        restarted.stop()


@pytest.fixture
def whale_with_short_client_timeout(redis_url):
    with Served("--redis-url", redis_url, "--no-buffer", HAILWHALE_CLIENT_TIMEOUT="2") as served:
        yield served


def test_stalled_clients_hold_no_worker_and_are_dropped(whale_with_short_client_timeout):
    served = whale_with_short_client_timeout
    address = ("127.0.0.1", served.port)
    half_headers, half_bodies = [], []
    for _ in range(50):  # 2 workers, 50 clients that never finish their headers
        sock = socket.create_connection(address)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        half_headers.append(sock)
    for _ in range(10):  # and 10 that never finish their body
        sock = socket.create_connection(address)
        sock.sendall(b"POST /count_now HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\ndimens")
        half_bodies.append(sock)
    try:
        started = time.monotonic()
        for i in range(20):
            status, _, body = get(count_url(served.url, "fine").replace("/count", "/count_now"),
                                  timeout=5)
            assert status == 200, body
        assert get(f"{served.url}/totals?dimensions=fine&period=15s:3h")[0] == 200
        assert time.monotonic() - started < 5  # ~20 ms on an idle machine
        for sock in half_headers:  # the server hangs up after the client timeout
            sock.settimeout(15)
            assert sock.recv(1024) == b""
    finally:
        for sock in half_headers + half_bodies:
            sock.close()
