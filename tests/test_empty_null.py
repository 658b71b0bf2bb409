"""`empty=null`: a formula divided by an empty bucket answers null there, not 0.

`dollars/hits` between events is no average at all; drawn as 0 it reads as one.
The contract keeps 0 by default; `empty=null` (what the jQuery plugin asks for)
answers null for those buckets and totals, so a graph shows a gap.
"""

from __future__ import annotations

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from hailwhale import HailWhale
from hailwhale.config import Config, Limits
from hailwhale.events import parse_event
from hailwhale.formulas import parse_metric
from hailwhale.keys import KeySpace
from tests.test_access import call
from whale.app import make_app
from whale.store import Store

NOW = time.time() // 60 * 60 + 7.5  # mid-bucket of a 15 s period
PERIOD = "15s:3h"
STEP = 15
# Two buckets with sales (p1 in both, p2 in the second only), empty buckets around them.
EVENTS = [({"sales": "p1"}, 300, NOW - 4 * STEP), ({"sales": "p1"}, 100, NOW - 2 * STEP),
          ({"sales": "p1"}, 200, NOW - 2 * STEP), ({"sales": "p2"}, 60, NOW - 2 * STEP)]


def app(client):
    config = Config()
    store = Store(client, config.periods, KeySpace("hw"), clock=lambda: NOW)
    store.count([parse_event({"dimensions": dims, "metrics": {"dollars": dollars}, "at": at},
                             periods=config.periods, limits=Limits(), now=NOW, encoded=False)
                 for dims, dollars, at in EVENTS])
    return make_app(store, config, clock=lambda: NOW)


def ask(whale, path: str, **params: str) -> object:
    status, _, body = call(whale, path, {"period": PERIOD, **params})
    assert status == 200, body
    return json.loads(body)


def stamp(at: float) -> int:
    return int(at - at % STEP) * 1000


def test_a_ratio_has_no_value_where_its_denominator_is_empty(redis_client):
    whale = app(redis_client)
    nulls = ask(whale, "/plotpoints", dimensions="sales", metrics="dollars/hits",
                empty="null")["sales"]["dollars/hits"]
    zeros = ask(whale, "/plotpoints", dimensions="sales", metrics="dollars/hits")[
        "sales"]["dollars/hits"]
    assert [p[0] for p in nulls] == [p[0] for p in zeros] and len(nulls) == 3 * 3600 // STEP
    counted = {stamp(NOW - 4 * STEP): 300, stamp(NOW - 2 * STEP): 120}  # 360 over 3 hits
    assert {ms: v for ms, v in nulls if v is not None} == counted
    assert {ms: v for ms, v in zeros if v != 0} == counted
    assert sum(v is None for _, v in nulls) == len(nulls) - 2  # every other bucket: a gap


def test_names_and_products_keep_their_zeros(redis_client):
    whale = app(redis_client)
    answer = ask(whale, "/plotpoints", dimensions="sales", metrics='["dollars","hits*2"]',
                 empty="null")["sales"]
    assert None not in {v for _, v in answer["dollars"]} | {v for _, v in answer["hits*2"]}


def test_totals_and_dimensions_answer_null_for_an_empty_denominator(redis_client):
    whale = app(redis_client)
    metrics = '["dollars/hits","dollars/refunds"]'  # nothing counted `refunds`
    totals = ask(whale, "/totals", dimensions="sales", depth="1", metrics=metrics,
                 empty="null", format="series")
    [period] = totals["periods"]
    assert [(s["path"], s["totals"]) for s in period["series"]] == [
        (["sales"], {"dollars/hits": 165, "dollars/refunds": None}),
        (["sales", "p1"], {"dollars/hits": 200, "dollars/refunds": None}),
        (["sales", "p2"], {"dollars/hits": 60, "dollars/refunds": None})]
    default = ask(whale, "/totals", dimensions="sales", metrics=metrics)
    assert default[PERIOD]["sales"] == {"dollars/hits": 165, "dollars/refunds": 0}
    # Ranking by a formula that is null for every child still ranks (as 0, ties by name).
    children = ask(whale, "/dimensions", dimensions="sales", metrics=metrics,
                   sort="dollars/refunds", empty="null")["children"]
    assert [(c["name"], c["totals"]["dollars/refunds"]) for c in children] == [
        ("p1", None), ("p2", None)]


def test_a_bad_choice_is_a_400_that_names_both(redis_client):
    status, _, body = call(app(redis_client), "/plotpoints", {"empty": "nan"})
    answer = json.loads(body)
    assert status == 400 and answer["param"] == "empty"
    assert "'null'" in answer["error"] and "'zero'" in answer["error"]
    assert call(app(redis_client), "/plotpoints", {"empty": "zero"})[0] == 200


def test_the_python_api_passes_it_through(redis_client):
    app(redis_client)  # counts the events
    hw = HailWhale(redis=redis_client, clock=lambda: NOW)
    points = hw.plotpoints(dimensions="sales", metrics="dollars/hits", period=PERIOD,
                           empty="null")["sales"]["dollars/hits"]
    assert points[-1][1] is None and dict(points)[stamp(NOW - 2 * STEP)] == 120


def test_what_propagates_a_missing_value():
    columns = {"a": [6.0, 1.0, 0.0], "b": [3.0, 0.0, 0.0]}
    cases = {  # formula: (with empty=null, as by default)
        "a/b": ([2.0, None, None], [2.0, 0.0, 0.0]),
        "(a/b)*0": ([0.0, None, None], [0.0, 0.0, 0.0]),
        "a/b+1": ([3.0, None, None], [3.0, 1.0, 1.0]),
        "a*b": ([18.0, 0.0, 0.0], [18.0, 0.0, 0.0]),
        "1/0": ([None] * 3, [0.0] * 3),
        "a/(a-a)": ([None] * 3, [0.0] * 3),  # a denominator computed to 0 too
    }
    for text, (nulls, zeros) in cases.items():
        formula = parse_metric(text)
        assert formula.evaluate_columns(columns, 3, empty_null=True) == nulls, text
        assert formula.evaluate_columns(columns, 3) == zeros, text


VALUES = st.lists(st.integers(-3, 3).map(float), min_size=4, max_size=4)


@given(st.sampled_from(["a/b", "(a+b)/(a-b)", "a/(b/a)", "-a/b*3+b", "a/b/b - 1/a",
                        "a*b-a+3"]), VALUES, VALUES)
def test_empty_null_only_leaves_values_out(text, a, b):
    formula = parse_metric(text)
    columns = {"a": a, "b": b}
    nulls = formula.evaluate_columns(columns, 4, empty_null=True)
    zeros = formula.evaluate_columns(columns, 4)
    assert all(value is None or value == zero for value, zero in zip(nulls, zeros))
    if "/" not in text:
        assert None not in nulls
    for value, one in zip(nulls, zip(a, b)):
        assert value == formula.evaluate(dict(zip("ab", one)), empty_null=True)
