"""The backend's errors."""

from __future__ import annotations


class WheelsError(Exception):
    """Base of every error of the backend."""


class ServiceUnavailableError(WheelsError):
    """A service (Redis, Postgres) refused, dropped or did not answer in time."""


class CacheUnavailableError(ServiceUnavailableError):
    """The cache's Redis could not be reached."""


class TTSEngineError(WheelsError):
    """One TTS engine could not synthesize. `reason`: "refused" (nothing listens), "timeout"
    (no answer within the engine's timeout), "unavailable" (not configured, not installed,
    turned off) or "error" (anything else)."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason
