"""The `hailwhale` command: count, query (tables, JSON, time ranges, over HTTP), serve on
the embedded Redis, progress of long commands."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hail.buffer import Buffer
from hailwhale import HailWhale
from hailwhale.cli import main
from hailwhale.keys import KeySpace
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
                     "--period", "15s:3h", "--json", HAILWHALE_REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr
    points = json.loads(done.stdout)
    # summed over the window: the clock may cross a 15 s boundary between the two commands
    assert sum(v for _, v in points["sales"]["dollars"]) == 500
    assert sum(v for _, v in points['["sales","p42"]']["dollars"]) == 500
    done = hailwhale("query", "totals", "-m", "dollars/hits", "--json", "--redis-url", redis_url)
    assert json.loads(done.stdout)["1d:1y"]["_"]["dollars/hits"] == 500


def test_query_prints_tables_for_people(redis_client, redis_url, monkeypatch, capsys):
    hw = HailWhale(redis=redis_client)
    for dollars in (17099.11, 0.1):
        hw.count(dimensions=["sales", "p42"], metrics={"dollars": dollars})
    hw.count(dimensions=["sales", "p7"], metrics={"dollars": 3})

    def table(*args: str) -> list[str]:
        assert main(["query", *args, "--redis-url", redis_url]) == 0
        return capsys.readouterr().out.splitlines()

    assert table("totals", "-d", "sales", "-m", "dollars", "--depth", "1") == [
        "dimension        metric     15s:3h     1h:7d     1d:1y",
        "---------------  -------  --------  --------  --------",
        "sales            dollars  17102.21  17102.21  17102.21",
        '["sales","p42"]  dollars  17099.21  17099.21  17099.21',
    ]  # p7 is under the 10% threshold
    assert table("dimensions", "-d", "sales", "-m", '["dollars","hits"]')[3:] == [
        'p42   ["sales","p42"]  17099.21     2',
        'p7    ["sales","p7"]          3     1']
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    lines = table("plotpoints", "-d", "sales", "-m", "dollars")
    monkeypatch.undo()
    time.tzset()
    assert lines[0].split() == ["time", "(JST)", "sales", "dollars"] and len(lines) == 720 + 6
    last_bucket = datetime.strptime(lines[-5][:19], "%Y-%m-%d %H:%M:%S")
    tokyo_now = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=9)
    assert abs((tokyo_now - last_bucket).total_seconds()) < 60
    name, metric, low, high, last, graph = lines[-1].split()
    assert (name, metric, low, high) == ("sales", "dollars", "0", "17102.21")
    assert graph == "▁" * 59 + "█"  # 12 buckets a bar: all counted in the last one


def test_query_takes_a_time_range(redis_client, redis_url, capsys):
    hw = HailWhale(redis=redis_client)
    hw.count(dimensions="sales", metrics={"dollars": 7}, at=time.time() - 90 * 60)
    hw.count(dimensions="sales", metrics={"dollars": 5})

    def totals(*times: str) -> dict:
        assert main(["query", "totals", "-d", "sales", "-m", "dollars", *times, "--json",
                     "--redis-url", redis_url]) == 0
        return json.loads(capsys.readouterr().out)

    # the finest period that keeps the start answers, alone
    assert totals("--from", "-1h") == {"15s:3h": {"sales": {"dollars": 5}}}
    assert totals("--from", "-2h", "--to", "-1h") == {"15s:3h": {"sales": {"dollars": 7}}}
    assert totals("--from", "-2d") == {"1h:7d": {"sales": {"dollars": 12}}}
    done = hailwhale("query", "plotpoints", "-d", "sales", "--from", "-5y",
                     "--redis-url", redis_url)
    assert done.returncode == 2 and done.stderr.startswith("hailwhale: from: ")
    assert "older than every period keeps" in done.stderr and len(done.stderr.splitlines()) == 1


def test_count_and_query_talk_to_a_server_over_http(redis_url, monkeypatch, capsys):
    keys = {"HAILWHALE_WRITE_KEY": "w-secret", "HAILWHALE_READ_KEY": "r-secret"}
    with Served("--redis-url", redis_url, "--no-buffer", **keys) as served:
        done = hailwhale("count", "--url", served.url, "-d", '{"shop": "p1"}', "-m",
                         '{"dollars": 5}', HAILWHALE_WRITE_KEY="w-secret")
        assert (done.returncode, done.stdout) == (0, "OK\n"), done.stderr
        done = hailwhale("count", "-m", "x", "--url", served.url)  # no write key
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
        assert done.stderr.startswith("hailwhale: ") and "401" in done.stderr

        def command(*args: str) -> tuple[int, str, str]:
            code = main(list(args))
            return code, *capsys.readouterr()

        monkeypatch.setenv("HAILWHALE_URL", served.url)
        monkeypatch.setenv("HAILWHALE_WRITE_KEY", "w-secret")
        at = str(time.time() - 90 * 60)
        assert command("count", "-d", "shop", "-m", '{"dollars": 2}', "--at", at)[:2] == \
            (0, "OK\n")
        code, out, err = command("query", "totals", "-d", "shop", "-m", "dollars", "--json",
                                 "--period", "15s:3h", "--read-key", "r-secret")
        assert json.loads(out) == {"15s:3h": {"shop": {"dollars": 7}}}, err
        monkeypatch.setenv("HAILWHALE_READ_KEY", "r-secret")
        code, out, err = command("query", "totals", "-d", "shop", "-m", "dollars", "--from",
                                 "-1h", "--json")
        assert json.loads(out) == {"15s:3h": {"shop": {"dollars": 5}}}, err
        code, out, err = command("query", "dimensions", "-d", "shop")
        assert out.splitlines()[-1].split() == ["p1", '["shop","p1"]', "1"], err

        code, out, err = command("count", "-m", '{"x": "lots"}')
        assert code == 2 and err.startswith("hailwhale: metrics: ")
        monkeypatch.delenv("HAILWHALE_READ_KEY")
        code, out, err = command("query", "totals")
        assert code == 1 and err.startswith("hailwhale: ") and len(err.splitlines()) == 1
        assert "HAILWHALE_READ_KEY" in err
    code, out, err = command("query", "totals", "--url", served.url, "--redis-url", redis_url)
    assert code == 2 and err.startswith("hailwhale: url: ")


def test_a_closed_pipe_ends_the_command_quietly(redis_url):
    # 3600 rows of 4 columns: more than a pipe holds, so the reader leaves mid-way
    reading = subprocess.Popen(
        [*HAILWHALE, "query", "plotpoints", "-m", '["hits","a","b","c"]', "--periods", "1s:1h",
         "--redis-url", redis_url], env=command_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    assert reading.stdout.readline().startswith(b"time")
    reading.stdout.close()  # `| head -1`
    assert reading.wait(timeout=60) == 141
    assert reading.stderr.read() == b""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_dead_letters_retry_shows_progress_on_a_terminal_and_a_summary(
        redis_client, redis_url, monkeypatch, capsys):
    hw = HailWhale(redis=redis_client)
    buffer = Buffer(redis_client, KeySpace("hw"))
    for n in range(30):
        buffer.push([hw.event(dimensions=f"d{n}")], time.time())
        batch = buffer.claim(1, time.time())
        buffer.bury(batch.id, "planted", time.time(), 1)
    ids = [letter["id"] for letter in buffer.dead_letters()]

    assert main(["dead-letters", "drop", *ids[:10], "--redis-url", redis_url]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{one}: dropped" for one in ids[:10]]
    assert err.startswith("drop: 10 of 10 dead letters dropped in ")
    assert len(err.splitlines()) == 1  # not a terminal: the summary alone

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert main(["dead-letters", "retry", "--all", "--redis-url", redis_url]) == 0
    assert capsys.readouterr().out.count("applied, 1 events counted") == 20
    shown = screen.getvalue()
    assert shown.startswith("\rretry: 1 of 20 dead letters (5%), 1 applied\x1b[K")
    summary = shown.rsplit("\r\x1b[K", 1)[1]  # the progress line cleared, then the summary
    assert summary.startswith("retry: 20 of 20 dead letters applied, 20 events counted in ")
    assert summary.endswith(" s\n")
    assert hw.totals("d29", period="1d:1y")["1d:1y"]["d29"]["hits"] == 1


def test_a_flood_forget_shows_progress_on_a_terminal(redis_client, redis_url, monkeypatch,
                                                      capsys):
    hw = HailWhale(redis=redis_client)
    hw.store.count([hw.event(dimensions=["user", f"rnd{i}"]) for i in range(20)])
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert main(["guard", "forget", "user", "--redis-url", redis_url]) == 0
    assert "forgot 20 children of user (pk _)" in capsys.readouterr().out
    drawn, summary = screen.getvalue().split("\x1b[K\r\x1b[K")
    assert drawn.startswith("\r") and "keys scanned" in drawn
    assert summary.startswith(drawn[1:] + " in ")  # drawn once: fewer keys than a SCAN step


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
from hailwhale.server import GranianServer

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode()]

trusted = tuple(filter(None, sys.argv[2].split(",")))
GranianServer(lambda: app, "127.0.0.1", int(sys.argv[1]), 1, forwarded_allow_ips=trusted).run()
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
    # with none configured, nobody is trusted (gunicorn alone trusted 127.0.0.1).
    assert schemes == {"": "http", "127.0.0.1": "https", "10.0.0.1,10.0.0.2": "http"}
