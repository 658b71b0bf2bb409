"""The Client's sender: a bounded queue of events, posted in keyed batches, with retries.

A thread takes the queue's events in batches (at most `batch_size` events and the
server's request size) when `batch_size` events wait, when the oldest has waited
`flush_interval` s, on `flush()` and on `close()`. Each batch carries its own
Idempotency-Key, sent again with every retry of that batch, so a retry after a
timeout, a 5xx or a dropped connection counts once. Retries back off exponentially up
to `max_backoff` s (a 503's or 429's Retry-After is honoured), for at most `retry_for`
s. What is not counted is counted in `stats` and logged (hailwhale/client.py says how).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import orjson
import urllib3

from hailwhale.config import Limits
from hailwhale.periods import Periods

logger = logging.getLogger("hailwhale.client")

# The one event a batch's 400 names (hailwhale/events.py, parse_batch).
_REFUSED_EVENT = re.compile(r"event (\d+): ")


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


class Sender:
    """Posts queued events to `<url>/count` from a thread of its own, each batch once."""

    def __init__(self, url: str, http: urllib3.HTTPConnectionPool, path: str,
                 headers: dict[str, str], periods: Periods, limits: Limits, *,
                 batch_size: int, flush_interval: float, queue_size: int,
                 max_backoff: float, retry_for: float):
        self.url, self._http, self._path, self._write_headers = url, http, path, headers
        self.periods, self.limits = periods, limits
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.queue_size, self.max_backoff, self.retry_for = queue_size, max_backoff, retry_for
        self.stats = ClientStats()
        self._cond = threading.Condition()
        self._pending: deque[_Queued] = deque()
        self._seq = self._done = self._flush_to = self._dropping = 0
        self.closed = False
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._sender = threading.Thread(target=self._send_loop, name="hailwhale-client",
                                        daemon=True)
        self._sender.start()

    def put(self, body: bytes, at: float) -> None:
        """Queue one event (its JSON object); past `queue_size`, drop it, counted and logged."""
        with self._cond:
            if self.closed:
                raise RuntimeError("this Client is closed: it sends nothing more")
            if len(self._pending) >= self.queue_size:
                self.stats.dropped += 1
                if not self._dropping:
                    logger.warning("the queue of events for %s is full (%d): dropping new "
                                   "events until it drains", self.url, self.queue_size)
                self._dropping += 1
                return
            if self._dropping:
                logger.warning("the queue has room again; %d events were dropped", self._dropping)
                self._dropping = 0
            self._seq += 1
            self._pending.append(_Queued(self._seq, body, at, time.monotonic()))
            self.stats.queued += 1
            if len(self._pending) in (1, self.batch_size):
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Send every event queued so far now; wait until each is sent, refused or given up.

        False if `timeout` s passed first.
        """
        with self._cond:
            target = self._flush_to = self._seq
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float, request_timeout: float) -> bool:
        """Send what is queued, retrying for up to `timeout` s, then stop; False if closed."""
        with self._cond:
            if self.closed:
                return False
            self.closed = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._closing.set()
        abandoned = self.stats.abandoned
        self._sender.join(timeout + request_timeout)  # a request under way may take its time
        left = self.stats.abandoned - abandoned + len(self._pending)
        if left:
            logger.error("closing: %d events could not be sent to %s in %g s", left, self.url,
                         timeout)
        return True

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
                    if (wait <= 0 or self.closed or len(self._pending) >= self.batch_size
                            or self._flush_to >= self._pending[0].seq):
                        return self._take()
                    self._cond.wait(wait)
                elif self.closed:
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
            message, _ = error_of(answer)
            named = _REFUSED_EVENT.match(message) if answer.status == 400 else None
            if named is None or int(named[1]) >= len(events):
                self.stats.refused += len(events)
                logger.error("%s refused %d events (%d): %s%s", self.url, len(events),
                             answer.status, message, key_hint(answer.status, "write"))
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
                answer, failure = None, reason(error)
            else:
                if answer.status < 500 and answer.status != 429:
                    return answer
                failure = f"{answer.status}: {error_of(answer)[0]}"
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


def key_hint(status: int, kind: str) -> str:
    if status == 401:
        return f" (give the Client its {kind}_key: the server's HAILWHALE_{kind.upper()}_KEY)"
    if status == 403:
        return (f" (the Client's {kind}_key is not the server's HAILWHALE_{kind.upper()}_KEY "
                f"or --{kind}-key)")
    return ""


def error_of(answer: urllib3.BaseHTTPResponse) -> tuple[str, str | None]:
    """The server's `{"error", "param"}` of a refusal, or the start of whatever it sent."""
    try:
        body = orjson.loads(answer.data)
        return str(body["error"]), body.get("param")
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return answer.data[:200].decode("utf-8", "replace") or answer.reason or "", None


def reason(error: urllib3.exceptions.HTTPError) -> str:
    """What went wrong with a connection, without urllib3's wrapping."""
    return str(getattr(error, "reason", None) or error)
