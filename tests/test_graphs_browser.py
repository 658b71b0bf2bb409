"""Graphs people can read with real data (issue 14), in headless Chromium.

One `hailwhale serve` on a Redis of its own, seeded with a few hundred realistic
events over six hours (nested `sales` and `country` dimensions, dollars, unique
visitors, a burst), one browser for the module. Each test reads back what the
page drew: flot's plot objects, the legend, the notes, the URL. Screenshots go to
tests/screenshots/; with HAILWHALE_DOCS_SCREENSHOTS=1 the two the README opens
its dashboard section with are written to docs/ as well.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from hailwhale.embedded import RedisServer
from tests.servers import Served, get
from tests.test_browser import (
    SCREENSHOTS,
    chromium,
    count,
    draw,
    need_browser,
    plugin_page,
)
from tests.test_client import _kill as kill

DOCS = Path(__file__).resolve().parent.parent / "docs"
# Buckets of 15 s for the last hour, 5 min for a day, 1 h for a month: the picker's
# "last 6 hours" reads 5 min buckets, a zoom inside the last hour 15 s ones.
PERIODS = "15s:1h,5m:1d,1h:30d"
NOW = int(time.time())
HOUR = 3600
# product: (share of sales events, mean price); p5 and p42 stay under 10% of sales' dollars.
PRODUCTS = {"p1": (28, 100), "p2": (24, 90), "p3": (22, 80), "p4": (18, 70), "p5": (6, 40),
            "p42": (2, 5)}
PLACES = [("US", "CA"), ("US", "NY"), ("DE", "BE"), ("FR", "IDF")]
BURST_AGE = 35 * 60  # p2's burst, 35 minutes ago: 40 sales of 60 within two minutes


def realistic_events() -> list[dict]:
    """Six hours of sales: p1 growing, p3 fading, the rest steady, a burst of p2."""
    rng = random.Random(14)
    events = []
    for _ in range(600):
        age = rng.uniform(30, 6 * HOUR)
        late = 1 - age / (6 * HOUR)  # 0 six hours ago, 1 now
        weights = {name: share * {"p1": 0.4 + 1.2 * late, "p3": 1.6 - 1.2 * late}.get(name, 1)
                   for name, (share, _) in PRODUCTS.items()}
        product = rng.choices(list(weights), list(weights.values()))[0]
        country, region = rng.choice(PLACES)
        events.append({
            "dimensions": {"sales": product, "country": {country: region}},
            "metrics": {"dollars": max(1, round(rng.gauss(PRODUCTS[product][1], 10))),
                        "visitors": {"unique": f"user-{rng.randrange(180)}"}},
            "at": NOW - int(age)})
    events += [{"dimensions": {"sales": "p2", "country": {"US": "CA"}},
                "metrics": {"dollars": 60, "visitors": {"unique": f"burst-{k % 15}"}},
                "at": NOW - BURST_AGE + 3 * k} for k in range(40)]
    return events


EVENTS = realistic_events()

# Each plot of a graph: its series (key, level, data, style) and axes, as flot holds them.
PLOTS_JS = """sel => $(sel).hailwhale('plots').map(plot => {
    const axes = plot.getAxes(), opts = plot.getOptions();
    return {
        series: plot.getData().map(s => ({key: s.key, label: s.label, level: s.level,
            data: s.data, lineWidth: s.lines.lineWidth, fill: s.lines.fill, stack: s.stack,
            dashes: s.lines.dashes || null})),
        xmin: axes.xaxis.options.min, xmax: axes.xaxis.options.max,
        ymode: axes.yaxis.options.mode || null, ymin: axes.yaxis.min, ymax: axes.yaxis.max,
        xlabels: opts.xaxis.showTickLabels, selection: opts.selection.mode,
        gridColor: opts.grid.color};
})"""


def plots(page, selector: str = "#g") -> list[dict]:
    return page.evaluate(PLOTS_JS, selector)


def step_of(plot: dict) -> int:
    data = plot["series"][0]["data"]
    return data[1][0] - data[0][0]


def ask(url: str, path: str, **params) -> object:
    status, _, body = get(f"{url}{path}?{urlencode(params)}")
    assert status == 200, body
    return json.loads(body)


def query_of(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def ready(page, selector: str, draws: int | None = None) -> None:
    """Wait for the graph's next draw (its count past `draws`)."""
    if draws is None:
        page.wait_for_selector(f"{selector}[data-hailwhale-state=ready]", timeout=10_000)
    else:
        page.wait_for_function("([sel, n]) => +$(sel).attr('data-hailwhale-draws') > n",
                               arg=[selector, draws], timeout=10_000)


def drawn_in(page, selector: str, step_ms: int) -> None:
    """Wait until the graph shows buckets of `step_ms` (a new range drawn)."""
    page.wait_for_function("""([sel, step]) => { const plot = $(sel).hailwhale('plot');
        const data = plot && plot.getData()[0].data;
        return data && data.length > 1 && data[1][0] - data[0][0] === step; }""",
                           arg=[selector, step_ms], timeout=10_000)


def draws(page, selector: str) -> int:
    return int(page.locator(selector).get_attribute("data-hailwhale-draws") or 0)


def shoot(page, name: str, docs: bool = False, **options) -> None:
    page.screenshot(path=SCREENSHOTS / name, **options)
    if docs and os.environ.get("HAILWHALE_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(SCREENSHOTS / name, DOCS / name)


@pytest.fixture(scope="module")
def whale(tmp_path_factory) -> Iterator[str]:
    """A real `hailwhale serve` on a Redis of its own, with the realistic events counted."""
    need_browser()
    with RedisServer(tmp_path_factory.mktemp("graphs-redis"), persist=False) as redis:
        served = Served("--redis-url", redis.url, "--periods", PERIODS)
        try:
            count(served.url, EVENTS)
            yield served.url
        finally:
            kill(served)  # quicker than a graceful stop; its Redis goes with it


@pytest.fixture(scope="module")
def browser(whale) -> Iterator:
    with chromium() as launched:
        yield launched


def drag(page, selector: str, from_ms: int, to_ms: int) -> None:
    """Drag across the first plot of `selector` from `from_ms` to `to_ms` (flot selection)."""
    box = page.evaluate("""([sel, a, b]) => { const plot = $(sel).hailwhale('plots')[0];
        const o = plot.offset(), x = plot.getAxes().xaxis;
        return [o.left + x.p2c(a), o.left + x.p2c(b), o.top + plot.height() / 2]; }""",
                        [selector, from_ms, to_ms])
    page.mouse.move(box[0], box[2])
    page.mouse.down()
    page.mouse.move((box[0] + box[1]) / 2, box[2], steps=4)
    page.mouse.move(box[1], box[2], steps=4)
    page.mouse.up()


def test_time_range_picker_zoom_and_back_out_in_the_url(whale, watched):
    """Point 1 (and 6's embed snippet): pick a range, zoom, back out; the URL keeps it."""
    page = watched.page
    page.goto(whale + "/?dimension=sales&metric=dollars&depth=1&range=6h")
    ready(page, "#graph")
    [plot] = plots(page, "#graph")
    assert step_of(plot) == 5 * 60_000  # 6 hours: the finest period that keeps them (5m:1d)
    assert plot["xmax"] - plot["xmin"] == 6 * HOUR * 1000
    assert page.locator("#graph .hailwhale-bucket").inner_text() == "5 min buckets (5m:1d)"
    choices = page.locator("#graph .hailwhale-range option").evaluate_all(
        "os => os.map(o => o.textContent)")
    assert choices == ["last 15 min", "last hour", "last 6 hours", "last 24 hours", "last 7 days",
                       "last 30 days", "last 1 h, 15 s buckets", "last 1 d, 5 min buckets",
                       "last 30 d, 1 h buckets", "custom range…"]

    # Drag across the burst, 35 minutes ago: asked again with from/to, in 15 s buckets.
    start, end = (NOW - BURST_AGE - 10 * 60) * 1000, (NOW - BURST_AGE + 10 * 60) * 1000
    drag(page, "#graph", start, end)
    drawn_in(page, "#graph", 15_000)
    query = query_of(page)
    assert "range" not in query and abs(int(query["from"]) - start / 1000) <= 300
    assert abs(int(query["to"]) - end / 1000) <= 300
    [zoomed] = plots(page, "#graph")
    assert step_of(zoomed) == 15_000
    assert zoomed["xmin"] >= int(query["from"]) * 1000 - 15_000
    assert zoomed["xmax"] <= int(query["to"]) * 1000
    assert page.locator("#graph .hailwhale-bucket").inner_text() == "15 s buckets (15s:1h)"
    assert page.locator("#graph .hailwhale-range").input_value() == "custom"
    # The embed snippet is this view.
    embed = page.locator("#embed-example").inner_text()
    assert f"from={query['from']}" in embed and f"to={query['to']}" in embed
    page.mouse.move(0, 0)
    shoot(page, "dashboard-zoomed.png", docs=True)

    # A way back out: the button, and the browser's Back.
    page.locator("#graph .hailwhale-zoom-out").click()
    drawn_in(page, "#graph", 5 * 60_000)
    assert query_of(page)["range"] == "6h" and "from" not in query_of(page)
    page.go_back()
    page.wait_for_function("() => new URL(location).searchParams.get('from')")
    page.wait_for_function("() => $('#graph').hailwhale('options').from")
    page.go_back()
    page.wait_for_function("() => new URL(location).searchParams.get('range') === '6h'")

    # Preset and custom ranges.
    drawn_in(page, "#graph", 5 * 60_000)
    page.locator("#graph .hailwhale-range").select_option("range:15m")
    drawn_in(page, "#graph", 15_000)
    assert query_of(page)["range"] == "15m"
    assert plots(page, "#graph")[0]["xmax"] - plots(page, "#graph")[0]["xmin"] == 15 * 60_000
    page.locator("#graph .hailwhale-range").select_option("custom")
    page.locator("#graph .hailwhale-from").fill(
        time.strftime("%Y-%m-%dT%H:%M", time.localtime(NOW - 5 * HOUR)))
    page.locator("#graph .hailwhale-to").fill(
        time.strftime("%Y-%m-%dT%H:%M", time.localtime(NOW - 3 * HOUR)))
    page.locator("#graph .hailwhale-apply").click()
    drawn_in(page, "#graph", 5 * 60_000)
    query = query_of(page)
    assert int(query["to"]) - int(query["from"]) == 2 * HOUR
    custom = plots(page, "#graph")[0]
    assert custom["xmax"] - custom["xmin"] == 2 * HOUR * 1000


def test_children_stay_readable_next_to_their_parent(whale, other_origin, watched):
    """Point 2: parent behind, children on top, totals in the legend, crosshair, log scale."""
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "readable"))
    draw(page, "#g", {"url": whale, "dimension": "sales", "metric": "dollars", "depth": 1,
                      "range": "6h"})
    [plot] = plots(page)
    series = plot["series"]
    # The parent first (drawn behind) as a light filled area, its children lines on top.
    assert series[0]["key"] == "sales" and 0 < series[0]["fill"] < 0.3
    assert all(s["level"] == 1 and not s["fill"] for s in series[1:])
    assert [s["key"] for s in series[1:]] == ['["sales","p1"]', '["sales","p2"]',
                                              '["sales","p3"]', '["sales","p4"]']

    # Each legend entry with its window total, as /totals answers for that window.
    totals = ask(whale, "/totals", dimensions="sales", depth=1, metrics="dollars",
                 period="5m:1d", **{"from": plot["xmin"] // 1000, "to": plot["xmax"] // 1000})
    keys = page.locator("#g .hailwhale-key")
    shown = {keys.nth(i).get_attribute("data-key"): keys.nth(i).locator(".hailwhale-total")
             .inner_text() for i in range(keys.count())}
    assert shown == {key: f"{t['dollars']:,}" for key, t in totals["5m:1d"].items()}

    # Pointing at a legend entry brings its series out: the others fade.
    page.locator("#g .hailwhale-key[data-key='[\"sales\",\"p2\"]']").hover()
    faded = page.evaluate("() => $('#g').hailwhale('plot').getData().filter("
                          "s => $.color.parse(s.color).a < 1).map(s => s.key)")
    assert sorted(faded) == sorted(s["key"] for s in series if s["key"] != '["sales","p2"]')
    page.mouse.move(0, 0)

    # No tick label is clipped: every one lies inside the graph's box.
    clipped = page.evaluate("""() => { const box = $('#g')[0].getBoundingClientRect();
        return [...document.querySelectorAll('#g .flot-tick-label')].filter(t => {
            const r = t.getBoundingClientRect();
            return r.width && (r.left < box.left || r.right > box.right || r.top < box.top); })
            .map(t => t.textContent); }""")
    assert clipped == []

    # The crosshair tooltip lists every series' value at the bucket.
    burst = (NOW - BURST_AGE) // 300 * 300 * 1000
    point = page.evaluate("""ms => { const plot = $('#g').hailwhale('plot');
        return [plot.offset().left + plot.getAxes().xaxis.p2c(ms),
                plot.offset().top + plot.height() / 2]; }""", burst)
    page.mouse.move(*point)
    tip = page.locator("#g .hailwhale-tip")
    tip.wait_for(state="visible")
    assert page.locator("#g .hailwhale-cross").is_visible()
    rows = tip.locator("tr").all_inner_texts()
    values = {s["label"]: dict(map(tuple, s["data"])).get(burst) for s in series}
    assert len(rows) == len(series)
    for row in rows:
        label, value = row.split("\t")
        assert value == f"{values[label]:,}"
    page.locator("#g").screenshot(path=SCREENSHOTS / "graphs-children.png")

    # The burst sets a linear axis; on the log scale the small values keep their room.
    smallest = min(v for s in series for _, v in s["data"] if v)
    linear = page.evaluate("v => { const p = $('#g').hailwhale('plot'); "
                           "return 1 - p.getAxes().yaxis.p2c(v) / p.height(); }", smallest)
    before = draws(page, "#g")
    page.locator("#g .hailwhale-log").check()
    ready(page, "#g", before)
    [logged] = plots(page)
    assert logged["ymode"] == "log"
    lifted = page.evaluate("v => { const p = $('#g').hailwhale('plot'); "
                           "return 1 - p.getAxes().yaxis.p2c(v) / p.height(); }", smallest)
    assert linear < 0.05 and lifted > 0.2, (linear, lifted)


def test_several_metrics_share_the_time_axis_and_compare_with_before(
        whale, other_origin, watched):
    """Point 3: small multiples sharing the time axis; the previous window dashed."""
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "multiples"))
    metrics = ["dollars", "visitors", "dollars/hits"]
    draw(page, "#g", {"url": whale, "dimension": "sales", "metric": metrics, "range": "1h",
                      "compare": True})
    drawn = plots(page)
    assert len(drawn) == 3
    assert len({(p["xmin"], p["xmax"]) for p in drawn}) == 1  # one time axis
    assert [p["xlabels"] for p in drawn] == ["none", "none", "major"]
    heads = page.locator("#g .hailwhale-metric").all_inner_texts()
    assert heads == metrics

    # Comparing, the period that keeps the previous hour too answers (not 15s:1h): the
    # previous hour, dashed, over this one, bucket for bucket.
    assert page.locator("#g .hailwhale-bucket").inner_text() == "5 min buckets (5m:1d)"
    first, last = drawn[0]["xmin"] // 1000, drawn[0]["xmax"] // 1000
    before = ask(whale, "/plotpoints", dimensions="sales", metrics=json.dumps(metrics),
                 period="5m:1d", empty="null", **{"from": first - HOUR, "to": last - HOUR})
    for plot, metric in zip(drawn, metrics):
        [previous] = [s for s in plot["series"] if s["dashes"]]
        assert previous["label"] == "previous 1 h"
        assert [p[0] for p in previous["data"]] == [p[0] for p in plot["series"][0]["data"]]
        assert [p[1] for p in previous["data"]] == [v for _, v in before["sales"][metric]]
    page.locator("#g").screenshot(path=SCREENSHOTS / "graphs-multiples.png")


def test_honest_views(whale, other_origin, watched):
    """Point 4: hidden children counted and shown on demand; no stacked uniques; ratio
    gaps; an unknown metric named."""
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "honest",
                          "".join(f'<div id="{name}"></div>' for name in "ghij")))
    draw(page, "#g", {"url": whale, "dimension": "sales", "metric": "dollars", "depth": 1,
                      "range": "6h"})
    [plot] = plots(page)
    children = ask(whale, "/dimensions", dimensions="sales", metrics="dollars", period="5m:1d",
                   **{"from": plot["xmin"] // 1000, "to": plot["xmax"] // 1000})["children"]
    hidden = len(children) - (len(plot["series"]) - 1)
    assert hidden == 2  # p5 and p42
    note = page.locator("#g .hailwhale-hidden")
    assert note.get_attribute("data-hidden") == "2"
    assert note.inner_text().startswith("2 children not drawn (under 10% of sales): p5, p42")
    before = draws(page, "#g")
    note.locator("button").click()
    ready(page, "#g", before)
    [every] = plots(page)
    assert [s["key"] for s in every["series"][1:]] == [c["key"] for c in children]
    assert note.inner_text().startswith("Showing every child")

    # Unique counts are not stacked, and the graph says why.
    draw(page, "#h", {"url": whale, "dimension": "sales", "metric": "visitors", "depth": 1,
                      "area": True, "range": "1h"})
    [uniques] = plots(page, "#h")
    assert all(s["stack"] is None for s in uniques["series"])
    assert page.locator("#h .hailwhale-reason").inner_text().startswith(
        "Not stacked: visitors counts distinct ids")

    # A ratio has gaps where its denominator's bucket is empty, not drops to 0.
    draw(page, "#i", {"url": whale, "dimension": "sales", "metric": "dollars/hits",
                      "range": "1h"})
    [ratio] = plots(page, "#i")
    hits = dict(map(tuple, ask(whale, "/plotpoints", dimensions="sales", metrics="hits",
                               period="15s:1h")["sales"]["hits"]))
    data = [point for point in ratio["series"][0]["data"] if point[0] in hits]
    assert len(data) > 200 and any(v is None for _, v in data) and any(v for _, v in data)
    assert all((v is None) == (hits[ms] == 0) for ms, v in data)

    # An unknown metric is named, with the ones this category knows.
    draw(page, "#j", {"url": whale, "dimension": "sales", "metric": "revenue"}, state="error")
    assert page.locator("#j .hailwhale-error").inner_text() == (
        "no metric `revenue` in this category; known: dollars, hits, visitors")


def test_dashboard_children_list_legend_and_totals_agree(whale, watched):
    """Point 4 on the dashboard, and the README's drilled-down screenshot."""
    page = watched.page
    page.goto(whale + "/?dimension=sales&metric=dollars&depth=1&range=6h")
    ready(page, "#graph")
    page.wait_for_function("() => $('#children li').length === 6 && $('#totals tr').length")
    names = page.locator("#children .name").all_inner_texts()
    not_drawn = page.locator("#children li.not-drawn .name").all_inner_texts()
    assert names == ["p1", "p2", "p3", "p4", "p5", "p42"] and not_drawn == ["p5", "p42"]
    legend = page.locator("#graph .hailwhale-name").all_inner_texts()
    assert legend == ["sales", "p1", "p2", "p3", "p4"]
    # The same totals in the legend, the children list and the table's "this view" column.
    totals = page.locator("#graph .hailwhale-total").all_inner_texts()
    listed = page.locator("#children li:not(.not-drawn) .value").all_inner_texts()
    table = page.evaluate("() => [...document.querySelectorAll('#totals tbody tr')]"
                          ".map(r => r.cells[1].innerText)")
    assert totals[1:] == listed and table == totals
    page.locator("#metric").blur()
    page.mouse.move(0, 0)
    shoot(page, "dashboard-children.png", docs=True)

    # "Show them" puts every child in the graph and in the URL; the list marks none.
    page.locator("#graph .hailwhale-show-all").click()
    page.wait_for_function("() => $('#graph .hailwhale-name').length === 7")
    assert query_of(page)["threshold"] == "0"
    page.wait_for_function("() => $('#children li.not-drawn').length === 0")
    assert page.locator("#graph .hailwhale-name").all_inner_texts() == ["sales", *names]

    # Unique counts: the dashboard's "stacked" is off, and says why, even when asked for.
    page.goto(whale + "/?dimension=sales&metric=visitors&depth=1&range=6h&area=1")
    ready(page, "#graph")
    assert page.locator("#area").is_disabled() and not page.locator("#area").is_checked()
    assert page.locator("#area-reason").inner_text().startswith(
        "Not stacked: visitors counts distinct ids")
    assert all(s["stack"] is None for s in plots(page, "#graph")[0]["series"])


OVERFLOW_JS = """() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,
    [...document.querySelectorAll('body *')].filter(e => { const r = e.getBoundingClientRect();
        return r.width && r.right > document.documentElement.clientWidth + 0.5
            && !e.closest('.table-wrap, pre'); }).map(e => e.className || e.tagName)]"""


def test_a_phone_in_dark_mode(whale, browser):
    """Point 5: no horizontal scroll at 420 px (nor 400), and the OS's dark mode followed."""
    context = browser.new_context(viewport={"width": 420, "height": 860}, color_scheme="dark",
                                  locale="en-US")
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(whale + "/?dimension=sales&metric=dollars,visitors&depth=1&range=6h")
        page.wait_for_selector("#graph[data-hailwhale-state=ready]")
        page.locator("#graph .hailwhale-range").select_option("custom")  # the widest toolbar
        for width in (420, 400):
            page.set_viewport_size({"width": width, "height": 860})
            page.wait_for_function("w => document.documentElement.clientWidth === w", arg=width)
            box = page.locator("#graph .hailwhale-plot").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] - 30, box["y"] + box["height"] / 2)
            page.locator("#graph .hailwhale-tip").wait_for(state="visible")  # the widest tip
            assert page.evaluate(OVERFLOW_JS) == [width, width, []]
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(18, 23, 30)"
        drawn = plots(page, "#graph")
        assert len(drawn) == 2 and all(p["gridColor"] == "#aeb8c4" for p in drawn)
        parent = page.evaluate("() => $('#graph').hailwhale('plot').getData()"
                               ".find(s => s.level === 0).color")
        assert parent == "#c9d6e6"  # light on dark
        assert page.evaluate("() => getComputedStyle(document.querySelector("
                             "'#graph .hailwhale-name')).color") == "rgb(228, 233, 239)"
        page.mouse.move(0, 0)
        page.screenshot(path=SCREENSHOTS / "dashboard-phone-dark.png", full_page=True)
        assert errors == []
    finally:
        context.close()


def test_plugin_and_graph_js_take_ranges_zoom_and_several_metrics(whale, other_origin, watched):
    """Point 6: from/to, range, zoom and several metrics as options and /graph.js params."""
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "options"))
    start, end = NOW - 5 * HOUR, NOW - 4 * HOUR
    draw(page, "#g", {"url": whale, "dimension": "sales", "metric": "dollars",
                      "from": start, "to": end, "zoom": False, "toolbar": False})
    [plot] = plots(page)
    assert plot["xmin"] == start // 300 * 300_000 and plot["xmax"] == end // 300 * 300_000
    assert plot["selection"] is None
    assert page.locator("#g .hailwhale-toolbar").is_hidden()

    tag = (f'<script src="{whale}/graph.js?dimension=sales&metric=dollars,visitors&range=6h'
           f'&zoom=0&compare=1&depth=1"></script>')
    page.goto(other_origin.put("/graph-options.html", f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body style="width:700px">{tag}</body></html>"""))
    page.wait_for_selector(".hailwhale-embed[data-hailwhale-state=ready]", timeout=10_000)
    drawn = plots(page, ".hailwhale-embed")
    assert len(drawn) == 2 and all(p["selection"] is None for p in drawn)
    assert drawn[0]["xmax"] - drawn[0]["xmin"] == 6 * HOUR * 1000 and step_of(drawn[0]) == 300_000
    assert all(any(s["dashes"] for s in p["series"]) for p in drawn)
    options = page.evaluate("() => $('.hailwhale-embed').hailwhale('options')")
    assert re.fullmatch(r"6h", options["range"]) and options["compare"] is True
