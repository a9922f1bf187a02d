"""The figures of a [[load]] run, from what the Locust processes and the sampler recorded:
exact percentiles per request name, failure ratio, throughput, the users Locust kept running,
the generator's CPU and the target's memory. Pure functions, no Locust import.

Percentiles use the nearest-rank method on every request's exact time: p = the smallest
recorded time such that at least p% of the times are at or below it (sorted times,
index ceil(p/100 * n) - 1). It never interpolates: every figure is a time a request took.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
SATURATED_CPU = 90.0  # percent of one core, per Locust process
SATURATED_SHARE = 0.20  # of the run's samples: more than this and the figures are the generator's
LAG_TICK = 0.1  # seconds: how often the plugin's greenlet wakes (signoff_times.TICK)
LATE_MS = 50.0  # a Locust event loop that wakes this late is saturated (CPU or not)


@dataclass(frozen=True)
class Request:
    t: float  # unix time when it ended
    name: str
    method: str
    ms: float
    ok: bool


def read_times(folder: Path) -> list[Request]:
    """Every request of every Locust process (times-<pid>.jsonl files in `folder`)."""
    found: list[Request] = []
    for path in sorted(folder.glob("times-*.jsonl")):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    row = json.loads(line)
                    found.append(
                        Request(
                            float(row["t"]),
                            str(row["n"]),
                            str(row["m"]),
                            float(row["ms"]),
                            bool(row["ok"]),
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed process
    return found


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest rank of `ordered` (sorted, not empty) for 0 < p <= 100."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class NameStats:
    count: int
    failures: int
    seconds: dict[str, float]  # p50, p90, p95, p99, max -> seconds


def by_name(requests: Iterable[Request]) -> dict[str, NameStats]:
    """Exact percentiles per request name (successful and failed requests alike)."""
    times: dict[str, list[float]] = {}
    failed: dict[str, int] = {}
    for r in requests:
        times.setdefault(r.name, []).append(r.ms)
        failed[r.name] = failed.get(r.name, 0) + (0 if r.ok else 1)
    stats: dict[str, NameStats] = {}
    for name, values in times.items():
        values.sort()
        stats[name] = NameStats(
            count=len(values),
            failures=failed[name],
            seconds={k: percentile(values, p) / 1000.0 for k, p in PERCENTILES.items()},
        )
    return stats


def find_name(stats: dict[str, NameStats], key: str) -> str | None:
    """The request name a [load.latency] key means: the name itself, or "METHOD name"."""
    if key in stats:
        return key
    _method, _, rest = key.partition(" ")
    if rest and rest in stats:
        return rest
    return None


@dataclass
class Users:
    """How many users Locust had running, from its per-second stats history."""

    wanted: int
    peak: int = 0
    reached_at: float | None = None  # seconds after the first row
    dropped_to: int | None = None  # fewest running after the peak was reached, if below wanted
    rows: int = 0

    @property
    def held(self) -> bool:
        return self.reached_at is not None and self.dropped_to is None


def users_from_history(path: Path, wanted: int, duration: float, stop_margin: float = 2.0) -> Users:
    """Read <prefix>_stats_history.csv: the Aggregated rows' "User Count", one a second from the
    test's start (the first row). The goal is reached when a row shows all `wanted` users; it is
    held when no later row shows fewer, up to `stop_margin` seconds before `duration` from the
    first row: the history's first row comes about a second into the run, so its last seconds
    within `duration` can already be Locust stopping its users (a CI run read 20 users, then 2,
    in its last row)."""
    users = Users(wanted)
    if not path.is_file():
        return users
    counts: list[tuple[float, int]] = []
    with open(path, newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            if row.get("Name") != "Aggregated":
                continue
            try:
                counts.append((float(row["Timestamp"]), int(row["User Count"])))
            except (KeyError, ValueError):
                continue
    users.rows = len(counts)
    if not counts:
        return users
    first = counts[0][0]
    users.peak = max(c for _, c in counts)
    window = max(duration - stop_margin, min(duration, 1.0))
    for stamp, count in counts:
        if stamp - first >= window:
            break
        if users.reached_at is None:
            if count >= wanted:
                users.reached_at = stamp - first
        elif count < wanted:
            users.dropped_to = count if users.dropped_to is None else min(users.dropped_to, count)
    return users


@dataclass
class Sample:
    t: float  # seconds since the test started
    cpu: dict[int, float]  # Locust process id -> percent of one core since the last sample
    rss: int | None  # the server and its children, bytes (None: not measured)


@dataclass
class Generator:
    samples: int = 0
    saturated: int = 0  # samples where some Locust process was above SATURATED_CPU
    peak_cpu: float = 0.0
    busiest: list[float] = field(default_factory=list)  # per sample: the busiest process's CPU
    ticks: int = 0  # event loop lag measures (every 0.1 s, per Locust process)
    late: int = 0  # of which the loop woke more than LATE_MS late
    worst_lag_ms: float = 0.0
    late_s: float = 0.0  # time spent in late ticks
    ticked_s: float = 0.0  # time spent in all ticks

    @property
    def share(self) -> float:
        return self.saturated / self.samples if self.samples else 0.0

    @property
    def late_share(self) -> float:
        """The share of the loop's time spent in ticks that woke late (time-weighted: a late
        tick lasts longer)."""
        return self.late_s / self.ticked_s if self.ticked_s else 0.0

    @property
    def saturated_run(self) -> bool:
        return self.share > SATURATED_SHARE or self.late_share > SATURATED_SHARE


def read_lag(folder: Path, start: float, end: float) -> list[float]:
    """The event loop lags (ms) the Locust processes measured between `start` and `end` (unix
    times), from lag-<pid>.jsonl."""
    lags: list[float] = []
    for path in sorted(folder.glob("lag-*.jsonl")):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    row = json.loads(line)
                    if start <= float(row["t"]) <= end:
                        lags.append(float(row["lag"]))
                except (ValueError, KeyError, TypeError):
                    continue
    return lags


def generator_load(samples: Sequence[Sample], lags: Sequence[float] = ()) -> Generator:
    gen = Generator(ticks=len(lags), late=sum(1 for lag in lags if lag > LATE_MS))
    gen.worst_lag_ms = max(lags, default=0.0)
    gen.ticked_s = sum(LAG_TICK + lag / 1000 for lag in lags)
    gen.late_s = sum(LAG_TICK + lag / 1000 for lag in lags if lag > LATE_MS)
    for s in samples:
        if not s.cpu:
            continue
        busiest = max(s.cpu.values())
        gen.samples += 1
        gen.busiest.append(busiest)
        gen.peak_cpu = max(gen.peak_cpu, busiest)
        if busiest > SATURATED_CPU:
            gen.saturated += 1
    return gen


@dataclass
class MemoryFigures:
    max_rss: int
    baseline: int  # after the first 10% of the run
    end: int
    samples: int

    @property
    def growth(self) -> int:
        return self.end - self.baseline


def memory_figures(samples: Sequence[Sample], duration: float) -> MemoryFigures | None:
    """Peak RSS, and growth: the last sample against the first one at or after 10% of the run."""
    measured = [(s.t, s.rss) for s in samples if s.rss is not None]
    if not measured:
        return None
    cut = 0.1 * duration
    baseline = next((rss for t, rss in measured if t >= cut), measured[-1][1])
    return MemoryFigures(
        max_rss=max(rss for _, rss in measured),
        baseline=baseline,
        end=measured[-1][1],
        samples=len(measured),
    )
