"""Postgres: how to reach and ping it, and how to run it (system and embedded backends).

Postgres refuses to run as root. When we are root, initdb and postgres run as nobody/nogroup,
with the data and socket folders owned by nobody.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import psycopg

from signoff import processes
from signoff.errors import ServiceError
from signoff.services.base import (
    LocalServer,
    Service,
    Unavailable,
    remaining,
    unprivileged_ids,
    usable_by,
)
from signoff.services.redis import format_host, where


def libpq_url(url: str) -> str:
    """SQLAlchemy-style "postgresql+psycopg://" to what libpq accepts."""
    return re.sub(r"^postgres(?:ql)?\+[\w-]+://", "postgresql://", url)


@contextlib.contextmanager
def _watchdog(conn: psycopg.Connection[Any], timeout: float) -> Iterator[None]:
    """Bound a query on an open connection: after `timeout`, shut the socket down, which wakes
    the waiting client with an error. (statement_timeout is enforced by the server, so it does
    not help when the server itself is stopped.)"""
    fd = conn.pgconn.socket

    def cut() -> None:
        with contextlib.suppress(OSError):
            sock = socket.socket(fileno=os.dup(fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()  # before the caller closes the connection and its fd can be reused


class PostgresProtocol(Service):
    """What every Postgres service shares: its URL and a real round trip."""

    name: ClassVar[str] = "postgres"
    container_port: ClassVar[int] = 5432
    url_env: ClassVar[str] = "DATABASE_URL"

    def url_for(self, host: str, port: int) -> str:
        return f"postgresql://postgres@{format_host(host)}:{port}/postgres"

    def server_version(self, url: str, timeout: float) -> str:
        timeout = max(0.1, timeout)
        try:
            # libpq's connect_timeout is whole seconds, at least 2
            conn = psycopg.connect(
                libpq_url(url),
                connect_timeout=max(2, math.ceil(timeout)),
                options=f"-c statement_timeout={max(1, int(timeout * 1000))}",
                autocommit=True,
            )
        except psycopg.Error as exc:
            raise ServiceError(
                f"postgres at {where(url)} did not answer: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        try:
            with _watchdog(conn, timeout):
                row = conn.execute("SHOW server_version").fetchone()
        except psycopg.Error as exc:
            raise ServiceError(
                f"postgres at {where(url)} did not answer a query within {timeout:g}s: "
                f"{type(exc).__name__}: {_first_line(exc)}"
            ) from None
        finally:
            conn.close()
        # "15.18 (Debian 15.18-0+deb12u1)" -> "15.18"
        return str(row[0]).split()[0] if row else "unknown"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


class PostgresServer(PostgresProtocol, LocalServer):
    """postgres run by us: initdb'd into a temp folder, trust auth for user "postgres", no
    durability (fsync off), listening on loopback only; as nobody when we are root."""

    role: ClassVar[str] = "postgres"
    shutdown_signal: ClassVar[int] = signal.SIGINT  # fast shutdown: SIGTERM waits for clients
    port_in_use_markers: ClassVar[tuple[str, ...]] = ("Address already in use", "could not bind")

    def __init__(self, backend: str, bindir: Path) -> None:
        super().__init__(backend, bindir / "postgres")
        self.initdb = bindir / "initdb"
        self.datadir = self.tmpdir / "data"
        self.sockdir = self.tmpdir / "sock"
        self.ids = unprivileged_ids()

    def spawn_options(self) -> dict[str, Any]:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}
        if self.ids is None:
            return {"env": env}
        uid, gid = self.ids
        return {"env": env, "user": uid, "group": gid, "extra_groups": []}

    def prepare(self, deadline: float) -> None:
        self.sockdir.mkdir()
        if self.ids is not None:
            for path in (self.tmpdir, self.sockdir):
                os.chown(path, *self.ids)
        argv = [
            str(self.initdb), "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8", "--locale=C",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            proc = processes.spawn(
                argv,
                role="initdb",
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmpdir,
                **self.spawn_options(),
            )
        try:
            status = proc.wait(timeout=max(0.1, remaining(deadline)))
        except subprocess.TimeoutExpired:
            processes.kill(proc)
            raise ServiceError(f"initdb did not finish in time; {self._log_excerpt()}") from None
        processes.forget(proc)
        if status != 0:
            raise ServiceError(f"initdb failed with status {status}; {self._log_excerpt()}")

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "-D", str(self.datadir),
            "-p", str(self.port),
            "-h", "127.0.0.1",
            "-k", str(self.sockdir),
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
            "-c", "listen_addresses=127.0.0.1",
        ]  # fmt: skip

    def clear_stale_state(self) -> None:
        """Postgres takes a lock file whose pid is alive (a zombie, a reused pid, a process it
        may not signal) for a running postmaster and refuses to start. Every process of ours
        is gone by now, so such a pid is not ours: drop the file. When the pid is really gone
        the file stays, and postgres itself clears it and the old shared memory segment."""
        for lock in (self.datadir / "postmaster.pid", self.sockdir / f".s.PGSQL.{self.port}.lock"):
            try:
                pid = abs(int(lock.read_text().split("\n", 1)[0].strip()))
            except (OSError, ValueError):
                continue
            if pid and psutil.pid_exists(pid):
                lock.unlink(missing_ok=True)


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin", path)
    return tuple(int(x) for x in match.group(1).split(".") if x) if match else (0,)


def _check_runnable(bindir: Path) -> Path:
    """The binaries can be read by the user postgres will run as, and really start (a missing
    shared library shows here, not halfway through a run)."""
    ids = unprivileged_ids()
    if ids is not None:
        for exe in ("postgres", "initdb"):
            if not usable_by(bindir / exe, *ids):
                raise Unavailable(f"{bindir / exe} cannot be run by the unprivileged user")
    as_user: dict[str, Any] = (
        {"user": ids[0], "group": ids[1], "extra_groups": []} if ids is not None else {}
    )
    try:
        probe = subprocess.run(
            [str(bindir / "initdb"), "--version"],
            capture_output=True,
            text=True,
            timeout=20,
            cwd="/",
            **as_user,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{bindir / 'initdb'} does not run: {exc}") from None
    if probe.returncode != 0:
        raise Unavailable(f"{bindir / 'initdb'} does not run: {probe.stderr.strip()[-300:]}")
    return bindir


def system_bindir() -> Path:
    """postgres and initdb on PATH (side by side), else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("postgres")
    if found is not None:
        bindir = Path(found).resolve().parent
        if (bindir / "initdb").is_file() and not bindir.is_relative_to(Path(sys.prefix).resolve()):
            return _check_runnable(bindir)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        bindir = Path(candidate)
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return _check_runnable(bindir)
    raise Unavailable("no postgres and initdb on PATH or under /usr/lib/postgresql/*/bin")


_copy_lock = threading.Lock()


def _readable_copy(pginstall: Path) -> Path:
    """pgserver's tree copied (once per installed version) to the temp dir, readable by all.

    Used when we are root and the wheel sits where nobody cannot reach it (a venv under
    /root, or tox's .tox, mode 700): postgres must run as nobody, so it needs binaries nobody
    can read. The binaries find their shared libraries through an RPATH of
    $ORIGIN/../../../pgserver.libs, so the copy keeps that layout: <copy>/pgserver/pginstall
    beside <copy>/pgserver.libs."""
    stamp = f"{pginstall.resolve()}:{(pginstall / 'bin' / 'postgres').stat().st_mtime_ns}"
    key = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"signoff-pgserver-{key}-v2"
    installed = target / "pgserver" / "pginstall"
    with _copy_lock:
        if (installed / "bin" / "postgres").is_file():
            return installed
        staging = target.with_name(f"{target.name}.{os.getpid()}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(pginstall, staging / "pgserver" / "pginstall", symlinks=True)
        libs = pginstall.parent.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "pgserver.libs", symlinks=True)
        for root, dirs, files in os.walk(staging):
            for name in [*dirs, *files]:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    mode = os.stat(path).st_mode
                    os.chmod(path, mode | 0o044 | (0o011 if mode & 0o100 else 0))
            os.chmod(root, 0o755)
        (staging / SOURCE_FILE).write_text(str(pginstall.resolve()))
        try:
            os.rename(staging, target)
        except OSError:  # another harness made it first
            shutil.rmtree(staging, ignore_errors=True)
        _prune_copies(keep=target)
    return installed


SOURCE_FILE = "source"  # in a copy: the pginstall it was copied from


def _prune_copies(keep: Path) -> None:
    """Remove the copies of pgserver trees that are gone (a deleted venv or clone): each is
    34 MB, and nothing else would ever remove them."""
    for copy in keep.parent.glob("signoff-pgserver-*-v2"):
        source = copy / SOURCE_FILE
        if copy == keep or copy.is_symlink() or not source.is_file():
            continue
        with contextlib.suppress(OSError):
            if copy.stat().st_uid != os.getuid():
                continue  # not made by this user: never removed
            if not Path(source.read_text().strip()).is_dir():
                shutil.rmtree(copy)


def embedded_bindir() -> Path:
    """pgserver's pginstall/bin (found without importing pgserver, whose import has effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("the pgserver wheel is not installed")
    pginstall = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not all((pginstall / "bin" / exe).is_file() for exe in ("postgres", "initdb")):
        raise Unavailable(f"pgserver has no postgres/initdb under {pginstall / 'bin'}")
    ids = unprivileged_ids()
    if ids is not None and not all(
        usable_by(pginstall / "bin" / exe, *ids) for exe in ("postgres", "initdb")
    ):
        pginstall = _readable_copy(pginstall)
    return _check_runnable(pginstall / "bin")


def start_system(deadline: float) -> PostgresServer:
    server = PostgresServer("system", system_bindir())
    server.start(deadline)
    return server


def start_embedded(deadline: float) -> PostgresServer:
    server = PostgresServer("embedded", embedded_bindir())
    server.start(deadline)
    return server
