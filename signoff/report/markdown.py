"""summary.md: the verdict table a person reads in a CI summary or a release ticket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from signoff.report.figures import describe
from signoff.report.run_info import RunInfo
from signoff.units import format_duration
from signoff.verdict import Verdict, overall

if TYPE_CHECKING:
    from signoff.report.compare import ClaimChange, Comparison

_MARK = {"holds": "✅ holds", "fails": "❌ fails", "error": "⚠️ error"}
_CHANGE_MARK = {
    "now fails": "🔻 now fails",
    "worse": "🔻 worse",
    "gone": "➖ gone",
    "new": "➕ new",
    "now holds": "🔺 now holds",
    "better": "🔺 better",
    "unchanged": "unchanged",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(
    info: RunInfo, verdicts: list[Verdict], comparison: Comparison | None = None
) -> str:
    counts = {s: sum(v.status == s for v in verdicts) for s in ("holds", "fails", "error")}
    facts = [
        f"{counts['holds']} hold, {counts['fails']} fail, {counts['error']} could not be checked",
        format_duration(info.duration_s),
        f"Python {info.python}",
    ]
    if info.services:
        facts.append(", ".join(f"{k} {v}" for k, v in info.services.items()))
    if comparison is not None:  # said at the top; its section follows the claims
        facts.append(f"against the baseline: {comparison.summary()}")
    lines = [f"## signoff: {info.target} {overall(verdicts)}", "", " · ".join(facts), ""]
    lines += [f"> {note}" for note in info.notes]
    lines += ["| claim | status | budget | measured | evidence |", "|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(
            f"| `{_cell(v.id)}` | {_MARK[v.status]} | {_cell(describe(v.budget))} | "
            f"{_cell(describe(v.measured))} | {_cell(v.evidence)} |"
        )
    if comparison is not None:
        lines += ["", *render_comparison_markdown(comparison)]
    return "\n".join(lines) + "\n"


def render_comparison_markdown(comparison: Comparison) -> list[str]:
    """The comparison with a baseline: what changed in a table, regressions first, and the
    unchanged claims folded under it."""
    started = f" (started {comparison.baseline_started})" if comparison.baseline_started else ""
    lines = [
        f"### Against the baseline: {comparison.summary()}",
        "",
        f"Baseline: `{_cell(comparison.baseline)}`{started}",
        "",
    ]
    if comparison.notes:
        lines += [*(f"> {note}" for note in comparison.notes), ""]
    changed = [c for c in comparison.ordered() if c.change != "unchanged"]
    same = [c for c in comparison.ordered() if c.change == "unchanged"]
    if changed:
        lines += [*_change_table(changed), ""]
    if same:
        lines += [
            f"<details><summary>{len(same)} unchanged</summary>",
            "",
            *_change_table(same),
            "",
            "</details>",
            "",
        ]
    return lines


def _change_table(changes: list[ClaimChange]) -> list[str]:
    lines = ["| claim | change | baseline | this run | why |", "|---|---|---|---|---|"]
    for c in changes:
        old = f"{c.label} {c.old}" if c.old else (c.old_status or "-")
        new = f"{c.label} {c.new}" if c.new else (c.new_status or "-")
        lines.append(
            f"| `{_cell(c.id)}` | {_CHANGE_MARK[c.change]} | {_cell(old)} | {_cell(new)} | "
            f"{_cell(c.note)} |"
        )
    return lines
