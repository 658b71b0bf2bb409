"""What ONE accepted event can cost in Redis, at the default limits, measured.

The worst case fills every bound at once: a pk 8 names deep (8 pk prefixes), 64
dimension prefixes, 32 metrics (plus the automatic `hits`), all of them unique
counts with ids of 200 characters, every name as long as a key spells it.

Series per event = pk prefixes x (dimension prefixes + 1) x intervals x metrics
= 8 x 65 x 3 x 33 = 51,480 keys, and each spells its whole pk path and dimension
path. Spelling every segment in full made 4 KiB of names about 11 KiB of key per
series (580 MiB for one event); a segment longer than 32 bytes once encoded is now
spelled by a 17-byte digest (hailwhale/keys.py), which bounds a key, and the event,
to what is measured here: 34 MiB (README, Limits).
"""

from __future__ import annotations

import json
import string
import time
from urllib.parse import quote

from hailwhale.config import Config, Limits
from tests.hail_helpers import make_store
from tests.test_access import call
from whale.app import make_app

NARROW = [char for char in string.punctuation if quote(char, safe="") != char]
# The documented worst case (README, Limits), measured with Redis 6.2; this bound leaves
# room for allocator differences, not for growth.
WORST_CASE_BYTES = 40 * 1024 * 1024  # measured: 34 MiB


def _longest_spelled(n: int) -> str:
    """The n-th of distinct names that take the most room a key spells without a digest:
    32 bytes once percent-encoded (10 punctuation marks at 3 bytes each, and 2 letters)."""
    letters = string.ascii_letters
    return "".join(NARROW[(n + i) % len(NARROW)] for i in range(10)) + letters[n // 52 % 52] \
        + letters[n % 52]


def worst_event(limits: Limits = Limits()) -> dict:
    """One event that passes every default limit and costs Redis the most.

    Every pk and dimension name as long as a key spells it (32 bytes; longer ones are
    spelled by a 17-byte digest), the metric names as long as the 4 KiB of names allow
    (each key spells one), 32 unique metrics with ids of 200 characters.
    """
    pk = [_longest_spelled(n) for n in range(limits.path_depth)]
    chain = [_longest_spelled(100 + n) for n in range(7)]
    leaves = [_longest_spelled(200 + n) for n in range(limits.prefixes - 7)]
    spent = sum(len(name.encode()) for name in [*pk, *chain, *leaves])
    length = min(limits.name_length, (limits.names_bytes - spent) // limits.metrics)
    metrics = {f"{letter}{'m' * (length - 1)}": {"unique": "\U0001F600" * 200}
               for letter in string.ascii_letters[: limits.metrics]}
    tree: dict = {leaf: {} for leaf in leaves}
    for name in reversed(chain):
        tree = {name: tree}
    return {"pk": pk, "dimensions": tree, "metrics": metrics}


def names_bytes(event: dict) -> int:
    def walk(node: dict) -> int:
        return sum(len(name.encode()) + walk(child) for name, child in node.items())

    return (sum(len(name.encode()) for name in event["pk"]) + walk(event["dimensions"])
            + sum(len(name.encode()) for name in event["metrics"]))


def test_one_worst_case_event_costs_redis_under_the_documented_figure(redis_client):
    event = worst_event()
    assert names_bytes(event) <= Limits().names_bytes
    now = time.time()
    store = make_store(redis_client, "hw", now)
    app = make_app(store, Config(), clock=lambda: now)
    redis_client.execute_command("MEMORY", "PURGE")  # jemalloc: start from a clean heap
    before = redis_client.info("memory")["used_memory"]
    status, _, body = call(app, "/count_now", method="POST", headers={
        "Content-Type": "application/json"}, body=json.dumps(event, ensure_ascii=False).encode())
    assert status == 200, body
    used = redis_client.info("memory")["used_memory"] - before
    keys = redis_client.dbsize()
    # 51,480 series (8 pk prefixes x 65 paths x 3 intervals x 33 metrics), plus 64
    # children indexes (8 pks x 8 parents), 8 metric registries and the pk index
    assert keys == 8 * 65 * 3 * 33 + 64 + 8 + 1
    per_key = sum(_memory_usage(redis_client)) / keys
    print(f"\none worst-case event: {keys} keys, used_memory +{used / 2**20:.0f} MiB, "
          f"MEMORY USAGE {per_key:.0f} bytes a key")
    assert used < WORST_CASE_BYTES
    redis_client.flushall()  # give it back now, not at the next test


def _memory_usage(client) -> list[int]:
    sizes, keys = [], list(client.scan_iter(count=1000))
    for start in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start:start + 1000]:
            pipe.memory_usage(key, samples=0)
        sizes.extend(pipe.execute())
    return sizes
