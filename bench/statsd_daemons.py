"""The two StatsD daemons of the bench, each with what stands behind it, read back alike.

Etsy's StatsD (npm `statsd`, on Debian's Node) flushes to Graphite's carbon-cache
(bench/carbon.py) with its stock graphite backend; HailWhale (`hailwhale serve
--statsd-port`) buffers into a Redis of its own and its flusher applies the lines.
Each tells: the lines of the stream it has counted so far (`total`: carbon's whisper
points of every path's counter and timer count; HailWhale's `/totals`), the CPU
seconds of its processes (StatsD and carbon; HailWhale's supervisor, listeners,
flusher, HTTP workers and Redis), its UDP socket's receive buffer as the kernel
holds it (`ss`), and the time from a line sent to its being readable.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

from bench.carbon import Carbon
from bench.common import CORES, ROOT, _env, redis_server
from bench.statsd_stream import DOTTED, PATHS, TAGGED, datagram, every_path
from hailwhale.processes import free_port

NODE_DIR = ROOT / "bench" / ".node"
STATSD_JS = NODE_DIR / "node_modules" / "statsd" / "stats.js"
GRAPHITE_JS = STATSD_JS.parent / "backends" / "graphite.js"
STATSD_PACKAGE = "statsd@0.9.0"  # the latest release (the Makefile installs the same)

# Etsy's servers/udp.js, asking for a receive buffer of RECEIVE_BUFFER bytes.
SIZED_SERVER = """
const dgram = require('dgram');
exports.start = function (config, callback) {
  const server = dgram.createSocket(
    {type: config.address_ipv6 ? 'udp6' : 'udp4', recvBufferSize: RECEIVE_BUFFER}, callback);
  server.bind(config.port || 8125, config.address || undefined);
  this.server = server;
  return true;
};
"""

# Per path, the whisper files that count the stream's lines: counters' and timers' count.
COUNTS = [f"stats.counters.bench.requests.{'.'.join(path)}.count" for path in PATHS] + \
         [f"stats.timers.bench.latency.{'.'.join(path)}.count" for path in PATHS]


def ensure_statsd() -> Path:
    """Etsy's StatsD daemon (npm `statsd`) under bench/.node; installed when missing."""
    if not shutil.which("node"):
        raise SystemExit("bench: node is missing; install it (Debian: apt-get install nodejs npm)")
    if not STATSD_JS.exists():
        if not shutil.which("npm"):
            raise SystemExit("bench: npm is missing; install it (Debian: apt-get install npm)")
        print(f"bench: installing Etsy's StatsD (npm install --prefix bench/.node "
              f"{STATSD_PACKAGE})", flush=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(NODE_DIR),
                        STATSD_PACKAGE], check=True)
    return STATSD_JS


def statsd_version() -> str:
    return json.loads((STATSD_JS.parent / "package.json").read_text())["version"]


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def receive_buffer(port: int) -> int:
    """The receive buffer (bytes, `rb` of `ss -m`) of the UDP socket bound to `port`."""
    shown = subprocess.run(["ss", "-uanm", f"sport = :{port}"], capture_output=True,
                           text=True).stdout
    found = re.search(r"\brb(\d+)", shown)
    return int(found.group(1)) if found else 0


def socket_drops(port: int) -> int:
    """Datagrams the kernel dropped at the UDP socket bound to `port` (its buffer was full):
    the `drops` column of /proc/net/udp, one row per socket, however many read it."""
    for row in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = row.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            return int(fields[-1])
    return 0


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class EtsyStatsd:
    """Etsy's StatsD on a free UDP port, flushing every `flush_ms` to `carbon`; asking for
    `buffer` bytes of receive buffer (None: as shipped, the system's default)."""

    spelling = DOTTED

    def __init__(self, carbon: Carbon, flush_ms: int, buffer: int | None = None):
        self.carbon = carbon
        self.tmp = tempfile.TemporaryDirectory()
        self.port, management = free_port(), free_port()
        listen = {"port": self.port, "address": "127.0.0.1"}
        if buffer is not None:
            server = Path(self.tmp.name) / "udp_sized.js"
            server.write_text(SIZED_SERVER.replace("RECEIVE_BUFFER", str(buffer)))
            listen = {"servers": [{"server": str(server), **listen}]}
        config = Path(self.tmp.name) / "config.js"
        config.write_text(json.dumps({
            **listen, "mgmt_port": management, "mgmt_address": "127.0.0.1",
            "flushInterval": flush_ms, "backends": [str(GRAPHITE_JS)],
            "graphiteHost": "127.0.0.1", "graphitePort": carbon.line_port,
            "graphite": {"legacyNamespace": False}, "deleteIdleStats": True}))
        self.log = (Path(self.tmp.name) / "statsd.out").open("w+")
        self.process = subprocess.Popen(["node", str(ensure_statsd()), str(config)],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        wait = time.monotonic() + 10
        while True:  # up once its management port answers (it binds UDP before)
            try:
                socket.create_connection(("127.0.0.1", management), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > wait or self.process.poll() is not None:
                    raise RuntimeError("bench: Etsy's StatsD did not start") from None
                time.sleep(0.05)
        self.since = time.time() - 1  # its points are stamped from its start on
        self._processes = [psutil.Process(self.process.pid), psutil.Process(carbon.process.pid)]

    def total(self) -> int:
        return round(self.carbon.stored(COUNTS, self.since))

    def idle(self) -> bool:
        """StatsD holds nothing for later: what a flush did not carry is lost."""
        return True

    def create_names(self) -> None:
        """Send every path's counter and timer once and wait until carbon holds them all:
        a Graphite in use has its whisper files, so the steps measure no file creation."""
        before = self.total()
        datagram(self.port, every_path(self.spelling))
        deadline = time.monotonic() + 120
        while self.total() < before + 2 * len(PATHS) and time.monotonic() < deadline:
            time.sleep(0.5)

    def cpu(self) -> float:
        return _cpu(self._processes)

    def receive_buffer(self) -> int:
        return receive_buffer(self.port)

    def latency(self, name: str) -> float:
        """Seconds from sending `name:1|c` until carbon can answer it (cache or file)."""
        sent = time.monotonic()
        datagram(self.port, f"{name}:1|c".encode())
        metric = f"stats.counters.{name}.count"
        while not self.carbon.readable(metric):
            time.sleep(0.005)
        return time.monotonic() - sent

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        self.log.close()
        self.tmp.cleanup()


class HailWhaleStatsd:
    """`hailwhale serve --statsd-port` on a Redis of its own, asking for `buffer` bytes of
    receive buffer (0: the system's default); read back over HTTP.

    Its buffer may hold every line of the largest step (4 GiB, 20M lines)."""

    spelling = TAGGED

    def __init__(self, buffer: int):
        self._redis = redis_server()
        redis = self._redis.__enter__()
        self.port = free_port()
        http = free_port()
        self.url = f"http://127.0.0.1:{http}"
        self.output = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hailwhale.cli", "serve", "--port", str(http), "--workers",
             str(CORES), "--redis-url", redis.url, "--statsd-port", str(self.port),
             "--buffer-max", "20000000"],
            env={**_env(), "HAILWHALE_BUFFER_MAX_BYTES": str(4 * 2**30),
                 "HAILWHALE_STATSD_RECEIVE_BUFFER": str(buffer)},
            cwd=ROOT, stdout=self.output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:  # healthy: a flusher is alive
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    self.output.seek(0)
                    raise RuntimeError("bench: hailwhale serve did not start:\n"
                                       + self.output.read()[-2000:]) from None
                time.sleep(0.05)
        self._redis_process = psutil.Process(redis.pid)

    def _totals(self, metrics: list[str], period: str) -> dict:
        """`/totals`, asked again for up to a minute while it answers 503 (a read past its
        deadline on a machine the flusher and the bench's neighbours keep busy)."""
        query = urllib.parse.urlencode({"metrics": json.dumps(metrics), "period": period})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/totals?{query}", timeout=30) as answer:
                    return json.loads(answer.read())[period]["_"]
            except urllib.error.HTTPError as error:
                if error.code != 503 or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def total(self) -> int:
        totals = self._totals(["bench.requests", "bench.latency.count"], "1d:1y")
        return round(sum(totals.values()))

    def idle(self) -> bool:
        """Whether the buffer is empty and no batch is being applied."""
        buffer = self._health()["buffer"]
        return not buffer["depth"] and not buffer["in_flight"]

    def _health(self) -> dict:
        """`/health`, answered 503 too while the flusher lags behind a burst."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=30) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
            return json.loads(error.read())

    def create_names(self) -> None:
        """Nothing to create ahead: a new path costs HailWhale no file."""

    def cpu(self) -> float:
        main = psutil.Process(self.process.pid)
        return _cpu([main, *main.children(recursive=True), self._redis_process])

    def receive_buffer(self) -> int:
        return receive_buffer(self.port)

    def latency(self, name: str) -> float:
        """Seconds from sending `name:1|c` until `/totals` shows it."""
        sent = time.monotonic()
        datagram(self.port, f"{name}:1|c".encode())
        while not self._totals([name], "15s:3h")[name]:
            time.sleep(0.005)
        return time.monotonic() - sent

    def lines(self) -> dict:
        """The listener's lines by outcome (`/health`): received, accepted, refused."""
        return self._health()["buffer"].get("statsd", {})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.output.close()
        self._redis.__exit__(None, None, None)

