"""Errors HailWhale raises; the web layer maps InvalidInput to a 400."""


class HailWhaleError(Exception):
    """Base class of every HailWhale error."""


class InvalidInput(HailWhaleError):
    """A request parameter that cannot be accepted; `param` names it."""

    status = 400

    def __init__(self, param: str | None, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


class InvalidEvent(InvalidInput):
    """An event that cannot be counted; nothing of it is counted."""


class RequestTooLarge(InvalidInput):
    """A request body over the configured size limit."""

    status = 413


class InvalidQuery(InvalidInput):
    """A query whose parameters cannot be answered."""


class ConfigError(HailWhaleError):
    """A setting (flag, environment variable or argument) that is not valid."""
