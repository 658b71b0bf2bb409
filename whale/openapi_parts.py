"""OpenAPI building blocks: the answers' schemas, the errors, and parameter helpers.

whale/openapi.py assembles them into the description of each route.
"""

from __future__ import annotations

JSON = "application/json"
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "param"],
    "properties": {"error": {"type": "string"}, "param": {"type": ["string", "null"]}},
}


def error(description: str, **extra: dict) -> dict:
    return {"description": description,
            "content": {JSON: {"schema": {**_ERROR_SCHEMA, **extra}}}}


BAD = error("Bad input: nothing was counted or read")
UNAVAILABLE = {
    **error("The store or the buffer is unavailable, or the buffer is full: retry later",
             properties={**_ERROR_SCHEMA["properties"], "retry_after": {"type": "integer"}}),
    "headers": {"Retry-After": {"description": "Seconds to wait (a full buffer)",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}
TOO_LARGE = error("The request body is over the size limit")
NO_KEY = error("This endpoint needs a key and the request carries none")
WRONG_KEY = error("The request carries a key, not the right one")
ANY_OBJECT = {"type": "object"}


def ok(description: str, media: str = JSON, schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {media: {"schema": schema if schema is not None else {"type": "string"}}}}


def param(name: str, description: str, schema: dict | None = None, **extra: object) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
        **extra,
    }



# A formula's value is null where a division by an empty bucket leaves none (empty=null).
_VALUE = {"type": ["number", "null"]}
_NUMBERS = {"type": "object", "additionalProperties": _VALUE}
_BY_METRIC = {
    "type": "object",
    "additionalProperties": {
        "type": "array",
        # [epoch_ms, value]: a number and a number or null (prefixItems, which would say
        # so exactly, trips schemathesis' schema check).
        "items": {"type": "array", "items": _VALUE, "minItems": 2, "maxItems": 2},
    },
}


def _listed(values: str, schema: dict) -> dict:
    """`format=series`: the series in the server's order, each with its dim_key and path."""
    return {"type": "array", "items": {
        "type": "object", "required": ["key", "path", values],
        "properties": {"key": {"type": "string"},
                       "path": {"type": "array", "items": {"type": "string"}},
                       values: schema},
    }}


POINTS = {"anyOf": [
    {"type": "object", "additionalProperties": _BY_METRIC},
    {"type": "object", "required": ["period", "series"],
     "properties": {"period": {"type": "string"}, "series": _listed("points", _BY_METRIC)}},
]}
TOTALS = {"anyOf": [
    {"type": "object", "additionalProperties": {"type": "object",
                                                "additionalProperties": _NUMBERS}},
    {"type": "object", "required": ["periods"], "properties": {"periods": {
        "type": "array", "items": {
            "type": "object", "required": ["period", "series"],
            "properties": {"period": {"type": "string"},
                           "series": _listed("totals", _NUMBERS)}}}}},
]}
DIMENSIONS = {
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
META = {
    "type": "object",
    "required": ["pks", "pk_paths", "metrics", "periods"],
    "properties": {
        "pks": {"type": "array", "items": {"type": "string"}},
        "pk_paths": {"type": "object", "description": "Each pk's path, by its dim_key",
                     "additionalProperties": {"type": "array", "items": {"type": "string"}}},
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
WHALE_HEALTH = {
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
HAIL_HEALTH = {
    "type": "object",
    "required": ["status", "buffer"],
    "properties": {"status": _STATUS, "buffer": {"type": "string", "enum": ["ok", "unreachable"]},
                   "problems": _PROBLEMS, "version": {"type": "string"}, **_BUFFER_STATS},
}

