"""The detection matrix for the reports target (seed 003), reference side: every claim of
targets/reports/signoff.toml holds, cron and webhooks included. Its regressions are run by
tests/test_cron.py and tests/test_webhooks.py, each against the claims aimed at its bug."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runs import ROOT, claims, signoff

pytestmark = pytest.mark.slow


def test_reports_reference_holds_every_claim(tmp_path: Path) -> None:
    run = signoff(
        "run",
        str(ROOT / "targets" / "reports" / "signoff.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path),
        timeout=600,
    )
    found = claims(tmp_path)
    kinds = {claim_id.split(":")[0] for claim_id in found}
    assert {"import", "timeout", "http", "cron", "webhook"} <= kinds
    assert {"cron:time", "cron:count", "cron:correct", "cron:invalid"} <= set(found)
    assert {
        "webhook:vectors",
        "webhook:forgery",
        "webhook:constant-time",
        "webhook:url-validator",
    } <= set(found)
    broken = {k: (v["status"], v["evidence"]) for k, v in found.items() if v["status"] != "holds"}
    assert broken == {}
    assert run.returncode == 0, run.stdout[-3000:]
    assert "whsec_" not in (tmp_path / "signoff.json").read_text()  # the secret stays out
