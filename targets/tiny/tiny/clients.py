"""Clients as fix summaries tend to write them, good and bad, for the timeout claims.

Each connects to the address in REDIS_URL / DATABASE_URL and does one round trip."""

import os
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tiny.errors import ServiceUnavailableError

# tests/test_compare.py's hook: this import made slower on purpose (no module imports this one)
time.sleep(float(os.environ.get("TINY_SLOW_IMPORT_S", "0")))


def _redis_address() -> tuple[str, int]:
    url = urlsplit(os.environ["REDIS_URL"])
    return url.hostname or "127.0.0.1", url.port or 6379


def redis_default_retries() -> bool:
    """A 1 s socket timeout, but redis-py's default Retry: it tries again and again."""
    host, port = _redis_address()
    return bool(redis.Redis(host=host, port=port, socket_timeout=1).ping())


def redis_no_retries() -> bool:
    """The same client with retries off: 1 s is the whole wait."""
    host, port = _redis_address()
    return bool(
        redis.Redis(host=host, port=port, socket_timeout=1, retry=Retry(NoBackoff(), 0)).ping()
    )


def postgres_connect_timeout() -> None:
    """psycopg with connect_timeout=2 (the least it allows)."""
    with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=2) as conn:
        conn.execute("SELECT 1")


def socket_timeout_after_connect() -> bytes:
    """A raw socket that sets its timeout only once connected: the connect has none at all."""
    host, port = _redis_address()
    sock = socket.create_connection((host, port))
    sock.settimeout(1)
    try:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)
    finally:
        sock.close()


class _Breaker:
    """A circuit breaker: after `threshold` failures in a row it stays open for `cool_down_s`,
    and every call meanwhile fails at once without trying the server."""

    def __init__(self, threshold: int = 3, cool_down_s: float = 30.0) -> None:
        self.threshold = threshold
        self.cool_down_s = cool_down_s
        self.failures = threshold  # the bug: it starts open, as if Redis had just failed
        self.opened_at = float("inf")  # and the cool-down never ends

    def call(self, func: Callable[[], bool]) -> bool:
        if self.failures >= self.threshold and time.monotonic() - self.opened_at < self.cool_down_s:
            raise ServiceUnavailableError("redis: circuit open")
        try:
            result = func()
        except Exception as exc:
            self.failures += 1
            self.opened_at = time.monotonic()
            raise ServiceUnavailableError(f"redis: {exc}") from exc
        self.failures = 0
        return result


_breaker = _Breaker()


def redis_ping_behind_breaker() -> bool:
    """A ping behind a circuit breaker stuck open: it raises the promised error at once, and
    never asks Redis."""
    return _breaker.call(redis_no_retries)
