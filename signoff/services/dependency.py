"""[target.dependencies] at run time: any TCP dependency of the target (an HTTP API, a TTS
engine) as a Service, so that the run, its fault proxies and every fault treat it like Redis.

- `command`: started by signoff on a free loopback port ("{port}" in it), in the claims file's
  folder, with the target's environment ([target].env, PYTHONPATH from [target].pythonpath,
  the target interpreter's folder first on PATH); "python" as its first word is the target's
  interpreter. A `LocalServer` like redis-server: `kill` SIGKILLs it with its children,
  `restart` starts it again on the same port. Its output goes to `dependency-<name>.log` in
  the run's report folder.
- `url`: one already running on loopback. Pinged, never killed (a `kill` fault is emulated by
  the proxy, as for a Redis given by URL) nor stopped.
- Ready (and answering, for every ping after): `ready = "tcp"` accepts a TCP connection;
  `ready = "GET /health"` answers 2xx over plain HTTP. A dependency that exits or is not ready
  within its `startup` raises ServiceError with the tail of its log.
- A Service's `name` and `url_env` belong to its class (one class per kind of service), so each
  dependency gets a class of its own, made by `dependency_service`.
"""

from __future__ import annotations

import http.client
import os
import shlex
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from signoff.claims.types import split_host_port, split_request
from signoff.errors import ServiceError
from signoff.services.base import LocalServer, NotReady, Service, remaining
from signoff.services.redis import format_host
from signoff.services.start import start_services, stop_services
from signoff.services.url import UrlService

if TYPE_CHECKING:
    from signoff.claims.model import ClaimsFile, Dependency

PROBE_TIMEOUT = 1.0  # one readiness probe at most this long while waiting for the start
POLL_PAUSE = 0.05


@dataclass(frozen=True)
class Surroundings:
    """Where a dependency's command runs: the target's interpreter, the whole environment of
    the process, the claims file's folder, and the folder its log goes to."""

    python: str
    env: Mapping[str, str]
    cwd: Path
    log_dir: Path

    @classmethod
    def of(cls, claims: ClaimsFile, log_dir: Path) -> Surroundings:
        """The target's own, as its server and background processes get it (no service
        address: a dependency is started beside the services, not after them)."""
        target = claims.target
        env = {**os.environ, **target.env}
        folders = [str(p) for p in target.pythonpath]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*folders, env.get("PYTHONPATH")]))
        env["PATH"] = os.pathsep.join([str(target.python.parent), env.get("PATH", os.defpath)])
        env.setdefault("PYTHONUNBUFFERED", "1")
        return cls(str(target.python), env, claims.path.parent, log_dir)


class DependencyService(Service):
    """What every dependency shares: its address as the target spells it, and a readiness
    probe as its ping. `spec` is its [target.dependencies.NAME] table."""

    name: ClassVar[str] = "dependency"
    url_env: ClassVar[str] = ""
    spec: Dependency

    def url_for(self, host: str, port: int) -> str:
        """`address` with {host} and {port} filled in (a fault proxy's, say)."""
        return self.spec.address.replace("{host}", format_host(host)).replace("{port}", str(port))

    def server_version(self, url: str, timeout: float) -> str:
        """One readiness probe of the address in `url` (this dependency's own when `url`
        names none: an address need not be a URL); "tcp" or "HTTP 200". ServiceError if it
        does not answer so."""
        host, port = split_host_port(url)
        if host is None or port is None:
            host, port = self.host, self.port
        if self.spec.ready == "tcp":
            return self._tcp(host, port, timeout)
        return self._request(host, port, timeout)

    def _tcp(self, host: str, port: int, timeout: float) -> str:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return "tcp"
        except OSError as exc:
            raise ServiceError(
                f"{self.name} at {host}:{port} accepts no TCP connection: "
                f"{type(exc).__name__}: {exc}"
            ) from None

    def _request(self, host: str, port: int, timeout: float) -> str:
        # http.client, not httpx: an httpx client loads its TLS context first (~40 ms a ping)
        method, path = split_request(self.spec.ready)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request(method, path)
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise ServiceError(
                f"{self.name} at {host}:{port} did not answer {method} {path}: {why}"
            ) from None
        finally:
            conn.close()
        if not 200 <= status < 300:
            raise ServiceError(
                f"{self.name} at {host}:{port} answered {method} {path} with status {status}"
            )
        return f"HTTP {status}"

    def wait_ready(self, deadline: float, alive: Callable[[], None] | None = None) -> None:
        """Probe until it answers `ready` or `deadline`; NotReady names the last answer.
        `alive()` (optional) raises at once if the process is known to be gone."""
        began = time.monotonic()
        while True:
            if alive is not None:
                alive()
            try:
                self.version = self.server_version(
                    self.url, max(0.05, min(PROBE_TIMEOUT, remaining(deadline)))
                )
                return
            except ServiceError as exc:
                last = str(exc)
            if remaining(deadline) <= 0:
                waited = time.monotonic() - began
                raise NotReady(f"not ready within {waited:.1f} s; the last try: {last}")
            time.sleep(min(POLL_PAUSE, remaining(deadline)))


class DependencyServer(DependencyService, LocalServer):
    """A dependency started by signoff from its `command`."""

    role: ClassVar[str] = "dependency"

    def __init__(self, spec: Dependency, where: Surroundings) -> None:
        assert spec.command is not None
        self.spec = spec
        self.where = where
        self.words = shlex.split(spec.command)
        if self.words[0] == "python":
            self.words[0] = where.python
        super().__init__("command", Path(self.words[0]))
        where.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = where.log_dir / f"dependency-{self.name}.log"
        self.log_path.unlink(missing_ok=True)  # a reused report folder's: not this run's

    def argv(self) -> list[str]:
        return [word.replace("{port}", str(self.port)) for word in self.words]

    def spawn_options(self) -> dict[str, Any]:
        # its temp files go with the temp folder every LocalServer has, when it stops
        env = {**self.where.env, "TMPDIR": str(self.tmpdir)}
        return {"env": env, "cwd": self.where.cwd}

    def describe(self) -> str:
        return "command"

    def ping(self, timeout: float = 2.0) -> None:
        """A readiness probe; a process that has ended says so with its status and log."""
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            raise ServiceError(
                f"{self.name} exited with status {proc.returncode}; {self._log_excerpt()}"
            )
        super().ping(timeout)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines it wrote, a run of one line once with its count: a server logs
        every readiness probe, and a tail of fifteen "GET /health 503" says less than one."""
        runs = [
            (line, len(list(same))) for line, same in groupby(super().log_tail(1000).splitlines())
        ]
        return "\n".join(line if n == 1 else f"{line}  [{n} times]" for line, n in runs[-lines:])


class DependencyUrl(DependencyService, UrlService):
    """A dependency given by `url`, already running on loopback: not ours to kill or stop."""

    def __init__(self, spec: Dependency) -> None:
        assert spec.url is not None
        self.spec = spec
        host, port = split_host_port(spec.url)
        assert host is not None and port is not None, "the claims model checked the url"
        super().__init__(f"http://{format_host(host)}:{port}")

    @property
    def url(self) -> str:
        return self.url_for(self.host, self.port)

    def describe(self) -> str:
        return "url"


S = TypeVar("S", bound=DependencyService)


def _named(base: type[S], name: str, spec: Dependency) -> type[S]:
    named: type[S] = type(base.__name__, (base,), {"name": name, "url_env": spec.env})
    return named


def dependency_service(name: str, spec: Dependency, where: Surroundings) -> DependencyService:
    """The dependency `name`, not started yet (`start_dependency` starts it)."""
    if spec.command is not None:
        return _named(DependencyServer, name, spec)(spec, where)
    return _named(DependencyUrl, name, spec)(spec)


def start_dependency(
    name: str, spec: Dependency, where: Surroundings, deadline: float
) -> DependencyService:
    """`name` started (or found, for a url) and answering `ready`, within its `startup` and
    `deadline` (a time.monotonic() value); ServiceError naming it, with its log's tail."""
    service = dependency_service(name, spec, where)
    began = time.monotonic()
    until = min(deadline, began + spec.startup)
    try:
        if isinstance(service, DependencyServer):
            service.start(until)
        else:
            service.wait_ready(until)
    except ServiceError as exc:
        what = f"`{spec.command}`" if spec.command is not None else f"at {spec.url}"
        raise ServiceError(f"dependency {name} ({what}): {exc}") from None
    except OSError as exc:  # the command's program does not exist or cannot run
        raise ServiceError(f"dependency {name}: could not start `{spec.command}`: {exc}") from None
    service.startup_s = time.monotonic() - began
    return service


class _Starting:
    """One dependency being started in a thread of its own."""

    def __init__(self, name: str, spec: Dependency, where: Surroundings, deadline: float) -> None:
        self.name = name
        self.service: DependencyService | None = None
        self.problem: str | None = None
        self.abandoned = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(
            target=self._run,
            args=(spec, where, deadline),
            name=f"signoff-start-{name}",
            daemon=True,
        )

    def _run(self, spec: Dependency, where: Surroundings, deadline: float) -> None:
        started = time.monotonic()
        try:
            service = start_dependency(self.name, spec, where, deadline)
        except Exception as exc:
            self.problem = str(exc)
            return
        service.startup_s = time.monotonic() - started
        with self.lock:
            keep = not self.abandoned
            if keep:
                self.service = service
        if not keep:  # the caller gave up on us meanwhile: nobody else will stop it
            service.stop()

    def abandon(self) -> DependencyService | None:
        with self.lock:
            self.abandoned = True
            return self.service


class DependencyStarts:
    """The dependencies of a run being started, in parallel, while the caller starts the
    services: `wait()` for them, or `abandon()` them."""

    def __init__(
        self, dependencies: Mapping[str, Dependency], where: Surroundings, deadline: float
    ) -> None:
        self.deadline = deadline
        self.starting = [_Starting(n, spec, where, deadline) for n, spec in dependencies.items()]
        for start in self.starting:
            start.thread.start()

    def wait(self) -> dict[str, Service]:
        """Every dependency, answering. ServiceError (a line per one that did not start, the
        others stopped) otherwise."""
        try:
            for start in self.starting:
                start.thread.join(max(0.0, self.deadline - time.monotonic()))
        except BaseException:
            self.abandon()
            raise
        started: dict[str, Service] = {
            s.name: svc for s in self.starting if (svc := s.abandon()) is not None
        }
        failed = [s for s in self.starting if s.name not in started]
        if failed:
            stop_services(started)
            raise ServiceError(
                "\n".join(
                    s.problem or f"dependency {s.name}: still starting when the time ran out"
                    for s in failed
                )
            )
        return started

    def abandon(self) -> None:
        """Stop those started; those still starting stop themselves once they are."""
        stop_services({s.name: svc for s in self.starting if (svc := s.abandon()) is not None})


def start_with_dependencies(
    names: Sequence[str],
    dependencies: Mapping[str, Dependency],
    where: Surroundings,
    *,
    backend: str = "auto",
    timeout: float = 60.0,
) -> dict[str, Service]:
    """The services `names` (as `start_services` starts them) and the dependencies, all in
    parallel, in one mapping by name. ServiceError if any could not start (the others are
    stopped then). Never waits longer than `timeout` overall."""
    deadline = time.monotonic() + timeout
    starts = DependencyStarts(dependencies, where, deadline)
    try:
        services = start_services(names, backend=backend, timeout=timeout)
    except BaseException:
        starts.abandon()
        raise
    try:
        found = starts.wait()
    except BaseException:
        stop_services(services)
        raise
    return {**services, **found}
