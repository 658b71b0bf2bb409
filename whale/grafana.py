"""Grafana out: `/grafana/...` speaks the protocol of Grafana's JSON API data source plugin.

The plugin (`simpod-json-datasource`, github.com/simPod/GrafanaJsonDatasource) asks
`GET /grafana/` ("Save & test"), `POST /grafana/metrics` (a pk's metrics, for its query
builder), `POST /grafana/metric-payload-options` (the choices of one payload field),
`POST /grafana/query` (the series of each target) and `POST /grafana/variable` (the
values of a dashboard variable). All need the read key, which Grafana sends as a
header of the data source, so "Save & test" tests the key too.

A target is a /plotpoints query: `target` is its one metric or formula, `payload` its
`pk`, `dimensions`, `depth`, `threshold`, `limit` and `sort`, and the window is the
request's `range`, in the finest period whose buckets there fit in `maxDataPoints`.
Each dimension shown is one series named by its dim_key, `[[value, epoch_ms], ...]`.

Paths offered to Grafana (pks and dimensions) are compact JSON lists, `[]` for overall:
valid JSON where the plugin's code mode pastes a variable (`{"dimensions": $dim}`), and
a valid `dimensions` value where its builder pastes one. whale/grafana_requests.py
reads and checks what the plugin sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import orjson
from bottle import Bottle, HTTPResponse

from hailwhale.config import Config
from hailwhale.exceptions import InvalidInput, InvalidQuery
from hailwhale.formulas import parse_metric
from hailwhale.keys import Path, dim_key
from hailwhale.times import TimeRange, choose_window
from hailwhale.values import parse_path, show
from whale.deadline import Deadline
from whale.grafana_requests import (
    asked_targets,
    check_query,
    max_data_points,
    payload_fields,
    range_start,
    read_document,
    text_field,
    time_range,
    unescape,
)
from whale.queries import plotpoints
from whale.query_params import MAX_DEPTH, Query, parse_query
from whale.store import Store
from whale.web import json_response

_PAYLOAD = frozenset({"pk", "category", "dimensions", "dimension", "depth", "threshold",
                      "limit", "sort"})
_VARIABLE = frozenset({"target", "pk", "category", "dimensions", "dimension"})
VARIABLE_QUERIES = ("pks", "metrics", "dimensions")
_DEPTHS = ["the dimension alone", "and its children", "and grandchildren",
           "and great-grandchildren"][:MAX_DEPTH + 1]
# The fields of the query builder, the same for every metric: selects ask
# /metric-payload-options for their choices; a new pk lists its own metrics.
_FIELDS = [
    {"name": "pk", "type": "select", "reloadMetric": True, "placeholder": "_ (overall)",
     "width": 20},
    {"name": "dimensions", "label": "dimension", "type": "select",
     "placeholder": "_ (overall)", "width": 30},
    {"name": "depth", "type": "select", "placeholder": "0"},
    {"name": "threshold", "type": "input", "placeholder": str(Query.threshold)},
    {"name": "limit", "type": "input", "placeholder": str(Query.limit)},
]


def path_value(path: Path) -> str:
    """How Grafana is offered a path: its compact JSON list, `[]` for overall."""
    return orjson.dumps(list(path)).decode()


def _option(path: Path) -> dict[str, str]:
    return {"label": dim_key(path) if path else "_ (overall)", "value": path_value(path)}


def _parsed(fields: dict[str, object], config: Config) -> Query:
    return parse_query(fields, config.limits, config.query_timeout)


def _is_metric(text: str, config: Config) -> bool:
    limits = config.limits
    try:
        parse_metric(text, max_length=limits.formula_length, max_depth=limits.formula_depth)
    except InvalidQuery:
        return False
    return True


def add_grafana_routes(app: Bottle, store: Store, config: Config,
                       clock: Callable[[], float]) -> None:
    """Add `/grafana/` and the plugin's POST endpoints to Whale's app, under the read key."""

    def since() -> float:
        return clock() - config.periods.longest

    def pks(start: float) -> list[Path]:
        """Overall, then every pk seen since `start` that a query may name under today's
        limits (one counted under looser ones, deeper say, is left out of the pickers, not
        a 400 that empties them)."""
        found: list[Path] = [()]
        for pk in sorted(store.pks(start)):
            try:
                found.append(parse_path(pk, "pk", config.limits))
            except InvalidInput:
                continue
        return found

    @app.get("/grafana", access="read")
    @app.get("/grafana/", access="read")
    def grafana_health() -> HTTPResponse:
        """Grafana's "Save & test": 200 when the store answers and the key is right."""
        check_query()
        store.redis.ping()
        return json_response({"status": "ok"})

    @app.post("/grafana/metrics", access="read")
    def grafana_metrics() -> HTTPResponse:
        """The metrics of the payload's pk, and the builder's fields for each."""
        document = read_document(config.limits)
        query = _parsed(payload_fields(document.get("payload"), _PAYLOAD), config)
        names = sorted(store.metric_kinds(query.pk))
        current = unescape(text_field(document, "metric") or "").strip()
        if current and current not in names and _is_metric(current, config):
            names.insert(0, current)  # a formula typed in the builder stays selectable
        return json_response([{"label": name, "value": name, "payloads": _FIELDS}
                              for name in names])

    @app.post("/grafana/metric-payload-options", access="read")
    def grafana_payload_options() -> HTTPResponse:
        """The choices of the builder field `name`: pks, dimensions to drill into, depths."""
        document = read_document(config.limits)
        name = text_field(document, "name")
        query = _parsed(payload_fields(document.get("payload"), _PAYLOAD), config)
        if name in ("pk", "category"):
            return json_response([_option(pk) for pk in pks(since())])
        if name in ("dimensions", "dimension"):
            path = query.path
            children = store.children(query.pk, path, since())
            shown = [path[:end] for end in range(len(path) + 1)]
            return json_response([_option(p) for p in shown + [(*path, c) for c in children]])
        if name == "depth":
            return json_response([{"label": f"{depth}: {what}", "value": str(depth)}
                                  for depth, what in enumerate(_DEPTHS)])
        raise InvalidQuery("name", f"the field {name!r} has no choices: pk, dimensions and "
                                   "depth have (threshold and limit take a number)")

    @app.post("/grafana/variable", access="read")
    def grafana_variable() -> HTTPResponse:
        """A variable's values: `pks`, `metrics` (of a pk) or `dimensions` (children)."""
        document = read_document(config.limits)
        fields = payload_fields(document.get("payload"), _VARIABLE)
        what = fields.pop("target", None)
        what = what.strip() if isinstance(what, str) else what
        query = _parsed(fields, config)
        start = range_start(document.get("range"), clock(), since())  # seen since
        if what == "pks":
            values = [(dim_key(pk), path_value(pk)) for pk in pks(start)]
        elif what == "metrics":
            values = [(name, name) for name in sorted(store.metric_kinds(query.pk))]
        elif what == "dimensions":
            values = [(child, path_value((*query.path, child)))
                      for child in store.children(query.pk, query.path, start)]
        else:
            raise InvalidQuery("target", f"a variable's query is one of "
                               f"{', '.join(VARIABLE_QUERIES)}, not {show(what)}; with Raw JSON "
                               'on: {"target": "dimensions", "pk": $pk, "dimensions": $dim}')
        return json_response([{"__text": text, "__value": value} for text, value in values])

    @app.post("/grafana/query", access="read")
    def grafana_query() -> HTTPResponse:
        """Each target's series, one per dimension shown: `[[value, epoch_ms], ...]`."""
        document = read_document(config.limits)
        now = clock()
        start, end = time_range(document.get("range"), now)
        window = choose_window(config.periods, TimeRange(start, end), now, config.limits.points,
                               preferred_buckets=max_data_points(document.get("maxDataPoints")),
                               names=("range.from", "range.to"))
        deadline = Deadline(config.query_timeout)  # one for the whole request
        left = config.limits.answer_points
        answer = []
        for number, target in enumerate(asked_targets(document.get("targets"), config.limits), 1):
            ref = target.get("refId")
            try:
                fields = payload_fields(target.get("payload"), _PAYLOAD)
                fields["metrics"] = [unescape(target["target"])]
                query = replace(parse_query(fields, config.limits, now=now),
                                deadline=deadline, max_points=left)
                points = plotpoints(store, query, window)
            except InvalidQuery as error:
                raise InvalidQuery(error.param, f"query {ref or number}: {error.message}") \
                    from None
            [formula] = query.metrics
            for key, series in points.items():
                datapoints = [[value, stamp] for stamp, value in series[formula.text]]
                left -= len(datapoints)
                answer.append({"target": key, "datapoints": datapoints,
                               **({"refId": ref} if ref else {})})
        return json_response(answer)
