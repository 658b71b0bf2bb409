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


class BufferFull(HailWhaleError):
    """A Hail buffer at its limit refused a request; nothing of it was buffered."""

    status = 503

    def __init__(self, retry_after: int):
        super().__init__(f"the buffer is full; retry after {retry_after} s")
        self.retry_after = retry_after


class PoisonWrite(HailWhaleError):
    """A write Redis refused for a reason no retry can fix (a key of the wrong type, say).

    Nothing of the refused piece was written. A flusher moves the batch to the dead
    letters; a direct count answers 500.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class RequestFailed(HailWhaleError):
    """A request HailWhale did not answer with data; `status` is None when it did not answer."""

    def __init__(self, url: str, status: int | None, message: str):
        super().__init__(message)
        self.url, self.status, self.message = url, status, message


class KeyRefused(RequestFailed):
    """The server wants a key the Client did not send (401), or not the one it sent (403)."""


class Unreachable(RequestFailed):
    """No answer: the connection was refused, timed out or dropped."""
