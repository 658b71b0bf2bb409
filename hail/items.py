"""Buffer items: how the Hail buffer spells an event with its receive time and request key.

An item is `<receive time> <event JSON>`, or `<receive time>#<idempotency key>
[<event JSON>, ...]` for all the events of a request with an Idempotency-Key (one
item, so that a claim never splits it): the receive time tells `/health` the age
of the oldest waiting event without decoding it; the key (percent-encoded) makes
the flusher count the request at most once.
"""

from __future__ import annotations

from urllib.parse import quote, unquote


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
