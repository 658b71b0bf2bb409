"""`GET /metrics`: HailWhale's own figures in the Prometheus text format, the same from any process.

Two sources, joined at each scrape:

* what processes counted (whale/telemetry.py): events accepted, refused and flushed,
  dead letters set aside, requests and their latency. With PROMETHEUS_MULTIPROC_DIR
  set (the supervisor of `serve` and `hail` makes one for its children:
  `shared_metrics_dir`), prometheus_client adds up the files of every process that
  wrote there, so whichever server worker answers, the figures are the same;
  without it, this process's own.
* what the buffer's Redis holds now (events waiting, their bytes and age, batches in
  flight, dead letters waiting, the flusher's heartbeat, the StatsD listener's lines
  by outcome), read at the scrape, so it is right whatever process answers.

No figure names a pk, dimension or metric.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from bottle import Bottle, HTTPResponse, request
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from redis.exceptions import RedisError

from whale.openapi_parts import BAD, ok, param
from whale.query_params import check_params
from whale.telemetry import install_telemetry

log = logging.getLogger("whale.metrics")

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

Health = Callable[[float, float], tuple[dict, list[str]]]  # (now, max_lag): stats, problems


class BufferFigures:
    """Collector: what a Hail buffer's Redis holds now, read at each scrape.

    `health` is the buffer's (hail/buffer.py): its stats, with the StatsD listener's
    line counts (hail/statsd_counts.py) once one has run on the buffer.
    """

    def __init__(self, health: Health, clock: Callable[[], float]):
        self.health = health
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        try:
            stats, _ = self.health(self.clock(), math.inf)
        except RedisError:
            log.warning("/metrics: the buffer does not answer")
            yield _gauge("buffer_up", "1 if the buffer's Redis answered this scrape, else 0", 0)
            return
        yield _gauge("buffer_up", "1 if the buffer's Redis answered this scrape, else 0", 1)
        yield _gauge("buffer_events", "Events waiting in the buffer (not yet claimed)",
                     stats["depth"])
        yield _gauge("buffer_bytes", "Bytes of the events waiting in the buffer",
                     stats["bytes"])
        yield _gauge("buffer_oldest_event_age_seconds", "Age of the oldest event not yet "
                     "applied, waiting or in flight (0: none)", stats["oldest_age_seconds"] or 0)
        yield _gauge("buffer_batches_in_flight", "Batches claimed by flushers, not yet "
                     "released", stats["in_flight"])
        yield _gauge("dead_letters_waiting", "Dead letters waiting for `hailwhale "
                     "dead-letters` (retry or drop)", stats["dead_letters"])
        beat = stats["last_flusher_beat_age_seconds"]
        yield _gauge("flusher_heartbeat_age_seconds", "Seconds since a flusher last said it "
                     "was alive (+Inf: never)", math.inf if beat is None else beat)
        if stats.get("statsd"):
            yield from _statsd(stats["statsd"])


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"hailwhale_{name}", documentation, value=value)


def _statsd(lines: Mapping) -> Iterator[Metric]:
    """`received`, `accepted` and `refused_by_reason` lines, as hail/statsd_counts.py counts
    them."""
    yield CounterMetricFamily("hailwhale_statsd_lines_received", "StatsD lines received",
                              value=lines["received"])
    yield CounterMetricFamily("hailwhale_statsd_lines_accepted", "StatsD lines buffered as "
                              "events", value=lines["accepted"])
    refused = CounterMetricFamily("hailwhale_statsd_lines_refused", "StatsD lines dropped, "
                                  "by reason", labels=["reason"])
    for reason, count in sorted(lines["refused_by_reason"].items()):
        refused.add_metric([reason], count)
    yield refused


def scrape(collector: BufferFigures | None = None) -> CollectorRegistry:
    """The figures of every process (or of this one) and, if given, of the buffer."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        MultiProcessCollector(registry, directory)
    else:
        registry.register(REGISTRY)
    if collector is not None:
        registry.register(collector)
    return registry


def add_metrics(app: Bottle, clock: Callable[[], float],
                buffer_health: Health | None = None) -> None:
    """Record `app`'s requests and events, and serve `/metrics`; call it before
    add_error_handling (whale/web.py), so that its figures see the errors mapped.

    `/metrics` takes the read key: its counts of events are the overall totals the
    read key guards elsewhere. Prometheus sends it as `Authorization: Bearer <key>`.
    """
    install_telemetry(app)
    buffer = BufferFigures(buffer_health, clock) if buffer_health else None

    @app.get("/metrics", access="read")
    def metrics() -> HTTPResponse:
        check_params(request.query.decode().allitems(), ())
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return HTTPResponse(encode(scrape(buffer)), 200, headers={
            "Content-Type": content_type, "Cache-Control": "no-store"})


def metrics_openapi() -> dict:
    """The OpenAPI path item of `/metrics` (whale/openapi.py lists it on both tiers)."""
    return {"get": {
        "summary": "HailWhale's own figures for Prometheus (no pk, dimension or metric names)",
        "parameters": [param("_", "Ignored: a cache-buster"),
                       param("key", "The access key, when the server has one (else ignored)")],
        "responses": {"200": ok("The Prometheus text format (OpenMetrics if the Accept "
                                "header asks for it)", "text/plain"),
                      "400": BAD},
    }}


@contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A directory in PROMETHEUS_MULTIPROC_DIR, inherited by the children started inside.

    Each child that records figures (the server's workers, the flusher) writes them
    there, and `/metrics` adds them up. The user's own directory if set (made
    if missing, never emptied); else a fresh one, removed on the way out.
    """
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        os.makedirs(given, exist_ok=True)
        yield given
        return
    directory = tempfile.mkdtemp(prefix="hailwhale-metrics-")
    os.environ[MULTIPROC_DIR] = directory
    try:
        yield directory
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def process_ended(pid: int) -> None:
    """Forget the live gauges of a process that exited (the server's master calls it
    for a worker)."""
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        mark_process_dead(pid, directory)
