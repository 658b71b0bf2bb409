"""The `hailwhale` command: count, query, and serve on the embedded Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from hailwhale.processes import free_port
from tests.servers import HAILWHALE, Served, command_env, get, wait_for


def hailwhale(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HAILWHALE, *args], env=command_env(**env), capture_output=True,
                          text=True, timeout=60)


def test_count_and_query_from_a_shell(redis_url):
    done = hailwhale("count", "-d", '{"sales": "p42"}', "-m", '{"dollars": 500}',
                     "--redis-url", redis_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OK"
    done = hailwhale("query", "plotpoints", "-d", "sales", "-m", "dollars", "--depth", "1",
                     "--period", "15s:3h", HAILWHALE_REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr
    points = json.loads(done.stdout)
    # summed over the window: the clock may cross a 15 s boundary between the two commands
    assert sum(v for _, v in points["sales"]["dollars"]) == 500
    assert sum(v for _, v in points['["sales","p42"]']["dollars"]) == 500
    done = hailwhale("query", "totals", "-m", "dollars/hits", "--redis-url", redis_url)
    assert json.loads(done.stdout)["1d:1y"]["_"]["dollars/hits"] == 500


def test_bad_input_is_an_error_naming_the_parameter(redis_url):
    done = hailwhale("count", "-m", '{"dollars": "lots"}', "--redis-url", redis_url)
    assert done.returncode == 2
    assert done.stderr.startswith("hailwhale: metrics:")
    done = hailwhale("query", "totals", "--period", "9s:9h", "--redis-url", redis_url)
    assert done.returncode == 2 and "15s:3h" in done.stderr
    done = hailwhale("serve", "--periods", "15q:3h")
    assert done.returncode == 1 and "15q" in done.stderr


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "hailwhale"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.stdout.startswith("hailwhale ")


def _redis_pids(data_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(proc / "cwd") if "redis-server" in cmdline else ""
        except OSError:
            continue
        if "redis-server" in cmdline and Path(cwd) == data_dir:
            pids.append(int(proc.name))
    return pids


def test_serve_starts_the_embedded_redis_and_keeps_its_data(tmp_path):
    data = tmp_path / "data"
    with Served("--data-dir", str(data), cwd=tmp_path) as served:
        assert get(f"{served.url}/count?dimensions=kept&metrics=%7B%22n%22%3A7%7D")[0] == 200
        assert _redis_pids(data)
        printed = served.stop(signal.SIGTERM)
    assert "embedded Redis" in printed and f"http://localhost:{served.port}/" in printed
    assert not _redis_pids(data), "the embedded redis-server outlived hailwhale serve"
    assert (data / "hailwhale.rdb").exists()
    with Served(cwd=tmp_path, HAILWHALE_DATA_DIR=str(data)) as served:
        status, _, body = get(f"{served.url}/totals?dimensions=kept&metrics=n&period=1d:1y")
        assert json.loads(body)["1d:1y"]["kept"]["n"] == 7
    assert not _redis_pids(data)


SCHEME_APP = """
import sys
from gevent import monkey
monkey.patch_all()
from hailwhale.server import GeventServer

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode()]

trusted = tuple(filter(None, sys.argv[2].split(",")))
GeventServer(lambda: app, "127.0.0.1", int(sys.argv[1]), 1, forwarded_allow_ips=trusted).run()
"""


def test_forwarded_headers_are_believed_only_from_configured_proxies():
    servers = {trusted: free_port() for trusted in ("", "127.0.0.1", "10.0.0.1,10.0.0.2")}
    running = [subprocess.Popen([sys.executable, "-c", SCHEME_APP, str(port), trusted],
                                env=command_env()) for trusted, port in servers.items()]
    try:
        def scheme(port: int) -> str | None:
            try:
                answer = get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-Proto": "https"})
            except OSError:
                return None
            return answer[2].decode()

        schemes = {trusted: wait_for(lambda port=port: scheme(port), what="the server")
                   for trusted, port in servers.items()}
    finally:
        for server in running:
            server.terminate()
            server.wait(timeout=20)
    # gunicorn alone would trust 127.0.0.1; with none configured, nobody is trusted.
    assert schemes == {"": "http", "127.0.0.1": "https", "10.0.0.1,10.0.0.2": "http"}
