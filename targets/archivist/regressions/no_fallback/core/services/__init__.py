"""Archivist's services, instantiated lazily, with mock fallbacks for graceful degradation.

`get_transcription_service()` returns the real TranscriptionService when Redis (its queue)
answers, and a MockTranscriptionService when it does not. The mock is never cached: every call
after a failure tries the real service again, so the archive recovers on its own when Redis is
back (the seeds' first version cached the mock in a module-level singleton forever). The real
service, once made, is kept until one of its calls finds Redis gone.
"""

from __future__ import annotations

import logging
import threading

from core.exceptions import ServiceUnavailableError

logger = logging.getLogger(__name__)


class TranscriptionService:
    """Transcriptions through the Celery queue on Redis. Construction checks that Redis
    answers (one PING, bounded by REDIS_TIMEOUT_S) and raises ServiceUnavailableError if not."""

    available = True

    def __init__(self) -> None:
        from core import redis_client

        redis_client.ping()

    def transcribe_file(self, media_path: str) -> str:
        """Queue a transcription of `media_path`; the task id."""
        from core import tasks

        try:
            return tasks.enqueue_transcription(media_path)
        except ServiceUnavailableError:
            _forget(self)
            raise

    def job_status(self, task_id: str) -> str:
        from core import tasks

        try:
            return tasks.task_state(task_id)
        except ServiceUnavailableError:
            _forget(self)
            raise


class MockTranscriptionService:
    """What callers get while the queue is down: it says so, loudly, on every call."""

    available = False

    def __init__(self, reason: str = "the transcription queue is unavailable") -> None:
        self.reason = reason

    def transcribe_file(self, *args: object, **kwargs: object) -> str:
        raise ServiceUnavailableError(
            f"transcription service unavailable: {self.reason}", "transcription"
        )

    def job_status(self, *args: object, **kwargs: object) -> str:
        raise ServiceUnavailableError(
            f"transcription service unavailable: {self.reason}", "transcription"
        )

    def __repr__(self) -> str:
        return f"<MockTranscriptionService: {self.reason}>"


_transcription_service: TranscriptionService | None = None
_lock = threading.Lock()


def get_transcription_service() -> TranscriptionService | MockTranscriptionService:
    """The real service if Redis answers, else a mock (never cached: the next call retries)."""
    global _transcription_service
    service = _transcription_service
    if service is not None:
        return service
    service = TranscriptionService()
    with _lock:
        if _transcription_service is None:
            _transcription_service = service
        return _transcription_service


def _forget(service: TranscriptionService) -> None:
    """Drop the cached real service after it found Redis gone: the next get retries."""
    global _transcription_service
    with _lock:
        if _transcription_service is service:
            _transcription_service = None


def reset_services() -> None:
    global _transcription_service
    with _lock:
        _transcription_service = None
