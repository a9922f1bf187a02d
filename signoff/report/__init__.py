"""Report writers: the ledger of verdicts becomes signoff.json, junit.xml, summary.md and
signoff.html."""

from __future__ import annotations

import os
from pathlib import Path

from signoff.report.compare import Comparison, comparison_for
from signoff.report.html import write_html
from signoff.report.junit import write_junit
from signoff.report.markdown import render_markdown
from signoff.report.run_info import RunInfo
from signoff.report.signoff_json import write_json
from signoff.verdict import Verdict

__all__ = ["RunInfo", "write_reports"]


def write_reports(
    info: RunInfo, verdicts: list[Verdict], folder: Path, comparison: Comparison | None = None
) -> list[Path]:
    """Write every report into `folder`; append the summary to $GITHUB_STEP_SUMMARY if set.
    `comparison`: the run against a baseline (default: the one run.json names, if any), in
    summary.md and signoff.html."""
    folder.mkdir(parents=True, exist_ok=True)
    if comparison is None:
        comparison = comparison_for(info, verdicts, folder)  # a run made with --baseline
    written = [
        write_json(info, verdicts, folder / "signoff.json"),
        write_junit(info, verdicts, folder / "junit.xml"),
    ]
    summary = render_markdown(info, verdicts, comparison)
    (folder / "summary.md").write_text(summary, encoding="utf-8")
    written.append(folder / "summary.md")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as out:
            out.write(summary + "\n")
    written.append(write_html(info, verdicts, folder, comparison))
    return written
