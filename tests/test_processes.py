import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from signoff import processes


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_STATE_DIR", str(tmp_path))


def _sleeper() -> list[str]:
    # a parent with a child of its own, so that group signalling is what stops both
    code = (
        "import subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "time.sleep(60)"
    )
    return [sys.executable, "-c", code]


def _group(pgid: int) -> list[int]:
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (OSError, psutil.Error):
            pass
    return out


def test_stop_ends_the_whole_group() -> None:
    proc = processes.spawn(_sleeper(), role="test")
    psutil.Process(proc.pid).children()  # exists
    processes.stop(proc, grace=2)
    assert proc.poll() is not None
    assert _group(proc.pid) == []
    assert not list(processes.state_dir().glob("*.json"))


def test_reap_stops_what_a_dead_harness_left() -> None:
    proc = processes.spawn(_sleeper(), role="redis-server")
    pidfile = processes.state_dir() / f"{proc.pid}.json"
    record = json.loads(pidfile.read_text())
    record["owner"] = 2**22 + 12345  # no such process: the harness that started it is gone
    pidfile.write_text(json.dumps(record))
    reaped = processes.reap_leftovers()
    assert len(reaped) == 1 and "redis-server" in reaped[0]
    proc.wait(timeout=5)
    assert _group(proc.pid) == []
    assert not pidfile.exists()
    processes.forget(proc)


def test_reap_leaves_a_living_harness_alone() -> None:
    proc = processes.spawn(_sleeper(), role="postgres")
    try:
        assert processes.reap_leftovers() == []
        assert proc.poll() is None
    finally:
        processes.stop(proc, grace=2)


def test_a_clock_step_does_not_make_a_living_harness_look_dead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # psutil's create_time() is start ticks + the boot time, which the kernel derives from the
    # wall clock: a step of the clock moved every process's figure and the reaper stopped
    # live harnesses' servers (a CI run lost Redis and Postgres mid-claim)
    proc = processes.spawn(_sleeper(), role="postgres")
    folder = processes.temp_folder("signoff-clock-")
    try:
        real = psutil.boot_time()
        monkeypatch.setattr("psutil._pslinux.boot_time", lambda: real + 1.0)
        assert processes.reap_leftovers() == []
        assert proc.poll() is None and folder.is_dir()
    finally:
        processes.stop(proc, grace=2)
        processes.remove_folder(folder)


def test_a_group_whose_pid_was_reused_is_never_stopped() -> None:
    # pids wrap (at 32768 here): a dead harness's record may name a pid that now leads
    # somebody else's process group
    other = subprocess.Popen(_sleeper(), start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while len(_group(other.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the leader has started its child
        assert len(_group(other.pid)) == 2
        record = {
            "pid": other.pid,
            "pgid": other.pid,
            "created": 1.0,  # the recorded process started long before this one
            "owner": DEAD_OWNER,
            "owner_created": 1.0,
            "role": "redis-server",
        }
        (processes.state_dir() / f"{other.pid}.json").write_text(json.dumps(record))
        assert processes.reap_leftovers() == []
        assert other.poll() is None and len(_group(other.pid)) == 2
        assert not (processes.state_dir() / f"{other.pid}.json").exists()
    finally:
        os.killpg(other.pid, 9)
        other.wait(5)


# -- temp folders: recorded while they exist, removed by the reaper when their owner is gone ---

DEAD_OWNER = 2**22 + 12345  # no such process: the harness that made it is gone


def _orphan(path: Path) -> Path:
    """Make the record of a folder look like a killed harness's."""
    record_file = processes.state_dir().parent / "folders" / f"{path.name}.json"
    record = json.loads(record_file.read_text())
    assert record["folder"] == str(path)
    record["owner"] = DEAD_OWNER
    record_file.write_text(json.dumps(record))
    processes._folders.pop(path, None)  # as if this process had never made it
    return record_file


def _temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_temp_folder_is_recorded_until_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = _temp(tmp_path, monkeypatch)
    folder = processes.temp_folder("signoff-redis-")
    assert folder.parent == tmp and folder.name.startswith("signoff-redis-")
    records = list((tmp_path / "folders").glob("*.json"))
    assert [json.loads(r.read_text())["folder"] for r in records] == [str(folder)]
    (folder / "data").write_text("x")
    processes.remove_folder(folder)
    assert not folder.exists()
    assert list((tmp_path / "folders").glob("*.json")) == []


def test_reap_removes_the_folders_a_dead_harness_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _temp(tmp_path, monkeypatch)
    folders = [processes.temp_folder(p) for p in ("signoff-redis-", "signoff-probe-")]
    (folders[0] / "dump.rdb").write_text("x")
    (folders[1] / "deep").mkdir()
    records = [_orphan(f) for f in folders]
    reaped = processes.reap_leftovers()
    assert sorted(reaped) == sorted(
        f"folder {f} (left by harness pid {DEAD_OWNER}), removed" for f in folders
    )
    assert not any(f.exists() for f in folders)
    assert not any(r.exists() for r in records)


def test_reap_leaves_a_living_harness_folders_and_anything_unrecorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = _temp(tmp_path, monkeypatch)
    mine = processes.temp_folder("signoff-postgres-")
    unrecorded = tmp / "signoff-postgres-unrecorded"
    unrecorded.mkdir()
    try:
        assert processes.reap_leftovers() == []
        assert mine.is_dir() and unrecorded.is_dir()
    finally:
        processes.remove_folder(mine)


def test_reap_never_follows_a_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _temp(tmp_path, monkeypatch)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    # a link inside a recorded folder: removed as a link, what it points to is kept
    folder = processes.temp_folder("signoff-probe-")
    (folder / "link").symlink_to(precious)
    _orphan(folder)
    # a record whose folder is now a link to elsewhere: the link is not a folder, left alone
    swapped = processes.temp_folder("signoff-redis-")
    record = _orphan(swapped)
    swapped.rmdir()
    swapped.symlink_to(precious)
    reaped = processes.reap_leftovers()
    assert reaped == [f"folder {folder} (left by harness pid {DEAD_OWNER}), removed"]
    assert (precious / "keep.txt").read_text() == "keep"
    assert swapped.is_symlink() and not record.exists()


def test_reap_removes_only_folders_named_as_signoff_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _temp(tmp_path, monkeypatch)
    other = tmp_path / "project-data"
    other.mkdir()
    folders = tmp_path / "folders"
    folders.mkdir(exist_ok=True)
    (folders / "planted.json").write_text(
        json.dumps({"folder": str(other), "owner": DEAD_OWNER, "owner_created": 1.0})
    )
    (folders / "relative.json").write_text(
        json.dumps({"folder": "signoff-x", "owner": DEAD_OWNER, "owner_created": 1.0})
    )
    assert processes.reap_leftovers() == []
    assert other.is_dir()
    assert list(folders.glob("*.json")) == []
    with pytest.raises(ValueError):
        processes.temp_folder("project-")
