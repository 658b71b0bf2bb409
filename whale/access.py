"""Who may write and who may read: each route declares its rule, one plugin enforces it.

A route says who may call it where it is declared, in the app that owns it, as Bottle
route config: `@app.get("/totals", access="read")`. The rules:

* `write` (counting, flushing): the write key.
* `read` (the data: points, totals, dimensions, meta, embeds): the read key.
* `public` (the dashboard page, static files, health, the API description, CORS
  preflights, which carry no key by design). The dashboard page is public; the data
  it asks for is not.

A route that declares no rule (or one not above) is refused when the app is built
(`install_access` raises ValueError), and, if added after that, on its first request:
never public by accident. Keys are off when none is configured (the embedded
quickstart), but the declarations are checked all the same.

A key comes as `Authorization: Bearer <key>`, `X-HailWhale-Key: <key>`, or `?key=`
in the query string (beacons and `<script src>` tags cannot send headers). No key:
401; a wrong one: 403. Keys are compared in constant time, after hashing, so neither
the content nor the length of a key shows in response times.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import orjson
from bottle import Bottle, HTTPResponse, Route, request

from hailwhale.config import Config

WRITE, READ, PUBLIC = "write", "read", "public"
RULES = (WRITE, READ, PUBLIC)
KEY_HEADER = "X-HailWhale-Key"
KEY_PARAM = "key"
# What a cross-origin request may send: the preflight lists these.
ALLOWED_HEADERS = f"Content-Type, Authorization, {KEY_HEADER}, Idempotency-Key"


def access_of(route: Route) -> str:
    """The rule `route` declares; ValueError when it declares none we know."""
    kind = route.config.get("access")
    if kind not in RULES:
        raise ValueError(f"route {route.method} {route.rule} must declare who may call it: "
                         f"access={'|'.join(map(repr, RULES))} (it says {kind!r})")
    return kind


def route_access(app: Bottle) -> dict[str, str]:
    """Each rule of `app` (e.g. `/totals`) and who may call it."""
    return {route.rule: access_of(route) for route in app.routes if route.method != "OPTIONS"}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def given_key() -> str | None:
    """The key this request carries, from the first place that has one."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    header = request.headers.get(KEY_HEADER, "").strip()
    if header:
        return header
    # The query string only: reading a form here would read the body before /count does.
    return request.query.get(KEY_PARAM) or None


def _refusal(status: int, kind: str, message: str) -> HTTPResponse:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="hailwhale {kind}"'
    return HTTPResponse(orjson.dumps({"error": message, "param": KEY_PARAM}), status, headers)


class AccessPlugin:
    """Bottle plugin: a route answers only requests with the key of the rule it declares."""

    name = "hailwhale-access"
    api = 2

    def __init__(self, config: Config):
        keys = {WRITE: config.write_key, READ: config.read_key}
        self.digests = {kind: _digest(key) for kind, key in keys.items() if key}

    def apply(self, callback: Callable, route: Route) -> Callable:
        kind = access_of(route)
        if kind not in self.digests:
            return callback
        expected = self.digests[kind]

        def guarded(*args, **kwargs):
            key = given_key()
            if key is None:
                raise _refusal(401, kind, f"{route.rule} needs the {kind} key: send "
                               f"'Authorization: Bearer <key>', '{KEY_HEADER}: <key>' or "
                               f"?{KEY_PARAM}=<key>")
            if not hmac.compare_digest(_digest(key), expected):
                raise _refusal(403, kind, f"that is not the {kind} key for {route.rule}")
            return callback(*args, **kwargs)

        return guarded


def install_access(app: Bottle, config: Config) -> None:
    """Enforce the rule each route of `app` declares; call it last. ValueError: a route has none.

    With no key configured nothing is checked per request, but every route must still
    declare its rule, so turning keys on later cannot leave a data route open.
    """
    route_access(app)
    app.install(AccessPlugin(config))
