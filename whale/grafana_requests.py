"""What Grafana's JSON API data source plugin sends to `/grafana/...`, read and checked.

The plugin posts a JSON object: a `payload` (the query builder's fields, or the JSON a
user typed), a `range` with ISO 8601 times, `maxDataPoints`, `targets`. Grafana adds
fields of its own (`panelId`, `scopedVars`, `requestId`...), which are ignored; the
fields HailWhale reads are checked, and a payload field it does not know is a 400
naming it, as a query parameter would be.

Grafana pastes a variable into the builder's fields and into a target with its regex
format (`\\["sales"\\]`, `visits\\.count`): a target is unescaped (no metric name or
formula holds a backslash), and so is a path text that starts with `\\[` (a JSON list).
"""

from __future__ import annotations

import re

from bottle import request

from hailwhale.config import Limits
from hailwhale.exceptions import InvalidQuery
from hailwhale.times import parse_time
from hailwhale.values import loads, show
from whale.ingest import read_body
from whale.query_params import ALWAYS_ACCEPTED, check_params

_REGEX_ESCAPED = re.compile(r"\\([\\^$*+?.()|\[\]{}/])")
_RANGE = '{"from": "2024-05-01T06:00:00Z", "to": "2024-05-01T12:00:00Z"}'
_TARGET = '{"target": "dollars", "refId": "A", "payload": {"dimensions": "sales", "depth": 1}}'


def unescape(text: str) -> str:
    """`text` without the backslashes Grafana's regex format put before special characters."""
    return _REGEX_ESCAPED.sub(r"\1", text)


def check_query() -> None:
    """A 400 for a query string parameter: the plugin sends everything in the body."""
    for name, _ in request.query.decode().allitems():
        if name not in ALWAYS_ACCEPTED:
            raise InvalidQuery(name[:100], f"unknown parameter {name[:100]!r}: /grafana/... "
                                           "reads a JSON body, as Grafana's plugin sends it")


def read_document(limits: Limits) -> dict:
    """The request's JSON object (an empty body: `{}`); a 400 for anything else."""
    check_query()
    body = read_body(request, limits)
    document = loads(body, "body") if body.strip() else {}
    if not isinstance(document, dict):
        raise InvalidQuery("body", "the body is a JSON object, as Grafana's JSON API data "
                                   "source plugin sends it")
    return document


def text_field(document: dict, name: str) -> str | None:
    """The string `document[name]`; None when absent or null, a 400 when not a string."""
    value = document.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidQuery(name, f"{name} is a string, not {show(value)}")
    return value


def payload_fields(value: object, known: frozenset[str]) -> dict[str, object]:
    """A payload's fields, checked like query parameters; escaped path texts unescaped."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidQuery("payload", 'a payload is a JSON object, e.g. {"pk": "shop", '
                                      '"dimensions": "sales", "depth": 1}')
    unknown = next((name for name in value if name not in known), None)
    if unknown is not None:
        raise InvalidQuery(unknown[:100], f"unknown payload field {unknown[:100]!r}; a payload "
                                          f"takes {', '.join(sorted(known))}")
    fields = check_params(value.items(), known)  # an alias and its name: a 400
    return {name: unescape(v) if isinstance(v, str) and v.startswith("\\[") else v
            for name, v in fields.items()}


def time_range(value: object, now: float) -> tuple[float, float]:
    """`range.from` and `range.to` (`to` defaults to now) in epoch seconds."""
    if not isinstance(value, dict) or not isinstance(value.get("from"), str):
        raise InvalidQuery("range", f"the request needs a range, as Grafana sends it: {_RANGE}")
    end = value.get("to", "now")
    if not isinstance(end, str):
        raise InvalidQuery("range.to", f"range.to is a time as a string, e.g. {_RANGE}")
    return parse_time(value["from"], now, "range.from"), parse_time(end, now, "range.to")


def range_start(value: object, now: float, default: float) -> float:
    """A variable request's `range.from` in epoch seconds; `default` without a range."""
    return default if value is None else time_range(value, now)[0]


def max_data_points(value: object) -> int | None:
    """`maxDataPoints`: how many points the panel can draw (None: no preference)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
        raise InvalidQuery("maxDataPoints", "maxDataPoints is a number of points, at least 1, "
                                            f"not {str(value)[:40]!r}")
    return int(value)


def asked_targets(value: object, limits: Limits) -> list[dict]:
    """The request's targets that ask for something (a new query has no metric yet)."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise InvalidQuery("targets", f"targets is a list of queries like {_TARGET}")
    for target in value:
        for name in ("target", "refId"):
            text_field(target, name)
    asked = [target for target in value if (target.get("target") or "").strip()]
    if len(asked) > limits.query_metrics:
        raise InvalidQuery("targets", f"a request takes at most {limits.query_metrics} "
                                      f"targets, not {len(asked)}")
    return asked
