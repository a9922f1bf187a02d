"""The docker backend: Redis and Postgres in containers, through testcontainers.

Used only when a Docker engine answers a ping within 2 s. The container port is published on
127.0.0.1 only, on a port we pick, so that a restarted container keeps it. kill = `docker
kill`, restart = `docker start`, freeze = `docker pause` (the cgroup freezer stops every
process of the container, so existing sessions hang too), thaw = `docker unpause`.
Images: $SIGNOFF_REDIS_IMAGE / $SIGNOFF_POSTGRES_IMAGE, or the defaults below.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, cast

from signoff.errors import ServiceError
from signoff.services.base import LOOPBACK, Service, Unavailable, free_port, remaining
from signoff.services.postgres import PostgresProtocol
from signoff.services.redis import RedisProtocol

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

PING_TIMEOUT = 2.0
_engine_lock = threading.Lock()
_engine_checked: tuple[float, str | None] | None = None


def _ping_engine() -> str | None:
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            import docker

            client = docker.from_env(timeout=int(PING_TIMEOUT))
            try:
                client.ping()
            finally:
                client.close()
            outcome.append(None)
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            outcome.append(f"no Docker engine answered ({type(exc).__name__}: {text[:200]})")

    thread = threading.Thread(target=probe, name="signoff-docker-ping", daemon=True)
    thread.start()
    thread.join(PING_TIMEOUT + 1.0)
    if not outcome:
        return f"no Docker engine answered within {PING_TIMEOUT:g}s"
    return outcome[0]


def engine_problem() -> str | None:
    """None if a Docker engine answers a ping within 2 s, else why not (cached for 30 s, so
    Redis and Postgres starting side by side ask once)."""
    global _engine_checked
    with _engine_lock:
        if _engine_checked is None or time.monotonic() - _engine_checked[0] > 30.0:
            _engine_checked = (time.monotonic(), _ping_engine())
        return _engine_checked[1]


class ContainerServer(Service):
    """A server in a container we started. Subclasses build the testcontainers object."""

    image_env: ClassVar[str]
    default_image: ClassVar[str]
    container_port: ClassVar[int]

    def __init__(self) -> None:
        super().__init__("docker")
        self.image = os.environ.get(self.image_env) or self.default_image
        self._container: DockerContainer | None = None
        self._closed = False

    @abstractmethod
    def make_container(self) -> DockerContainer:
        """The testcontainers container, configured but not started."""

    def start(self, deadline: float) -> None:
        problem = engine_problem()
        if problem is not None:
            raise Unavailable(problem)
        self.port = free_port()
        container = self.make_container()
        # published on loopback only, on a fixed port so `docker start` after a kill keeps it
        cast(dict[str, Any], container.ports)[f"{self.container_port}/tcp"] = (LOOPBACK, self.port)
        self._container = container
        try:
            self._start_container(container, deadline)
            host = container.get_container_host_ip()
            if host not in ("localhost", "127.0.0.1", "::1"):
                raise ServiceError(
                    f"the Docker engine runs elsewhere ({host}); signoff uses loopback only"
                )
            self.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def _start_container(self, container: DockerContainer, deadline: float) -> None:
        """container.start() (pull, create, start, its own wait) bounded by our deadline; if
        it overruns, the container is removed whenever start() finally returns."""
        lock = threading.Lock()
        state: dict[str, Any] = {"done": False, "abandoned": False, "error": None}

        def run() -> None:
            try:
                container.start()
            except BaseException as exc:
                state["error"] = exc
            finally:
                with lock:
                    state["done"] = True
                    leak = state["abandoned"]
                if leak:
                    with contextlib.suppress(Exception):
                        container.stop()

        thread = threading.Thread(target=run, name=f"signoff-docker-{self.name}", daemon=True)
        thread.start()
        thread.join(remaining(deadline))
        with lock:
            if not state["done"]:
                state["abandoned"] = True
                raise ServiceError(f"container {self.image} did not start in time (image pull?)")
        error = state["error"]
        if error is not None:
            raise ServiceError(
                f"container {self.image} failed to start: {type(error).__name__}: {error}"
            ) from None

    def _wrapped(self) -> Any:
        if self._container is None or self._closed:
            raise ServiceError(f"{self.name} container is not running")
        return self._container.get_wrapped_container()

    @property
    def can_kill(self) -> bool:
        return True

    def kill(self) -> None:
        self._wrapped().kill()

    def restart(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        wrapped = self._wrapped()
        wrapped.reload()
        if wrapped.status == "paused":
            wrapped.unpause()
        if wrapped.status in ("running", "paused"):
            wrapped.kill()
        wrapped.start()
        self.wait_ready(deadline)

    def freeze(self) -> None:
        self._wrapped().pause()

    def thaw(self) -> None:
        if self._container is None or self._closed:
            return
        with contextlib.suppress(Exception):
            wrapped = self._container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status == "paused":
                wrapped.unpause()

    def stop(self) -> None:
        if self._closed:
            return
        self.thaw()
        self._closed = True
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.stop()


class RedisContainerServer(RedisProtocol, ContainerServer):
    image_env: ClassVar[str] = "SIGNOFF_REDIS_IMAGE"
    default_image: ClassVar[str] = "redis:7-alpine"

    def make_container(self) -> DockerContainer:
        from testcontainers.community.redis import RedisContainer

        command = ["redis-server", "--save", "", "--appendonly", "no", "--timeout", "0"]
        return RedisContainer(self.image).with_command(command)


class PostgresContainerServer(PostgresProtocol, ContainerServer):
    image_env: ClassVar[str] = "SIGNOFF_POSTGRES_IMAGE"
    default_image: ClassVar[str] = "postgres:16-alpine"

    def make_container(self) -> DockerContainer:
        from testcontainers.community.postgres import PostgresContainer

        command = ["postgres", "-c", "fsync=off", "-c", "full_page_writes=off",
                   "-c", "synchronous_commit=off"]  # fmt: skip
        container = PostgresContainer(
            self.image, username="postgres", password="signoff", dbname="postgres", driver=None
        )
        # trust: the URL carries no password, like the other backends'
        return container.with_env("POSTGRES_HOST_AUTH_METHOD", "trust").with_command(command)


def start_redis(deadline: float) -> Service:
    server = RedisContainerServer()
    server.start(deadline)
    return server


def start_postgres(deadline: float) -> Service:
    server = PostgresContainerServer()
    server.start(deadline)
    return server
