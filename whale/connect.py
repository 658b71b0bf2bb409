"""Redis clients from URLs: one server, or a Redis Cluster.

* `redis://[user:password@]host:port/db`, `rediss://...` (TLS), `unix:///path/to.sock`:
  one server (redis-py's own URL parsing, query options included).
* `redis+cluster://[user:password@]host:port[,host:port...]` (`rediss+cluster://` for
  TLS): a Redis Cluster, found from any of the nodes listed; the client learns the rest
  and follows slot moves by itself.

Only the CLI and the app factories build clients from URLs; library objects take one.
"""

from __future__ import annotations

from urllib.parse import unquote

from redis import Redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError, TimeoutError

from hailwhale.exceptions import ConfigError

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS


def is_cluster_url(url: str) -> bool:
    """True when `url` names a Redis Cluster."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def client(url: str, **options: object) -> Redis | RedisCluster:
    """A client for the server or cluster at `url`; `options` go to redis-py as they are."""
    if not is_cluster_url(url):
        try:
            return Redis.from_url(url, **options)
        except ValueError as error:
            raise ConfigError(f"bad Redis URL {url!r}: {error}") from None
    scheme, _, rest = url.partition("://")
    location = rest.split("/", 1)[0].split("?", 1)[0]
    credentials, _, hosts = location.rpartition("@")
    username, _, password = credentials.partition(":")
    nodes = []
    for node in filter(None, hosts.split(",")):
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"bad Redis Cluster URL {url!r}: {node!r} is not host:port")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    if not nodes:
        raise ConfigError(f"bad Redis Cluster URL {url!r}: no host:port")
    if username:
        options.setdefault("username", unquote(username))
    if password:
        options.setdefault("password", unquote(password))
    return RedisCluster(startup_nodes=nodes, ssl=CLUSTER_SCHEMES[scheme.lower()], **options)


def is_cluster(redis: object) -> bool:
    """True for a Redis Cluster client (or one of its pipelines)."""
    return isinstance(redis, RedisCluster)


def pinned(redis: Redis | RedisCluster) -> Redis | RedisCluster:
    """A client that keeps one connection of `redis`'s pool for itself.

    Each command of a pooled client checks a connection out of the pool, which
    polls its socket first (a system call per command; a tenth of a Hail worker's
    time, profiled). For one caller at a time (a GroupCommit), one pinned connection
    does. A cluster client is returned as it is. Connects at once: call when needed.
    """
    return redis.client() if isinstance(redis, Redis) else redis


def revive(client: Redis | RedisCluster) -> None:
    """Check a pinned client's connection after a quiet spell, and drop it if it is dead.

    Redis closes a connection idle past its `timeout` setting, on CLIENT KILL or a
    restart, and a pinned connection (no retries, no pool check) then fails the next
    command: a push refused although Redis is up. A PING finds it first, harmlessly;
    the connection is dropped and the next command connects again.
    """
    if isinstance(client, Redis):
        try:
            client.ping()
        except (ConnectionError, TimeoutError):
            client.connection.disconnect()
