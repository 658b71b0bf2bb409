"""The StatsD listener: UDP datagrams and TCP lines on one port, buffered as /count's events.

`hailwhale serve` and `hailwhale hail` with `--statsd-port` bind the port's UDP and TCP
sockets (hail/statsd_sockets.py, once: a busy port is one error at start) and run listener
processes on them (`--statsd-only`, one per core), which the kernel feeds in turn. In
each, one thread reads the sockets (the UDP socket until it is empty or BATCH_BYTES
are read; each TCP connection's complete lines) and another reads the lines into
events (hail/statsd_lines.py) and pushes up to PUSH_LINES of them in one call of the
buffer, spelled as /count's (hail/items.py), so the flusher counts them exactly alike.

A bad line is dropped and counted; the other lines of its datagram still count. Lines
are counted by outcome in the buffer's Redis (`KeySpace.statsd_lines`), a second's
worth in one call; hail/statsd_counts.py reads them for `/health` and `/metrics`.

A full buffer refuses the lines of that push, counted as `buffer_full`, as it answers
/count's 503: StatsD clients get no answer to retry on, and a listener that waited
for room would let the socket overflow, losing lines nobody counts. The same goes for
a buffer that does not answer (`unavailable`; the counts wait in memory until it
does) and for lines past MAX_QUEUED bytes waiting for a slow buffer (`overloaded`).
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError

from hail.buffer import PUSH_MAX_BYTES, PUSH_MAX_ITEMS, Buffer
from hail.items import item_head
from hail.statsd_counts import BUFFER_FULL, OVERLOADED, UNAVAILABLE, LineCounts
from hail.statsd_lines import MALFORMED, LineReader
from hail.statsd_sockets import MAX_LINE, Connection
from hailwhale.exceptions import BufferFull

log = logging.getLogger("hailwhale.statsd")

BATCH_BYTES = 256 * 1024  # UDP bytes read in one go, at most
MAX_QUEUED = 64 * 1024 * 1024  # bytes of lines read and not yet pushed, at most
PUSH_LINES = 20_000  # lines read into events and pushed in one call, about
DATAGRAM = 65536  # more than the largest UDP payload (65,507 bytes)
TCP_CHUNK = 256 * 1024
MAX_CONNECTIONS = 1000  # TCP connections per listener process
SAVE_EVERY = 1.0  # seconds between two writes of the counts
WARN_EVERY = 10.0  # seconds between two log lines of one refusal reason


class StatsdListener:
    """Reads StatsD lines from `sockets` (a UDP socket, a listening TCP socket) into `buffer`.

    Two threads: one reads the sockets and queues their lines, the other reads the
    lines into events and pushes them. A push waits for Redis (the flusher's scripts
    hold it for many milliseconds at a time); the sockets are read meanwhile, so
    datagrams wait in memory (up to MAX_QUEUED bytes, then refused as `overloaded`,
    counted) rather than overflow the socket's buffer, lost uncounted.
    """

    def __init__(self, buffer: Buffer, reader: LineReader, sockets: Sequence[socket.socket],
                 clock: Callable[[], float] = time.time, save_every: float = SAVE_EVERY):
        self.buffer = buffer
        self.reader = reader
        self.clock = clock
        self.save_every = save_every
        kinds = {sock.type: sock for sock in sockets}
        self.udp = kinds.get(socket.SOCK_DGRAM)
        self.tcp = kinds.get(socket.SOCK_STREAM)
        self.counts = LineCounts(buffer.redis, buffer.keys.statsd_lines(buffer.name))
        self._buffer = bytearray(BATCH_BYTES + DATAGRAM + 1)
        self._view = memoryview(self._buffer)
        self._connections: dict[int, Connection] = {}
        self._warned: dict[str, float] = {}
        self._queue: deque[tuple[list[bytes], int]] = deque()  # (lines, bytes) read, in order
        self._queued = 0  # bytes in the queue
        self._lock = threading.Lock()  # the queue and its size
        self._work = threading.Event()
        self._stopping = False
        self.failed = False  # the pushing thread died: `run` ends with an error
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)

    def stop(self) -> None:
        """Make `run` return once the lines read are pushed (safe in a signal handler)."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # the pipe is full: a wake-up is waiting already

    def run(self) -> None:
        """Listen until `stop`."""
        pusher = threading.Thread(target=self._push_loop, name="statsd-push")
        pusher.start()
        selector = selectors.DefaultSelector()
        for sock in (self.udp, self.tcp):
            if sock is not None:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping:
                for key, _ in selector.select():
                    lines: list[bytes] = []
                    if key.fileobj is self.udp:
                        size = self._receive(lines)
                    elif key.fileobj is self.tcp:
                        size = self._accept(selector)
                    elif key.fileobj == self._wake_r:
                        size = self._drain_wake_ups()
                    else:
                        size = self._read(key.data, lines, selector)
                    if lines:
                        self._enqueue(lines, size)
        finally:
            for connection in list(self._connections.values()):
                self._close(connection, selector)
            selector.close()
            self._work.set()
            pusher.join()
        if self.failed:
            raise RuntimeError("statsd: the pushing thread failed (see the log above)")

    def _enqueue(self, lines: list[bytes], size: int) -> None:
        with self._lock:
            overloaded = self._queued + size > MAX_QUEUED
            if not overloaded:
                self._queue.append((lines, size))
                self._queued += size
        if overloaded:
            self.counts.add(0, {OVERLOADED: len(lines) - lines.count(b"")})
            self._warn(OVERLOADED, "lines arrive faster than the buffer takes them; refused "
                                   f"past {MAX_QUEUED // 2**20} MiB waiting")
        self._work.set()

    def _push_loop(self) -> None:
        """Push what the sockets gave, in order; save the counts every `save_every` s.

        Should it fail unexpectedly, the whole listener stops (its supervisor starts a
        new one) rather than read lines nobody pushes.
        """
        try:
            self._push_all()
        except BaseException:
            log.exception("statsd: the pushing thread failed; this listener stops (its "
                          "supervisor starts another)")
            self.failed = True
            self.stop()

    def _push_all(self) -> None:
        self.counts.save()
        next_save = time.monotonic() + self.save_every
        while True:
            self._work.wait(max(0.0, next_save - time.monotonic()))
            self._work.clear()  # before taking: a later set() is never missed
            while self._queue:
                lines, taken = [], 0
                with self._lock:
                    while self._queue and len(lines) < PUSH_LINES:
                        more, size = self._queue.popleft()
                        lines += more
                        taken += size
                    self._queued -= taken
                self._push(lines)
            if time.monotonic() >= next_save:
                self.counts.save()
                next_save = time.monotonic() + self.save_every
            if self._stopping and not self._queue:
                self.counts.save()
                return

    def _receive(self, lines: list[bytes]) -> int:
        """Every waiting datagram (up to BATCH_BYTES), one line per newline or datagram;
        the bytes read."""
        buffer, view, receive = self._buffer, self._view, self.udp.recv_into
        end = 0
        try:
            while end < BATCH_BYTES:
                end += receive(view[end:end + DATAGRAM])
                buffer[end] = 10  # a datagram's end ends its last line
                end += 1
        except (BlockingIOError, InterruptedError):
            pass
        if end:
            lines += bytes(view[:end]).split(b"\n")
        return end

    def _accept(self, selector: selectors.BaseSelector) -> int:
        while True:
            try:
                sock, _ = self.tcp.accept()
            except (BlockingIOError, InterruptedError):
                return 0  # none left, or another listener process took it
            except OSError as error:  # out of file descriptors, say: try again next round
                self._warn("accept", f"cannot accept a TCP connection: {error}")
                return 0
            if len(self._connections) >= MAX_CONNECTIONS:
                idlest = min(self._connections.values(), key=lambda c: c.active)
                self._warn("connections", f"more than {MAX_CONNECTIONS} TCP connections to "
                                          "this listener; closing the one idle longest")
                if idlest.pending and not idlest.skipping:
                    self.counts.add(0, {OVERLOADED: 1})  # its unfinished line
                self._close(idlest, selector)
            sock.setblocking(False)
            connection = Connection(sock)
            self._connections[sock.fileno()] = connection
            selector.register(sock, selectors.EVENT_READ, connection)

    def _read(self, connection: Connection, lines: list[bytes],
              selector: selectors.BaseSelector) -> int:
        """A TCP connection's complete lines (its last one too once it closes); bytes read."""
        try:
            chunk = connection.sock.recv(TCP_CHUNK)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            chunk = b""  # reset by the client: what came before still counts
        if not chunk:
            if not connection.skipping:
                lines.append(connection.pending)
            self._close(connection, selector)
            return len(connection.pending)
        parts, too_long = connection.lines(chunk)
        lines += parts
        if too_long:
            self.counts.add(0, {MALFORMED: too_long})
            self._warn(MALFORMED, f"a TCP line over {MAX_LINE} bytes, dropped whole")
        return len(chunk)

    def _close(self, connection: Connection, selector: selectors.BaseSelector) -> None:
        selector.unregister(connection.sock)
        del self._connections[connection.sock.fileno()]
        connection.sock.close()

    def _drain_wake_ups(self) -> int:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        return 0

    def _push(self, lines: list[bytes]) -> None:
        now = self.clock()
        reading = self.reader.read(lines, now)
        events = reading.events
        if len(lines) > 1 and (len(events) > PUSH_MAX_ITEMS
                               or sum(map(len, events)) > PUSH_MAX_BYTES // 2):
            # Bounded calls: multi-value lines made more events than one push may carry.
            # Each half is read again (its ordinary lines from the reader's memory).
            half = len(lines) // 2
            self._push(lines[:half])
            self._push(lines[half:])
            return
        accepted, refused = reading.accepted, reading.refused
        if events:
            head = item_head(now)
            try:
                self.buffer.push_items([head + event for event in events])
            except BufferFull:
                refused[BUFFER_FULL] += accepted
                accepted = 0
                self._warn(BUFFER_FULL, "the buffer is full: lines are refused until a "
                                        "flusher drains it (is one running? see /health)")
            except RedisError as error:
                refused[UNAVAILABLE] += accepted
                accepted = 0
                self._warn(UNAVAILABLE, f"the buffer does not answer, lines are refused: "
                                        f"{error}")
        self.counts.add(accepted, refused)
        for refusal in reading.refusals:
            self._warn(refusal.reason, f"refused {refusal.line!r} ({refusal.reason}): "
                                       f"{refusal.message}")

    def _warn(self, kind: str, message: str) -> None:
        """Log `message`, unless a message of its `kind` was logged less than WARN_EVERY ago."""
        now = time.monotonic()
        if now - self._warned.get(kind, -WARN_EVERY) >= WARN_EVERY:
            self._warned[kind] = now
            log.warning("statsd: %s (logged at most every %g s; /health counts every line)",
                        message, WARN_EVERY)
