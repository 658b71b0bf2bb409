"""`/metrics`: the Prometheus text, parsed as Prometheus would, on both tiers and across processes.

The unit tests call the apps in-process (this process's own figures, which other tests
move too: they compare before and after); one test runs `hailwhale serve` with two
gunicorn workers and a flusher process, whose figures must add up whichever worker
answers the scrape.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import fakeredis
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError

from hail.app import make_hail_app
from hail.buffer import Buffer
from hail.flusher import Flusher
from hail.statsd_counts import REFUSED_BY
from hailwhale.config import Config, Limits
from hailwhale.events import parse_event
from hailwhale.exceptions import BufferFull, PoisonWrite
from hailwhale.periods import DEFAULT_PERIODS, Periods
from hailwhale.processes import free_port
from hailwhale.wsgi import buffering
from tests.hail_helpers import BUFFER_KEYS, make_store
from tests.servers import Served, cmdline, get, wait_for
from tests.test_access import call
from whale.app import Buffering, make_app
from whale.metrics import BufferFigures, metrics_openapi, scrape, shared_metrics_dir

NOW = time.time()
READ_KEY = "r-0123456789abcdef"
# Names that must never show in /metrics (pk, dimension, metric).
SECRETS = ("pkSecret", "dimSecret", "metricSecret")
SECRET_EVENT = {"pk": "pkSecret", "dimensions": {"dimSecret": "dimSecretChild"},
                "metrics": {"metricSecret": 3}}
GOOD = {"dimensions": json.dumps(SECRET_EVENT["dimensions"]), "pk": "pkSecret",
        "metrics": json.dumps(SECRET_EVENT["metrics"])}

Figures = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Figures:
    """Every sample of a scrape: (sample name, sorted labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def figure(figures: Figures, name: str, **labels: str) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


def scraped(app, **headers: str) -> tuple[Figures, str]:
    status, answer, body = call(app, "/metrics", headers=headers)
    assert status == 200, body
    assert answer["Content-Type"].startswith("text/plain")
    return parse(body.decode()), body.decode()


def whale_app(config: Config = Config(), push=None):
    """Whale with a Hail buffer on fakeredis; `push` replaces the buffer's push."""
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    store = make_store(redis, "hw", NOW)
    buffer = Buffer(redis, BUFFER_KEYS, max_events=4)
    wired = buffering(buffer, Flusher(buffer, store))
    if push is not None:
        wired = Buffering(push=push, flush=wired.flush, health=wired.health)
    return make_app(store, config, wired, clock=lambda: NOW), buffer


def moved(before: Figures, after: Figures) -> dict[tuple, float]:
    """The samples that changed between two scrapes, by how much."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()
            if value != before.get(key, 0.0)}


def events_moved(before: Figures, after: Figures) -> dict[tuple, float]:
    return {key: value for key, value in moved(before, after).items()
            if key[0].startswith("hailwhale_events_")}


def this_process() -> Figures:
    """This process's figures, as /metrics shows them without a multiprocess directory."""
    return parse(generate_latest(scrape()).decode())


def collected(collector: BufferFigures) -> Figures:
    registry = CollectorRegistry()
    registry.register(collector)
    return parse(generate_latest(registry).decode())


def test_events_accepted_and_refused_by_endpoint_and_reason():
    app, buffer = whale_app(Config(limits=Limits(request_bytes=2000)))
    before, _ = scraped(app)
    assert call(app, "/count", GOOD)[0] == 200
    batch = json.dumps([SECRET_EVENT, SECRET_EVENT]).encode()
    assert call(app, "/count", method="POST", body=batch)[0] == 200
    assert call(app, "/count.gif", GOOD)[0] == 200
    assert call(app, "/count_now", GOOD)[0] == 200
    assert call(app, "/count", method="HEAD", query=GOOD)[0] == 200  # HEAD never counts
    assert call(app, "/count", {"dimensionz": "a"})[0] == 400
    assert call(app, "/count", method="POST", body=b"[" + b" " * 3000 + b"]")[0] == 413
    assert call(app, "/count", method="POST", body=json.dumps([SECRET_EVENT] * 3).encode())[0] \
        == 503  # the buffer holds 4 events: it is full
    after, text = scraped(app)
    refused = "hailwhale_events_refused_total"
    assert events_moved(before, after) == {
        ("hailwhale_events_accepted_total", (("endpoint", "/count"),)): 3,
        ("hailwhale_events_accepted_total", (("endpoint", "/count.gif"),)): 1,
        ("hailwhale_events_accepted_total", (("endpoint", "/count_now"),)): 1,
        (refused, (("endpoint", "/count"), ("reason", "invalid"))): 1,  # one request
        (refused, (("endpoint", "/count"), ("reason", "too_large"))): 1,
        (refused, (("endpoint", "/count"), ("reason", "buffer_full"))): 3,  # its events
    }
    assert figure(after, "hailwhale_buffer_events") == buffer.depth() == 4
    assert figure(after, "hailwhale_buffer_up") == 1
    assert not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("raised, reason", [
    (BufferFull(1), "buffer_full"), (ConnectionError("down"), "unavailable"),
    (PoisonWrite("WRONGTYPE"), "poison"), (RuntimeError("a bug"), "error")])
def test_each_refusal_has_its_reason(raised, reason):
    def push(events, now, request_key):
        raise raised

    app, _ = whale_app(push=push)
    before, _ = scraped(app)
    status = call(app, "/count", method="POST", body=json.dumps([SECRET_EVENT] * 2).encode())[0]
    assert status in (500, 503)
    after, _ = scraped(app)
    assert events_moved(before, after) == {("hailwhale_events_refused_total",
                                            (("endpoint", "/count"), ("reason", reason))): 2}
    change = moved(before, after)
    assert change[("hailwhale_request_duration_seconds_count",
                   (("method", "POST"), ("route", "/count"), ("status", f"{status // 100}xx")))] \
        == 1


def test_metrics_takes_the_read_key_and_counts_refused_writes_as_unauthorized():
    app, _ = whale_app(Config(read_key=READ_KEY, write_key="w-0123456789abcdef"))
    assert call(app, "/metrics")[0] == 401
    assert call(app, "/metrics", headers={"Authorization": "Bearer nope"})[0] == 403
    before, _ = scraped(app, Authorization=f"Bearer {READ_KEY}")
    assert call(app, "/count", GOOD)[0] == 401
    after, _ = scraped(app, Authorization=f"Bearer {READ_KEY}")
    assert figure(after, "hailwhale_events_refused_total", endpoint="/count",
                  reason="unauthorized") - figure(before, "hailwhale_events_refused_total",
                                                  endpoint="/count", reason="unauthorized") == 1
    status, _, body = call(app, "/metrics", {"name": "x"},
                           headers={"Authorization": f"Bearer {READ_KEY}"})
    assert status == 400 and json.loads(body)["param"] == "name"


def test_requests_are_timed_by_route_rule_method_and_status_class_never_by_path():
    app, _ = whale_app()
    before, _ = scraped(app)
    assert call(app, "/static/js/jquery.hailwhale.js")[0] == 200
    assert call(app, "/dimSecret/pkSecret")[0] == 404
    assert call(app, "/count", GOOD, method="BREW")[0] == 405
    assert call(app, "/totals", {"metrics": "metricSecret/hits", "pk": "pkSecret"})[0] == 200
    after, text = scraped(app)
    counts = {(dict(labels)["route"], dict(labels)["method"], dict(labels)["status"]): value
              for (name, labels), value in moved(before, after).items()
              if name == "hailwhale_request_duration_seconds_count"}
    assert counts == {("/static/<path:path>", "GET", "2xx"): 1, ("/totals", "GET", "2xx"): 1,
                      ("(unrouted)", "GET", "4xx"): 1, ("(unrouted)", "other", "4xx"): 1,
                      ("/metrics", "GET", "2xx"): 1}  # the scrape before
    assert not any(secret in text for secret in SECRETS)


def test_hail_serves_metrics_with_its_buffer_read_at_the_scrape(redis_client):
    buffer = Buffer(redis_client, BUFFER_KEYS)
    app = make_hail_app(buffer, Config(), clock=lambda: NOW)
    before, _ = scraped(app)
    buffer.push_items([f"{NOW - 30!r} not an event"])
    assert call(app, "/count", GOOD)[0] == 200
    figures, _ = scraped(app)
    assert figure(figures, "hailwhale_events_accepted_total", endpoint="/count") \
        - figure(before, "hailwhale_events_accepted_total", endpoint="/count") == 1
    assert figure(figures, "hailwhale_buffer_events") == 2
    assert figure(figures, "hailwhale_buffer_bytes") > 0
    assert figure(figures, "hailwhale_buffer_oldest_event_age_seconds") == pytest.approx(30)
    assert figure(figures, "hailwhale_flusher_heartbeat_age_seconds") == float("inf")
    Flusher(buffer, make_store(redis_client, "hw", NOW)).flush_all()
    buffer.beat("a flusher", NOW - 2)
    figures, _ = scraped(app)
    assert figure(figures, "hailwhale_events_flushed_total") \
        - figure(before, "hailwhale_events_flushed_total") == 1
    assert figure(figures, "hailwhale_dead_letters_total", kind="item") \
        - figure(before, "hailwhale_dead_letters_total", kind="item") == 1
    assert figure(figures, "hailwhale_dead_letters_waiting") == 1
    assert figure(figures, "hailwhale_buffer_events") == 0
    assert figure(figures, "hailwhale_buffer_oldest_event_age_seconds") == 0
    assert figure(figures, "hailwhale_flusher_heartbeat_age_seconds") == pytest.approx(2)


def test_a_poison_batch_set_aside_is_counted_once(redis_client):
    periods = Periods.parse(DEFAULT_PERIODS)
    event = parse_event(SECRET_EVENT, periods=periods, limits=Limits(), now=NOW, encoded=False)
    store = make_store(redis_client, "hw", NOW)
    redis_client.set(sorted(key for key, _ in store.rollup([event], NOW).sums)[0], "not a hash")
    buffer = Buffer(redis_client, BUFFER_KEYS)
    buffer.push([event, event], NOW)
    before = this_process()
    assert Flusher(buffer, store).flush_all() == 0
    after = this_process()
    assert figure(after, "hailwhale_dead_letters_total", kind="batch") \
        - figure(before, "hailwhale_dead_letters_total", kind="batch") == 1
    assert figure(after, "hailwhale_events_flushed_total") \
        == figure(before, "hailwhale_events_flushed_total")


def test_an_unreachable_buffer_is_a_figure_not_a_failed_scrape():
    def health(now, max_lag):
        raise ConnectionError("down")

    figures = collected(BufferFigures(health, lambda: NOW))
    assert figure(figures, "hailwhale_buffer_up") == 0
    assert not any(name.startswith("hailwhale_buffer_events") for name, _ in figures)


def test_statsd_lines_by_outcome_from_the_buffers_redis(redis_client):
    buffer = Buffer(redis_client, BUFFER_KEYS)
    app = make_hail_app(buffer, Config(), clock=lambda: NOW)
    assert not any(name.startswith("hailwhale_statsd") for name, _ in scraped(app)[0])
    reason = REFUSED_BY[0]
    redis_client.hset(BUFFER_KEYS.statsd_lines(), mapping={"accepted": 9,
                                                           f"refused:{reason}": 2})
    figures, _ = scraped(app)
    assert figure(figures, "hailwhale_statsd_lines_received_total") == 11
    assert figure(figures, "hailwhale_statsd_lines_accepted_total") == 9
    assert {dict(labels)["reason"]: value for (name, labels), value in figures.items()
            if name == "hailwhale_statsd_lines_refused_total"} == {
        other: 2 if other == reason else 0 for other in REFUSED_BY}


def test_the_supervisor_makes_a_fresh_directory_or_keeps_the_users(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with shared_metrics_dir() as made:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == made and os.listdir(made) == []
    assert not Path(made).exists() and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    mine = tmp_path / "figures"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(mine))
    with shared_metrics_dir() as given:
        assert given == str(mine) and mine.is_dir()
    assert mine.is_dir()


def test_the_openapi_path_item():
    item = metrics_openapi()
    assert set(item["get"]["responses"]) == {"200", "400"}
    assert "text/plain" in item["get"]["responses"]["200"]["content"]


def test_figures_add_up_across_gunicorn_workers_the_flusher_and_statsd(redis_url):
    good, bad = 0, 0
    statsd_port = free_port()
    # two gunicorn workers, a flusher process, StatsD listener processes
    with Served("--redis-url", redis_url, "--statsd-port", str(statsd_port)) as served:
        master = served.child("--http-only")
        environ = Path(f"/proc/{master}/environ").read_bytes().split(b"\0")
        directory = next(entry.partition(b"=")[2].decode() for entry in environ
                         if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
        for _ in range(4):  # the flusher process drains these
            assert get(served.url + "/count?" + urlencode(GOOD))[0] == 200
            good += 1
        wait_for(lambda: figure(_scrape(served), "hailwhale_events_flushed_total") == good,
                 what="the flusher process to flush")
        for n in range(6):
            assert get(served.url + "/count?" + urlencode(GOOD))[0] == 200
            assert get(served.url + "/count?dimensionz=" + SECRETS[n % 3])[0] == 400
            good, bad = good + 1, bad + 1
        batch = json.dumps([SECRET_EVENT] * 5).encode()
        assert get(served.url + "/count", data=batch)[0] == 200
        good += 5
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # 3 lines, 1 refused
            udp.sendto(b"metricSecret:2|c|#dimSecret:v,pk:pkSecret\nmetricSecret:5|ms\n"
                       b"metricSecret:7|g", ("127.0.0.1", statsd_port))
        wait_for(lambda: figure(_scrape(served), "hailwhale_statsd_lines_received_total") == 3,
                 what="the StatsD listener to save its counts")
        assert get(served.url + "/flush_hail", data=b"")[0] == 200
        scrapes = [_scrape(served) for _ in range(6)]
        texts = [get(served.url + "/metrics")[2].decode() for _ in range(2)]
        flusher = served.child("hailwhale.cli flush")
        pids = {int(name.rpartition("_")[2].partition(".")[0]) for name in os.listdir(directory)}
        assert flusher in pids and len(pids) >= 2  # the flusher's file beside the workers'
        assert "hailwhale.cli" in cmdline(flusher)
    events = [{key: value for key, value in figures.items() if "events" in key[0]
               or "buffer_events" in key[0]} for figures in scrapes]
    assert all(each == events[0] for each in events)  # whichever worker answered
    figures = scrapes[0]
    assert figure(figures, "hailwhale_events_accepted_total", endpoint="/count") == good == 15
    assert figure(figures, "hailwhale_events_refused_total", endpoint="/count",
                  reason="invalid") == bad == 6
    assert figure(figures, "hailwhale_events_flushed_total") == good + 2  # StatsD's too
    assert figure(figures, "hailwhale_statsd_lines_accepted_total") == 2
    assert figure(figures, "hailwhale_statsd_lines_refused_total", reason="unsupported") == 1
    assert figure(figures, "hailwhale_buffer_events") == 0
    assert figure(figures, "hailwhale_dead_letters_waiting") == 0
    requests = {(labels, value) for (name, labels), value in figures.items()
                if name == "hailwhale_request_duration_seconds_count"
                and dict(labels)["route"] == "/count"}
    assert requests == {((("method", "GET"), ("route", "/count"), ("status", "2xx")), 10),
                        ((("method", "GET"), ("route", "/count"), ("status", "4xx")), 6),
                        ((("method", "POST"), ("route", "/count"), ("status", "2xx")), 1)}
    assert figure(figures, "hailwhale_request_duration_seconds_count", route="/flush_hail",
                  method="POST", status="2xx") == 1
    assert all(not any(secret in text for secret in SECRETS) for text in texts)
    assert not Path(directory).exists()  # the supervisor removed what it made


def _scrape(served: Served) -> Figures:
    status, _, body = get(served.url + "/metrics")
    assert status == 200, body
    return parse(body.decode())
