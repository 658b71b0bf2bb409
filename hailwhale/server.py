"""Serve a WSGI app with granian, one worker process per core by default.

Why granian rather than gunicorn's gevent workers (the server until issue 15): in
the same runs on 2 cores, granian served a bare Bottle endpoint at 5-7x the
requests/s of gunicorn + gevent, and Hail's `/count` at 4-5x (README, Performance).
Its HTTP/1 parsing, keep-alive and writes are Rust; each worker runs the app in a
pool of Python threads, and Hail's group commit (hailwhale/group_commit.py) puts
the pushes of concurrent requests in one Redis call. Accepted sockets get
TCP_NODELAY (granian sets it, and the listening socket carries it too), so no
response waits on Nagle's algorithm.

The supervisor binds the port itself (`listen`), so a busy port is one clear error,
and passes the socket down; `answers` tells it when the server serves (its banner
waits for that).
"""

from __future__ import annotations

import http.client
import logging
import os
import resource
import socket
from collections.abc import Callable, Iterable, Sequence

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces, RuntimeModes
from granian.http import HTTP1Settings
from granian.server.mp import MPServer

from hailwhale.processes import die_with_parent

log = logging.getLogger("hailwhale")
GRACEFUL_TIMEOUT = 10  # seconds a stopping worker has to finish its requests
BACKLOG = 2048  # connections waiting to be accepted
# Python threads a worker runs requests in, at most: a client that stalls in its body
# holds one of them until it hangs up, so there are many (idle ones exit after 30 s).
THREADS = 512
# Connections a worker holds open at once, idle ones included (each until its client
# timeout): past this the worker accepts no more, so it is well over THREADS. At 512, 1,100
# idle connections kept every request waiting ~9.5 s (the attack review); each costs a
# socket and a few KiB, and the open-files limit is raised to hold them (_open_files).
CONNECTIONS = 8192
FIELDS = 100  # header fields a request may carry (hyper's own bound: past it, a 431)
FIELD_SIZE = 8190  # bytes of one header line, `Name: value`
# Headers that say a proxy in front spoke HTTPS to the client (gunicorn's defaults).
SECURE_SCHEME_HEADERS = {"HTTP_X_FORWARDED_PROTOCOL": "ssl", "HTTP_X_FORWARDED_PROTO": "https",
                         "HTTP_X_FORWARDED_SSL": "on"}


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host:port` for the HTTP server (OSError if the port is taken)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: a response is never held back by Nagle's algorithm.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def answers(host: str, port: int) -> Callable[[], bool]:
    """A check that the HTTP server on `host:port` answers a request (any status): it serves."""
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)

    def check() -> bool:
        connection = http.client.HTTPConnection(reachable, port, timeout=5)
        try:
            connection.request("GET", "/health")
            connection.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    return check


def _refusal(status: str, message: str, start_response: Callable) -> list[bytes]:
    body = b'{"error":"%s","param":null}' % message.encode()
    start_response(status, [("Content-Type", "application/json; charset=utf-8"),
                            ("Content-Length", str(len(body))), ("Connection", "close")])
    return [body]


class RequestBounds:
    """WSGI middleware: the request line and header bounds, and whose X-Forwarded-* to believe.

    hyper (granian's HTTP) refuses over 100 header fields with a 431 and a request
    target over 64 KiB with a 414; the tighter bounds HailWhale states (a request line
    of `request_line` bytes, a header line of 8190, each line of a header sent on several)
    are checked here, before the app sees anything: a 414 or a 431. A proxy in
    `forwarded_allow_ips` (`*`: any) may say the client spoke HTTPS (X-Forwarded-Proto
    and gunicorn's other two headers); from anyone else those headers are ignored.
    """

    def __init__(self, app: Callable, request_line: int,
                 forwarded_allow_ips: Sequence[str] = ()):
        self.app = app
        self.request_line = request_line
        self.trusted = frozenset(forwarded_allow_ips)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        # METHOD SP target SP HTTP/1.1: the target is path and query as sent, or longer
        line = (len(environ["REQUEST_METHOD"]) + len(environ.get("PATH_INFO", ""))
                + len(environ.get("QUERY_STRING", "")) + 11)
        if line > self.request_line:
            return _refusal("414 URI Too Long", f"the request line is over {self.request_line}"
                            " bytes; send the event in a POST body", start_response)
        for name, value in environ.items():
            # a header sent on several lines arrives joined by commas: each line is bounded
            if (name[:5] == "HTTP_" or name[:8] == "CONTENT_") and \
                    len(name) + len(value) - 3 > FIELD_SIZE and \
                    len(name) + max(map(len, value.split(","))) - 3 > FIELD_SIZE:
                return _refusal("431 Request Header Fields Too Large",
                                f"a header line is over {FIELD_SIZE} bytes", start_response)
        if self.trusted and ("*" in self.trusted or environ.get("REMOTE_ADDR") in self.trusted):
            for header, secure in SECURE_SCHEME_HEADERS.items():
                if environ.get(header, "").lower() == secure:
                    environ["wsgi.url_scheme"] = "https"
        return self.app(environ, start_response)


class _Master(MPServer):
    """granian's master process, serving a socket it inherited (`fd`) rather than binding,
    and telling /metrics when a worker it stopped or replaced is gone."""

    def __init__(self, fd: int | None, **options: object):
        self.inherited = fd
        super().__init__(**options)

    def _init_shared_socket(self) -> None:
        if self.inherited is None:
            super()._init_shared_socket()
            return
        self._ssp, self._sso = None, None
        self._shd = SocketHolder(self.inherited, False, BACKLOG)
        self._sfd = self.inherited

    def _respawn_workers(self, workers, spawn_target, target_loader, delay: float = 0):
        gone = [self.wrks[idx].inner.pid for idx in workers]
        super()._respawn_workers(workers, spawn_target, target_loader, delay)
        _ended(gone)

    def _stop_workers(self) -> None:
        gone = [worker.inner.pid for worker in self.wrks]
        super()._stop_workers()
        _ended(gone)


def _ended(pids: Iterable[int | None]) -> None:
    from whale.metrics import process_ended

    for pid in pids:
        if pid:
            process_ended(pid)  # its figures stay in /metrics; its live gauges go


class GranianServer:
    """granian, configured in code; `app_factory` runs in each worker process.

    It listens on `host:port`, or on the listening socket `fd` it inherited.

    Slow and stalled clients: granian reads each request line and headers in Rust,
    holding no Python thread; a client that takes longer than `client_timeout`
    seconds to send them is dropped, as is a keep-alive connection idle that long. A
    body is read by the app's thread: one trickled byte by byte holds that thread
    (one of up to 512 per worker), not the worker; put nginx in front (README,
    Security and Operations), which buffers bodies before passing them on.

    SIGTERM: the master stops accepting, each worker finishes the requests it has
    (up to GRACEFUL_TIMEOUT seconds), then all exit 0. A worker that dies is replaced.
    """

    def __init__(self, app_factory: Callable, host: str, port: int, workers: int = 0, *,
                 client_timeout: int = 10, request_line: int = 8190,
                 forwarded_allow_ips: Sequence[str] = (), fd: int | None = None):
        self.app_factory = app_factory
        self.master_pid = os.getpid()  # this process serves as granian's master
        self.request_line = request_line
        self.forwarded_allow_ips = tuple(forwarded_allow_ips)
        self.master = _Master(
            fd, target="hailwhale", address=host, port=port, interface=Interfaces.WSGI,
            workers=workers or os.cpu_count() or 1, blocking_threads=THREADS,
            runtime_mode=RuntimeModes.st, http=HTTPModes.http1, backlog=BACKLOG,
            backpressure=CONNECTIONS,
            http1_settings=HTTP1Settings(header_read_timeout=client_timeout * 1000),
            log_enabled=True, log_level="error", log_access=False,  # not its thread-count warning
            respawn_failed_workers=True, workers_kill_timeout=GRACEFUL_TIMEOUT)

    def _worker_app(self, _target: str) -> Callable:
        """The app of one worker: it exits with its master, even a SIGKILLed one (and at
        once if the master died while it started: its parent is then no longer the master)."""
        die_with_parent(self.master_pid)()
        return RequestBounds(self.app_factory(), self.request_line, self.forwarded_allow_ips)

    def run(self) -> None:
        _open_files(CONNECTIONS + 1024)  # the workers inherit it
        self.master.serve(target_loader=self._worker_app)


def _open_files(wanted: int) -> None:
    """Raise this process's soft limit of open files to `wanted`, or as far as the hard
    limit allows (1024 is a common soft limit: a worker could hold ~1,000 connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
