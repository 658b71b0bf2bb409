"""The OpenAPI 3 description of Whale's HTTP API, served at `/openapi.json`."""

from __future__ import annotations

from hailwhale import __version__
from hailwhale.config import Config

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_ERROR = {
    "description": "Bad input: nothing was counted",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error", "param"],
                "properties": {
                    "error": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                },
            }
        }
    },
}
_UNAVAILABLE = {**_ERROR, "description": "The store is unavailable"}


def _param(name: str, description: str, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_EVENT_PARAMS = [
    _param("pk", "Category: a string or a JSON list path (alias: category)"),
    _param("dimensions", "A name, a JSON list path or a JSON object tree (alias: dimension)"),
    _param("metrics", 'A name, a JSON list of names, or a JSON object like {"dollars": 5}'),
    _param("at", "Epoch seconds or ISO 8601 (UTC when no zone); default now"),
]

_QUERY_PARAMS = [
    _param("pk", "Category path"),
    _param("dimensions", "The parent dimension path (alias: dimension)"),
    _param("metrics", "A name, a formula (dollars/hits) or a JSON list of them (alias: metric)"),
    _param("period", "A configured period, e.g. 15s:3h"),
    _param("depth", "0 = the dimension alone, 1 = plus children, 2 = grandchildren",
           {"type": "integer", "minimum": 0, "maximum": 3}),
    _param("threshold", "Show a child when its total is at least this share of its parent's",
           {"type": "number", "minimum": 0}),
    _param("limit", "Children per parent at most (0 = no limit)",
           {"type": "integer", "minimum": 0}),
    _param("sort", "The metric that ranks children"),
]

_EVENT_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "object"},
                    {"type": "array", "items": {"type": "object"}},
                ]
            }
        },
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
    },
}


def _count(summary: str) -> dict:
    responses = {"200": {"description": "Counted", "content": _TEXT}, "400": _ERROR,
                 "413": {**_ERROR, "description": "Request body too large"},
                 "503": _UNAVAILABLE}
    return {
        "get": {"summary": summary, "parameters": _EVENT_PARAMS, "responses": responses},
        "post": {
            "summary": summary + " (form, JSON event, or JSON array batch)",
            "parameters": _EVENT_PARAMS,
            "requestBody": _EVENT_BODY,
            "responses": responses,
        },
    }


def _query(summary: str, schema: dict) -> dict:
    return {
        "get": {
            "summary": summary,
            "parameters": _QUERY_PARAMS,
            "responses": {
                "200": {
                    "description": summary,
                    "content": {"application/json": {"schema": schema}},
                },
                "400": _ERROR,
                "503": _UNAVAILABLE,
            },
        }
    }


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
_TOTALS_BY_DIM = {
    "type": "object",
    "additionalProperties": {"type": "object", "additionalProperties": {"type": "number"}},
}
_TOTALS = {"type": "object", "additionalProperties": _TOTALS_BY_DIM}
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
                "properties": {
                    "name": {"type": "string"},
                    "key": {"type": "string"},
                    "totals": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            },
        },
    },
}


def openapi_spec(config: Config) -> dict:
    """The API description, with the configured periods listed."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HailWhale",
            "version": __version__,
            "description": "Real-time counting of rolled-up, multi-dimensional metrics. "
            f"Configured periods: {', '.join(config.periods.names)}.",
        },
        "paths": {
            "/count": _count("Count one event (through the Hail buffer when there is one)"),
            "/count_now": _count("Count one event directly"),
            "/count.gif": {
                "get": {
                    "summary": "Count one event, answering a 1x1 GIF (beacons)",
                    "parameters": _EVENT_PARAMS,
                    "responses": {
                        "200": {"description": "Counted",
                                "content": {"image/gif": {"schema": {"type": "string"}}}},
                        "400": _ERROR,
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/plotpoints": _query("Points per bucket, flot-ready", _POINTS),
            "/totals": _query("Window totals per period", _TOTALS),
            "/dimensions": _query("Children of a dimension with their totals", _DIMENSIONS),
            "/health": {
                "get": {
                    "summary": "Store reachable, buffer depth, last flush",
                    "responses": {
                        "200": {"description": "Healthy",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                        "503": {"description": "Unhealthy",
                                "content": {"application/json": {"schema": {"type": "object"}}}},
                    },
                }
            },
        },
    }
