"""The plots of a [[load]] claim in signoff.html, read from what the claim left in the run
folder (load/<claim>/): every request's exact time (times-*.jsonl) as p50/p95/p99 over time per
request name with its bounds, the requests per second, the users Locust had running
(locust_stats_history.csv), and the server's memory over time (memory.csv) against `max_rss` or
the memory limit. Long series are cut into at most MAX_POINTS windows."""

from __future__ import annotations

import csv
import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signoff.locust_files import aggregated_users, started_at
from signoff.report.html_plots import Figure, number, safely
from signoff.report.html_svg import Axis, Plot, Row, RowChart, bar, esc, legend, tick, tick_seconds
from signoff.units import format_duration, format_size
from signoff.verdict import Verdict

MAX_POINTS = 500  # per series
STEPS = MAX_POINTS // 2  # a step line draws two points for each
MIN_PER_WINDOW = 10  # requests a latency window should hold, on average, for its percentiles
WINDOWS = (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)  # seconds
BOUND_ROOM = 3.0  # a latency bound more than this times the highest point is named, not drawn
MAX_NAMES = 6  # latency plots per claim: the names with bounds first
REPORT_LINE = "Locust's report: "
MIB = 1024 * 1024


@dataclass(frozen=True)
class Timed:
    t: float  # seconds since the test started, when the request ended
    name: str
    ms: float
    ok: bool
    job: bool  # a flow's job timing (method JOB), not an HTTP request


def claim_folder(v: Verdict, folder: Path) -> Path | None:
    """The claim's folder under the run folder's load/: the one its evidence names (by its
    name, so a run folder that was moved or copied still finds its own)."""
    for line in v.evidence.splitlines():
        if line.startswith(REPORT_LINE):
            found = folder / "load" / Path(line.removeprefix(REPORT_LINE).strip()).name
            return found if found.is_dir() else None
    return None


def read_requests(folder: Path, start: float | None) -> list[Timed]:
    """Every request of times-*.jsonl, named as signoff's figures name them: a name sent with
    two methods is "METHOD name"."""
    rows: list[tuple[float, str, str, float, bool]] = []
    for path in sorted(folder.glob("times-*.jsonl")):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    r = json.loads(line)
                    rows.append(
                        (float(r["t"]), str(r["n"]), str(r["m"]), float(r["ms"]), bool(r["ok"]))
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed process
    if not rows:
        return []
    origin = start if start is not None else min(t - ms / 1000 for t, _, _, ms, _ in rows)
    methods: dict[str, set[str]] = {}
    for _, name, method, _, _ in rows:
        methods.setdefault(name, set()).add(method)
    return [
        Timed(
            t - origin,
            name if len(methods[name]) == 1 else f"{method} {name}",
            ms,
            ok,
            method == "JOB",
        )
        for t, name, method, ms, ok in sorted(rows)
    ]


def window_for(span: float, count: int) -> float:
    """The shortest window that cuts `span` into at most MAX_POINTS and holds MIN_PER_WINDOW
    of `count` requests on average."""
    for width in WINDOWS:
        windows = max(span / width, 1.0)
        if windows <= MAX_POINTS and count / windows >= MIN_PER_WINDOW:
            return float(width)
    return float(WINDOWS[-1])


def nearest_rank(ordered: Sequence[float], p: float) -> float:
    return ordered[min(max(1, math.ceil(p / 100 * len(ordered))), len(ordered)) - 1]


def percentiles_over_time(
    times: Sequence[Timed], width: float
) -> Iterator[tuple[float, dict[str, float]]]:
    """(window centre, {p50, p95, p99} in seconds) per window that has a request."""
    windows: dict[int, list[float]] = {}
    for r in times:
        windows.setdefault(int(r.t // width), []).append(r.ms / 1000)
    for i in sorted(windows):
        ordered = sorted(windows[i])
        yield (i + 0.5) * width, {p: nearest_rank(ordered, float(p[1:])) for p in _PS}


_PS = ("p50", "p95", "p99")


def _segments(points: list[tuple[float, float]], width: float) -> list[list[tuple[float, float]]]:
    """A line broken where windows had no request, so a silence is not drawn as a slope."""
    parts: list[list[tuple[float, float]]] = []
    for point in points:
        if parts and point[0] - parts[-1][-1][0] <= width * 1.5:
            parts[-1].append(point)
        else:
            parts.append([point])
    return parts


def bounds_for(name: str, latency: Mapping[str, Any]) -> dict[str, float]:
    """The [load.latency] bounds that apply to a request name (by the name, or "METHOD name")."""
    for key, bounds in latency.items():
        if key == name or key.partition(" ")[2] == name:
            return {k: float(v) for k, v in bounds.items() if isinstance(v, int | float)}
    return {}


def latency_plot(name: str, times: Sequence[Timed], v: Verdict, span: float) -> str:
    width = window_for(span, len(times))
    series = list(percentiles_over_time(times, width))
    bounds = bounds_for(name, v.budget.get("latency_s") or {})
    data = [s[p] for _, s in series for p in _PS]
    # a bound far above the data would flatten it: such a bound is named, not drawn
    room = max(data, default=0.0) * BOUND_ROOM
    shown = {k: b for k, b in bounds.items() if b <= room or not data}
    x = Axis.fit([span], fmt=tick_seconds)
    plot = Plot(
        x,
        Axis.fit(data + list(shown.values()), fmt=tick_seconds),
        f"{name}: latency over time",
        height=170,
        x_title=f"since the test started; each point a {format_duration(width)} window",
    )
    for p in _PS:
        for part in _segments([(t, s[p]) for t, s in series], width):
            plot.line(part, f"lat-{p}", f"{name} {p}")
    failed = [r for r in times if not r.ok]
    for r in failed[:MAX_POINTS]:
        plot.dot(r.t, r.ms / 1000, "failed", f"failed after {format_duration(r.ms / 1000)}", 2.5)
    for which, bound in sorted(shown.items()):
        plot.hline(bound, "budget", f"{which} bound {format_duration(bound)}")
    above = [f"{k} bound {format_duration(b)}" for k, b in sorted(bounds.items()) if k not in shown]
    if above:
        plot.corner(f"{', '.join(above)}: far above, not to scale", "budget")
    return plot.render()


def latency_figures(v: Verdict, times: list[Timed]) -> list[Figure]:
    names: dict[str, list[Timed]] = {}
    for r in times:
        names.setdefault(r.name, []).append(r)
    latency = v.budget.get("latency_s") or {}
    order = sorted(names, key=lambda n: (not bounds_for(n, latency), -len(names[n]), n))
    span = max(r.t for r in times)
    measured = v.measured.get("latency_s") or {}
    figures = []
    for name in order[:MAX_NAMES]:
        exact = measured.get(name) or {}
        words = ", ".join(
            f"{p} {format_duration(float(exact[p]))}"
            for p in _PS
            if isinstance(exact.get(p), int | float)
        )
        title = f"{name}: {len(names[name])} requests" + (f", {words}" if words else "")
        drawn = safely(title, functools.partial(latency_plot, name, names[name], v, span))
        if drawn is not None:
            figures.append(drawn)
    if figures:
        note = legend(
            [
                ("lat-p50", "p50"),
                ("lat-p95", "p95"),
                ("lat-p99", "p99"),
                ("budget", "bound"),
                ("failed", "a failed request"),
            ]
        )
        if len(order) > MAX_NAMES:
            note += f'<p class="note">{len(order) - MAX_NAMES} more request names not drawn</p>'
        last = figures[-1]
        figures[-1] = Figure(last.title, last.body + note)
    return figures


def users_history(path: Path, start: float | None) -> list[tuple[float, int]]:
    """(seconds since `start`, or the first row, users running) of the Aggregated rows."""
    rows = aggregated_users(path)
    first = start if start is not None else rows[0][0] if rows else 0.0
    return [(max(t - first, 0.0), users) for t, users in rows]


def throughput_plot(v: Verdict, times: Sequence[Timed], users: list[tuple[float, int]]) -> str:
    http = [r for r in times if not r.job]
    span = max([r.t for r in http] + [t for t, _ in users] + [1.0])
    width = next((float(w) for w in WINDOWS if w >= 1 and span / w <= STEPS), 600.0)
    per: dict[int, list[int]] = {}
    for r in http:
        per.setdefault(int(r.t // width), [0, 0])[0 if r.ok else 1] += 1
    n = int(span // width) + 1
    rate = [(i * width, per.get(i, [0, 0])[0] / width) for i in range(n)]
    fails = [(i * width, per.get(i, [0, 0])[1] / width) for i in range(n)]
    wanted = number(v.budget, "users")
    x = Axis.fit([span], fmt=tick_seconds)
    people = Plot(
        x,
        Axis.fit([u for _, u in users] + [wanted or 0]),
        "users running",
        height=110,
        y_title="users",
    )
    people.step([(t, float(u)) for t, u in _thin(users, STEPS)], "users", "users running")
    if wanted is not None:
        people.hline(wanted, "budget", f"{wanted:g} users wanted")
    rps = Plot(
        x,
        Axis.fit([r for _, r in rate]),
        "requests per second",
        height=130,
        y_title="requests/s",
        x_title="since the test started",
    )
    rps.step(_thin(rate, STEPS), "rps", "HTTP requests ended per second")
    if any(f for _, f in fails):
        rps.step(_thin(fails, STEPS), "rps-failed", "failed requests per second")
    return (
        people.render()
        + rps.render()
        + legend(
            [
                ("users", "users (Locust's history)"),
                ("rps", "requests/s"),
                ("rps-failed", "failed/s"),
                ("budget", "wanted"),
            ]
        )
    )


def _thin(points: Sequence[tuple[float, Any]], most: int = MAX_POINTS) -> list[tuple[float, Any]]:
    """At most `most` of `points` (and the last): every k-th."""
    if len(points) <= most:
        return list(points)
    k = math.ceil(len(points) / most)
    return [*points[::k], points[-1]] if (len(points) - 1) % k else list(points[::k])


def memory_rows(path: Path) -> list[tuple[float, str, int | None, int | None]]:
    """memory.csv: (seconds since the test started, phase, server RSS, cgroup held)."""

    def size(text: str | None) -> int | None:
        return int(text) if text else None

    rows = []
    with open(path, newline="", encoding="utf-8") as lines:
        for row in csv.DictReader(lines):
            try:
                rows.append(
                    (
                        float(row["t_s"]),
                        row["phase"],
                        size(row["rss_bytes"]),
                        size(row["cgroup_bytes"]),
                    )
                )
            except (KeyError, ValueError, TypeError):
                continue
    return rows


def memory_plot(v: Verdict, path: Path) -> str:
    rows = memory_rows(path)
    if not rows:
        return ""
    memory = v.budget.get("memory") or {}
    limit = number(memory, "memory_limit")
    lines: list[tuple[str, float]] = []  # (label, bytes)
    if number(memory, "max_rss") is not None:
        lines.append((f"max_rss {format_size(memory['max_rss'])}", float(memory["max_rss"])))
    if limit is not None:
        lines.append((f"limit {format_size(limit)}", limit))
        for key in ("max_fraction", "settles_below"):
            fraction = number(memory, key)
            if fraction is not None:
                lines.append((f"{key} {fraction:.0%}", fraction * limit))
    rss = [(t, b / MIB) for t, _, b, _ in rows if b is not None]
    held = [(t, b / MIB) for t, _, _, b in rows if b is not None]
    x = Axis.fit([t for t, *_ in rows], fmt=tick_seconds)
    y = Axis.fit(
        [m for _, m in rss + held] + [b / MIB for _, b in lines],
        fmt=lambda m: f"{m:.4g} MiB" if m else "0",
    )
    plot = Plot(x, y, "the server's memory over time", height=170, x_title="since the test started")
    settling = [t for t, phase, *_ in rows if phase == "settling"]
    if settling:
        plot.xband(settling[0], x.hi, "settling", "after the load: waiting for memory to settle")
    plot.line(_thin(rss), "rss", "RSS of the server and its children")
    plot.line(_thin(held), "held", "what the target's memory cgroup holds")
    for label, value in lines:
        plot.hline(value / MIB, "budget", label)
    return plot.render() + legend(
        [
            ("rss", "RSS of the server and its children"),
            ("held", "memory cgroup (memory_limit)"),
            ("settling", "after the load"),
            ("budget", "bound"),
        ]
    )


def memory_summary(v: Verdict) -> str:
    """Without memory.csv (a run of an older version): the peak and growth against bounds."""
    mem, bounds = v.measured.get("memory") or {}, v.budget.get("memory") or {}
    chart = RowChart("memory against its bounds", fmt=lambda m: f"{m:.4g} MiB" if m else "0")
    for figure, bound, label in (
        ("max_rss", "max_rss", "peak RSS"),
        ("growth", "max_growth", "growth"),
    ):
        value, limit = number(mem, figure), number(bounds, bound)
        if value is None:
            continue
        marks = [bar(0, max(value, 0) / MIB, f"bar-{v.status}", format_size(max(value, 0)))]
        if limit is not None:
            marks.append(tick(limit / MIB, "budget", f"bound {format_size(limit)}"))
        chart.add(Row(label, marks, format_size(max(value, 0))))
    return chart.render()


def load_figures(v: Verdict, folder: Path) -> list[Figure]:
    where = claim_folder(v, folder)
    if where is None:
        drawn = safely("memory", lambda: memory_summary(v))
        return [drawn] if drawn is not None else []
    start = started_at(where)
    times = read_requests(where, start)
    figures: list[Figure | None] = []
    figures += latency_figures(v, times) if times else []
    users = users_history(where / "locust_stats_history.csv", start)
    figures.append(
        safely("users and requests per second", lambda: throughput_plot(v, times, users))
    )
    memory_csv = where / "memory.csv"
    if memory_csv.is_file():
        figures.append(safely("the server's memory", lambda: memory_plot(v, memory_csv)))
    else:
        figures.append(safely("memory", lambda: memory_summary(v)))
    html_report = where / "locust.html"
    if html_report.is_file():
        href = esc(html_report.relative_to(folder).as_posix())
        figures.append(Figure("Locust's own report", f'<p><a href="{href}">{href}</a></p>'))
    return [f for f in figures if f is not None]
