"""The composition root: clients, Store, Buffer, Flusher, the apps, StatsD, from a Config.

Only this module (and the CLI, through it) turns URLs into Redis clients and wires
the tiers together; the libraries below take what they need as arguments.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from bottle import Bottle
from redis.backoff import NoBackoff
from redis.retry import Retry

from hail.app import make_hail_app
from hail.buffer import Buffer
from hail.flusher import Flusher
from hail.statsd import StatsdListener
from hail.statsd_lines import LineReader
from hailwhale.config import Config
from hailwhale.keys import KeySpace
from whale.app import Buffering, make_app
from whale.connect import client
from whale.store import Store


def store_for(config: Config, redis_url: str) -> Store:
    """The counting store at `redis_url`, with the configured periods, prefix and limits."""
    limits = config.limits
    return Store(client(redis_url), config.periods, KeySpace(config.key_prefix),
                 children_limit=limits.children, pks_limit=limits.pks,
                 metrics_limit=limits.metric_names)


def buffer_for(config: Config, buffer_url: str, **options: object) -> Buffer:
    """The Hail buffer at `buffer_url` (`options` for its Redis client)."""
    return Buffer(client(buffer_url, **options), KeySpace(config.key_prefix), config.buffer_max,
                  max_bytes=config.buffer_max_bytes, batch_bytes=config.flush_batch_bytes)


def flusher_for(config: Config, store: Store, buffer: Buffer) -> Flusher:
    """A flusher from `buffer` into `store`, as configured."""
    return Flusher(buffer, store, batch_size=config.flush_batch,
                   idempotency_window=config.idempotency_window)


def buffering(buffer: Buffer, flusher: Flusher) -> Buffering:
    """What Whale's `/count`, `/flush_hail` and `/health` need of a Hail buffer."""
    return Buffering(push=buffer.push, flush=flusher.flush_all, health=buffer.health)


def whale_app(config: Config, redis_url: str, buffer_url: str | None = None) -> Bottle:
    """Whale on the store at `redis_url`; `/count` buffers in `buffer_url` if given."""
    store = store_for(config, redis_url)
    if buffer_url is None:
        return make_app(store, config)
    buffer = buffer_for(config, buffer_url)
    return make_app(store, config, buffering(buffer, flusher_for(config, store, buffer)))


def statsd_listener(config: Config, buffer_url: str,
                    sockets: Sequence[socket.socket]) -> StatsdListener:
    """A StatsD listener on `sockets` (UDP, TCP) buffering into `buffer_url`."""
    # One quick retry, not redis-py's ten over 5 s: while the listener waits, datagrams
    # overflow its socket, lost uncounted; refused at once, they are counted.
    buffer = buffer_for(config, buffer_url, retry=Retry(NoBackoff(), 1))
    return StatsdListener(buffer, LineReader(config.periods, config.limits), sockets)


def hail_app(config: Config, buffer_url: str) -> Bottle:
    """Hail collecting into the buffer at `buffer_url`."""
    return make_hail_app(buffer_for(config, buffer_url), config)
