"""No claim ends unchecked without its reason: every way a run can leave a claim without a
verdict (the harness's own exception, the deadline, Ctrl-C and SIGTERM, services that never
start, a suite pytest cannot collect, -x, -k, a kind no collected suite checks) is named in
the ledger, signoff.json, junit.xml, summary.md and on the terminal.

The runs are in-process (cli.main or pytest.main) with claims that need no service, so each
takes a fraction of a second."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import signoff.checks
import signoff.stages
from signoff.cli import main
from signoff.context import RunContext
from signoff.errors import ServiceError
from signoff.verdict import Verdict

SUITES = Path(__file__).resolve().parent.parent / "suites"
CLAIMS = (
    '[target]\nname = "t"\n'
    '[[timeouts]]\nname = "first"\ncall = "os:getpid"\nwithin = "5s"\nenv = { A = "1" }\n'
    '[[timeouts]]\nname = "second"\ncall = "os:getpid"\nwithin = "5s"\nenv = { A = "1" }\n'
)
IDS = ["timeout:first", "timeout:second"]
# a suite of our own, beside one pytest cannot import
OWN_SUITE = (
    "import pytest\n"
    "from signoff.plugin import RUN_KEY\n"
    "from signoff.stages import verify\n\n\n"
    '@pytest.mark.signoff_kinds("timeout")\n'
    "def test_claim(claim, request):\n"
    "    verify(request.config.stash[RUN_KEY], claim)\n"
)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_STATE_DIR", str(tmp_path / "state"))


def _claims(tmp_path: Path, text: str = CLAIMS) -> Path:
    path = tmp_path / "signoff.toml"
    path.write_text(text)
    return path


def _run(tmp_path: Path, *extra: str) -> int:
    return main(["run", str(_claims(tmp_path)), "--report-dir", str(tmp_path / "r"), *extra])


def _pytest(tmp_path: Path, suites: Path, *extra: str, text: str = CLAIMS) -> int:
    args = [str(suites), "-p", "no:cacheprovider", "-q", "--import-mode=importlib"]
    args += ["--claims", str(_claims(tmp_path, text)), "--signoff-report-dir", str(tmp_path / "r")]
    return int(pytest.main([*args, "--rootdir", str(suites.parent), *extra]))


def _evidence(tmp_path: Path) -> dict[str, str]:
    """Each claim's evidence in every report, checked to agree; from signoff.json."""
    folder = tmp_path / "r"
    doc = json.loads((folder / "signoff.json").read_text())
    by_id = {c["id"]: c["evidence"] for c in doc["claims"]}
    ledger = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]
    assert {v["id"]: v["evidence"] for v in ledger} == by_id
    junit = ET.parse(folder / "junit.xml").getroot().iter("testcase")
    assert {case.get("name") for case in junit} >= set(by_id)
    summary = (folder / "summary.md").read_text()
    for claim_id, evidence in by_id.items():
        assert claim_id in summary
        assert evidence.splitlines()[0] in summary, (evidence, summary)
    return by_id


def _notes(tmp_path: Path) -> list[str]:
    notes: list[str] = json.loads((tmp_path / "r" / "signoff.json").read_text()).get("notes", [])
    return notes


def _never_the_old_answer(evidence: dict[str, str]) -> None:
    for text in evidence.values():
        assert "run ended before this claim" not in text, text


def _broken_check(ctx: RunContext, ref: Any) -> Verdict:
    raise KeyError("boom-key")


def test_the_harness_failing_inside_a_claim_is_that_claims_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(signoff.checks, "check", _broken_check)
    assert _run(tmp_path) == 1
    evidence = _evidence(tmp_path)
    assert sorted(evidence) == IDS
    for text in evidence.values():
        assert text.startswith("could not check: the harness itself failed\nKeyError: 'boom-key'")
        assert "signoff/stages.py:" in text and "a bug in signoff" in text
    _never_the_old_answer(evidence)
    doc = json.loads((tmp_path / "r" / "signoff.json").read_text())
    assert "_broken_check" in doc["claims"][0]["details"]  # the traceback
    out = capsys.readouterr().out
    assert out.count("KeyError: 'boom-key'") == 2  # on the terminal, under each claim


def test_a_signoff_error_inside_a_claim_says_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(ctx: RunContext, ref: Any) -> Verdict:
        raise ServiceError("redis did not answer through the proxy within 5.0 s")

    monkeypatch.setattr(signoff.checks, "check", fails)
    assert _run(tmp_path) == 1
    for text in _evidence(tmp_path).values():
        assert text == "could not check: redis did not answer through the proxy within 5.0 s"


def test_the_deadline_is_named_with_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, "--deadline", "1us") == 1
    evidence = _evidence(tmp_path)
    for text in evidence.values():
        assert text.startswith("not checked: the run's deadline (--deadline) had passed\n")
        assert "before this claim's turn," in text and "into the run" in text
    assert signoff.stages.DEADLINE_NOTE in _notes(tmp_path)
    assert "note: the run's deadline (--deadline) passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("message", "shown", "status"), [("", "Ctrl-C", 130), ("SIGTERM", "SIGTERM", 130)]
)
def test_an_interruption_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, message: str, shown: str, status: int
) -> None:
    def interrupted(ctx: RunContext, ref: Any) -> Verdict:
        raise KeyboardInterrupt(message)

    monkeypatch.setattr(signoff.checks, "check", interrupted)
    assert _run(tmp_path) == status
    evidence = _evidence(tmp_path)
    for claim_id in IDS:
        assert (
            evidence[claim_id]
            == f"not checked: the run was interrupted ({shown}) before this claim"
        )
    assert f"the run was interrupted ({shown}) before every claim was checked" in _notes(tmp_path)


def test_services_that_never_start_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_backend(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ServiceError("redis: no backend could start it (docker: no engine)")

    monkeypatch.setattr(signoff.stages, "start_services", no_backend)
    assert _run(tmp_path) == 3
    for text in _evidence(tmp_path).values():
        assert text == (
            "not checked: the services could not be started: "
            "redis: no backend could start it (docker: no engine)"
        )


def test_the_harness_failing_at_start_still_writes_the_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("no luck")

    monkeypatch.setattr(signoff.stages, "start_services", broken)
    assert _run(tmp_path) == 3
    for text in _evidence(tmp_path).values():
        assert text.startswith(
            "not checked: the harness itself failed before this claim: RuntimeError: no luck (at "
        )
    assert any("the harness failed while starting the run" in n for n in _notes(tmp_path))


def test_pytest_stopping_early_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def first_fails(ctx: RunContext, ref: Any) -> Verdict:
        return Verdict(ref.id, ref.kind, "fails", evidence="seeded failure")

    monkeypatch.setattr(signoff.checks, "check", first_fails)
    assert _pytest(tmp_path, SUITES, "-x") == 1
    evidence = _evidence(tmp_path)
    assert evidence["timeout:first"] == "seeded failure"
    assert evidence["timeout:second"] == (
        "not checked: pytest stopped the run early (stopping after 1 failures, -x or --maxfail) "
        "before it"
    )


def test_a_deselected_claim_is_named(tmp_path: Path) -> None:
    assert _pytest(tmp_path, SUITES, "-k", "first") == 0
    evidence = _evidence(tmp_path)
    assert evidence["timeout:second"] == "not checked: deselected (pytest's -k, -m or --deselect)"
    assert evidence["timeout:first"].startswith("ended after ")


def test_a_suite_pytest_cannot_collect_is_named_and_is_no_interruption(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / f"test_own_{tmp_path.name}.py").write_text(OWN_SUITE)
    (suites / "test_broken.py").write_text("import no_such_module_for_signoff\n")
    status = _pytest(tmp_path, suites)
    assert status == 3  # the harness could not run; pytest alone would say 2, "interrupted"
    for text in _evidence(tmp_path).values():
        assert text.startswith("not checked: pytest could not collect the suites, so no claim")
        assert "test_broken.py" in text
        assert "ModuleNotFoundError: No module named 'no_such_module_for_signoff'" in text
    assert not any("interrupted" in note for note in _notes(tmp_path))


def test_a_kind_no_collected_suite_checks_is_named(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / f"test_own_{tmp_path.name}.py").write_text(OWN_SUITE)
    text = CLAIMS + '[cron]\ncall = "os:getpid"\nmax_results = 1\nwithin = "1s"\n'
    assert _pytest(tmp_path, suites, text=text) == 0  # pytest itself ran all it had
    evidence = _evidence(tmp_path)
    assert evidence["cron:time"] == (
        "not checked: no test checks it: none of the suites pytest collected checks cron "
        "claims (was pytest given only some of suites/?)"
    )
    _never_the_old_answer(evidence)


def test_a_test_broken_before_its_check_is_named(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    broken = OWN_SUITE.replace("(claim, request)", "(claim, request, no_such_fixture)")
    (suites / f"test_own_{tmp_path.name}.py").write_text(broken)
    assert _pytest(tmp_path, suites) == 1
    for text in _evidence(tmp_path).values():
        assert text == (
            "not checked: the harness failed setting up its test: "
            "fixture 'no_such_fixture' not found"
        )


class _DeadRedis:
    """A started service that has died since: its ping says so."""

    name = "redis"
    host, port = "127.0.0.1", 9
    startup_s = 0.01

    def describe(self) -> str:
        return "embedded 7.2.4"

    def ping(self, timeout: float = 2.0) -> None:
        raise ServiceError("redis: no answer from 127.0.0.1:9 (connection refused)")

    def stop(self) -> None:
        pass


def test_a_service_that_died_before_a_claim_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []

    def check(ctx: RunContext, ref: Any) -> Verdict:
        checked.append(ref.id)
        return Verdict(ref.id, ref.kind, "holds")

    monkeypatch.setattr(signoff.stages, "start_services", lambda *a, **k: {"redis": _DeadRedis()})
    monkeypatch.setattr(signoff.checks, "check", check)
    assert _run(tmp_path) == 1
    assert checked == []  # never measured against a dead service
    for text in _evidence(tmp_path).values():
        assert text == (
            "not checked: redis (embedded 7.2.4) stopped answering before this claim, outside "
            "any fault\nredis: no answer from 127.0.0.1:9 (connection refused)"
        )
