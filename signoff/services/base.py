"""The one interface every service offers, whatever backend runs it.

A concrete service is a protocol half (how to reach and ping Redis or Postgres: `redis.py`,
`postgres.py`) combined with a backend half (how the server runs and how it is killed, frozen
and restarted: `LocalServer` here for servers we run as processes, `docker.py`, `url.py`).
Each module adds only its difference, in the style of testcontainers-python.

Processes go through `signoff.processes.spawn` (not pytest-redis or mirakuru executors, which
would start them with their own Popen and escape the harness's pidfiles and reaping).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import psutil

from signoff import processes
from signoff.errors import ServiceError

LOOPBACK = "127.0.0.1"


class Unavailable(ServiceError):
    """This backend cannot be used here at all (no binary, no engine, no URL): try the next."""


class NotReady(ServiceError):
    """The server did not answer a ping before the deadline."""


class PortInUse(ServiceError):
    """The server could not bind its port: another process took it between our probe and bind."""


def remaining(deadline: float) -> float:
    """Seconds left until `deadline` (a time.monotonic() value), never negative."""
    return max(0.0, deadline - time.monotonic())


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:`port` can be bound now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def on_a_free_port(
    service: Service, launch: Callable[[float], None], deadline: float, attempts: int = 3
) -> None:
    """Give `service` a free port and `launch(deadline)` it there; on PortInUse (another
    process took the port between our probe and the server's bind) again on another."""
    for attempt in range(attempts):
        service.port = free_port()
        try:
            launch(deadline)
            return
        except PortInUse:
            if attempt == attempts - 1:
                raise


def unprivileged_ids() -> tuple[int, int] | None:
    """(uid, gid) to run servers as when we are root (nobody/nogroup), else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def usable_by(path: Path, uid: int, gid: int, need: int = 0o5) -> bool:
    """Whether user uid/gid can traverse every folder down to `path` and has `need` on it
    (0o5: read and execute; 0o1: execute only). Root ignores modes, so os.access cannot say."""
    path = path.resolve()
    for step in [*reversed(path.parents), path]:
        try:
            st = step.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bits = (st.st_mode >> 6) & 0o7
        elif st.st_gid == gid:
            bits = (st.st_mode >> 3) & 0o7
        else:
            bits = st.st_mode & 0o7
        wanted = need if step == path else 0o1
        if bits & wanted != wanted:
            return False
    return True


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process ended (zombies count as ended). Returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not _gone(p)]
    return alive


def _signal(proc: psutil.Process, sig: int) -> None:
    # psutil checks the pid still belongs to the process we listed (no pid-reuse accidents)
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)


class Service(ABC):
    """A Redis or Postgres server the harness can reach, and, if it owns it, fault."""

    name: ClassVar[str]
    """Which service: "redis", "postgres", or a dependency's name (a class of its own each)."""
    url_env: ClassVar[str]
    """The environment variable that hands a target process its address: "REDIS_URL"."""

    def __init__(self, backend: str) -> None:
        self.backend: str = backend
        self.version: str = ""
        self.host: str = LOOPBACK
        self.port: int = 0
        self.startup_s: float = 0.0  # seconds start_services took to get it answering

    # -- the protocol half (redis.py / postgres.py) -----------------------------------------
    @abstractmethod
    def url_for(self, host: str, port: int) -> str:
        """This service's URL with another address (a fault proxy in front of it, say)."""

    @abstractmethod
    def server_version(self, url: str, timeout: float) -> str:
        """One real round trip to `url`; the server's version. ServiceError if no answer."""

    # -- shared ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.url_for(self.host, self.port)

    def describe(self) -> str:
        """Backend and server version, as the report shows them: "embedded 6.2.14"."""
        return f"{self.backend} {self.version}".strip()

    def ping(self, timeout: float = 2.0) -> None:
        """A real round trip (PING / SELECT 1); ServiceError if the server does not answer."""
        self.server_version(self.url, timeout)

    def pids(self) -> list[int]:
        """The server's processes on this machine that we own (leader first); [] if none."""
        return []

    def wait_ready(self, deadline: float, alive: Callable[[], None] | None = None) -> None:
        """Poll ping with short timeouts until it answers or `deadline`. `alive()` (optional)
        raises if the server is known to be gone, so a crash is reported at once."""
        last: ServiceError | None = None
        while True:
            if alive is not None:
                alive()
            left = remaining(deadline)
            if left < 0.05 and last is not None:
                raise NotReady(
                    f"{self.name} did not answer on {self.host}:{self.port} in time ({last})"
                )
            try:
                self.version = self.server_version(self.url, max(0.05, min(1.0, left)))
                return
            except ServiceError as exc:
                last = exc
            time.sleep(min(0.05, remaining(deadline)))

    # -- the backend half --------------------------------------------------------------------
    @property
    @abstractmethod
    def can_kill(self) -> bool:
        """Whether kill/restart/freeze work (False for a server we did not start)."""

    @abstractmethod
    def kill(self) -> None:
        """SIGKILL the server now, with all its processes; existing connections drop."""

    @abstractmethod
    def restart(self, timeout: float = 30.0) -> None:
        """Start it again on the same port after kill; return once ping answers."""

    @abstractmethod
    def freeze(self) -> None:
        """SIGSTOP the server and every child: new and existing connections hang."""

    @abstractmethod
    def thaw(self) -> None:
        """SIGCONT everything freeze stopped. Always safe to call."""

    @abstractmethod
    def stop(self) -> None:
        """Stop for good: thaw, end the processes, remove temp dirs. Idempotent."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.describe()} {self.host}:{self.port}>"


class LocalServer(Service):
    """A server binary run as a child process on a free loopback port (system and embedded
    backends). Subclasses give the argv, and optionally a preparation step (initdb), the
    user to run as, and a clean-up of stale state before a restart."""

    role: ClassVar[str]
    """Role recorded in the pidfile: "redis-server" | "postgres"."""
    shutdown_signal: ClassVar[int] = signal.SIGTERM
    port_in_use_markers: ClassVar[tuple[str, ...]] = ("Address already in use",)

    def __init__(self, backend: str, binary: Path) -> None:
        super().__init__(backend)
        self.binary = binary
        self.tmpdir = processes.temp_folder(f"signoff-{self.name}-")  # reaped after a kill -9
        self.log_path = self.tmpdir / f"{self.name}.log"
        self._proc: subprocess.Popen[Any] | None = None
        self._frozen: list[psutil.Process] = []
        self._closed = False

    # -- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def argv(self) -> list[str]:
        """The server's command line for `self.port`."""

    def spawn_options(self) -> dict[str, Any]:
        """Extra Popen arguments (user, group, env; cwd instead of the temp folder)."""
        return {}

    def prepare(self, deadline: float) -> None:
        """Once, before the first start (initdb)."""

    def clear_stale_state(self) -> None:
        """Before a restart, after every old process is gone (stale lock files)."""

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, deadline: float, attempts: int = 3) -> None:
        """Prepare, pick a free port and start; on EADDRINUSE retry with another port."""
        try:
            self.prepare(deadline)
            on_a_free_port(self, self._launch, deadline, attempts)
        except BaseException:
            self.stop()
            raise

    def _launch(self, deadline: float) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"--- signoff: starting {self.name} on port {self.port}\n".encode())
            log.flush()
            self._proc = processes.spawn(
                self.argv(),
                role=self.role,
                stdout=log,
                stderr=subprocess.STDOUT,
                **{"cwd": self.tmpdir, **self.spawn_options()},
            )
        try:
            self.wait_ready(deadline, self._check_alive)
        except NotReady as exc:
            self._kill_processes()
            raise ServiceError(f"{exc}; {self._log_excerpt()}") from None

    def _check_alive(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        processes.forget(proc)
        tail = self.log_tail()
        if any(marker in tail for marker in self.port_in_use_markers):
            raise PortInUse(f"{self.name}: port {self.port} already in use")
        raise ServiceError(
            f"{self.binary.name} exited with status {proc.returncode} before answering on "
            f"{self.host}:{self.port}; {self._log_excerpt()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server wrote (its stdout and stderr go to `log_path`)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 4000))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _log_excerpt(self) -> str:
        tail = self.log_tail()
        return f"log tail ({self.log_path}):\n{tail}" if tail else f"log {self.log_path} is empty"

    def _tree(self) -> list[psutil.Process]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return []
        try:
            leader = psutil.Process(proc.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.Error:
            return []

    def pids(self) -> list[int]:
        return [p.pid for p in self._tree()]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def can_kill(self) -> bool:
        return True

    def _stop_tree(self) -> list[psutil.Process]:
        """SIGSTOP the leader's group, then every descendant, until no new one appears
        (Postgres backends call setsid(), so the postmaster's group does not reach them)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGSTOP)
        stopped: dict[int, psutil.Process] = {}
        for _ in range(20):
            fresh = [p for p in self._tree() if p.pid not in stopped]
            if not fresh:
                break
            for p in fresh:
                _signal(p, signal.SIGSTOP)
                stopped[p.pid] = p
        deadline = time.monotonic() + 1.0
        for p in stopped.values():
            while time.monotonic() < deadline:
                try:
                    if p.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE):
                        break
                except psutil.Error:
                    break
                time.sleep(0.005)
        return list(stopped.values())

    def _kill_processes(self) -> None:
        proc = self._proc
        if proc is None:
            return
        tree = self._stop_tree()
        for p in tree:
            _signal(p, signal.SIGKILL)
        processes.kill(proc)
        wait_gone(tree, timeout=5.0)
        self._frozen = []

    def kill(self) -> None:
        if self._closed:
            raise ServiceError(f"{self.name} was stopped; nothing to kill")
        self._kill_processes()

    def restart(self, timeout: float = 30.0) -> None:
        if self._closed:
            raise ServiceError(f"{self.name} was stopped for good; it cannot be restarted")
        deadline = time.monotonic() + timeout
        if self.running:
            self._kill_processes()
        self.clear_stale_state()
        try:
            self._launch(deadline)
        except PortInUse as exc:
            raise ServiceError(
                f"{self.name} cannot restart on port {self.port}: another process took it "
                f"({exc}); {self._log_excerpt()}"
            ) from None

    def freeze(self) -> None:
        if not self.running:
            raise ServiceError(f"{self.name} is not running; nothing to freeze")
        known = {p.pid for p in self._frozen}
        self._frozen.extend(p for p in self._stop_tree() if p.pid not in known)

    def thaw(self) -> None:
        tree = self._tree()
        for p in [*self._frozen, *tree[1:]]:
            _signal(p, signal.SIGCONT)
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGCONT)
        self._frozen = []

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.thaw()
            proc = self._proc
            if proc is not None:
                tree = self._tree()
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(proc.pid, self.shutdown_signal)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5.0)
                processes.stop(proc)  # the group, SIGKILL if still there; drops the pidfile
                for p in wait_gone(tree, timeout=0.5):
                    _signal(p, signal.SIGCONT)
                    _signal(p, signal.SIGKILL)
                wait_gone(tree, timeout=3.0)
        finally:
            processes.remove_folder(self.tmpdir)
