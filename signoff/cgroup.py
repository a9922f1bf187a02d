"""Memory cgroups: a memory limit for the served target, as a container would give it.

`make(limit)` makes a group `signoff-<pid>-<random>` with that limit (cgroup v1:
memory.limit_in_bytes, and memory.memsw.limit_in_bytes when it exists so that swap cannot hide
the limit; cgroup v2: memory.max, and memory.swap.max = 0), or returns why it could not (not
root, no memory controller, a read-only cgroup file system, ...): a reason, never an exception.

- Where: under the cgroup signoff itself runs in (its memory controller's line in
  /proc/self/cgroup, under the controller's mount point), or under $SIGNOFF_CGROUP_ROOT (a
  delegated cgroup, or a folder that is none, for tests).
- Entering: `MemoryGroup.launcher(argv)` is argv behind a tiny launcher that writes its own pid
  to the group's cgroup.procs and then execs argv, so the target's code runs in the group from
  its first instruction (a preexec_fn would do the same, but is not safe in a process with
  threads, which the harness has).
- Reading: `usage()`: what the group holds, from its memory.stat: anonymous memory plus shared
  memory (v1 total_rss + total_shmem, v2 anon + shmem), each page counted once however many
  processes map it, page cache left out. Page cache is what the kernel reclaims before it
  OOM-kills, so it is not memory the target holds; shared memory (tmpfs, /dev/shm, a shared
  anonymous mmap) is charged as "cache" but cannot be reclaimed without swap, so it counts. A
  sum of the processes' RSS would count shared and file-backed pages once per process, and miss
  shared memory no process maps any more. Also: everything charged (page cache too), its peak,
  and the OOM killer's kills in the group.
- Removing: `remove()` kills whatever is left in the group and removes it. Every group is
  recorded by `signoff.processes` from the moment it exists, so the next start removes a group
  a killed run left behind (`processes.reap_leftovers`, through `reap`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from signoff import processes

ROOT_ENV = "SIGNOFF_CGROUP_ROOT"
PREFIX = "signoff-"
REMOVE_TIMEOUT = 5.0  # seconds for the processes left in a group to go, and the group with them
ENTER_FAILED = 126  # the launcher's exit status when it could not enter the group

# stdlib only, run with -I -S: argv[1] is the group's cgroup.procs, the rest the command
_ENTER = (
    "import os,sys\n"
    "try:\n"
    " with open(sys.argv[1],'w') as f: f.write(str(os.getpid()))\n"
    "except OSError as e:\n"
    " sys.stderr.write(f'signoff: could not enter the memory cgroup {sys.argv[1]}: {e}\\n')\n"
    f" sys.exit({ENTER_FAILED})\n"
    "try:\n"
    " os.execvp(sys.argv[2],sys.argv[2:])\n"
    "except OSError as e:\n"
    " sys.stderr.write(f'signoff: could not run {sys.argv[2]}: {e}\\n')\n"
    " sys.exit(127)\n"
)


class CgroupError(Exception):
    """No memory cgroup could be made or used; the message is the reason."""


@dataclass(frozen=True)
class Usage:
    """What a group holds now."""

    held: int  # anonymous + shared memory charged to the group: what fractions are judged on
    charged: int  # everything charged to it, page cache included
    peak: int | None  # the most ever charged (v1 max_usage_in_bytes, v2 memory.peak)
    oom_kills: int  # processes the OOM killer killed in the group (memory.failcnt is no
    # substitute: it stayed 0 through OOM kills on a 6.18 kernel's cgroup v1)


def size_words(size: float, like: int | None = None) -> str:
    """A size in the unit family `like` (a limit) is written in: 64 MiB limits have MiB figures,
    256 MB ones MB figures ("255.9 MB"); whole numbers without a decimal."""
    basis = like if like is not None else size
    mib = basis % (1 << 20) == 0 and basis % 1_000_000 != 0
    for unit, factor in (
        (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))
        if mib
        else (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
    ):
        if size >= factor:
            figure = size / factor
            return f"{figure:.0f} {unit}" if figure == int(figure) else f"{figure:.1f} {unit}"
    return f"{size:.0f} B"


class MemoryGroup:
    """One memory cgroup signoff made. See the module's doc."""

    def __init__(self, path: Path, version: int, limit: int) -> None:
        self.path = path
        self.version = version
        self.limit = limit
        self._removed = False

    def __repr__(self) -> str:
        return f"MemoryGroup({str(self.path)!r}, v{self.version}, limit={self.limit})"

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def launcher(self, argv: list[str]) -> list[str]:
        """`argv`, run so that it is in this group before any of its code runs."""
        return [sys.executable, "-I", "-S", "-c", _ENTER, str(self.procs_file), *argv]

    def pids(self) -> list[int]:
        """The processes in the group now (an empty list once it is gone)."""
        return _pids(self.path)

    def usage(self) -> Usage | None:
        """What the group holds now; None when it cannot be read (the group is gone)."""
        try:
            stat = _stat(self.path / "memory.stat")
            if self.version == 1:
                return Usage(
                    held=stat.get("total_rss", 0) + stat.get("total_shmem", 0),
                    charged=_number(self.path / "memory.usage_in_bytes"),
                    peak=_number(self.path / "memory.max_usage_in_bytes"),
                    oom_kills=_stat(self.path / "memory.oom_control").get("oom_kill", 0),
                )
            peak = self.path / "memory.peak"
            return Usage(
                held=stat.get("anon", 0) + stat.get("shmem", 0),
                charged=_number(self.path / "memory.current"),
                peak=_number(peak) if peak.exists() else None,
                oom_kills=_stat(self.path / "memory.events").get("oom_kill", 0),
            )
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        """The OOM killer's kills in the group so far (0 when it cannot be read)."""
        usage = self.usage()
        return 0 if usage is None else usage.oom_kills

    def reset_peak(self) -> None:
        """Start the peak again from what is charged now (v1 only; v2 keeps its peak)."""
        if self.version == 1:
            with contextlib.suppress(OSError):
                (self.path / "memory.max_usage_in_bytes").write_text("0")

    def oom_words(self) -> str:
        """The limit and the most that was charged: "OOM, 256 MB; peak 255.9 MB"."""
        usage = self.usage()
        words = f"OOM, {size_words(self.limit)}"
        if usage is None or usage.peak is None:
            return words
        return f"{words}; peak {size_words(usage.peak, self.limit)}"

    def remove(self, timeout: float = REMOVE_TIMEOUT) -> str | None:
        """Kill what is left in the group, remove it and its record. None, or why it could not
        be removed (the record is kept then, for the next start to try again)."""
        if self._removed:
            return None
        problem = remove_group(self.path, timeout)
        if problem is None:
            self._removed = True
            processes.forget_cgroup(self.path)
        return problem


def make(limit: int, root: Path | None = None) -> MemoryGroup | str:
    """A new memory cgroup limited to `limit` bytes, under `root` ($SIGNOFF_CGROUP_ROOT, or the
    cgroup signoff runs in); or the reason none could be made."""
    try:
        parent = root if root is not None else parent_group()
        return _make(parent, limit)
    except CgroupError as exc:
        return str(exc)


def parent_group() -> Path:
    """Where signoff makes its groups: $SIGNOFF_CGROUP_ROOT, else the cgroup this process is in
    for the memory controller (v1 when a v1 hierarchy has it, else v2). Raises CgroupError."""
    configured = os.environ.get(ROOT_ENV)
    if configured:
        return Path(configured)
    try:
        own = Path("/proc/self/cgroup").read_text()
        mounts = Path("/proc/self/mountinfo").read_text()
    except OSError as exc:
        raise CgroupError(f"cannot read this process's cgroups: {_why(exc)}") from None
    return parent_from(own, mounts)


def parent_from(own: str, mountinfo: str) -> Path:
    """The memory cgroup a process is in, as a folder, from its /proc/<pid>/cgroup and
    /proc/<pid>/mountinfo. Raises CgroupError."""
    mounts = mountinfo.splitlines()
    v2_path = None
    for line in own.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if "memory" in controllers.split(","):
            mount = _mount_of(mounts, "cgroup", "memory")
            if mount is None:
                raise CgroupError("the memory controller is not mounted (no cgroup v1 mount of it)")
            point, mount_root = mount
            return Path(point) / os.path.relpath(path, mount_root)
        if number == "0" and controllers == "":
            v2_path = path
    mount = _mount_of(mounts, "cgroup2", None)
    if v2_path is None or mount is None:
        raise CgroupError("this machine has no memory cgroup controller (no cgroup v1 or v2 mount)")
    point, mount_root = mount
    return Path(point) / os.path.relpath(v2_path, mount_root)


def _mount_of(mounts: list[str], fstype: str, option: str | None) -> tuple[str, str] | None:
    """(mount point, root of the hierarchy it shows) of the first mount of `fstype` (with the
    super option `option`), from /proc/self/mountinfo."""
    for line in mounts:
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if len(fields) < dash + 3 or fields[dash + 1] != fstype:
            continue
        if option is None or option in fields[dash + 3].split(","):
            return _unescape(fields[4]), _unescape(fields[3])
    return None


def _unescape(field: str) -> str:
    """mountinfo writes a space as \\040 (and tab, newline, backslash likewise)."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _version(parent: Path) -> int:
    if (parent / "memory.limit_in_bytes").exists():
        return 1
    controllers = parent / "cgroup.controllers"
    if controllers.exists():
        try:
            available = controllers.read_text().split()
        except OSError as exc:
            raise CgroupError(f"cannot read {controllers}: {_why(exc)}") from None
        if "memory" not in available:
            raise CgroupError(
                f"the cgroup v2 group {parent} has no memory controller (its controllers: "
                f"{' '.join(available) or 'none'})"
            )
        return 2
    if not parent.is_dir():
        raise CgroupError(f"{parent} does not exist (not a cgroup)")
    raise CgroupError(
        f"{parent} is not a memory cgroup (no memory.limit_in_bytes, no cgroup.controllers)"
    )


def _make(parent: Path, limit: int) -> MemoryGroup:
    version = _version(parent)
    if version == 2:
        _enable_memory_below(parent)
    path = parent / f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        path.mkdir()
    except OSError as exc:
        raise CgroupError(_refused(f"cannot make a cgroup in {parent}", exc)) from None
    processes.record_cgroup(path)
    group = MemoryGroup(path, version, limit)
    try:
        if not group.procs_file.exists():
            raise CgroupError(f"{parent} is not a cgroup file system (no cgroup.procs in {path})")
        if version == 1:
            _write(path / "memory.limit_in_bytes", limit)
            memsw = path / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                _write(memsw, limit)
            _check_v1_hierarchy(path, limit)
        else:
            _write(path / "memory.max", limit)
            swap = path / "memory.swap.max"
            if swap.exists():
                _write(swap, 0)
    except CgroupError:
        group.remove()
        raise
    return group


def _enable_memory_below(parent: Path) -> None:
    control = parent / "cgroup.subtree_control"
    try:
        if "memory" in control.read_text().split():
            return
        control.write_text("+memory")
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise CgroupError(
                f"cgroup v2 allows no memory controller below {parent}: it has processes of its "
                f"own; run signoff in a cgroup it may divide, or name one in ${ROOT_ENV}"
            ) from None
        raise CgroupError(
            _refused(f"cannot enable the memory controller in {parent}", exc)
        ) from None


def _check_v1_hierarchy(path: Path, limit: int) -> None:
    """A parent group limited below `limit` would be the limit the target meets."""
    try:
        effective = _stat(path / "memory.stat").get("hierarchical_memory_limit")
    except (OSError, ValueError):
        return
    if effective is not None and effective < limit:
        raise CgroupError(
            f"the cgroup signoff runs in ({path.parent}) is limited to {size_words(effective)}, "
            f"below the {size_words(limit)} asked: the target would meet that limit instead"
        )


def _write(path: Path, value: int) -> None:
    try:
        path.write_text(str(value))
    except OSError as exc:
        raise CgroupError(_refused(f"cannot write {value} to {path}", exc)) from None


def _refused(what: str, exc: OSError) -> str:
    words = f"{what}: {_why(exc)}"
    if exc.errno in (errno.EACCES, errno.EPERM) and os.geteuid() != 0:
        words += f" (signoff runs as uid {os.geteuid()}: a cgroup needs root or a delegated one)"
    elif exc.errno == errno.EROFS:
        words += " (the cgroup file system is mounted read-only here, as in most containers)"
    return words


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _number(path: Path) -> int:
    text = path.read_text().strip()
    return 2**63 if text == "max" else int(text)


def _stat(path: Path) -> dict[str, int]:
    """A flat keyed file (memory.stat, memory.oom_control, memory.events) as numbers."""
    found: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            found[key] = int(value)
    return found


def _pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def remove_group(path: Path, timeout: float = REMOVE_TIMEOUT) -> str | None:
    """SIGKILL every process left in the group, then remove it; None, or why not."""
    deadline = time.monotonic() + timeout
    while True:
        left = _pids(path)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not left:
            try:
                path.rmdir()
                return None
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                    return f"could not remove the cgroup {path}: {_why(exc)}"
        elif time.monotonic() >= deadline:
            return f"the cgroup {path} still has processes {left} after {timeout:g} s"
        time.sleep(0.02)


def reap(folder: object) -> str | None:
    """Remove a group a killed harness recorded, if it is one signoff makes (an absolute path
    named signoff-*, a cgroup folder: it has cgroup.procs); None when there was nothing to do,
    else a line for the report of what was done."""
    if not isinstance(folder, str) or not os.path.isabs(folder):
        return None
    path = Path(os.path.normpath(folder))
    if not path.name.startswith(PREFIX) or path.is_symlink() or not path.is_dir():
        return None
    if not (path / "cgroup.procs").exists():
        return None
    problem = remove_group(path)
    return f"memory cgroup {path}, removed" if problem is None else problem
