"""Expand an event into the (pk prefix, dimension path) pairs it counts under (pure).

An event counts under each prefix of its pk (or overall `()` without one), and
under each of those, overall `()` and every dimension prefix event parsing found
(hailwhale/events.py). The roller (whale/rollup.py) writes a series for each pair;
the cardinality guard (whale/guard.py) looks up the indexes each pair writes to.
"""

from __future__ import annotations

from hailwhale.events import Event
from hailwhale.keys import Path


def pk_prefixes(pk: Path) -> list[Path]:
    """The pks an event counts under: each prefix of its pk, or overall alone."""
    return [pk[:n] for n in range(1, len(pk) + 1)] if pk else [()]


def expand(event: Event) -> list[tuple[Path, Path]]:
    """Every (pk prefix, dimension path) `event` counts under, overall `()` included, once."""
    return [(pk, path) for pk in pk_prefixes(event.pk) for path in ((), *event.paths)]
