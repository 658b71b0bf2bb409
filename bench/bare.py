"""The yardstick of issue 15: a bare Bottle endpoint answering `OK` on gunicorn + gevent.

The stack HailWhale served with until issue 15 (gunicorn, gevent workers, one per
core, TCP_NODELAY on the listening socket), kept fixed here so that every ingest
figure is a ratio against the same thing measured in the same run, whatever the
machine's load. HailWhale itself serves with granian now (hailwhale/server.py).

    python -m bench.bare --port 8099 [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gevent import monkey

monkey.patch_all()  # before anything opens a socket, as the old `hailwhale serve` did

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bottle import Bottle, HTTPResponse  # noqa: E402
from gunicorn.app.base import BaseApplication  # noqa: E402


def bare_app() -> Bottle:
    app = Bottle()

    @app.route("/count", method=["GET", "POST"])
    def count() -> HTTPResponse:
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    return app


class GeventServer(BaseApplication):
    """gunicorn with gevent workers, configured in code as hailwhale/server.py was."""

    def __init__(self, app_factory, host: str, port: int, workers: int = 0):
        self.app_factory = app_factory
        self.options = {
            "bind": f"{host}:{port}",
            "workers": workers or os.cpu_count() or 1,
            "worker_class": "gevent",
            "worker_connections": 1000,
            "keepalive": 10,
            "graceful_timeout": 10,
            "timeout": 30,
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "limit_request_field_size": 8190,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "hailwhale-bare",
            "forwarded_allow_ips": "",
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.app_factory()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    GeventServer(bare_app, args.host, args.port, args.workers).run()


if __name__ == "__main__":
    main()
