"""The docker backend for real: local images, host networking on loopback, faults on
containers, and signoff's own reaping of containers (testcontainers' reaper is off)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from signoff import processes
from signoff.errors import ServiceError, UsageError
from signoff.services import docker as docker_backend
from signoff.services import start_services, stop_services
from signoff.services.images import (
    LABEL_INPUTS,
    POSTGRES_TAG,
    REDIS_TAG,
    Built,
    build_images,
    redis_recipe,
    shared_libraries,
    write_rootfs,
)
from tests.backends import docker_images

__all__ = ["docker_images"]  # the session fixture, imported to be found here

ROOT = Path(__file__).resolve().parents[1]


def _client() -> Any:
    import docker

    return docker.from_env(timeout=30)


def _ours(client: Any) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": docker_backend.LABEL_OWNER}))


# -- no engine needed ------------------------------------------------------------------------------


def test_only_an_engine_on_this_machine_is_used() -> None:
    assert docker_backend.engine_is_local("http+docker://localhost")  # the unix socket
    assert docker_backend.engine_is_local("http://127.0.0.1:2375")
    assert docker_backend.engine_is_local("https://localhost:2376")
    assert not docker_backend.engine_is_local("http://10.0.0.5:2375")
    assert not docker_backend.engine_is_local("https://docker.example.com:2376")


def test_docker_image_option(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in docker_backend.IMAGE_ENV.values():
        monkeypatch.setenv(env, "")  # set_images writes os.environ: undone after the test
    docker_backend.set_images(["redis=redis:7-alpine", " postgres = registry.local/pg:16 "])
    assert os.environ["SIGNOFF_REDIS_IMAGE"] == "redis:7-alpine"
    assert os.environ["SIGNOFF_POSTGRES_IMAGE"] == "registry.local/pg:16"
    for bad in ("redis", "mysql=mysql:8", "redis="):
        with pytest.raises(UsageError, match="SERVICE=IMAGE"):
            docker_backend.set_images([bad])


def test_docker_image_option_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from signoff.cli import main

    for command in (["run"], ["services", "up"], ["load"]):
        assert main([*command, "--docker-image", "mysql=mysql:8"]) == 2
        assert "--docker-image 'mysql=mysql:8': expected SERVICE=IMAGE" in capsys.readouterr().err


def test_redis_rootfs_holds_the_binary_its_libraries_and_a_user() -> None:
    recipe = redis_recipe()
    out = io.BytesIO()
    write_rootfs(recipe, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None
        users = passwd.read().decode()
    assert members["usr/bin/redis-server"].isfile()
    assert members["usr/bin/redis-server"].mode & 0o111
    binary = next(e.source for e in recipe.entries if e.path == "usr/bin/redis-server")
    assert binary is not None
    for library in shared_libraries([binary]):
        assert members[str(library).lstrip("/")].isfile(), library
    assert "redis:x:999:999:" in users
    assert members["tmp"].mode == 0o1777
    # every folder a file needs is in the tar, before it
    names = list(members)
    for name in names:
        parent = str(Path(name).parent)
        assert parent == "." or names.index(parent) < names.index(name), name
    # the same inputs give the same hash; another recipe text another
    assert recipe.inputs_hash() == redis_recipe().inputs_hash()
    recipe.changes.append("ENV X=1")
    assert recipe.inputs_hash() != redis_recipe().inputs_hash()


# -- with an engine --------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_images_are_built_once_and_small(
    docker_images: list[Built], capsys: pytest.CaptureFixture[str]
) -> None:
    assert {b.tag for b in docker_images} == {REDIS_TAG, POSTGRES_TAG}
    for built in docker_images:
        assert 0 < built.size_bytes < 200e6, built.describe()
    again = build_images()  # the same inputs: nothing is built
    assert [b.built for b in again] == [False, False]
    from signoff.cli import main

    assert main(["services", "build-images"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["signoff-redis", "signoff-postgres"]
    assert all(": up to date, " in line and line.endswith(" MB") for line in out), out
    assert [b.size_bytes for b in again] == [b.size_bytes for b in docker_images]
    client = _client()
    try:
        for built in again:
            assert len(client.images.get(built.tag).labels[LABEL_INPUTS]) == 64
        assert not client.images.list(name="signoff-postgres:rootfs")  # the build's step is gone
    finally:
        client.close()


@pytest.fixture
def docker_pair(docker_images: list[Built]) -> Iterator[dict[str, Any]]:
    services = start_services(["redis", "postgres"], backend="docker", timeout=60)
    try:
        yield services
    finally:
        stop_services(services)


@pytest.mark.docker
@pytest.mark.slow
def test_containers_run_on_the_host_network_on_loopback(docker_pair: dict[str, Any]) -> None:
    client = _client()
    try:
        for name, service in docker_pair.items():
            assert service.backend == "docker" and service.image == f"signoff-{name}:local"
            attrs = client.containers.get(service._wrapped().id).attrs
            assert attrs["HostConfig"]["NetworkMode"] == "host"
            assert not attrs["NetworkSettings"]["Ports"]  # nothing published
            labels = attrs["Config"]["Labels"]
            assert labels[docker_backend.LABEL_OWNER] == str(os.getpid())
            assert labels[docker_backend.LABEL_RUN] == docker_backend.RUN_ID
            assert service.url.startswith(
                ("redis://127.0.0.1:", "postgresql://postgres@127.0.0.1:")
            )
            assert service.pids(), "docker top lists the server's processes"
        assert redis.Redis.from_url(docker_pair["redis"].url, socket_timeout=2).ping()
        with psycopg.connect(docker_pair["postgres"].url, connect_timeout=2) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        # a live harness's containers are never reaped
        docker_backend.reap_containers()
        ids = {s._wrapped().id for s in docker_pair.values()}
        assert ids <= {c.id for c in _ours(client)}
    finally:
        client.close()


@pytest.mark.docker
@pytest.mark.slow
def test_kill_restart_and_freeze_work_on_containers(docker_pair: dict[str, Any]) -> None:
    session = redis.Redis.from_url(docker_pair["redis"].url, socket_timeout=0.5)
    assert session.set("k", "v")
    for service in docker_pair.values():
        port = service.port
        service.kill()
        assert service.pids() == []
        with pytest.raises(ServiceError):
            service.ping(timeout=0.5)
        service.restart(timeout=30)
        assert service.port == port
        service.ping()
        service.freeze()
        try:
            container = service._wrapped()
            container.reload()
            assert container.status == "paused"
            with pytest.raises(ServiceError):
                service.ping(timeout=0.5)
        finally:
            service.thaw()
        service.ping()
    assert session.get("k") is None  # a fresh server after the kill: nothing was kept


@pytest.mark.docker
@pytest.mark.slow
def test_stop_removes_the_containers_even_when_frozen(docker_images: list[Built]) -> None:
    services = start_services(["redis", "postgres"], backend="docker", timeout=60)
    ids = {s._wrapped().id for s in services.values()}
    for service in services.values():
        service.freeze()
    stop_services(services)
    client = _client()
    try:
        assert not ids & {c.id for c in _ours(client)}
    finally:
        client.close()


_CHILD = """
import json, sys, time
from signoff.services import start_services
services = start_services(["redis"], backend="docker", timeout=60)
print(json.dumps({"id": services["redis"]._wrapped().id}), flush=True)
if sys.argv[1] == "exit":
    sys.exit(0)  # without stop_services: the exit handler removes it
time.sleep(120)
"""


def _child(mode: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    line = child.stdout.readline()  # bounded by the child's own 60 s start timeout
    if not line:
        child.kill()
        child.wait(10)
        pytest.fail("the child did not start its container")
    return child, str(json.loads(line)["id"])


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("next_start", ["docker", "any backend"])
def test_a_kill_9_harness_leaves_a_container_the_next_start_removes(
    docker_images: list[Built], next_start: str
) -> None:
    client = _client()
    child, container_id = _child("sleep")
    record = processes.state_dir().parent / "containers" / f"{child.pid}.json"
    try:
        assert record.is_file()  # written before the container started
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        time.sleep(0.2)
        left = client.containers.get(container_id)
        assert left.status == "running"  # kill -9: nothing of the harness ran
        if next_start == "docker":
            services = start_services(["redis"], backend="docker", timeout=60)
            stop_services(services)
        else:
            # what every `signoff run` does first, whatever its backend (embedded, system, url)
            reaped = processes.reap_leftovers()
            assert any(f"left by harness pid {child.pid}" in line for line in reaped), reaped
            assert not record.exists()
        assert container_id not in {c.id for c in _ours(client)}
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for leftover in client.containers.list(all=True, filters={"id": container_id}):
            leftover.remove(force=True)
        client.close()


@pytest.mark.docker
@pytest.mark.slow
def test_a_harness_that_exits_without_stopping_leaves_no_container(
    docker_images: list[Built],
) -> None:
    client = _client()
    child, container_id = _child("exit")
    try:
        assert child.wait(30) == 0
        assert container_id not in {c.id for c in _ours(client)}
        # and no record: the next start has nothing to ask the engine about
        assert not (processes.state_dir().parent / "containers" / f"{child.pid}.json").exists()
    finally:
        for leftover in client.containers.list(all=True, filters={"id": container_id}):
            leftover.remove(force=True)
        client.close()


@pytest.mark.docker
@pytest.mark.slow
def test_auto_picks_docker_when_the_engine_answers(docker_images: list[Built]) -> None:
    services = start_services(["redis", "postgres"], timeout=60)
    try:
        assert {s.backend for s in services.values()} == {"docker"}
    finally:
        stop_services(services)


@pytest.mark.docker
@pytest.mark.slow
def test_a_configured_image_the_engine_cannot_get_names_the_way_out(
    docker_images: list[Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_REDIS_IMAGE", "signoff-test-no-such-image:none")
    started = time.monotonic()
    with pytest.raises(ServiceError, match="signoff services build-images") as info:
        start_services(["redis"], backend="docker", timeout=30)
    assert "signoff-test-no-such-image:none failed to start" in str(info.value)
    assert time.monotonic() - started < 25  # the pull's own error, not our timeout
