"""The floor of issue 15's point 1: what Bottle on HailWhale's server does with nothing of
HailWhale's request handling in the way.

One server, HailWhale's own (hailwhale/server.py: granian, one worker per core, the
same settings), serving a bare Bottle app (no hooks, no plugins) with three routes:

    /ok          answers OK: the most any Bottle route can do on this server;
    /push        buffers one constant event with Hail's Buffer (its group commit and
                 push script): everything Hail's `/count` does but read the request;
    /count_now   counts one constant event with Whale's Store (rollup, group commit,
                 apply script): everything `/count_now` does but read the request.

So the distance from `/push` to Hail's `/count` is HailWhale's own per-request Python
(parsing, validation, Bottle's hooks and plugins), and the distance from the
yardstick to `/push` is what no change to that Python can win back.

    python -m bench.floor --port 8099 --redis-url unix:///tmp/redis.sock [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bottle import Bottle, HTTPResponse  # noqa: E402

from hailwhale.config import Config, Limits  # noqa: E402
from hailwhale.events import Event, parse_event  # noqa: E402
from hailwhale.server import GranianServer  # noqa: E402
from hailwhale.wsgi import buffer_for, store_for  # noqa: E402

# The event of bench/ingest.py's EVENT_QUERY, validated once.
PARAMS = {"dimensions": {"c0": {"r00": "city000"}}, "metrics": {"dollars": 12.5, "clicks": 1}}


def floor_app(redis_url: str) -> Bottle:
    config = Config()
    buffer, store = buffer_for(config, redis_url), store_for(config, redis_url)
    model = parse_event(PARAMS, periods=config.periods, limits=Limits(), now=time.time(),
                        encoded=False)
    intervals = config.periods.intervals

    def event(now: float) -> Event:
        return Event.checked(model.pk, model.paths, dict(model.sums), {}, now, intervals)

    app = Bottle()

    def ok() -> HTTPResponse:
        return HTTPResponse("OK", 200, headers={"Content-Type": "text/plain"})

    @app.route("/ok", method=["GET", "POST"])
    def bare() -> HTTPResponse:
        return ok()

    @app.route("/push", method=["GET", "POST"])
    def push() -> HTTPResponse:
        now = time.time()
        buffer.push([event(now)], now)
        return ok()

    @app.route("/count_now", method=["GET", "POST"])
    def count_now() -> HTTPResponse:
        store.count([event(time.time())])
        return ok()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    GranianServer(lambda: floor_app(args.redis_url), args.host, args.port, args.workers).run()


if __name__ == "__main__":
    main()
