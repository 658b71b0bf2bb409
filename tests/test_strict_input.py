"""Strict input on the counting routes: every finding of issue 11, as the exact request.

A mistake is a 400 naming the parameter and nothing is counted; HEAD never counts;
a JSON body is JSON whatever its Content-Type; bodies, chunked or not, are read once
and never past the request limit. Most tests call the apps in-process on a real
Redis; chunked bodies go through the real servers (gunicorn for `hailwhale serve`,
the standard library's wsgiref) because who decodes the chunks is the point.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import struct
import threading
import time
import urllib.parse
import urllib.request

import pytest
from bottle import Bottle, request

from hail.app import make_hail_app
from hail.buffer import Buffer
from hailwhale.config import Config, Limits
from hailwhale.periods import Periods
from tests.hail_helpers import BUFFER_KEYS, PERIODS, make_store
from tests.servers import Served
from tests.test_access import call
from tests.test_hail_app import served
from whale.app import make_app
from whale.ingest import read_events
from whale.store import Store

NOW = time.time()
MiB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends


@pytest.fixture
def whale(redis_client):
    """Whale counting directly, and its Redis."""
    return make_app(make_store(redis_client, "hw", NOW), Config(), clock=lambda: NOW)


@pytest.fixture
def buffer(redis_client):
    return Buffer(redis_client, BUFFER_KEYS)


@pytest.fixture
def hail(buffer):
    return make_hail_app(buffer, Config(), clock=lambda: NOW)


def totals(app, **params: object) -> dict:
    """The 15s:3h totals of /totals, depth 1, every child shown."""
    query = {"period": "15s:3h", "depth": 1, "threshold": 0, **params}
    status, _, body = call(app, "/totals", query)
    assert status == 200, body
    return json.loads(body)["15s:3h"]


def refused(app, path: str, param: str, query: dict | str = "", status: int = 400,
            **kwargs) -> str:
    """The error of a refused request; asserts its status and the param it names."""
    code, _, body = call(app, path, query, **kwargs)
    answer = json.loads(body)
    assert (code, answer["param"]) == (status, param), answer
    return answer["error"]


COUNTING = [("whale", "/count"), ("whale", "/count_now"), ("whale", "/count.gif"),
            ("hail", "/count"), ("hail", "/count.gif")]


def app_of(tier: str, whale, hail):
    return whale if tier == "whale" else hail


def nothing_counted(redis_client) -> bool:
    return redis_client.dbsize() == 0


# parameters


@pytest.mark.parametrize("tier, path", COUNTING)
def test_an_unknown_parameter_is_a_400_naming_it(tier, path, whale, hail, redis_client):
    app = app_of(tier, whale, hail)
    message = refused(app, path, "dimesions", "dimesions=sales")
    assert "did you mean dimensions?" in message
    refused(app, path, "cb", "dimensions=a&cb=x")
    assert nothing_counted(redis_client)


def test_an_unknown_parameter_in_a_form_body_is_a_400(whale, redis_client):
    refused(whale, "/count_now", "dimesions", method="POST", body=b"dimesions=sales",
            headers=FORM)
    assert nothing_counted(redis_client)


@pytest.mark.parametrize("tier, path", COUNTING)
def test_cache_busters_keys_and_idempotency_keys_are_accepted(tier, path, whale, hail):
    app = app_of(tier, whale, hail)
    query = "dimensions=a&_=1&_=2&key=k&idempotency_key=req-1"
    assert call(app, path, query)[0] == 200
    assert call(app, path, "_=1", method="POST", body=b"dimensions=b&idempotency_key=req-2",
                headers=FORM)[0] == (200 if path != "/count.gif" else 405)


@pytest.mark.parametrize("tier, path", COUNTING)
def test_a_repeated_parameter_is_a_400_naming_it(tier, path, whale, hail, redis_client):
    app = app_of(tier, whale, hail)
    refused(app, path, "metrics", 'metrics={"n":7}&metrics={"n":1000}')
    refused(app, path, "idempotency_key", "idempotency_key=a&idempotency_key=b")
    assert nothing_counted(redis_client)


def test_a_parameter_in_the_query_and_the_form_is_repeated(whale, redis_client):
    refused(whale, "/count_now", "dimensions", "dimensions=a", method="POST",
            body=b"dimensions=b", headers=FORM)
    refused(whale, "/count_now", "metrics", 'metrics={"n":7}&metrics={"n":1000}',
            method="POST", body=b"", headers=FORM)
    assert nothing_counted(redis_client)


def test_too_many_parameters_are_refused_before_they_are_parsed(whale, redis_client):
    refused(whale, "/count_now", "body", method="POST", body=b"a=&" * 300_000, headers=FORM)
    assert nothing_counted(redis_client)


# bodies


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "application/octet-stream", "text/plain",
    "text/plain;charset=UTF-8", "", "application/json", "application/vnd.api+json"])
def test_a_json_body_is_read_as_json_whatever_its_content_type(whale, content_type):
    event = {"dimensions": "j", "metrics": {"n": 2}}
    headers = {"Content-Type": content_type}
    assert call(whale, "/count_now", method="POST", body=json.dumps(event).encode(),
                headers=headers)[0] == 200
    batch = json.dumps([event, {"dimensions": ["j", "k"]}]).encode()
    assert call(whale, "/count_now", method="POST", body=b"\n " + batch, headers=headers)[0] == 200
    assert totals(whale, dimensions="j", metrics=["hits", "n"]) == {
        "j": {"hits": 3, "n": 4}, '["j","k"]': {"hits": 1, "n": 0}}


def test_events_wrapped_in_an_object_or_unknown_fields_are_400s(whale, redis_client):
    batch = {"events": [{"dimensions": "a"}]}
    message = refused(whale, "/count_now", "events", method="POST",
                      body=json.dumps(batch).encode(), headers=JSON)
    assert "a batch is a JSON array" in message
    message = refused(whale, "/count_now", "dimesions", method="POST", headers=FORM,
                      body=b'{"dimesions": "a"}')
    assert "unknown field" in message
    items = [{"dimensions": "a"}, {"dimensions": "b", "key": "k"}]
    message = refused(whale, "/count_now", "key", method="POST", headers=JSON,
                      body=json.dumps(items).encode())
    assert message.startswith("event 1: unknown field")
    assert nothing_counted(redis_client)


@pytest.mark.parametrize("body, content_type, param", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "application/octet-stream", "body"),
    (b"\xff\xfe{}", "text/plain", "body"),
    (b"hello world", "text/plain", "hello world"),
    (b'"dimensions"', "application/json", "body"),
    (b"42", "application/json", "body"),
    (b"null", "text/json", "body"),
    (b"dimensions=a", "application/json", "body"),
    (b'{"dimensions": "a"', "text/plain", "body"),
    (b"[1, 2]", "text/plain", "event"),
])
def test_a_body_that_is_not_a_form_or_json_events_is_a_400(whale, redis_client, body,
                                                            content_type, param):
    refused(whale, "/count_now", param, method="POST", body=body,
            headers={"Content-Type": content_type})
    assert nothing_counted(redis_client)


def test_a_post_with_neither_body_nor_parameters_is_a_400(whale, hail, redis_client):
    for app, path in ((whale, "/count"), (whale, "/count_now"), (hail, "/count")):
        refused(app, path, "body", method="POST")
        refused(app, path, "body", method="POST", body=b"  \r\n", headers=JSON)
        refused(app, path, "body", method="POST", body=b"&&", headers=FORM)
        refused(app, path, "body", method="POST", body=b"--zz--\r\n",
                headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert nothing_counted(redis_client)


def test_an_empty_post_reads_the_query_string_as_send_beacon_sends_it(whale):
    # navigator.sendBeacon(url): a POST, Content-Type text/plain, empty body
    query = "dimensions=beacon&metrics=%7B%22n%22%3A3%7D"
    headers = {"Content-Type": "text/plain;charset=UTF-8"}
    assert call(whale, "/count_now", query, method="POST", headers=headers)[0] == 200
    assert totals(whale, dimensions="beacon", metrics="n") == {"beacon": {"n": 3}}


def test_json_body_with_event_fields_in_the_query_is_a_400(whale, redis_client):
    refused(whale, "/count_now", "dimensions", "dimensions=q", method="POST",
            body=b'{"metrics": {"n": 1}}', headers=JSON)
    refused(whale, "/count_now", "dimesions", "dimesions=q", method="POST",
            body=b'{"metrics": {"n": 1}}', headers=JSON)
    assert nothing_counted(redis_client)
    assert call(whale, "/count_now", "key=k&_=1&idempotency_key=r", method="POST",
                body=b'{"dimensions": "j"}', headers=JSON)[0] == 200


def test_a_multipart_form_counts_and_a_file_in_it_is_refused(whale, redis_client):
    boundary = "----WebKitFormBoundaryAz09Bc"  # a browser's FormData: case matters

    def multipart(*parts: str) -> tuple[bytes, dict]:
        body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
        return body.encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    body, headers = multipart('Content-Disposition: form-data; name="dimensions"\r\n\r\ncafé',
                              'Content-Disposition: form-data; name="metrics"\r\n\r\n{"n": 5}')
    assert call(whale, "/count_now", method="POST", body=body, headers=headers)[0] == 200
    assert totals(whale, dimensions="café", metrics="n") == {"café": {"n": 5}}
    body, headers = multipart(
        'Content-Disposition: form-data; name="dimensions"; filename="a.txt"\r\n\r\nx')
    refused(whale, "/count_now", "dimensions", method="POST", body=body, headers=headers)
    body, headers = multipart('Content-Disposition: form-data; name="dimesions"\r\n\r\nx')
    refused(whale, "/count_now", "dimesions", method="POST", body=body, headers=headers)
    body, headers = multipart('Content-Disposition: form-data; name="dimensions"\r\n'
                              'Content-Type: multipart/mixed; boundary=in\r\n\r\n'
                              '--in\r\n\r\nx\r\n--in--')
    refused(whale, "/count_now", "dimensions", method="POST", body=body, headers=headers)
    refused(whale, "/count_now", "body", method="POST", body=b"--nothing here",
            headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert totals(whale, metrics="n")["_"] == {"n": 5}  # the first form only


# HEAD


@pytest.mark.parametrize("tier, path", COUNTING)
def test_head_answers_like_get_and_never_counts(tier, path, whale, hail, redis_client):
    app = app_of(tier, whale, hail)
    status, headers, body = call(app, path, "dimensions=head", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Type"] == ("image/gif" if path == "/count.gif" else "text/plain")
    # validated as GET is, so it answers what GET would
    status, _, body = call(app, path, "dimesions=x", method="HEAD")
    assert (status, body) == (400, b"")
    assert nothing_counted(redis_client)


# names


@pytest.mark.parametrize("name", ["pay\u202elap", "zero\u200bwidth", "\ufeffbom",
                                  "tag\U000e0041\U000e007f", "\U000e0001lang"])
def test_invisible_and_bidi_characters_are_refused_by_param(whale, hail, redis_client, name):
    for app, path in ((whale, "/count_now"), (hail, "/count")):
        refused(app, path, "dimensions", {"dimensions": name})
        refused(app, path, "pk", {"pk": [name]})
        refused(app, path, "dimensions", method="POST", headers=JSON,
                body=json.dumps({"dimensions": {"user": name}}).encode())
    assert nothing_counted(redis_client)


def test_cafe_in_nfc_and_nfd_is_one_child(whale):
    for spelling in ("caf\u00e9", "cafe\u0301"):
        assert call(whale, "/count_now", {"dimensions": {"city": spelling}})[0] == 200
    status, _, body = call(whale, "/dimensions", {"dimensions": "city", "period": "15s:3h"})
    children = json.loads(body)["children"]
    assert [(child["name"], child["totals"]) for child in children] == [
        ("caf\u00e9", {"hits": 2})]
    # a query may spell it either way too
    assert totals(whale, dimensions=["city", "cafe\u0301"]) == {'["city","café"]': {"hits": 2}}


def test_unique_ids_are_at_most_200_characters(whale, redis_client):
    events = [{"metrics": {"visitors": {"unique": f"{n:03}" + "\U0001F600" * 197}}}
              for n in range(100)]
    assert call(whale, "/count_now", method="POST", body=json.dumps(events).encode(),
                headers=JSON)[0] == 200
    assert 98 <= totals(whale, metrics="visitors")["_"]["visitors"] <= 102  # HyperLogLog
    redis_client.flushall()
    long_id = {"metrics": {"visitors": {"unique": "u" * 201}}}
    message = refused(whale, "/count_now", "metrics", method="POST", headers=JSON,
                      body=json.dumps(long_id).encode())
    assert "over 200 characters" in message
    # the finding: 100 events with 1 MiB ids; the request is over the limit before a byte
    huge = [{"metrics": {"visitors": {"unique": f"{n}" + "x" * MiB}}} for n in range(100)]
    refused(whale, "/count_now", "body", status=413, method="POST", headers=JSON,
            body=json.dumps(huge).encode())
    assert nothing_counted(redis_client)


def test_other_is_readable_in_queries_and_refused_in_events(redis_client):
    store = Store(redis_client, PERIODS, make_store(redis_client, "hw", NOW).keys,
                  clock=lambda: NOW, children_limit=2)
    app = make_app(store, Config(), clock=lambda: NOW)
    for name in ("a", "b", "c", "d"):
        assert call(app, "/count_now", {"dimensions": {"user": name}})[0] == 200
    assert totals(app, dimensions=["user", "_other"]) == {'["user","_other"]': {"hits": 2}}
    assert totals(app, dimensions="user")['["user","_other"]'] == {"hits": 2}
    status, _, body = call(app, "/totals", "dimensions=_other&period=15s:3h")
    assert (status, json.loads(body)) == (200, {"15s:3h": {"_other": {"hits": 0}}})
    status, _, body = call(app, "/dimensions", {"dimensions": "user", "period": "15s:3h"})
    assert [child["name"] for child in json.loads(body)["children"]] == ["_other", "a", "b"]
    refused(app, "/count_now", "dimensions", {"dimensions": {"user": "_other"}})


# body size and chunked bodies, in-process


def raw_request(app, environ_extra: dict, body: bytes, query: str = "") -> tuple[int, bytes]:
    """A POST /count_now with a hand-made WSGI environ (no Content-Length of call())."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/count_now", "QUERY_STRING": query,
               "SERVER_NAME": "test", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(body), "CONTENT_TYPE": "application/json",
               **environ_extra}
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    content = b"".join(app(environ, start_response))
    return answer["status"], content


def chunked(body: bytes, size: int = 1000) -> bytes:
    """`body` in Transfer-Encoding: chunked framing."""
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def padded(size: int) -> bytes:
    """A valid JSON batch of exactly `size` bytes."""
    return b'[{"dimensions": "pad"}' + b" " * (size - 23) + b"]"


def test_the_request_limit_is_exact_however_the_body_comes(whale, redis_client):
    limit = Limits().request_bytes
    chunked_raw = {"HTTP_TRANSFER_ENCODING": "chunked"}
    dechunked = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}
    for size, status in ((limit, 200), (limit + 1, 413)):
        body = padded(size)
        assert call(whale, "/count_now", method="POST", body=body, headers=JSON)[0] == status
        assert raw_request(whale, chunked_raw, chunked(body, 4096))[0] == status
        assert raw_request(whale, dechunked, body)[0] == status
    assert totals(whale, dimensions="pad") == {"pad": {"hits": 3}}


def test_a_body_is_never_read_past_the_limit(whale, redis_client):
    """Whatever follows the limit stays unread: the stream would raise if it were read."""

    class Endless(io.RawIOBase):
        def __init__(self, prefix: bytes):
            self.prefix, self.given = prefix, 0

        def read(self, size: int = -1) -> bytes:
            if self.given > Limits().request_bytes + 64 * 1024:
                raise AssertionError("read past the request limit")
            size = 65536 if size is None or size < 0 else size
            data = (self.prefix + b"7" * size)[:size]
            self.prefix = self.prefix[size:]
            self.given += len(data)
            return data

    # a body chunked twice under a server that decoded the outer chunks (gunicorn)
    twice = Endless(b"fffffff\r\n")
    assert raw_request(whale, {"HTTP_TRANSFER_ENCODING": "chunked",
                               "wsgi.input_terminated": True, "wsgi.input": twice}, b"")[0] == 413
    # raw chunks (wsgiref): a chunk that says it is 256 MiB
    raw = Endless(b"10000000\r\n")
    assert raw_request(whale, {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": raw},
                       b"")[0] == 413
    assert raw.given < 100
    # a Content-Length over the limit: refused before a byte is read
    declared = Endless(b"")
    assert raw_request(whale, {"CONTENT_LENGTH": str(300 * MiB), "wsgi.input": declared},
                       b"")[0] == 413
    assert declared.given == 0
    assert nothing_counted(redis_client)


@pytest.mark.parametrize("framing", [
    b"zz\r\nab\r\n0\r\n\r\n", b"2\r\nabc\r\n0\r\n\r\n", b"5\r\nab", b"-1\r\n", b"+2\r\n{}\r\n",
    b"0x2\r\n{}\r\n", b"2" * 2000, b"2\r\n{}\r\n0\r\n" + b"X-Trailer: 1\r\n" * 40 + b"\r\n",
    b"2\r\n{}\r\n0\r\n"])
def test_malformed_chunks_are_a_400(whale, redis_client, framing):
    status, body = raw_request(whale, {"HTTP_TRANSFER_ENCODING": "chunked"}, framing)
    assert (status, json.loads(body)["param"]) == (400, "body")
    assert nothing_counted(redis_client)
    framing = b"2\r\n{}\r\n0;ext=1\r\nX-Trailer: 1\r\n\r\n"  # extensions, a trailer
    assert raw_request(whale, {"HTTP_TRANSFER_ENCODING": "chunked"}, framing)[0] == 200


def test_request_params_stay_readable_after_read_events():
    """Code that reads request.params after the events (the idempotency key of a beacon)
    sees the form that was read, not a second decoding of the consumed input."""
    app = Bottle()
    seen = {}

    @app.post("/count")
    def count():
        events = read_events(request, periods=Periods.parse("15s:3h"), limits=Limits(),
                             now=NOW)
        seen.update(events=len(events), key=request.params.get("idempotency_key"),
                    body=request.body.read())
        return "OK"

    form = b"dimensions=a&idempotency_key=beacon-1"
    with served(app) as base:
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        connection.request("POST", "/count", body=iter([form[:10], form[10:]]), headers=FORM,
                           encode_chunked=True)
        assert connection.getresponse().status == 200
    assert seen == {"events": 1, "key": "beacon-1", "body": form}


# chunked bodies through the real servers


@pytest.fixture(scope="module")
def server(redis_server):
    """`hailwhale serve` (gunicorn, gevent workers) counting directly."""
    with Served("--redis-url", redis_server.url, "--no-buffer") as served_whale:
        yield served_whale


def post_chunked(port: int, path: str, pieces: list[bytes], headers: dict) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, body=iter(pieces), headers=headers, encode_chunked=True)
    answer = connection.getresponse()
    return answer.status, answer.read()


def server_totals(url: str, **params: object) -> dict:
    query = urllib.parse.urlencode({"period": "15s:3h", "depth": 1, "threshold": 0, **{
        k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}})
    with urllib.request.urlopen(f"{url}/totals?{query}", timeout=10) as answer:
        return json.loads(answer.read())["15s:3h"]


def test_an_ordinary_chunked_post_counts_under_the_server(server, redis_url):
    event = b'{"dimensions": {"chunky": "json"}, "metrics": {"n": 2}}'
    assert post_chunked(server.port, "/count_now", [event[:9], event[9:]], JSON) == (200, b"OK")
    form = b"dimensions=%5B%22chunky%22%2C%22form%22%5D&metrics=n"
    multipart = {"Content-Type": "multipart/form-data; boundary=XX"}
    parts = b"".join(b'--XX\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                     % pair for pair in ((b"dimensions", b'["chunky","form"]'),
                                         (b"metrics", b"n")))
    # a chunked urlencoded form is refused (below); a multipart one marks its own end
    assert post_chunked(server.port, "/count", [form[:5], form[5:]], FORM)[0] == 400
    assert post_chunked(server.port, "/count", [parts[:30], parts[30:] + b"--XX--\r\n"],
                        multipart) == (200, b"OK")
    batch = json.dumps([{"dimensions": {"chunky": f"b{i:04}" + "é" * 150}} for i in range(1000)])
    assert 300 * 1024 < len(batch.encode()) < MiB  # over Bottle's 100 KiB, under our 1 MiB
    pieces = [batch.encode()[i:i + 8192] for i in range(0, len(batch.encode()), 8192)]
    assert post_chunked(server.port, "/count_now", pieces, JSON)[0] == 200
    counted = server_totals(server.url, dimensions="chunky", metrics=["hits", "n"], limit=0)
    assert counted["chunky"] == {"hits": 1002, "n": 3}


def raw_post(port: int, request: bytes, cut: str = "") -> bytes:
    """Send `request` as it is; `cut`: then half-close, or reset, as a client that went
    away mid-body. The answer (none after a cut: the server closes at the end of input)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(request)
    if cut == "half-close":
        connection.shutdown(socket.SHUT_WR)
    elif cut == "reset":
        time.sleep(0.2)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        return b""
    answer = b""
    while not answer.endswith(b"}") and not answer.endswith(b"OK"):
        part = connection.recv(65536)
        if not part:
            break
        answer += part
    connection.close()
    return answer


def chunked_head(path: str, headers: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\n{headers}"
            "Transfer-Encoding: chunked\r\n\r\n").encode()


def test_a_chunked_form_is_refused_since_a_cut_one_reads_as_whole(server, redis_url):
    """The attack: granian reads a chunked body cut off, or with a bad chunk, as if it
    ended there. A form cut after `dimensions=ab` counted `ab`, and used up its
    Idempotency-Key, so the client's whole retry was dropped. Chunked bodies that do not
    mark their own end (urlencoded, empty) are refused; JSON and multipart still come."""
    form_type = "Content-Type: application/x-www-form-urlencoded\r\n"
    whole = b"dimensions=cutform&metrics=n"
    status, body = post_chunked(server.port, "/count_now", [whole], FORM)
    assert (status, json.loads(body)["param"]) == (400, "body")
    assert b"Content-Length" in body
    # cut off, with an Idempotency-Key, then sent again whole, as the README says to retry
    keyed = chunked_head("/count_now", form_type + "Idempotency-Key: cut-1\r\n")
    for cut in ("half-close", "reset"):
        raw_post(server.port, keyed + b"%x\r\n%s\r\n" % (14, whole[:14]), cut)
    time.sleep(0.5)
    retry = urllib.request.Request(f"{server.url}/count_now", data=whole, method="POST",
                                   headers={"Idempotency-Key": "cut-1", **FORM})
    with urllib.request.urlopen(retry, timeout=10) as answer:
        assert answer.status == 200
    # an event in the query string and a bad chunk for a body: refused, not counted
    garbled = raw_post(server.port, chunked_head("/count_now?dimensions=cutform", "")
                       + b"ZZZZ\r\n")
    assert garbled.startswith(b"HTTP/1.1 400 "), garbled[:200]
    # a JSON event cut off does not parse; a multipart form cut off lacks its end
    event = b'{"dimensions": "cutform", "metrics": {"n": 1}}'
    raw_post(server.port, chunked_head("/count_now", "Content-Type: application/json\r\n")
             + b"%x\r\n%s\r\n" % (30, event[:30]), "half-close")
    time.sleep(0.5)
    counted = server_totals(server.url, metrics=["hits", "n"], limit=0)
    assert counted["cutform"] == {"hits": 1, "n": 1}
    assert "cutfo" not in counted and "cut" not in counted


def test_a_body_chunked_twice_is_refused_at_the_limit_without_being_read(server, redis_url):
    """The finding: 50 and 300 MiB bodies chunked twice were read and spooled to /tmp.

    The body below never ends. The 413 arrives while the client is still sending,
    so the server stopped reading at the limit (it never waits for the end)."""
    inner = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"  # a chunk of 64 KiB, chunked again
    outer = b"%x\r\n%s\r\n" % (len(inner), inner)
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    connection.sendall(b"POST /count_now HTTP/1.1\r\nHost: test\r\nContent-Type: "
                       b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    stop = threading.Event()

    def send_forever() -> None:
        try:
            while not stop.is_set():
                connection.sendall(outer)
        except OSError:
            pass

    sender = threading.Thread(target=send_forever, daemon=True)
    sender.start()
    answer = b""
    try:
        while not answer.endswith(b"}") and (part := connection.recv(65536)):
            answer += part
    finally:
        stop.set()
        connection.close()
        sender.join(10)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"param":"body"' in answer


def test_head_on_the_real_server_answers_200_and_counts_nothing(server, redis_client):
    for path in ("/count", "/count_now", "/count.gif"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("HEAD", f"{path}?dimensions=head")
        answer = connection.getresponse()
        assert (answer.status, answer.read()) == (200, b"")
    assert nothing_counted(redis_client)


def test_chunked_posts_under_wsgiref_which_does_not_decode_them(hail, buffer):
    with served(hail) as base:
        port = int(base.rsplit(":", 1)[1])
        event = b'{"dimensions": "wsgiref"}'
        assert post_chunked(port, "/count", [event[:5], event[5:]], JSON) == (200, b"OK")
        status, body = post_chunked(port, "/count", [b"x" * MiB, b"y"], JSON)
        assert (status, json.loads(body)["param"]) == (413, "body")
    assert buffer.depth() == 1
