"""`hailwhale dead-letters list|retry|drop`: what the flusher set aside, and what to do with it.

A batch is set aside whole when the store refuses its writes for a reason a
retry cannot fix (a key of the wrong type, say); an item that is not an event
is set aside alone. `retry` puts a batch back in flight under its own id and
applies it here and now: its markers in the store make it count exactly once,
even if part of it was written before. Fix the cause first (the reason says it).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import orjson

from hailwhale.config import Config


def add_dead_letters_parser(commands: argparse._SubParsersAction, store_flags) -> None:
    """The `dead-letters` command and its actions; `store_flags(parser)` adds the URLs."""
    parser = commands.add_parser("dead-letters", help="list, retry or drop what the flusher "
                                 "set aside")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the dead letters, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    store_flags(listing)
    for name, text in (("retry", "apply dead batches again (after a fix), exactly once"),
                       ("drop", "delete dead letters for good")):
        action = actions.add_parser(name, help=text)
        action.add_argument("ids", nargs="*", help="dead letter ids (see `list`)")
        action.add_argument("--all", action="store_true", help="every dead letter")
        store_flags(action)


def run_dead_letters(config: Config, args: argparse.Namespace, store: str, buffer: str) -> int:
    """Carry out `args.action` on the buffer at `buffer` (store at `store`); the exit code."""
    from hailwhale.wsgi import buffer_for, flusher_for, store_for

    dead = buffer_for(config, buffer)
    letters = dead.dead_letters()
    if args.action == "list":
        for letter in letters:
            if args.json:
                print(orjson.dumps(letter).decode())
            else:
                when = datetime.fromtimestamp(letter["at"]).isoformat(" ", "seconds")
                size = (f"batch of {letter['events']} items" if "batch" in letter
                        else "item")
                print(f"{letter['id']}  {when}  {size}: {letter['reason']}")
        if not letters and not args.json:
            print("no dead letters")
        return 0
    chosen = [letter["id"] for letter in letters] if args.all else args.ids
    if not chosen:
        print("hailwhale: name dead letter ids, or --all", file=sys.stderr)
        return 2
    known = {letter["id"]: letter for letter in letters}
    missing = [one for one in chosen if one not in known]
    if missing:
        print(f"hailwhale: no dead letter {', '.join(missing)} (see `hailwhale dead-letters "
              "list`)", file=sys.stderr)
        return 2
    failed = 0
    flusher = (flusher_for(config, store_for(config, store), dead) if args.action == "retry"
               else None)
    for done, letter_id in enumerate(chosen, 1):
        if flusher is None:
            dead.drop(letter_id)
            outcome = "dropped"
        elif "batch" not in known[letter_id]:
            failed += 1
            outcome = "not an event: it cannot be retried; drop it"
        elif not dead.revive(letter_id):
            failed += 1
            outcome = "gone meanwhile"
        else:
            applied = flusher.finish(letter_id)
            again = any(one["id"] == letter_id for one in dead.dead_letters())
            failed += again
            outcome = ("set aside again: " + next(one["reason"] for one in dead.dead_letters()
                                                  if one["id"] == letter_id)
                       if again else f"applied, {applied} events counted")
        print(f"[{done}/{len(chosen)}] {letter_id}: {outcome}", flush=True)
    return 1 if failed else 0
