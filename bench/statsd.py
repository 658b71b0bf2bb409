"""StatsD in, side by side with Etsy's StatsD daemon: loss-free lines/s, and latency.

Both daemons get the same lines on loopback UDP from sender processes (precomputed
datagrams, paced): half counters `<run>.requests:1|c|#route:rN`, half timers
`<run>.latency:<ms>|ms|#route:rN`, one line per datagram, or packed (PACKED lines,
< 1400 bytes, per datagram). A step sends at one rate for STEP_SECONDS (and
MIN_LINES lines at least), then reads back what the daemon counted: the requests'
sum plus the timers' count, Etsy's from a small backend module that prints each
flush, HailWhale's over HTTP `/totals` once its flusher has applied them. A step
is loss-free when every line is counted, at the rate the senders reached. The search
doubles the rate from its start while loss-free (halves it while not), then bisects
twice: the highest loss-free rate found. When every line is counted but the senders
could not reach the rate asked (they share the machine's cores with the daemon), the
search stops: the figure is then the senders' limit, a floor (`*_sender_limited`).
HailWhale's `*_flushed_lines_per_s`: the lines of its largest step over the time
until all were counted, its flusher's sustained rate.

Etsy's daemon (npm `statsd`, on Debian's Node, installed under bench/.node by `make
bench`) runs twice: as shipped (its UDP socket keeps the system's default receive
buffer) and with our server module that asks for the receive buffer HailWhale's
listeners ask for (32 MiB, capped by net.core.rmem_max the same for both); the
better of the two is the baseline. HailWhale's search starts at the baseline and
stops at MAX_RATIO times it (then its figure is a floor), since every line it takes
is flushed (~30k lines/s here) before the next step.

Latency: one line sent, until it is readable (HailWhale: `/totals`; StatsD: the flush
that carries it, every 10 s by default).

    .venv/bin/python -m bench.run --only statsd
"""

from __future__ import annotations

import json
import math
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.common import CORES, ROOT, Figures, _env, redis_server
from hailwhale.processes import free_port

NODE_DIR = ROOT / "bench" / ".node"
STATSD_JS = NODE_DIR / "node_modules" / "statsd" / "stats.js"
STATSD_PACKAGE = "statsd@0.9.0"  # the latest release (the Makefile installs the same)
STEP_SECONDS = 2.0  # each rate is held this long
MIN_LINES = 20_000  # and sends this many lines at least
FIRST_RATE = 25_000  # lines/s
MIN_RATE = 1_000
MAX_RATIO = 4  # HailWhale's search stops at this many times the baseline
PACKED = 20  # lines per packed datagram (each line < 70 bytes: < 1400 bytes)
SETTLE = 3.0  # seconds a count may stay still before it is final
SENDER_RATE = 150_000  # datagrams/s one sender process is asked for at most
RECEIVE_BUFFER = 32 * 1024 * 1024  # what HailWhale's listeners ask for (hail/statsd.py)

# Prints, at each flush, the counters and timer counts of the bench's lines (names
# starting with "b") as one JSON line on stdout.
BACKEND = """
exports.init = function (startup, config, events) {
  events.on('flush', function (ts, metrics) {
    const out = {counters: {}, timers: {}};
    for (const key in metrics.counters) {
      if (key.startsWith('b') || key.startsWith('lat')) out.counters[key] = metrics.counters[key];
    }
    for (const key in metrics.timer_counters) {
      if (key.startsWith('b')) out.timers[key] = metrics.timer_counters[key];
    }
    process.stdout.write(JSON.stringify(out) + '\\n');
  });
  return true;
};
"""


# Etsy's servers/udp.js, asking for the receive buffer HailWhale's listeners ask for.
BIG_BUFFER_SERVER = """
const dgram = require('dgram');
exports.start = function (config, callback) {
  const server = dgram.createSocket(
    {type: config.address_ipv6 ? 'udp6' : 'udp4', recvBufferSize: RECEIVE_BUFFER}, callback);
  server.bind(config.port || 8125, config.address || undefined);
  this.server = server;
  return true;
};
""".replace("RECEIVE_BUFFER", str(RECEIVE_BUFFER))


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


# -- the lines -------------------------------------------------------------------------


def datagrams(run: str, lines: int, per_datagram: int, seed: int) -> list[bytes]:
    """`lines` lines of the bench workload for `run`, `per_datagram` to a datagram."""
    rng = random.Random(seed)
    out, batch = [], []
    for n in range(lines):
        route = rng.randrange(10)
        if n % 2:
            batch.append(f"{run}.latency:{rng.randint(1, 500)}|ms|#route:r{route}")
        else:
            batch.append(f"{run}.requests:1|c|#route:r{route}")
        if len(batch) == per_datagram:
            out.append("\n".join(batch).encode())
            batch = []
    if batch:
        out.append("\n".join(batch).encode())
    return out


def _send_main(port: str, run: str, lines: str, per_datagram: str, seed: str,
               rate: str) -> None:
    """A sender process: builds its datagrams, waits for a line on stdin, sends them at
    `rate` datagrams/s, prints {"sent": n, "seconds": s}."""
    grams = datagrams(run, int(lines), int(per_datagram), int(seed))
    per_second = float(rate)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    sock.connect(("127.0.0.1", int(port)))
    send, clock, total = sock.send, time.perf_counter, len(grams)
    print("ready", flush=True)
    sys.stdin.readline()
    started, sent = clock(), 0
    while sent < total:
        due = min(total, int((clock() - started) * per_second) + 32)
        while sent < due:
            try:
                send(grams[sent])
            except ConnectionRefusedError:  # an ICMP error of an earlier datagram
                pass
            sent += 1
        ahead = sent / per_second - (clock() - started)
        if ahead > 0.0005:
            time.sleep(ahead)
    print(json.dumps({"sent": sent, "seconds": clock() - started}), flush=True)


def send(port: int, run: str, lines: int, per_datagram: int, rate: float) -> float:
    """Send `lines` lines of `run` at `rate` lines/s from sender processes; the rate reached."""
    per_second = rate / per_datagram
    senders = max(1, math.ceil(per_second / SENDER_RATE))
    shares = [lines // senders + (n < lines % senders) for n in range(senders)]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "bench.statsd", "send", str(port), run, str(share),
         str(per_datagram), str(n), str(per_second / senders)],
        env=_env(), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for n, share in enumerate(shares)]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [json.loads(process.stdout.readline()) for process in processes]
    for process in processes:
        process.wait()
    return lines / max(result["seconds"] for result in results)


# -- the daemons -----------------------------------------------------------------------


class Counted:
    """What a daemon counted of a run: the requests' sum plus the timers' count."""

    def __init__(self, read: Callable[[str], int]):
        self.read = read

    def wait(self, run: str, expected: int, timeout: float = 120) -> int:
        """The final count of `run`: `expected`, or what it stays at for SETTLE seconds."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = self.read(run)
            if count >= expected:
                return count
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since > SETTLE:
                return count
            time.sleep(0.2)
        return last


class EtsyStatsd:
    """Etsy's StatsD daemon on a free UDP port, flushing every `flush_ms` to our backend;
    as shipped, or (`big_buffer`) with our server module."""

    def __init__(self, flush_ms: int, big_buffer: bool = False):
        self.name = "statsd_big_buffer" if big_buffer else "statsd"
        self.tmp = tempfile.TemporaryDirectory()
        backend = Path(self.tmp.name) / "backend.js"
        backend.write_text(BACKEND)
        self.port, management = free_port(), free_port()
        listen = {"port": self.port, "address": "127.0.0.1"}
        if big_buffer:
            server = Path(self.tmp.name) / "udp_big_buffer.js"
            server.write_text(BIG_BUFFER_SERVER)
            listen = {"servers": [{"server": str(server), **listen}]}
        config = Path(self.tmp.name) / "config.js"
        config.write_text(json.dumps({
            **listen, "mgmt_port": management, "mgmt_address": "127.0.0.1",
            "flushInterval": flush_ms, "backends": [str(backend)]}))
        self.counters: dict[str, float] = {}
        self.flushes: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        self.process = subprocess.Popen(["node", str(ensure_statsd()), str(config)],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        threading.Thread(target=self._read, daemon=True).start()
        wait = time.monotonic() + 10
        while True:  # up once its management port answers (it binds UDP before)
            try:
                socket.create_connection(("127.0.0.1", management), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > wait or self.process.poll() is not None:
                    raise RuntimeError("bench: Etsy's StatsD did not start") from None
                time.sleep(0.05)
        self.counted = Counted(self._total)

    def _read(self) -> None:
        for line in self.process.stdout:
            if not line.startswith("{"):
                continue
            flush = json.loads(line)
            with self.lock:
                self.flushes.append((time.monotonic(), flush))
                for group in ("counters", "timers"):
                    for key, value in flush[group].items():
                        name = key.split(";")[0]  # tags are appended as ;k=v
                        self.counters[f"{group}:{name}"] = (
                            self.counters.get(f"{group}:{name}", 0) + value)

    def _total(self, run: str) -> int:
        with self.lock:
            return round(self.counters.get(f"counters:{run}.requests", 0)
                         + self.counters.get(f"timers:{run}.latency", 0))

    def latency(self, name: str) -> float:
        """Seconds from sending `name:1|c` to the flush that carries it."""
        with self.lock:
            seen = len(self.flushes)
        sent = time.monotonic()
        _datagram(self.port, f"{name}:1|c".encode())
        while True:
            with self.lock:
                for at, flush in self.flushes[seen:]:
                    if name in flush["counters"]:
                        return at - sent
            time.sleep(0.01)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        self.tmp.cleanup()


class HailWhaleStatsd:
    """`hailwhale serve --statsd-port` on a Redis of its own, read back over HTTP.

    Its buffer may hold every line of the largest step (4 GiB, 20M lines)."""

    name = "hailwhale"

    def __init__(self):
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
            env={**_env(), "HAILWHALE_BUFFER_MAX_BYTES": str(4 * 2**30)}, cwd=ROOT,
            stdout=self.output, stderr=subprocess.STDOUT)
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
        self.counted = Counted(self._total)

    def _totals(self, metrics: list[str], period: str) -> dict:
        query = urllib.parse.urlencode({"metrics": json.dumps(metrics), "period": period})
        with urllib.request.urlopen(f"{self.url}/totals?{query}", timeout=30) as answer:
            return json.loads(answer.read())[period]["_"]

    def _total(self, run: str) -> int:
        totals = self._totals([f"{run}.requests", f"{run}.latency.count"], "1d:1y")
        return round(sum(totals.values()))

    def latency(self, name: str) -> float:
        """Seconds from sending `name:1|c` until `/totals` shows it."""
        sent = time.monotonic()
        _datagram(self.port, f"{name}:1|c".encode())
        while not self._totals([name], "15s:3h")[name]:
            time.sleep(0.005)
        return time.monotonic() - sent

    def lines(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/health", timeout=30) as answer:
            return json.loads(answer.read())["buffer"].get("statsd", {})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.output.close()
        self._redis.__exit__(None, None, None)


def _datagram(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, ("127.0.0.1", port))


# -- the search ------------------------------------------------------------------------

_runs = iter(range(1, 1_000_000))


def _step(daemon, per_datagram: int, rate: float, steps: list[dict],
          seconds: float = STEP_SECONDS) -> tuple[bool, float]:
    """Send at `rate` lines/s: whether every line was counted, and the rate reached."""
    run = f"b{next(_runs)}"
    lines = max(MIN_LINES, int(rate * seconds))
    reached = send(daemon.port, run, lines, per_datagram, rate)
    sent = time.monotonic()
    counted = daemon.counted.wait(run, lines)
    steps.append({"rate": round(rate), "reached": round(reached), "lines": lines,
                  "counted": counted, "seconds_to_count": round(time.monotonic() - sent, 1)})
    print(f"bench: statsd {daemon.name}, {per_datagram} per datagram: {rate:,.0f} lines/s "
          f"asked, {reached:,.0f} sent, {counted:,} of {lines:,} counted", flush=True)
    return counted == lines, min(rate, reached)


def loss_free(daemon, per_datagram: int, start: float = FIRST_RATE,
              ceiling: float = math.inf, quick: bool = False) -> tuple[float, bool, list]:
    """The highest rate (lines/s) found at which `daemon` counts every line; whether the
    senders were the limit (then it is a floor); the steps.

    From `start`, doubling while loss-free (up to `ceiling`), halving while not (down to
    MIN_RATE); then two bisection steps between the best loss-free and worst lossy rate
    (`quick`: one, and steps half as long). A step's rate is the one the senders reached.
    """
    steps: list[dict] = []
    seconds = STEP_SECONDS / 2 if quick else STEP_SECONDS
    good, bad, rate, limited = 0.0, math.inf, start, False
    while MIN_RATE <= rate <= ceiling:
        counted, reached = _step(daemon, per_datagram, rate, steps, seconds)
        if counted:
            good = max(good, reached)
            if reached < 0.9 * rate:  # the senders could not go faster
                limited = True
                break
            rate *= 2
            if bad < math.inf:
                break
        else:
            bad, rate = reached, rate / 2
            if good:
                break
    for _ in range((1 if quick else 2) if good and bad < math.inf and not limited else 0):
        rate = math.sqrt(good * bad)
        counted, reached = _step(daemon, per_datagram, rate, steps, seconds)
        if counted:
            good = max(good, reached)
        else:
            bad = reached
    return good, limited, steps


def statsd(quick: bool = False) -> dict:
    """The StatsD scenario: the daemons side by side, one line and packed, then latency."""
    ensure_statsd()
    figures = Figures()
    steps: dict[str, list] = {}
    for per_datagram, packing in ((1, "single"), (PACKED, "packed")):
        rates = {}
        for big_buffer in (False, True):
            etsy = EtsyStatsd(flush_ms=1000, big_buffer=big_buffer)
            try:
                rates[etsy.name], _, steps[f"{etsy.name}_{packing}"] = loss_free(
                    etsy, per_datagram, quick=quick)
            finally:
                etsy.stop()
            figures.add(f"{etsy.name}_{packing}_lines_per_s", rates[etsy.name], "lines/s")
        baseline = max(rates.values())
        whale = HailWhaleStatsd()
        try:
            ours, limited, steps[f"hailwhale_{packing}"] = loss_free(
                whale, per_datagram, start=baseline or FIRST_RATE,
                ceiling=MAX_RATIO * baseline if baseline else math.inf, quick=quick)
            steps[f"hailwhale_{packing}_lines"] = whale.lines()
        finally:
            whale.stop()
        figures.add(f"hailwhale_{packing}_lines_per_s", ours, "lines/s")
        # 1: every line sent was counted, and the senders could send no faster (a floor)
        figures.add(f"hailwhale_{packing}_sender_limited", int(limited), "yes")
        # Taken in a burst, counted as fast as the flusher applies them: its sustained rate.
        big = max(steps[f"hailwhale_{packing}"], key=lambda step: step["counted"])
        figures.add(f"hailwhale_{packing}_flushed_lines_per_s", big["counted"] / (
            big["lines"] / big["reached"] + big["seconds_to_count"]), "lines/s")
        # (a StatsD that loses lines even at MIN_RATE is taken as MIN_RATE: a ratio's floor)
        figures.add(f"{packing}_ratio", ours / max(baseline, MIN_RATE),
                    "hailwhale / the better statsd")
    whale = HailWhaleStatsd()
    try:
        for n in range(5):
            time.sleep(random.uniform(0, 2))  # a line at any moment of the flusher's cycle
            figures.add("hailwhale_latency_s", whale.latency(f"lat{n}"), "s")
    finally:
        whale.stop()
    etsy = EtsyStatsd(flush_ms=10_000)  # StatsD's default flushInterval
    try:
        for n in range(2):
            time.sleep(random.uniform(0, 3))
            figures.add("statsd_latency_s", etsy.latency(f"lat{n}"), "s")
    finally:
        etsy.stop()
    return {
        "what": f"loopback UDP from sender processes: half counters, half timers, tagged; "
                f"the highest rate at which every line is counted (steps of "
                f"{STEP_SECONDS:g} s; HailWhale's search stops at {MAX_RATIO}x the better "
                f"StatsD: then a floor), one line per datagram and {PACKED} per datagram; "
                "latency from send to readable (HailWhale /totals; StatsD: its flush, "
                "every 10 s by default); flushed: the lines of HailWhale's largest step over "
                "the time until all were counted (its flusher's sustained rate); "
                f"Etsy's StatsD {statsd_version()} on Node "
                f"{node_version()}, as shipped and with a {RECEIVE_BUFFER // 2**20} MiB "
                "receive buffer",
        "figures": figures.report(),
        "steps": steps,
        "targets": [{"figure": "single_ratio", "at_least": 2},
                    {"figure": "packed_ratio", "at_least": 2},
                    {"figure": "hailwhale_latency_s", "below": 2}],
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["send"]:
        _send_main(*sys.argv[2:])
    else:
        print(json.dumps(statsd(), indent=2))
