"""`hailwhale serve` supervises: children restarted when they die, a borrowed Redis left running.

Real processes throughout. The supervisor's children are found by their command
lines (tests/servers.py `Served.child`): `redis-server`, `hailwhale.cli flush`
and `--http-only` (granian's master, whose workers are its own children).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator

import pytest

from hailwhale.supervise import Supervisor
from tests.servers import (
    HAILWHALE,
    Served,
    alive,
    children,
    command_env,
    descendants,
    get,
    wait_for,
)


def hailwhale(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*HAILWHALE, *args], cwd=cwd, env=command_env(),
                          capture_output=True, text=True, timeout=60)


def counted(served: Served, dimension: str) -> int | None:
    """Hits counted under `dimension` over the last day (0 if none; None on a 503)."""
    query = urllib.parse.urlencode({"dimensions": dimension, "period": "1d:1y"})
    status, _, body = get(f"{served.url}/totals?{query}")
    if status == 503:
        return None
    assert status == 200, body
    return json.loads(body)["1d:1y"].get(dimension, {}).get("hits", 0)


def health(served: Served) -> int:
    try:
        return get(f"{served.url}/health", timeout=5)[0]
    except OSError:  # the HTTP server is restarting
        return 0


def answered(url: str, data: bytes | None = None, retry: bool = False) -> int:
    """The status of one request; with `retry`, of the first that is not a 503."""
    if not retry:
        return get(url, data)[0]
    return wait_for(lambda: (status := get(url, data)[0]) != 503 and status,
                    what=f"{url} to answer")


def count_and_read(served: Served, dimension: str, expected: int, retry: bool = False) -> None:
    """One /count, then it is readable after /flush_hail; /plotpoints answers too.

    `retry`: after a restart, a 503 is retried as a client would (a 503 counted nothing):
    a worker's connection from before a Redis restart fails once, and the workers of a
    killed master finish their requests while they stop.
    """
    assert answered(f"{served.url}/count?dimensions={dimension}", retry=retry) == 200
    assert answered(f"{served.url}/flush_hail", b"", retry=retry) == 200
    if retry:
        wait_for(lambda: counted(served, dimension) == expected, what=f"{expected} counted")
    else:
        assert counted(served, dimension) == expected
    assert get(f"{served.url}/plotpoints?dimensions={dimension}&period=15s:3h")[0] == 200


BORROWER = """
from hailwhale import HailWhale
hw = HailWhale()
hw.count(dimensions="borrowed", metrics={"n": 1})
hw.close()
HailWhale().count(dimensions="borrowed")  # never closed: exits through atexit
"""


def test_borrowers_use_the_servers_embedded_redis_and_leave_it_running(tmp_path):
    served = Served(cwd=tmp_path)
    redis_pid = served.child("redis-server")
    assert redis_pid
    count_and_read(served, "borrowed", 1)

    done = hailwhale("query", "totals", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    count_and_read(served, "borrowed", 2)

    done = hailwhale("count", "-m", "x", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    count_and_read(served, "borrowed", 3)

    done = subprocess.run([sys.executable, "-c", BORROWER], cwd=tmp_path,
                          env=command_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    count_and_read(served, "borrowed", 3 + 2 + 1)

    second = Served(cwd=tmp_path)
    count_and_read(second, "borrowed", 7)
    assert "embedded Redis (running" in second.stop()
    count_and_read(served, "borrowed", 8)

    # Nobody stopped it (a stopped one would have been restarted, with a new pid).
    assert served.child("redis-server") == redis_pid
    totals = json.loads(get(f"{served.url}/totals?metrics=x&period=1d:1y")[2])
    assert totals["1d:1y"]["_"]["x"] == 1

    # Its owner stops it, with everything else, quietly.
    family = descendants(served.process.pid)
    assert len(family) >= 5  # Redis, flusher, granian's master and 2 workers
    printed = served.stop(signal.SIGTERM)
    assert served.process.returncode == 0
    assert not [pid for pid in family if alive(pid)]
    assert "Traceback" not in printed and "supervisor:" not in printed
    assert "embedded Redis (started" in printed  # the banner


def test_a_server_that_borrowed_redis_starts_its_own_when_the_owner_stops(tmp_path):
    owner = Served(cwd=tmp_path)
    with Served(cwd=tmp_path) as borrower:
        assert borrower.child("redis-server") is None  # it uses the owner's
        owner.stop()
        wait_for(lambda: borrower.child("redis-server"), what="the borrower's own Redis")
        wait_for(lambda: health(borrower) == 200, timeout=20, what="/health to answer 200")
        count_and_read(borrower, "taken-over", 1, retry=True)


@pytest.fixture(scope="module")
def supervised(tmp_path_factory) -> Iterator[Served]:
    """One `hailwhale serve` on its embedded Redis; each test leaves it healthy."""
    with Served("--flush-interval", "0.1", cwd=tmp_path_factory.mktemp("supervised")) as served:
        yield served


def test_a_sigkilled_flusher_is_restarted_and_flushes_by_itself(supervised):
    flusher = supervised.child("hailwhale.cli flush")
    assert flusher
    os.kill(flusher, signal.SIGKILL)
    wait_for(lambda: supervised.child("hailwhale.cli flush") not in (None, flusher),
             what="a new flusher")
    assert get(f"{supervised.url}/count?dimensions=after-flusher")[0] == 200
    wait_for(lambda: counted(supervised, "after-flusher") == 1, what="the event to be flushed")
    assert "restarted the flusher" in supervised.printed


def test_a_sigkilled_embedded_redis_is_restarted(supervised):
    redis_pid = supervised.child("redis-server")
    # Paused, the supervisor cannot restart Redis before we have seen it down.
    os.kill(supervised.process.pid, signal.SIGSTOP)
    try:
        os.kill(redis_pid, signal.SIGKILL)
        wait_for(lambda: health(supervised) == 503, what="/health to answer 503")
    finally:
        os.kill(supervised.process.pid, signal.SIGCONT)
    wait_for(lambda: health(supervised) == 200, timeout=20, what="/health to answer 200")
    assert supervised.child("redis-server") not in (None, redis_pid)
    count_and_read(supervised, "after-redis", 1, retry=True)
    assert answered(f"{supervised.url}/count?dimensions=flushed-after-redis", retry=True) == 200
    wait_for(lambda: counted(supervised, "flushed-after-redis") == 1,
             what="the flusher to flush")
    assert "restarted the embedded Redis" in supervised.printed


def test_a_sigkilled_http_server_is_restarted(supervised):
    master = supervised.child("--http-only")
    workers = children(master)
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: supervised.child("--http-only") not in (None, master),
             what="a new HTTP server")
    # Its workers follow it (each checks its parent every second), so what answers next
    # is the new server.
    wait_for(lambda: not [pid for pid in workers if alive(pid)], what="the old workers to go")
    wait_for(lambda: health(supervised) == 200, timeout=20, what="/health to answer 200")
    count_and_read(supervised, "after-http", 1, retry=True)
    assert "restarted the HTTP server" in supervised.printed


def test_nothing_outlives_a_sigkilled_supervisor(tmp_path):
    served = Served(cwd=tmp_path)
    family = descendants(served.process.pid)
    served.process.kill()
    served.process.wait()
    wait_for(lambda: not [pid for pid in family if alive(pid)], timeout=20,
             what=f"the children of a killed supervisor ({family}) to go")


def test_a_port_in_use_ends_serve_instead_of_restarting_forever(redis_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*HAILWHALE, "serve", "--port", str(port), "--no-buffer",
                               "--redis-url", redis_url, "--workers", "1"],
                              env=command_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in done.stderr  # said once, before starting


class FakeChild:
    """A child that records what the supervisor does with it."""

    def __init__(self, name: str, journal: list[str]):
        self.name, self.journal = name, journal
        self.fatal_at_start, self.exit_status, self.pid = False, None, 1
        self.up = False

    def start(self) -> None:
        self.journal.append(f"start {self.name}")
        self.up = True

    def running(self) -> bool:
        return self.up

    def ended(self) -> str:
        return "ended"

    def stop(self) -> None:
        self.journal.append(f"stop {self.name}")
        self.up = False


def test_children_start_in_order_and_stop_in_reverse_on_sigterm():
    journal: list[str] = []
    children = [FakeChild(name, journal) for name in ("redis", "flusher", "http")]
    status = Supervisor(children).run(lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert status == 0
    assert journal == ["start redis", "start flusher", "start http",
                       "stop http", "stop flusher", "stop redis"]


class Flaky(FakeChild):
    """Dies at once after each of its first three starts; stays up after the fourth."""

    starts = 0

    def start(self) -> None:
        super().start()
        self.starts += 1
        if self.starts == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    def running(self) -> bool:
        return self.starts >= 4


def test_a_dead_child_is_restarted_with_doubling_backoff(caplog):
    journal: list[str] = []
    with caplog.at_level("WARNING", logger="hailwhale"):
        assert Supervisor([Flaky("flaky", journal)]).run() == 0
    delays = [record.args[-1] for record in caplog.records
              if record.getMessage().startswith("supervisor: the flaky (pid")]
    assert delays == pytest.approx([0.1, 0.2, 0.4])
    assert journal == ["start flaky"] * 4 + ["stop flaky"]


def test_a_stopped_flusher_turns_health_degraded_and_back(tmp_path):
    """SIGSTOP the flusher: /health says degraded (no flusher alive, then the lag); SIGCONT:
    ok again, and what waited is counted."""
    with Served("--flush-interval", "0.1", cwd=tmp_path, HAILWHALE_HEALTH_MAX_LAG="2") as served:
        flusher = served.child("hailwhale.cli flush")
        os.kill(flusher, signal.SIGSTOP)
        try:
            assert get(f"{served.url}/count?dimensions=waiting")[0] == 200

            def problems() -> list[str]:
                status, _, body = get(f"{served.url}/health")
                answer = json.loads(body)
                return status == 503 and answer["status"] == "degraded" and answer["problems"]

            found = wait_for(lambda: len(problems() or []) == 2 and problems(), timeout=15,
                             what="/health degraded")
            assert found[0].startswith("the oldest buffered event is")
            assert found[1].startswith("no flusher is alive")
            assert "waiting" not in json.dumps(found)  # names no dimension
        finally:
            os.kill(flusher, signal.SIGCONT)
        wait_for(lambda: get(f"{served.url}/health")[0] == 200, timeout=15, what="/health ok")
        _, _, body = get(f"{served.url}/totals?dimensions=waiting&period=15s:3h")
        assert json.loads(body)["15s:3h"]["waiting"]["hits"] == 1
