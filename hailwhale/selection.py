"""Which children a graph shows, and in what order: ranking, threshold, limit, tree order.

Pure: whale/queries.py reads the totals from the store and hands them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hailwhale.keys import Path

Number = int | float


def rank(parent_total: Number, children: Iterable[tuple[Path, Number]],
         threshold: float | None, limit: int | None) -> list[Path]:
    """Children ranked by absolute total, largest first, ties by name; then cut.

    A child is kept when its absolute total is at least `threshold` of its parent's
    (None or 0: every child), and at most `limit` are (None or 0: all).
    """
    scored = [(abs(total), child) for child, total in children]
    if threshold:
        floor = abs(parent_total) * threshold
        scored = [item for item in scored if item[0] >= floor]
    scored.sort(key=lambda item: (-item[0], item[1][-1]))
    if limit:
        scored = scored[:limit]
    return [child for _, child in scored]


def tree_order(root: Path, shown: Mapping[Path, list[Path]]) -> list[Path]:
    """`root`, then each shown child followed by its own shown descendants."""
    ordered: list[Path] = []
    pending = [root]
    while pending:
        path = pending.pop()
        ordered.append(path)
        pending.extend(reversed(shown.get(path, [])))
    return ordered
