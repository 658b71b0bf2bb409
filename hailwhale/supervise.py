"""Run children and restart whichever dies: the main process of `serve` and `hail`.

The supervisor is plain Python (no gevent) in one thread. It starts its children
in order: the embedded Redis (unless a store URL is set), the flusher (`hailwhale
flush`), the HTTP server (the same command again with `--http-only`: granian's
master, which forks its worker processes) and, with `--statsd-port`, the StatsD
listeners (`--statsd-only`). The command binds their ports before any child starts
(hailwhale/process_cli.py: a busy port ends it at once, saying which) and passes
them down (`pass_fds`), so a restarted child serves the same socket and clients
wait in its queue meanwhile. Its banner shows once the HTTP server answers. It
restarts a child that dies after a backoff (0.1 s doubling to 5 s, back to 0.1 s
once a child has stayed up 10 s), logging each restart, and on SIGTERM or SIGINT
stops them in reverse order, Redis last. Children run in their own session, so
Ctrl-C reaches the supervisor alone and the order holds; each gets SIGTERM if the
supervisor dies, even by SIGKILL (PDEATHSIG); granian's workers get SIGTERM when
their master dies, the same way (hailwhale/server.py).

An embedded Redis that another process started (found running) is used, watched
and never stopped; if it goes away, the supervisor starts one of its own.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from hailwhale.embedded import RedisServer
from hailwhale.exceptions import HailWhaleError
from hailwhale.processes import die_with_parent

log = logging.getLogger("hailwhale")

BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
STEADY = 10.0  # a child up this long counts as healthy: its backoff starts over
WATCH = 1.0  # seconds between checks when no signal wakes us (an adopted Redis sends none)
READY_POLL = 0.05  # seconds between two readiness checks before the banner


class Child(Protocol):
    """What the supervisor needs of a child."""

    name: str
    fatal_at_start: bool

    @property
    def pid(self) -> int | None: ...

    def start(self) -> None: ...

    def running(self) -> bool: ...

    @property
    def exit_status(self) -> int | None: ...

    def ended(self) -> str: ...

    def stop(self) -> None: ...


class Program:
    """A command run as a child process that dies with us."""

    def __init__(self, name: str, argv: Sequence[str], *, stop_timeout: float = 30,
                 fatal_at_start: bool = False, pass_fds: Sequence[int] = ()):
        self.name = name
        self.argv = list(argv)
        self.stop_timeout = stop_timeout
        # Sockets the supervisor bound, inherited by every run of the child: a restart
        # keeps the port, and connections wait in its queue meanwhile.
        self.pass_fds = tuple(pass_fds)
        # A first run that exits with an error before STEADY seconds (a port in use, an app
        # that does not load) ends the supervisor instead of being retried forever.
        self.fatal_at_start = fatal_at_start
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        linux = sys.platform.startswith("linux")
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, start_new_session=True,
            pass_fds=self.pass_fds, preexec_fn=die_with_parent(os.getpid()) if linux else None)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_status(self) -> int | None:
        """The status it exited with by itself; None if running or killed by a signal."""
        code = self.process.returncode if self.process else None
        return code if code is not None and code >= 0 else None

    def ended(self) -> str:
        code = self.process.returncode if self.process else None
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def stop(self) -> None:
        if not self.running():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("supervisor: the %s did not stop in %s s; killing it", self.name,
                        self.stop_timeout)
            self.process.kill()
            self.process.wait()


class EmbeddedRedis:
    """The embedded Redis: restarted if it dies, stopped only if we started it."""

    name = "embedded Redis"
    fatal_at_start = False

    def __init__(self, server: RedisServer):
        self.server = server

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def start(self) -> None:
        self.server.start()

    def running(self) -> bool:
        return self.server.running()

    exit_status = None  # a server's exit status is not ours to see when we adopted it

    def ended(self) -> str:
        return "died" if self.server.owned else "(started by another process) went away"

    def stop(self) -> None:
        self.server.stop()


class _Watch:
    """What the supervisor remembers of one child: backoff and when it started."""

    def __init__(self, child: Child):
        self.child = child
        self.delay = BACKOFF_FIRST
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.restarts = 0


class Supervisor:
    """Start `children` in order, restart any that dies, stop them in reverse order."""

    def __init__(self, children: Sequence[Child]):
        self.children = list(children)
        self._stopping = False

    def run(self, started: Callable[[], None] = lambda: None,
            ready: Callable[[], bool] = lambda: True) -> int:
        """Supervise until SIGTERM or SIGINT (0), or until a child fails at start (1).

        `started` runs once, when every child has started and `ready()` is true (the
        banner, once the HTTP server answers); `ready` is asked every READY_POLL seconds
        until then.
        """
        wakeup_r, wakeup_w = os.pipe()
        for fd in (wakeup_r, wakeup_w):
            os.set_blocking(fd, False)
        handlers = {signum: signal.getsignal(signum)
                    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(wakeup_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the select below
        watches = [_Watch(child) for child in self.children]
        try:
            for watch in watches:
                watch.child.start()
                watch.started_at = time.monotonic()
                if self._stopping:
                    return 0
            return self._loop(watches, wakeup_r, started, ready)
        finally:
            for watch in reversed(watches):
                watch.child.stop()
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            os.close(wakeup_r)
            os.close(wakeup_w)

    def _stop(self, *_: object) -> None:
        self._stopping = True

    def _loop(self, watches: list[_Watch], wakeup: int, started: Callable[[], None],
              ready: Callable[[], bool]) -> int:
        announced = False
        while not self._stopping:
            now = time.monotonic()
            restarted = False
            for watch in watches:
                if watch.restart_at is None and not watch.child.running():
                    if self._died(watch, now):
                        return 1
                if watch.restart_at is not None and now >= watch.restart_at:
                    restarted = self._restart(watch) or restarted
                    now = time.monotonic()
            if restarted:
                continue  # look again at once: a child may fail as it starts
            if not announced and all(w.child.running() for w in watches) and ready():
                announced = True
                started()
                continue  # `started` may take a while: look again at once
            due = [w.restart_at for w in watches if w.restart_at is not None]
            timeout = max(0.0, min([WATCH if announced else READY_POLL,
                                    *(at - now for at in due)]))
            if not self._stopping:
                select.select([wakeup], [], [], timeout)
            try:
                while os.read(wakeup, 512):
                    pass
            except BlockingIOError:
                pass
        return 0

    def _died(self, watch: _Watch, now: float) -> bool:
        """Schedule a restart; True when the death ends the supervisor instead."""
        child = watch.child
        up = now - watch.started_at
        if child.fatal_at_start and not watch.restarts and up < STEADY and child.exit_status:
            log.error("supervisor: the %s %s at start; stopping", child.name, child.ended())
            return True
        if up >= STEADY:
            watch.delay = BACKOFF_FIRST
        watch.restart_at = now + watch.delay
        log.warning("supervisor: the %s (pid %s) %s; restarting it in %.1f s", child.name,
                    child.pid, child.ended(), watch.delay)
        watch.delay = min(watch.delay * 2, BACKOFF_MAX)
        return False

    def _restart(self, watch: _Watch) -> bool:
        """Start a dead child again; False (and a later try) if it would not start."""
        child = watch.child
        try:
            child.start()
        except (HailWhaleError, OSError) as error:
            watch.restart_at = time.monotonic() + watch.delay
            log.warning("supervisor: the %s did not start (%s); trying again in %.1f s",
                        child.name, error, watch.delay)
            watch.delay = min(watch.delay * 2, BACKOFF_MAX)
            return False
        watch.restart_at = None
        watch.restarts += 1
        watch.started_at = time.monotonic()
        log.warning("supervisor: restarted the %s (pid %s)", child.name, child.pid)
        return True
