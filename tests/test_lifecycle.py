"""The harness never outlives itself: a real run is ended normally, by Ctrl-C, by SIGTERM and
by kill -9, and nothing it started may be left (after a kill -9, the next start reaps it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.runs import ROOT, RUNS, TINY, signoff

pytestmark = pytest.mark.slow

BLACKHOLE = "timeout:a socket with no connect timeout against a blackhole"
LEFT_FOLDERS = ("signoff-redis-*", "signoff-postgres-*", "signoff-probe-*")


def _start(report_dir: Path, state: Path, tmp: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "SIGNOFF_STATE_DIR": str(state)}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
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
        env=env,
        start_new_session=True,
    )


def _wait_for_first_verdict(report_dir: Path, run: subprocess.Popen[str]) -> None:
    ledger = report_dir / "ledger.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # first: a run that ended writes every claim it did not check to the ledger too
        if run.poll() is not None:
            pytest.fail(f"the run ended early: {run.communicate()[0][-2000:]}")
        if ledger.exists() and ledger.read_text().count("\n") >= 1:
            time.sleep(1.0)  # well into the next (slow) claim
            return
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
    # the claim it was checking, and why it has no verdict, were added to the ledger at the end
    ledger = [json.loads(line) for line in (report_dir / "ledger.jsonl").read_text().splitlines()]
    assert [v["id"] for v in ledger] == ["import:tiny.config", BLACKHOLE]
    shown = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    why = f"not checked: the run was interrupted ({shown}) before this claim"
    assert ledger[1]["status"] == "error" and ledger[1]["evidence"] == why
    doc = json.loads((report_dir / "signoff.json").read_text())
    assert doc["verdict"] == "fails"
    assert f"the run was interrupted ({shown}) before every claim was checked" in doc["notes"]
    assert why in out  # on the terminal


def _folders(tmp: Path) -> list[str]:
    return sorted(p.name for pattern in LEFT_FOLDERS for p in tmp.glob(pattern))


@pytest.fixture
def own_tmp() -> Iterator[Path]:
    """A temp dir of the test's own, that an unprivileged postgres can reach (pytest's tmp_path
    is under a folder only its owner may enter)."""
    folder = Path(tempfile.mkdtemp(prefix="lifecycle-tmp-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_kill_9_leftovers_are_reaped_by_the_next_run(tmp_path: Path, own_tmp: Path) -> None:
    report_dir, state, tmp = tmp_path / "report", tmp_path / "state", own_tmp
    run = _start(report_dir, state, tmp)  # its temp folders, apart from any other run's
    _wait_for_first_verdict(report_dir, run)
    started = _started_pids(state)
    run.kill()  # SIGKILL to the harness alone: its children are orphaned, not signalled
    run.communicate(timeout=30)
    orphans = _alive(started)
    assert orphans, "kill -9 of the harness should leave its servers behind"
    left = _folders(tmp)
    kinds = {name.rsplit("-", 1)[0] for name in left}
    assert kinds == {"signoff-redis", "signoff-postgres", "signoff-probe"}, left
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
    assert _folders(tmp) == []  # the next run's own folders are elsewhere: these were reaped
    for name in left:
        assert f"folder {tmp / name} (left by harness pid {run.pid}), removed" in again.stderr
    assert list((state / "folders").glob("*.json")) == []


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
