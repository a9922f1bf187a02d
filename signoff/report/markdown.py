"""summary.md: the verdict table a person reads in a CI summary or a release ticket."""

from __future__ import annotations

from signoff.report.figures import describe
from signoff.report.run_info import RunInfo
from signoff.units import format_duration
from signoff.verdict import Verdict, overall

_MARK = {"holds": "✅ holds", "fails": "❌ fails", "error": "⚠️ error"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(info: RunInfo, verdicts: list[Verdict]) -> str:
    counts = {s: sum(v.status == s for v in verdicts) for s in ("holds", "fails", "error")}
    lines = [
        f"## signoff: {info.target} {overall(verdicts)}",
        "",
        f"{counts['holds']} hold, {counts['fails']} fail, {counts['error']} could not be checked"
        f" · {format_duration(info.duration_s)} · Python {info.python}"
        + (
            " · " + ", ".join(f"{k} {v}" for k, v in info.services.items()) if info.services else ""
        ),
        "",
    ]
    lines += [f"> {note}" for note in info.notes]
    lines += ["| claim | status | budget | measured | evidence |", "|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(
            f"| `{_cell(v.id)}` | {_MARK[v.status]} | {_cell(describe(v.budget))} | "
            f"{_cell(describe(v.measured))} | {_cell(v.evidence)} |"
        )
    return "\n".join(lines) + "\n"
