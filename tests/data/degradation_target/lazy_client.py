"""A Redis client made on first use, which first imports a slow module (heavy.py): the first
call pays a cold start that has nothing to do with the timeout it promises. For the `warmup`
claims of warmup.toml."""

from __future__ import annotations

import os

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from degradation_target import services
from degradation_target.exceptions import ServiceUnavailableError

_client: redis.Redis | None = None


def _pooled() -> redis.Redis:
    """One client per process, and its pooled connection, kept from the first call on."""
    global _client
    if _client is None:
        from degradation_target import heavy  # noqa: F401 - the cold start

        _client = redis.Redis.from_url(
            os.environ["REDIS_URL"],
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
    return _client


def client() -> redis.Redis:
    """The client, cold start paid, nothing connected: a warmup for claims about a new
    connection (`warmup = "degradation_target.lazy_client:client"`)."""
    return _pooled()


def ping() -> bool:
    """One PING on the pooled connection; ServiceUnavailableError when Redis fails it."""
    try:
        return bool(_pooled().ping())
    except redis.RedisError as exc:
        raise ServiceUnavailableError(f"redis: {exc}") from exc


def get_transcription_service() -> (
    services.TranscriptionService | services.MockTranscriptionService
):
    """services.get_transcription_service, after the cold start."""
    from degradation_target import heavy  # noqa: F401 - the cold start

    return services.get_transcription_service()
