"""Build Hail's WSGI app and flushers from a configuration (clients from URLs)."""

from __future__ import annotations

from bottle import Bottle

from hail.app import make_hail_app
from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale.config import Config
from hailwhale.connect import client
from hailwhale.keys import KeySpace
from whale.wsgi import store_for


def buffer_for(config: Config, buffer_url: str) -> Buffer:
    """The Hail buffer at `buffer_url`."""
    return Buffer(client(buffer_url), KeySpace(config.key_prefix), config.buffer_max,
                  max_bytes=config.buffer_max_bytes, batch_bytes=config.flush_batch_bytes)


def flusher_for(config: Config, store_url: str, buffer_url: str) -> Flusher:
    """A flusher from the buffer at `buffer_url` into the store at `store_url`."""
    return Flusher(buffer_for(config, buffer_url), store_for(config, store_url),
                   batch_size=config.flush_batch, idempotency_window=config.idempotency_window)


def hail_app(config: Config, buffer_url: str) -> Bottle:
    """Hail collecting into the buffer at `buffer_url`."""
    return make_hail_app(buffer_for(config, buffer_url), config)
