"""Whale's HTTP API: count events, answer queries, serve graphs (Bottle)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bottle import Bottle, HTTPResponse, request
from redis.exceptions import RedisError

from hailwhale import __version__
from hailwhale.config import Config
from hailwhale.periods import Window
from whale import idempotency, queries, query_params
from whale.access import install_access, route_access
from whale.grafana import add_grafana_routes
from whale.ingest import read_events
from whale.metrics import add_metrics
from whale.openapi import openapi_spec
from whale.pages import add_pages
from whale.query_params import Query
from whale.store import Store
from whale.web import (
    PIXEL,
    add_cors_hook,
    add_error_handling,
    add_preflight,
    json_response,
)


@dataclass(frozen=True)
class Buffering:
    """What `/count`, `/flush_hail` and `/health` need of a Hail buffer (hail/ has it)."""

    push: Callable[..., None]  # (events, now, request_key): buffer a request's events
    flush: Callable[[], int]  # count everything buffered so far; the events counted
    health: Callable[[float, float], tuple[dict, list[str]]]  # (now, max_lag)

log = logging.getLogger("hailwhale.whale")


def make_app(
    store: Store,
    config: Config,
    buffering: Buffering | None = None,
    clock: Callable[[], float] | None = None,
) -> Bottle:
    """Whale's Bottle app; with `buffering`, `/count` buffers instead of counting.

    Each route declares who may call it (`access=`, whale/access.py); errors it
    raises become JSON answers (whale/web.py's ErrorMapping, on every route).
    """
    app = Bottle()
    periods, limits = config.periods, config.limits
    clock = clock or store.clock
    origins = config.allowed_origins
    add_cors_hook(app, origins)
    add_metrics(app, clock, buffering.health if buffering is not None else None)
    add_error_handling(app)

    def count(buffered: bool) -> None:
        now = clock()
        request_key = idempotency.request_key(request)
        events = read_events(request, periods=periods, limits=limits, now=now)
        if not events:
            return
        if buffered and buffering is not None:
            buffering.push(events, now, request_key)
        elif request_key is not None:
            store.count_once(events, request_key, config.idempotency_window)
        else:
            store.count(events)

    @app.route("/count", method=["GET", "POST"], access="write", ingest=True)
    def count_route() -> HTTPResponse:
        count(buffered=True)
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    @app.route("/count_now", method=["GET", "POST"], access="write", ingest=True)
    def count_now() -> HTTPResponse:
        count(buffered=False)
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    @app.get("/count.gif", access="write", ingest=True)
    def count_gif() -> HTTPResponse:
        count(buffered=True)
        return HTTPResponse(
            PIXEL, 200, headers={"Content-Type": "image/gif", "Cache-Control": "no-store"}
        )

    def flush() -> int:
        return buffering.flush() if buffering is not None else 0

    @app.post("/flush_hail", access="write")
    def flush_hail() -> HTTPResponse:
        return json_response({"flushed": flush()})

    @app.get("/flush_hail", access="write")
    def flush_hail_get() -> HTTPResponse:
        flush()  # old clients GET it and expect OK
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    def asked(every: bool = False, **defaults: float | None) -> tuple[Query, list[Window]]:
        """The request's Query and the windows that answer it, at one `now`."""
        args = query_params.check_params(request.query.decode().allitems(),
                                         query_params.QUERY_PARAMS)
        now = clock()
        query = query_params.parse_query(args, limits, config.query_timeout, now=now,
                                         **defaults)
        return query, queries.windows(periods, query, args.get("period"), now, every)

    def answer(data: object, windows: list[Window]) -> HTTPResponse:
        """`data` as JSON; a time range's answer names its period in a header."""
        if not windows[0].ranged:
            return json_response(data)
        header = query_params.PERIOD_HEADER
        return json_response(data, **{header: windows[0].period.name,
                                      "Access-Control-Expose-Headers": header})

    @app.get("/plotpoints", access="read")
    def plotpoints() -> HTTPResponse:
        query, [window] = asked()
        return answer(queries.plotpoints(store, query, window), [window])

    @app.get("/totals", access="read")
    def totals() -> HTTPResponse:
        query, windows = asked(every=True)
        return answer(queries.totals(store, query, windows), windows)

    @app.get("/dimensions", access="read")
    def dimensions() -> HTTPResponse:
        query, [window] = asked(threshold=None, limit=None)
        return answer(queries.dimensions(store, query, window), [window])

    @app.get("/health", access="public")
    def health() -> HTTPResponse:
        """200 only when counting works; 503 `degraded` or `error` with the problems."""
        answer: dict = {"status": "ok", "version": __version__, "periods": periods.names}
        problems: list[str] = []
        try:
            store.redis.ping()
            answer["store"] = "ok"
            answer["cardinality"] = store.guard.report(clock())
        except RedisError:
            log.warning("health check: the store does not answer")
            answer.update(status="error", store="unreachable")
            problems.append("the store does not answer: nothing can be counted")
        if buffering is not None:
            try:
                stats, found = buffering.health(clock(), config.health_max_lag)
                answer["buffer"] = {"status": "ok", **stats}
                problems += found
            except RedisError:
                log.warning("health check: the buffer does not answer")
                answer.update(status="error", buffer={"status": "unreachable"})
                problems.append("the buffer does not answer: /count cannot buffer events")
        if problems and answer["status"] == "ok":
            answer["status"] = "degraded"
        answer["problems"] = problems
        return json_response(answer, 200 if answer["status"] == "ok" else 503)

    @app.get("/openapi.json", access="public")
    def openapi() -> HTTPResponse:
        return json_response(openapi_spec(config, route_access(app)))

    add_pages(app, config, store)
    add_grafana_routes(app, store, config, clock)
    add_preflight(app, origins)
    install_access(app, config)
    return app

