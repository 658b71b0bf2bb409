"""The StatsD bench's stream: the same lines to both daemons, sent paced from processes.

Half counters (`bench.requests:1|c`), half timers (`bench.latency:<ms>|ms`), each on one
of PATHS, 3-level nested dimensions country/region/city (5 x 6 x 10 = 300 cities, about
5000 whisper files behind Etsy's StatsD with its timers' 14 statistics and counters' 2).
HailWhale gets the path as DogStatsD tags (`|#country:c0,region:r01,city:city012`);
Etsy's StatsD gets it flattened into the name (`bench.requests.c0.r01.city012`), its
only way to keep dimensions. The same seed draws the same lines for both.
"""

from __future__ import annotations

import json
import math
import random
import socket
import subprocess
import sys
import time

from bench.common import ROOT, _env

PATHS = [(f"c{c}", f"r{c}{r}", f"city{c}{r}{i}") for c in range(5) for r in range(6)
         for i in range(10)]
PACKED = 20  # lines per packed datagram (each line < 70 bytes: < 1400 bytes)
SENDER_RATE = 150_000  # datagrams/s one sender process is asked for at most
TAGGED, DOTTED = "tagged", "dotted"  # HailWhale's spelling, Etsy's


def line(kind: int, path: tuple[str, str, str], ms: int, spelling: str) -> str:
    """One line of the stream: a counter (`kind` 0) or a timer, on `path`."""
    name, value = ("bench.requests", "1|c") if kind == 0 else ("bench.latency", f"{ms}|ms")
    if spelling == DOTTED:
        return f"{name}.{'.'.join(path)}:{value}"
    country, region, city = path
    return f"{name}:{value}|#country:{country},region:{region},city:{city}"


def datagrams(lines: int, per_datagram: int, seed: int, spelling: str) -> list[bytes]:
    """`lines` lines of the stream, `per_datagram` to a datagram."""
    rng = random.Random(seed)
    out, batch = [], []
    for n in range(lines):
        batch.append(line(n % 2, rng.choice(PATHS), rng.randint(1, 500), spelling))
        if len(batch) == per_datagram:
            out.append("\n".join(batch).encode())
            batch = []
    if batch:
        out.append("\n".join(batch).encode())
    return out


def every_path(spelling: str) -> bytes:
    """A counter and a timer on each path, one per line: what creates every name."""
    return "\n".join(line(kind, path, 1, spelling) for path in PATHS for kind in (0, 1)).encode()


def _send_main(port: str, lines: str, per_datagram: str, seed: str, rate: str,
               spelling: str) -> None:
    """A sender process: builds its datagrams, waits for a line on stdin, sends them at
    `rate` datagrams/s, prints {"sent": n, "seconds": s}."""
    grams = datagrams(int(lines), int(per_datagram), int(seed), spelling)
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


class Senders:
    """Sender processes with their datagrams built, ready to send `lines` at `rate`."""

    def __init__(self, port: int, lines: int, per_datagram: int, rate: float, spelling: str,
                 seed: int):
        per_second = rate / per_datagram
        count = max(1, math.ceil(per_second / SENDER_RATE))
        shares = [lines // count + (n < lines % count) for n in range(count)]
        self.lines = lines
        self.processes = [subprocess.Popen(
            [sys.executable, "-m", "bench.statsd_stream", str(port), str(share),
             str(per_datagram), str(seed * 100 + n), str(per_second / count), spelling],
            env=_env(), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for n, share in enumerate(shares)]
        for process in self.processes:
            assert process.stdout.readline().strip() == "ready"

    def send(self) -> float:
        """Send them all at once; the rate reached (lines/s)."""
        for process in self.processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [json.loads(process.stdout.readline()) for process in self.processes]
        for process in self.processes:
            process.wait()
        return self.lines / max(result["seconds"] for result in results)


def datagram(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, ("127.0.0.1", port))


if __name__ == "__main__":
    _send_main(*sys.argv[1:])
