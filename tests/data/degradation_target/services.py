"""Transcription services over Redis (REDIS_URL), with 1 s timeouts, and their getters."""

from __future__ import annotations

import os

import redis

from degradation_target.exceptions import ServiceUnavailableError


def _client(timeout: float | None = 1.0) -> redis.Redis:
    return redis.Redis.from_url(
        os.environ["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout
    )


class TranscriptionService:
    """The real one: needs Redis from the start."""

    def __init__(self, timeout: float | None = 1.0) -> None:
        self.client = _client(timeout)
        self.client.ping()  # <- connect

    def transcribe_file(self) -> str:
        self.client.ping()
        return "transcript"


class MockTranscriptionService:
    """The stand-in while Redis is down."""

    def transcribe_file(self) -> str:
        raise ServiceUnavailableError("Transcription service unavailable")


class QuietMockTranscriptionService(MockTranscriptionService):
    """A stand-in that pretends all is well: returns an empty transcript."""

    def transcribe_file(self) -> str:
        return ""


def get_transcription_service() -> TranscriptionService | MockTranscriptionService:
    """Degrades, and tries the real service again on every call: recovers."""
    try:
        return TranscriptionService()
    except Exception:
        return MockTranscriptionService()


_transcription_service: TranscriptionService | MockTranscriptionService | None = None


def get_cached_transcription_service() -> TranscriptionService | MockTranscriptionService:
    """The seeds' lazy singleton: the first mock it makes is kept forever."""
    global _transcription_service
    if _transcription_service is None:
        try:
            _transcription_service = TranscriptionService()
        except Exception:
            _transcription_service = MockTranscriptionService()
    return _transcription_service


def get_service_without_fallback() -> TranscriptionService:
    """No fallback: Redis's exception reaches the caller."""
    return TranscriptionService()


def get_service_without_timeout() -> TranscriptionService | MockTranscriptionService:
    """A fallback that never comes: no timeout, so a connect nobody answers waits forever."""
    try:
        return TranscriptionService(timeout=None)
    except Exception:
        return MockTranscriptionService()


def get_quiet_service() -> TranscriptionService | MockTranscriptionService:
    """Degrades to a mock whose method returns instead of raising."""
    try:
        return TranscriptionService()
    except Exception:
        return QuietMockTranscriptionService()


def get_mock_without_trying() -> MockTranscriptionService:
    """Hands out the mock without ever asking Redis (a flag read once, a stale health cache):
    it looks like graceful degradation, but the outage was never met."""
    return MockTranscriptionService()


def get_lazy_service() -> TranscriptionService:
    """Does not degrade at all: it hands out the real service without asking Redis."""
    return TranscriptionService.__new__(TranscriptionService)
