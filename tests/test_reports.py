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
    cases = list(suite.iter("testcase"))
    assert [case.get("name") for case in cases] == ["import:core", "import:core.tasks", "cron:time"]
    figures = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert figures == {
        "budget.median_s": "0.05",
        "measured.median_s": "0.012",
        "measured.runs_s": "[0.011, 0.012, 0.013]",
    }
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == _verdicts()[1].evidence
    assert cases[2].find("error") is not None
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "`import:core.tasks` | ❌ fails" in md and "waiting on 127.0.0.1:6379" in md
    assert summary.read_text() == md + "\n"


def test_overall_needs_every_claim_to_hold() -> None:
    assert overall([_verdicts()[0]]) == "holds"
    assert overall(_verdicts()) == "fails"
    assert overall([]) == "fails"


def test_terminal_table_shows_evidence_of_failures_only() -> None:
    lines = render_table(_verdicts())
    assert any("waiting on 127.0.0.1:6379" in line for line in lines)
    assert sum(line.startswith(("HOLDS", "FAILS", "ERROR")) for line in lines) == 3
    assert not any("Thread 0x1" in line for line in lines)  # details stay in the report


def test_terminal_table_puts_failures_first_and_wraps_instead_of_cutting() -> None:
    lines = render_table(_verdicts(), width=60)
    status = [line.split()[0] for line in lines if line.startswith(("HOLDS", "FAILS", "ERROR"))]
    assert status == ["FAILS", "ERROR", "HOLDS"]
    assert all(len(line) <= 60 for line in lines)
    words = " ".join(line.strip() for line in lines).split()
    evidence = _verdicts()[1].evidence.split()
    at = words.index(evidence[0])
    assert words[at : at + len(evidence)] == evidence  # every word, in order: nothing cut
