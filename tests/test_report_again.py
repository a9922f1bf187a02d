"""`signoff report DIR`: a run folder's reports rendered again from its ledger and run.json, a
run killed with kill -9 included; every claim it planned is in them, unchecked ones as `error`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signoff.ledger import Ledger
from signoff.report.again import NEVER_CHECKED, UNFINISHED, render_again
from signoff.report.run_info import RunInfo
from signoff.verdict import Verdict
from tests.runs import ROOT, claims, signoff

CLAIMS = """
[target]
name = "again"

[[call]]
name = "time answers"
call = "time:time"
returns = "builtins:float"
within = "5s"

[[call]]
name = "a slow sleep"
call = "time:sleep"
args = [3]
within = "10s"
"""


def _folder(tmp_path: Path, *, finished: bool) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    info = RunInfo(
        "again",
        "signoff.toml",
        started=datetime.now(UTC) - timedelta(seconds=30),
        duration_s=12.5,
        planned=[("call:a", "call"), ("call:b", "call"), ("call:c", "call")],
        finished=finished,
    )
    info.save(folder)
    ledger = Ledger(folder / "ledger.jsonl")
    ledger.append(Verdict("call:a", "call", "holds", measured={"seconds": 0.01}))
    ledger.append(Verdict("call:b", "call", "fails", evidence="returned None, not an int"))
    return folder


def test_an_unfinished_run_is_rendered_with_every_planned_claim(tmp_path: Path) -> None:
    folder = _folder(tmp_path, finished=False)
    info, verdicts = render_again(folder)
    assert [(v.id, v.status) for v in verdicts] == [
        ("call:a", "holds"),
        ("call:b", "fails"),
        ("call:c", "error"),
    ]
    doc = json.loads((folder / "signoff.json").read_text())
    assert doc["verdict"] == "fails"
    assert doc["claims"][2]["evidence"] == NEVER_CHECKED
    assert UNFINISHED in doc["notes"]
    assert 0 < doc["duration_s"] < 60  # to the ledger's last write, not the saved 12.5
    assert (folder / "junit.xml").is_file() and (folder / "summary.md").is_file()
    assert info.target == "again"


def test_a_finished_run_keeps_its_own_duration_and_no_note(tmp_path: Path) -> None:
    folder = _folder(tmp_path, finished=True)
    info, _ = render_again(folder)
    assert info.duration_s == 12.5 and UNFINISHED not in info.notes


@pytest.mark.cli
def test_report_of_a_folder_that_is_no_run_exits_2(tmp_path: Path) -> None:
    done = signoff("report", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no ledger.jsonl here" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "ledger.jsonl").write_text("")
    (tmp_path / "run.json").write_text("{not json")
    done = signoff("report", str(tmp_path))
    assert done.returncode == 2 and "not a run's run.json" in done.stderr, done.stderr


@pytest.mark.cli
def test_a_run_killed_with_kill_9_is_reported_again(tmp_path: Path) -> None:
    (tmp_path / "signoff.toml").write_text(CLAIMS)
    report = tmp_path / "report"
    run = subprocess.Popen(
        [sys.executable, "-m", "signoff", "run", "signoff.toml", "--report-dir", str(report)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        ledger = report / "ledger.jsonl"
        while time.monotonic() < deadline and run.poll() is None:
            if ledger.is_file() and ledger.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before it could be killed"
        os.killpg(run.pid, signal.SIGKILL)  # the probe child of the sleep follows its parent
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(10)
    assert not (report / "signoff.json").exists()
    done = signoff("report", str(report))
    assert done.returncode == 1, done.stdout + done.stderr
    found = claims(report)
    assert {k: v["status"] for k, v in found.items()} == {
        "call:time answers": "holds",
        "call:a slow sleep": "error",
    }
    assert "ERROR" in done.stdout and "call:a slow sleep" in done.stdout
    assert UNFINISHED in json.loads((report / "signoff.json").read_text())["notes"]
