"""Read the events of a `/count` request: query string, form, or JSON body.

Whale and Hail both call `read_events`, so an event is accepted or refused the
same way on either tier. Every event of a request is validated before the
caller counts or buffers any of them.

Strict, so that a mistake is a 400 and never a wrong count: an unknown or repeated
parameter, a body that is neither a form nor JSON, a POST that carries nothing.

The body is read here, from `wsgi.input`, never by Bottle: Bottle decodes a body
sent with `Transfer-Encoding: chunked` itself, but granian (and gunicorn, gevent,
waitress, mod_wsgi) have decoded it already, so an ordinary chunked POST failed to parse and
a body chunked twice was decoded and spooled to disk whole, past every limit. A
server that decoded the chunks says so (`wsgi.input_terminated`); otherwise (the
standard library's wsgiref) the chunks are decoded here. Either way reading stops
at the request limit.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Callable
from io import BytesIO
from itertools import repeat
from urllib.parse import parse_qsl

from bottle import BaseRequest, FormsDict

from hailwhale.config import Limits
from hailwhale.events import FIELDS, Event, parse_batch, parse_event, unknown_field
from hailwhale.exceptions import InvalidEvent, RequestTooLarge
from hailwhale.expand import series_count
from hailwhale.periods import Periods
from hailwhale.values import loads

# Parameters of the request, not of the event: a cache-buster, the write key, and the
# Idempotency-Key of beacons (read by the counting routes from the query string).
REQUEST_PARAMS = frozenset({"_", "key", "idempotency_key"})
# `_` and `key` are never refused, even repeated (jQuery's cache-buster comes once, but
# a proxy may add its own); every other parameter may come once.
_ALWAYS = frozenset({"_", "key"})
_JSON_TYPES = ("application/json", "text/json")
# More parameters than these are repeats or unknown anyway: refuse before parsing them.
_MAX_FIELDS = 2 * (len(FIELDS) + len(REQUEST_PARAMS))
# Where read_events notes how many events the request carries, for /metrics
# (whale/telemetry.py counts them as accepted or refused once the answer is known).
EVENTS_READ = "hailwhale.events"
_QUERY = "hailwhale.query"  # where query_pairs keeps what it parsed
_PIECE = 64 * 1024
_CHUNK_LINE = 1024  # a chunk-size line with its extensions
_TRAILERS = 32


def read_events(
    request: BaseRequest, *, periods: Periods, limits: Limits, now: float
) -> list[Event]:
    """The validated events a request carries; InvalidEvent if any is bad.

    `HEAD` is validated as GET is, so it answers what GET would, but it carries no
    event to count: an empty list.
    """
    events = _read(request, periods=periods, limits=limits, now=now)
    if request.method != "HEAD":
        request.environ[EVENTS_READ] = len(events)
    series = sum(map(series_count, events, repeat(len(periods.intervals), len(events))))
    if series > limits.series:
        raise InvalidEvent("batch", f"these events write {series} series, over the "
                                    f"{limits.series} one request may write; send fewer "
                                    "events, or events with fewer dimensions and metrics")
    return [] if request.method == "HEAD" else events


def query_pairs(environ: dict) -> list[tuple[str, str]]:
    """The request's query string as name/value pairs, parsed once (InvalidEvent if it is not
    UTF-8 or has too many parameters): the counting routes read it here, not from Bottle."""
    pairs = environ.get(_QUERY)
    if pairs is None:
        pairs = environ[_QUERY] = _pairs(_query_string(environ), "query")
    return pairs


def _read(request: BaseRequest, *, periods: Periods, limits: Limits, now: float) -> list[Event]:
    query = query_pairs(request.environ)
    body = read_body(request, limits) if request.method == "POST" else b""
    content_type = request.environ.get("CONTENT_TYPE", "")  # as sent: a boundary has case
    if not _is_json(content_type, body):
        if request.method == "POST" and _unframed(request.environ, content_type):
            raise InvalidEvent("body", "a chunked body must be JSON or multipart/form-data: "
                                       "a form or an empty body cut off on its way cannot be "
                                       "told from a whole one; send forms with a "
                                       "Content-Length")
        form = _form(content_type, body) if body.strip() else []
        if request.method == "POST" and not query and not form:
            raise InvalidEvent("body", "this POST carries no event: send a JSON or form body, "
                                       "or the event in the query string")
        _remember(request, form)
        return [parse_event(_event_params(query + form), periods=periods, limits=limits,
                            now=now, encoded=True)]
    _remember(request, [])
    document = loads(body, "body")
    extra = next(iter(_event_params(query)), None)
    if extra is not None and extra not in FIELDS:
        raise unknown_field(extra, encoded=True)
    if extra is not None:
        raise InvalidEvent(extra, f"{extra} is in the query string, but the body is JSON: "
                                  "give every event field in the JSON")
    if isinstance(document, list):
        return parse_batch(document, periods=periods, limits=limits, now=now)
    if isinstance(document, dict):
        return [parse_event(document, periods=periods, limits=limits, now=now, encoded=False)]
    raise InvalidEvent("body", "a JSON body is an event object or an array of them, not "
                               f"a JSON {type(document).__name__}")


def read_body(request: BaseRequest, limits: Limits) -> bytes:
    """The request body, de-chunked once, at most `limits.request_bytes` (else a 413)."""
    environ = request.environ
    cached = environ.get("hailwhale.body")
    if cached is not None:
        return cached
    stream = environ.get("wsgi.input")
    length = _content_length(environ.get("CONTENT_LENGTH"))
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if stream is None:
        body = b""
    elif chunked and not _server_dechunks(environ, stream):
        body = _read_chunked(stream.read, limits)
    elif length is not None and not chunked:
        if length > limits.request_bytes:
            raise _too_large(limits)  # before a byte is read
        body = _read_exactly(stream.read, length)
    elif chunked:
        body = _read_to_end(stream.read, limits)
    else:  # no length and not chunked: HTTP/1.1 says there is no body
        body = b""
    environ["hailwhale.body"] = body
    return body


def _unframed(environ: dict, content_type: str) -> bool:
    """Whether a body that is not JSON came chunked through a server that decoded the
    chunks, and would not end with a mark of its own: urlencoded or empty.

    granian reads a chunked body that is cut off (the client went away) or malformed as
    if it had ended there, with no error, so a form cut after `dimensions=ab` would count
    `ab`, and use up its Idempotency-Key. JSON cut anywhere does not parse, and multipart
    lacks its closing boundary (a defect), so those still come chunked.
    """
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return False
    multipart = content_type.split(";")[0].strip().lower() == "multipart/form-data"
    return not multipart and _server_dechunks(environ, environ.get("wsgi.input"))


def _server_dechunks(environ: dict, stream: object) -> bool:
    """Whether the server decoded `Transfer-Encoding: chunked` before the app reads."""
    # wsgi.input_terminated: granian, gunicorn, waitress, mod_wsgi, werkzeug; gevent's pywsgi
    # decodes the chunks without saying so, but its input shows it.
    return bool(environ.get("wsgi.input_terminated")) or bool(
        getattr(stream, "chunked_input", False))


def _content_length(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    if not text.strip().isdigit():
        raise InvalidEvent("body", f"Content-Length {text[:20]!r} is not a number of bytes")
    return int(text)


def _too_large(limits: Limits) -> RequestTooLarge:
    return RequestTooLarge(
        "body", f"the request body is over {limits.request_bytes} bytes; send smaller batches")


def _read_exactly(read: Callable[[int], bytes], length: int) -> bytes:
    parts, left = [], length
    while left:
        part = read(min(left, _PIECE))
        if not part:
            raise InvalidEvent("body", f"the body ended {left} bytes before its Content-Length")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_to_end(read: Callable[[int], bytes], limits: Limits) -> bytes:
    """A body the server de-chunked: read until its end, or one byte past the limit."""
    parts, size = [], 0
    while part := read(min(_PIECE, limits.request_bytes + 1 - size)):
        parts.append(part)
        size += len(part)
        if size > limits.request_bytes:
            raise _too_large(limits)
    return b"".join(parts)


def _read_chunked(read: Callable[[int], bytes], limits: Limits) -> bytes:
    """Decode `Transfer-Encoding: chunked` from the raw stream; a chunk past the limit
    is refused from its size line, before it is read."""
    malformed = InvalidEvent("body", "malformed chunked body")

    def line() -> bytes:
        text = b""
        while not text.endswith(b"\r\n"):
            char = read(1)
            if not char or len(text) > _CHUNK_LINE:
                raise malformed
            text += char
        return text[:-2]

    parts, size = [], 0
    while True:
        digits = line().partition(b";")[0].strip()
        if not digits or digits.strip(b"0123456789abcdefABCDEF"):
            raise malformed
        chunk = int(digits, 16)
        if chunk == 0:
            break
        size += chunk
        if size > limits.request_bytes:
            raise _too_large(limits)
        parts.append(_read_exactly(read, chunk))
        if read(2) != b"\r\n":
            raise malformed
    for _ in range(_TRAILERS):  # trailer fields, up to the blank line that ends the body
        if not line():
            return b"".join(parts)
    raise malformed


def _is_json(content_type: str, body: bytes) -> bool:
    """Whether the body is JSON (not a form, and not empty).

    A body is JSON when it says so or when it starts with `{` or `[`, whatever its
    Content-Type: curl sends JSON as a form by default, sendBeacon as text/plain, and
    no encoded form starts with either.
    """
    stripped = body.lstrip()
    media = content_type.split(";")[0].strip().lower()
    is_json = media in _JSON_TYPES or media.endswith("+json")
    return stripped[:1] in (b"{", b"[") or (is_json and bool(stripped))


def _form(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The fields of a form body: urlencoded, or multipart (FormData)."""
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return _multipart(content_type, body)
    try:
        text = body.decode("utf-8")  # curl -d sends names unencoded
    except UnicodeDecodeError:
        raise InvalidEvent("body", "the request body is not valid UTF-8") from None
    return _pairs(text, "body")


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart() or message.defects:
        raise InvalidEvent("body", "malformed multipart/form-data body")
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename() is not None:
            raise InvalidEvent(str(name or "body"), "a form field has a name and no file")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):  # a multipart inside the form
            raise InvalidEvent(str(name), "a form field holds text only")
        try:
            fields.append((str(name), payload.decode("utf-8")))
        except UnicodeDecodeError:
            raise InvalidEvent("body", "the request body is not valid UTF-8") from None
    return fields


def _query_string(environ: dict) -> str:
    """QUERY_STRING as text: WSGI gives the raw bytes as latin-1, so UTF-8 is decoded here."""
    text = environ.get("QUERY_STRING", "")
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:  # a server that decoded it already
        return text
    except UnicodeDecodeError:
        raise InvalidEvent("query", "the query string is not valid UTF-8") from None


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    """The name/value pairs of a query string or urlencoded form, in UTF-8."""
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                         max_num_fields=_MAX_FIELDS)
    except UnicodeDecodeError:
        raise InvalidEvent(where, f"the {'query string' if where == 'query' else 'request body'}"
                                  " is not valid UTF-8") from None
    except ValueError:  # max_num_fields
        raise InvalidEvent(where, f"more than {_MAX_FIELDS} parameters; an event has pk, "
                                  "dimensions, metrics and at") from None


def _event_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The event fields of a query string and form, each given once, unknown ones kept
    (parse_event refuses them by name); request parameters left out."""
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in _ALWAYS:
            continue
        if name in seen:
            param = name if len(name) <= 100 else name[:100] + "..."
            raise InvalidEvent(param, f"{param} is given more than once; give it once")
        seen.add(name)
        if name not in REQUEST_PARAMS:
            params[name] = value
    return params


def _remember(request: BaseRequest, form: list[tuple[str, str]]) -> None:
    """Let Bottle's request.params, .forms and .body answer from what was read here.

    Without this, code that reads `request.params` after `read_events` (the
    idempotency key of a beacon, say) would make Bottle parse the consumed input
    again, decode the chunks a second time, or refuse a body over its 100 KiB.
    """
    post = FormsDict()
    for name, value in form:
        post[name] = value.encode("utf-8").decode("latin-1")  # Bottle's native strings
    body = request.environ.get("hailwhale.body", b"")
    request.environ["bottle.request.body"] = BytesIO(body)
    request.environ["bottle.request.post"] = post

