"""Run `hailwhale` commands as real processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import NoReturn

import pytest

from hailwhale.processes import free_port

HAILWHALE = [sys.executable, "-m", "hailwhale.cli"]


def lacking(what: str) -> NoReturn:
    """A test that needs `what` (a program the machine lacks, and how to get it): skipped
    on a developer's machine, failed under CI (CI=true), where .ci/run installs it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: CI must have it (.ci/run installs it)")
    pytest.skip(what)


def wait_for(predicate, timeout: float = 10, what: str = "the condition"):
    """Poll `predicate` until it returns something true; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def cmdline(pid: int) -> str:
    """A process's command line, arguments joined by spaces ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    """The live child processes of `pid`, by their parent pid in /proc/*/stat.

    (/proc/<pid>/task/<tid>/children is not built into every kernel.)
    """
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rpartition(")")[2].split()[:2]
        except (OSError, ValueError):
            continue
        if int(parent) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> list[int]:
    """Children, grandchildren, ... of `pid`."""
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def command_env(**env: str) -> dict[str, str]:
    """The environment for a child: no HAILWHALE_* from outside, these instead."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAILWHALE_")}
    clean["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return {**clean, **env}


def get(url: str, data: bytes | None = None, headers: dict | None = None,
        timeout: float = 10) -> tuple[int, Message, bytes]:
    """Status, headers and body of one request; errors are answers too.

    The headers are looked up by name whatever its case, as HTTP says: the server
    (granian) sends them in lower case."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class Served:
    """`hailwhale serve ...` (or `hail`) in a child process, on a free port, until stopped.

    Ready once /health answers 200; with `--no-flusher` (nothing drains the buffer, so
    /health answers 503 "degraded"), once the server answers /health at all.
    """

    def __init__(self, *args: str, command: str = "serve", cwd: Path | None = None, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*HAILWHALE, command, "--port", str(self.port), "--workers", "2", *args],
            cwd=cwd, env=command_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self._wait_ready(healthy="--no-flusher" not in args)

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def printed(self) -> str:
        return "".join(self.output)

    def _wait_ready(self, healthy: bool, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(f"hailwhale serve exited: {self.printed}")
            try:
                status, _, body = get(self.url + "/health", timeout=1)
                if status == 200 or (not healthy and b'"degraded"' in body):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("hailwhale serve did not answer /health in time")

    def child(self, marker: str) -> int | None:
        """The pid of the supervisor's child whose command line holds `marker`.

        The children of `hailwhale serve`: `redis-server` (the embedded Redis),
        `hailwhale.cli flush` (the flusher) and `--http-only` (granian's master).
        """
        pids = [pid for pid in children(self.process.pid) if marker in cmdline(pid)]
        return pids[0] if pids else None

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop the server; returns what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        time.sleep(0.1)
        return self.printed

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
