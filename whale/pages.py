"""What Whale serves to browsers: the dashboard, `/graph.js`, static files and `/meta`.

Everything here is plain files from `static/` (no build step) plus two small
JSON/JS answers. CORS headers come from make_app's after_request hook, so the
plugin, the vendored libraries and `/graph.js` load from any origin.

Nothing here is built from what a client can forge: `/graph.js` does not name
the server it came from (Host and X-Forwarded-* are the client's to say, and a
proxy in front may pass them on); the script finds its base URL in the browser,
from the URL it was loaded from (`document.currentScript.src`).
"""

from __future__ import annotations

import math

import orjson
from bottle import Bottle, HTTPResponse, request, static_file

from hailwhale.config import Config, Limits
from hailwhale.exceptions import InvalidInput
from hailwhale.resources import static_dir
from hailwhale.values import parse_path
from whale.query_params import check_params
from whale.store import Store
from whale.web import json_response

# /graph.js query parameter -> plugin option; the plugin and /plotpoints
# validate the values, and the widget shows what they reject. `metric` may name
# several (a JSON list, or separated by commas): one graph each; `from`, `to` and
# `range` (`6h`: the last 6 hours) pick the time range.
_EMBED_TEXT = {
    "pk": "pk", "category": "pk", "dimension": "dimension", "dimensions": "dimension",
    "metric": "metric", "metrics": "metric", "period": "period", "title": "title",
    "sort": "sort", "key": "key", "from": "from", "to": "to", "range": "range",
}
_EMBED_NUMBER = {
    "depth": "depth", "threshold": "threshold", "limit": "limit", "interval": "interval",
    "height": "height",
}
_EMBED_FLAG = {"live": "autoupdate", "autoupdate": "autoupdate", "area": "area", "legend": "legend",
               "zoom": "zoom", "log": "log", "compare": "compare", "toolbar": "toolbar"}
EMBED_PARAMS = frozenset(_EMBED_TEXT) | frozenset(_EMBED_NUMBER) | frozenset(_EMBED_FLAG)
_EMBED_SAME = {"category": "pk", "dimensions": "dimension", "metrics": "metric",
               "autoupdate": "live"}
_META_PARAMS = frozenset({"pk"})
_FALSE = {"0", "false", "no", "off"}
_PLACEHOLDER = "__HAILWHALE_EMBED__"
# Our own files revalidate every time (304 when unchanged), so an upgrade shows at once.
_REVALIDATE = {"Cache-Control": "no-cache"}


def _spaced(data: object) -> str:
    """JSON with a space after each `,` and `:`, as the embed has always been written."""
    if isinstance(data, dict):
        return "{" + ", ".join(f"{_spaced(k)}: {_spaced(v)}" for k, v in data.items()) + "}"
    if isinstance(data, (list, tuple)):
        return "[" + ", ".join(map(_spaced, data)) + "]"
    return orjson.dumps(data).decode()


def script_json(data: object) -> str:
    """JSON that is also safe to paste into a script (no `</script>`, no line separators)."""
    text = _spaced(data)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _number(text: str) -> int | float | str:
    """`text` as a number, or as given when it is none a script can hold exactly."""
    try:
        number = float(text) if "." in text else int(text)
    except ValueError:
        return text  # /plotpoints names the bad one
    return number if math.isfinite(number) and abs(number) <= 2**53 else text


def embed_options(query: dict[str, str]) -> dict[str, object]:
    """Plugin options from `/graph.js` query parameters (checked by `check_params`)."""
    options: dict[str, object] = {}
    for name, value in query.items():
        if name in _EMBED_TEXT and value != "":
            options[_EMBED_TEXT[name]] = value
        elif name in _EMBED_NUMBER and value != "":
            options[_EMBED_NUMBER[name]] = _number(value)
        elif name in _EMBED_FLAG:
            options[_EMBED_FLAG[name]] = value.strip().lower() not in _FALSE
    return options


def add_pages(app: Bottle, config: Config, store: Store | None = None) -> None:
    """Add `/`, `/static/<path>`, `/graph.js` and (given the store) `/meta` to Whale's app."""
    root = static_dir()
    embed_template = (root / "js" / "embed.js").read_text(encoding="utf-8")

    def static(path: str, **kwargs) -> HTTPResponse:
        answer = static_file(path, root=str(root), **kwargs)
        for name, value in _REVALIDATE.items():
            answer.set_header(name, value)
        return answer

    @app.get("/", access="public")
    def dashboard() -> HTTPResponse:
        return static("index.html", mimetype="text/html", charset="utf-8")

    @app.get("/static/<path:path>", access="public")
    def static_files(path: str) -> HTTPResponse:
        return static(path)

    @app.get("/graph.js", access="read")
    def graph_js() -> HTTPResponse:
        given = check_params(request.query.decode().allitems(), EMBED_PARAMS, _EMBED_SAME)
        embed = {"options": embed_options(given)}
        body = embed_template.replace(_PLACEHOLDER, script_json(embed))
        return HTTPResponse(body, 200, headers={
            "Content-Type": "application/javascript; charset=utf-8", **_REVALIDATE,
        })

    if store is None:
        return

    @app.get("/meta", access="read")
    def meta() -> HTTPResponse:
        """What the dashboard offers: pks seen lately, the pk's metrics, the periods."""
        given = check_params(request.query.decode().allitems(), _META_PARAMS)
        pk = parse_path(given.get("pk"), "pk", config.limits)
        since = store.clock() - config.periods.longest
        pks = sorted(store.pks(since))
        return json_response({
            "pks": pks,
            "pk_paths": {key: _path_of(key, config.limits) for key in pks},
            "metrics": dict(sorted(store.metric_kinds(pk).items())),
            "periods": config.periods.names,
        })


def _path_of(pk: str, limits: Limits) -> list[str]:
    """The path of a pk as the pks index spells it (a dim_key), for a client to show."""
    try:
        return list(parse_path(pk, "pk", limits))
    except InvalidInput:  # written under other limits: shown as its dim_key
        return [pk]
