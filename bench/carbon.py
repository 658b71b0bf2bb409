"""Graphite's carbon-cache behind Etsy's StatsD: started in a temp dir, read back to the point.

Debian's `graphite-carbon` (installed by `make bench`, or here when missing and we are
root), run in the foreground with its own carbon.conf (free loopback ports, no system
daemon, no fixed 2003/2004/7002), storage dir and storage-schemas.conf: a retention of
one point per flush interval, so that no two flushes share a point (a 1 s flush into a
10 s schema keeps only the last flush of each 10 s: wrong totals). What it holds is read
as Graphite reads it: the whisper files (with the `whisper` module Debian ships), and
the points still in carbon's cache through its cache query port.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import terminate
from hailwhale.processes import free_port

CARBON = "/usr/bin/carbon-cache"
WHISPER = "/usr/lib/python3/dist-packages/whisper.py"  # Debian's python3-whisper
KEEP = 3600  # points kept per whisper file (1 h at 1 s: longer than a daemon runs)

CARBON_CONF = """[cache]
STORAGE_DIR = {dir}/storage
LOCAL_DATA_DIR = {dir}/storage/whisper
WHITELISTS_DIR = {dir}/storage/lists
LOG_DIR = {dir}/storage/log
PID_DIR = {dir}/storage
USER =
ENABLE_TAGS = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
WHISPER_SPARSE_CREATE = True
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query}
ENABLE_UDP_LISTENER = False
LOG_UPDATES = False
LOG_CREATES = False
LOG_CACHE_HITS = False
LOG_LISTENER_CONNECTIONS = False
CARBON_METRIC_INTERVAL = 0
"""

# Names under `slow` are flushed every 10 s (StatsD's default), the others every second.
SCHEMAS = """[slow]
pattern = \\.slow\\.
retentions = 10s:{slow}
[default]
pattern = .*
retentions = 1s:{fast}
"""


def ensure_carbon() -> str:
    """carbon-cache; installs Debian's graphite-carbon when missing and we may (root)."""
    if not (Path(CARBON).exists() and Path(WHISPER).exists()) and os.geteuid() == 0 \
            and shutil.which("apt-get"):
        print("bench: installing Graphite's carbon-cache (apt-get install graphite-carbon)",
              flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "graphite-carbon", "python3-whisper"], check=True, env=env)
    if not (Path(CARBON).exists() and Path(WHISPER).exists()):
        raise SystemExit("bench: carbon-cache is missing; install it "
                         "(Debian: apt-get install graphite-carbon python3-whisper)")
    return CARBON


def carbon_version() -> str:
    found = list(Path(WHISPER).parent.glob("carbon-*.egg-info"))
    return found[0].name.split("-")[1].removesuffix(".egg") if found else "?"


def _whisper():
    """Debian's whisper module, loaded from its file (the venv does not see dist-packages)."""
    spec = importlib.util.spec_from_file_location("whisper", WHISPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Carbon:
    """A carbon-cache of its own: `line_port` takes the plaintext protocol."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.line_port, self.query_port = free_port(), free_port()
        conf = self.dir / "carbon.conf"
        conf.write_text(CARBON_CONF.format(dir=self.dir, line=self.line_port,
                                           pickle=free_port(), query=self.query_port))
        (self.dir / "storage-schemas.conf").write_text(SCHEMAS.format(slow=KEEP, fast=KEEP))
        self.whisper = _whisper()
        self.log = (self.dir / "carbon.out").open("w+")
        self.process = subprocess.Popen(
            ["/usr/bin/python3", ensure_carbon(), f"--config={conf}", "--nodaemon",
             f"--pidfile={self.dir / 'carbon.pid'}", "start"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 30
        while True:  # up once both ports answer
            try:
                for port in (self.line_port, self.query_port):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("bench: carbon-cache did not start") from None
                time.sleep(0.1)

    def path(self, metric: str) -> Path:
        return self.dir / "storage" / "whisper" / (metric.replace(".", "/") + ".wsp")

    def stored(self, metrics: list[str], since: float) -> float:
        """The sum of the points of `metrics` stamped at or after `since`, in whisper files."""
        total = 0.0
        now = time.time()
        for metric in metrics:
            try:
                (start, _, step), values = self.whisper.fetch(str(self.path(metric)),
                                                              since - 1, now + 1, now + 1)
            except (FileNotFoundError, self.whisper.CorruptWhisperFile):
                continue
            total += sum(value for n, value in enumerate(values)
                         if value is not None and start + n * step >= since)
        return total

    def cached(self, metrics: list[str]) -> dict[str, list]:
        """Each metric's points still in carbon's cache (not yet in its whisper file)."""
        request = pickle.dumps({"type": "cache-query-bulk", "metrics": metrics}, protocol=2)
        with socket.create_connection(("127.0.0.1", self.query_port), timeout=10) as sock:
            sock.sendall(struct.pack("!L", len(request)) + request)
            size = struct.unpack("!L", _read(sock, 4))[0]
            return pickle.loads(_read(sock, size))["datapointsByMetric"]

    def readable(self, metric: str) -> bool:
        """Whether Graphite could answer `metric` now: a point in carbon's cache or file."""
        if self.cached([metric])[metric]:
            return True
        return self.path(metric).exists() and self.stored([metric], 0) > 0

    def stop(self) -> None:
        terminate(self.process)
        self.log.close()
        self.tmp.cleanup()


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("carbon-cache closed its cache query connection")
        data += chunk
    return data
