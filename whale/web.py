"""HTTP plumbing both tiers share: JSON answers, error mapping, CORS, Bottle's own errors."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence

import bottle
import orjson
from bottle import Bottle, HTTPError, HTTPResponse, request, response
from redis.exceptions import RedisError

from hailwhale.exceptions import BufferFull, InvalidInput, PoisonWrite
from whale.access import ALLOWED_HEADERS
from whale.store import poison_or_retry

log = logging.getLogger("whale.web")

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# Where ErrorMapping notes why it refused a request, for /metrics (whale/telemetry.py).
REFUSAL = "hailwhale.refusal"


def json_response(data: object, status: int = 200, **headers: str) -> HTTPResponse:
    """`data` as a compact UTF-8 JSON answer (orjson: 16x simplejson on a 0.7 MB graph)."""
    body = orjson.dumps(data)
    return HTTPResponse(
        body, status, headers={"Content-Type": "application/json; charset=utf-8", **headers}
    )


def error_response(status: int, message: str, param: str | None = None) -> HTTPResponse:
    """The `{"error", "param"}` answer every refusal gets."""
    return json_response({"error": message, "param": param}, status)


# What a Redis failure answers, unless the app says otherwise (Hail names its buffer).
STORE_UNAVAILABLE = ("the store is unavailable; try again shortly (a count retried with "
                     "the same Idempotency-Key counts once)")
_POISON = ("the store refused the write and nothing of it was counted; an operator must fix "
           "the store (see the log)")
_POISON_READ = ("the store holds a key of the wrong type for this query; an operator must fix "
                "the store (see the log)")


class ErrorMapping:
    """Bottle plugin on every route: what a route raises, as a JSON error; nothing internal leaks.

    InvalidInput: its status (400, 413, 503) and message; BufferFull: 503 with
    Retry-After; PoisonWrite: 500; RedisError: 503 with `unavailable`; a form body that
    is not UTF-8: 400. Anything else is Bottle's 500, which `add_error_handling` words.
    Each refusal's reason goes in the request's environ under REFUSAL (invalid,
    too_large, buffer_full, unavailable, poison) for the figures of /metrics.
    """

    name = "hailwhale-errors"
    api = 2

    def __init__(self, unavailable: str = STORE_UNAVAILABLE):
        self.unavailable = unavailable

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        unavailable = self.unavailable
        poison = _POISON_READ if route.config.get("access") == "read" else _POISON

        def mapped(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except InvalidInput as error:
                _refused(_REASONS.get(error.status, "invalid"))
                return error_response(error.status, error.message, error.param)
            except BufferFull as error:
                _refused("buffer_full")
                body = {"error": str(error), "param": None, "retry_after": error.retry_after}
                return json_response(body, 503, **{"Retry-After": str(error.retry_after)})
            except PoisonWrite as error:
                _refused("poison")
                log.error("the store refused a write on %s: %s", request.path, error.reason)
                return error_response(500, poison)
            except RedisError as error:
                if isinstance(poison_or_retry(error), PoisonWrite):  # a key of the wrong
                    _refused("poison")
                    log.error("Redis refused %s for good: %s", request.path, error)  # type
                    return error_response(500, poison)
                _refused("unavailable")
                log.exception("Redis failed while serving %s", request.path)
                return error_response(503, unavailable)
            except UnicodeDecodeError:  # a form body (the query string is checked before)
                _refused("invalid")
                return error_response(400, "the request body is not valid UTF-8", "body")

        return mapped


_REASONS = {413: "too_large", 503: "unavailable"}  # InvalidInput's statuses; else invalid


def _refused(reason: str) -> None:
    request.environ[REFUSAL] = reason


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
        app.route(rule, method="OPTIONS", callback=preflight, access="public")


def add_error_handling(app: Bottle, unavailable: str = STORE_UNAVAILABLE) -> None:
    """Every error of `app` as a JSON answer with nothing internal; `unavailable`: Redis down.

    ErrorMapping maps what routes raise; this also covers what Bottle answers itself
    (404, 405, 413, 500...). A 5xx says "internal error" and nothing else: the
    exception goes to the log only. A query string that is not UTF-8 is a 400 before
    any route tries to decode it; a counting route's (`ingest=True`), by the route
    itself, with the same answer, after the access check.
    """
    bottle.debug(False)  # never a traceback in a response
    counting: frozenset[str] | None = None  # the ingest routes' paths, once all are added

    @app.hook("before_request")
    def utf8_query() -> None:
        nonlocal counting
        if counting is None:
            counting = frozenset(route.rule for route in app.routes if route.config.get("ingest"))
        if request.environ["PATH_INFO"] in counting:
            return  # whale/ingest.py parses and checks it, once (a third of a /count here)
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
        return orjson.dumps({"error": message, "param": None})

    app.default_error_handler = error_page
    app.install(ErrorMapping(unavailable))
