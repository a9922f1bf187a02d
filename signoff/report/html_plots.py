"""The plots of signoff.html, one or more per kind, drawn from what each verdict's `budget` and
`measured` hold (and, for load claims, the run folder's artifacts: html_load). A plot never
stops the page: one that cannot be drawn from what a ledger holds is a line saying why."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from signoff.report.html_svg import (
    Axis,
    Plot,
    Row,
    RowChart,
    band,
    bar,
    dot,
    esc,
    legend,
    tick,
    tick_plain,
    tick_seconds,
)
from signoff.units import format_duration
from signoff.verdict import Verdict

_RANK = {"fails": 0, "error": 1, "holds": 2}


@dataclass(frozen=True)
class Figure:
    title: str
    body: str  # HTML: a plot or a row chart, and its legend


def number(figures: Mapping[str, Any], key: str) -> float | None:
    value = figures.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def name_of(v: Verdict) -> str:
    """The claim's name without its kind: "core.tasks" of "import:core.tasks"."""
    return v.id.partition(":")[2] or v.id


def safely(title: str, draw: Callable[[], str]) -> Figure | None:
    """The figure `draw` makes, None when it has nothing to show, or a line saying why it could
    not be drawn: a ledger from another version may hold figures of another shape."""
    try:
        body = draw()
    except Exception as exc:  # the rest of the page must render, whatever this is
        return Figure(
            title, f'<p class="plot-error">not drawn: {esc(type(exc).__name__)}: {esc(exc)}</p>'
        )
    return Figure(title, body) if body else None


# -- imports -------------------------------------------------------------------------------------

IMPORT_LEGEND = legend(
    [("run", "one fresh interpreter"), ("median", "median"), ("budget", "budget")]
)


def import_row(v: Verdict) -> Row:
    runs = [float(r) for r in v.measured.get("runs_s") or [] if isinstance(r, int | float)]
    median, budget = number(v.measured, "median_s"), number(v.budget, "median_s")
    hung = number(v.measured, "hung_after_s")
    marks = [dot(r, "run", f"a fresh interpreter: {format_duration(r)}") for r in runs]
    if median is not None:
        marks.append(tick(median, "median", f"median of {len(runs)}: {format_duration(median)}"))
    if hung is not None:
        marks.append(dot(hung, "hung", f"still importing after {format_duration(hung)}: hung"))
    if budget is not None:
        marks.append(tick(budget, "budget", f"budget {format_duration(budget)}"))
    if hung is not None:
        figure = f"hung ({format_duration(hung)})"
    elif median is not None:
        figure = format_duration(median) + (f" / {format_duration(budget)}" if budget else "")
    else:
        figure = v.status
    return Row(name_of(v), marks, figure, status=v.status)


def imports_chart(verdicts: Sequence[Verdict]) -> str:
    def headroom(v: Verdict) -> tuple[int, float]:
        median, budget = number(v.measured, "median_s"), number(v.budget, "median_s")
        ratio = median / budget if median is not None and budget else 0.0
        return _RANK[v.status], -ratio

    chart = RowChart("cold imports against their budgets", fmt=tick_seconds, log=True)
    for v in sorted(verdicts, key=headroom):
        chart.add(import_row(v))
    return chart.render() + IMPORT_LEGEND


def import_children(v: Verdict) -> str:
    """An over-budget module's slowest imports (`-X importtime`, cumulative), against its
    budget."""
    slowest = v.measured.get("slowest_imports") or []
    budget = number(v.budget, "median_s")
    chart = RowChart(f"the slowest imports under {name_of(v)}", fmt=tick_seconds)
    for name, seconds in slowest:
        marks = [bar(0, float(seconds), "bar-fails", f"{name}: {format_duration(seconds)}")]
        if budget is not None:
            marks.append(tick(budget, "budget", f"the module's budget {format_duration(budget)}"))
        chart.add(Row(str(name), marks, format_duration(float(seconds))))
    if not chart.rows:
        return ""
    note = '<p class="note">cumulative time of each, from one more import with -X importtime</p>'
    return chart.render() + legend([("bar-fails", "its import"), ("budget", "budget")]) + note


# -- a time against its budget (timeouts, and any claim with `within`) -----------------------------

TIME_LEGEND = legend(
    [
        ("bar-holds", "measured"),
        ("budget", "claimed"),
        ("tol", "tolerance"),
        ("bar-hung", "still running when watching stopped"),
    ]
)


def time_row(v: Verdict, label: str, sublabel: str = "") -> Row | None:
    within, slack = number(v.budget, "within_s"), number(v.budget, "tolerance_s") or 0.0
    seconds, watched = number(v.measured, "seconds"), number(v.measured, "watched_s")
    if within is None or (seconds is None and watched is None):
        return None
    claimed = f"claimed within {format_duration(within)} (+{format_duration(slack)})"
    marks = [band(within, within + slack, "tol", claimed), tick(within, "budget", claimed)]
    if seconds is not None:
        # coloured by the time alone: a claim can fail in time for another reason
        late = "fails" if seconds > within + slack else "holds"
        marks.insert(0, bar(0, seconds, f"bar-{late}", f"took {format_duration(seconds)}"))
        figure = f"{format_duration(seconds)} / {format_duration(within)}"
    else:
        assert watched is not None
        what = f"still running when watching stopped at {format_duration(watched)}"
        marks.insert(0, bar(0, watched, "bar-hung", what))
        figure = f"> {format_duration(watched)}"
    return Row(label, marks, figure, sublabel, v.status)


def timeouts_chart(verdicts: Sequence[Verdict]) -> str:
    """Every timeout claim's time against its `within`, grouped by fault."""
    chart = RowChart("client timeouts against the time claimed, per fault", fmt=tick_seconds)
    for v in sorted(verdicts, key=lambda v: str(v.budget.get("fault", ""))):
        row = time_row(v, name_of(v), str(v.budget.get("fault", "no fault")))
        if row is not None:
            chart.add(row)
    return chart.render() + TIME_LEGEND if chart.rows else ""


def time_chart(v: Verdict) -> str:
    row = time_row(v, "took", str(v.budget.get("fault", "")))
    if row is None:
        return ""
    chart = RowChart(f"{v.id}: time against the time claimed", fmt=tick_seconds)
    chart.add(row)
    return chart.render() + TIME_LEGEND


# -- degradation: a timeline ---------------------------------------------------------------------

_LANES = {0.5: "calls", 1.5: "fault"}


def degradation_timeline(v: Verdict) -> str:
    """Fault on, the degraded answers, the fault lifted, the service back, each recovery call
    (still the stand-in, or the real thing), on one time axis from the fault on."""
    events = [e for e in v.measured.get("timeline") or [] if isinstance(e, dict)]
    if not events:
        return ""
    at = {str(e.get("event")): e for e in events}
    ends = [float(e["at_s"]) for e in events if isinstance(e.get("at_s"), int | float)]
    within, recovers = number(v.budget, "within_s"), number(v.budget, "recovers_s")
    call, back = at.get("call"), at.get("back")
    deadlines: list[float] = []
    if call is not None and within is not None:
        deadlines.append(float(call.get("from_s", 0.0)) + within)
    if back is not None and recovers is not None:
        deadlines.append(float(back["at_s"]) + recovers)
    x = Axis.fit([*ends, *deadlines], fmt=tick_seconds)
    y = Axis(0.0, 2.0, lambda t: _LANES.get(t, ""), ticks=tuple(_LANES))
    plot = Plot(x, y, f"{v.id}: timeline", height=170, x_title="since the fault was put on")
    lifted = at.get("lifted")
    fault_end = float((lifted or back or {"at_s": x.hi})["at_s"])
    plot.rect(0.0, fault_end, 1.15, 1.85, "fault-on", f"{v.budget.get('fault', 'the fault')}")
    if lifted is not None and back is not None:
        plot.rect(
            float(lifted["at_s"]),
            float(back["at_s"]),
            1.15,
            1.85,
            "fault-lifting",
            "the fault lifted: the service restarting, until it answers",
        )
    for e in events:
        kind = e.get("event")
        if kind in ("call", "then"):
            end = float(e["at_s"])
            start = float(e.get("from_s") or end)
            plot.rect(
                start,
                end,
                0.2,
                0.8,
                "answer",
                f"{kind}: {e.get('result', '')} after {format_duration(end - start)}",
            )
        elif kind == "recovery call":
            cls = "real" if e.get("degraded") is False else "stand-in"
            if str(e.get("result", "")).startswith("raised"):
                cls = "raised"
            plot.dot(float(e["at_s"]), 0.5, cls, f"{e.get('result', '')} at {e['at_s']} s", 4.0)
    if lifted is not None:
        plot.vline(float(lifted["at_s"]), "lifted", "lifted", row=2)
    if call is not None and within is not None:
        plot.vline(float(call.get("from_s", 0.0)) + within, "budget", "answer due")
    if back is not None and recovers is not None:
        plot.vline(float(back["at_s"]) + recovers, "budget", "recovery due", row=1)
    recovered = number(v.measured, "recovered_after_s")
    if back is not None and recovered is not None:
        plot.vline(float(back["at_s"]) + recovered, "recovered", "recovered", row=3)
    return plot.render() + legend(
        [
            ("fault-on", "fault in force"),
            ("fault-lifting", "lifted, service coming back"),
            ("answer", "degraded call"),
            ("stand-in", "recovery call: still the stand-in"),
            ("real", "recovery call: the real one"),
        ]
    )


def degradation_rows(v: Verdict) -> str:
    """Without a timeline (a ledger of an older run): the time to degrade, and to recover."""
    chart = RowChart(f"{v.id}: degraded and recovered", fmt=tick_seconds)
    row = time_row(v, "degraded in", str(v.budget.get("fault", "")))
    if row is not None:
        chart.add(row)
    recovered, recovers = number(v.measured, "recovered_after_s"), number(v.budget, "recovers_s")
    if recovers is not None:
        slack = number(v.budget, "recovers_tolerance_s") or 0.0
        marks = [band(recovers, recovers + slack, "tol"), tick(recovers, "budget", "claimed")]
        figure = "never" if recovered is None else format_duration(recovered)
        if recovered is not None:
            marks.insert(0, bar(0, recovered, f"bar-{v.status}", f"recovered in {figure}"))
        chart.add(Row("recovered in", marks, figure, "after the fault was lifted", v.status))
    return chart.render() + TIME_LEGEND if chart.rows else ""


# -- websocket: each heartbeat gap ---------------------------------------------------------------


def websocket_rows(v: Verdict) -> str:
    b, m = v.budget, v.measured
    chart = RowChart(f"{v.id}: heartbeats and closes", fmt=tick_seconds)
    every, slack = number(b, "heartbeat_s"), number(b, "heartbeat_tolerance_s") or 0.0
    gaps = [float(g) for g in m.get("gaps_s") or [] if isinstance(g, int | float)]
    limit = (every or 0.0) + slack

    def claimed(at: float | None, tol: float, words: str) -> list[Any]:
        if at is None:
            return []
        return [band(at, at + tol, "tol", words), tick(at, "budget", words)]

    hb = f"a beat every {format_duration(every or 0)} (+{format_duration(slack)})"
    for i, gap in enumerate(gaps, 1):
        status = "fails" if every is not None and gap > limit else "holds"
        marks = [bar(0, gap, f"bar-{status}", f"gap {i}: {format_duration(gap)}")]
        chart.add(Row(f"gap {i}", marks + claimed(every, slack, hb), format_duration(gap)))
    open_gap = number(m, "open_gap_s")
    if open_gap is not None:
        what = f"nothing for {format_duration(open_gap)} until watching stopped"
        marks = [bar(0, open_gap, "bar-hung", what)]
        chart.add(
            Row(
                f"gap {len(gaps) + 1}",
                [*marks, *claimed(every, slack, hb)],
                f"> {format_duration(open_gap)}",
                "no beat came",
                "fails",
            )
        )
    idle, idle_open = number(b, "idle_close_s"), number(m, "idle_open_s")
    closed = number(m, "idle_closed_s")
    if idle is not None and (closed is not None or idle_open is not None):
        slack_idle = number(b, "idle_close_tolerance_s") or 0.0
        words = f"closed within {format_duration(idle)} (+{format_duration(slack_idle)})"
        seen = closed if closed is not None else idle_open or 0.0
        late = seen > idle + slack_idle or closed is None
        cls = "bar-hung" if closed is None else f"bar-{'fails' if late else 'holds'}"
        figure = format_duration(seen) if closed is not None else f"open > {format_duration(seen)}"
        chart.add(
            Row(
                "idle client closed after",
                [bar(0, seen, cls, figure), *claimed(idle, slack_idle, words)],
                figure,
                "",
                "fails" if late else "",
            )
        )
    stays, open_s = number(b, "stays_open_s"), number(m, "open_s")
    if stays is not None and open_s is not None:
        slack_open = number(b, "stays_open_tolerance_s") or 0.0
        short = open_s < stays - slack_open
        marks = [
            bar(0, open_s, f"bar-{'fails' if short else 'holds'}", format_duration(open_s)),
            band(stays - slack_open, stays, "tol"),
            tick(stays, "budget", "claimed open"),
        ]
        chart.add(Row("answering clients open", marks, format_duration(open_s)))
    return chart.render() + TIME_LEGEND if chart.rows else ""


# -- cron and webhooks: cases tried, passed, failed -------------------------------------------

_TRIED = ("cases", "calls")
_FAILED = ("failed", "wrong", "accepted", "over_limit", "over_budget")
_UNJUDGED = ("not_judged", "not_counted")


def cases_of(v: Verdict) -> tuple[int, int, int] | None:
    """(passed, failed, not judged) of a cron or webhook sub-claim, None when it counts none."""
    m = v.measured

    def first(keys: tuple[str, ...]) -> int | None:
        return next((int(m[k]) for k in keys if number(m, k) is not None), None)

    if "allowed_wrongly" in m:  # the URL validator: its budget says how many of each
        tried = int(number(v.budget, "must_refuse") or 0) + int(number(v.budget, "must_allow") or 0)
        failed = int(number(m, "allowed_wrongly") or 0) + int(number(m, "refused_wrongly") or 0)
        return max(tried - failed, 0), failed, 0
    found = first(_TRIED)
    if found is None:
        return None
    tried, failed, unjudged = found, first(_FAILED) or 0, first(_UNJUDGED) or 0
    examples = number(m, "property_examples")
    if examples is not None:  # webhook:forgery's hypothesis examples count as cases too
        tried += int(examples)
        failed += 1 if m.get("property_accepted") else 0
    return max(tried - failed - unjudged, 0), failed, unjudged


def cases_chart(verdicts: Sequence[Verdict]) -> str:
    chart = RowChart("cases tried, passed and failed", fmt=tick_plain)
    for v in verdicts:
        counts = cases_of(v)
        if counts is None:
            continue
        passed, failed, unjudged = counts
        marks = [bar(0, passed, "bar-holds", f"{passed} passed")]
        if failed:
            marks.append(bar(passed, passed + failed, "bar-fails", f"{failed} failed"))
        if unjudged:
            end = passed + failed + unjudged
            marks.append(bar(passed + failed, end, "bar-unjudged", f"{unjudged} not judged"))
        total = passed + failed + unjudged
        figure = f"{total} tried, {failed} failed" + (
            f", {unjudged} not judged" if unjudged else ""
        )
        chart.add(Row(v.id, marks, figure, status=v.status))
    if not chart.rows:
        return ""
    return chart.render() + legend(
        [("bar-holds", "passed"), ("bar-fails", "failed"), ("bar-unjudged", "not judged")]
    )


def timing_chart(verdicts: Sequence[Verdict]) -> str:
    """webhook:constant-time: Welch's t against the threshold it fails above."""
    chart = RowChart("timing test: Welch's t against its threshold", fmt=tick_plain)
    for v in verdicts:
        t, limit = number(v.measured, "t"), number(v.budget, "t_threshold")
        if t is None or limit is None:
            continue
        marks = [
            bar(0, abs(t), f"bar-{v.status}", f"t = {t:g}"),
            tick(limit, "budget", "fails above"),
        ]
        second = number(v.measured, "t_confirm")
        if second is not None:
            marks.append(dot(abs(second), "run", f"confirmation: t = {second:g}"))
        chart.add(Row(v.id, marks, f"|t| {abs(t):.1f} / {limit:g}", status=v.status))
    if not chart.rows:
        return ""
    return chart.render() + legend([("bar-holds", "|t|"), ("budget", "fails above")])
