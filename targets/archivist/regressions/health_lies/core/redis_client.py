"""The shared Redis client: made on first use, with the timeouts of core.config.

`socket_connect_timeout` bounds the connect (a blackholed address), `socket_timeout` every
answer (a hung server), and retries are off, so REDIS_TIMEOUT_S is the whole wait: redis-py's
default Retry would try again and again and turn "5 seconds" into tens of seconds.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from core import config
from core.exceptions import ConnectionTimeoutError, ServiceUnavailableError

if TYPE_CHECKING:
    import redis

_client: redis.Redis | None = None
_lock = threading.Lock()


def get_redis() -> redis.Redis:
    global _client
    with _lock:
        if _client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            _client = redis.Redis.from_url(
                config.REDIS_URL,
                socket_timeout=config.REDIS_TIMEOUT_S,
                socket_connect_timeout=config.REDIS_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=30,
            )
        return _client


def ping() -> bool:
    """One PING; ConnectionTimeoutError when Redis does not answer within REDIS_TIMEOUT_S,
    ServiceUnavailableError when it refuses or drops the connection."""
    import redis

    try:
        return bool(get_redis().ping())
    except redis.TimeoutError as exc:
        raise ConnectionTimeoutError(
            f"redis did not answer within {config.REDIS_TIMEOUT_S:g}s: {exc}", "redis"
        ) from exc
    except redis.RedisError as exc:
        raise ServiceUnavailableError(f"redis is unavailable: {exc}", "redis") from exc


def reset() -> None:
    """Drop the client and its pooled connections (tests, and after a fork)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
