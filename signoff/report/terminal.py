"""The short verdict table printed at the end of a run."""

from __future__ import annotations

from typing import Any

from signoff.units import format_duration
from signoff.verdict import Verdict

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


def render_table(verdicts: list[Verdict], width: int = 100) -> list[str]:
    """One line per claim (status, headline figure, id), failures with their evidence below."""
    if not verdicts:
        return ["no claims were checked"]
    lines = []
    for v in verdicts:
        lines.append(f"{_WORD[v.status]:<5}  {headline(v.measured):>9}  {v.id}"[:width].rstrip())
        if v.status != "holds" and v.evidence:
            for ev_line in v.evidence.splitlines()[:3]:
                lines.append(f"{'':18}{ev_line}"[:width].rstrip())
    return lines
