"""Whale's HTTP API: count events, answer queries, serve graphs (Bottle)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import bottle
import simplejson
from bottle import Bottle, HTTPError, HTTPResponse, request, response
from redis.exceptions import RedisError

from hailwhale import __version__
from hailwhale.access import ALLOWED_HEADERS, install_access
from hailwhale.config import Config
from hailwhale.exceptions import BufferFull, InvalidInput
from hailwhale.ingest import read_events
from whale import queries
from whale.openapi import openapi_spec
from whale.pages import add_pages
from whale.store import Store

if TYPE_CHECKING:
    from hail.buffer import Buffer
    from hail.flusher import Flusher

log = logging.getLogger("hailwhale.whale")

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def json_response(data: object, status: int = 200, **headers: str) -> HTTPResponse:
    body = simplejson.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return HTTPResponse(
        body, status, headers={"Content-Type": "application/json; charset=utf-8", **headers}
    )


def error_response(status: int, message: str, param: str | None = None) -> HTTPResponse:
    return json_response({"error": message, "param": param}, status)


def handle_errors(route: Callable) -> Callable:
    """Map what a route raises to a JSON error; nothing of the store leaks."""

    def wrapper(*args, **kwargs):
        try:
            return route(*args, **kwargs)
        except InvalidInput as error:
            return error_response(error.status, error.message, error.param)
        except BufferFull as error:
            body = {"error": str(error), "param": None, "retry_after": error.retry_after}
            return json_response(body, 503, **{"Retry-After": str(error.retry_after)})
        except RedisError:
            log.exception("the store failed while serving %s", request.path)
            return error_response(503, "the store is unavailable; try again shortly")
        except UnicodeDecodeError:  # a form body (the query string is checked before)
            return error_response(400, "the request body is not valid UTF-8", "body")

    wrapper.__name__ = route.__name__
    return wrapper


def cors_headers(origins: Sequence[str]) -> dict[str, str]:
    """The Access-Control-Allow-Origin header this request's Origin gets, if any."""
    origin = request.headers.get("Origin")
    allowed = "*" if "*" in origins else (origin if origin in origins else None)
    return {"Access-Control-Allow-Origin": allowed} if allowed else {}


def add_cors_hook(app: Bottle, origins: Sequence[str]) -> None:
    """Allow `origins` (`*`: any) to read every answer of `app`."""

    @app.hook("after_request")
    def cors() -> None:
        origin = request.headers.get("Origin")
        if "*" in origins:
            response.set_header("Access-Control-Allow-Origin", "*")
        elif origin and origin in origins:
            response.set_header("Access-Control-Allow-Origin", origin)
            response.add_header("Vary", "Origin")


def add_preflight(app: Bottle, origins: Sequence[str]) -> None:
    """Answer CORS preflights (OPTIONS) on every route `app` has so far: call it last."""

    def preflight(**route_args: str) -> HTTPResponse:
        return HTTPResponse(
            status=204,
            headers={
                **cors_headers(origins),
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": "86400",
            },
        )

    for rule in {route.rule for route in app.routes}:
        app.route(rule, method="OPTIONS", callback=preflight)


def add_error_handling(app: Bottle) -> None:
    """Every error Bottle answers itself (404, 405, 413, 500...) as JSON with nothing internal.

    Routes map our own errors (handle_errors); this covers the rest. A 5xx says
    "internal error" and nothing else: the exception goes to the log only. A query
    string that is not UTF-8 is a 400 before any route tries to decode it.
    """
    bottle.debug(False)  # never a traceback in a response

    @app.hook("before_request")
    def utf8_query() -> None:
        try:
            request.query.decode()
        except UnicodeError:
            raise error_response(400, "the query string is not valid UTF-8", "query") from None

    def error_page(error: HTTPError) -> str:
        status = error.status_code
        if status >= 500:
            log.error("unhandled error on %s: %r", request.path, error.exception)
            message = "internal error"
        elif status == 404:
            message = f"no such endpoint: {request.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        else:
            message = error.status_line.partition(" ")[2].lower() or "bad request"
        response.content_type = "application/json; charset=utf-8"
        return simplejson.dumps({"error": message, "param": None})

    app.default_error_handler = error_page


def make_app(
    store: Store,
    config: Config,
    buffer: Buffer | None = None,
    flusher: Flusher | None = None,
    clock: Callable[[], float] | None = None,
) -> Bottle:
    """Whale's Bottle app; with a Hail `buffer`, `/count` buffers instead of counting."""
    app = Bottle()
    periods, limits = config.periods, config.limits
    clock = clock or store.clock
    origins = config.allowed_origins
    add_cors_hook(app, origins)
    add_error_handling(app)
    install_access(app, config)

    def count(buffered: bool) -> None:
        now = clock()
        events = read_events(request, periods=periods, limits=limits, now=now)
        if buffered and buffer is not None:
            buffer.push(events, now)
        else:
            store.count(events)

    @app.route("/count", method=["GET", "POST"])
    @handle_errors
    def count_route() -> HTTPResponse:
        count(buffered=True)
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    @app.route("/count_now", method=["GET", "POST"])
    @handle_errors
    def count_now() -> HTTPResponse:
        count(buffered=False)
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    @app.get("/count.gif")
    @handle_errors
    def count_gif() -> HTTPResponse:
        count(buffered=True)
        return HTTPResponse(
            PIXEL, 200, headers={"Content-Type": "image/gif", "Cache-Control": "no-store"}
        )

    def flush() -> int:
        return flusher.flush_all() if flusher is not None else 0

    @app.post("/flush_hail")
    @handle_errors
    def flush_hail() -> HTTPResponse:
        return json_response({"flushed": flush()})

    @app.get("/flush_hail")
    @handle_errors
    def flush_hail_get() -> HTTPResponse:
        flush()  # old clients GET it and expect OK
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    def params() -> dict[str, str]:
        return dict(request.query.decode().allitems())

    @app.get("/plotpoints")
    @handle_errors
    def plotpoints() -> HTTPResponse:
        args = params()
        query = queries.parse_query(args, limits)
        period = periods.find(args.get("period"))
        return json_response(queries.plotpoints(store, query, period, clock()))

    @app.get("/totals")
    @handle_errors
    def totals() -> HTTPResponse:
        args = params()
        query = queries.parse_query(args, limits)
        chosen = queries.find_periods(periods, args.get("period"))
        return json_response(queries.totals(store, query, chosen, clock()))

    @app.get("/dimensions")
    @handle_errors
    def dimensions() -> HTTPResponse:
        args = params()
        query = queries.parse_query(args, limits, threshold=None, limit=None)
        period = periods.find(args.get("period"))
        return json_response(queries.dimensions(store, query, period, clock()))

    @app.get("/health")
    def health() -> HTTPResponse:
        answer: dict = {"status": "ok", "version": __version__, "periods": periods.names}
        try:
            store.redis.ping()
            answer["store"] = "ok"
            answer["cardinality"] = store.guard.report()
        except RedisError:
            log.warning("health check: the store does not answer")
            answer.update(status="error", store="unreachable")
        if buffer is not None:
            try:
                answer["buffer"] = {"status": "ok", **buffer.stats(clock())}
            except RedisError:
                log.warning("health check: the buffer does not answer")
                answer.update(status="error", buffer={"status": "unreachable"})
        return json_response(answer, 200 if answer["status"] == "ok" else 503)

    @app.get("/openapi.json")
    def openapi() -> HTTPResponse:
        return json_response(openapi_spec(config))

    add_pages(app, config, store)
    add_preflight(app, origins)
    return app

