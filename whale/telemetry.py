"""The figures each process records for `/metrics`: events accepted, refused, flushed; requests.

prometheus_client's counters and histograms, module-level as it wants them. When
PROMETHEUS_MULTIPROC_DIR is set before this module is imported (`hailwhale serve` and
`hail` set it for their children: whale/metrics.py), each process writes its figures
to its own file there and `/metrics` adds the files up, so gunicorn's workers and the
flusher all count into the same totals (the StatsD listener keeps its line counts in
the buffer's Redis: hail/statsd_counts.py).

No label ever holds a pk, dimension or metric name: `endpoint` and `route` are route
rules (`/count`, never the path asked for), `reason` and `kind` come from fixed sets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import prometheus_client
from bottle import Bottle, HTTPResponse, Route, request, response
from prometheus_client import Counter, Histogram

from whale.ingest import EVENTS_READ
from whale.web import REFUSAL

# Series that multiprocess mode cannot keep: without them both modes show the same.
prometheus_client.disable_created_metrics()

# Why events were refused: ErrorMapping (whale/web.py) names the first five, a 401 or
# 403 of the access plugin is `unauthorized`, anything else `error`.
REASONS = ("invalid", "too_large", "buffer_full", "unavailable", "poison", "unauthorized",
           "error")
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
UNROUTED = "(unrouted)"  # the route of a request no route answered (unknown path or method)

EVENTS_ACCEPTED = Counter(
    "hailwhale_events_accepted", "Events counted or buffered (answered OK), by endpoint",
    ["endpoint"])
EVENTS_REFUSED = Counter(
    "hailwhale_events_refused", "Events refused, by endpoint and reason; a request "
    "refused before its events could be read counts as one",
    ["endpoint", "reason"])
EVENTS_FLUSHED = Counter(
    "hailwhale_events_flushed", "Events flushers applied to the store, each once")
DEAD_LETTERS = Counter(
    "hailwhale_dead_letters", "Dead letters flushers set aside: whole batches the store "
    "refused for good (kind=batch), items that are not events (kind=item)", ["kind"])
REQUEST_SECONDS = Histogram(
    "hailwhale_request_duration_seconds", "HTTP requests answered, by route rule, method "
    "and status class, and the seconds the app took (_count: how many)",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
for _kind in ("batch", "item"):
    DEAD_LETTERS.labels(_kind)


def flushed(events: int, dead_items: int = 0) -> None:
    """A flusher applied `events` and set aside `dead_items` items that are not events."""
    EVENTS_FLUSHED.inc(events)
    if dead_items:
        DEAD_LETTERS.labels("item").inc(dead_items)


def set_aside() -> None:
    """A flusher set a whole batch aside as a dead letter."""
    DEAD_LETTERS.labels("batch").inc()


class EventTally:
    """Bottle plugin: on routes declared with `ingest=True`, the events accepted and refused.

    It must wrap ErrorMapping and the access plugin (install it before them), so that it
    sees their answers: whale/ingest.py notes how many events a request carries,
    ErrorMapping why it refused one; a 401 or 403 of the access plugin is `unauthorized`.
    """

    name = "hailwhale-events"
    api = 2

    def apply(self, callback: Callable, route: Route) -> Callable:
        if not route.config.get("ingest"):
            return callback
        endpoint = route.rule
        accepted = EVENTS_ACCEPTED.labels(endpoint)
        for reason in REASONS:  # every series from the start, so a rate starts at 0
            EVENTS_REFUSED.labels(endpoint, reason)

        def tallied(*args, **kwargs):
            try:
                answer = callback(*args, **kwargs)
            except HTTPResponse as refusal:
                _refused(endpoint, refusal.status_code)
                raise
            except Exception:
                _refused(endpoint, 500)
                raise
            status = answer.status_code if isinstance(answer, HTTPResponse) \
                else response.status_code
            if status >= 400:
                _refused(endpoint, status)
            elif events := request.environ.get(EVENTS_READ):
                accepted.inc(events)
            return answer

        return tallied


def _refused(endpoint: str, status: int) -> None:
    reason = request.environ.get(REFUSAL) or (
        "unauthorized" if status in (401, 403) else "too_large" if status == 413
        else "invalid" if status < 500 else "error")
    EVENTS_REFUSED.labels(endpoint, reason).inc(request.environ.get(EVENTS_READ) or 1)


_STARTED = "hailwhale.started"


class RequestMetrics:
    """Bottle plugin and hooks: each request timed by route rule, method and status class.

    The hooks see every request, routed or not (an unknown path is route `(unrouted)`);
    the plugin, on each route, makes a route that raises show as the 500 it becomes.
    """

    name = "hailwhale-requests"
    api = 2

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], Histogram] = {}

    def setup(self, app: Bottle) -> None:
        app.add_hook("before_request", _stamp)
        app.add_hook("after_request", self._record)

    def apply(self, callback: Callable, route: Route) -> Callable:
        def answered(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except HTTPResponse:
                raise
            except Exception:  # Bottle answers 500 after the hooks have run: say it now
                response.status = 500
                raise

        return answered

    def _record(self) -> None:
        environ = request.environ
        started = environ.get(_STARTED)
        if started is None:
            return
        route = environ.get("bottle.route")
        method = request.method
        key = (route.rule if route else UNROUTED, method if method in METHODS else "other",
               response.status_code // 100)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = REQUEST_SECONDS.labels(*key[:2], f"{key[2]}xx")
        series.observe(time.perf_counter() - started)


def _stamp() -> None:
    request.environ[_STARTED] = time.perf_counter()


def install_telemetry(app: Bottle) -> None:
    """Time every request of `app` and tally its events; call it before add_error_handling."""
    app.install(RequestMetrics())
    app.install(EventTally())
