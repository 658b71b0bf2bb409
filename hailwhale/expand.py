"""Expand an event into the (pk prefix, dimension path) pairs it counts under (pure).

An event counts under each prefix of its pk (or overall `()` without one), and
under each of those, overall `()` and every dimension prefix event parsing found
(hailwhale/events.py). The roller (whale/rollup.py) writes a series for each pair;
the cardinality guard (whale/guard.py) looks up the indexes each pair writes to.
"""

from __future__ import annotations

from itertools import repeat

from hailwhale.events import Event
from hailwhale.keys import Path


def pk_prefixes(pk: Path) -> list[Path]:
    """The pks an event counts under: each prefix of its pk, or overall alone."""
    return [pk[:n] for n in range(1, len(pk) + 1)] if pk else [()]


def expand(event: Event) -> list[tuple[Path, Path]]:
    """Every (pk prefix, dimension path) `event` counts under, overall `()` included, once."""
    return [(pk, path) for pk in pk_prefixes(event.pk) for path in ((), *event.paths)]


def series_count(event: Event, intervals: int) -> int:
    """How many series `event` writes at most, counted in `intervals` intervals."""
    metrics = len(event.sums) + len(event.uniques)
    counted = len(event.intervals) if event.intervals is not None else intervals
    return max(1, len(event.pk)) * (len(event.paths) + 1) * metrics * counted


def series_groups(events: list[Event], intervals: int, most: int) -> list[list[Event]]:
    """`events` cut, in order, into runs of at most `most` series (an event alone may pass)."""
    counts = list(map(series_count, events, repeat(intervals, len(events))))
    if sum(counts) <= most:
        return [list(events)] if events else []  # the usual batch: one run
    groups: list[list[Event]] = []
    size = most + 1
    for event, series in zip(events, counts):
        if size + series > most:
            groups.append([])
            size = 0
        groups[-1].append(event)
        size += series
    return groups
