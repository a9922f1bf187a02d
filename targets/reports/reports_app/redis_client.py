"""The Redis client of the web side, created on first use.

Every socket gives up after REDIS_TIMEOUT_S; a timeout is never retried (redis-py 8 otherwise
retries ten times, which turns a 1 s timeout into ~10 s against a hung server). A dropped
connection is retried once, on a new connection: that is a pooled connection to a Redis that
restarted, not a Redis that is down. Importing this module imports no redis-py.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from reports_app import config
from reports_app.errors import ConnectionTimeoutError, ServiceUnavailableError

if TYPE_CHECKING:
    import redis

_client: redis.Redis | None = None
_lock = threading.Lock()


def get_client() -> redis.Redis:
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
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                retry_on_timeout=False,
                health_check_interval=30,
                max_connections=64,
            )
        return _client


def translate(exc: BaseException) -> ServiceUnavailableError:
    """A redis-py error as one of the reports backend's."""
    import redis

    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, redis.TimeoutError) or "timed out" in text.lower():
        return ConnectionTimeoutError(
            f"redis did not answer within {config.REDIS_TIMEOUT_S:g}s: {text}", "redis"
        )
    return ServiceUnavailableError(f"redis is unavailable: {text}", "redis")


def ping() -> bool:
    """One PING: ConnectionTimeoutError when Redis does not answer in time,
    ServiceUnavailableError when it refuses."""
    import redis

    try:
        return bool(get_client().ping())
    except (redis.RedisError, OSError) as exc:
        raise translate(exc) from exc


def reset() -> None:
    """Forget the client (tests, and after a fork)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
