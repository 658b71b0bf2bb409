"""Settings: defaults in one place, `HAILWHALE_*` environment variables over them.

Read at start-up (by the CLI or the app factory), never at import time. Every default
is a field default below: a library or help text that needs one names it (for example
`Config.flush_batch`, `Limits.children`) rather than spelling the number again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from hailwhale.exceptions import ConfigError
from hailwhale.periods import DEFAULT_PERIODS, Periods

# What a query shows when it does not say (DESIGN.md, HTTP API): a child from this share
# of its parent's window total, and this many children per parent.
DEFAULT_THRESHOLD = 0.1
DEFAULT_CHILDREN = 10


@dataclass(frozen=True)
class Limits:
    """What one request or event may hold; past these, a 400 (or 413)."""

    name_length: int = 200
    path_depth: int = 8
    prefixes: int = 64
    metrics: int = 32
    batch: int = 1000
    request_bytes: int = 1024 * 1024
    children: int = 10_000
    pks: int = 10_000
    metric_names: int = 1_000  # per pk
    # series one request writes (pk prefixes x (dimension prefixes + 1) x metrics x
    # intervals, summed): the worst single event writes 51,480 at the other defaults
    series: int = 200_000
    names_bytes: int = 4096  # UTF-8 bytes of pk, path segments and metric names of one event
    unique_id_length: int = 200
    future_seconds: int = 300
    formula_length: int = 200
    formula_depth: int = 16
    query_metrics: int = 10
    query_limit: int = 100
    points: int = 5000  # buckets per series in one answer
    statsd_values: int = 100  # values (events) one StatsD line may carry: name:1:2:3|d
    answer_points: int = 1_000_000
    # hailwhale/server.py answers 414 past this, before the app.
    request_line: int = 8190


@dataclass(frozen=True)
class Config:
    """Everything `hailwhale serve` and the Python API can be told."""

    redis_url: str | None = None
    hail_url: str | None = None
    periods: Periods = field(default_factory=lambda: Periods.parse(DEFAULT_PERIODS))
    host: str = "127.0.0.1"
    port: int = 8085
    hail_port: int = 8086
    workers: int = 0
    data_dir: str = "data"
    key_prefix: str = "hw"
    # None: `*` when there is no read key, no cross-origin reads when there is one.
    cors_origins: tuple[str, ...] | None = None
    write_key: str | None = None
    read_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    buffer_max: int = 1_000_000
    buffer_max_bytes: int = 256 * 1024 * 1024
    flush_interval: float = 1.0
    flush_batch: int = 5000
    flush_batch_bytes: int = 8 * 1024 * 1024
    client_timeout: int = 10
    idempotency_window: int = 3600
    health_max_lag: float = 60.0
    query_timeout: float = 10.0
    # Addresses whose X-Forwarded-* headers are believed (a proxy in front); none by default.
    forwarded_allow_ips: tuple[str, ...] = ()
    # UDP and TCP port of the StatsD listener (`serve`, `hail`); None: off (8125 is usual).
    statsd_port: int | None = None
    # Bytes of UDP receive buffer the StatsD listener asks for (bursts wait there), capped
    # by net.core.rmem_max; 0: the system's default (net.core.rmem_default).
    statsd_receive_buffer: int = 32 * 1024 * 1024

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """The origins CORS lets read answers: as configured, else `*` only without a read key."""
        if self.cors_origins is not None:
            return self.cors_origins
        return () if self.read_key else ("*",)


_ENV = {
    "redis_url": "HAILWHALE_REDIS_URL",
    "hail_url": "HAILWHALE_HAIL_URL",
    "periods": "HAILWHALE_PERIODS",
    "host": "HAILWHALE_HOST",
    "port": "HAILWHALE_PORT",
    "hail_port": "HAILWHALE_HAIL_PORT",
    "workers": "HAILWHALE_WORKERS",
    "data_dir": "HAILWHALE_DATA_DIR",
    "key_prefix": "HAILWHALE_KEY_PREFIX",
    "cors_origins": "HAILWHALE_CORS_ORIGINS",
    "buffer_max": "HAILWHALE_BUFFER_MAX",
    "flush_interval": "HAILWHALE_FLUSH_INTERVAL",
    "flush_batch": "HAILWHALE_FLUSH_BATCH",
    "write_key": "HAILWHALE_WRITE_KEY",
    "read_key": "HAILWHALE_READ_KEY",
    "client_timeout": "HAILWHALE_CLIENT_TIMEOUT",
    "buffer_max_bytes": "HAILWHALE_BUFFER_MAX_BYTES",
    "flush_batch_bytes": "HAILWHALE_FLUSH_BATCH_BYTES",
    "idempotency_window": "HAILWHALE_IDEMPOTENCY_WINDOW",
    "health_max_lag": "HAILWHALE_HEALTH_MAX_LAG",
    "query_timeout": "HAILWHALE_QUERY_TIMEOUT",
    "forwarded_allow_ips": "HAILWHALE_FORWARDED_ALLOW_IPS",
    "statsd_port": "HAILWHALE_STATSD_PORT",
    "statsd_receive_buffer": "HAILWHALE_STATSD_RECEIVE_BUFFER",
}
_FLOATS = {"flush_interval", "health_max_lag", "query_timeout"}
_POSITIVE = {"buffer_max", "buffer_max_bytes", "flush_batch", "flush_batch_bytes",
             "client_timeout", "idempotency_window", "health_max_lag", "query_timeout"}
_NUMBERS = {"port", "hail_port", "statsd_port", "statsd_receive_buffer", "workers",
            "flush_interval"} | _FLOATS | _POSITIVE
# What the kernel takes: SO_RCVBUF is a C int (Linux caps it at net.core.rmem_max anyway).
_MOST = {"statsd_receive_buffer": 2**31 - 1}
ENV_VARS = dict(_ENV)


def _convert(name: str, value: object) -> object:
    if name == "periods":
        return Periods.parse(value)  # type: ignore[arg-type]
    if name in _NUMBERS:
        kind = float if name in _FLOATS else int
        try:
            number = kind(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
        if number < 0 or (number == 0 and name in _POSITIVE):
            raise ConfigError(f"{name} must be positive, not {value!r}")
        if number > _MOST.get(name, number):
            raise ConfigError(f"{name} must be at most {_MOST[name]}, not {value!r}")
        return number
    if name in ("cors_origins", "forwarded_allow_ips") and isinstance(value, str):
        return tuple(origin.strip() for origin in value.split(",") if origin.strip())
    if name in ("write_key", "read_key"):
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            raise ConfigError(f"{name} must be a non-empty string without surrounding spaces")
    return value


def limit_var(name: str) -> str:
    """The environment variable of one limit, e.g. HAILWHALE_LIMIT_CHILDREN."""
    return f"HAILWHALE_LIMIT_{name.upper()}"


def _limits(environ: Mapping[str, str]) -> Limits | None:
    given = {}
    for limit in fields(Limits):
        text = environ.get(limit_var(limit.name))
        if text:
            try:
                given[limit.name] = int(text)
            except ValueError:
                raise ConfigError(f"{limit_var(limit.name)} must be a whole number, "
                                  f"not {text!r}") from None
            if given[limit.name] <= 0:
                raise ConfigError(f"{limit_var(limit.name)} must be positive, not {text!r}")
    return replace(Limits(), **given) if given else None


def load_config(
    environ: Mapping[str, str] | None = None, **overrides: object
) -> Config:
    """Defaults, then `HAILWHALE_*` variables, then `overrides` that are not None."""
    environ = os.environ if environ is None else environ
    known = {f.name for f in fields(Config)}
    values: dict[str, object] = {}
    for name, var in _ENV.items():
        if environ.get(var):
            values[name] = _convert(name, environ[var])
    limits = _limits(environ)
    if limits:
        values["limits"] = limits
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _convert(name, value)
    return replace(Config(), **values)
