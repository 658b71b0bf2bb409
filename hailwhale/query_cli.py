"""The one-shot commands count and query: on the store, or on a server over HTTP.

Without `--url`, they open the store (an embedded Redis unless a URL is set) with
the Python API; with `--url` (or HAILWHALE_URL), they talk to a running server
through hailwhale/client.py. `query` prints tables for people
(hailwhale/cli_output.py), `--json` the answer for scripts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from hailwhale.cli_output import TABLES
from hailwhale.config import Config
from hailwhale.exceptions import InvalidInput
from hailwhale.process_cli import store_url
from hailwhale.values import decode_value

URL_VAR = "HAILWHALE_URL"
COUNT_RETRY_FOR = 5.0  # seconds `count --url` retries a server that does not answer


def _hailwhale(config: Config, url: str):
    from hailwhale.api import HailWhale
    from whale.connect import client

    return HailWhale(redis=client(url), periods=config.periods,
                     key_prefix=config.key_prefix, limits=config.limits)


def server_url(args: argparse.Namespace) -> str | None:
    """The server `count` and `query` talk to over HTTP: --url, or HAILWHALE_URL unless
    --redis-url says to use a store; None: use the store."""
    if args.url and args.redis_url:
        raise InvalidInput("url", "--url talks to a server, --redis-url to its store: "
                                  "give one of them")
    return args.url or (None if args.redis_url else os.environ.get(URL_VAR) or None)


def count(config: Config, args: argparse.Namespace) -> int:
    params = {name: getattr(args, name) for name in ("pk", "dimensions", "metrics", "at")}
    url = server_url(args)
    if url is not None:
        return _count_on(url, config, params)
    with store_url(config) as (store, _):
        hw = _hailwhale(config, store)
        hw.store.count([hw.event(encoded=True, **params)])
    print("OK")
    return 0


def _count_on(url: str, config: Config, params: dict) -> int:
    """Count one event on the server at `url`; 1 (the client said why) if it was not."""
    from hailwhale.client import Client

    event = {name: value if name == "at" else decode_value(value, name)
             for name, value in params.items() if value is not None}
    with _errors_said("hailwhale.client"), Client(
            url, write_key=config.write_key, periods=config.periods, limits=config.limits,
            batch_size=1, retry_for=COUNT_RETRY_FOR) as client:
        client.count(**event)  # a bad event raises here, as on the store
        client.flush()
        if not client.stats.sent:
            return 1
    print("OK")
    return 0


@contextmanager
def _errors_said(name: str) -> Iterator[None]:
    """The error records of logger `name` as `hailwhale: ...` lines, its other records
    not at all (the Client logs why it sent nothing, and every retry)."""
    said = logging.StreamHandler(sys.stderr)
    said.setFormatter(logging.Formatter("hailwhale: %(message)s"))
    said.setLevel(logging.ERROR)
    logger = logging.getLogger(name)
    logger.addHandler(said)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(said)
        logger.propagate = True


def query(config: Config, args: argparse.Namespace) -> None:
    options = {"dimensions": args.dimensions, "metrics": args.metrics, "pk": args.pk,
               "period": args.period, "threshold": args.threshold, "limit": args.limit,
               "sort": args.sort, "start_at": args.start_at, "end_at": args.end_at}
    if args.what != "dimensions":
        options["depth"] = args.depth
    url = server_url(args)
    if url is not None:
        from hailwhale.client import Client

        with Client(url, read_key=config.read_key) as client:
            answer = getattr(client, args.what)(**options)
    else:
        with store_url(config) as (store, _):
            hw = _hailwhale(config, store)
            try:
                answer = getattr(hw, args.what)(**options)
            finally:
                hw.close()
    print(orjson.dumps(answer).decode() if args.json else TABLES[args.what](answer))
