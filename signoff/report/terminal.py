"""The short verdict table printed at the end of a run."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from signoff.units import format_duration
from signoff.verdict import Verdict

if TYPE_CHECKING:
    from signoff.report.compare import Comparison

_WORD = {"holds": "HOLDS", "fails": "FAILS", "error": "ERROR"}


def headline(measured: dict[str, Any]) -> str:
    """The first figure of a verdict, short: "43 ms", "9.214 s"."""
    for key, value in measured.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        return (
            format_duration(float(value))
            if key.endswith("_s") or key == "seconds"
            else f"{value:g}"
        )
    return "-"


_ORDER = {"fails": 0, "error": 1, "holds": 2}  # what needs a look first
INDENT = 18  # evidence lines start under the claim id


def render_table(verdicts: list[Verdict], width: int = 100) -> list[str]:
    """One line per claim (status, headline figure, id), failing and unchecked claims first,
    each with its whole evidence below: long lines wrap at `width`, nothing is cut."""
    if not verdicts:
        return ["no claims were checked"]
    lines: list[str] = []
    for v in sorted(verdicts, key=lambda v: _ORDER[v.status]):  # stable: file order within
        head = f"{_WORD[v.status]:<5}  {headline(v.measured):>9}  "
        lines.extend(_wrap(v.id, width, first=head, rest=" " * INDENT))
        if v.status != "holds" and v.evidence:
            for ev_line in v.evidence.splitlines():
                lines.extend(_wrap(ev_line, width, first=" " * INDENT, rest=" " * (INDENT + 2)))
    return lines


def _wrap(text: str, width: int, *, first: str, rest: str) -> list[str]:
    wrapped = textwrap.wrap(
        text,
        width=max(width, len(first) + 20),
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=True,
        break_on_hyphens=False,
    )
    return wrapped or [first.rstrip()]


_CHANGE_WORD = {
    "now fails": "NOW FAILS",
    "worse": "WORSE",
    "gone": "GONE",
    "new": "NEW",
    "now holds": "NOW HOLDS",
    "better": "BETTER",
    "unchanged": "UNCHANGED",
}
CHANGE_INDENT = 11  # a change's note starts under its figures


def render_comparison(comparison: Comparison, width: int = 100) -> list[str]:
    """The comparison with a baseline: a line saying what changed, then one line per claim
    (change, the baseline's figure -> this run's, id), regressions first; each claim that
    changed has its note below (the figure's move against its noise), wrapped, never cut."""
    started = f", started {comparison.baseline_started}" if comparison.baseline_started else ""
    lines = _wrap(
        f"compared with the baseline {comparison.baseline}{started}: {comparison.summary()}",
        width,
        first="",
        rest="  ",
    )
    for note in comparison.notes:
        lines.extend(_wrap(f"note: {note}", width, first="", rest="      "))
    for c in comparison.ordered():
        old = c.old or (c.old_status or "-")
        new = c.new or (c.new_status or "-")
        head = f"{_CHANGE_WORD[c.change]:<9}  {old:>9} -> {new:<9}  "
        lines.extend(_wrap(c.id, width, first=head, rest=" " * len(head)))
        if c.change != "unchanged" and c.note:
            indent = " " * CHANGE_INDENT
            lines.extend(_wrap(c.note, width, first=indent, rest=indent + "  "))
    return lines
