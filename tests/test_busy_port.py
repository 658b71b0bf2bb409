"""`serve` and `hail` on a busy port: one error that names it and how to pick another."""

from __future__ import annotations

import socket
import subprocess
import urllib.request

import pytest

from hailwhale.processes import free_port
from tests.servers import HAILWHALE, Served, command_env


def run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*HAILWHALE, *args, "--workers", "1"], cwd=cwd, env=command_env(),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("command", "how"), [("serve", "--port or HAILWHALE_PORT"),
                                              ("hail", "--port or HAILWHALE_HAIL_PORT")])
def test_a_taken_http_port_ends_the_command_saying_which_and_how(tmp_path, command, how):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(command, "--port", str(port), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"hailwhale: the HTTP port {port} on 127.0.0.1 is taken (another program, or another "
        f"hailwhale, listens there); pick another with {how}"]
    assert "Connection in use" not in done.stderr and not done.stdout  # no banner, no retries
    assert not (tmp_path / "data").exists()  # nothing started: no embedded Redis


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_a_taken_statsd_port_ends_the_command_saying_which_and_how(tmp_path, kind):
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(free_port()), "--statsd-port", str(port),
                   cwd=tmp_path)
    assert done.returncode == 1
    assert f"the StatsD (UDP and TCP) port {port} on 127.0.0.1 is taken" in done.stderr
    assert "pick another with --statsd-port or HAILWHALE_STATSD_PORT" in done.stderr
    assert not done.stdout


def test_statsd_without_a_buffer_is_refused(tmp_path):
    done = run("serve", "--no-buffer", "--statsd-port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 1
    assert "--statsd-port buffers its lines for a flusher; drop --no-buffer" in done.stderr


def test_the_banner_shows_once_the_server_answers(tmp_path, redis_url):
    port = free_port()
    process = subprocess.Popen([*HAILWHALE, "serve", "--port", str(port), "--workers", "1",
                                "--redis-url", redis_url, "--no-buffer"], cwd=tmp_path,
                               env=command_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        banner = process.stdout.readline()  # blocks until the supervisor prints it
        assert f"dashboard at http://localhost:{port}/" in banner
        # No wait: whoever reads the banner can use the dashboard at once.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_second_server_on_the_same_port_is_refused_and_the_first_serves_on(tmp_path,
                                                                              redis_url):
    with Served("--redis-url", redis_url, "--no-buffer", cwd=tmp_path) as first:
        done = run("serve", "--port", str(first.port), "--redis-url", redis_url,
                   "--no-buffer", cwd=tmp_path)
        assert done.returncode == 1 and f"HTTP port {first.port}" in done.stderr
        with urllib.request.urlopen(f"{first.url}/health", timeout=10) as answer:
            assert answer.status == 200
