"""Which figures of a verdict `signoff compare` compares, per kind, and the noise rule: a figure
is worse (or better) only when it moved by more than its noise, the largest of

- the spread of its repeats (max - min of `runs_s`, the larger of the two runs'), or, for a load
  percentile, its 95% interval from the exact time of every request (an order statistic);
- the claim's stated tolerance (`tolerance_s`, ...), when the kind has one;
- for figures no tolerance covers, a factor of the older figure (up to that many times, or down
  to that fraction of it, is noise): 3 for an import's time, 2 for the other figures measured
  under CPU load (load latencies and rate, cron's slowest case, websocket handshakes), 1.25 for
  memory;
- a floor per unit (1 ms, 1 percentage point, 1 MiB, 1 request/s): smaller moves are never a
  change.

An import is judged by its fastest repeat, at the run's pace. A run's own repeats do not see how
a shared machine changes between runs: in 27 runs of targets/tiny's 7 imports (5 repeats each)
on a 2-core machine with other jobs' tests beside them, a module's median moved up to 2.6 times
between two runs of the same code (all 5 repeats inside one burst of another job's load), 3.3
times the larger spread of the two runs' repeats; its fastest repeat up to 2.2 times. A busier
machine also slows every import alike (whole runs at 1.5 times the baseline's): with at least 5
import times in both runs, the median of their ratios (new/old), the run's pace, divides this
run's times, and a move counts only as far as it goes both at that pace and as measured (a pace
set by other modules' bursts makes no move of its own). One module made slower stands out; a
change that slows every import alike looks like a slower machine (the comparison's note gives
the pace).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from signoff.units import format_duration, format_size

Unit = Literal["seconds", "ratio", "bytes", "rate"]
FLOOR: dict[Unit, float] = {"seconds": 0.001, "ratio": 0.01, "bytes": 1024.0**2, "rate": 1.0}
SHOWN_PACE = 0.05  # a pace this far from 1 is shown in a figure's note
PACED_AT_LEAST = 5  # import medians in both runs for the pace to be taken out
IMPORT_FACTOR = 3.0  # an import's fastest repeat (see the module's docstring)
CPU_FACTOR = 2.0  # load latencies and rps, cron's slowest case, websocket handshakes
MEMORY_FACTOR = 1.25
Z_95 = 1.96


@dataclass(frozen=True)
class Figure:
    """One figure of a kind's `measured`, and where its noise comes from."""

    path: tuple[str, ...]  # keys into `measured`: ("median_s",), ("latency_s", name, "p95")
    label: str  # as the reports name it: "median", "p95 of GET /health"
    unit: Unit = "seconds"
    higher_is_better: bool = False
    tolerance: str | None = None  # the budget's key of the claim's tolerance
    repeats: str | None = None  # the measured key of its repeats
    factor: float = 0.0  # noise up to this times the older figure, or down to 1/factor of it
    paced: bool = False  # judged at the run's pace (import times)
    fastest: bool = False  # the path is a list of repeats: the smallest is the figure

    def value(self, measured: Mapping[str, Any]) -> float | None:
        if not self.fastest:
            return _number(measured, self.path)
        runs = measured.get(self.path[0])
        values = [_number({"v": r}, ("v",)) for r in runs] if isinstance(runs, list) else []
        found = [v for v in values if v is not None]
        return min(found) if found else None

    @property
    def key(self) -> str:
        return f"min({self.path[0]})" if self.fastest else ".".join(self.path)


@dataclass(frozen=True)
class Judged:
    """A figure of both runs and what it did, beyond its noise or within it."""

    figure: Figure
    old: float
    new: float
    noise: float
    source: str  # where the noise came from: "the repeats' spread", ...
    pace: float = 1.0  # this run's figure is judged divided by this

    @property
    def moved(self) -> float:
        """What the figure moved by, as judged: at the run's pace, and no further than it moved
        as measured (a pace taken from other modules' bursts must not make a move of its own)."""
        return _judged_move(self.old, self.new, self.pace)

    @property
    def change(self) -> Literal["worse", "better", "unchanged"]:
        moved = self.moved
        if abs(moved) <= self.noise:
            return "unchanged"
        return "worse" if (moved > 0) != self.figure.higher_is_better else "better"

    @property
    def note(self) -> str:
        unit = self.figure.unit
        moved = format_value(self.new - self.old, unit, signed=True)
        if abs(self.pace - 1.0) >= SHOWN_PACE:
            paced = format_value(self.new / self.pace - self.old, unit, signed=True)
            moved += f" ({paced} at the run's pace, {self.pace:.2f}x the baseline's)"
        where = "within" if self.change == "unchanged" else "beyond"
        noise = format_value(self.noise, unit)
        return f"{moved}, {where} its noise of {noise} ({self.source})"


def format_value(value: float, unit: Unit, *, signed: bool = False) -> str:
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    size = abs(value)
    if unit == "seconds":
        text = format_duration(size)
    elif unit == "ratio":
        text = f"{size * 100:.3g}%"
    elif unit == "bytes":
        text = format_size(size)
    else:
        text = f"{size:.4g}/s"
    return sign + text


def _simple(
    key: str, label: str, *, tolerance: str | None = None, factor: float = 0.0
) -> Callable[[Mapping[str, Any]], list[Figure]]:
    figure = Figure((key,), label, tolerance=tolerance, factor=factor)
    return lambda budget: [figure]


def _load_figures(budget: Mapping[str, Any]) -> list[Figure]:
    """Each percentile the claim names (p95 of every request name when it names none), the
    rate, the failure ratio and memory."""
    latency = budget.get("latency_s")
    names = latency if isinstance(latency, dict) and latency else {}
    figures = [
        Figure(("latency_s", name, p), f"{p} of {name}", factor=CPU_FACTOR)
        for name, percentiles in names.items()
        if isinstance(percentiles, dict)
        for p in percentiles
    ]
    return [
        *figures,
        Figure(("rps",), "requests/s", "rate", higher_is_better=True, factor=CPU_FACTOR),
        Figure(("failure_ratio",), "failure ratio", "ratio"),
        Figure(("memory", "max_rss"), "max RSS", "bytes", factor=MEMORY_FACTOR),
        Figure(("memory_limit", "peak_fraction"), "peak memory", "ratio", factor=MEMORY_FACTOR),
    ]


_WITHIN = _simple("seconds", "time", tolerance="tolerance_s")
FIGURES: dict[str, Callable[[Mapping[str, Any]], list[Figure]]] = {
    "import": lambda budget: [
        Figure(
            ("runs_s",),
            "fastest",
            repeats="runs_s",
            factor=IMPORT_FACTOR,
            paced=True,
            fastest=True,
        )
    ],
    "timeout": _WITHIN,
    "http": _WITHIN,
    "call": _WITHIN,
    "sql": _WITHIN,
    "degradation": lambda budget: [
        *_WITHIN(budget),
        Figure(("recovered_after_s",), "recovery", tolerance="recovers_tolerance_s"),
    ],
    # the slowest of cases generated from a new seed each run: no tolerance is that precise
    "cron": _simple("slowest_s", "slowest case", factor=CPU_FACTOR),
    "websocket": lambda budget: [
        Figure(("longest_gap_s",), "longest heartbeat gap", tolerance="heartbeat_tolerance_s"),
        Figure(("idle_closed_s",), "idle close", tolerance="idle_close_tolerance_s"),
        Figure(("handshake_max_s",), "slowest handshake", factor=CPU_FACTOR),
    ],
    "load": _load_figures,
    "webhook": lambda budget: [],  # counts of cases: a change there is a change of status
}


def figures_of(kind: str, budget: Mapping[str, Any]) -> list[Figure]:
    """The figures compared for a claim of `kind`; a kind this table does not know (another
    package's) has its `seconds` against its `tolerance_s` compared, if it has them."""
    return FIGURES.get(kind, _WITHIN)(budget)


def _number(doc: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = doc
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _spread(measured: Mapping[str, Any], key: str | None) -> float:
    runs = measured.get(key) if key else None
    if not isinstance(runs, list):
        return 0.0
    values = [float(r) for r in runs if isinstance(r, int | float) and not isinstance(r, bool)]
    return max(values) - min(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Side:
    """One run's entry of a claim, with its run folder if the artifacts can be read."""

    claim: Mapping[str, Any]
    folder: Path | None = None

    @property
    def measured(self) -> Mapping[str, Any]:
        measured = self.claim.get("measured")
        return measured if isinstance(measured, Mapping) else {}

    @property
    def budget(self) -> Mapping[str, Any]:
        budget = self.claim.get("budget")
        return budget if isinstance(budget, Mapping) else {}


def pace(pairs: Iterable[tuple[Side, Side]]) -> tuple[float, int]:
    """How much longer this run's paced figures took than the baseline's, alike: the median of
    their ratios (1.0 with fewer than PACED_AT_LEAST of them), and how many there were."""
    ratios = []
    for old, new in pairs:
        kind = str(new.claim.get("kind", ""))
        for figure in figures_of(kind, new.budget):
            before, after = figure.value(old.measured), figure.value(new.measured)
            if figure.paced and before and after is not None:
                ratios.append(after / before)
    if len(ratios) < PACED_AT_LEAST:
        return 1.0, len(ratios)
    return statistics.median(ratios), len(ratios)


def judge(old: Side, new: Side, run_pace: float = 1.0) -> Iterator[Judged]:
    """Every figure of the claim both runs measured, judged against its noise (paced figures
    at `run_pace`)."""
    kind = str(new.claim.get("kind", ""))
    for figure in figures_of(kind, new.budget):
        before, after = figure.value(old.measured), figure.value(new.measured)
        if before is None or after is None:
            continue
        scale = run_pace if figure.paced and run_pace > 0 else 1.0
        candidates = [
            (FLOOR[figure.unit], f"the {format_value(FLOOR[figure.unit], figure.unit)} floor")
        ]
        if figure.factor:
            up = _judged_move(before, after, scale) >= 0
            reach = figure.factor - 1.0 if up else 1.0 - 1.0 / figure.factor
            within = (
                f"up to {figure.factor:g}x the older figure"
                if up
                else f"down to 1/{figure.factor:g} of the older figure"
            )
            candidates.append((reach * abs(before), within))
        if figure.tolerance:
            tolerances = [_number(s.budget, (figure.tolerance,)) or 0.0 for s in (old, new)]
            candidates.append((max(tolerances), "the claim's tolerance"))
        if figure.repeats:
            spread = max(
                _spread(old.measured, figure.repeats), _spread(new.measured, figure.repeats) / scale
            )
            candidates.append((spread, "the repeats' spread"))
        if figure.path[0] == "latency_s":
            interval = max(_percentile_interval(s, figure) for s in (old, new))
            candidates.append((interval, "the percentile's 95% interval"))
        noise, source = max(candidates, key=lambda c: c[0])
        yield Judged(figure, before, after, noise, source, scale)


def _judged_move(old: float, new: float, pace: float) -> float:
    raw, paced = new - old, new / pace - old
    if (raw > 0) != (paced > 0):
        return 0.0
    return min(raw, paced, key=abs)


def _percentile_interval(side: Side, figure: Figure) -> float:
    """Half the 95% interval of a load percentile, from the exact times of the run's requests
    (distribution-free: the order statistics n*p -/+ 1.96*sqrt(n*p*(1-p)) around its rank);
    0 when the run's folder or its times are not there."""
    if side.folder is None:
        return 0.0
    from signoff.kinds.load.check import slug
    from signoff.kinds.load.stats import PERCENTILES, by_name, find_name, read_times

    claim_id = str(side.claim.get("id", ""))
    folder = side.folder / "load" / slug(claim_id.partition(":")[2])
    _, name, p_key = figure.path
    p = PERCENTILES.get(p_key)
    if p is None or not folder.is_dir():
        return 0.0
    requests = read_times(folder).requests
    stats = by_name(requests)
    found = find_name(stats, name)
    if found is None:
        return 0.0
    # by_name keys a request by its name, or by "METHOD name" when its name has two methods
    times = sorted(
        r.ms / 1000.0
        for r in requests
        if (r.name if r.name in stats else f"{r.method} {r.name}") == found
    )
    return _order_statistic_halfwidth(times, p / 100.0)


def _order_statistic_halfwidth(ordered: list[float], q: float) -> float:
    n = len(ordered)
    if n < 2:
        return 0.0
    rank = min(n, max(1, math.ceil(q * n)))  # nearest rank, as the load figures are
    reach = Z_95 * math.sqrt(n * q * (1.0 - q))
    low = max(1, math.floor(rank - reach))
    high = min(n, math.ceil(rank + reach))
    at = ordered[rank - 1]
    return max(ordered[high - 1] - at, at - ordered[low - 1])
