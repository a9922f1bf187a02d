"""Every process signoff starts goes through here, so that none outlives the harness.

Each child is started in a session (process group) of its own and recorded in a pidfile under
the state folder, with its start time and the pid of the harness that owns it. Stopping a child
signals its whole group. If the harness itself is killed (kill -9), the next start calls
`reap_leftovers()`, which stops every group whose owner is gone.

Temp folders a run makes (a server's data, a probe's files) are recorded the same way, beside
the pidfiles, from the moment they exist (`temp_folder()`) until their owner removes them
(`remove_folder()`): a folder outlives the processes that use it (a killed server is restarted
in it), so it is recorded on its own. `reap_leftovers()` removes the folders of a dead owner,
only those recorded, never through a symlink.

Memory cgroups (`signoff.cgroup`) are recorded likewise (`record_cgroup`, `forget_cgroup`): the
next start kills what is left in a dead owner's group and removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

_lock = threading.Lock()
_live: dict[int, subprocess.Popen[Any]] = {}
_folders: dict[Path, Path] = {}  # folder -> its record, for the folders this harness made
_cgroups: dict[Path, Path] = {}  # cgroup -> its record


def state_dir() -> Path:
    """Where pidfiles live: $SIGNOFF_STATE_DIR, or a per-user folder in the temp dir."""
    root = os.environ.get("SIGNOFF_STATE_DIR") or os.path.join(
        tempfile.gettempdir(), f"signoff-{os.getuid()}"
    )
    path = Path(root) / "pids"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _folders_dir() -> Path:
    """Where folder records live: beside the pidfiles, not among them."""
    path = state_dir().parent / "folders"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cgroups_dir() -> Path:
    path = state_dir().parent / "cgroups"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _containers_dir() -> Path:
    path = state_dir().parent / "containers"
    path.mkdir(parents=True, exist_ok=True)
    return path


_PROC_STAT = Path("/proc/self/stat").is_file()  # Linux: start times in clock ticks


def started(pid: int) -> float | None:
    """When process `pid` started, as the identity that tells it from a later process given
    the same pid (pids wrap at 32768 here): on Linux its start in clock ticks since boot, from
    /proc/<pid>/stat, which no change of the wall clock moves. psutil's create_time() adds the
    boot time the kernel derives from the wall clock, so a clock step (NTP, a VM's clock sync)
    moves every process's figure at once, and the reaper would take every live harness for
    dead (suspected in a CI run that lost live servers' folders).
    None when the process is gone."""
    if _PROC_STAT:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                after_name = f.read().rsplit(b")", 1)[1].split()
            return float(after_name[19])  # field 22, starttime; the name may hold spaces
        except (OSError, IndexError, ValueError):
            return None
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def spawn(argv: Sequence[str], *, role: str, **popen: Any) -> subprocess.Popen[Any]:
    """Start `argv` in its own process group and record it. `role` names it in pidfiles."""
    popen.setdefault("start_new_session", True)
    popen.setdefault("stdin", subprocess.DEVNULL)
    proc: subprocess.Popen[Any] = subprocess.Popen(list(argv), **popen)
    record = {
        "pid": proc.pid,
        "pgid": proc.pid if popen["start_new_session"] else os.getpgid(proc.pid),
        "created": started(proc.pid),
        "owner": os.getpid(),
        "owner_created": started(os.getpid()),
        "role": role,
        "argv": list(argv)[:4],
    }
    (state_dir() / f"{proc.pid}.json").write_text(json.dumps(record))
    with _lock:
        _live[proc.pid] = proc
    return proc


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(proc: subprocess.Popen[Any], grace: float = 3.0) -> None:
    """Stop a spawned process and its whole group: SIGCONT+SIGTERM, then SIGKILL after `grace`."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGCONT)  # a stopped group cannot act on SIGTERM
    _signal_group(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # members of the group that outlived its leader
    _signal_group(pgid, signal.SIGKILL)
    forget(proc)


def kill(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGKILL the whole group at once and reap the leader."""
    _signal_group(proc.pid, signal.SIGCONT)
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    forget(proc)


def forget(proc: subprocess.Popen[Any]) -> None:
    """The process has ended: drop its pidfile."""
    with _lock:
        _live.pop(proc.pid, None)
    with contextlib.suppress(FileNotFoundError):
        (state_dir() / f"{proc.pid}.json").unlink()


def running() -> list[subprocess.Popen[Any]]:
    """The processes this harness started and has not stopped yet."""
    with _lock:
        return list(_live.values())


def stop_all(grace: float = 3.0) -> None:
    """Stop everything this harness started and has not stopped yet."""
    for proc in running():
        stop(proc, grace)


def _owner_alive(record: dict[str, Any]) -> bool:
    owner = record.get("owner")
    if not isinstance(owner, int):
        return False
    created = started(owner)
    return created is not None and created == record.get("owner_created")


FOLDER_PREFIX = "signoff-"  # every recorded folder's name starts so; anything else is never removed


def temp_folder(prefix: str) -> Path:
    """A new folder in the temp directory (`tempfile.mkdtemp`), recorded until `remove_folder`
    so that the next start removes it if this harness is killed meanwhile."""
    if not prefix.startswith(FOLDER_PREFIX):
        raise ValueError(f"a recorded folder's prefix starts with {FOLDER_PREFIX!r}: {prefix!r}")
    path = Path(tempfile.mkdtemp(prefix=prefix))
    record_file = _folders_dir() / f"{path.name}.json"
    record_file.write_text(json.dumps(_owner_record("folder", path)))
    with _lock:
        _folders[path] = record_file
    return path


def _owner_record(key: str, what: Path | str) -> dict[str, Any]:
    return {key: str(what), "owner": os.getpid(), "owner_created": started(os.getpid())}


def record_containers() -> None:
    """Record that this harness starts containers, so that the next start of any backend
    removes them if this harness is killed (a record per harness, not per container: the
    containers' own labels say which are whose)."""
    record_file = _containers_dir() / f"{os.getpid()}.json"
    if not record_file.exists():
        record_file.write_text(json.dumps(_owner_record("containers", "docker")))


def forget_containers() -> None:
    """This harness removed every container it started (its exit handler did)."""
    (_containers_dir() / f"{os.getpid()}.json").unlink(missing_ok=True)


def record_cgroup(path: Path) -> None:
    """Record a cgroup this harness made, until `forget_cgroup`."""
    record_file = _cgroups_dir() / f"{path.name}.json"
    record_file.write_text(json.dumps(_owner_record("cgroup", path)))
    with _lock:
        _cgroups[path] = record_file


def forget_cgroup(path: Path) -> None:
    """The cgroup is removed: drop its record."""
    with _lock:
        record_file = _cgroups.pop(path, None)
    (record_file or _cgroups_dir() / f"{path.name}.json").unlink(missing_ok=True)


def _reap_cgroups() -> list[str]:
    from signoff import cgroup  # it records its groups through this module

    removed: list[str] = []
    for record_file, record in _dead_owners(_cgroups_dir()):
        line = cgroup.reap(record.get("cgroup"))
        if line is not None:
            removed.append(f"{line} (left by harness pid {record.get('owner')})")
        record_file.unlink(missing_ok=True)
    return removed


def _reap_containers() -> list[str]:
    dead = _dead_owners(_containers_dir())
    if not dead:
        return []  # docker-py is imported, and the engine asked, only after a killed harness
    from signoff.services import docker

    try:
        removed = docker.reap_containers()
    except Exception:
        return []  # the engine does not answer now: the records stay for a later start
    for record_file, _ in dead:
        record_file.unlink(missing_ok=True)
    return removed


def _dead_owners(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The records in `folder` written by this user whose owner is gone (broken ones removed)."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for record_file in sorted(folder.glob("*.json")):
        try:
            if os.lstat(record_file).st_uid != os.getuid():
                continue  # not written by this user: never acted on
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            record_file.unlink(missing_ok=True)
            continue
        if not isinstance(record, dict):
            record_file.unlink(missing_ok=True)
            continue
        if not _owner_alive(record):
            found.append((record_file, record))
    return found


def remove_folder(path: Path) -> None:
    """Remove a folder made by `temp_folder`, and its record."""
    shutil.rmtree(path, ignore_errors=True)
    with _lock:
        record_file = _folders.pop(path, None)
    if record_file is not None:
        record_file.unlink(missing_ok=True)


def _removable(folder: object) -> Path | None:
    """The recorded folder, if it is one signoff could have made: an absolute path named
    signoff-*, a real folder (not a symlink), not the state folder. Otherwise None."""
    if not isinstance(folder, str) or not os.path.isabs(folder):
        return None
    path = Path(os.path.normpath(folder))
    if not path.name.startswith(FOLDER_PREFIX) or path in state_dir().parents:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    # as root, a server's folder belongs to the unprivileged user the server ran as
    if os.getuid() != 0 and info.st_uid != os.getuid():
        return None
    return path


def _reap_folders() -> list[str]:
    removed: list[str] = []
    for record_file, record in _dead_owners(_folders_dir()):
        path = _removable(record.get("folder"))
        if path is not None:
            left = f"folder {path} (left by harness pid {record.get('owner')})"
            try:
                # rmtree never follows a symlink: one inside is removed as a link, and a top
                # that turned into a symlink since the lstat above is refused (OSError)
                shutil.rmtree(path)
                removed.append(f"{left}, removed")
            except FileNotFoundError:
                pass  # another start reaped it meanwhile
            except OSError as exc:
                removed.append(f"{left}: could not remove it: {exc.strerror or exc}")
        record_file.unlink(missing_ok=True)
    return removed


def reap_leftovers() -> list[str]:
    """Stop what a killed harness left behind: its process groups, then its memory cgroups
    (with any process left in them), then its temp folders. Returns a line per process group
    stopped, per cgroup and per folder removed."""
    reaped: list[str] = []
    for pidfile in sorted(state_dir().glob("*.json")):
        try:
            record = json.loads(pidfile.read_text())
        except (OSError, ValueError):
            pidfile.unlink(missing_ok=True)
            continue
        if _owner_alive(record):
            continue
        pid, pgid = int(record["pid"]), int(record["pgid"])
        leader = started(pid)
        leader_is_ours = leader is not None and leader == record.get("created")
        members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]
        if pgid == pid and leader is not None and not leader_is_ours:
            members = []  # the pid leads another process's group now: pids wrap, never ours
        if leader_is_ours or members:
            _signal_group(pgid, signal.SIGCONT)
            _signal_group(pgid, signal.SIGKILL)
            _wait_gone([p.pid for p in members] + [pid], timeout=5.0)
            reaped.append(
                f"{record.get('role', '?')} (pid {pid}, left by harness pid {record.get('owner')})"
            )
        pidfile.unlink(missing_ok=True)
    return reaped + _reap_containers() + _reap_cgroups() + _reap_folders()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and _status(p) != psutil.STATUS_ZOMBIE for p in pids):
            return
        time.sleep(0.05)


def _status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.Error:
        return None
