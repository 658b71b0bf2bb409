"""Build Whale's WSGI app from a configuration: what each server worker runs."""

from __future__ import annotations

from bottle import Bottle

from hail.flusher import Flusher
from hailwhale.config import Config
from hailwhale.connect import client
from hailwhale.keys import KeySpace
from whale.app import make_app
from whale.store import Store


def store_for(config: Config, redis_url: str) -> Store:
    """The counting store at `redis_url`, with the configured periods, prefix and limits."""
    limits = config.limits
    return Store(client(redis_url), config.periods, KeySpace(config.key_prefix),
                 children_limit=limits.children, pks_limit=limits.pks,
                 metrics_limit=limits.metric_names)


def whale_app(config: Config, redis_url: str, buffer_url: str | None = None) -> Bottle:
    """Whale on the store at `redis_url`; `/count` buffers in `buffer_url` if given."""
    from hail.wsgi import buffer_for

    store = store_for(config, redis_url)
    if buffer_url is None:
        return make_app(store, config)
    buffer = buffer_for(config, buffer_url)
    flusher = Flusher(buffer, store, batch_size=config.flush_batch,
                      idempotency_window=config.idempotency_window)
    return make_app(store, config, buffer=buffer, flusher=flusher)
