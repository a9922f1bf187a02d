"""The shared Redis client, made on first use. Every socket is bounded by SERVICE_TIMEOUT and
retries are off, so a hung Redis costs one timeout, never redis-py's default retries."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from app.core import config

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

            timeout = config.service_timeout()
            _client = redis.Redis.from_url(
                config.redis_url(),
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                decode_responses=True,
            )
        return _client
