"""The ingest baseline: a Bottle endpoint answering `OK`, served as `hailwhale serve` is.

Same stack as HailWhale's own servers (hailwhale/server.py: gunicorn, gevent workers,
one per core, TCP_NODELAY), so a ratio against it measures HailWhale's own work.

    python -m bench.bare --port 8099 [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gevent import monkey

monkey.patch_all()  # as `hailwhale serve` does, before anything opens a socket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bottle import Bottle, HTTPResponse  # noqa: E402

from hailwhale.server import GeventServer  # noqa: E402


def bare_app() -> Bottle:
    app = Bottle()

    @app.route("/count", method=["GET", "POST"])
    def count() -> HTTPResponse:
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    GeventServer(bare_app, args.host, args.port, args.workers).run()


if __name__ == "__main__":
    main()
