"""`hailwhale guard`: list what the cardinality guard capped, forget a flood.

    hailwhale guard list [--json]
    hailwhale guard forget PARENT [--pk PK]   children of a dimension (`_`: top level)
    hailwhale guard forget --pks              pks
    hailwhale guard forget --metrics [--pk PK]   metric names of a pk
        [--at-most N | --all] [--match GLOB] [--dry-run]

`forget` deletes the flooded names' series and index entries (whale/guard_admin.py
says which names: by default those whose total over the longest period is at
most 1); on a terminal it shows its progress on stderr, and a summary there either way.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import orjson

from hailwhale.cli_output import Progress
from hailwhale.config import Config
from hailwhale.exceptions import InvalidInput
from hailwhale.keys import KeySpace, dim_key
from hailwhale.values import parse_path

if TYPE_CHECKING:  # redis is imported when the command runs: `serve` patches gevent first
    from redis import Redis


def add_guard_parser(subparsers) -> argparse.ArgumentParser:
    """Add `guard list` and `guard forget` to the `hailwhale` subcommands."""
    from hailwhale.cli import _store_flags

    guard = subparsers.add_parser(
        "guard", help="the cardinality guard: list capped parents, forget a flood")
    actions = guard.add_subparsers(dest="guard_command", required=True)
    listing = actions.add_parser(
        "list", help="capped parents, pks and metric registries, with the names they refused")
    listing.add_argument("--json", action="store_true", help="print JSON")
    _store_flags(listing)
    forget = actions.add_parser(
        "forget", help="delete flooded names (series and index entries) so new names count "
        "under their own names again")
    forget.add_argument("parent", nargs="?", help="the dimension whose children to forget: a "
                        "name or a JSON list path; _ for the top-level dimensions")
    forget.add_argument("--pk", help="the pk (a name or a JSON list path); default _ (overall)")
    what = forget.add_mutually_exclusive_group()
    what.add_argument("--pks", action="store_true", help="forget flooded pks (and the pks "
                      "below them) instead of children")
    what.add_argument("--metrics", action="store_true",
                      help="forget flooded metric names of --pk instead of children")
    which = forget.add_mutually_exclusive_group()
    which.add_argument("--at-most", type=float, default=1.0, metavar="N",
                       help="forget names whose total over the longest period is at most N "
                       "(hits; for --metrics the metric itself); default 1")
    which.add_argument("--all", action="store_true", help="forget every name (but _other)")
    forget.add_argument("--match", metavar="GLOB",
                        help="only names matching GLOB (as the index spells them)")
    forget.add_argument("--dry-run", action="store_true",
                        help="say what would be forgotten; delete nothing")
    _store_flags(forget)
    return guard


def run_guard(config: Config, args: argparse.Namespace) -> int:
    """Run `hailwhale guard ...`; the exit status."""
    from hailwhale.process_cli import store_url
    from whale.connect import client

    keys = KeySpace(config.key_prefix)
    with store_url(config) as (url, _):
        redis = client(url)
        try:
            if args.guard_command == "list":
                _list(redis, keys, config, args.json)
            else:
                _forget(redis, keys, config, args)
        finally:
            redis.close()
    return 0


def _list(redis: Redis, keys: KeySpace, config: Config, as_json: bool) -> None:
    from whale import guard_admin

    report = guard_admin.report(redis, keys, config.periods, config.limits)
    parents = guard_admin.capped(redis, keys, config.periods, config.limits)
    if as_json:
        print(orjson.dumps({"limits": report["limits"], "capped": parents}).decode())
        return
    limits = report["limits"]
    print(f"limits: {limits['children']} children per parent, {limits['pks']} pks, "
          f"{limits['metric_names']} metric names per pk")
    if not parents:
        print("nothing capped")
    for one in parents:
        refused = f"{'at least ' if one['at_least'] else ''}{one['refused']}"
        last = datetime.fromtimestamp(one["last_refused"], timezone.utc)
        print(f"{_what(one)}: {one['names']} of {one['limit']}; {refused} new names refused "
              f"(counted as _other), last {last:%Y-%m-%d %H:%M:%S}Z; "
              f"newest: {', '.join(one['recent'])}")


def _what(one: dict) -> str:
    if one["kind"] == "children":
        return f"children of {one['parent']} (pk {one['pk']})"
    if one["kind"] == "metric_names":
        return f"metric names of pk {one['pk']}"
    return "pks"


def _forget(redis: Redis, keys: KeySpace, config: Config, args: argparse.Namespace) -> None:
    from whale import guard_admin

    if (args.parent is not None) + args.pks + args.metrics != 1:
        raise InvalidInput("parent", "give a PARENT dimension, --pks or --metrics (one)")
    if args.pks and args.pk is not None:
        raise InvalidInput("pk", "--pks forgets pks: it takes no --pk")
    pk = parse_path(args.pk or "", "pk", config.limits)
    progress = Progress()
    options = dict(at_most=None if args.all else args.at_most, match=args.match,
                   dry_run=args.dry_run, progress=progress.update)
    if args.pks:
        what = "pks"
        done = guard_admin.forget_pks(redis, keys, config.periods, **options)
    elif args.metrics:
        what = f"metric names of pk {dim_key(pk)}"
        done = guard_admin.forget_metrics(redis, keys, config.periods, pk, **options)
    else:
        parent = parse_path(args.parent, "parent", config.limits)
        what = f"children of {dim_key(parent)} (pk {dim_key(pk)})"
        done = guard_admin.forget_children(redis, keys, config.periods, parent, pk, **options)
    verb, deleted = ("would forget", "would delete") if args.dry_run else ("forgot", "deleted")
    progress.done(f"{done.scanned} keys scanned, {done.deleted} {deleted}")
    print(f"{verb} {len(done.names)} {what}, kept {done.kept}; {deleted} {done.deleted} keys "
          f"({done.scanned} scanned)")
