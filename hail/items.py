"""Buffer items: how the Hail buffer spells events with their receive time and request key,
and how a claimed batch of items is read back.

An item is `<receive time> <event JSON>`, or `<receive time>#<idempotency key>
[<event JSON>, ...]` for all the events of a request with an Idempotency-Key (one
item, so that a claim never splits it): the receive time tells `/health` the age
of the oldest waiting event without decoding it; the key (percent-encoded) makes
the flusher count the request at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import orjson

from hailwhale.events import Event
from hailwhale.exceptions import InvalidEvent


def item_head(received: float, request_key: str | None = None) -> str:
    """The head of an item received at `received` (with its request's key), space included."""
    if request_key is None:
        return f"{received!r} "
    return f"{received!r}#{quote(request_key, safe='')} "


def parse_head(head: bytes | str) -> tuple[float, str | None]:
    """The receive time and idempotency key of an item's head; ValueError if it has none."""
    if isinstance(head, bytes):
        if b"#" not in head:  # the usual item: no key, no text to decode
            return float(head), None
        head = head.decode()
    received, _, key = head.partition("#")
    return float(received), (unquote(key) if key else None)


def received_at(raw: bytes | str | None) -> float | None:
    """The receive time of a buffered item; None if it has none (a foreign item)."""
    if raw is None:
        return None
    head = (raw.decode(errors="replace") if isinstance(raw, bytes) else raw).partition(" ")[0]
    try:
        return parse_head(head)[0]
    except ValueError:
        return None


@dataclass
class Decoded:
    """A batch's items read back: events, requests by idempotency key, dead letters."""

    events: list[Event] = field(default_factory=list)
    requests: dict[str, list[Event]] = field(default_factory=dict)
    duplicates: int = 0  # events of a request whose key came earlier in the batch
    dead: list[str] = field(default_factory=list)


def decode(items: Sequence[bytes], now: float) -> Decoded:
    """The events of a batch, and a dead letter for each item that is not one."""
    out = Decoded()
    for raw in items:
        head, _, body = raw.partition(b" ")  # bytes: only a dead letter needs the text
        try:
            _, request_key = parse_head(head)
            if request_key is None:
                out.events.append(Event.from_json(body))
                continue
            events = _request_events(body)
        except (ValueError, UnicodeDecodeError):
            reason = "no receive time before the event"
        except InvalidEvent as error:
            reason = error.message
        else:
            if request_key in out.requests:
                out.duplicates += len(events)  # the same request sent again
            else:
                out.requests[request_key] = events
            continue
        text = raw.decode("utf-8", errors="backslashreplace")
        out.dead.append(orjson.dumps({"item": text, "reason": reason, "at": now}).decode())
    return out


def _request_events(body: bytes) -> list[Event]:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent("event", f"malformed JSON: {error}") from None
    if not isinstance(items, list) or not items:
        raise InvalidEvent("event", "a request's events are a JSON array")
    return [Event.from_data(item) for item in items]
