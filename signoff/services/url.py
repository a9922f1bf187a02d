"""The url backend: a server the user runs, given as REDIS_URL / DATABASE_URL. Not ours, so it
is pinged but never killed, restarted or frozen."""

from __future__ import annotations

import os
import time
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from signoff.errors import ServiceError
from signoff.services.base import Service, Unavailable
from signoff.services.postgres import PostgresProtocol
from signoff.services.redis import RedisProtocol, format_host, where


class UrlService(Service):
    """A server at a URL from the environment. `url` is the user's URL, unchanged."""

    url_env: ClassVar[str]
    default_port: ClassVar[int]

    def __init__(self, url: str) -> None:
        super().__init__("url")
        self.given_url = url
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise Unavailable(f"{self.url_env} has an invalid port ({where(url)})") from None
        if not parts.hostname:
            raise Unavailable(f"{self.url_env} names no host")
        self.host = parts.hostname
        self.port = port or self.default_port

    @property
    def url(self) -> str:
        return self.given_url

    def url_for(self, host: str, port: int) -> str:
        parts = urlsplit(self.given_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{format_host(host)}:{port}"
        if userinfo:
            netloc = f"{userinfo}@{netloc}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def can_kill(self) -> bool:
        return False

    def _not_ours(self, what: str) -> ServiceError:
        return ServiceError(
            f"{self.name} at {self.host}:{self.port} cannot be {what}: "
            "not started by signoff (url backend)"
        )

    def kill(self) -> None:
        raise self._not_ours("killed")

    def restart(self, timeout: float = 30.0) -> None:
        raise self._not_ours("restarted")

    def freeze(self) -> None:
        raise self._not_ours("frozen")

    def thaw(self) -> None:
        """Nothing was frozen."""

    def stop(self) -> None:
        """Not ours to stop."""


class RedisUrl(UrlService, RedisProtocol):
    default_port: ClassVar[int] = 6379


class PostgresUrl(UrlService, PostgresProtocol):
    default_port: ClassVar[int] = 5432


def start_url(kind: type[UrlService], deadline: float) -> UrlService:
    """The service at $REDIS_URL / $DATABASE_URL, once it answers (until `deadline`)."""
    url = os.environ.get(kind.url_env, "").strip()
    if not url:
        raise Unavailable(f"{kind.url_env} is not set")
    service = kind(url)
    # a server the user says is running answers at once; a few seconds of grace, no more
    try:
        service.wait_ready(min(deadline, time.monotonic() + 5.0))
    except ServiceError as exc:
        raise ServiceError(f"{kind.url_env}: {exc}") from None
    return service


def start_redis(deadline: float) -> UrlService:
    return start_url(RedisUrl, deadline)


def start_postgres(deadline: float) -> UrlService:
    return start_url(PostgresUrl, deadline)
