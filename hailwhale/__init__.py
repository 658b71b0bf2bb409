"""HailWhale: real-time counting of rolled-up, multi-dimensional metrics."""

__version__ = "0.1.0"

__all__ = ["Client", "HailWhale", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `hailwhale serve` can let gevent patch the standard
    # library before redis (and through it ssl) is imported.
    if name == "HailWhale":
        from hailwhale.api import HailWhale

        return HailWhale
    if name == "Client":
        from hailwhale.client import Client

        return Client
    raise AttributeError(f"module 'hailwhale' has no attribute {name!r}")
