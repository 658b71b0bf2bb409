"""Access control, CORS and leak-proof errors, on both tiers.

Most tests call the WSGI apps in-process (`call`); one runs `hailwhale serve`
with keys from the environment and a flag, as a deployment would.
"""

from __future__ import annotations

import io
import json
import time
import urllib.parse
from wsgiref.headers import Headers
from wsgiref.util import setup_testing_defaults

import fakeredis
import pytest
from bottle import Bottle
from redis.exceptions import ConnectionError, ResponseError

from hail.app import make_hail_app
from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale.config import Config, load_config
from hailwhale.exceptions import ConfigError
from hailwhale.wsgi import buffering
from tests.hail_helpers import BUFFER_KEYS, make_store
from tests.servers import Served, get
from whale.access import install_access, route_access
from whale.app import make_app

WRITE_KEY, READ_KEY = "w-0123456789abcdef", "r-fedcba9876543210"
NOW = time.time()


def call(app, path: str, query: dict | str = "", *, method: str = "GET",
         headers: dict | None = None, body: bytes = b"") -> tuple[int, Headers, bytes]:
    """One request to a WSGI app, in-process: status, headers (any case), body."""
    environ: dict = {}
    setup_testing_defaults(environ)
    if isinstance(query, dict):
        query = urllib.parse.urlencode(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()})
    environ.update({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                    "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)})
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=int(status.split()[0]), headers=Headers(list(response_headers)))

    chunks = app(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], content


def whale(config: Config, redis=None, buffered: bool = False):
    store = make_store(redis or fakeredis.FakeRedis(), "hw", NOW)
    if not buffered:
        return make_app(store, config, clock=lambda: NOW), store
    buffer = Buffer(redis, BUFFER_KEYS)
    return make_app(store, config, buffering(buffer, Flusher(buffer, store)),
                    clock=lambda: NOW), store


def hits(app, key: str | None = READ_KEY) -> int:
    status, _, body = call(app, "/totals", {"period": "15s:3h"},
                           headers={"X-HailWhale-Key": key} if key else {})
    assert status == 200, body
    return json.loads(body)["15s:3h"]["_"]["hits"]


KEYED = Config(write_key=WRITE_KEY, read_key=READ_KEY)
WRITES = [("/count", "GET"), ("/count", "POST"), ("/count_now", "GET"), ("/count_now", "POST"),
          ("/count.gif", "GET"), ("/flush_hail", "POST"), ("/flush_hail", "GET")]
READS = ["/plotpoints", "/totals", "/dimensions", "/meta", "/graph.js"]
PUBLIC = ["/", "/static/js/jquery.hailwhale.js", "/health", "/openapi.json"]
# Read-keyed too, and tested where they are built (tests/test_grafana.py, test_metrics.py):
# Grafana's routes are POSTs, so the GETs of test_reads_need_the_read_key do not fit them.
OTHER_READS = ["/metrics", "/grafana", "/grafana/", "/grafana/metrics",
               "/grafana/metric-payload-options", "/grafana/query", "/grafana/variable"]


def test_without_keys_everything_is_open_and_cors_is_any_origin():
    app, _ = whale(Config())
    status, headers, _ = call(app, "/count_now", {"dimensions": "a"},
                              headers={"Origin": "https://any.example"})
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, "*")
    assert hits(app, key=None) == 1
    assert call(app, "/count_now", {"key": "whatever"})[0] == 200  # a key nobody asked for


@pytest.mark.parametrize("path, method", WRITES)
def test_writes_need_the_write_key(redis_client, path, method):
    app, _ = whale(KEYED, redis_client, buffered=True)
    query = {"dimensions": "guarded"} if path != "/flush_hail" else {}
    status, headers, body = call(app, path, query, method=method)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    answer = json.loads(body)
    assert answer["param"] == "key" and "write key" in answer["error"]
    status, _, body = call(app, path, {**query, "key": READ_KEY}, method=method)
    assert status == 403 and "not the write key" in json.loads(body)["error"]
    assert call(app, "/flush_hail", method="POST",
                headers={"Authorization": f"Bearer {WRITE_KEY}"})[0] == 200
    assert hits(app) == 0  # nothing refused was counted or buffered
    for carried in ({"headers": {"Authorization": f"Bearer {WRITE_KEY}"}},
                    {"headers": {"X-HailWhale-Key": WRITE_KEY}},
                    {"query": {**query, "key": WRITE_KEY}}):
        status, _, body = call(app, path, carried.pop("query", query), method=method, **carried)
        assert status == 200, body
    call(app, "/flush_hail", method="POST", headers={"X-HailWhale-Key": WRITE_KEY})
    assert hits(app) == (0 if path == "/flush_hail" else 3)


@pytest.mark.parametrize("path", READS)
def test_reads_need_the_read_key(path):
    app, _ = whale(KEYED)
    assert call(app, path)[0] == 401
    assert call(app, path, headers={"Authorization": f"Bearer {WRITE_KEY}"})[0] == 403
    assert call(app, path, headers={"Authorization": "Basic xyz"})[0] == 401
    for headers, query in (({"Authorization": f"bearer {READ_KEY}"}, ""),
                           ({"X-HailWhale-Key": READ_KEY}, ""),
                           ({}, f"key={urllib.parse.quote(READ_KEY)}")):
        status, _, body = call(app, path, query, headers=headers)
        assert status == 200, body


@pytest.mark.parametrize("path", PUBLIC)
def test_the_dashboard_page_static_files_health_and_the_spec_stay_public(path):
    app, _ = whale(KEYED)
    assert call(app, path)[0] == 200


def test_a_write_key_alone_leaves_reads_open_and_cors_any_origin():
    app, _ = whale(Config(write_key=WRITE_KEY))
    assert call(app, "/count_now", {"dimensions": "a"})[0] == 401
    status, headers, _ = call(app, "/totals", headers={"Origin": "https://any.example"})
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, "*")


def test_with_a_read_key_cors_is_off_unless_origins_are_named():
    app, _ = whale(KEYED)
    for path in ("/totals", "/count", "/health"):
        _, headers, _ = call(app, path, headers={"Origin": "https://any.example"})
        assert "Access-Control-Allow-Origin" not in headers
    named = Config(read_key=READ_KEY, cors_origins=("https://admin.example",))
    app, _ = whale(named)
    status, headers, _ = call(app, "/totals", method="OPTIONS",
                              headers={"Origin": "https://admin.example"})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://admin.example"
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-hailwhale-key", "content-type"} <= allowed
    _, headers, _ = call(app, "/totals", headers={"Origin": "https://admin.example",
                                                  "X-HailWhale-Key": READ_KEY})
    assert headers["Access-Control-Allow-Origin"] == "https://admin.example"


def test_hail_takes_the_same_write_key(redis_client):
    app = make_hail_app(Buffer(redis_client, BUFFER_KEYS), Config(write_key=WRITE_KEY),
                        clock=lambda: NOW)
    assert call(app, "/count", {"dimensions": "a"})[0] == 401
    assert call(app, "/count.gif", {"dimensions": "a", "key": "nope"})[0] == 403
    status, headers, body = call(app, "/count.gif", {"dimensions": "a", "key": WRITE_KEY})
    assert (status, headers["Content-Type"]) == (200, "image/gif")
    Buffer(redis_client, BUFFER_KEYS).beat("a flusher", NOW)
    assert call(app, "/health")[0] == 200
    assert Buffer(redis_client, BUFFER_KEYS).depth() == 1
    spec = json.loads(call(app, "/openapi.json")[2])
    assert set(spec["paths"]) == {"/count", "/count.gif", "/health", "/metrics",
                                  "/openapi.json"}
    assert spec["paths"]["/count"]["get"]["security"]
    assert "401" in spec["paths"]["/count"]["post"]["responses"]


def test_the_spec_shows_keys_only_where_they_are_required():
    app, _ = whale(Config(read_key=READ_KEY))
    spec = json.loads(call(app, "/openapi.json")[2])
    assert "security" in spec["paths"]["/totals"]["get"]
    assert "security" not in spec["paths"]["/count"]["get"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_every_route_declares_who_may_call_it(redis_client):
    rules = route_access(whale(Config())[0])
    assert {rule for rule, kind in rules.items() if kind == "write"} == {p for p, _ in WRITES}
    assert {rule for rule, kind in rules.items() if kind == "read"} == {*READS, *OTHER_READS}
    hail = make_hail_app(Buffer(redis_client, BUFFER_KEYS), Config(), clock=lambda: NOW)
    assert route_access(hail) == {"/count": "write", "/count.gif": "write",
                                  "/health": "public", "/openapi.json": "public",
                                  "/metrics": "read"}


@pytest.mark.parametrize("declared", [{}, {"access": "raed"}])
def test_a_route_that_declares_no_rule_is_never_public(declared):
    app = Bottle()
    app.get("/secret", callback=lambda: "data", **declared)
    with pytest.raises(ValueError, match="/secret must declare who may call it"):
        install_access(app, Config())
    for config in (KEYED, Config()):  # added after the app was built: refused when called
        app, _ = whale(config)
        app.get("/secret", callback=lambda: "data", **declared)
        status, _, body = call(app, "/secret")
        assert status == 500 and json.loads(body)["error"] == "internal error"


def test_keys_from_environment_and_flags():
    config = load_config({"HAILWHALE_WRITE_KEY": "w1", "HAILWHALE_READ_KEY": "r1"})
    assert (config.write_key, config.read_key, config.allowed_origins) == ("w1", "r1", ())
    config = load_config({"HAILWHALE_WRITE_KEY": "w1"}, write_key="w2")
    assert (config.write_key, config.read_key, config.allowed_origins) == ("w2", None, ("*",))
    assert load_config({"HAILWHALE_READ_KEY": ""}).read_key is None  # unset
    for bad in (" padded", ""):
        with pytest.raises(ConfigError):
            load_config({}, read_key=bad)


def test_nothing_of_the_store_leaks_into_answers(caplog):
    app, store = whale(Config())
    secret = "hw:{_|sales}:15:dollars:123 WRONGTYPE Operation against a key"

    def broken(*args, **kwargs):
        raise ResponseError(secret)

    def buggy(*args, **kwargs):
        raise ValueError(secret)

    def unreachable(*args, **kwargs):
        raise ConnectionError(secret)

    # a key of the wrong type is refused for good (500), an unreachable Redis for now (503)
    for fault, status in ((broken, 500), (unreachable, 503), (buggy, 500)):
        store.count = fault
        store.metric_kinds = fault
        for path in ("/count_now", "/totals", "/meta"):
            code, headers, body = call(app, path, {"pk": "sales"})
            assert code == status, (path, body)
            assert headers["Content-Type"].startswith("application/json")
            text = body.decode()
            assert "hw:" not in text and "WRONGTYPE" not in text and "Traceback" not in text
    assert secret in caplog.text  # the operator sees it, in the log


def test_a_read_of_a_key_of_the_wrong_type_says_so_not_that_a_write_was_refused(
        redis_client):
    """The attack: a string planted where a series chunk belongs made /totals answer
    "the store refused the write and nothing of it was counted"; a read says what it hit."""
    store = make_store(redis_client, "hw", NOW)
    app = make_app(store, Config(), clock=lambda: NOW)
    assert call(app, "/count_now", {"dimensions": "sales"})[0] == 200
    for key in redis_client.keys("hw:{_|_}:15:hits:*"):
        redis_client.delete(key)
        redis_client.set(key, "not a hash")
    code, _, body = call(app, "/totals", {"metrics": "hits"})
    assert code == 500 and json.loads(body)["error"].startswith(
        "the store holds a key of the wrong type for this query")
    code, _, body = call(app, "/count_now", {"dimensions": "sales"})
    assert code == 500 and "nothing of it was counted" in json.loads(body)["error"]


def test_bottles_own_errors_are_json_too(redis_client):
    app, _ = whale(Config())
    for path, method, status in (("/nowhere", "GET", 404), ("/totals", "DELETE", 405)):
        code, headers, body = call(app, path, method=method)
        assert code == status and json.loads(body)["error"]
    # A form over the request limit: still our JSON, not an HTML page.
    form = urllib.parse.urlencode({"dimensions": "x" * (1024 * 1024)}).encode()
    code, headers, body = call(app, "/count_now", method="POST", body=form,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 413 and json.loads(body)["param"] == "body"
    hail = make_hail_app(Buffer(redis_client, BUFFER_KEYS), Config(), clock=lambda: NOW)
    code, headers, body = call(hail, "/nowhere")
    assert code == 404 and headers["Content-Type"].startswith("application/json")


def test_an_unreachable_buffer_leaks_nothing(redis_client):
    buffer = Buffer(redis_client, BUFFER_KEYS)

    def down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to unix:///secret/redis.sock")

    buffer.push_items = down
    code, _, body = call(make_hail_app(buffer, Config(), clock=lambda: NOW), "/count")
    assert code == 503 and b"secret" not in body and b"111" not in body


def test_served_with_keys_from_the_environment_and_a_flag(redis_server, redis_url):
    with Served("--redis-url", redis_url, "--no-buffer", "--read-key", READ_KEY,
                HAILWHALE_WRITE_KEY=WRITE_KEY) as served:
        assert get(f"{served.url}/count.gif?dimensions=beacon")[0] == 401
        assert get(f"{served.url}/count.gif?dimensions=beacon&key={WRITE_KEY}")[0] == 200
        assert get(f"{served.url}/totals")[0] == 401
        status, _, body = get(f"{served.url}/totals?period=15s:3h",
                              headers={"Authorization": f"Bearer {READ_KEY}"})
        assert status == 200 and json.loads(body)["15s:3h"]["_"]["hits"] == 1
        assert get(f"{served.url}/")[0] == 200 and get(f"{served.url}/health")[0] == 200
