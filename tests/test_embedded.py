"""The embedded redis-server: start, stop, persistence, adoption and ownership, dying with its
parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from hailwhale.embedded import RedisServer
from hailwhale.exceptions import ConfigError, HailWhaleError
from hailwhale.processes import free_port

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_start_answers_and_stop_ends_the_process(tmp_path):
    server = RedisServer(tmp_path, persist=False).start()
    pid = server.pid
    assert server.url == f"unix://{tmp_path.resolve() / 'redis.sock'}"
    assert redis.Redis.from_url(server.url).ping()
    server.stop()
    assert server.pid is None
    assert not alive(pid)
    assert not (tmp_path / "redis.sock").exists()
    server.stop()  # idempotent


def test_tcp_port_is_free_and_not_6379(tmp_path):
    with RedisServer(tmp_path, unix_socket=False, persist=False) as server:
        assert server.port not in (0, 6379)
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert redis.Redis.from_url(server.url).ping()


def test_port_6379_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        RedisServer(tmp_path, port=6379, unix_socket=False)


def test_free_port_never_6379():
    ports = {free_port() for _ in range(50)}
    assert 6379 not in ports
    assert all(1024 <= port < 65536 for port in ports)


def test_data_persists_across_stop_and_start(tmp_path):
    with RedisServer(tmp_path) as server:
        redis.Redis.from_url(server.url).set("visits", "42")
    assert (tmp_path / "hailwhale.rdb").exists()
    with RedisServer(tmp_path) as server:
        assert redis.Redis.from_url(server.url).get("visits") == b"42"


def test_volatile_server_forgets(tmp_path):
    with RedisServer(tmp_path, persist=False) as server:
        redis.Redis.from_url(server.url).set("visits", "42")
    with RedisServer(tmp_path, persist=False) as server:
        assert redis.Redis.from_url(server.url).get("visits") is None


def test_a_failed_start_raises_with_the_log_tail(tmp_path):
    server = RedisServer(tmp_path, extra_config={"no-such-directive": "1"})
    with pytest.raises(HailWhaleError, match="no-such-directive"):
        server.start()
    assert server.pid is None


def test_adopts_a_server_already_on_the_socket_and_leaves_it_running(tmp_path):
    first = RedisServer(tmp_path).start()
    redis.Redis.from_url(first.url).set("k", "v")
    second = RedisServer(tmp_path).start()
    assert second.adopted and not second.owned and first.owned
    assert second.pid == first.pid
    assert redis.Redis.from_url(second.url).get("k") == b"v"
    second.stop()  # only forgets it: it is the first one's
    assert second.pid is None
    assert alive(first.pid) and first._ping()
    pid = first.pid
    first.stop()
    assert wait_gone(pid)


BORROWER = """
import sys
from hailwhale.embedded import RedisServer
server = RedisServer(sys.argv[1]).start()
assert server.adopted
if sys.argv[2] == "stop":
    server.stop()
elif sys.argv[2] == "kill":
    server.kill()
# else: exit, and let atexit do what it does
"""


@pytest.mark.parametrize("how", ["stop", "kill", "exit"])
def test_a_process_that_adopted_a_server_leaves_it_running(tmp_path, how):
    with RedisServer(tmp_path, persist=False) as server:
        done = subprocess.run([sys.executable, "-c", BORROWER, str(tmp_path), how], env=ENV,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert alive(server.pid) and server._ping()


SPAWNER = """
import sys
from hailwhale.embedded import RedisServer
server = RedisServer(sys.argv[1], persist=False).start()
print(server.pid, server.owned, flush=True)
sys.stdin.read()  # hold it until told
"""


def test_processes_starting_at_once_on_one_data_dir_share_one_server(tmp_path):
    racers = [subprocess.Popen([sys.executable, "-c", SPAWNER, str(tmp_path)], env=ENV,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    try:
        said = [racer.stdout.readline().split() for racer in racers]
        assert all(len(line) == 2 for line in said), said
        assert len({pid for pid, _ in said}) == 1, said
        assert sorted(owned for _, owned in said) == ["False"] * 3 + ["True"], said
    finally:
        for racer in racers:
            racer.stdin.close()
            racer.wait(timeout=30)
    assert wait_gone(int(said[0][0]))  # its owner stopped it as it exited


def test_an_owner_restarts_its_dead_server_and_others_wait_for_it(tmp_path):
    owner = RedisServer(tmp_path, extra_config={"appendfsync": "always"}).start()
    redis.Redis.from_url(owner.url).set("kept", "1")
    dead = owner.pid
    os.kill(dead, signal.SIGKILL)
    assert wait_gone(dead)
    deadline = time.monotonic() + 5
    while owner.running():  # wait(2) may learn of the death a moment after /proc does
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # The owner still holds the data directory: another process may not spawn there.
    with pytest.raises(HailWhaleError, match="holds"):
        RedisServer(tmp_path).start(timeout=0.3)
    owner.start()
    assert owner.owned and owner.pid != dead
    assert redis.Redis.from_url(owner.url).get("kept") == b"1"
    borrower = RedisServer(tmp_path).start()
    assert borrower.adopted and borrower.pid == owner.pid
    owner.stop()
    # Released: the next process to come along may start (and own) one.
    with RedisServer(tmp_path) as successor:
        assert successor.owned


def test_long_data_dir_puts_the_socket_elsewhere_and_still_adopts(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with RedisServer(deep, persist=False) as server:
        assert len(server.url) - len("unix://") <= 100
        assert redis.Redis.from_url(server.url).ping()
        again = RedisServer(deep, persist=False).start()
        assert again.adopted and again.url == server.url
        again.stop()


def test_a_forked_worker_does_not_stop_its_parents_server(tmp_path):
    with RedisServer(tmp_path, persist=False) as server:
        child = os.fork()
        if child == 0:  # what a gunicorn worker's exit (atexit) does
            server.stop()
            os._exit(0)
        os.waitpid(child, 0)
        assert redis.Redis.from_url(server.url).ping()


CHILD = """
import sys
import redis
from hailwhale.embedded import RedisServer
server = RedisServer(sys.argv[1]).start()
redis.Redis.from_url(server.url).set("survivor", "saved-on-sigterm")
print(server.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_server_dies_and_saves_when_its_parent_is_sigkilled(tmp_path):
    redis_pid = None
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], env=ENV,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"child said {line!r}"
        redis_pid = int(line)
        assert alive(redis_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone(redis_pid), "redis-server outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        if redis_pid and alive(redis_pid):
            os.kill(redis_pid, signal.SIGKILL)
    assert b"survivor" in (tmp_path / "hailwhale.rdb").read_bytes()
    with RedisServer(tmp_path) as server:
        assert not server.adopted
        assert redis.Redis.from_url(server.url).get("survivor") == b"saved-on-sigterm"
