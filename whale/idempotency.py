"""Idempotency keys: a client names a request, so that sending it again never counts twice.

A key comes as the `Idempotency-Key` header or, for beacons that cannot send
headers, the `idempotency_key` query parameter: 1 to 200 printable ASCII characters.
The store keeps a marker per key (KeySpace.idempotent) for the idempotency
window; the writes of the first request and the marker land together, on the
direct path (Store.count_once) and through any Hail buffer (the flusher applies
each keyed request under its key's marker), so a retry is a no-op wherever it
lands.
"""

from __future__ import annotations

import re

from bottle import BaseRequest

from hailwhale.exceptions import InvalidInput
from whale.ingest import query_pairs

HEADER = "Idempotency-Key"
PARAM = "idempotency_key"
MAX_LENGTH = 200
_KEY = re.compile(r"[\x20-\x7e]+")


def request_key(request: BaseRequest) -> str | None:
    """The request's idempotency key, or None; InvalidInput when it is not a valid one."""
    header = request.environ.get("HTTP_IDEMPOTENCY_KEY")
    params = [value for name, value in query_pairs(request.environ) if name == PARAM]
    if len(params) > 1:
        raise InvalidInput(PARAM, "give one idempotency key per request")
    given = [(HEADER, header)] if header is not None else []
    given += [(PARAM, value) for value in params]
    if not given:
        return None
    if len({value for _, value in given}) > 1:
        raise InvalidInput(PARAM, f"the {HEADER} header and the {PARAM} parameter differ; "
                                  "send one key")
    name, value = given[0]
    if not 0 < len(value) <= MAX_LENGTH or not _KEY.fullmatch(value):
        raise InvalidInput(name, f"an idempotency key is 1 to {MAX_LENGTH} printable ASCII "
                                 "characters (a UUID is a good one)")
    return value
