"""How much memory this process has, and may have: its resident set, and the limit of the
memory cgroup it runs in (v2 memory.max, v1 memory.limit_in_bytes; the smallest along the
path up to the controller's root, since a parent's limit binds its children too), else
MEMORY_LIMIT_BYTES, else the machine's memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

UNLIMITED = 1 << 60  # v1 says 9223372036854771712 for "no limit"
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Limit:
    bytes: int
    source: str  # "cgroup v1 /sys/fs/cgroup/memory/...", "MEMORY_LIMIT_BYTES", "machine"


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def _mounts() -> list[tuple[str, str, str, str]]:
    """(root, mount point, fs type, super options) of every mount of this process."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3:
            found.append((fields[3], fields[4], tail[0], tail[2]))
    return found


def _read_limit(folder: Path, name: str) -> int | None:
    try:
        raw = (folder / name).read_text().strip()
    except OSError:
        return None
    if raw == "max":
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value < UNLIMITED else None


def _smallest_up(mount_root: str, mount_point: str, path: str, name: str) -> Limit | None:
    relative = os.path.relpath(path, mount_root) if path.startswith(mount_root) else path
    folder = Path(mount_point) / relative.lstrip("/").removeprefix(".")
    best: Limit | None = None
    top = Path(mount_point)
    while True:
        value = _read_limit(folder, name)
        if value is not None and (best is None or value < best.bytes):
            best = Limit(value, f"cgroup {folder / name}")
        if folder == top or top not in folder.parents:
            return best
        folder = folder.parent


def cgroup_limit() -> Limit | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    mounts = _mounts()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            for root, point, fstype, options in mounts:
                if fstype == "cgroup" and "memory" in options.split(","):
                    return _smallest_up(root, point, path, "memory.limit_in_bytes")
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            for root, point, fstype, _ in mounts:
                if fstype == "cgroup2":
                    return _smallest_up(root, point, path, "memory.max")
    return None


def machine_memory() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PHYS_PAGES") * PAGE


def memory_limit() -> Limit:
    found = cgroup_limit()
    if found is not None:
        return found
    raw = os.environ.get("MEMORY_LIMIT_BYTES", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return Limit(int(raw), "MEMORY_LIMIT_BYTES")
    return Limit(machine_memory(), "machine")
