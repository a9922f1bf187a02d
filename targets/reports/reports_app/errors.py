"""The reports backend's exceptions. Importing this module imports nothing else."""

from __future__ import annotations


class ReportsError(Exception):
    """Base of every error the reports backend raises on purpose."""


class ConfigurationError(ReportsError):
    """A setting in the environment is not usable."""


class ServiceUnavailableError(ReportsError):
    """A service (redis, postgres, the task queue) refused or failed."""

    def __init__(self, message: str, service: str = "") -> None:
        super().__init__(message)
        self.service = service


class ConnectionTimeoutError(ServiceUnavailableError):
    """A service did not answer within its configured timeout."""


class RateLimitedError(ReportsError):
    """Too many requests for one URL and user within the window."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class JobNotFoundError(ReportsError):
    """No job has this id."""


class InvalidRequestError(ReportsError):
    """A job request that cannot be accepted (unknown report, bad path, ...)."""


class ExternalAPIError(ReportsError):
    """The external API failed after every attempt."""
