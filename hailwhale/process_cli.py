"""The long-running commands, serve, hail and flush, and the processes they supervise.

`serve` and `hail` are supervisors: they bind their ports (HTTP, and StatsD's UDP and
TCP with `--statsd-port`), then run the embedded Redis (unless a URL is set), the
flusher, the HTTP server and the StatsD listeners as child processes
(hailwhale/supervise.py); with `--http-only` or `--statsd-only` and the sockets it
inherits (`--listen-fds`), the command is that HTTP server or listener itself.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hailwhale import __version__
from hailwhale.config import ENV_VARS, Config
from hailwhale.exceptions import ConfigError

if TYPE_CHECKING:
    from hailwhale.embedded import RedisServer
    from hailwhale.server import GranianServer
    from hailwhale.supervise import Program

log = logging.getLogger("hailwhale")
# This very program for a child; `-P` (Python 3.11+): not the working directory first on
# sys.path, where an old checkout's hailwhale/ would be imported instead of this one.
HAILWHALE = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m",
             "hailwhale.cli"]


@contextmanager
def store_url(config: Config) -> Iterator[tuple[str, str]]:
    """The store URL and how to describe it; starts the embedded Redis if none is set.

    An embedded Redis found running is used and left running: only the process
    that started it stops it (see hailwhale.embedded).
    """
    from hailwhale.embedded import RedisServer

    if config.redis_url:
        yield config.redis_url, f"Redis at {config.redis_url}"
        return
    server = RedisServer(config.data_dir).start()
    try:
        yield server.url, _described(config, server)
    finally:
        server.stop()


def _described(config: Config, server: RedisServer) -> str:
    how = "running" if server.adopted else "started"
    return f"embedded Redis ({how}, data in {config.data_dir}/, {server.url})"


def _flusher_flags(config: Config, store: str, buffer: str) -> list[str]:
    return ["--redis-url", store, "--hail-url", buffer,
            "--periods", ",".join(config.periods.names), "--key-prefix", config.key_prefix,
            "--flush-interval", str(config.flush_interval),
            "--flush-batch", str(config.flush_batch)]


def flusher_process(config: Config, store: str, buffer: str) -> Program:
    """`hailwhale flush` from `buffer` into `store`, as a child for the supervisor."""
    from hailwhale.supervise import Program

    return Program("flusher", [*HAILWHALE, "flush", *_flusher_flags(config, store, buffer)])


def http_process(argv: Sequence[str], store: str, listening: socket.socket) -> Program:
    """This very command again, serving HTTP only (granian and its worker processes)."""
    from hailwhale.server import GRACEFUL_TIMEOUT
    from hailwhale.supervise import Program

    # Replaying the flags (and inheriting the environment) gives the child our config.
    fd = listening.fileno()
    return Program("HTTP server", [*HAILWHALE, *argv, "--http-only", "--redis-url", store,
                                   "--listen-fds", str(fd)],
                   stop_timeout=GRACEFUL_TIMEOUT + 5, fatal_at_start=True, pass_fds=[fd])


def statsd_processes(argv: Sequence[str], store: str,
                     sockets: Sequence[socket.socket]) -> list[Program]:
    """This very command again, as StatsD listeners on `sockets`: one per core, up to 4.

    They share the sockets: the kernel hands each datagram and connection to one of
    them. (More would wait on each other: Redis takes their pushes one at a time.)
    """
    from hailwhale.supervise import Program

    fds = [sock.fileno() for sock in sockets]
    argv = [*HAILWHALE, *argv, "--statsd-only", "--redis-url", store,
            "--listen-fds", ",".join(map(str, fds))]
    count = min(os.cpu_count() or 1, 4)
    return [Program(f"StatsD listener {n}" if count > 1 else "StatsD listener", argv,
                    fatal_at_start=True, pass_fds=fds) for n in range(1, count + 1)]


def _bind(config: Config, port: int, port_how: str) -> list[socket.socket]:
    """The HTTP server's listening socket, then StatsD's UDP and TCP sockets if asked
    for; ConfigError naming the port that is taken and how to pick another."""
    from hail.statsd_sockets import bind_statsd
    from hailwhale.server import listen

    try:
        http_socket = listen(config.host, port)
    except OSError as error:
        raise _unusable("HTTP", config.host, port, error, port_how) from None
    if not config.statsd_port:
        return [http_socket]
    try:
        return [http_socket, *bind_statsd(config.host, config.statsd_port,
                                          config.statsd_receive_buffer)]
    except OSError as error:
        http_socket.close()
        raise _unusable("StatsD (UDP and TCP)", config.host, config.statsd_port, error,
                        f"--statsd-port or {ENV_VARS['statsd_port']}") from None


def _unusable(what: str, host: str, port: int, error: OSError, how: str) -> ConfigError:
    if error.errno == errno.EADDRINUSE:
        problem = "is taken (another program, or another hailwhale, listens there)"
    elif error.errno == errno.EACCES:
        problem = "needs privileges (ports below 1024 do)"
    else:
        problem = f"cannot be used: {error.strerror or error}"
    return ConfigError(f"the {what} port {port} on {host} {problem}; pick another with {how}")


def _shown(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host


def _inherited(args: argparse.Namespace, what: str) -> list[int]:
    """The sockets (file descriptors) the supervisor passed down with `--listen-fds`."""
    if not args.listen_fds or not args.redis_url:  # the supervisor always passes both
        raise ConfigError(f"{what} needs --listen-fds and --redis-url (it is the child of "
                          "`hailwhale serve` or `hailwhale hail`; run those)")
    try:
        return [int(fd) for fd in args.listen_fds.split(",")]
    except ValueError:
        raise ConfigError(f"--listen-fds takes file descriptors, not {args.listen_fds!r}") \
            from None


def _http_server(config: Config, args: argparse.Namespace, app_factory: Callable,
                 port: int) -> GranianServer:
    from hailwhale.server import GranianServer

    fd = _inherited(args, "--http-only")[0]
    return GranianServer(app_factory, config.host, port, config.workers,
                        client_timeout=config.client_timeout,
                        request_line=config.limits.request_line,
                        forwarded_allow_ips=config.forwarded_allow_ips, fd=fd)


def _statsd_listener(config: Config, args: argparse.Namespace, buffer: str) -> int:
    """Listen for StatsD lines on the inherited sockets until SIGTERM or SIGINT."""
    from hailwhale.wsgi import statsd_listener

    sockets = [socket.socket(fileno=fd) for fd in _inherited(args, "--statsd-only")]
    listener = statsd_listener(config, buffer, sockets)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: listener.stop())
    listener.run()
    return 0


def _supervise(config: Config, args: argparse.Namespace, argv: Sequence[str],
               buffer_of: Callable[[str], str | None], banner: Callable[..., str],
               port: int, port_how: str) -> int:
    """Bind the ports, then start the embedded Redis (unless a URL is set), the flusher,
    the HTTP server and the StatsD listeners as children; restart any that dies; stop
    them all on SIGTERM or SIGINT."""
    from hailwhale.embedded import RedisServer
    from hailwhale.server import answers
    from hailwhale.supervise import EmbeddedRedis, Supervisor
    from whale.metrics import shared_metrics_dir

    server = None if config.redis_url else RedisServer(config.data_dir)
    url = config.redis_url or server.url
    buffer = buffer_of(url)
    if config.statsd_port and buffer is None:
        raise ConfigError("--statsd-port buffers its lines for a flusher; drop --no-buffer")
    if config.statsd_port == port:
        raise ConfigError(f"--statsd-port and the HTTP port are both {port}; pick two")
    # Ports first: a busy one ends the command here, before anything started.
    listening = _bind(config, port, port_how)
    statsd = listening[1:]
    try:
        children: list = [EmbeddedRedis(server)] if server else []
        flusher = None
        if buffer is not None and not args.no_flusher:
            flusher = flusher_process(config, url, buffer)
            children.append(flusher)
        children.append(http_process(argv, url, listening[0]))
        listeners = statsd_processes(argv, url, statsd) if statsd else []
        children += listeners

        def started() -> None:
            store = _described(config, server) if server else f"Redis at {url}"
            flushing = f"flusher pid {flusher.pid}" if flusher else "no flusher here"
            lines = (f"; StatsD on UDP and TCP port {config.statsd_port}, {len(listeners)} "
                     f"listener{'s' if len(listeners) > 1 else ''}" if listeners else "")
            print(banner(store=store, buffer=buffer, flusher=flushing, statsd=lines),
                  flush=True)

        with shared_metrics_dir():  # every child's figures in one place, for /metrics
            bound = listening[0].getsockname()[1]  # `port`, unless 0 asked for any free one
            return Supervisor(children).run(started, ready=answers(config.host, bound))
    finally:
        for sock in listening:
            sock.close()


def serve(config: Config, args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Whale: the supervisor, or (`--http-only`, `--statsd-only`: its children) the HTTP
    server or a StatsD listener itself."""
    buffered = None if args.no_buffer else config.hail_url or config.redis_url
    if args.http_only:
        from hailwhale.wsgi import whale_app

        _http_server(config, args, lambda: whale_app(config, config.redis_url, buffered),
                     config.port).run()
        return 0
    if args.statsd_only:
        return _statsd_listener(config, args, buffered)

    def banner(store: str, buffer: str | None, flusher: str, statsd: str) -> str:
        counting = f"/count buffered in {buffer}, {flusher}" if buffer else "/count direct"
        return (f"HailWhale {__version__}: dashboard at http://{_shown(config.host)}:"
                f"{config.port}/ (store: {store}; {counting}{statsd}; "
                f"periods {','.join(config.periods.names)})")

    return _supervise(config, args, argv,
                      lambda url: None if args.no_buffer else config.hail_url or url, banner,
                      config.port, f"--port or {ENV_VARS['port']}")


def hail(config: Config, args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Hail: the supervisor, or (`--http-only`, `--statsd-only`: its children) the HTTP
    server or a StatsD listener itself."""
    buffered = config.hail_url or config.redis_url
    if args.http_only:
        from hailwhale.wsgi import hail_app

        _http_server(config, args, lambda: hail_app(config, buffered), config.hail_port).run()
        return 0
    if args.statsd_only:
        return _statsd_listener(config, args, buffered)

    def banner(store: str, buffer: str | None, flusher: str, statsd: str) -> str:
        return (f"HailWhale {__version__}: Hail collecting at http://{_shown(config.host)}:"
                f"{config.hail_port}/count (buffer: {buffer}; store: {store}; {flusher}"
                f"{statsd})")

    return _supervise(config, args, argv, lambda url: config.hail_url or url, banner,
                      config.hail_port, f"--port or {ENV_VARS['hail_port']}")


def flush(config: Config) -> None:
    from hailwhale.wsgi import buffer_for, flusher_for, store_for

    with store_url(config) as (url, described):
        buffer = config.hail_url or url
        flusher = flusher_for(config, store_for(config, url), buffer_for(config, buffer))
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        log.info("flusher: %s -> store %s, every %s s or %d events", buffer, described,
                 config.flush_interval, config.flush_batch)
        flusher.run(interval=config.flush_interval, trigger=config.flush_batch, stop=stop)
        log.info("flusher: stopped")
