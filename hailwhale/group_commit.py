"""Group commit: one write to Redis carries the items of every caller that arrived together."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from itertools import chain


class GroupCommit:
    """Calls `commit(items)` once for the items of callers that arrive together.

    While one commit is on its way to Redis, callers (the threads of a server worker)
    that arrive meanwhile queue their items; when it returns, the first
    of them commits all the queued items in one call and the others wait for it.
    A lone caller commits at once; under load a round trip carries many requests.
    A group holds at most `max_items` items and `max_bytes` bytes (len of each item)
    unless one caller brings more alone, so one call stays within what Redis takes;
    callers past that form the next group. Every caller of a group gets that call's
    result or exception, but for an exception of a type in `alone`: one that says the
    call wrote nothing because of some caller's items (a poison write), after which each
    caller of a larger group commits its own items by itself, so that only the one who
    brought them is refused. With `per_caller`, `commit` gets each caller's items apart
    (a list of lists, in order) and answers a list of results, one for each caller.
    """

    def __init__(self, commit: Callable[[list], object], *, max_items: int | None = None,
                 max_bytes: int | None = None, alone: tuple[type[BaseException], ...] = (),
                 per_caller: bool = False):
        self.commit = commit
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.alone = alone
        self.per_caller = per_caller
        self._lock = threading.Lock()
        self._waiting: deque[_Group] = deque()  # groups that wait for the commit before them
        self._busy = False

    def __call__(self, items: Iterable) -> object:
        items = list(items)
        size = sum(map(len, items)) if self.max_bytes is not None else 0
        with self._lock:
            leading = not self._busy
            if leading:
                self._busy = True
                group = _Group()
            else:
                group = self._waiting[-1] if self._waiting else None
                if group is None or not self._fits(group, len(items), size):
                    group = _Group()
                    self._waiting.append(group)
            mine = group.callers
            group.callers += 1
            group.batches.append(items)
            group.count += len(items)
            group.size += size
            if leading:
                pass
            elif group.callers == 1:  # it leads its group once the commit before returns
                wake = group.turn = threading.Event()
            else:  # it waits for the group's answer (events made only when someone waits)
                wake = group.done = group.done or threading.Event()
        if not leading:
            wake.wait()
        if leading or wake is group.turn:
            try:
                group.result = self.commit(group.batches if self.per_caller
                                           else list(chain.from_iterable(group.batches)))
            except BaseException as error:
                group.error = error
            finally:
                with self._lock:
                    if group.done is not None:
                        group.done.set()
                    if self._waiting:
                        self._waiting.popleft().turn.set()
                    else:
                        self._busy = False
        if group.error is None:
            return group.result[mine] if self.per_caller else group.result
        if group.callers > 1 and isinstance(group.error, self.alone):
            if self.per_caller:  # this caller's items, by themselves
                return self.commit([items])[0]
            return self.commit(items)
        raise group.error

    def _fits(self, group: _Group, items: int, size: int) -> bool:
        if self.max_items is not None and group.count + items > self.max_items:
            return False
        return self.max_bytes is None or group.size + size <= self.max_bytes


class _Group:
    __slots__ = ("callers", "batches", "count", "size", "turn", "done", "result", "error")

    def __init__(self) -> None:
        self.callers = 0
        self.batches: list[list] = []  # each caller's items
        self.count = 0  # items in all
        self.size = 0
        self.turn: threading.Event | None = None
        self.done: threading.Event | None = None
        self.result: object = None
        self.error: BaseException | None = None
