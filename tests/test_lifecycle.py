"""The harness never outlives itself: a real run is ended normally, by Ctrl-C, by SIGTERM and
by kill -9, and nothing it started may be left (after a kill -9, the next start reaps it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.runs import ROOT, RUNS, TINY, signoff

pytestmark = pytest.mark.slow


def _start(report_dir: Path, state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signoff",
            "run",
            str(RUNS / "slow.toml"),
            "--services",
            "embedded",
            "--report-dir",
            str(report_dir),
        ],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SIGNOFF_STATE_DIR": str(state)},
        start_new_session=True,
    )


def _wait_for_first_verdict(report_dir: Path, run: subprocess.Popen[str]) -> None:
    ledger = report_dir / "ledger.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ledger.exists() and ledger.read_text().count("\n") >= 1:
            time.sleep(1.0)  # well into the next (slow) claim
            return
        if run.poll() is not None:
            pytest.fail(f"the run ended early: {run.communicate()[0][-2000:]}")
        time.sleep(0.1)
    run.kill()
    pytest.fail("no verdict within 60 s")


def _started_pids(state: Path) -> list[int]:
    return [json.loads(p.read_text())["pid"] for p in (state / "pids").glob("*.json")]


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _ledger_ids(report_dir: Path) -> list[str]:
    lines = (report_dir / "ledger.jsonl").read_text().splitlines()
    return [json.loads(line)["id"] for line in lines]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_stops_everything(tmp_path: Path, sig: signal.Signals) -> None:
    report_dir, state = tmp_path / "report", tmp_path / "state"
    run = _start(report_dir, state)
    _wait_for_first_verdict(report_dir, run)
    started = _started_pids(state)
    assert len(started) >= 3  # redis-server, postgres, the probe on the blackhole
    run.send_signal(sig)
    out, _ = run.communicate(timeout=60)
    assert run.returncode == 130, out[-2000:]
    assert _alive(started) == []
    assert list((state / "pids").glob("*.json")) == []
    assert _ledger_ids(report_dir) == ["import:tiny.config"]
    doc = json.loads((report_dir / "signoff.json").read_text())
    assert doc["verdict"] == "fails" and "interrupted" in " ".join(doc.get("notes", []))


def test_kill_9_leftovers_are_reaped_by_the_next_run(tmp_path: Path) -> None:
    report_dir, state = tmp_path / "report", tmp_path / "state"
    run = _start(report_dir, state)
    _wait_for_first_verdict(report_dir, run)
    started = _started_pids(state)
    run.kill()  # SIGKILL to the harness alone: its children are orphaned, not signalled
    run.communicate(timeout=30)
    orphans = _alive(started)
    assert orphans, "kill -9 of the harness should leave its servers behind"
    # what finished before the kill is in the ledger
    assert _ledger_ids(report_dir) == ["import:tiny.config"]

    again = signoff(
        "run",
        str(RUNS / "mixed.toml"),
        "--only",
        "import",
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path / "again"),
        env={"SIGNOFF_STATE_DIR": str(state)},
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "stopped a leftover of a killed run" in again.stderr
    assert _alive(started) == []
    assert list((state / "pids").glob("*.json")) == []


def test_normal_end_leaves_nothing(tmp_path: Path) -> None:
    state, tmp = tmp_path / "state", tmp_path / "tmp"
    tmp.mkdir(mode=0o755)
    # every server folder of this run is under `tmp`, so its processes can be told apart from
    # any other signoff that runs on the machine meanwhile
    done = signoff(
        "run",
        str(RUNS / "mixed.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path / "r"),
        env={"SIGNOFF_STATE_DIR": str(state), "TMPDIR": str(tmp)},
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # mixed.toml has a failing claim
    assert list((state / "pids").glob("*.json")) == []
    left = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(tmp) in arg for arg in proc.info["cmdline"] or ()):
            left.append(proc.info["cmdline"])
    assert left == []


def test_services_up_prints_urls_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signoff",
            "services",
            "up",
            str(TINY / "signoff.toml"),
            "--services",
            "embedded",
        ],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SIGNOFF_STATE_DIR": str(state)},
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)] if proc.stdout else []
        urls = dict(line.split("#")[0].strip().split("=", 1) for line in lines)
        assert urls["REDIS_URL"].startswith("redis://127.0.0.1:")
        assert urls["DATABASE_URL"].startswith("postgresql://postgres@127.0.0.1:")
        started = _started_pids(state)
        assert len(started) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert _alive(started) == []
