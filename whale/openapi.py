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
from whale.grafana_openapi import grafana_paths
from whale.metrics import metrics_openapi
from whale.openapi_parts import (
    ANY_OBJECT,
    BAD,
    DIMENSIONS,
    HAIL_HEALTH,
    JSON,
    META,
    NO_KEY,
    POINTS,
    TOO_LARGE,
    TOTALS,
    UNAVAILABLE,
    WHALE_HEALTH,
    WRONG_KEY,
    error,
    ok,
    param,
)
from whale.pages import EMBED_PARAMS
from whale.query_params import EMPTY_CHOICES, PERIOD_HEADER

# Every endpoint takes these two (whale/access.py reads the key).
_ALWAYS = [
    param("_", "Ignored: a cache-buster"),
    param(KEY_PARAM, "The access key, when the server has one (else ignored)"),
]
# 1 to 200 printable ASCII characters (whale/idempotency.py).
_IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": 200,
                    "pattern": "^[\\x20-\\x7e]{1,200}$"}
_EVENT_PARAMS = [
    param("pk", "Category: a string or a JSON list path"),
    param("category", "Alias of pk"),
    param("dimensions", "A name, a JSON list path or a JSON object tree"),
    param("dimension", "Alias of dimensions"),
    param("metrics", 'A name, a JSON list of names, or a JSON object like {"dollars": 5}'),
    param("metric", "Alias of metrics"),
    param("at", "Epoch seconds or ISO 8601 (UTC when no zone); default now"),
    param("idempotency_key", "Names the request, so that a retry counts once (for beacons, "
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
    period = "A configured period" + (" (default: every one; one with from or to)"
                                      if every_period else "")
    limits = config.limits
    return [
        param("pk", "Category path"),
        param("category", "Alias of pk"),
        param("dimensions", "The parent dimension path"),
        param("dimension", "Alias of dimensions"),
        param("metrics", "A name, a formula (dollars/hits) or a JSON list of them, at most "
                          f"{limits.query_metrics}"),
        param("metric", "Alias of metrics"),
        param("period", period + "; empty: the default",
               {"type": "string", "enum": [*config.periods.names, ""]}),
        param("depth", "0 = the dimension alone, 1 = plus children, 2 = grandchildren",
               _or_empty({"type": "integer", "minimum": 0, "maximum": 3})),
        param("threshold", "Show a child when its total is at least this share of its "
                            "parent's", _or_empty({"type": "number", "minimum": 0})),
        param("limit", f"Children per parent at most (0 = the most, {limits.query_limit})",
               _or_empty({"type": "integer", "minimum": 0, "maximum": limits.query_limit})),
        param("sort", "The metric that ranks children"),
        param("from", "Start of a time range: epoch seconds, ISO 8601 (UTC when no zone), "
                      "now, or before now (-15m, -6h, -2d, -1w, -1mo, -1y). Without a "
                      "period, the finest that keeps it answers (the "
                      f"{PERIOD_HEADER} header names it); at most "
                      f"{limits.points} buckets per series"),
        param("to", "End of a time range, spelled as from; default (and at the latest) "
                    "now. Alone: the period's length ending there"),
        param("format", "series: lists in the server's order, each series with its key and "
                        "path (/plotpoints, /totals); absent: objects keyed by dim_key",
              {"type": "string", "enum": ["series", ""]}),
        param("empty", "null: a formula's point or total that a division by an empty (0) "
                       "bucket or total leaves without a value is null (a graph draws a "
                       "gap); zero or absent: 0",
              {"type": "string", "enum": [*EMPTY_CHOICES, ""]}),
        param("tzoffset", "Ignored (the original plugin sent it): buckets are UTC",
               deprecated=True),
        *_ALWAYS,
    ]


def _event_body(config: Config) -> dict:
    return {
        "required": False,
        "content": {
            JSON: {"schema": {"oneOf": [
                ANY_OBJECT,
                {"type": "array", "items": ANY_OBJECT, "minItems": 1,
                 "maxItems": config.limits.batch},
            ]}},
            "application/x-www-form-urlencoded": {"schema": ANY_OBJECT},
        },
    }


def _count(config: Config, summary: str) -> dict:
    responses = {"200": ok("Counted (or buffered)", "text/plain"), "400": BAD,
                 "413": TOO_LARGE, "503": UNAVAILABLE}
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
    answered = {PERIOD_HEADER: {
        "description": "The period that answered a time range (from, to); absent otherwise",
        "schema": {"type": "string", "enum": config.periods.names}}}
    return {"get": {
        "summary": summary,
        "parameters": _query_params(config, every_period),
        "responses": {"200": {**ok(summary, schema=schema), "headers": answered}, "400": BAD,
                      "503": error("The store is unavailable, or the query ran past "
                                    f"{ENV_VARS['query_timeout']} and was stopped")},
    }}



def _health(schema: dict) -> dict:
    return {"get": {
        "summary": "Store reachable, buffer depth, last flush",
        "responses": {"200": ok("Healthy", schema=schema),
                      "503": ok("Counting does not work (the problems say why)",
                                 schema=schema)},
    }}


def _count_gif() -> dict:
    return {"get": {
        "summary": "Count one event, answering a 1x1 GIF (beacons)",
        "parameters": _EVENT_PARAMS,
        "responses": {"200": ok("Counted (or buffered)", "image/gif"), "400": BAD,
                      "503": UNAVAILABLE},
    }}


def _openapi_json() -> dict:
    return {"get": {"summary": "This description",
                    "responses": {"200": ok("OpenAPI 3.1", schema=ANY_OBJECT)}}}


def _whale_paths(config: Config) -> dict:
    flushed = {"type": "object", "required": ["flushed"],
               "properties": {"flushed": {"type": "integer", "minimum": 0}}}
    return {
        "/count": _count(config, "Count one event (through the Hail buffer when there is one)"),
        "/count_now": _count(config, "Count one event directly"),
        "/count.gif": _count_gif(),
        "/flush_hail": {
            "post": {"summary": "Count every event buffered before the call",
                     "responses": {"200": ok("Flushed", schema=flushed), "503": UNAVAILABLE}},
            "get": {"summary": "The same, for old clients: answers OK",
                    "responses": {"200": ok("Flushed", "text/plain"), "503": UNAVAILABLE}},
        },
        "/plotpoints": _query(config, "Points per bucket, flot-ready", POINTS),
        "/totals": _query(config, "Window totals per period", TOTALS, every_period=True),
        "/dimensions": _query(config, "Children of a dimension with their totals", DIMENSIONS),
        "/meta": {"get": {
            "summary": "What the dashboard offers: pks seen lately, the pk's metrics, periods",
            "parameters": [param("pk", "Category path whose metrics to list"), *_ALWAYS],
            "responses": {"200": ok("Choices", schema=META), "400": BAD,
                          "503": UNAVAILABLE},
        }},
        "/graph.js": {"get": {
            "summary": "A script that embeds a live graph where its tag stands",
            "parameters": [*(param(name, "A jQuery plugin option (README)")
                             for name in sorted(EMBED_PARAMS - {KEY_PARAM})), *_ALWAYS],
            "responses": {"200": ok("The embedding script", "application/javascript"),
                          "400": BAD},
        }},
        "/": {"get": {"summary": "The dashboard",
                      "responses": {"200": ok("The dashboard page", "text/html")}}},
        "/static/{path}": {"get": {
            "summary": "The jQuery plugin, vendored jQuery and flot, the dashboard's files",
            "parameters": [{"name": "path", "in": "path", "required": True,
                            "schema": {"type": "string"}, "example": "js/jquery.hailwhale.js"}],
            "responses": {"200": {"description": "The file", "content": {"*/*": {}}},
                          "304": {"description": "Not modified since the cached copy"},
                          "403": error("Outside the static folder"),
                          "404": error("No such file")},
        }},
        "/health": _health(WHALE_HEALTH),
        "/metrics": metrics_openapi(),
        "/openapi.json": _openapi_json(),
        **grafana_paths(config, _ALWAYS),
    }


def _hail_paths(config: Config) -> dict:
    count = _count(config, "Buffer one event (or a batch) for the flusher")
    return {"/count": count, "/count.gif": _count_gif(), "/health": _health(HAIL_HEALTH),
            "/metrics": metrics_openapi(), "/openapi.json": _openapi_json()}


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
            operation["responses"] = {**operation["responses"], "401": NO_KEY,
                                      "403": WRONG_KEY}


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
