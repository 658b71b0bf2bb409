"""The HTTP client (hailwhale/client.py) against real `hailwhale serve` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hailwhale import Client, HailWhale
from hailwhale.client import KeyRefused, Unreachable
from hailwhale.embedded import RedisServer
from hailwhale.exceptions import InvalidEvent, InvalidQuery
from hailwhale.processes import free_port
from tests import servers
from tests.servers import Served, command_env, descendants, get, wait_for

WRITE, READ = "write-secret", "read-secret"
FAST = {"max_backoff": 0.2}  # retries in tests: a fraction of a second apart


@pytest.fixture(scope="module")
def whale(tmp_path_factory):
    """One server with keys, on a Redis of its own; each test counts under its own pk."""
    redis = RedisServer(tmp_path_factory.mktemp("client"), persist=False).start()
    served = Served("--redis-url", redis.url, "--flush-interval", "0.05",
                    "--write-key", WRITE, "--read-key", READ)
    served.redis_url = redis.url
    yield served
    _kill(served)
    redis.stop()


@pytest.fixture
def client(whale):
    with Client(whale.url, write_key=WRITE, read_key=READ, **FAST) as client:
        yield client


def applied(url: str) -> None:
    """Wait until the server has counted everything it buffered (POST /flush_hail)."""
    status, _, body = get(url + "/flush_hail", b"", {"Authorization": f"Bearer {WRITE}"})
    assert status == 200, body


def hits(client: Client, pk: str, **query) -> dict:
    """Overall and child totals of `pk` over the 1h:7d window."""
    return client.totals(pk=pk, period="1h:7d", metrics=["hits", "n"], **query)["1h:7d"]


def test_counts_land_exactly_and_queries_answer_as_the_python_api(whale, client):
    for i in range(30):
        client.count(dimensions={"shop": f"p{i % 3}"}, metrics={"n": i}, pk="exact")
    client.log(dimensions={"shop": "p0"}, metrics=["n"], pk="exact")  # the seed's name
    assert client.flush() and client.stats.sent == client.stats.queued == 31
    applied(whale.url)
    totals = hits(client, "exact", dimensions="shop", depth=1, threshold=0)
    assert totals == {"shop": {"hits": 31, "n": sum(range(30)) + 1},
                      '["shop","p0"]': {"hits": 11, "n": sum(range(0, 30, 3)) + 1},
                      '["shop","p1"]': {"hits": 10, "n": sum(range(1, 30, 3))},
                      '["shop","p2"]': {"hits": 10, "n": sum(range(2, 30, 3))}}

    with HailWhale(whale.redis_url) as hw:  # the same store, read directly
        query = dict(pk="exact", dimensions="shop", metrics=["n", "n/hits"], period="1h:7d")
        same = [
            lambda: client.plotpoints(depth=1, **query) == hw.plotpoints(depth=1, **query),
            lambda: client.totals(depth=2, **query) == hw.totals(depth=2, **query),
            lambda: client.totals(**{**query, "period": (3600, 7 * 86400)})
            == hw.totals(**query),
            lambda: client.dimensions(**query) == hw.dimensions(**query),
            lambda: client.dataset("shop", "n", "1d:1y", depth=1, pk="exact")
            == hw.dataset("shop", "n", "1d:1y", depth=1, pk="exact"),
        ]
        for check in same:  # equal once both read within one bucket
            wait_for(check, what="the client's answer to equal the Python API's")
    dataset = client.dataset("shop", "n", "1d:1y", depth=1, pk="exact")
    assert set(dataset) == {"p0", "p1", "p2"}
    when, value = dataset["p1"][-1]
    assert value == sum(range(1, 30, 3)) and when.tzinfo == timezone.utc


def test_a_bad_event_raises_at_count_and_the_good_ones_land(whale, client):
    client.count(dimensions="fine", pk="bad")
    with pytest.raises(InvalidEvent, match="not a finite number"):
        client.count(metrics={"n": "lots"}, pk="bad")
    with pytest.raises(InvalidEvent, match="_other"):
        client.count(dimensions="_other", pk="bad")
    client.count(dimensions="fine", pk="bad")
    assert client.flush()
    assert (client.stats.queued, client.stats.sent, client.stats.refused) == (2, 2, 0)
    applied(whale.url)
    assert hits(client, "bad")["_"]["hits"] == 2


def test_an_event_only_the_server_refuses_is_dropped_alone(whale, caplog):
    # The client allows 3 years back, the server 1: the old event passes count() only.
    with Client(whale.url, WRITE, READ, periods="15s:3h,1d:3y", **FAST) as client:
        client.count(metrics={"n": 1}, pk="alone")
        client.count(metrics={"n": 2}, pk="alone", at=datetime.now() - timedelta(days=700))
        client.count(metrics={"n": 4}, pk="alone")
        assert client.flush()
        assert (client.stats.sent, client.stats.refused, client.stats.retries) == (2, 1, 0)
    assert "refused an event" in caplog.text and "outside the accepted range" in caplog.text
    applied(whale.url)
    with Client(whale.url, read_key=READ) as reader:
        assert hits(reader, "alone")["_"] == {"hits": 2, "n": 5}


def test_keys_are_sent_and_enforced(whale, caplog):
    with Client(whale.url, **FAST) as keyless:
        keyless.count(pk="keys")
        assert keyless.flush()
        assert (keyless.stats.refused, keyless.stats.retries, keyless.stats.sent) == (1, 0, 0)
        assert "write_key" in caplog.text  # logged with what to fix, never raised at the app
        with pytest.raises(KeyRefused, match="read_key") as refused:
            keyless.totals()
        assert refused.value.status == 401
    with Client(whale.url, write_key="wrong", read_key="wrong") as wrong:
        with pytest.raises(KeyRefused, match="not the server's") as refused:
            wrong.plotpoints()
        assert refused.value.status == 403


def test_a_bad_query_raises_what_the_python_api_raises(whale, client):
    with pytest.raises(InvalidQuery, match="configured periods: 15s:3h, 1h:7d") as error:
        client.totals(period="2h:9h")
    assert error.value.param == "period"
    with HailWhale(whale.redis_url) as hw, pytest.raises(InvalidQuery):
        hw.totals(period="2h:9h")
    with pytest.raises(InvalidQuery, match="between 0 and 3"):
        client.plotpoints(depth=9)


def test_no_server_is_an_error_naming_the_url_and_never_blocks_count():
    url = f"http://127.0.0.1:{free_port()}"
    client = Client(url, **FAST)
    with pytest.raises(Unreachable, match=f"no answer from HailWhale at {url}"):
        client.dimensions()
    client.count(pk="nowhere")  # queued: the app goes on
    client.close(timeout=0)  # what close() could not send in time is given up
    assert (client.stats.queued, client.stats.abandoned, client.stats.sent) == (1, 1, 0)
    with pytest.raises(RuntimeError, match="closed"):
        client.count()
    with Client(url, retry_for=0.3, max_backoff=0.1) as brief:  # and what failed too long
        brief.count(pk="nowhere")
        assert brief.flush()
        assert (brief.stats.abandoned, brief.stats.sent) == (1, 0)


def test_a_full_queue_drops_new_events_counted_and_logged(whale, caplog):
    with Client(whale.url, WRITE, READ, queue_size=3, flush_interval=60) as client:
        for n in range(5):
            client.count(metrics={"n": n}, pk="full")  # returns at once, never blocks
        assert (client.stats.queued, client.stats.dropped) == (3, 2)
        assert "queue of events" in caplog.text and "is full (3)" in caplog.text
        assert client.flush() and client.stats.sent == 3
    applied(whale.url)
    with Client(whale.url, read_key=READ) as reader:
        assert hits(reader, "full")["_"] == {"hits": 3, "n": 0 + 1 + 2}


class FlakyProxy(ThreadingHTTPServer):
    """Relays HTTP to `target`; the n-th POST meets `faults[n]` first.

    `503`: answered 503 (Retry-After: 0), not relayed. `drop`: the connection is closed,
    not relayed. `lose`: relayed (the server counts it), then the answer is lost.
    """

    daemon_threads = True

    def __init__(self, target: str, faults: list[str]):
        super().__init__(("127.0.0.1", 0), _Relay)
        self.target, self.faults, self.keys = target, faults, []
        self.url = f"http://127.0.0.1:{self.server_port}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._relay(None)

    def do_POST(self) -> None:
        self._relay(self.rfile.read(int(self.headers["Content-Length"])))

    def _relay(self, body: bytes | None) -> None:
        proxy: FlakyProxy = self.server
        fault = None
        if body is not None:
            proxy.keys.append(self.headers["Idempotency-Key"])
            fault = proxy.faults.pop(0) if proxy.faults else None
        if fault == "503":
            self._answer(503, {"Retry-After": "0"}, b"")
            return
        if fault != "drop":
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            status, answer_headers, answer = get(proxy.target + self.path, body, headers)
        if fault in ("drop", "lose"):
            self.close_connection = True  # no answer at all
            return
        self._answer(status, {"Content-Type": answer_headers["Content-Type"]}, answer)

    def _answer(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_retries_keep_their_key_so_a_lost_answer_counts_once(whale):
    proxy = FlakyProxy(whale.url, ["503", "drop", "lose"])
    try:
        with Client(proxy.url, WRITE, READ, **FAST) as client:
            for n in range(10):
                client.count(metrics={"n": n}, pk="lost")
            assert client.flush()
            assert (client.stats.sent, client.stats.retries) == (10, 3)
            applied(whale.url)
            # the third try was counted, its answer lost; the fourth, same key, was not
            assert hits(client, "lost")["_"] == {"hits": 10, "n": sum(range(10))}
        assert len(proxy.keys) == 4 and len(set(proxy.keys)) == 1
    finally:
        proxy.shutdown()


def _serve_on(port: int, monkeypatch, *args: str) -> Served:
    monkeypatch.setattr(servers, "free_port", lambda: port)
    return Served(*args)


def _kill(served: Served) -> None:
    """SIGKILL a server and every process it started: quicker than a graceful stop, and
    its store is a Redis of the test's, so nothing of it is lost."""
    tree = [served.process.pid]
    while True:  # frozen first, so that no process restarts another meanwhile
        for pid in tree:
            _signal(pid, signal.SIGSTOP)
        found = [served.process.pid, *descendants(served.process.pid)]
        if set(found) <= set(tree):
            break
        tree = found
    for pid in tree:
        _signal(pid, signal.SIGKILL)
    served.stop()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it ended by itself meanwhile


def test_server_killed_and_restarted_nothing_lost_nothing_doubled(redis_url, monkeypatch):
    port = free_port()
    args = ("--redis-url", redis_url, "--flush-interval", "0.05")
    served = _serve_on(port, monkeypatch, *args)
    try:
        with Client(served.url, flush_interval=0.05, **FAST) as client:
            for n in range(50):
                client.count(dimensions="before", metrics={"n": n}, pk="restart")
            assert client.flush()
            _kill(served)
            for n in range(50, 100):
                client.count(dimensions="during", metrics={"n": n}, pk="restart")
            wait_for(lambda: client.stats.retries, what="a send to fail while the server is away")
            served = _serve_on(port, monkeypatch, *args)
            assert client.flush()
            assert (client.stats.sent, client.stats.abandoned) == (100, 0)
            applied(served.url)
            totals = hits(client, "restart", depth=1, threshold=0)
            assert totals == {"_": {"hits": 100, "n": sum(range(100))},
                              "before": {"hits": 50, "n": sum(range(50))},
                              "during": {"hits": 50, "n": sum(range(50, 100))}}
    finally:
        _kill(served)


def _python(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], env=command_env(),
                          capture_output=True, text=True, timeout=30)


EXIT_SCRIPT = """
import sys
from hailwhale import Client
client = Client(sys.argv[1], sys.argv[2], flush_interval=60)  # only exit sends them
for n in (1, 2, 4):
    client.count(metrics={"n": n}, pk="exit")
layers = ("redis", "bottle", "gevent", "whale", "hail")
print(sorted(name for name in sys.modules if name.split(".")[0] in layers))
"""


def test_events_still_queued_at_exit_are_sent(whale):
    done = _python(EXIT_SCRIPT, whale.url, WRITE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # the client runs without Redis, Bottle or the server
    applied(whale.url)
    with Client(whale.url, read_key=READ) as reader:
        assert hits(reader, "exit")["_"] == {"hits": 3, "n": 7}


FORK_SCRIPT = """
import os, sys
from hailwhale import Client
client = Client(sys.argv[1], sys.argv[2], flush_interval=60)
client.count(metrics={"n": 1}, pk="fork")  # queued in the parent, sent by the parent
child = os.fork()
if child == 0:
    client.count(metrics={"n": 10}, pk="fork")
    sys.exit(0)  # the child's exit sends its own event, not the parent's
os.waitpid(child, 0)
"""


def test_a_forked_child_sends_only_its_own_events(whale):
    done = _python(FORK_SCRIPT, whale.url, WRITE)
    assert done.returncode == 0, done.stderr
    applied(whale.url)
    with Client(whale.url, read_key=READ) as reader:
        assert hits(reader, "fork")["_"] == {"hits": 2, "n": 11}


def test_time_ranges_as_the_python_api_takes_them(whale, client):
    client.count(dimensions="ranged", metrics={"n": 1}, pk="range")
    client.count(dimensions="ranged", metrics={"n": 2}, pk="range", at=timedelta(hours=3))
    assert client.flush()
    applied(whale.url)
    with HailWhale(whale.redis_url) as hw:
        query = dict(pk="range", dimensions="ranged", metrics=["n"])
        cases = [  # every spelling of a time the API takes
            ("plotpoints", dict(start_at=timedelta(hours=2))),
            ("totals", dict(start_at=datetime.now() - timedelta(hours=5), end_at="-2h")),
            ("totals", dict(start_at=time.time() - 7200, period=(3600, 7 * 86400))),
            ("dimensions", dict(start_at="-4h", end_at=datetime.now(timezone.utc))),
            ("dataset", dict(start_at=timedelta(days=30), period="1h:7d")),  # the seed's
        ]
        for method, times in cases:
            def same(method=method, times=times):
                args = dict(query, **times)
                if method == "dataset":
                    args = dict(params="ranged", value="n", pk="range", **times)
                return getattr(client, method)(**args) == getattr(hw, method)(**args)
            wait_for(same, what=f"the client's {method} to equal the Python API's")
    assert client.totals(start_at=timedelta(hours=1), **query) == {"15s:3h": {"ranged": {"n": 1}}}
    with pytest.raises(InvalidQuery, match="older than every period keeps") as error:
        client.totals(start_at=timedelta(days=3 * 365))
    assert error.value.param == "from"
