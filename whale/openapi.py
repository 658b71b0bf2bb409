"""The OpenAPI 3.1 description of Whale's (or Hail's) HTTP API, served at `/openapi.json`.

It describes what the server answers, errors included, so that a tool
(tests/test_schemathesis.py runs schemathesis) can check every response against
it. Every endpoint refuses a parameter it does not know, so each lists exactly
the parameters it takes. The keys (whale/access.py) appear as security
requirements only on the routes that declare them (the app passes each route's
`access`), and only when they are configured (then the `key` parameter is the
`query` security scheme, not a parameter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hailwhale import __version__
from hailwhale.config import ENV_VARS, Config
from whale.access import KEY_HEADER, KEY_PARAM, READ, WRITE
from whale.pages import EMBED_PARAMS

_JSON = "application/json"
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "param"],
    "properties": {"error": {"type": "string"}, "param": {"type": ["string", "null"]}},
}


def _error(description: str, **extra: dict) -> dict:
    return {"description": description,
            "content": {_JSON: {"schema": {**_ERROR_SCHEMA, **extra}}}}


_BAD = _error("Bad input: nothing was counted or read")
_UNAVAILABLE = {
    **_error("The store or the buffer is unavailable, or the buffer is full: retry later",
             properties={**_ERROR_SCHEMA["properties"], "retry_after": {"type": "integer"}}),
    "headers": {"Retry-After": {"description": "Seconds to wait (a full buffer)",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}
_TOO_LARGE = _error("The request body is over the size limit")
_NO_KEY = _error("This endpoint needs a key and the request carries none")
_WRONG_KEY = _error("The request carries a key, not the right one")
_ANY_OBJECT = {"type": "object"}


def _ok(description: str, media: str = _JSON, schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {media: {"schema": schema if schema is not None else {"type": "string"}}}}


def _param(name: str, description: str, schema: dict | None = None, **extra: object) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
        **extra,
    }


# Every endpoint takes these two (whale/access.py reads the key).
_ALWAYS = [
    _param("_", "Ignored: a cache-buster"),
    _param(KEY_PARAM, "The access key, when the server has one (else ignored)"),
]
# 1 to 200 printable ASCII characters (whale/idempotency.py).
_IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": 200,
                    "pattern": "^[\\x20-\\x7e]{1,200}$"}
_EVENT_PARAMS = [
    _param("pk", "Category: a string or a JSON list path"),
    _param("category", "Alias of pk"),
    _param("dimensions", "A name, a JSON list path or a JSON object tree"),
    _param("dimension", "Alias of dimensions"),
    _param("metrics", 'A name, a JSON list of names, or a JSON object like {"dollars": 5}'),
    _param("metric", "Alias of metrics"),
    _param("at", "Epoch seconds or ISO 8601 (UTC when no zone); default now"),
    _param("idempotency_key", "Names the request, so that a retry counts once (for beacons, "
                              "which cannot send the Idempotency-Key header)", _IDEMPOTENCY_KEY),
    {"name": "Idempotency-Key", "in": "header", "required": False,
     "description": "Names the request: requests with the same key within the idempotency "
                    "window count once", "schema": _IDEMPOTENCY_KEY},
    *_ALWAYS,
]


def _or_empty(schema: dict) -> dict:
    """A number parameter that may also be given empty (meaning its default)."""
    return {"oneOf": [schema, {"type": "string", "maxLength": 0}]}


def _query_params(config: Config, every_period: bool = False) -> list[dict]:
    period = "A configured period" + (" (default: every one)" if every_period else "")
    limits = config.limits
    return [
        _param("pk", "Category path"),
        _param("category", "Alias of pk"),
        _param("dimensions", "The parent dimension path"),
        _param("dimension", "Alias of dimensions"),
        _param("metrics", "A name, a formula (dollars/hits) or a JSON list of them, at most "
                          f"{limits.query_metrics}"),
        _param("metric", "Alias of metrics"),
        _param("period", period + "; empty: the default",
               {"type": "string", "enum": [*config.periods.names, ""]}),
        _param("depth", "0 = the dimension alone, 1 = plus children, 2 = grandchildren",
               _or_empty({"type": "integer", "minimum": 0, "maximum": 3})),
        _param("threshold", "Show a child when its total is at least this share of its "
                            "parent's", _or_empty({"type": "number", "minimum": 0})),
        _param("limit", f"Children per parent at most (0 = the most, {limits.query_limit})",
               _or_empty({"type": "integer", "minimum": 0, "maximum": limits.query_limit})),
        _param("sort", "The metric that ranks children"),
        _param("tzoffset", "Ignored (the original plugin sent it): buckets are UTC",
               deprecated=True),
        *_ALWAYS,
    ]


def _event_body(config: Config) -> dict:
    return {
        "required": False,
        "content": {
            _JSON: {"schema": {"oneOf": [
                _ANY_OBJECT,
                {"type": "array", "items": _ANY_OBJECT, "minItems": 1,
                 "maxItems": config.limits.batch},
            ]}},
            "application/x-www-form-urlencoded": {"schema": _ANY_OBJECT},
        },
    }


def _count(config: Config, summary: str) -> dict:
    responses = {"200": _ok("Counted (or buffered)", "text/plain"), "400": _BAD,
                 "413": _TOO_LARGE, "503": _UNAVAILABLE}
    return {
        "get": {"summary": summary, "parameters": _EVENT_PARAMS, "responses": responses},
        "post": {
            "summary": summary + " (form, JSON event, or JSON array batch)",
            "parameters": _EVENT_PARAMS,
            "requestBody": _event_body(config),
            "responses": responses,
        },
    }


def _query(config: Config, summary: str, schema: dict, every_period: bool = False) -> dict:
    return {"get": {
        "summary": summary,
        "parameters": _query_params(config, every_period),
        "responses": {"200": _ok(summary, schema=schema), "400": _BAD,
                      "503": _error("The store is unavailable, or the query ran past "
                                    f"{ENV_VARS['query_timeout']} and was stopped")},
    }}


_NUMBERS = {"type": "object", "additionalProperties": {"type": "number"}}
_POINTS = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        },
    },
}
_TOTALS = {"type": "object",
           "additionalProperties": {"type": "object", "additionalProperties": _NUMBERS}}
_DIMENSIONS = {
    "type": "object",
    "required": ["period", "parent", "children"],
    "properties": {
        "period": {"type": "string"},
        "parent": {"type": "string"},
        "children": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "key", "totals"],
                "properties": {"name": {"type": "string"}, "key": {"type": "string"},
                               "totals": _NUMBERS},
            },
        },
    },
}
_META = {
    "type": "object",
    "required": ["pks", "metrics", "periods"],
    "properties": {
        "pks": {"type": "array", "items": {"type": "string"}},
        "metrics": {"type": "object",
                    "additionalProperties": {"type": "string", "enum": ["sum", "unique"]}},
        "periods": {"type": "array", "items": {"type": "string"}},
    },
}
_LAST_FLUSH = {
    "type": ["object", "null"],
    "required": ["time", "events", "seconds"],
    "properties": {"time": {"type": "number"}, "events": {"type": "integer"},
                   "seconds": {"type": "number"}},
}
_BUFFER_STATS = {
    "depth": {"type": "integer", "minimum": 0},
    "bytes": {"type": "integer", "minimum": 0},
    "last_flusher_beat_age_seconds": {"type": ["number", "null"]},
    "oldest_age_seconds": {"type": ["number", "null"]},
    "in_flight": {"type": "integer", "minimum": 0},
    "last_flush": _LAST_FLUSH,
    "dead_letters": {"type": "integer", "minimum": 0},
}
_STATUS = {"type": "string", "enum": ["ok", "degraded", "error"]}
_PROBLEMS = {"type": "array", "items": {"type": "string"},
             "description": "What keeps counting from working, one sentence each"}
_WHALE_HEALTH = {
    "type": "object",
    "required": ["status", "version", "periods", "store"],
    "properties": {
        "status": _STATUS,
        "problems": _PROBLEMS,
        "version": {"type": "string"},
        "periods": {"type": "array", "items": {"type": "string"}},
        "store": {"type": "string", "enum": ["ok", "unreachable"]},
        "buffer": {"type": "object", "required": ["status"],
                   "properties": {"status": {"type": "string", "enum": ["ok", "unreachable"]},
                                  **_BUFFER_STATS}},
        "cardinality": {
            "type": "object",
            "description": "The cardinality guard: its limits (children per parent, pks, "
                           "metric names per pk), and how many parents reached each (what "
                           "they refused is counted as `_other`); no names",
            "required": ["limits", "capped_parents"],
            "properties": {
                "limits": {"type": "object", "additionalProperties": {"type": "integer"}},
                "capped_parents": {"type": "object",
                                   "additionalProperties": {"type": "integer"}},
            },
        },
    },
}
_HAIL_HEALTH = {
    "type": "object",
    "required": ["status", "buffer"],
    "properties": {"status": _STATUS, "buffer": {"type": "string", "enum": ["ok", "unreachable"]},
                   "problems": _PROBLEMS, "version": {"type": "string"}, **_BUFFER_STATS},
}


def _health(schema: dict) -> dict:
    return {"get": {
        "summary": "Store reachable, buffer depth, last flush",
        "responses": {"200": _ok("Healthy", schema=schema),
                      "503": _ok("Counting does not work (the problems say why)",
                                 schema=schema)},
    }}


def _count_gif() -> dict:
    return {"get": {
        "summary": "Count one event, answering a 1x1 GIF (beacons)",
        "parameters": _EVENT_PARAMS,
        "responses": {"200": _ok("Counted (or buffered)", "image/gif"), "400": _BAD,
                      "503": _UNAVAILABLE},
    }}


def _openapi_json() -> dict:
    return {"get": {"summary": "This description",
                    "responses": {"200": _ok("OpenAPI 3.1", schema=_ANY_OBJECT)}}}


def _whale_paths(config: Config) -> dict:
    flushed = {"type": "object", "required": ["flushed"],
               "properties": {"flushed": {"type": "integer", "minimum": 0}}}
    return {
        "/count": _count(config, "Count one event (through the Hail buffer when there is one)"),
        "/count_now": _count(config, "Count one event directly"),
        "/count.gif": _count_gif(),
        "/flush_hail": {
            "post": {"summary": "Count every event buffered before the call",
                     "responses": {"200": _ok("Flushed", schema=flushed), "503": _UNAVAILABLE}},
            "get": {"summary": "The same, for old clients: answers OK",
                    "responses": {"200": _ok("Flushed", "text/plain"), "503": _UNAVAILABLE}},
        },
        "/plotpoints": _query(config, "Points per bucket, flot-ready", _POINTS),
        "/totals": _query(config, "Window totals per period", _TOTALS, every_period=True),
        "/dimensions": _query(config, "Children of a dimension with their totals", _DIMENSIONS),
        "/meta": {"get": {
            "summary": "What the dashboard offers: pks seen lately, the pk's metrics, periods",
            "parameters": [_param("pk", "Category path whose metrics to list"), *_ALWAYS],
            "responses": {"200": _ok("Choices", schema=_META), "400": _BAD,
                          "503": _UNAVAILABLE},
        }},
        "/graph.js": {"get": {
            "summary": "A script that embeds a live graph where its tag stands",
            "parameters": [*(_param(name, "A jQuery plugin option (README)")
                             for name in sorted(EMBED_PARAMS - {KEY_PARAM})), *_ALWAYS],
            "responses": {"200": _ok("The embedding script", "application/javascript"),
                          "400": _BAD},
        }},
        "/": {"get": {"summary": "The dashboard",
                      "responses": {"200": _ok("The dashboard page", "text/html")}}},
        "/static/{path}": {"get": {
            "summary": "The jQuery plugin, vendored jQuery and flot, the dashboard's files",
            "parameters": [{"name": "path", "in": "path", "required": True,
                            "schema": {"type": "string"}, "example": "js/jquery.hailwhale.js"}],
            "responses": {"200": {"description": "The file", "content": {"*/*": {}}},
                          "304": {"description": "Not modified since the cached copy"},
                          "403": _error("Outside the static folder"),
                          "404": _error("No such file")},
        }},
        "/health": _health(_WHALE_HEALTH),
        "/openapi.json": _openapi_json(),
    }


def _hail_paths(config: Config) -> dict:
    count = _count(config, "Buffer one event (or a batch) for the flusher")
    return {"/count": count, "/count.gif": _count_gif(), "/health": _health(_HAIL_HEALTH),
            "/openapi.json": _openapi_json()}


_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "header": {"type": "apiKey", "in": "header", "name": KEY_HEADER},
    "query": {"type": "apiKey", "in": "query", "name": KEY_PARAM},
}


_BOTTLE_WILDCARD = re.compile(r"<(\w+)(?::[^>]*)?>")


def _secure(paths: dict, config: Config, access: Mapping[str, str]) -> None:
    """Mark the operations a configured key guards, with the answers a missing key gets."""
    keys = {WRITE: config.write_key, READ: config.read_key}
    rules = {_BOTTLE_WILDCARD.sub(r"{\1}", rule): kind for rule, kind in access.items()}
    for path, operations in paths.items():
        if not keys.get(rules.get(path)):
            continue
        for operation in operations.values():
            operation["parameters"] = [p for p in operation.get("parameters", [])
                                       if (p["name"], p["in"]) != (KEY_PARAM, "query")]
            operation["security"] = [{name: []} for name in _SCHEMES]
            operation["responses"] = {**operation["responses"], "401": _NO_KEY,
                                      "403": _WRONG_KEY}


def openapi_spec(config: Config, access: Mapping[str, str], tier: str = "whale") -> dict:
    """The API description of Whale (or, `tier="hail"`, of a Hail node) as configured.

    `access`: who may call each route (whale/access.py's `route_access` of the app).
    """
    paths = _hail_paths(config) if tier == "hail" else _whale_paths(config)
    _secure(paths, config, access)
    name = "Hail" if tier == "hail" else "Whale"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"HailWhale ({name})",
            "version": __version__,
            "description": "Real-time counting of rolled-up, multi-dimensional metrics. "
            f"Configured periods: {', '.join(config.periods.names)}.",
        },
        "paths": paths,
        "components": {"securitySchemes": _SCHEMES},
    }
