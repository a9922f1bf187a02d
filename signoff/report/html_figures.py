"""Which plots signoff.html shows: with each claim (opened), and for whole kinds after the
claims."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from signoff.report.html_load import load_figures
from signoff.report.html_plots import (
    IMPORT_LEGEND,
    Figure,
    RowChart,
    cases_chart,
    degradation_rows,
    degradation_timeline,
    import_children,
    import_row,
    imports_chart,
    safely,
    time_chart,
    timeouts_chart,
    timing_chart,
    websocket_rows,
)
from signoff.report.html_svg import tick_seconds
from signoff.verdict import Verdict


def claim_figures(v: Verdict, folder: Path) -> list[Figure]:
    """The plots shown with one claim."""
    drawn: list[Figure | None] = []
    if v.kind == "import":
        drawn.append(safely("runs against the budget", lambda: _import_strip(v)))
        drawn.append(safely("the slowest imports", lambda: import_children(v)))
    elif v.kind == "degradation":
        drawn.append(safely("timeline", lambda: degradation_timeline(v) or degradation_rows(v)))
    elif v.kind == "websocket":
        drawn.append(safely("heartbeat gaps", lambda: websocket_rows(v)))
    elif v.kind == "load":
        drawn.extend(load_figures(v, folder))
    else:
        drawn.append(safely("time against the time claimed", lambda: time_chart(v)))
    return [f for f in drawn if f is not None]


def _import_strip(v: Verdict) -> str:
    chart = RowChart(v.id, fmt=tick_seconds, log=True)
    chart.add(import_row(v))
    return chart.render() + IMPORT_LEGEND


def kind_figures(verdicts: Sequence[Verdict]) -> list[Figure]:
    """The plots of whole kinds: every import, every timeout, every cron and webhook case."""

    def of(*kinds: str) -> list[Verdict]:
        return [v for v in verdicts if v.kind in kinds]

    drawn = []
    if of("import"):
        drawn.append(
            safely(
                "Imports: each module's runs, median and budget",
                lambda: imports_chart(of("import")),
            )
        )
    if of("timeout"):
        drawn.append(
            safely(
                "Timeouts: time against the time claimed, per fault",
                lambda: timeouts_chart(of("timeout")),
            )
        )
    if of("cron", "webhook"):
        drawn.append(
            safely(
                "Cron and webhooks: cases tried, passed, failed",
                lambda: cases_chart(of("cron", "webhook")),
            )
        )
        drawn.append(safely("Webhooks: the timing test", lambda: timing_chart(of("webhook"))))
    return [f for f in drawn if f is not None]
