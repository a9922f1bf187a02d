import json
import os
import sys
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
