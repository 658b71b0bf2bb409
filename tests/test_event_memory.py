"""What ONE accepted event can cost in Redis, at the default limits, measured.

The worst case fills every bound at once: a pk 8 names deep (8 pk prefixes), 64
dimension prefixes, 32 metrics (plus the automatic `hits`), all of them unique
counts with ids of 200 characters, and 4 KiB of names spent where keys repeat them
most, in the characters that take the most room in a key (4 bytes of UTF-8 each,
12 once percent-encoded).

Series per event = pk prefixes x (dimension prefixes + 1) x intervals x metrics
= 8 x 65 x 3 x 33 = 51,480 keys, and every one of them spells its whole pk path and
its whole dimension path. A name early in a path is repeated in every key below
it: the first pk name is in all 51,480 keys, the top dimension name in 50,688. So
4 KiB of names becomes about 11 KiB of key name per series: ~580 MiB in Redis,
and tens of seconds of Redis time to write (README, Limits).
"""

from __future__ import annotations

import json
import string
import time
from urllib.parse import quote

import pytest

from hailwhale.config import Config, Limits
from tests.hail_helpers import make_store
from tests.test_access import call
from whale.app import make_app

WIDE = "\U0001F600"  # 4 bytes of UTF-8, 12 in a key
# 1 byte of UTF-8, 3 in a key (`_` alone is not a name)
NARROW = [char for char in string.punctuation if quote(char, safe="") != char]
# The documented worst case (README, Limits): measured 579 to 583 MiB (used_memory) with
# Redis 6.2; this bound leaves room for allocator differences, not for growth.
WORST_CASE_BYTES = 640 * 1024 * 1024


def worst_event(limits: Limits = Limits()) -> dict:
    """One event that passes every default limit and costs Redis the most."""
    metrics = {name: {"unique": WIDE * limits.unique_id_length}
               for name in (string.ascii_letters)[: limits.metrics]}  # 1 byte a name
    pk = [WIDE * limits.name_length] + NARROW[: limits.path_depth - 1]
    # A chain of 7 names, then 57 leaves under the last: 64 prefixes, and the top names
    # in the most prefixes. Leaves and the lower chain take 1 byte each.
    leaves = (NARROW + list(string.ascii_letters + string.digits))[: limits.prefixes - 7]
    lower = NARROW[:3]
    spent = len(metrics) + sum(len(name.encode()) for name in [*pk, *leaves, *lower])
    left, upper = limits.names_bytes - spent, []
    for _ in range(4):  # whole 4-byte characters, at most 200 a name
        upper.append(WIDE * min(limits.name_length, left // 4))
        left -= len(upper[-1].encode())
    upper[-1] += "".join(NARROW[:left])  # the last bytes, one byte each
    tree: dict = {leaf: {} for leaf in leaves}
    for name in reversed(upper + lower):
        tree = {name: tree}
    return {"pk": pk, "dimensions": tree, "metrics": metrics}


def names_bytes(event: dict) -> int:
    def walk(node: dict) -> int:
        return sum(len(name.encode()) + walk(child) for name, child in node.items())

    return (sum(len(name.encode()) for name in event["pk"]) + walk(event["dimensions"])
            + sum(len(name.encode()) for name in event["metrics"]))


@pytest.mark.timeout(600)  # ~70 s: writing 580 MiB of keys is the finding
def test_one_worst_case_event_costs_redis_under_the_documented_figure(redis_client):
    event = worst_event()
    assert names_bytes(event) == Limits().names_bytes
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
    redis_client.flushall()  # 580 MiB: give it back now, not at the next test


def _memory_usage(client) -> list[int]:
    sizes, keys = [], list(client.scan_iter(count=1000))
    for start in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start:start + 1000]:
            pipe.memory_usage(key, samples=0)
        sizes.extend(pipe.execute())
    return sizes
