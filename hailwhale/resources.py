"""Where HailWhale's shipped files are, in an installed wheel or a source checkout.

`setup.py` maps the top-level `static/` folder to `whale/static` in a wheel
(package_dir), so `pip install .` puts it beside `whale/`. An editable install
(`pip install -e .`) imports `whale` from the checkout, where `static/` sits one
level up, beside `whale/`. Both are tried, installed location first.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def static_dir() -> Path:
    """The folder holding the jQuery plugin, vendored jQuery and flot, and the dashboard."""
    spec = importlib.util.find_spec("whale")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the whale package is not installed")
    whale = Path(spec.origin).resolve().parent
    for candidate in (whale / "static", whale.parent / "static"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no static folder beside {whale}")
