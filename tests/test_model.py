"""Exact totals: random events against a plain in-memory model of the rollup."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hailwhale import HailWhale
from hailwhale.keys import dim_key
from hailwhale.periods import Periods

NOW = time.time() // 60 * 60 + 7.25
PERIODS = "15s:3h,1h:7d,1d:1y"
names = st.sampled_from(["a", "b", "c"])
dimensions = st.one_of(
    names,
    st.lists(names, min_size=1, max_size=3),
    st.dictionaries(names, st.one_of(names, st.dictionaries(names, names, max_size=2)),
                    max_size=2),
)
# Binary fractions, so a sum does not depend on the order of additions.
amounts = st.one_of(st.integers(-1000, 1000), st.integers(-4000, 4000).map(lambda n: n / 4))
events = st.lists(
    st.fixed_dictionaries({
        "dimensions": dimensions,
        "metrics": st.dictionaries(st.sampled_from(["dollars", "clicks"]), amounts, max_size=2),
        "at": st.floats(NOW - 10 * 86400, NOW + 60),
    }),
    min_size=1, max_size=25,
)


def prefixes(dims) -> set[tuple]:
    """The model's prefix expansion, written independently of hailwhale.events."""
    out: set[tuple] = set()

    def walk(parent, node):
        if isinstance(node, dict):
            for key, child in node.items():
                out.add((*parent, key))
                walk((*parent, key), child)
        elif isinstance(node, list):
            for i in range(len(node)):
                out.add((*parent, *node[: i + 1]))
        else:
            out.add((*parent, node))

    walk((), dims)
    return out


def model_totals(sent: list[dict]) -> dict:
    """{period: {path: {metric: total}}} by brute force over the events."""
    periods = Periods.parse(PERIODS)
    out: dict = {}
    for period in periods.periods:
        first = period.window(NOW)[0]
        totals: dict = defaultdict(lambda: defaultdict(float))
        for event in sent:
            retained = periods.window_start(period.interval, NOW)
            bucket = int(event["at"] // period.interval) * period.interval
            if not (first <= bucket <= period.bucket(NOW)) or bucket < retained:
                continue
            for path in {(), *prefixes(event["dimensions"])}:
                totals[path]["hits"] += 1
                for metric, amount in event["metrics"].items():
                    totals[path][metric] += amount
        out[period.name] = totals
    return out


counter = itertools.count()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=events)
def test_totals_equal_the_model(redis_client, sent):
    hw = HailWhale(redis=redis_client, periods=PERIODS, key_prefix=f"m{next(counter)}",
                   clock=lambda: NOW)
    for event in sent:
        hw.count(**event)
    expected = model_totals(sent)
    got = hw.totals(None, ["hits", "dollars", "clicks"], depth=3, threshold=0, limit=0)
    for period, by_path in expected.items():
        for path, metrics in by_path.items():
            key = dim_key(path)
            assert key in got[period], (period, path)
            for metric in ("hits", "dollars", "clicks"):
                assert got[period][key][metric] == metrics.get(metric, 0), (period, path, metric)
        # nothing counted that the model does not have (paths with events in the window)
        shown = {k for k, v in got[period].items() if any(v.values())}
        assert shown <= {dim_key(p) for p in by_path}
    # the per-bucket points add up to the window totals
    points = hw.plotpoints(None, ["hits"], period="15s:3h")["_"]["hits"]
    assert sum(v for _, v in points) == expected["15s:3h"][()].get("hits", 0)
