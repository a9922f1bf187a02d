"""Report writers: the ledger of verdicts becomes signoff.json, junit.xml and summary.md."""

from __future__ import annotations

import os
from pathlib import Path

from signoff.report.junit import write_junit
from signoff.report.markdown import render_markdown
from signoff.report.run_info import RunInfo
from signoff.report.signoff_json import write_json
from signoff.verdict import Verdict

__all__ = ["RunInfo", "write_reports"]


def write_reports(info: RunInfo, verdicts: list[Verdict], folder: Path) -> list[Path]:
    """Write every report into `folder`; append the summary to $GITHUB_STEP_SUMMARY if set."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [
        write_json(info, verdicts, folder / "signoff.json"),
        write_junit(info, verdicts, folder / "junit.xml"),
    ]
    summary = render_markdown(info, verdicts)
    (folder / "summary.md").write_text(summary, encoding="utf-8")
    written.append(folder / "summary.md")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as out:
            out.write(summary + "\n")
    return written
