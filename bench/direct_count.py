"""Direct-count throughput: `/count_now` under wrk, and `HailWhale.count` in one process.

Starts its own redis-server and `hailwhale serve` on loopback, runs each
measurement for a bounded time, prints one JSON object.

    .venv/bin/python bench/direct_count.py [--seconds 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hailwhale import HailWhale  # noqa: E402
from hailwhale.embedded import RedisServer  # noqa: E402
from tests.servers import Served  # noqa: E402

EVENT = {"dimensions": json.dumps({"sales": "p42"}), "metrics": json.dumps({"dollars": 500})}


def wrk(url: str, seconds: int, connections: int) -> dict:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests_per_s": rate, "p50_ms": float(p50.group(1)) * scale,
            "non_2xx": int(errors.group(1)) if errors else 0}


def python_api(url: str, seconds: float) -> dict:
    hw = HailWhale(url)
    sent, deadline = 0, time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        for _ in range(100):
            hw.count(dimensions={"sales": "p42"}, metrics={"dollars": 500})
        sent += 100
    elapsed = time.monotonic() - started
    hw.close()
    return {"events": sent, "events_per_s": round(sent / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisServer(tmp, persist=False) as redis:
        with Served("--redis-url", redis.url) as whale:
            url = f"{whale.url}/count_now?{urllib.parse.urlencode(EVENT)}"
            http = wrk(url, args.seconds, args.connections)
        report = {
            "cores": os.cpu_count(),
            "count_now_http": http,
            "python_api": python_api(redis.url, args.seconds),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
