"""An HTTP client for apps: counts sent in the background, in keyed batches; queries answered.

`Client(url, write_key=..., read_key=...)` has the methods of the Python API's HailWhale
with the same signatures, over HTTP (urllib3: pooled keep-alive connections, timeouts).

`count` validates an event as HailWhale.count does (a bad one raises InvalidEvent in the
caller, nothing queued), stamps it with the time of the call and queues it; it never
waits on the network. A sender thread posts the queue to `POST /count` as JSON batches
(at most `batch_size` events and the server's request size): when `batch_size` events
wait, when the oldest has waited `flush_interval` s, on `flush()`, and on `close()`,
which also runs at interpreter exit and at the end of a `with` block.

Each batch carries its own Idempotency-Key, sent again with every retry of that batch,
so a retry after a timeout, a 5xx or a dropped connection counts once. Retries back off
exponentially up to `max_backoff` s (a 503's or 429's Retry-After is honoured), for at
most `retry_for` s: keep it under the server's idempotency window (1 h by default).

What is not counted is counted in `stats` and logged, never raised at the app:

* the queue is full (`queue_size` events: the server has been away a while): the new
  event is dropped (`dropped`). Dropping the newest keeps `count` from ever blocking,
  and keeps the oldest events, already waiting, in order.
* the server refuses a batch (a 4xx; a wrong write key, say): not retried (`refused`).
  When it names the one event it refuses (its periods are narrower than the client's),
  only that one is dropped and the rest is sent again, under the same key.
* an event is outside every period's window by the time its batch is due (`expired`).
* a batch that is still failing after `retry_for` s, or at `close()`'s deadline
  (`abandoned`).
"""

from __future__ import annotations

import atexit
import math
import os
import time
import weakref
from collections.abc import Iterable
from datetime import datetime, timezone
from urllib.parse import urlsplit

import orjson
import urllib3

from hailwhale import __version__
from hailwhale.client_sender import ClientStats, Sender, error_of, key_hint, reason
from hailwhale.config import Limits
from hailwhale.events import Event, parse_event
from hailwhale.exceptions import (
    ConfigError,
    InvalidEvent,
    InvalidQuery,
    KeyRefused,
    RequestFailed,
    Unreachable,
)
from hailwhale.periods import DEFAULT_PERIODS, Periods, PeriodSpec, to_period
from hailwhale.times import When, dataset_since, python_time, to_epoch

Point = tuple[datetime, float]


class Client:
    """Count events and read graphs of a HailWhale server, over HTTP."""

    def __init__(
        self,
        url: str,
        write_key: str | None = None,
        read_key: str | None = None,
        *,
        periods: str | Iterable[str] | Periods = DEFAULT_PERIODS,
        limits: Limits | None = None,
        timeout: float = 15.0,
        batch_size: int = Limits.batch,
        flush_interval: float = 1.0,
        queue_size: int = 100_000,
        max_backoff: float = 10.0,
        retry_for: float = 1800.0,
    ):
        """`periods` and `limits`: the server's, if it does not run on the defaults.

        `timeout`: seconds to connect and to wait for an answer (a query may take the
        server's HAILWHALE_QUERY_TIMEOUT, 10 s by default).
        """
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"the HailWhale URL must start with http:// or https://, "
                              f"not {url!r}")
        self.periods = Periods.parse(periods)
        self.limits = limits or Limits()
        if not 0 < batch_size <= self.limits.batch:
            raise ConfigError(f"batch_size must be 1 to {self.limits.batch} (the server's "
                              f"batch limit), not {batch_size}")
        self.url = url.rstrip("/")
        self._path = urlsplit(self.url).path  # a server behind a proxy at /hailwhale, say
        self.timeout = timeout
        self._sending = dict(batch_size=batch_size, flush_interval=flush_interval,
                             queue_size=queue_size, max_backoff=max_backoff, retry_for=retry_for)
        self._write_headers = _auth(write_key)
        self._read_headers = _auth(read_key)
        self._start()
        atexit.register(self.close)
        os.register_at_fork(after_in_child=lambda ref=weakref.ref(self): _forked(ref))

    def _start(self) -> None:
        """A fresh pool and sender (a forked child leaves the parent's to the parent)."""
        # One server, so one pool of keep-alive connections (a PoolManager's clear() in
        # urllib3 2 leaves them open: a server stopping then waits for them).
        self._http = urllib3.connection_from_url(
            self.url, maxsize=10, timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            headers={"User-Agent": f"hailwhale-client/{__version__}"},
        )
        self._sender = Sender(self.url, self._http, self._path, self._write_headers,
                              self.periods, self.limits, **self._sending)

    @property
    def stats(self) -> ClientStats:
        """What became of the events given to `count` (see the module's docstring)."""
        return self._sender.stats

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, retrying for up to `timeout` s, then stop; the rest is abandoned."""
        if self._sender.close(timeout, self.timeout):
            atexit.unregister(self.close)
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def flush(self, timeout: float | None = None) -> bool:
        """Send every event queued so far now; wait until each is sent, refused or given up.

        False if `timeout` s passed first.
        """
        return self._sender.flush(timeout)

    # -- counting --

    def count(
        self,
        dimensions: object = None,
        metrics: object = None,
        pk: object = None,
        at: When | None = None,
    ) -> Event:
        """Queue one event; raises InvalidEvent (nothing queued) if it is bad."""
        now = time.time()
        params = {"dimensions": dimensions, "metrics": metrics, "pk": pk,
                  "at": python_time(at, now)}
        params = {name: value for name, value in params.items() if value is not None}
        event = parse_event(params, periods=self.periods, limits=self.limits, now=now,
                            encoded=False)
        try:  # sent stamped with its time, so that a late batch counts it where it belongs
            body = orjson.dumps({**params, "at": event.at}, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError as error:
            raise InvalidEvent("event", f"cannot be sent as JSON: {error}") from None
        self._sender.put(body, event.at)
        return event

    log = count  # the seed's name

    # -- queries --

    def plotpoints(
        self, dimensions: object = None, metrics: object = None, period: PeriodSpec | None = None,
        depth: int = 0, pk: object = None, threshold: float | None = None,
        limit: int | None = None, sort: str | None = None,
        start_at: When | None = None, end_at: When | None = None,
    ) -> dict:
        """`{dim_key: {metric: [[epoch_ms, value], ...]}}`, as `/plotpoints` answers."""
        return self._get("/plotpoints", dimensions=dimensions, metrics=metrics, period=period,
                         depth=depth, pk=pk, threshold=threshold, limit=limit, sort=sort,
                         start_at=start_at, end_at=end_at)

    def totals(
        self, dimensions: object = None, metrics: object = None, period: PeriodSpec | None = None,
        depth: int = 0, pk: object = None, threshold: float | None = None,
        limit: int | None = None, sort: str | None = None,
        start_at: When | None = None, end_at: When | None = None,
    ) -> dict:
        """`{period: {dim_key: {metric: total}}}`, as `/totals` answers."""
        return self._get("/totals", dimensions=dimensions, metrics=metrics, period=period,
                         depth=depth, pk=pk, threshold=threshold, limit=limit, sort=sort,
                         start_at=start_at, end_at=end_at)

    def dimensions(
        self, dimensions: object = None, metrics: object = None, period: PeriodSpec | None = None,
        pk: object = None, threshold: float | None = None, limit: int | None = None,
        sort: str | None = None, start_at: When | None = None, end_at: When | None = None,
    ) -> dict:
        """The children of a dimension with their totals, as `/dimensions` answers."""
        return self._get("/dimensions", dimensions=dimensions, metrics=metrics, period=period,
                         pk=pk, threshold=threshold, limit=limit, sort=sort,
                         start_at=start_at, end_at=end_at)

    def dataset(
        self, params: object = None, value: str = "hits", period: PeriodSpec | None = None,
        start_at: When | None = None, depth: int = 0, pk: object = None,
        end_at: When | None = None,
    ) -> list[Point] | dict[object, list[Point]]:
        """The seed's API: `[(datetime, value)]` for a path, or `{child: [...]}` with depth.

        As HailWhale.dataset: keys are the child's segment below `params` (a tuple for
        grandchildren), every child active in the window, datetimes in UTC; `start_at`
        keeps the points stamped at or after it, as far back as the period keeps.
        """
        now = time.time()
        since = start = None if start_at is None else to_epoch(start_at, now, "start_at")
        if since is not None:
            since = dataset_since(self.periods, period or None, since, now)
            if since > start:  # cut to what is kept, as of the server's clock
                start = f"-{math.ceil(now - since)}s"
        answer = self._get("/plotpoints", dimensions=params, metrics=[value], period=period,
                           depth=depth, pk=pk, threshold=0, limit=0, start_at=start,
                           end_at=end_at, format="series")

        def points(pairs: list) -> list[Point]:
            return [(datetime.fromtimestamp(ms / 1000, timezone.utc), v) for ms, v in pairs
                    if since is None or ms / 1000 >= since]

        [parent, *children] = [(s["path"], s["points"][value]) for s in answer["series"]]
        if not depth:
            return points(parent[1])
        base = len(parent[0])
        return {below[0] if len(below) == 1 else tuple(below): points(pairs)
                for path, pairs in children if (below := path[base:])}

    def _get(self, route: str, **params: object) -> dict:
        """A query's answer; InvalidQuery (400), KeyRefused, Unreachable or RequestFailed."""
        fields = {_PARAM_NAMES.get(name, name): _query_value(name, value)
                  for name, value in params.items() if value is not None}
        url = self.url + route
        try:
            # A GET changes nothing: a refused connection is tried twice more, a dropped
            # one (a keep-alive connection the server closed) or a timeout once more.
            retries = urllib3.Retry(connect=2, read=1, redirect=0, backoff_factor=0.05)
            answer = self._http.request("GET", self._path + route, fields=fields,
                                        headers=self._read_headers, retries=retries)
        except urllib3.exceptions.HTTPError as error:
            raise Unreachable(url, None, f"no answer from HailWhale at {self.url} "
                                         f"({reason(error)}); is it running there?") from None
        if answer.status == 200:
            return orjson.loads(answer.data)
        message, param = error_of(answer)
        if answer.status == 400:
            raise InvalidQuery(param, message)
        if answer.status in (401, 403):
            raise KeyRefused(url, answer.status, message + key_hint(answer.status, "read"))
        raise RequestFailed(url, answer.status, f"HailWhale at {url} answered "
                                                f"{answer.status}: {message}")


_PARAM_NAMES = {"start_at": "from", "end_at": "to"}


def _query_value(name: str, value: object) -> str:
    """A query parameter as the server reads it: strings as they are, the rest as JSON."""
    if name in _PARAM_NAMES:
        value = python_time(value, time.time())
    elif name == "period" and not isinstance(value, str):
        try:
            value = to_period(value).name  # (interval, length) in seconds, as the seed had
        except ValueError as error:
            raise InvalidQuery("period", str(error)) from None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _forked(ref: weakref.ref[Client]) -> None:
    client = ref()
    if client is not None and not client._sender.closed:
        client._start()
