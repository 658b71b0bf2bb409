"""The OpenAPI description of `/grafana/...` (whale/grafana.py), for whale/openapi.py.

Request bodies are described as loosely as they are read: Grafana adds fields of its
own, so only the fields HailWhale reads are named, with the types it checks.
"""

from __future__ import annotations

from hailwhale.config import ENV_VARS, Config
from whale.grafana import VARIABLE_QUERIES
from whale.openapi_parts import BAD, JSON, TOO_LARGE, UNAVAILABLE, error, ok

_TEXT = {"type": ["string", "null"]}
_PAYLOAD = {
    "type": ["object", "null"],
    "description": "The query builder's fields (a /plotpoints query's): pk, dimensions (a "
                   "name or a JSON list path), depth, threshold, limit, sort; any other "
                   "field is a 400",
    "properties": {name: {} for name in ("pk", "dimensions", "depth", "threshold", "limit",
                                         "sort")},
}
_RANGE = {
    "type": "object",
    "required": ["from"],
    "description": "As Grafana sends it: ISO 8601 times (epoch seconds, now and -6h work too)",
    "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "raw": {}},
}
_OPTIONS = {"type": "array", "items": {
    "type": "object", "required": ["label", "value"],
    "properties": {"label": {"type": "string"}, "value": {"type": "string"}}}}
_METRICS = {"type": "array", "items": {
    "type": "object", "required": ["label", "value", "payloads"],
    "properties": {"label": {"type": "string"}, "value": {"type": "string"},
                   "payloads": {"type": "array", "items": {"type": "object"}}}}}
_SERIES = {"type": "array", "items": {
    "type": "object", "required": ["target", "datapoints"],
    "properties": {
        "target": {"type": "string", "description": "The dimension's dim_key"},
        "refId": {"type": "string"},
        "datapoints": {"type": "array", "items": {
            "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"},
            "description": "[value, epoch_ms]"}},
    }}}
_VALUES = {"type": "array", "items": {
    "type": "object", "required": ["__text", "__value"],
    "properties": {"__text": {"type": "string"}, "__value": {"type": "string"}}}}


def _body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {JSON: {"schema": {"type": "object", **schema}}}}


def _post(summary: str, body: dict, answer: dict, unavailable: dict = UNAVAILABLE) -> dict:
    return {"post": {"summary": summary, "requestBody": body,
                     "responses": {"200": ok(summary, schema=answer), "400": BAD,
                                   "413": TOO_LARGE, "503": unavailable}}}


def grafana_paths(config: Config, always: list[dict]) -> dict:
    """OpenAPI path items of `/grafana/...`; `always`: the parameters every route takes."""
    def health() -> dict:
        return {"get": {
            "summary": "Grafana's \"Save & test\": the store answers and the key is right",
            "responses": {"200": ok("Working", schema={
                "type": "object", "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["ok"]}}}),
                "400": BAD, "503": UNAVAILABLE},
        }}

    query_timeout = error("The store is unavailable, or the query ran past "
                          f"{ENV_VARS['query_timeout']} and was stopped")
    paths = {
        "/grafana": health(),
        "/grafana/": health(),
        "/grafana/metrics": _post(
            "The pk's metrics, with the query builder's fields",
            _body({"properties": {"metric": _TEXT, "payload": _PAYLOAD}}, required=False),
            _METRICS),
        "/grafana/metric-payload-options": _post(
            "The choices of a query builder field: pks, dimensions to drill into, depths",
            _body({"required": ["name"], "properties": {
                "name": {"type": "string", "enum": ["pk", "category", "dimensions",
                                                    "dimension", "depth"]},
                "payload": _PAYLOAD}}),
            _OPTIONS),
        "/grafana/variable": _post(
            "The values of a dashboard variable: pks, a pk's metrics, a dimension's children",
            _body({"required": ["payload"], "properties": {
                "payload": {"type": "object", "required": ["target"], "properties": {
                    "target": {"type": "string", "enum": list(VARIABLE_QUERIES)},
                    "pk": {}, "dimensions": {}}},
                "range": {**_RANGE, "type": ["object", "null"]}}}),
            _VALUES),
        "/grafana/query": _post(
            "Each target's series, one per dimension shown, [value, epoch_ms]",
            _body({"required": ["range", "targets"], "properties": {
                "range": _RANGE,
                "maxDataPoints": {"type": ["number", "null"], "minimum": 1,
                                  "description": "Rather the finest period of at most this "
                                                 "many buckets in the range"},
                "targets": {"type": "array", "description": "At most "
                            f"{config.limits.query_metrics} with a target", "items": {
                                "type": "object", "properties": {
                                    "target": {**_TEXT, "description": "A metric or formula"},
                                    "refId": _TEXT, "payload": _PAYLOAD}}}}}),
            _SERIES, query_timeout),
    }
    for operation in paths.values():
        for method in operation.values():
            method.setdefault("parameters", always)
    return paths
