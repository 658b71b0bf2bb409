"""The query deadline: past its time a query stops with a 503 between round trips."""

from __future__ import annotations

import time
from collections.abc import Callable

from hailwhale.exceptions import InvalidInput


class QueryTimeout(InvalidInput):
    """A query that ran past its time: a 503, and the worker is free again."""

    status = 503

    def __init__(self, seconds: float):
        super().__init__(None, f"the query ran over the {seconds:g} s limit "
                               "(HAILWHALE_QUERY_TIMEOUT) and was stopped; ask for less: "
                               "fewer metrics, a smaller limit or depth, a coarser period, "
                               "or a sum metric to sort by (ranking by a unique metric "
                               "merges every child's buckets, whatever the limit)")


class Deadline:
    """When a query must stop: `seconds` after it was made (None: never)."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] | None = None):
        self.seconds = seconds
        self.clock = clock or time.monotonic
        self.at = None if seconds is None else self.clock() + seconds

    def check(self) -> None:
        """Raise QueryTimeout once the time is up."""
        if self.at is not None and self.clock() > self.at:
            raise QueryTimeout(self.seconds or 0)
