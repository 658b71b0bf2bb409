"""Build Whale's WSGI app from a configuration: what each server worker runs."""

from __future__ import annotations

from bottle import Bottle
from redis import Redis

from hailwhale.config import Config
from hailwhale.keys import KeySpace
from whale.app import make_app
from whale.store import Store


def whale_app(config: Config, redis_url: str) -> Bottle:
    """Whale on the store at `redis_url`."""
    redis = Redis.from_url(redis_url)
    store = Store(redis, config.periods, KeySpace(config.key_prefix))
    return make_app(store, config)
