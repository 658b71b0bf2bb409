"""The long-running commands, serve, hail and flush, and the processes they supervise.

`serve` and `hail` are supervisors: they run the embedded Redis (unless a URL is
set), the flusher and the HTTP server as child processes (hailwhale/supervise.py);
with `--http-only`, the command is that HTTP server itself.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hailwhale import __version__
from hailwhale.config import Config
from hailwhale.exceptions import ConfigError

if TYPE_CHECKING:
    from hailwhale.embedded import RedisServer
    from hailwhale.server import GeventServer
    from hailwhale.supervise import Program

log = logging.getLogger("hailwhale")
HAILWHALE = [sys.executable, "-m", "hailwhale.cli"]


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


def http_process(argv: Sequence[str], store: str) -> Program:
    """This very command again, serving HTTP only (gunicorn and its gevent workers)."""
    from hailwhale.server import GRACEFUL_TIMEOUT
    from hailwhale.supervise import Program

    # Replaying the flags (and inheriting the environment) gives the child our config.
    return Program("HTTP server", [*HAILWHALE, *argv, "--http-only", "--redis-url", store],
                   stop_timeout=GRACEFUL_TIMEOUT + 5, fatal_at_start=True)


def _shown(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host


def _http_server(config: Config, app_factory: Callable, port: int) -> GeventServer:
    from hailwhale.server import GeventServer

    if not config.redis_url:  # the supervisor always passes one
        raise ConfigError("--http-only needs --redis-url")
    return GeventServer(app_factory, config.host, port, config.workers,
                        client_timeout=config.client_timeout,
                        request_line=config.limits.request_line,
                        forwarded_allow_ips=config.forwarded_allow_ips)


def _supervise(config: Config, args: argparse.Namespace, argv: Sequence[str],
               buffer_of: Callable[[str], str | None], banner: Callable[..., str]) -> int:
    """Start the embedded Redis (unless a URL is set), the flusher and the HTTP server
    as children; restart any that dies; stop them all on SIGTERM or SIGINT."""
    from hailwhale.embedded import RedisServer
    from hailwhale.supervise import EmbeddedRedis, Supervisor
    from whale.metrics import shared_metrics_dir

    server = None if config.redis_url else RedisServer(config.data_dir)
    url = config.redis_url or server.url
    buffer = buffer_of(url)
    children: list = [EmbeddedRedis(server)] if server else []
    flusher = None
    if buffer is not None and not args.no_flusher:
        flusher = flusher_process(config, url, buffer)
        children.append(flusher)
    children.append(http_process(argv, url))

    def started() -> None:
        store = _described(config, server) if server else f"Redis at {url}"
        flushing = f"flusher pid {flusher.pid}" if flusher else "no flusher here"
        print(banner(store=store, buffer=buffer, flusher=flushing), flush=True)

    with shared_metrics_dir():  # every child's figures in one place, for /metrics
        return Supervisor(children).run(started)


def serve(config: Config, args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Whale: the supervisor, or (`--http-only`, its child) the HTTP server itself."""
    if args.http_only:
        from hailwhale.wsgi import whale_app

        buffer = None if args.no_buffer else (config.hail_url or config.redis_url)
        _http_server(config, lambda: whale_app(config, config.redis_url, buffer),
                     config.port).run()
        return 0

    def banner(store: str, buffer: str | None, flusher: str) -> str:
        counting = f"/count buffered in {buffer}, {flusher}" if buffer else "/count direct"
        return (f"HailWhale {__version__}: dashboard at http://{_shown(config.host)}:"
                f"{config.port}/ (store: {store}; {counting}; "
                f"periods {','.join(config.periods.names)})")

    return _supervise(config, args, argv,
                      lambda url: None if args.no_buffer else config.hail_url or url, banner)


def hail(config: Config, args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Hail: the supervisor, or (`--http-only`, its child) the HTTP server itself."""
    if args.http_only:
        from hailwhale.wsgi import hail_app

        buffer = config.hail_url or config.redis_url
        _http_server(config, lambda: hail_app(config, buffer), config.hail_port).run()
        return 0

    def banner(store: str, buffer: str | None, flusher: str) -> str:
        return (f"HailWhale {__version__}: Hail collecting at http://{_shown(config.host)}:"
                f"{config.hail_port}/count (buffer: {buffer}; store: {store}; {flusher})")

    return _supervise(config, args, argv, lambda url: config.hail_url or url, banner)


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
