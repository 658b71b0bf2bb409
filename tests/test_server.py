"""The HTTP server (hailwhale/server.py, granian): request bounds, idle clients dropped,
a graceful SIGTERM, and no Nagle stall on the sockets it accepts."""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hailwhale.processes import alive, free_port
from hailwhale.server import BACKLOG, listen
from tests.servers import command_env, wait_for

# One worker; /slow answers after half a second (a request in flight when SIGTERM comes).
SERVER_APP = """
import sys, time
from hailwhale.server import GranianServer

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(0.5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]

GranianServer(lambda: app, "127.0.0.1", int(sys.argv[1]), 1,
              client_timeout=int(sys.argv[2]) if len(sys.argv) > 2 else 1,
              request_line=1000).run()
"""


def _exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """What the server sends back to `request` until it hangs up or a timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while part := sock.recv(65536):
                answer += part
                if b"\r\n\r\n" in answer and (b"done" in answer or b"}" in answer):
                    break
        except TimeoutError:
            pass
        return answer


def _serves(port: int, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        pytest.fail("the server exited")
    try:
        return b" 200 " in _exchange(port, b"GET / HTTP/1.0\r\n\r\n", timeout=1)
    except OSError:
        return False


@pytest.fixture
def server():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER_APP, str(port)], env=command_env())
    try:
        wait_for(lambda: _serves(port, process), what="the server")
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=20)


def test_a_long_request_line_is_a_414_and_a_long_header_a_431(server):
    port, _ = server
    assert _exchange(port, b"GET /?" + b"a" * 900 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 200 ")
    long_line = _exchange(port, b"GET /?" + b"a" * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert long_line.startswith(b"HTTP/1.1 414 "), long_line[:100]
    assert b'"error":"the request line is over 1000 bytes' in long_line
    long_header = _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 8200
                            + b"\r\n\r\n")
    assert long_header.startswith(b"HTTP/1.1 431 "), long_header[:100]
    # a header on 20 lines of 1 KB each (a proxy adding its own): each line is bounded,
    # not the 20 KB they arrive joined into
    repeated = b"X-Same: " + b"s" * 1000 + b"\r\n"
    assert _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + repeated * 20 + b"\r\n").startswith(
        b"HTTP/1.1 200 ")
    many = b"".join(b"X-%d: 1\r\n" % n for n in range(101))
    assert _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n").startswith(
        b"HTTP/1.1 431 ")


def test_an_idle_keep_alive_connection_is_closed_after_the_client_timeout(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        # kept alive, then idle: hung up after client_timeout (1 s), well before 10 s
        assert sock.recv(65536) == b""
        assert time.monotonic() - answered > 0.5  # not at once: it was kept alive


def test_idle_connections_by_the_thousand_leave_room_for_requests():
    """The attack: 1,100 connections that never sent a byte filled every place a worker
    had (as many as its 512 threads), and each request waited for them to time out (10
    s). A worker holds thousands; this request is answered while they are still open."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER_APP, str(port), "10"],
                               env=command_env())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    idle: list[socket.socket] = []
    try:
        wait_for(lambda: _serves(port, process), what="the server")
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(1100)]
        answer = _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           timeout=5)  # half the client timeout the idle ones have
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        process.kill()
        process.wait(timeout=20)


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(server):
    port, process = server
    answers = []
    slow = threading.Thread(target=lambda: answers.append(
        _exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")))
    slow.start()
    wait_for(lambda: _in_flight(port), what="the slow request to be accepted")
    process.send_signal(signal.SIGTERM)
    slow.join(15)
    assert answers and answers[0].startswith(b"HTTP/1.1 200 ") and b"done" in answers[0]
    assert process.wait(timeout=20) == 0


def _in_flight(port: int) -> bool:
    """Whether a connection to `port` is established (the slow request got in)."""
    wanted = f":{port:04X} "
    with open("/proc/net/tcp") as table:
        return any(wanted in line.split()[1] + " " and line.split()[3] == "01"
                   for line in table.readlines()[1:])


def test_the_listening_socket_refuses_nagle_for_every_accepted_connection():
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.close()
        accepted.close()
    finally:
        sock.close()
    assert BACKLOG >= 1024


def _serving(port: int) -> list[int]:
    """The pids of processes started as the test server on `port` (master and workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and argv[-2:] == [str(port).encode(), b""] and \
                b"GranianServer" in b"".join(argv) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("after", [0.0, 0.01, 0.05])
def test_no_worker_outlives_a_master_killed_while_it_starts(after):
    """The master SIGKILLed `after` s from forking its worker: the worker may not have set
    itself to die with its parent yet; it must still exit, not serve on as an orphan."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER_APP, str(port)], env=command_env())
    wait_for(lambda: len(_serving(port)) > 1, timeout=30, what="the worker to be forked")
    time.sleep(after)
    process.kill()
    process.wait(timeout=20)
    wait_for(lambda: not _serving(port), timeout=10, what="the worker to exit with its master")
