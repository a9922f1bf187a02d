"""The Redis cache: one client, made on first use, that gives up after REDIS_TIMEOUT_S."""

from functools import cache

import redis

from tiny import config


@cache
def client() -> redis.Redis:
    # from_url does not retry by default: the timeout below is the whole wait
    return redis.Redis.from_url(
        config.REDIS_URL,
        socket_timeout=config.REDIS_TIMEOUT_S,
        socket_connect_timeout=config.REDIS_TIMEOUT_S,
    )


def remember(key: str, value: str, ttl_s: int = 60) -> None:
    client().set(key, value, ex=ttl_s)


def recall(key: str) -> str | None:
    value = client().get(key)
    return value.decode() if isinstance(value, bytes) else None
