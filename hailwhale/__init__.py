"""HailWhale: real-time counting of rolled-up, multi-dimensional metrics."""

__version__ = "0.1.0"

from hailwhale.api import HailWhale  # noqa: E402

__all__ = ["HailWhale", "__version__"]
