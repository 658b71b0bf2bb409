"""Read the events of a `/count` request: query string, form, or JSON body.

Whale and Hail both call `read_events`, so an event is accepted or refused the
same way on either tier. Every event of a request is validated before the
caller counts or buffers any of them.
"""

from __future__ import annotations

from bottle import BaseRequest

from hailwhale.config import Limits
from hailwhale.events import Event, loads, parse_batch, parse_event
from hailwhale.exceptions import InvalidEvent, RequestTooLarge
from hailwhale.periods import Periods

_JSON_TYPES = ("application/json", "text/json")


def _body(request: BaseRequest, limits: Limits) -> bytes:
    length = request.content_length
    if length > limits.request_bytes:
        raise RequestTooLarge(
            "body", f"the request body is over {limits.request_bytes} bytes; send smaller batches"
        )
    body = request.body.read(limits.request_bytes + 1)
    if len(body) > limits.request_bytes:
        raise RequestTooLarge(
            "body", f"the request body is over {limits.request_bytes} bytes; send smaller batches"
        )
    return body


def _is_json(request: BaseRequest, body: bytes) -> bool:
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type in _JSON_TYPES:
        return True
    # navigator.sendBeacon posts JSON as text/plain
    return content_type in ("", "text/plain") and body.lstrip()[:1] in (b"{", b"[")


def read_events(
    request: BaseRequest, *, periods: Periods, limits: Limits, now: float
) -> list[Event]:
    """The validated events a request carries; InvalidEvent if any is bad."""
    if request.method == "POST":
        body = _body(request, limits)
        if body.strip() and _is_json(request, body):
            document = loads(body, "body")
            if isinstance(document, list):
                return parse_batch(document, periods=periods, limits=limits, now=now)
            if isinstance(document, dict):
                return [parse_event(document, periods=periods, limits=limits, now=now,
                                    encoded=False)]
            raise InvalidEvent("body", "a JSON body must be an event object or an array of them")
    params = dict(request.params.decode().allitems())
    return [parse_event(params, periods=periods, limits=limits, now=now, encoded=True)]
