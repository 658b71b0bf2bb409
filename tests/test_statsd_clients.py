"""Real StatsD clients, each in a process of its own, against `hailwhale serve --statsd-port`.

PyPI `statsd` (UDP and TCP) and `datadog`'s DogStatsD (tags, pk) send; the counts are
read back over HTTP. The clients sample with `random()`; each script pins it so every
sampled call is sent, rate and all: the totals are then exact.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator

import pytest

from hail.statsd_counts import read_line_counts
from hailwhale import HailWhale
from hailwhale.processes import free_port
from tests.servers import Served, children, cmdline, command_env, get, wait_for

PYSTATSD = """
import random, sys
random.random = lambda: 0.0  # every sampled call is sent, with its rate
from statsd import StatsClient, TCPStatsClient

port = int(sys.argv[1])
udp = StatsClient("127.0.0.1", port, prefix="py")
for _ in range(10):
    udp.incr("clicks")
for _ in range(10):
    udp.incr("sampled", 3, rate=0.5)  # each counts 3 / 0.5
udp.decr("debt", 2)
for ms in (100, 200, 300):
    udp.timing("api", ms, rate=0.25)  # api += ms, api.count += 4
for user in ("ann", "bob", "ann"):
    udp.set("users", user)
udp.gauge("temperature", 21)  # refused: gauges are not counted
with udp.pipeline() as pipe:  # one datagram, two lines
    pipe.incr("piped")
    pipe.incr("piped", 2)
tcp = TCPStatsClient("127.0.0.1", port, prefix="tcp")
for _ in range(5):
    tcp.incr("clicks")
tcp.timing("api", 50)
tcp.close()
"""

DOGSTATSD = """
import sys
import datadog.dogstatsd.base as base
base.random = lambda: 0.0  # every sampled call is sent, with its rate
from datadog.dogstatsd import DogStatsd

dd = DogStatsd(host="127.0.0.1", port=int(sys.argv[1]), disable_telemetry=True,
               container_id="3f6e11a0c0ffee")  # sent as |c:..., which the listener skips
for _ in range(4):
    dd.increment("orders", tags=["pk:dd", "sales:p42", "country:US"])
dd.increment("orders", 2, sample_rate=0.5, tags=["pk:dd", "sales:p7", "country:FR"])
dd.decrement("stock", tags=["pk:dd"])
dd.histogram("basket", 30, tags=["pk:dd", "sales:p42"])
dd.distribution("basket", 10, tags=["pk:dd", "beta"])
dd.timing("render", 12.5, tags=["pk:dd"])
for buyer in ("u1", "u2", "u1"):
    dd.set("buyers", buyer, tags=["pk:dd"])
dd.gauge("queue", 3, tags=["pk:dd"])  # refused
dd.event("deploy", "v2 is out")  # refused
dd.service_check("db.up", 0)  # refused
dd.close_socket()
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """`hailwhale serve` on its embedded Redis with a StatsD port."""
    home = tmp_path_factory.mktemp("statsd")
    port = free_port()
    with Served("--statsd-port", str(port), "--flush-interval", "0.05", cwd=home) as server:
        server.statsd_port = port
        yield server


def run_client(script: str, port: int) -> None:
    env = {k: v for k, v in command_env().items() if not k.startswith("DD_")}
    done = subprocess.run([sys.executable, "-c", script, str(port)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def totals(served: Served, metrics: list[str], **query: str) -> dict:
    params = urllib.parse.urlencode({"metrics": json.dumps(metrics), "period": "1d:1y",
                                     **query})
    status, _, body = get(f"{served.url}/totals?{params}")
    assert status == 200, body
    return json.loads(body)["1d:1y"]


def lines(served: Served) -> dict:
    """The StatsD lines in /health: Whale's shows its buffer's figures under `buffer`.
    Zeros until the listeners saved their first counts (they save once a second: the
    HTTP server may answer before)."""
    health = json.loads(get(f"{served.url}/health")[2])
    figures = health["buffer"] if isinstance(health["buffer"], dict) else health
    return figures.get("statsd") or read_line_counts({b"accepted": b"0"})


def wait_lines(served: Served, before: dict, accepted: int, **refused: int) -> None:
    """Wait until the listeners have counted `accepted` lines more than `before`, and
    `refused` more by reason (they save their counts once a second)."""
    want = {"accepted": accepted, **{reason: refused.get(reason, 0)
                                     for reason in before["refused_by_reason"]}}
    seen: dict = {}

    def counted() -> bool:
        now = lines(served)
        seen.update({"accepted": now["accepted"] - before["accepted"]})
        seen.update({reason: now["refused_by_reason"][reason] - count
                     for reason, count in before["refused_by_reason"].items()})
        return seen == want

    try:
        wait_for(counted, what="the lines' counts")
    except AssertionError:
        assert seen == want


def wait_totals(served: Served, want: dict, metrics: list[str], **query: str) -> dict:
    """The totals once they equal `want` (the flusher may not have applied them yet)."""
    found: dict = {}

    def equal() -> bool:
        found.update(totals(served, metrics, **query))
        return {key: found.get(key) for key in want} == want

    try:
        wait_for(equal, timeout=20, what="the lines to be counted")
    except AssertionError:
        assert {key: found.get(key) for key in want} == want  # show what differs
    return found


def test_the_banner_shows_the_statsd_port(served):
    wait_for(lambda: f"StatsD on UDP and TCP port {served.statsd_port}" in served.printed,
             what="the banner")


def test_pystatsd_over_udp_and_tcp(served):
    before = lines(served)
    run_client(PYSTATSD, served.statsd_port)
    udp = {"py.clicks": 10, "py.sampled": 60, "py.debt": -2, "py.api": 600,
           "py.api.count": 12, "py.users": 2, "py.piped": 3, "py.temperature": 0,
           "hits": 10 + 10 + 1 + 3 + 3 + 2 + 5 + 1}
    assert wait_totals(served, {"_": udp}, list(udp)) == {"_": udp}
    tcp = {"tcp.clicks": 5, "tcp.api": 50, "tcp.api.count": 1}
    assert totals(served, list(tcp)) == {"_": tcp}
    wait_lines(served, before, accepted=35, unsupported=1)


def test_dogstatsd_tags_are_dimensions_and_the_pk(served):
    before = lines(served)
    run_client(DOGSTATSD, served.statsd_port)
    metrics = ["orders", "stock", "basket", "basket.count", "render", "render.count", "buyers",
               "hits"]
    overall = {"orders": 8, "stock": -1, "basket": 40, "basket.count": 2, "render": 12.5,
               "render.count": 1, "buyers": 2, "hits": 12}
    wait_totals(served, {"_": overall}, metrics, pk="dd")
    by_sale = totals(served, ["orders", "basket"], pk="dd", dimensions="sales", depth="1")
    assert by_sale == {"sales": {"orders": 8, "basket": 30},
                       '["sales","p42"]': {"orders": 4, "basket": 30},
                       '["sales","p7"]': {"orders": 4, "basket": 0}}
    by_country = totals(served, ["orders"], pk="dd", dimensions="country", depth="1")
    assert by_country == {"country": {"orders": 8}, '["country","US"]': {"orders": 4},
                          '["country","FR"]': {"orders": 4}}
    assert totals(served, ["basket", "basket.count"], pk="dd", dimensions="beta") == {
        "beta": {"basket": 10, "basket.count": 1}}
    # Nothing of pk dd is counted overall: categories are namespaces of their own.
    assert totals(served, ["orders"]) == {"_": {"orders": 0}}
    wait_lines(served, before, accepted=12, unsupported=3)  # gauge, event, service check


def test_bad_lines_are_refused_and_counted_and_their_datagram_still_counts(served):
    before = lines(served)
    datagram = (b"mixed.ok:1|c|#pk:mixed\nnot a line\nmixed.queue:1|g\nmixed-bad:1|c\n"
                b"mixed.ok:2|c|#pk:mixed\n\xff\xfe:1|c\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(datagram, ("127.0.0.1", served.statsd_port))
    wait_totals(served, {"_": {"mixed.ok": 3, "hits": 2}}, ["mixed.ok", "hits"], pk="mixed")
    wait_lines(served, before, accepted=2, malformed=2, unsupported=1, invalid=1)


def listeners(served: Served) -> set[int]:
    return {pid for pid in children(served.process.pid) if "--statsd-only" in cmdline(pid)}


def test_a_killed_listener_is_restarted_and_the_port_keeps_counting(served):
    before = listeners(served)
    assert len(before) == min(os.cpu_count() or 1, 4)
    killed = min(before)
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: len(after := listeners(served)) == len(before) and killed not in after,
             what="a new StatsD listener")
    before = lines(served)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"revived:1|c|#pk:revived", ("127.0.0.1", served.statsd_port))
    wait_totals(served, {"_": {"revived": 1}}, ["revived"], pk="revived")
    wait_lines(served, before, accepted=1)
    assert "restarted the StatsD listener" in served.printed


def test_hail_listens_for_statsd_too(tmp_path):
    port = free_port()
    with Served("--statsd-port", str(port), "--flush-interval", "0.05", command="hail",
                cwd=tmp_path) as hail:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"hailed:2|c|#via:hail", ("127.0.0.1", port))
        wait_for(lambda: lines(hail)["accepted"] == 1, what="the line to be buffered")
        with HailWhale(data_dir=str(tmp_path / "data")) as hw:  # borrows Hail's Redis
            wait_for(lambda: hw.totals("via", ["hailed"], period="1d:1y")["1d:1y"]["via"]
                     == {"hailed": 2}, what="the line to be counted")
