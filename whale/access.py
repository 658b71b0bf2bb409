"""Who may write and who may read: the optional write and read keys, for Whale and Hail.

One Bottle plugin decides by the rule of the route a request matched, so a route
added later (by `add_pages`, say) is covered by the table below, not by its author
remembering to check. Off when no key is configured (the embedded quickstart).

* write (`/count`, `/count_now`, `/count.gif`, `/flush_hail`): the write key.
* read (`/plotpoints`, `/totals`, `/dimensions`, `/meta`, `/graph.js`): the read key.
* everything else (`/`, `/static/...`, `/health`, `/openapi.json`, CORS preflights):
  public. The dashboard page is public; the data it asks for is not.

A key comes as `Authorization: Bearer <key>`, `X-HailWhale-Key: <key>`, or `?key=`
in the query string (beacons and `<script src>` tags cannot send headers). No key:
401; a wrong one: 403. Keys are compared in constant time, after hashing, so neither
the content nor the length of a key shows in response times.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import simplejson
from bottle import Bottle, HTTPResponse, Route, request

from hailwhale.config import Config

WRITE = "write"
READ = "read"
ROUTES = {
    "/count": WRITE, "/count_now": WRITE, "/count.gif": WRITE, "/flush_hail": WRITE,
    "/plotpoints": READ, "/totals": READ, "/dimensions": READ, "/meta": READ,
    "/graph.js": READ,
}
KEY_HEADER = "X-HailWhale-Key"
KEY_PARAM = "key"
# What a cross-origin request may send: the preflight lists these.
ALLOWED_HEADERS = f"Content-Type, Authorization, {KEY_HEADER}, Idempotency-Key"


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
    return HTTPResponse(simplejson.dumps({"error": message, "param": KEY_PARAM}), status, headers)


class AccessPlugin:
    """Bottle plugin: a route of `ROUTES` answers only requests with its key."""

    name = "hailwhale-access"
    api = 2

    def __init__(self, config: Config):
        self.keys = {WRITE: config.write_key, READ: config.read_key}
        self.digests = {kind: _digest(key) for kind, key in self.keys.items() if key}

    def apply(self, callback: Callable, route: Route) -> Callable:
        kind = ROUTES.get(route.rule)
        if kind is None or kind not in self.digests or route.method == "OPTIONS":
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
    """Require the configured keys on `app`'s write and read routes (none: no checks)."""
    if config.write_key or config.read_key:
        app.install(AccessPlugin(config))
