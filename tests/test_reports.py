import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from signoff.ledger import Ledger, read_ledger
from signoff.report import RunInfo, write_reports
from signoff.report.terminal import render_table
from signoff.verdict import Verdict, overall


def _verdicts() -> list[Verdict]:
    return [
        Verdict(
            "import:core",
            "import",
            "holds",
            budget={"median_s": 0.05},
            measured={"median_s": 0.012, "runs_s": [0.011, 0.012, 0.013]},
        ),
        Verdict(
            "import:core.tasks",
            "import",
            "fails",
            budget={"median_s": 0.05},
            evidence="hangs: import core.tasks still running after 10.000 s, waiting on "
            "127.0.0.1:6379\nstuck at core/tasks.py:12 in <module>",
            details="Thread 0x1 (most recent call first):\n  File ...",
        ),
        Verdict("cron:time", "cron", "error", evidence="not checked: no cron probe"),
    ]


def test_ledger_keeps_whole_lines_only(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for v in _verdicts():
        ledger.append(v)
    with (tmp_path / "ledger.jsonl").open("a") as out:
        out.write('{"id": "cut sho')  # a kill in the middle of a line
    back = read_ledger(tmp_path / "ledger.jsonl")
    assert [v.id for v in back] == [v.id for v in _verdicts()]
    assert back[1].evidence == _verdicts()[1].evidence


def test_reports_follow_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    info = RunInfo(
        target="archivist",
        claims_file="signoff.toml",
        duration_s=41.2,
        services={"redis": "embedded 6.2.14"},
    )
    write_reports(info, _verdicts(), tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "signoff.json").read_text())
    assert doc["target"] == "archivist" and doc["verdict"] == "fails"
    assert doc["environment"]["services"] == {"redis": "embedded 6.2.14"}
    assert doc["started"].endswith("Z")
    assert [c["status"] for c in doc["claims"]] == ["holds", "fails", "error"]
    assert doc["claims"][0]["measured"]["median_s"] == 0.012
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == ["import:core", "import:core.tasks", "cron:time"]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "`import:core.tasks` | ❌ fails" in md and "waiting on 127.0.0.1:6379" in md
    assert summary.read_text() == md + "\n"


def test_overall_needs_every_claim_to_hold() -> None:
    assert overall([_verdicts()[0]]) == "holds"
    assert overall(_verdicts()) == "fails"
    assert overall([]) == "fails"


def test_terminal_table_shows_evidence_of_failures_only() -> None:
    lines = render_table(_verdicts())
    assert lines[0].split() == ["HOLDS", "12", "ms", "import:core"]
    assert any("waiting on 127.0.0.1:6379" in line for line in lines)
    assert sum(line.startswith(("HOLDS", "FAILS", "ERROR")) for line in lines) == 3
