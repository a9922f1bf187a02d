"""A Redis PING with 0.5 s timeouts, by hand (RESP over a socket), sync and async."""

from __future__ import annotations

import asyncio
import os
import socket
from urllib.parse import urlparse

TIMEOUT = 0.5
LIMIT = 5  # /limited answers 429 after this many requests


def redis_address() -> tuple[str, int]:
    url = urlparse(os.environ["REDIS_URL"])
    return url.hostname or "127.0.0.1", url.port or 6379


def redis_ok() -> bool:
    try:
        with socket.create_connection(redis_address(), timeout=TIMEOUT) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


async def redis_ok_async() -> bool:
    host, port = redis_address()
    writer = None
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"PING\r\n")
            return (await reader.read(64)).startswith(b"+PONG")
    except (OSError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()


def health(ok: bool) -> tuple[int, dict[str, str]]:
    if ok:
        return 200, {"status": "healthy", "redis": "ok"}
    return 503, {"status": "degraded", "redis": "down"}
