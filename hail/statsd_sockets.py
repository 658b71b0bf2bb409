"""The StatsD port's sockets, bound once, and a TCP client's lines cut from its stream."""

from __future__ import annotations

import logging
import socket
import time

from hailwhale.config import Config

log = logging.getLogger("hailwhale.statsd")

MAX_LINE = 65536  # a TCP line longer than this is dropped whole (UDP's are shorter anyway)


def bind_statsd(host: str, port: int,
                receive_buffer: int = Config.statsd_receive_buffer) -> list[socket.socket]:
    """The UDP socket and the listening TCP socket of `host:port`; OSError if taken.

    The UDP socket asks for `receive_buffer` bytes of receive buffer, where bursts wait
    for the listener (0: the system's default, net.core.rmem_default)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    try:
        udp = socket.socket(family, socket.SOCK_DGRAM)
        sockets.append(udp)
        if receive_buffer:
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            got = udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux doubles it
            if got < receive_buffer:
                log.info("statsd: the UDP receive buffer is %d KiB, not the %d KiB asked for "
                         "(HAILWHALE_STATSD_RECEIVE_BUFFER): net.core.rmem_max caps it; raise "
                         "it to ride out longer bursts", got // 1024, receive_buffer // 1024)
        udp.bind((host, port))
        tcp = socket.socket(family, socket.SOCK_STREAM)
        sockets.append(tcp)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((host, port))
        tcp.listen(1024)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Connection:
    """A TCP client: its socket and the start of a line still to come."""

    __slots__ = ("sock", "pending", "skipping", "active")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pending = b""
        self.skipping = False  # inside a line over MAX_LINE: dropped up to its newline
        self.active = time.monotonic()  # when it last sent: past MAX_CONNECTIONS, the
        # connection idle longest is closed for a new one

    def lines(self, chunk: bytes) -> tuple[list[bytes], int]:
        """The complete lines `chunk` ends, and how many lines over MAX_LINE it dropped."""
        self.active = time.monotonic()
        parts = (self.pending + chunk).split(b"\n")
        self.pending = parts.pop()
        if self.skipping:
            if not parts:  # still inside the over-long line
                self.pending = b""
                return [], 0
            del parts[0]  # its end
            self.skipping = False
        kept = [part for part in parts if len(part) <= MAX_LINE]  # whole in one read
        too_long = len(parts) - len(kept)
        if len(self.pending) > MAX_LINE:
            self.pending = b""
            self.skipping = True
            too_long += 1
        return kept, too_long
