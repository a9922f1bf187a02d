"""Memory cgroups (signoff.cgroup): a real group on this machine kills a process over its limit
and says so, reads back what a process holds (shared memory too, page cache not), is removed
afterwards, and is reaped when a killed harness left it; and the reasons when no group can be
made: no such folder, a folder that is no cgroup, not root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signoff import cgroup, processes

MIB = 1 << 20
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root")


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(cgroup.ROOT_ENV, raising=False)


@pytest.fixture
def group() -> Iterator[cgroup.MemoryGroup]:
    made = cgroup.make(64 * MIB)
    assert not isinstance(made, str), f"no memory cgroup on this machine: {made}"
    try:
        yield made
    finally:
        assert made.remove() is None
        assert not made.path.exists()


def _records() -> list[Path]:
    return sorted((processes.state_dir().parent / "cgroups").glob("*.json"))


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@root_only
def test_a_process_over_the_limit_is_oom_killed_and_the_group_says_so(
    group: cgroup.MemoryGroup,
) -> None:
    assert group.path.parent == cgroup.parent_group()
    assert group.path.name.startswith(f"signoff-{os.getpid()}-")
    assert (group.path / "memory.limit_in_bytes").read_text().strip() == str(64 * MIB)
    assert [r.stem for r in _records()] == [group.path.name]  # recorded from the start
    assert group.oom_kills() == 0
    alloc = "blocks = [b'x' * (1 << 20) for _ in range(200)]; print('survived 200 MiB')"
    proc = processes.spawn(
        group.launcher(_python(alloc)), role="test-alloc", stdout=subprocess.PIPE
    )
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        processes.stop(proc)
    assert proc.returncode == -9 and b"survived" not in out
    usage = group.usage()
    assert usage is not None and usage.oom_kills == 1
    assert usage.peak is not None and usage.peak >= 60 * MIB
    assert group.oom_words().startswith("OOM, 64 MiB; peak 6")
    assert group.pids() == []


@root_only
def test_what_a_process_holds_is_read_back_shared_memory_too(
    group: cgroup.MemoryGroup, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    hold = (
        "import mmap, pathlib, time\n"
        "private = b'p' * (20 << 20)\n"
        "shared = mmap.mmap(-1, 10 << 20)\n"  # MAP_SHARED: charged as shmem, not as rss
        "shared.write(b's' * (10 << 20))\n"
        f"pathlib.Path({str(ready)!r}).write_text('ok')\n"
        "time.sleep(60)\n"
    )
    proc = processes.spawn(group.launcher(_python(hold)), role="test-hold")
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert ready.exists(), f"the holder did not start (status {proc.poll()})"
        assert group.pids() == [proc.pid]  # the launcher exec'd: the same process, in the group
        usage = group.usage()
        assert usage is not None
        assert 30 * MIB <= usage.held < 48 * MIB, usage
        assert usage.charged >= usage.held and usage.oom_kills == 0
        # remove() kills what is left in the group before removing it
        assert group.remove() is None
        assert proc.wait(timeout=10) == -9
        assert not group.path.exists() and _records() == []
        assert group.usage() is None and group.remove() is None
    finally:
        processes.stop(proc)


@root_only
def test_a_group_a_killed_harness_left_is_reaped_with_its_processes() -> None:
    made = cgroup.make(64 * MIB)
    assert not isinstance(made, str), made
    # started outside processes.spawn, as a daemon that left its process group would be
    proc = subprocess.Popen(made.launcher(_python("import time; time.sleep(60)")))
    try:
        deadline = time.monotonic() + 10
        while not made.pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert made.pids() == [proc.pid]
        assert processes.reap_leftovers() == []  # its harness (this one) is alive: left alone
        assert made.path.exists()
        (record,) = _records()
        data = json.loads(record.read_text())
        data["owner"] = 2**22 + 4321  # no such process: the harness that made it is gone
        record.write_text(json.dumps(data))
        reaped = processes.reap_leftovers()
        assert reaped == [
            f"memory cgroup {made.path}, removed (left by harness pid {2**22 + 4321})"
        ]
        assert proc.wait(timeout=10) == -9
        assert not made.path.exists() and _records() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        cgroup.remove_group(made.path)


def test_the_reaper_removes_only_what_signoff_makes(tmp_path: Path) -> None:
    other = tmp_path / "someone-elses"
    other.mkdir()
    (other / "cgroup.procs").write_text("")
    plain = tmp_path / "signoff-1-abc"
    plain.mkdir()  # named like ours, but no cgroup
    for folder in (str(other), str(plain), "relative/signoff-1-x", None, 42):
        assert cgroup.reap(folder) is None
    assert other.exists() and plain.exists()


def test_no_group_under_a_folder_that_is_no_cgroup(tmp_path: Path) -> None:
    assert cgroup.make(64 * MIB, root=tmp_path / "missing") == (
        f"{tmp_path / 'missing'} does not exist (not a cgroup)"
    )
    assert cgroup.make(64 * MIB, root=tmp_path) == (
        f"{tmp_path} is not a memory cgroup (no memory.limit_in_bytes, no cgroup.controllers)"
    )
    # looks like one, but mkdir makes a plain folder: removed again, with its record
    (tmp_path / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    reason = cgroup.make(64 * MIB, root=tmp_path)
    assert isinstance(reason, str) and reason.startswith(f"{tmp_path} is not a cgroup file system")
    assert not list(tmp_path.glob("signoff-*")) and _records() == []
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpu io pids\n")
    assert cgroup.make(64 * MIB, root=v2) == (
        f"the cgroup v2 group {v2} has no memory controller (its controllers: cpu io pids)"
    )


def test_the_root_can_be_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cgroup.ROOT_ENV, str(tmp_path))
    assert cgroup.parent_group() == tmp_path
    reason = cgroup.make(64 * MIB)
    assert (
        reason
        == f"{tmp_path} is not a memory cgroup (no memory.limit_in_bytes, no cgroup.controllers)"
    )


@root_only
def test_not_root_gets_a_reason_not_an_exception() -> None:
    parent = cgroup.parent_group()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, then try (only file operations, no thread needed)
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            made = cgroup.make(64 * MIB, root=parent)
            os.write(write, (made if isinstance(made, str) else f"made {made.path}").encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        reason = answer.read().decode()
    os.waitpid(pid, 0)
    assert reason == (
        f"cannot make a cgroup in {parent}: Permission denied (signoff runs as uid 65534: a "
        "cgroup needs root or a delegated one)"
    )


def test_the_memory_cgroup_is_found_from_proc() -> None:
    mountinfo = (
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    v1 = "4:memory:/process_api/abc\n0::/\n"
    assert cgroup.parent_from(v1, mountinfo) == Path("/sys/fs/cgroup/memory/process_api/abc")
    # a container's view: the mount shows the hierarchy from /docker/x down
    inside = "35 31 0:32 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert cgroup.parent_from("4:memory:/docker/x/app\n", inside) == Path(
        "/sys/fs/cgroup/memory/app"
    )
    v2 = "0::/user.slice/user-1000.slice/session-2.scope\n"
    pure = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroup.parent_from(v2, pure) == Path(
        "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"
    )
    with pytest.raises(cgroup.CgroupError, match="not mounted"):
        cgroup.parent_from(v1, "")
    with pytest.raises(cgroup.CgroupError, match="no memory cgroup controller"):
        cgroup.parent_from("1:cpu:/\n", mountinfo.replace("cgroup2 cgroup2", "tmpfs tmpfs"))


def test_sizes_are_written_in_the_limits_own_units() -> None:
    assert cgroup.size_words(256_000_000) == "256 MB"
    assert cgroup.size_words(255_900_000, like=256_000_000) == "255.9 MB"
    assert cgroup.size_words(64 * MIB) == "64 MiB"
    assert cgroup.size_words(int(63.5 * MIB), like=64 * MIB) == "63.5 MiB"
    assert cgroup.size_words(0, like=64 * MIB) == "0 B"
