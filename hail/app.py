"""Hail's HTTP API: validate events, buffer them, answer at once (Bottle).

`/count` and `/count.gif` read events with the parser Whale uses, so both tiers
accept and refuse the same requests with the same answers; the flusher counts
them later. A full buffer is a 503 with Retry-After, never a silent drop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bottle import Bottle, HTTPResponse, request
from redis.exceptions import RedisError

from hail.buffer import Buffer
from hailwhale import __version__
from hailwhale.config import Config
from whale import idempotency
from whale.access import install_access, route_access
from whale.ingest import read_events
from whale.metrics import add_metrics
from whale.openapi import openapi_spec
from whale.web import (
    PIXEL,
    add_cors_hook,
    add_error_handling,
    add_preflight,
    json_response,
)

log = logging.getLogger("hailwhale.hail")

BUFFER_UNAVAILABLE = "the buffer is unavailable; try again shortly"


def make_hail_app(buffer: Buffer, config: Config, clock: Callable[[], float] = time.time) -> Bottle:
    """Hail's Bottle app: `/count`, `/count.gif`, `/health` and `/openapi.json` on `buffer`."""
    app = Bottle()
    periods, limits = config.periods, config.limits
    add_cors_hook(app, config.allowed_origins)
    add_metrics(app, clock, buffer.health)
    add_error_handling(app, unavailable=BUFFER_UNAVAILABLE)

    def buffered() -> None:
        now = clock()
        request_key = idempotency.request_key(request)
        events = read_events(request, periods=periods, limits=limits, now=now)
        buffer.push(events, now, request_key)

    @app.route("/count", method=["GET", "POST"], access="write", ingest=True)
    def count() -> HTTPResponse:
        buffered()
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    @app.get("/count.gif", access="write", ingest=True)
    def count_gif() -> HTTPResponse:
        buffered()
        return HTTPResponse(
            PIXEL, 200, headers={"Content-Type": "image/gif", "Cache-Control": "no-store"}
        )

    @app.get("/health", access="public")
    def health() -> HTTPResponse:
        """200 only when this node's events get counted; 503 with the problems otherwise."""
        try:
            stats, problems = buffer.health(clock(), config.health_max_lag)
        except RedisError:
            log.warning("health check: the buffer does not answer")
            return json_response({"status": "error", "buffer": "unreachable", "problems": [
                "the buffer does not answer: /count cannot buffer events"]}, 503)
        status = "degraded" if problems else "ok"
        return json_response({"status": status, "buffer": "ok", "version": __version__,
                              **stats, "problems": problems}, 503 if problems else 200)

    @app.get("/openapi.json", access="public")
    def openapi() -> HTTPResponse:
        return json_response(openapi_spec(config, route_access(app), tier="hail"))

    add_preflight(app, config.allowed_origins)
    install_access(app, config)
    return app
