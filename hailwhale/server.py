"""Serve a WSGI app with gunicorn's gevent workers, one per core by default.

Why gunicorn rather than gevent's own WSGIServer: pywsgi writes headers and
body in two sends, and on a keep-alive connection Nagle's algorithm plus the
client's delayed ACK stalls every response by ~40 ms (measured: 1.45k req/s
for a bare endpoint). gunicorn sets TCP_NODELAY on its listening socket, which
accepted sockets inherit, and forks a worker per core so both cores serve.

The supervisor binds the port itself (`listen`), so a busy port is one clear error
instead of gunicorn's five retries, and passes the socket down; `answers` tells it
when the server serves (its banner waits for that).
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence

from gunicorn.app.base import BaseApplication

log = logging.getLogger("hailwhale")
GRACEFUL_TIMEOUT = 10  # seconds a stopping worker has to finish its requests
BACKLOG = 2048  # connections waiting to be accepted (gunicorn's default)


def _ignore_interrupts(worker) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_exited(server, worker) -> None:
    from whale.metrics import process_ended

    process_ended(worker.pid)  # its figures stay in /metrics; its live gauges go


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host:port` for the HTTP server (OSError if the port is taken)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
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


class GeventServer(BaseApplication):
    """gunicorn, configured in code; `app_factory` runs in each worker after gevent patches.

    It listens on `host:port`, or on the listening socket `fd` it inherited.

    Slow and stalled clients: each connection is a greenlet (up to 1000 per worker),
    so a client that stalls holds one greenlet, not a worker. One that sends its
    request line and headers slower than `client_timeout` seconds is dropped (gunicorn
    reads them under its keep-alive timeout), as is a keep-alive connection idle that
    long. A body trickled byte by byte is not timed here: put nginx in front
    (README, Security and Operations), which buffers bodies before passing them on.
    """

    def __init__(self, app_factory: Callable, host: str, port: int, workers: int = 0, *,
                 client_timeout: int = 10, request_line: int = 8190,
                 forwarded_allow_ips: Sequence[str] = (), fd: int | None = None):
        self.app_factory = app_factory
        self.options = {
            # A socket the supervisor bound and listens on (`fd`): gunicorn serves it as it
            # is, rather than binding (and retrying a busy port five times, a second apart).
            "bind": f"{host}:{port}" if fd is None else f"fd://{fd}",
            "workers": workers or os.cpu_count() or 1,
            "worker_class": "gevent",
            "worker_connections": 1000,
            "keepalive": client_timeout,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            # A worker whose loop stops (a CPU-bound request) for this long is restarted.
            "timeout": 30,
            # Past these gunicorn answers 414 or 431 itself, before the app sees anything.
            "limit_request_line": request_line,
            "limit_request_fields": 100,
            "limit_request_field_size": 8190,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "hailwhale",
            # Peers whose X-Forwarded-* headers gunicorn believes. gunicorn's own default
            # trusts 127.0.0.1 (or $FORWARDED_ALLOW_IPS); "" is an empty list: nobody.
            "forwarded_allow_ips": ",".join(forwarded_allow_ips),
        }
        # Ctrl-C reaches the whole process group; the master alone should act
        # on it (it stops the workers gracefully), or each worker prints a trace.
        self.options["post_worker_init"] = _ignore_interrupts
        self.options["child_exit"] = _worker_exited
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable:
        return self.app_factory()
