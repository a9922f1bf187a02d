"""Clients as fix summaries tend to write them, good and bad, for the timeout claims.

Each connects to the address in REDIS_URL / DATABASE_URL and does one round trip."""

import os
import socket
from urllib.parse import urlsplit

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


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
