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
from whale.access import install_access
from whale.ingest import read_events
from whale.openapi import openapi_spec
from whale.web import (
    PIXEL,
    add_cors_hook,
    add_error_handling,
    add_preflight,
    error_response,
    handle_errors,
    json_response,
)

log = logging.getLogger("hailwhale.hail")


def handle_buffer_errors(route: Callable) -> Callable:
    """Whale's error mapping (a full buffer is a 503 there), and an unreachable buffer."""

    def wrapper(*args, **kwargs):
        try:
            return route(*args, **kwargs)
        except RedisError:
            log.exception("the buffer failed while serving %s", request.path)
            return error_response(503, "the buffer is unavailable; try again shortly")

    wrapper.__name__ = route.__name__
    return handle_errors(wrapper)


def make_hail_app(buffer: Buffer, config: Config, clock: Callable[[], float] = time.time) -> Bottle:
    """Hail's Bottle app: `/count`, `/count.gif`, `/health` and `/openapi.json` on `buffer`."""
    app = Bottle()
    periods, limits = config.periods, config.limits
    add_cors_hook(app, config.allowed_origins)
    add_error_handling(app)
    install_access(app, config)

    def buffered() -> None:
        now = clock()
        request_key = idempotency.request_key(request)
        events = read_events(request, periods=periods, limits=limits, now=now)
        buffer.push(events, now, request_key)

    @app.route("/count", method=["GET", "POST"])
    @handle_buffer_errors
    def count() -> HTTPResponse:
        buffered()
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    @app.get("/count.gif")
    @handle_buffer_errors
    def count_gif() -> HTTPResponse:
        buffered()
        return HTTPResponse(
            PIXEL, 200, headers={"Content-Type": "image/gif", "Cache-Control": "no-store"}
        )

    @app.get("/health")
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

    @app.get("/openapi.json")
    def openapi() -> HTTPResponse:
        return json_response(openapi_spec(config, tier="hail"))

    add_preflight(app, config.allowed_origins)
    return app
