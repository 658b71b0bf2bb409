"""The browser side in headless Chromium: the jQuery plugin, /graph.js and the dashboard.

Runs `hailwhale serve` on the session's redis-server, counts events over HTTP,
and reads back what the page drew (flot's plot object, the legend, the URL).
Screenshots land in tests/screenshots/ (git-ignored; `make test` prints where).
Without Chromium or Playwright these tests skip, except under CI=true, where
they fail: CI installs both.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

from hailwhale.processes import free_port
from tests.servers import Served, get, lacking

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PERIODS = "15s:1h,1h:2d"
STEP = 15
INTERVAL = 1000  # ms between polls in the autoupdate tests
# A zone far from UTC with a 45-minute offset: a UTC axis cannot pass for local time.
TIMEZONE = "Asia/Kathmandu"
# Chromium reports a failed fetch itself; the widget showing it is what we test.
NETWORK_ERROR = re.compile(r"Failed to load resource|net::ERR_")

AT = int(time.time()) - 60
BUCKET_MS = (AT - AT % STEP) * 1000
# Exact numbers in AT's bucket (sales 651: p1 500, p2 150, p3 1, under the 10% threshold),
# and 50 minutes of smooth history before it, so the screenshots show a real graph.
SEED = (
    [{"dimensions": {"sales": "p1"}, "metrics": {"dollars": 100}, "at": AT}] * 5
    + [{"dimensions": {"sales": "p2"}, "metrics": {"dollars": 50}, "at": AT}] * 3
    + [{"dimensions": {"sales": "p3"}, "metrics": {"dollars": 1}, "at": AT}]
    + [{"dimensions": {"sales": "p1"}, "metrics": {"dollars": round(300 + 150 * math.sin(k / 9))},
        "at": AT - k * STEP} for k in range(1, 200)]
    + [{"dimensions": {"sales": "p2"}, "metrics": {"dollars": round(120 + 60 * math.cos(k / 13))},
        "at": AT - k * STEP} for k in range(1, 200)]
    + [{"dimensions": {"country": "US" if k % 3 else "CA"}, "at": AT - k * STEP}
       for k in range(0, 200, 2)]
    # pk "codes", hits: 7 (5, all under 7/b), x (4), 404 (3, all under 404/a). Integer-like
    # names, which JSON.parse moves to the front of an object, and a second level.
    + [{"pk": "codes", "dimensions": {"7": "b"}, "at": AT}] * 5
    + [{"pk": "codes", "dimensions": "x", "at": AT}] * 4
    + [{"pk": "codes", "dimensions": {"404": "a"}, "at": AT}] * 3
)


def seeded(path: tuple[str, ...]) -> int:
    """Dollars the seed counted under `path` (and its children)."""
    return sum(
        e["metrics"].get("dollars", 0) for e in SEED
        if "metrics" in e and tuple(next(iter(e["dimensions"].items())))[:len(path)] == path
    )


SALES, P1, P2 = "sales", '["sales","p1"]', '["sales","p2"]'


def need_browser() -> None:
    """Skip without a browser; under CI a missing browser is a failure."""
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[test]')"
    if missing is None and not os.path.exists(CHROMIUM):
        missing = "chromium is not installed (apt-get install chromium)"
    if missing:
        lacking(missing)


def eventually(condition, timeout: float = 10) -> None:
    """Wait until `condition()` holds (a condition on another process, polled)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def count(url: str, events: list[dict]) -> None:
    status, _, body = get(url + "/count_now", data=json.dumps(events).encode(),
                          headers={"Content-Type": "application/json"})
    assert status == 200, body


@pytest.fixture(scope="module")
def whale(redis_server) -> Iterator[str]:
    """A real `hailwhale serve` with the seed events counted."""
    need_browser()
    with redis_server.client() as client:
        client.flushall()
    with Served("--redis-url", redis_server.url, "--periods", PERIODS,
                "--key-prefix", "browser") as served:
        count(served.url, SEED)
        yield served.url


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, closed at the end (before a server stops: its keep-alive
    connections would stall the server's stop)."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser(whale) -> Iterator:
    with chromium() as launched:
        yield launched


class Pages(http.server.ThreadingHTTPServer):
    """Another origin: serves the pages a test puts in `pages` (path -> (type, body))."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        super().__init__(("127.0.0.1", free_port()), PageHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def put(self, path: str, body: str | bytes, kind: str = "text/html") -> str:
        self.pages[path] = (kind, body.encode() if isinstance(body, str) else body)
        return self.url + path


class PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
        kind, body = self.server.pages.get(self.path.split("?")[0], ("text/plain", b""))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind + "; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Watched:
    """A page whose console errors and uncaught exceptions fail the test."""

    def __init__(self, browser, timezone: str = TIMEZONE):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900},
                                           timezone_id=timezone, locale="en-US")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.allowed: list[re.Pattern] = []
        self.requests: list[str] = []
        self.refused: list[str] = []  # `status URL` of each answer over 399: which one failed
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("response", lambda answer: answer.status >= 400 and self.refused.append(
            f"{answer.status} {answer.url}"))

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def requested(self, part: str) -> int:
        return sum(part in url for url in self.requests)

    def check(self) -> None:
        unexpected = [e for e in self.errors if not any(p.search(e) for p in self.allowed)]
        assert not unexpected, f"console errors: {unexpected}; refused: {self.refused}"


PLUGIN = ["css/hailwhale.css", "js/hailwhale.client.js", "js/hailwhale.format.js",
          "js/hailwhale.meta.js", "js/hailwhale.range.js", "js/hailwhale.legend.js",
          "js/hailwhale.panels.js", "js/hailwhale.series.js", "js/hailwhale.requests.js",
          "js/hailwhale.widget.js", "js/jquery.hailwhale.js"]


def plugin_page(other_origin: Pages, whale: str, name: str, body: str = "",
                plugin: list[str] = PLUGIN) -> str:
    """A page on another origin that loads jQuery, flot and the plugin's files from Whale."""
    tags = "".join(f'<link rel="stylesheet" href="{whale}/static/{path}">' if path.endswith(".css")
                   else f'<script src="{whale}/static/{path}"></script>' for path in plugin)
    return other_origin.put(f"/{name}.html", f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{name}</title><link rel="icon" href="data:,">
<script src="{whale}/static/vendor/jquery/jquery.min.js"></script>
<script src="{whale}/static/vendor/flot/jquery.flot.js"></script>
{tags}
</head><body style="margin:16px;width:760px">{body or '<div id="g"></div>'}</body></html>""")


def draw(page, selector: str, options: dict, state: str = "ready") -> None:
    page.evaluate("([sel, opts]) => { $(sel).hailwhale(opts); }", [selector, options])
    page.wait_for_selector(f"{selector}[data-hailwhale-state={state}]", timeout=10_000)


SERIES_JS = """([sel, ms]) => $(sel).hailwhale('plot').getData().map(s => {
    const i = s.data.findIndex(p => p[0] === ms), d = s.datapoints, at = i * d.pointsize;
    return {key: s.key, label: s.label, points: s.data.length, lineWidth: s.lines.lineWidth,
            fill: s.lines.fill, stack: s.stack, last: s.data[s.data.length - 1][0],
            at: i < 0 ? null : s.data[i][1],
            stacked: i < 0 ? null : [d.points[at + 1], d.points[at + 2]]};
})"""


def series(page, selector: str = "#g") -> dict[str, dict]:
    return {s["key"]: s for s in page.evaluate(SERIES_JS, [selector, BUCKET_MS])}


def legend(page, selector: str = "#g") -> list[str]:
    return page.locator(f"{selector} .hailwhale-legend .hailwhale-name").all_inner_texts()


def test_plugin_draws_overall_and_children_in_local_time(whale, other_origin, watched):
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "depth"))
    draw(page, "#g", {"url": whale, "dimension": "sales", "metric": "dollars", "depth": 1,
                      "title": "Sales by product (dollars)"})

    drawn = series(page)
    assert set(drawn) == {SALES, P1, P2}  # p3's 1 of 651 is under the 10% threshold
    assert all(s["points"] == 3600 // STEP for s in drawn.values())
    assert {key: s["at"] for key, s in drawn.items()} == {SALES: 651, P1: 500, P2: 150}
    now_ms = (int(time.time()) // STEP) * STEP * 1000
    assert abs(drawn[SALES]["last"] - now_ms) <= 2 * STEP * 1000  # the window ends now
    assert drawn[SALES]["lineWidth"] > drawn[P1]["lineWidth"] == drawn[P2]["lineWidth"]
    assert legend(page) == ["sales", "p1", "p2"]
    assert page.locator("#g .hailwhale-title").inner_text() == "Sales by product (dollars)"

    # The x axis is in the viewer's zone (Kathmandu, UTC+5:45), labels HH:MM.
    ticks = page.evaluate("""() => $('#g').hailwhale('plot').getAxes().xaxis.ticks
        .map(t => [t.label, new Date(t.v).toTimeString().slice(0, 5)])""")
    assert len(ticks) >= 3
    assert all(label == local for label, local in ticks), ticks
    # y starts at 0 and its labels are short.
    yaxis = page.evaluate("() => { const a = $('#g').hailwhale('plot').getAxes().yaxis; "
                          "return [a.min, a.max, a.ticks.map(t => t.label)]; }")
    assert yaxis[0] == 0 and yaxis[1] >= 651
    assert all(len(label) <= 5 for label in yaxis[2]), yaxis

    # Hovering the bucket shows its local time and every series' value there.
    point = page.evaluate("""ms => { const plot = $('#g').hailwhale('plot');
        const box = plot.offset(), x = plot.getAxes().xaxis.p2c(ms);
        return [box.left + x, box.top + plot.height() / 2]; }""", BUCKET_MS)
    page.mouse.move(*point)
    tip = page.locator("#g .hailwhale-tip")
    tip.wait_for(state="visible")
    local_time = page.evaluate("""ms => new Date(ms).toLocaleString(undefined,
        {hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'})""", BUCKET_MS)
    text = tip.inner_text()
    assert local_time in text and "15 s bucket" in text
    assert re.search(r"sales\s+651", text) and re.search(r"p1\s+500", text)
    page.locator("#g").screenshot(path=SCREENSHOTS / "graph-depth.png")


def test_area_stacks_children_under_the_overall_line(whale, other_origin, watched):
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "area"))
    draw(page, "#g", {"url": whale, "dimension": "sales", "metric": "dollars", "depth": 1,
                      "area": True, "title": "Stacked"})
    drawn = series(page)
    assert drawn[SALES]["stack"] is None and not drawn[SALES]["fill"]
    assert drawn[P1]["stack"] == drawn[P2]["stack"] == "children"
    assert drawn[P1]["fill"] and drawn[P2]["fill"]
    # p2 (150) sits on top of p1 (500): its band runs from 500 to 650.
    assert drawn[P2]["stacked"] == [650, 500]
    assert drawn[SALES]["stacked"][0] == 651
    page.locator("#g").screenshot(path=SCREENSHOTS / "graph-area.png")


def test_formula_and_empty_window_draw_like_any_metric(whale, other_origin, watched):
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "formula",
                          '<div id="g"></div><div id="h"></div>'))
    draw(page, "#g", {"url": whale, "dimension": "sales", "metric": "dollars/hits",
                      "depth": 1})
    drawn = series(page)
    assert drawn[SALES]["at"] == pytest.approx(651 / 9)
    assert drawn[P1]["at"] == 100 and drawn[P2]["at"] == 50

    draw(page, "#h", {"url": whale, "dimension": "nothing", "metric": "dollars", "depth": 1})
    empty = series(page, "#h")
    assert list(empty) == ["nothing"]
    values = page.evaluate("() => $('#h').hailwhale('plot').getData()[0].data.map(p => p[1])")
    assert len(values) == 3600 // STEP and set(values) == {0}
    assert page.locator("#h .hailwhale-error").is_hidden()
    assert page.locator("#h .hailwhale-note").inner_text() == "Nothing counted in this window yet"


def test_errors_show_inside_the_widget(whale, other_origin, watched):
    page = watched.page
    watched.allowed.append(NETWORK_ERROR)
    page.goto(plugin_page(other_origin, whale, "errors",
                          '<div id="g"></div><div id="h"></div>'))
    draw(page, "#g", {"url": whale, "dimension": "sales", "period": "2m:1y"}, state="error")
    message = page.locator("#g .hailwhale-error").inner_text()
    assert message.startswith("HTTP 400:") and "15s:1h" in message

    closed = f"http://127.0.0.1:{free_port()}"
    draw(page, "#h", {"url": closed, "dimension": "sales"}, state="error")
    assert page.locator("#h .hailwhale-error").inner_text() == (
        f"Could not reach HailWhale at {closed}")


def test_autoupdate_picks_up_new_events_and_destroy_stops_polling(whale, other_origin, watched):
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "live"))
    options = {"url": whale, "dimension": "ticker", "metric": "dollars", "depth": 1,
               "autoupdate": True, "interval": INTERVAL}
    # Re-initialising replaces the widget: the old ones' timers must not live on.
    for _ in range(3):
        page.evaluate("opts => $('#g').hailwhale(opts)", options)
    page.wait_for_selector("#g[data-hailwhale-draws='2']", timeout=10_000)
    before = watched.requested("/plotpoints")
    page.wait_for_selector("#g[data-hailwhale-draws='4']", timeout=4 * INTERVAL)
    assert watched.requested("/plotpoints") - before == 2  # one widget, one poll per interval

    canvas = page.evaluate_handle("() => $('#g canvas.flot-base')[0]")
    count(whale, [{"dimensions": {"ticker": "t1"}, "metrics": {"dollars": 7}, "at": AT}])
    page.wait_for_function(
        """ms => $('#g').hailwhale('plot').getData().some(
            s => s.key === 'ticker' && s.data.some(p => p[0] === ms && p[1] === 7))""",
        arg=BUCKET_MS, timeout=2 * INTERVAL)
    # Redrawn in place (no new canvas, so no flicker).
    assert page.evaluate("c => $('#g canvas.flot-base')[0] === c", canvas)

    page.evaluate("() => $('#g').hailwhale('destroy')")
    stopped = watched.requested("/plotpoints")
    page.wait_for_timeout(int(2.5 * INTERVAL))  # proving an absence: nothing to wait on
    assert watched.requested("/plotpoints") == stopped
    assert page.evaluate("() => [$('#g').children().length, $('#g').data('hailwhale')]") == [
        0, None]


def test_series_keep_the_servers_order_with_the_plugin_file_alone(whale, other_origin, watched):
    page = watched.page
    # The one tag pages used before the plugin was split: it fetches the rest itself.
    page.goto(plugin_page(other_origin, whale, "alone", plugin=["js/jquery.hailwhale.js"]))
    page.evaluate("url => $('#g').hailwhale({url: url, pk: 'codes', depth: 2})", whale)
    page.wait_for_selector("#g[data-hailwhale-state=ready]", timeout=10_000)
    assert [watched.requested(f"/static/{path}") for path in PLUGIN] == [1] * len(PLUGIN)
    assert page.locator("#g .hailwhale-legend").evaluate("e => getComputedStyle(e).display") == (
        "flex")  # the stylesheet is in

    # The server's order, not JSON.parse's (integer-like keys first) nor a re-sort by level:
    # the parent, then each child (largest first) followed by its own.
    assert legend(page) == ["overall", "7", "7 › b", "x", "404", "404 › a"]
    widths = page.evaluate("() => Object.fromEntries($('#g').hailwhale('plot').getData()"
                           ".map(s => [s.key, s.lines.lineWidth]))")
    assert widths == {"_": 2, "7": 1.75, '["7","b"]': 1.1, "x": 1.75, "404": 1.75,
                      '["404","a"]': 1.1}
    rows = page.evaluate("""url => $.hailwhale(url).rows({pk: 'codes', depth: 1})
        .then(periods => periods.map(p => [p[0], p[1].map(row => row[0])]))""", whale)
    assert rows == [[period, ["_", "7", "x", "404"]] for period in PERIODS.split(",")]
    page.locator("#g").screenshot(path=SCREENSHOTS / "graph-order.png")

    # Drilling down from the legend: the child's path, as the server spells its key.
    page.evaluate("() => $('#g').hailwhale('update', {drilldown: true})")
    page.wait_for_selector("#g button.hailwhale-key")
    page.locator("#g button.hailwhale-key", has_text="404 › a").click()
    page.wait_for_function("() => $('#g').hailwhale('options').dimension.join('/') === '404/a'")
    page.wait_for_function("() => $('#g .hailwhale-key .hailwhale-name').text() === '404 › a'")


def test_count_from_a_page(whale, other_origin, watched):
    page = watched.page
    page.goto(plugin_page(other_origin, whale, "count"))
    answer = page.evaluate("""url => $.hailwhale(url).count(
        {dimensions: {clicks: '[draft]'}, metrics: {dollars: 3}}).then(text => text)""", whale)
    assert answer == "OK"
    query = urlencode({"dimensions": '["clicks","[draft]"]', "metrics": "dollars",
                       "period": "15s:1h"})
    # /count may go through the Hail buffer: wait for the flusher to apply it.
    eventually(lambda: json.loads(get(f"{whale}/totals?{query}")[2])["15s:1h"]
               == {'["clicks","[draft]"]': {"dollars": 3}})


def test_graph_js_embeds_a_live_graph_in_another_origin(whale, other_origin, watched):
    page = watched.page
    tag = (f'<script src="{whale}/graph.js?dimension=sales&metric=dollars&depth=1&live=1'
           f'&title=Sales&interval={INTERVAL}"></script>')
    page.goto(other_origin.put("/embed.html", f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body style="width:700px"><p id="before">Before the graph.</p>{tag}
<p id="after">After the graph.</p></body></html>"""))
    page.wait_for_selector(".hailwhale-embed[data-hailwhale-state=ready]", timeout=10_000)
    placed = page.evaluate("""() => { const g = document.querySelector('.hailwhale-embed');
        return [g.previousElementSibling.id, g.nextElementSibling.tagName,
                g.nextElementSibling.nextElementSibling.id, !!g.querySelector('canvas')]; }""")
    assert placed == ["before", "SCRIPT", "after", True]
    assert page.locator(".hailwhale-embed .hailwhale-title").inner_text() == "Sales"
    assert set(series(page, ".hailwhale-embed")) == {SALES, P1, P2}
    assert page.evaluate("() => $('.hailwhale-embed').hailwhale('options').autoupdate")
    assert watched.requested("/static/vendor/jquery/jquery.min.js") == 1
    assert [watched.requested(f"/static/{path}") for path in PLUGIN] == [1] * len(PLUGIN)


def test_graph_js_uses_the_pages_own_jquery_and_loads_each_library_once(
        whale, other_origin, watched):
    page = watched.page
    jquery = (Path(__file__).resolve().parent.parent / "static" / "vendor" / "jquery"
              / "jquery.min.js").read_bytes()
    other_origin.put("/own-jquery.js", jquery, "application/javascript")
    tags = "".join(f'<div id="slot{i}"></div><script src="{whale}/graph.js?dimension=sales'
                   f'&metric=hits&title=Graph+{i}"></script>' for i in range(2))
    page.goto(other_origin.put("/two.html", f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script src="/own-jquery.js"></script></head><body style="width:600px">{tags}</body></html>"""))
    page.wait_for_function("() => document.querySelectorAll("
                           "'.hailwhale-embed[data-hailwhale-state=ready]').length === 2")
    titles = page.locator(".hailwhale-embed .hailwhale-title").all_inner_texts()
    assert titles == ["Graph 0", "Graph 1"]
    assert watched.requested(f"{whale}/static/vendor/jquery/") == 0
    assert watched.requested("/static/vendor/flot/jquery.flot.js") == 1
    assert [watched.requested(f"/static/{path}") for path in PLUGIN] == [1] * len(PLUGIN)


def test_dashboard_drills_down_and_keeps_the_choice_in_the_url(whale, watched):
    page = watched.page
    page.goto(whale + "/")
    page.wait_for_selector("#graph[data-hailwhale-state=ready]")
    assert legend(page, "#graph") == ["overall", "sales", "country"]
    periods = page.locator("#graph .hailwhale-range option[value^='period:']").evaluate_all(
        "os => os.map(o => o.value.slice(7))")  # the range picker offers each period's window
    assert periods == PERIODS.split(",")
    assert "dollars" in page.locator("#metric-list option").evaluate_all(
        "os => os.map(o => o.value)")

    # Drill down by clicking a child in the legend.
    page.locator("#graph .hailwhale-legend button", has_text="sales").click()
    page.wait_for_function("""() => { const p = $('#graph').hailwhale('plot');
        return p && p.getData().some(s => s.key === '["sales","p1"]'); }""")
    assert "dimension=sales" in page.url
    assert page.locator("#crumbs li").all_inner_texts() == ["overall", "sales"]
    page.wait_for_function("() => document.querySelectorAll('#children li button').length === 3")
    assert page.locator("#children .name").all_inner_texts() == ["p1", "p2", "p3"]

    # Choose a metric: the graph, the totals and the URL follow.
    page.locator("#metric").fill("dollars")
    page.locator("#metric").press("Enter")
    page.wait_for_function("() => new URL(location).searchParams.get('metric') === 'dollars'")
    rows = ",".join(f"{name}={seeded(path):,}" for name, path in
                    [("sales", ("sales",)), ("p1", ("sales", "p1")), ("p2", ("sales", "p2"))])
    page.wait_for_function("""rows => [...document.querySelectorAll('#totals tbody tr')]
        .map(r => r.cells[0].innerText + '=' + r.cells[1].innerText).join(',') === rows""",
                           arg=rows)
    page.wait_for_function("() => $('#graph .hailwhale-key').length === 3")
    page.locator("#metric").blur()
    page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)

    # Drill further from the children list, then come back with Back.
    page.locator("#children button", has_text="p1").click()
    page.wait_for_function("""() => new URL(location).searchParams.get('dimension')
        === '["sales","p1"]'""")
    page.wait_for_function("() => $('#graph').hailwhale('options').dimension.join('/') "
                           "=== 'sales/p1'")
    page.go_back()
    page.wait_for_function("() => new URL(location).searchParams.get('dimension') === 'sales'")
    page.wait_for_function("() => $('#graph').hailwhale('options').dimension.join('/') "
                           "=== 'sales'")

    # The URL is a bookmark: a fresh load shows the same choice.
    bookmark = page.url
    page.goto(bookmark)
    page.wait_for_selector("#graph[data-hailwhale-state=ready]")
    assert page.locator("#metric").input_value() == "dollars"
    assert page.locator("#crumbs li").all_inner_texts() == ["overall", "sales"]
    assert set(series(page, "#graph")) == {SALES, P1, P2}


def test_dashboard_side_lists_ask_the_graphs_range_not_its_first_stamp(whale, watched):
    """The children list asked /dimensions from the first drawn bucket's stamp: refused
    (400) once the next bucket started, or at once with `range`, since that bucket starts
    before the range's `from`. It asks for the range the graph asked for, in its period."""
    page = watched.page
    page.goto(whale + "/?dimension=sales&range=1h")
    page.wait_for_selector("#graph[data-hailwhale-state=ready]")
    page.wait_for_function("() => document.querySelectorAll('#children li button').length === 3")
    side = [url for url in watched.requests if "/dimensions?" in url]
    assert side and all("from=-1h" in url and "period=15s%3A1h" in url for url in side), side
    assert page.locator("#children .name").all_inner_texts() == ["p1", "p2", "p3"]


def test_dashboard_and_graph_js_with_a_read_key(redis_server, browser, other_origin):
    # With a read key, CORS is off unless origins are named: name the embedding page's.
    page_origin = "/".join(other_origin.put("/probe.html", "").split("/")[:3])
    with Served("--redis-url", redis_server.url, "--periods", PERIODS, "--key-prefix", "browser",
                "--read-key", "s3cret", "--cors-origins", page_origin) as served:
        one = Watched(browser)
        one.allowed.append(re.compile("401"))  # the page without the key is refused
        try:
            page = one.page
            page.goto(served.url + "/?key=s3cret")
            page.wait_for_selector("#graph[data-hailwhale-state=ready]")
            assert legend(page, "#graph") == ["overall", "sales", "country"]
            assert "key=s3cret" in page.url

            page.goto(other_origin.put("/keyed.html", f"""<!DOCTYPE html><html><head>
<meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<script src="{served.url}/graph.js?dimension=sales&depth=1&key=s3cret"></script>
</body></html>"""))
            page.wait_for_selector(".hailwhale[data-hailwhale-state=ready]")

            page.goto(served.url + "/")
            page.wait_for_selector("#graph[data-hailwhale-state=error]")
            assert "key" in page.locator("#graph").inner_text().lower()
        finally:
            one.check()
            one.context.close()
