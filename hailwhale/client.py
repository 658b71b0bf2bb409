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
import logging
import os
import random
import re
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import orjson
import urllib3

from hailwhale import __version__
from hailwhale.config import Limits
from hailwhale.events import Event, parse_event
from hailwhale.exceptions import ConfigError, HailWhaleError, InvalidEvent, InvalidQuery
from hailwhale.periods import DEFAULT_PERIODS, Periods, PeriodSpec, to_period
from hailwhale.times import python_time, to_epoch

logger = logging.getLogger("hailwhale.client")

Point = tuple[datetime, float]
# What HailWhale's methods take for a time (hailwhale/api.py): a datetime (naive: local
# time), a date, epoch seconds, a string as `from` and `to` take it, a timedelta (ago).
When = datetime | date | timedelta | float | str
# The one event a batch's 400 names (hailwhale/events.py, parse_batch).
_REFUSED_EVENT = re.compile(r"event (\d+): ")


class RequestFailed(HailWhaleError):
    """A request HailWhale did not answer with data; `status` is None when it did not answer."""

    def __init__(self, url: str, status: int | None, message: str):
        super().__init__(message)
        self.url, self.status, self.message = url, status, message


class KeyRefused(RequestFailed):
    """The server wants a key the Client did not send (401), or not the one it sent (403)."""


class Unreachable(RequestFailed):
    """No answer: the connection was refused, timed out or dropped."""


@dataclass
class ClientStats:
    """What became of the events given to `count` (see the module's docstring)."""

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    refused: int = 0
    expired: int = 0
    abandoned: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class _Queued:
    seq: int
    body: bytes  # the event as a JSON object
    at: float
    since: float  # monotonic time it was queued


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
        self.timeout, self.batch_size, self.flush_interval = timeout, batch_size, flush_interval
        self.queue_size, self.max_backoff, self.retry_for = queue_size, max_backoff, retry_for
        self._write_headers = _auth(write_key)
        self._read_headers = _auth(read_key)
        self._closed = False
        self._start()
        atexit.register(self.close)
        os.register_at_fork(after_in_child=lambda ref=weakref.ref(self): _forked(ref))

    def _start(self) -> None:
        """A fresh queue, pool and sender (a forked child leaves the parent's to the parent)."""
        self.stats = ClientStats()
        # One server, so one pool of keep-alive connections (a PoolManager's clear() in
        # urllib3 2 leaves them open: a server stopping then waits for them).
        self._http = urllib3.connection_from_url(
            self.url, maxsize=10, timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            headers={"User-Agent": f"hailwhale-client/{__version__}"},
        )
        self._cond = threading.Condition()
        self._pending: deque[_Queued] = deque()
        self._seq = self._done = self._flush_to = self._dropping = 0
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._sender = threading.Thread(target=self._send_loop, name="hailwhale-client",
                                        daemon=True)
        self._sender.start()

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, retrying for up to `timeout` s, then stop; the rest is abandoned."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._closing.set()
        abandoned = self.stats.abandoned
        self._sender.join(timeout + self.timeout)  # a request under way may take its timeout
        left = self.stats.abandoned - abandoned + len(self._pending)
        if left:
            logger.error("closing: %d events could not be sent to %s in %g s", left, self.url,
                         timeout)
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
        with self._cond:
            target = self._flush_to = self._seq
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

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
        with self._cond:
            if self._closed:
                raise RuntimeError("this Client is closed: it sends nothing more")
            if len(self._pending) >= self.queue_size:
                self.stats.dropped += 1
                if not self._dropping:
                    logger.warning("the queue of events for %s is full (%d): dropping new "
                                   "events until it drains", self.url, self.queue_size)
                self._dropping += 1
                return event
            if self._dropping:
                logger.warning("the queue has room again; %d events were dropped", self._dropping)
                self._dropping = 0
            self._seq += 1
            self._pending.append(_Queued(self._seq, body, event.at, time.monotonic()))
            self.stats.queued += 1
            if len(self._pending) in (1, self.batch_size):
                self._cond.notify_all()
        return event

    log = count  # the seed's name

    def _send_loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._deliver(batch)
            except Exception:  # a bug must not stop the sender: later events still go
                logger.exception("could not send %d events to %s; dropped", len(batch), self.url)
                self.stats.abandoned += len(batch)
            with self._cond:
                self._done = batch[-1].seq
                self._cond.notify_all()

    def _next_batch(self) -> list[_Queued] | None:
        """Wait for a batch that is due (full, old enough, flushed, closing); None: closed."""
        with self._cond:
            while True:
                if self._pending:
                    wait = self._pending[0].since + self.flush_interval - time.monotonic()
                    if (wait <= 0 or self._closed or len(self._pending) >= self.batch_size
                            or self._flush_to >= self._pending[0].seq):
                        return self._take()
                    self._cond.wait(wait)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()

    def _take(self) -> list[_Queued]:
        first = self._pending.popleft()
        batch, size = [first], 2 + len(first.body)  # the brackets of the array
        while self._pending and len(batch) < self.batch_size:
            size += 1 + len(self._pending[0].body)
            if size > self.limits.request_bytes:
                break
            batch.append(self._pending.popleft())
        return batch

    def _deliver(self, batch: list[_Queued]) -> None:
        """Send a batch until it is counted, refused or given up; account for each event."""
        now = time.time()
        events = [item for item in batch if self.periods.intervals_holding(item.at, now)]
        if len(events) < len(batch):
            self.stats.expired += len(batch) - len(events)
            logger.warning("%d events were outside every period's window by the time they "
                           "were sent; dropped", len(batch) - len(events))
        key = uuid.uuid4().hex
        while events:
            answer = self._post(events, key)
            if answer is None:
                self.stats.abandoned += len(events)
                return
            if answer.status < 300:
                self.stats.sent += len(events)
                return
            message, _ = _error_of(answer)
            named = _REFUSED_EVENT.match(message) if answer.status == 400 else None
            if named is None or int(named[1]) >= len(events):
                self.stats.refused += len(events)
                logger.error("%s refused %d events (%d): %s%s", self.url, len(events),
                             answer.status, message, _key_hint(answer.status, "write"))
                return
            self.stats.refused += 1
            logger.error("%s refused an event: %s", self.url, message)
            del events[int(named[1])]  # the others again: same key, counted once if at all

    def _post(self, events: list[_Queued], key: str) -> urllib3.BaseHTTPResponse | None:
        """POST a batch, retrying what a retry can fix; the final answer, or None: given up."""
        body = b"[" + b",".join(item.body for item in events) + b"]"
        headers = {**self._write_headers, "Idempotency-Key": key,
                   "Content-Type": "application/json"}
        given_up = time.monotonic() + self.retry_for
        attempt = 0
        while True:
            if time.monotonic() >= self._deadline:  # close() says how many were left
                return None
            try:
                answer = self._http.request("POST", self._path + "/count", body=body,
                                            headers=headers, retries=False)
            except urllib3.exceptions.HTTPError as error:
                answer, failure = None, _reason(error)
            else:
                if answer.status < 500 and answer.status != 429:
                    return answer
                failure = f"{answer.status}: {_error_of(answer)[0]}"
            delay = min(self.max_backoff, 0.1 * 2**attempt) * random.uniform(0.5, 1)
            if answer is not None and answer.headers.get("Retry-After"):
                try:
                    delay = urllib3.Retry().parse_retry_after(answer.headers["Retry-After"])
                except urllib3.exceptions.InvalidHeader:
                    pass  # not seconds or a date: our own backoff
            if time.monotonic() + delay > given_up:
                logger.error("gave up sending %d events to %s after %g s: %s", len(events),
                             self.url, self.retry_for, failure)
                return None
            logger.warning("sending %d events to %s failed (%s); retrying in %.1f s",
                           len(events), self.url, failure, delay)
            self.stats.retries += 1
            attempt += 1
            self._pause(delay)

    def _pause(self, delay: float) -> None:
        """Sleep before a retry; woken by close(), sleep no later than its deadline."""
        until = time.monotonic() + delay
        if self._closing.wait(delay):
            time.sleep(max(0.0, min(until, self._deadline) - time.monotonic()))

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
        since = None if start_at is None else to_epoch(start_at, now, "start_at")
        start = since
        if since is not None:
            kept = [self.periods.find(period)] if period not in (None, "") else self.periods.periods
            oldest = max(self.periods.retention[p.interval] for p in kept)
            if since < now - oldest:  # as HailWhale.dataset: cut to what is kept, no error,
                since, start = now - oldest, f"-{oldest}s"  # as of the server's clock
        answer = self._get("/plotpoints", dimensions=params, metrics=[value], period=period,
                           depth=depth, pk=pk, threshold=0, limit=0, start_at=start,
                           end_at=end_at)
        series = {_path(key): next(iter(metrics.values())) for key, metrics in answer.items()}
        base = min(series, key=len)

        def points(pairs: list) -> list[Point]:
            return [(datetime.fromtimestamp(ms / 1000, timezone.utc), v) for ms, v in pairs
                    if since is None or ms / 1000 >= since]

        if not depth:
            return points(series[base])
        return {below[0] if len(below) == 1 else below: points(pairs)
                for path, pairs in series.items() if (below := path[len(base):])}

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
                                         f"({_reason(error)}); is it running there?") from None
        if answer.status == 200:
            return orjson.loads(answer.data)
        message, param = _error_of(answer)
        if answer.status == 400:
            raise InvalidQuery(param, message)
        if answer.status in (401, 403):
            raise KeyRefused(url, answer.status, message + _key_hint(answer.status, "read"))
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


def _path(dim_key: str) -> tuple[str, ...]:
    """The dimension path a `dim_key` of an answer names (DESIGN.md, HTTP API)."""
    if dim_key == "_":
        return ()
    return tuple(orjson.loads(dim_key)) if dim_key.startswith("[") else (dim_key,)


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _key_hint(status: int, kind: str) -> str:
    if status == 401:
        return f" (give the Client its {kind}_key: the server's HAILWHALE_{kind.upper()}_KEY)"
    if status == 403:
        return (f" (the Client's {kind}_key is not the server's HAILWHALE_{kind.upper()}_KEY "
                f"or --{kind}-key)")
    return ""


def _error_of(answer: urllib3.BaseHTTPResponse) -> tuple[str, str | None]:
    """The server's `{"error", "param"}` of a refusal, or the start of whatever it sent."""
    try:
        body = orjson.loads(answer.data)
        return str(body["error"]), body.get("param")
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return answer.data[:200].decode("utf-8", "replace") or answer.reason or "", None


def _reason(error: urllib3.exceptions.HTTPError) -> str:
    """What went wrong with a connection, without urllib3's wrapping."""
    return str(getattr(error, "reason", None) or error)


def _forked(ref: weakref.ref[Client]) -> None:
    client = ref()
    if client is not None and not client._closed:
        client._start()
