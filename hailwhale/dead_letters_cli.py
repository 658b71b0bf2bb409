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
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from hailwhale.cli_output import Progress
from hailwhale.config import Config

if TYPE_CHECKING:  # hail imports redis: only once the command runs
    from hail.buffer import Buffer
    from hail.flusher import Flusher


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
    return _carry_out(args.action, chosen, known, dead,
                      flusher_for(config, store_for(config, store), dead)
                      if args.action == "retry" else None, Progress())


def _carry_out(action: str, chosen: list[str], known: dict, dead: Buffer,
               flusher: Flusher | None, progress: Progress) -> int:
    """Retry (with `flusher`) or drop each chosen letter: a line for each on stdout,
    progress and a summary on stderr; the exit code (1 if any could not be retried)."""
    done = "dropped" if flusher is None else "applied"
    tally: Counter[str] = Counter()
    events = 0
    for n, letter_id in enumerate(chosen, 1):
        if flusher is None:
            kind, line, counted = _drop(dead, letter_id)
        else:
            kind, line, counted = _retry(dead, flusher, known[letter_id])
        tally[kind] += 1
        events += counted
        progress.say(f"{letter_id}: {line}")
        progress.update(f"{action}: {n} of {len(chosen)} dead letters ({100 * n // len(chosen)}%"
                        f"), {tally[done]} {done}")
    counted = f", {events} events counted" if flusher is not None else ""
    others = "".join(f"; {n} {kind}" for kind, n in tally.items() if kind != done)
    progress.done(f"{action}: {tally[done]} of {len(chosen)} dead letters {done}{counted}"
                  f"{others}")
    return 1 if flusher is not None and tally[done] < len(chosen) else 0


def _drop(dead: Buffer, letter_id: str) -> tuple[str, str, int]:
    """(outcome, what to print, events counted) of dropping one letter."""
    return ("dropped", "dropped", 0) if dead.drop(letter_id) else ("gone", "gone meanwhile", 0)


def _retry(dead: Buffer, flusher: Flusher, letter: dict) -> tuple[str, str, int]:
    """(outcome, what to print, events counted) of retrying one letter."""
    if "batch" not in letter:
        return "not an event", "not an event: it cannot be retried; drop it", 0
    if not dead.revive(letter["id"]):
        return "gone", "gone meanwhile", 0
    applied = flusher.finish(letter["id"])
    # Nothing counted: applied before, or set aside again (one read tells, not a listing).
    raw = None if applied else dead.redis.hget(dead.dead_key, letter["id"])
    if raw is not None:
        return "set aside again", f"set aside again: {orjson.loads(raw)['reason']}", 0
    return "applied", f"applied, {applied} events counted", applied
