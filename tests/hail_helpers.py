"""Helpers for the Hail tests: random events, a raw dump of a store, a flusher to kill.

`python -m tests.hail_helpers BUFFER_URL STORE_URL STEP NTH BATCH_SIZE NOW` runs a
flusher that SIGKILLs itself the NTH time it reaches STEP (claim, apply, release).
"""

from __future__ import annotations

import os
import random
import signal
import sys

import redis

from hail.buffer import Buffer
from hail.flusher import Flusher
from hailwhale.config import Limits
from hailwhale.events import Event, parse_event
from hailwhale.keys import KeySpace
from hailwhale.periods import DEFAULT_PERIODS, Periods
from whale.store import Store

PERIODS = Periods.parse(DEFAULT_PERIODS)
BUFFER_KEYS = KeySpace("buf")
_COUNTRIES = {"US": ["CA", "NY", "TX"], "FR": ["IDF", "PACA"], "JP": ["13"]}


def random_events(rng: random.Random, n: int, now: float) -> list[Event]:
    """`n` valid events with nested dimensions, dyadic amounts (exact sums in any order)."""
    events = []
    for _ in range(n):
        country = rng.choice(list(_COUNTRIES))
        dimensions = rng.choice([
            {"geo": {country: rng.choice(_COUNTRIES[country])}},
            {"geo": {country: rng.choice(_COUNTRIES[country])}, "product": f"p{rng.randint(1, 4)}"},
            ["site", f"page{rng.randint(1, 3)}"],
            "_",
        ])
        metrics: dict[str, object] = {"dollars": rng.randint(-800, 800) / 8, "clicks": 1}
        if rng.random() < 0.3:
            metrics["visitors"] = {"unique": f"user{rng.randint(1, 20)}"}
        if rng.random() < 0.1:
            metrics["hits"] = rng.randint(1, 4)
        params = {"dimensions": dimensions, "metrics": metrics,
                  "at": now - rng.choice([0, rng.uniform(0, 7200), rng.uniform(0, 86400 * 3)])}
        if rng.random() < 0.2:
            params["pk"] = rng.choice(["shop", ["shop", "eu"]])
        events.append(parse_event(params, periods=PERIODS, limits=Limits(), now=now,
                                  encoded=False))
    return events


def dump(client: redis.Redis, prefix: str) -> dict[str, object]:
    """Every key under `prefix` but markers, prefix cut off: (type, value, has an expiry)."""
    keys = [k for k in client.scan_iter(match=f"{prefix}:*", count=1000)
            if not k.startswith(f"{prefix}:applied:".encode())]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    kinds = [kind.decode() for kind in pipe.execute()]
    for key, kind in zip(keys, kinds):
        if kind == "hash":
            pipe.hgetall(key)
        elif kind == "zset":
            pipe.zrange(key, 0, -1, withscores=True)
        else:  # a HyperLogLog
            pipe.pfcount(key)
        pipe.ttl(key)
    replies = iter(pipe.execute())
    out: dict[str, object] = {}
    for key, kind in zip(keys, kinds):
        value = next(replies)
        if kind == "hash":
            value = {field.decode(): _number(v) for field, v in value.items()}
        out[key.decode()[len(prefix):]] = (kind, value, next(replies) > 0)
    return out


def _number(raw: bytes) -> object:
    try:
        return float(raw)
    except ValueError:
        return raw.decode()


def make_store(client: redis.Redis, prefix: str, now: float) -> Store:
    return Store(client, PERIODS, KeySpace(prefix), clock=lambda: now)


def buffer_and_flush(buffer_client: redis.Redis, store_client: redis.Redis,
                     events: list[Event], now: float, rng: random.Random) -> Buffer:
    """Push `events` in requests of 7, then flush them all with a random batch size."""
    buffer = Buffer(buffer_client, BUFFER_KEYS)
    for start in range(0, len(events), 7):
        buffer.push(events[start:start + 7], now)
    flusher = Flusher(buffer, make_store(store_client, "buffered", now),
                      batch_size=rng.choice([1, 50, 5000]))
    assert flusher.flush_all() == len(events)
    assert buffer.stats(now)["depth"] == buffer.stats(now)["in_flight"] == 0
    return buffer


def _main(buffer_url: str, store_url: str, step: str, nth: str, size: str, now: str) -> None:
    seen = []

    def on_step(name: str, batch_id: str) -> None:
        if name == step:
            seen.append(batch_id)
            if len(seen) == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)

    buffer = Buffer(redis.Redis.from_url(buffer_url), BUFFER_KEYS)
    store = make_store(redis.Redis.from_url(store_url), "buffered", float(now))
    Flusher(buffer, store, batch_size=int(size), on_step=on_step).flush_all()
    sys.exit(3)  # not killed: the parent sees it


if __name__ == "__main__":
    _main(*sys.argv[1:])
