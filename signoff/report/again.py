"""`signoff report DIR`: the reports of a run folder rendered again from its ledger and run.json,
a run that was killed or interrupted before it wrote them included. A claim the run planned and
never gave a verdict is `error` ("not checked"), never left out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from signoff.errors import UsageError
from signoff.ledger import read_ledger
from signoff.report import write_reports
from signoff.report.run_info import RUN_FILE, RunInfo
from signoff.verdict import Verdict

UNFINISHED = (
    "the run ended before it wrote its reports (killed, or its machine stopped): these were "
    "rendered again from its ledger by `signoff report`, and its duration runs to its last "
    "verdict"
)
NEVER_CHECKED = "not checked: the run ended before this claim's verdict"


def render_again(folder: Path) -> tuple[RunInfo, list[Verdict]]:
    """Write signoff.json, junit.xml and summary.md of `folder` again; the run and verdicts."""
    ledger = folder / "ledger.jsonl"
    if not ledger.is_file():
        raise UsageError(
            f"{folder}: no ledger.jsonl here; expected the report folder of a run "
            "(reports/<time>-<target>/, or a run's --report-dir)"
        )
    try:
        info = RunInfo.load(folder)
    except ValueError as exc:
        raise UsageError(f"{exc}; expected a run folder written by signoff 0.1 or later") from None
    order = {claim_id: i for i, (claim_id, _) in enumerate(info.planned)}
    # the claims file's order, as the run's own reports have it (the ledger's is as they ended)
    verdicts = sorted(read_ledger(ledger), key=lambda v: order.get(v.id, len(order)))
    done = {v.id for v in verdicts}
    verdicts += [
        Verdict(i, kind, "error", evidence=NEVER_CHECKED)
        for i, kind in info.planned
        if i not in done
    ]
    if not info.finished:
        last = datetime.fromtimestamp(ledger.stat().st_mtime, UTC)
        info.duration_s = max(0.0, (last - info.started).total_seconds())
        if UNFINISHED not in info.notes:
            info.notes.append(UNFINISHED)
    write_reports(info, verdicts, folder)
    return info, verdicts


__all__ = ["RUN_FILE", "render_again"]
