"""`hailwhale hail` and `hailwhale flush` as processes: buffer in one Redis, count in another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse

from hailwhale import HailWhale
from hailwhale.embedded import RedisServer
from tests.servers import HAILWHALE, Served, command_env, get, wait_for


def test_hail_node_and_flusher_processes_count_every_event(tmp_path, redis_url):
    with RedisServer(tmp_path / "buffer", persist=False) as buffer:
        with Served("--redis-url", redis_url, "--hail-url", buffer.url, "--no-flusher",
                    command="hail") as hail:
            for n in range(10):
                query = urllib.parse.urlencode({"dimensions": "node", "metrics": f'{{"n": {n}}}'})
                assert get(f"{hail.url}/count?{query}")[:3:2] == (200, b"OK")
            batch = json.dumps([{"dimensions": "node", "metrics": {"n": 100}}] * 5).encode()
            assert get(f"{hail.url}/count", batch, {"Content-Type": "application/json"})[0] == 200
            assert json.loads(get(f"{hail.url}/health")[2])["depth"] == 15

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
                # The batch is applied to the store before its flush is recorded.
                health = wait_for(lambda: (h := json.loads(get(f"{hail.url}/health")[2]))
                                  ["last_flush"] and h, what="the flush to be recorded")
                assert health["depth"] == 0 and health["last_flush"]["events"] > 0
            finally:
                flusher.send_signal(signal.SIGTERM)
                output = flusher.communicate(timeout=20)[0]
            assert flusher.returncode == 0, output
            assert "flusher: stopped" in output


def test_hail_on_its_embedded_redis_restarts_a_killed_flusher(tmp_path):
    with Served("--flush-interval", "0.1", command="hail", cwd=tmp_path) as hail:
        flusher = hail.child("hailwhale.cli flush")
        os.kill(flusher, signal.SIGKILL)
        wait_for(lambda: hail.child("hailwhale.cli flush") not in (None, flusher),
                 what="a new flusher")
        assert get(f"{hail.url}/count?dimensions=hailed")[0] == 200
        with HailWhale(data_dir=str(tmp_path / "data")) as hw:  # borrows Hail's Redis
            assert hw.server.adopted
            wait_for(lambda: hw.totals("hailed", period="1d:1y")["1d:1y"]["hailed"]["hits"],
                     what="the event to be flushed")
        assert hail.child("redis-server")  # still running: the borrower left it alone
        assert get(f"{hail.url}/health")[0] == 200
    assert "restarted the flusher" in hail.printed
