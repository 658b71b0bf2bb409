"""`hailwhale hail` and `hailwhale flush` as processes: buffer in one Redis, count in another."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.parse

from hailwhale import HailWhale
from hailwhale.embedded import RedisServer
from tests.servers import HAILWHALE, Served, command_env, get


def test_hail_node_and_flusher_processes_count_every_event(tmp_path, redis_url):
    with RedisServer(tmp_path / "buffer", persist=False) as buffer:
        with Served("--redis-url", redis_url, "--hail-url", buffer.url, "--no-flusher",
                    command="hail") as hail:
            for n in range(10):
                query = urllib.parse.urlencode({"dimensions": "node", "metrics": f'{{"n": {n}}}'})
                assert get(f"{hail.url}/count?{query}")[:3:2] == (200, b"OK")
            batch = json.dumps([{"dimensions": "node", "metrics": {"n": 100}}] * 5).encode()
            assert get(f"{hail.url}/count", batch, {"Content-Type": "application/json"})[0] == 200
            status, _, body = get(f"{hail.url}/health")
            assert status == 200 and json.loads(body)["depth"] == 15

            flusher = subprocess.Popen(
                [*HAILWHALE, "flush", "--redis-url", redis_url, "--hail-url", buffer.url],
                env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            try:
                hw = HailWhale(redis_url)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    totals = hw.totals("node", ["n", "hits"], period="15s:3h")["15s:3h"]["node"]
                    if totals["hits"] == 15:
                        break
                    time.sleep(0.05)
                assert totals == {"n": 45 + 500, "hits": 15}
                health = json.loads(get(f"{hail.url}/health")[2])
                assert health["depth"] == 0 and health["last_flush"]["events"] > 0
            finally:
                flusher.send_signal(signal.SIGTERM)
                output = flusher.communicate(timeout=20)[0]
            assert flusher.returncode == 0, output
            assert "flusher: stopped" in output
