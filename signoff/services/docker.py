"""The docker backend: Redis and Postgres in containers, through testcontainers.

Used only when a Docker engine on this machine answers a ping within 2 s. Every container runs
on the host's network (`network_mode="host"`) and its server listens on a free 127.0.0.1 port
we pick (`redis-server --port N --bind 127.0.0.1`, `postgres -p N -h 127.0.0.1`): no container
address exists and nothing is published, so the engine may run without a bridge
(`dockerd --bridge=none --iptables=false`, as .ci/docker-engine starts it), traffic stays on
loopback, and a restarted container has its port again. kill = `docker kill`, restart =
`docker start`, freeze = `docker pause` (the cgroup freezer stops every process of the
container, so open sessions hang too), thaw = `docker unpause`.

Images: `--docker-image redis=NAME` (which sets $SIGNOFF_REDIS_IMAGE; postgres:
$SIGNOFF_POSTGRES_IMAGE), else the images `signoff services build-images` makes from this
machine's binaries (`images.py`) when the engine has them, else the official `redis:7-alpine`
and `postgres:16-alpine`, pulled by testcontainers. The command lines suit both kinds.

Reaping: testcontainers' reaper (Ryuk) is an image to pull, so it is off. Each container is
labelled with the harness that started it (pid and start time, host, run) and removed by
`stop()`, by an exit handler if stop never ran, and otherwise (kill -9, a crash) by the next
start of this backend on the machine, which removes every labelled container whose owner is
gone (`reap_containers`), or by the next start of any backend (`processes.reap_leftovers`, which
asks the engine only when a dead harness's record says it started containers).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sys
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from signoff import processes
from signoff.errors import ServiceError, UsageError
from signoff.services.base import (
    LOOPBACK,
    PortInUse,
    Service,
    Unavailable,
    on_a_free_port,
    remaining,
)
from signoff.services.images import LOCAL_TAGS
from signoff.services.postgres import PostgresProtocol
from signoff.services.redis import RedisProtocol

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

PING_TIMEOUT = 2.0
IMAGE_ENV = {"redis": "SIGNOFF_REDIS_IMAGE", "postgres": "SIGNOFF_POSTGRES_IMAGE"}
OFFICIAL_IMAGES = {"redis": "redis:7-alpine", "postgres": "postgres:16-alpine"}

LABEL_OWNER = "signoff.owner-pid"
LABEL_OWNER_CREATED = "signoff.owner-created"
LABEL_HOST = "signoff.host"
LABEL_RUN = "signoff.run"
LABEL_SERVICE = "signoff.service"
RUN_ID = uuid.uuid4().hex  # this harness process: what its exit handler removes

_engine_lock = threading.Lock()
_engine_checked: tuple[float, str | None] | None = None
_exit_handler = threading.Lock()
_exit_registered = False


# -- the engine ---------------------------------------------------------------------------------


def _client(timeout: float = PING_TIMEOUT) -> Any:
    import docker

    return docker.from_env(timeout=max(1, int(timeout)))


def engine_is_local(base_url: str) -> bool:
    """Whether the engine at docker-py's `base_url` runs on this machine: a unix socket, or
    TCP on loopback. Host networking puts the servers on the engine's own loopback, which
    only this machine reaches."""
    if base_url.startswith("http+docker://"):  # a unix socket (or a Windows pipe)
        return True
    host = urlsplit(base_url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _ping_engine() -> str | None:
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            client = _client()
            try:
                client.ping()
                base_url = str(client.api.base_url)
            finally:
                client.close()
            if engine_is_local(base_url):
                outcome.append(None)
            else:
                outcome.append(
                    f"the Docker engine at {base_url} is not this machine's; signoff's "
                    "containers run on the host's network, on loopback"
                )
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
    """None if a Docker engine on this machine answers a ping within 2 s, else why not
    (cached for 30 s, so Redis and Postgres starting side by side ask once)."""
    global _engine_checked
    with _engine_lock:
        if _engine_checked is None or time.monotonic() - _engine_checked[0] > 30.0:
            _engine_checked = (time.monotonic(), _ping_engine())
        return _engine_checked[1]


# -- images ---------------------------------------------------------------------------------------


def set_images(options: Sequence[str] | None) -> None:
    """`--docker-image SERVICE=NAME` (repeatable): NAME for that service's containers, through
    its environment variable, so the run's own processes and pytest session see it too."""
    for option in options or ():
        service, sep, name = option.partition("=")
        service, name = service.strip(), name.strip()
        if not sep or service not in IMAGE_ENV or not name:
            raise UsageError(
                f"--docker-image {option!r}: expected SERVICE=IMAGE with SERVICE one of "
                f"{', '.join(IMAGE_ENV)} (redis=redis:7-alpine)"
            )
        os.environ[IMAGE_ENV[service]] = name


def choose_image(service: str, client: Any) -> str:
    """The image for `service`: as configured, else the local build if the engine has it,
    else the official image."""
    import docker

    configured = os.environ.get(IMAGE_ENV[service], "").strip()
    if configured:
        return configured
    try:
        client.images.get(LOCAL_TAGS[service])
        return LOCAL_TAGS[service]
    except docker.errors.ImageNotFound:
        return OFFICIAL_IMAGES[service]


# -- ownership and reaping -------------------------------------------------------------------------


def _created(pid: int) -> str | None:
    at = processes.started(pid)
    return None if at is None else f"{at:.3f}"


def owner_labels(service: str) -> dict[str, str]:
    """The labels every container of ours carries: who started it, so that the next start
    can tell a dead owner's leftovers from a live harness's containers."""
    pid = os.getpid()
    return {
        LABEL_OWNER: str(pid),
        LABEL_OWNER_CREATED: _created(pid) or "",
        LABEL_HOST: socket.gethostname(),
        LABEL_RUN: RUN_ID,
        LABEL_SERVICE: service,
    }


def _owner_alive(labels: Mapping[str, str]) -> bool:
    try:
        pid = int(labels.get(LABEL_OWNER, ""))
    except ValueError:
        return False
    return _created(pid) == labels.get(LABEL_OWNER_CREATED)


def _remove(container: Any) -> bool:
    import docker

    try:
        container.remove(force=True)
        return True
    except docker.errors.NotFound:  # removed meanwhile (the other service's start reaped it)
        return False


def reap_containers(client: Any | None = None) -> list[str]:
    """Remove every container of this machine labelled by a harness that is gone (kill -9,
    a crash: whatever skipped stop() and the exit handler). A line per container removed."""
    own = client is None
    client = client or _client(10.0)
    reaped = []
    try:
        host = socket.gethostname()
        filters = {"label": [LABEL_OWNER, f"{LABEL_HOST}={host}"]}
        for container in client.containers.list(all=True, filters=filters):
            labels = container.labels or {}
            if _owner_alive(labels):
                continue
            if _remove(container):
                reaped.append(
                    f"container {container.name} ({labels.get(LABEL_SERVICE, '?')}, left by "
                    f"harness pid {labels.get(LABEL_OWNER, '?')})"
                )
    finally:
        if own:
            client.close()
    return reaped


def remove_own_containers() -> list[str]:
    """Remove the containers this harness process started and did not stop (the exit
    handler's job: a run that ends without stopping its services leaves none)."""
    try:
        client = _client(10.0)
    except Exception:
        return []
    try:
        found = client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={RUN_ID}"})
        removed = [str(c.name) for c in found if _remove(c)]
        processes.forget_containers()
        return removed
    except Exception:
        return []
    finally:
        client.close()


def _register_exit_handler() -> None:
    global _exit_registered
    with _exit_handler:
        if not _exit_registered:
            atexit.register(remove_own_containers)
            _exit_registered = True


_reaped_once = threading.Lock()


def _reap_and_say() -> None:
    with _reaped_once:
        for line in reap_containers():
            print(f"signoff: removed a leftover of a killed run: {line}", file=sys.stderr)


# -- the servers ----------------------------------------------------------------------------------


class ContainerServer(Service):
    """A server in a container we started. Subclasses give the command line for a port."""

    default_env: ClassVar[Mapping[str, str]] = {}
    in_use_markers: ClassVar[tuple[str, ...]] = ("Address already in use", "could not bind")

    def __init__(self, image: str | None = None) -> None:
        super().__init__("docker")
        self.image = image or ""
        self._container: DockerContainer | None = None
        self._closed = False

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line for `self.port` (the image's entrypoint gets it)."""

    def make_container(self) -> DockerContainer:
        """The testcontainers container, configured but not started."""
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        testcontainers_config.ryuk_disabled = True  # its image cannot be pulled; we reap
        container = DockerContainer(self.image).with_command(self.command())
        for key, value in self.default_env.items():
            container.with_env(key, value)
        return container.with_kwargs(network_mode="host", labels=owner_labels(self.name))

    def start(self, deadline: float, attempts: int = 3) -> None:
        problem = engine_problem()
        if problem is not None:
            raise Unavailable(problem)
        try:
            _reap_and_say()
            if not self.image:
                client = _client(10.0)
                try:
                    self.image = choose_image(self.name, client)
                finally:
                    client.close()
            _register_exit_handler()
            on_a_free_port(self, self._launch, deadline, attempts)
        except BaseException:
            self.stop()
            raise

    def _launch(self, deadline: float) -> None:
        if self._container is not None:  # the container of a port someone else took
            self._remove_container()
        container = self.make_container()
        self._container = container
        processes.record_containers()
        self._start_container(container, deadline)
        self.wait_ready(deadline, self._check_alive)

    def _start_container(self, container: DockerContainer, deadline: float) -> None:
        """container.start() (pull, create, start) bounded by our deadline; if it overruns,
        the container is removed whenever start() finally returns."""
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
            text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
            hint = ""
            if self.image not in LOCAL_TAGS.values():
                hint = (
                    "; without a registry, build the local images (signoff services "
                    "build-images) and use them (the default, or --docker-image "
                    f"{self.name}={LOCAL_TAGS[self.name]})"
                )
            raise ServiceError(
                f"container {self.image} failed to start: {type(error).__name__}: {text}{hint}"
            ) from None

    def _state(self) -> dict[str, Any]:
        wrapped = self._wrapped()
        wrapped.reload()
        return dict(wrapped.attrs.get("State") or {})

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server wrote (the engine keeps the container's output)."""
        if self._container is None:
            return ""
        try:
            out = self._wrapped().logs(tail=lines).decode(errors="replace")
        except Exception:
            return ""
        return out.rstrip()

    def _check_alive(self) -> None:
        """For wait_ready: a container that exited will never answer; say why at once."""
        state = self._state()
        if state.get("Running", False):
            return
        tail = self.log_tail()
        if any(marker in tail for marker in self.in_use_markers):
            raise PortInUse(f"{self.name}: port {self.port} already in use")
        raise ServiceError(
            f"container {self.image} exited with status {state.get('ExitCode')} before "
            f"answering on {self.host}:{self.port}; log tail:\n{tail or '(empty)'}"
        )

    def _wrapped(self) -> Any:
        if self._container is None or self._closed:
            raise ServiceError(f"{self.name} container is not running")
        return self._container.get_wrapped_container()

    def pids(self) -> list[int]:
        """The container's processes as this machine numbers them (`docker top`)."""
        if self._container is None or self._closed:
            return []
        try:
            top = self._wrapped().top(ps_args="-eo pid")
        except Exception:  # not running (killed, or exited): no process
            return []
        return [int(row[0]) for row in top.get("Processes") or []]

    @property
    def can_kill(self) -> bool:
        return True

    def kill(self) -> None:
        wrapped = self._wrapped()
        wrapped.kill()
        # `docker kill` returns once the signal is sent: wait until the container is down
        with contextlib.suppress(Exception):
            wrapped.wait(timeout=10)

    def restart(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        wrapped = self._wrapped()
        wrapped.reload()
        if wrapped.status == "paused":
            wrapped.unpause()
        if wrapped.status in ("running", "paused"):
            self.kill()
        wrapped.start()
        try:
            self.wait_ready(deadline, self._check_alive)
        except PortInUse as exc:
            raise ServiceError(
                f"{self.name} cannot restart on port {self.port}: another process took it ({exc})"
            ) from None

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

    def _remove_container(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.stop()  # testcontainers' stop: remove, forced

    def stop(self) -> None:
        if self._closed:
            return
        self.thaw()
        self._closed = True
        self._remove_container()


class RedisContainerServer(RedisProtocol, ContainerServer):
    def command(self) -> list[str]:
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--timeout", "0",
        ]  # fmt: skip


class PostgresContainerServer(PostgresProtocol, ContainerServer):
    # the official image initdb's with this at its first start (ours was initdb'd with trust)
    default_env: ClassVar[Mapping[str, str]] = {"POSTGRES_HOST_AUTH_METHOD": "trust"}

    def command(self) -> list[str]:
        return [
            "postgres",
            "-p", str(self.port),
            "-h", LOOPBACK,
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
        ]  # fmt: skip


def _starter(kind: type[ContainerServer]) -> Callable[[float], Service]:
    def start(deadline: float) -> Service:
        server = kind()
        server.start(deadline)
        return server

    return start


start_redis = _starter(RedisContainerServer)
start_postgres = _starter(PostgresContainerServer)
