"""Buffer items: how the Hail buffer spells events with their receive time and request key,
and how a claimed batch of items is read back.

An item is `<receive time> <event JSON>`, or `<receive time>#<idempotency key>
[<event JSON>, ...]` for all the events of a request with an Idempotency-Key (one
item, so that a claim never splits it): the receive time tells `/health` the age
of the oldest waiting event without decoding it; the key (percent-encoded) makes
the flusher count the request at most once.

A stream repeats a few hundred shapes (pk and dimension paths): Event.to_json
spells them first, `{"pk":...,"paths":...`, and the values after, from `,"sums":`
on. So an event's shape is read once per process and remembered by its spelling;
only the values (sums, unique ids, time, intervals) are read per event. Anything
else, or anything odd, is read by Event.from_json, which stays the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import orjson

from hailwhale.events import Event
from hailwhale.exceptions import InvalidEvent
from hailwhale.keys import Path

_VALUES = b',"sums":'  # where Event.to_json's shape ends and its values begin
_SHAPES_MAX = 100_000  # shapes remembered, forgotten all at once past this
_shapes: dict[bytes, tuple[Path, tuple[Path, ...]]] = {}  # spelling -> (pk, paths)
_INTERVALS = b',"intervals":'  # the last field Event.to_json spells
_intervals: dict[bytes, tuple[int, ...]] = {}  # `[15,3600]}` -> (15, 3600)


def item_head(received: float, request_key: str | None = None) -> str:
    """The head of an item received at `received` (with its request's key), space included."""
    if request_key is None:
        return f"{received!r} "
    return f"{received!r}#{quote(request_key, safe='')} "


def parse_head(head: bytes | str) -> tuple[float, str | None]:
    """The receive time and idempotency key of an item's head; ValueError if it has none."""
    if isinstance(head, bytes):
        if head.find(b"#") < 0:  # the usual item: no key, no text to decode
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
    events = out.events
    for raw in items:
        head, _, body = raw.partition(b" ")  # bytes: only a dead letter needs the text
        try:
            # find, not `in`: bytes.__contains__ tries the needle as an int first and
            # formats the error it makes (measured: a tenth of an item's decoding)
            if head.find(b"#") < 0:  # the usual item: its receive time alone
                float(head)  # (an item without one is not ours)
                events.append(read_event(body))
                continue
            _, request_key = parse_head(head)
            requested = _request_events(body)
        except (ValueError, UnicodeDecodeError):
            reason = "no receive time before the event"
        except InvalidEvent as error:
            reason = error.message
        else:
            if request_key in out.requests:
                out.duplicates += len(requested)  # the same request sent again
            else:
                out.requests[request_key] = requested
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


def read_event(body: bytes) -> Event:
    """The event Event.to_json spelled as `body`; its shape read once per process."""
    shape, found, values = body.partition(_VALUES)
    known = _shapes.get(shape) if found else None
    if known is None:
        event = Event.from_json(body)
        if found:
            _remember(shape, event)
        return event
    values, found, spelled = values.rpartition(_INTERVALS)
    intervals = _intervals.get(spelled) if found else None
    try:
        data = orjson.loads(b'{"sums":' + values + b"}")
        sums, uniques, at = data["sums"], data["uniques"], data["at"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return Event.from_json(body)  # the reference says what is wrong
    # Exactly the three fields between the shape and the intervals, with the types
    # from_data accepts: else the reference reads it (an older spelling, say), or refuses it.
    if (intervals is None or len(data) != 3 or type(sums) is not dict
            or type(uniques) is not dict or type(at) is not float
            or not _plain(sums, uniques)):
        event = Event.from_json(body)
        if found and intervals is None and event.intervals is not None:
            _remember_intervals(spelled, event.intervals)
        return event
    return Event.checked(*known, sums, uniques, at, intervals)


def _plain(sums: dict, uniques: dict) -> bool:
    """Sums are numbers and unique ids strings, as from_data wants them (loops: a third
    of the time of comparing sets of types, per event)."""
    for amount in sums.values():
        if type(amount) is not int and type(amount) is not float:
            return False
    for ident in uniques.values():
        if type(ident) is not str:
            return False
    return True


def _remember_intervals(spelled: bytes, intervals: tuple[int, ...]) -> None:
    """Remember the intervals spelled `[...]}` at the end of an event."""
    try:
        data = orjson.loads(spelled[:-1])
    except orjson.JSONDecodeError:
        return
    if spelled.endswith(b"}") and data == list(intervals) and len(_intervals) < _SHAPES_MAX:
        _intervals[spelled] = intervals


def _remember(shape: bytes, event: Event) -> None:
    """Remember the pk and paths spelled by `shape` when it spells them and nothing else."""
    try:
        data = orjson.loads(shape + b"}")
    except orjson.JSONDecodeError:
        return
    if type(data) is dict and len(data) == 2 and data.get("pk") == list(event.pk) and \
            data.get("paths") == [list(path) for path in event.paths]:
        if len(_shapes) >= _SHAPES_MAX:
            _shapes.clear()
        _shapes[shape] = (event.pk, event.paths)
