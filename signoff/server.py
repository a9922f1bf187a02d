"""The served target: the target's HTTP server and its background processes, once per run.

Started lazily by the first claim that needs it ([[http]] now, [[load]] later) through
`target_server(ctx)`, and stopped by `stop_target_server(ctx)` when the run finishes.

- The server reaches each service through a SERVER-LEVEL fault proxy (one per service, from
  the run's ProxyHub), and the background processes through proxies of their own
  (`server.background_proxies`), so a claim puts its fault on both for its own duration, the
  server sees it like production would, and what met the fault is counted apart: a worker
  polling its broker meets every redis fault whatever the request did.
- An app served by `serve_app.py` logs its connect attempts to `server-connects.log` (see
  `_signoff_connects.py`): a refused or blackholed connect never reaches the proxy, so this is
  how a claim tells whether the server tried. A `command` server has no such log.
- `app = "module:attr"`: `serve_app.py` (a stdlib-only launcher) is run by the target's own
  interpreter and serves the app on a socket signoff bound beforehand on 127.0.0.1 (no race
  for the port): ASGI with uvicorn, WSGI with uvicorn's WSGI interface (or wsgiref when the
  installed uvicorn has none). `command = "... {port} ..."`: split like a shell would (no
  shell runs), "{port}" replaced by a free loopback port.
- Every target process gets the target's environment: `[target].env`, REDIS_URL/DATABASE_URL
  (through the proxies), PYTHONPATH (`[target].pythonpath` first), and the folder of the
  target's interpreter first on PATH (as an activated virtualenv has it, so `gunicorn` or
  `celery` of the target's environment are found). They run in the claims file's folder.
- Readiness: `ready` is polled until it answers 2xx, within `startup`. A server that exits or
  never answers raises ServerError with the tail of its log; the failure is remembered, so the
  next claims fail at once with the same reason instead of waiting again.
- Logs: `server.log`, `background-N.log` (and `server-connects.log`) in the run's report folder.
- A server that died during a claim is started again for the next claim (the log says so).
- Every process goes through `signoff.processes.spawn` and is stopped with `processes.stop`.
- `memory_limit`: the server and the background processes run in ONE memory cgroup with that
  limit (`signoff.cgroup`; the limit is theirs together, as a container's), made at the first
  start and removed when the run ends. When no cgroup can be made, the start fails with the
  reason. A process the limit killed is reported as such ("the server was killed by its memory
  limit (OOM, 256 MB; peak 255.9 MB)") wherever an exit is reported (`exit_words`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from signoff import _signoff_connects as connect_log
from signoff import cgroup, processes
from signoff.claims.model import Server
from signoff.context import RunContext
from signoff.errors import ServiceError
from signoff.faults.proxy import FaultProxy
from signoff.services.base import LOOPBACK, free_port
from signoff.verdict import Verdict

SERVE_SCRIPT = Path(__file__).with_name("serve_app.py")
LAUNCH_MARKER = "signoff-serve: "
STOP_GRACE = 5.0  # SIGTERM, then SIGKILL after this (uvicorn's graceful shutdown takes 2 s)
POLL_PAUSE = 0.05
POLL_TIMEOUT = 2.0  # one readiness request at most this long
LOG_TAIL_BYTES = 6000
EVIDENCE_TAIL_LINES = 12


class ServerError(ServiceError):
    """The target's server could not be started, or does not answer. `log_tail` holds the last
    lines it wrote."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail

    def evidence(self) -> str:
        """The message and the last lines of the log, as a verdict's evidence."""
        lines = [line for line in self.log_tail.splitlines() if line.strip()]
        if not lines:
            return self.message
        # the last line first: a traceback's exception, a server's last words
        return (
            f"{self.message}; its last line: {lines[-1].strip()}\nlast lines of its log:\n"
            + "\n".join(lines[-EVIDENCE_TAIL_LINES:])
        )


def log_tail(path: Path, since: int = 0, limit: int = LOG_TAIL_BYTES) -> str:
    """The end of a log file (at most `limit` bytes, from byte `since` on)."""
    try:
        with open(path, "rb") as log:
            end = log.seek(0, os.SEEK_END)
            log.seek(max(since, end - limit))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return text.strip("\n")


class Background:
    """One [target].background process."""

    def __init__(self, index: int, command: str, log_path: Path) -> None:
        self.index = index
        self.command = command
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"background {self.index} ({self.command})"

    def start(self, env: dict[str, str], cwd: str, group: cgroup.MemoryGroup | None) -> None:
        argv = shlex.split(self.command)
        if group is not None:
            argv = group.launcher(argv)
        with open(self.log_path, "ab") as log:
            log.write(f"--- signoff: starting {self.command}\n".encode())
            log.flush()
            try:
                self.proc = processes.spawn(
                    argv,
                    role=f"background-{self.index}",
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                )
            except OSError as exc:
                raise ServerError(f"could not start {self.name}: {exc}") from None

    def exited(self) -> int | None:
        """Its exit status if it has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc, grace=STOP_GRACE)


class TargetServer:
    """The target's server (and background processes) for one run. See the module's doc."""

    def __init__(self, ctx: RunContext) -> None:
        server = ctx.claims.target.server
        if server is None:
            raise ServerError("the claims file has no [target.server]: nothing to serve")
        self.ctx = ctx
        self.spec: Server = server
        self.log_dir = ctx.report_dir
        self.log_path = self.log_dir / "server.log"
        self.proxies: dict[str, FaultProxy] = {}
        self.background_proxies: dict[str, FaultProxy] = {}
        self.connects_path: Path | None = (
            self.log_dir / "server-connects.log" if server.app is not None else None
        )
        self.background = [
            Background(i, cmd, self.log_dir / f"background-{i}.log")
            for i, cmd in enumerate(ctx.claims.target.background, start=1)
        ]
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.startup_s: float | None = None
        self.failure: ServerError | None = None
        self.restart_note: str | None = None
        self._log_start = 0  # where the current start's lines begin in server.log
        self._env: dict[str, str] | None = None
        self._background_env: dict[str, str] | None = None
        self._blind: list[str] = []
        self._blind_read = 0  # how far connects_blind has read the connect log
        self._stopped = False
        self.group: cgroup.MemoryGroup | None = None  # with [target.server] memory_limit
        self._oom_base = 0  # the group's OOM kills when the current server process started

    # -- what claims use -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        """The server's processes (leader first), for memory figures."""
        if not self.alive or self.proc is None:
            return []
        try:
            leader = psutil.Process(self.proc.pid)
            return [leader.pid, *(p.pid for p in leader.children(recursive=True))]
        except psutil.Error:
            return []

    def describe(self) -> str:
        """How it is served: the launcher's own line for an app, else the command line."""
        if self.spec.command is not None:
            return f"command: {self.spec.command}"
        for line in log_tail(self.log_path, self._log_start).splitlines():
            if line.startswith(LAUNCH_MARKER):
                return line[len(LAUNCH_MARKER) :]
        return f"app {self.spec.app}"

    def log_tail(self) -> str:
        """The last lines of server.log written since the latest start."""
        return log_tail(self.log_path, self._log_start)

    def background_problems(self) -> list[str]:
        """A line per background process that has ended."""
        return [
            f"{bg.name} {self._ended(code, 0)}; see {bg.log_path.name}"
            for bg in self.background
            if (code := bg.exited()) is not None
        ]

    def killed_by_limit(self) -> bool:
        """The server process was SIGKILLed and the OOM killer killed in its group since it
        started: its memory limit killed it."""
        return (
            self.proc is not None
            and self.proc.returncode == -signal.SIGKILL
            and self.group is not None
            and self.group.oom_kills() > self._oom_base
        )

    def take_restart_note(self) -> list[str]:
        """The note that the server died during an earlier claim and was started again, for
        the first claim after it only (an empty list otherwise)."""
        note, self.restart_note = self.restart_note, None
        return [note] if note else []

    def exit_words(self) -> str:
        """How the latest server process ended: "the server exited with status 3", or "the
        server was killed by its memory limit (OOM, 256 MB; peak 255.9 MB)"."""
        code = None if self.proc is None else self.proc.returncode
        return f"the server {self._ended(code, self._oom_base)}"

    def _ended(self, code: int | None, oom_base: int) -> str:
        group = self.group
        if code == -signal.SIGKILL and group is not None and group.oom_kills() > oom_base:
            return f"was killed by its memory limit ({group.oom_words()})"
        return f"exited with status {code}"

    def memory(self) -> cgroup.Usage | None:
        """What the target's memory cgroup holds now (None without memory_limit)."""
        return None if self.group is None else self.group.usage()

    def connects_mark(self) -> int:
        """Where the connect log ends now (0 without one): `connects_since` reads from here."""
        if self.connects_path is None:
            return 0
        try:
            return self.connects_path.stat().st_size
        except OSError:
            return 0

    def connects_since(self, mark: int) -> list[tuple[str, int]]:
        """The connect attempts the server logged after `mark` (whole lines only)."""
        if self.connects_path is None:
            return []
        try:
            with open(self.connects_path, "rb") as log:
                log.seek(mark)
                data = log.read()
        except OSError:
            return []
        text = data[: data.rfind(b"\n") + 1].decode("utf-8", "replace")
        return connect_log.parse(text)[0]

    def connects_blind(self) -> list[str]:
        """What the server imported whose connects the log cannot see (psycopg2, uvloop)."""
        end = self.connects_mark()
        if end > self._blind_read and self.connects_path is not None:
            try:
                with open(self.connects_path, "rb") as log:
                    log.seek(self._blind_read)
                    data = log.read(end - self._blind_read)
            except OSError:
                return self._blind
            data = data[: data.rfind(b"\n") + 1]
            self._blind_read += len(data)
            for name in connect_log.parse(data.decode("utf-8", "replace"))[1]:
                if name not in self._blind:
                    self._blind.append(name)
        return self._blind

    def ensure(self, timeout: float) -> None:
        """Answering on `ready`: started now if it never was, started again if it died since.
        Raises ServerError (the same one again, at once, once a start has failed)."""
        if self._stopped:
            raise ServerError("the target's server was stopped (the run is ending)")
        if self.failure is not None:
            raise self.failure
        if self.alive:
            return
        try:
            if self.proc is not None:
                processes.forget(self.proc)
                ended = self.exit_words()
                self.restart_note = f"{ended} during an earlier claim; restarted"
            self._start(timeout)
        except ServerError as exc:
            self.failure = exc
            self._stop_server()
            raise

    # -- starting and stopping ----------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        """The server's environment (its own proxies); made once."""
        if self._env is None:
            self._env = self._environment_through(self.proxies)
        return self._env

    def _background_environment(self) -> dict[str, str]:
        """The background processes' environment: the same, through their own proxies."""
        if self._background_env is None:
            self._background_env = self._environment_through(self.background_proxies)
        return self._background_env

    def _environment_through(self, proxies: dict[str, FaultProxy]) -> dict[str, str]:
        ctx = self.ctx
        hub = ctx.hub
        if hub is None:
            raise ServerError("the services are not started")
        for name, service in ctx.services.items():
            proxies[name] = hub.proxy((service.host, service.port))
        urls = {name: ctx.services[name].url_for(*proxy.address) for name, proxy in proxies.items()}
        target = ctx.target_process(urls, {})
        env = dict(os.environ)
        env.update(target.env)
        env["PYTHONPATH"] = os.pathsep.join(
            [*target.pythonpath, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
        bindir = os.path.dirname(target.python)
        env["PATH"] = os.pathsep.join([bindir, env.get("PATH", os.defpath)])
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    @property
    def cwd(self) -> str:
        return str(self.ctx.claims.path.parent)

    def _start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self._environment()
        if self.starts == 0 and self.connects_path is not None:
            self.connects_path.unlink(missing_ok=True)  # a reused report folder's old log
        if self.starts == 0 and self.spec.memory_limit is not None:
            self._make_group(self.spec.memory_limit)
        if self.starts == 0 and self.background:
            background_env = self._background_environment()
            for bg in self.background:
                bg.start(background_env, self.cwd, self.group)
        self.starts += 1
        started = time.monotonic()
        self._launch(env)
        self._wait_ready(deadline)
        self.startup_s = time.monotonic() - started
        if self.starts == 1:
            dead = [bg for bg in self.background if bg.exited() is not None]
            if dead:
                bg = dead[0]
                raise ServerError(
                    f"{bg.name} exited with status {bg.exited()} while the server started",
                    log_tail(bg.log_path),
                )

    def _make_group(self, limit: int) -> None:
        made = cgroup.make(limit)
        if isinstance(made, str):
            raise ServerError(
                f"could not run the target under memory_limit = {cgroup.size_words(limit)}: "
                f"no memory cgroup could be made: {made}"
            )
        self.group = made

    def _launch(self, env: dict[str, str]) -> None:
        popen: dict[str, Any] = {}
        listener: socket.socket | None = None
        if self.spec.app is not None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((LOOPBACK, 0))
            listener.listen(1024)
            self.port = listener.getsockname()[1]
            python = str(self.ctx.claims.target.python)
            argv = [python, "-u", str(SERVE_SCRIPT), self.spec.app, str(listener.fileno())]
            if self.connects_path is not None:
                argv.append(str(self.connects_path))
            popen["pass_fds"] = (listener.fileno(),)
        else:
            assert self.spec.command is not None
            self.port = free_port()
            argv = [a.replace("{port}", str(self.port)) for a in shlex.split(self.spec.command)]
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        if self.group is not None:
            argv = self.group.launcher(argv)
            self.group.reset_peak()
            self._oom_base = self.group.oom_kills()
        try:
            with open(self.log_path, "ab") as log:
                log.write(f"--- signoff: starting the server on {LOOPBACK}:{self.port}\n".encode())
                log.flush()
                self.proc = processes.spawn(
                    argv,
                    role="target-server",
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    **popen,
                )
        except OSError as exc:
            raise ServerError(f"could not start the server ({shlex.join(argv)}): {exc}") from None
        finally:
            if listener is not None:
                listener.close()  # the server holds its own copy

    def _wait_ready(self, deadline: float) -> None:
        url = self.url(self.spec.ready)
        last = "no answer yet"
        with httpx.Client(trust_env=False, follow_redirects=False) as client:
            while True:
                proc = self.proc
                if proc is not None and proc.poll() is not None:
                    raise ServerError(
                        f"{self.exit_words()} before GET {self.spec.ready} answered 2xx",
                        self.log_tail(),
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerError(
                        f"the server did not answer 2xx on GET {self.spec.ready} within "
                        f"{self.spec.startup:g} s (last: {last})",
                        self.log_tail(),
                    )
                try:
                    answer = client.get(url, timeout=max(0.05, min(POLL_TIMEOUT, left)))
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                else:
                    if 200 <= answer.status_code < 300:
                        return
                    last = f"status {answer.status_code}"
                time.sleep(min(POLL_PAUSE, max(0.0, deadline - time.monotonic())))

    def _stop_server(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc, grace=STOP_GRACE)

    def stop(self) -> None:
        """Stop the server, then the background processes, then remove their memory cgroup and
        close the proxies. Idempotent."""
        self._stopped = True
        try:
            self._stop_server()
        finally:
            for bg in self.background:
                with contextlib.suppress(Exception):
                    bg.stop()
            if self.group is not None:
                problem = self.group.remove()
                if problem is not None:
                    sys.stderr.write(f"signoff: {problem}\n")
            for proxy in [*self.proxies.values(), *self.background_proxies.values()]:
                proxy.close()


_lock = threading.Lock()
SERVER_KEY = pytest.StashKey[TargetServer]()  # the run's served target, in RunContext.stash


def target_server(ctx: RunContext) -> TargetServer:
    """The run's target server, answering on `ready`: started on the first call, within
    [target.server].startup (and the run's deadline). Raises ServerError."""
    with _lock:
        server = ctx.stash.get(SERVER_KEY, None)
        if server is None:
            server = ctx.stash[SERVER_KEY] = TargetServer(ctx)
    startup = server.spec.startup
    server.ensure(max(0.5, min(startup, ctx.remaining())))
    return server


def server_or_error(ctx: RunContext, verdict: Verdict, started: float) -> TargetServer | None:
    """The served target; or None, with `verdict` made an `error` naming why it did not start
    (its log's tail in the details)."""
    try:
        return target_server(ctx)
    except ServerError as exc:
        verdict.status = "error"
        verdict.evidence = f"could not check: {exc.evidence()}"
        verdict.details = exc.log_tail
        verdict.duration_s = time.monotonic() - started
        return None


def stop_target_server(ctx: RunContext) -> None:
    """Stop what `target_server` started for this run (nothing if it never was)."""
    with _lock:
        server = ctx.stash.get(SERVER_KEY, None)
        if server is not None:
            del ctx.stash[SERVER_KEY]
    if server is not None:
        server.stop()
