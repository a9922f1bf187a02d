"""The figures of a [[load]] run, from what the Locust processes and the sampler recorded:
exact percentiles per request name, failure ratio, throughput, the users Locust kept running,
the generator's CPU and the target's memory (and, with a memory limit, its memory cgroup against
that limit, during the load and as it settles after it). Pure functions, no Locust import.

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

from signoff.locust_files import aggregated_users

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


@dataclass
class Times:
    """The requests the figures count, and those left out: requests a worker logged after its
    last report that reached Locust's master (Locust's own stats never had them)."""

    requests: list[Request]
    unreported: int = 0
    distributed: bool = False  # the master's reported-<pid>.json was found


def read_times(folder: Path) -> Times:
    """Every request of every Locust process (times-<pid>.jsonl files in `folder`; distributed,
    times-worker-<n>.jsonl, written by the master from what each worker sent), as many of each
    worker's as its reports to the master covered when the master wrote reported-<pid>.json
    (distributed mode; see loadtests/signoff_times.py)."""
    covered = _reported(folder)
    times = Times([], distributed=covered is not None)
    for path in sorted(folder.glob("times-*.jsonl")):
        limit = None if covered is None else covered.get(path.stem.removeprefix("times-"), 0)
        seen = 0
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    row = json.loads(line)
                    request = Request(
                        float(row["t"]),
                        str(row["n"]),
                        str(row["m"]),
                        float(row["ms"]),
                        bool(row["ok"]),
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed process
                seen += 1
                if limit is not None and seen > limit:
                    times.unreported += 1
                else:
                    times.requests.append(request)
    return times


def _reported(folder: Path) -> dict[str, int] | None:
    """The master's reported-<pid>.json: worker -> requests covered by its reports."""
    for path in sorted(folder.glob("reported-*.json")):
        try:
            workers = json.loads(path.read_text(encoding="utf-8"))["workers"]
            return {str(pid): int(n) for pid, n in workers.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
    return None


def locust_counts(path: Path) -> dict[tuple[str, str], int] | None:
    """(method, name) -> "Request Count" in Locust's <prefix>_stats.csv, the Aggregated row
    left out; None when the file is missing or unreadable."""
    if not path.is_file():
        return None
    counts: dict[tuple[str, str], int] = {}
    try:
        with open(path, newline="", encoding="utf-8") as rows:
            for row in csv.DictReader(rows):
                if row.get("Name") == "Aggregated" and not row.get("Type"):
                    continue
                counts[(row["Type"], row["Name"])] = int(row["Request Count"])
    except (OSError, KeyError, ValueError, TypeError):
        return None
    return counts


def request_counts(requests: Iterable[Request]) -> dict[tuple[str, str], int]:
    """(method, name) -> requests, the way Locust's stats key them."""
    counts: dict[tuple[str, str], int] = {}
    for r in requests:
        counts[(r.method, r.name)] = counts.get((r.method, r.name), 0) + 1
    return counts


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
    method: str = ""


def by_name(requests: Iterable[Request]) -> dict[str, NameStats]:
    """Exact percentiles per request name (successful and failed requests alike). Locust keys
    its stats by method and name: a name used by two methods is two entries here too, keyed
    "METHOD name"."""
    times: dict[tuple[str, str], list[float]] = {}
    failed: dict[tuple[str, str], int] = {}
    for r in requests:
        key = (r.method, r.name)
        times.setdefault(key, []).append(r.ms)
        failed[key] = failed.get(key, 0) + (0 if r.ok else 1)
    methods: dict[str, int] = {}
    for _method, name in times:
        methods[name] = methods.get(name, 0) + 1
    stats: dict[str, NameStats] = {}
    for (method, name), values in times.items():
        values.sort()
        stats[name if methods[name] == 1 else f"{method} {name}"] = NameStats(
            count=len(values),
            failures=failed[(method, name)],
            seconds={k: percentile(values, p) / 1000.0 for k, p in PERCENTILES.items()},
            method=method,
        )
    return stats


def find_name(stats: dict[str, NameStats], key: str) -> str | None:
    """The request name a [load.latency] key means: the name itself, or "METHOD name" for a
    name sent with that method."""
    if key in stats:
        return key
    method, _, rest = key.partition(" ")
    if rest and rest in stats and stats[rest].method.upper() == method.upper():
        return rest
    return None


@dataclass
class Users:
    """How many users Locust had running: from its per-second stats history (one process), or
    from the workers' own counts (distributed: see `signoff.kinds.load.distributed`)."""

    wanted: int
    peak: int = 0
    reached_at: float | None = None  # seconds after the origin (the first row, or the start)
    dropped_to: int | None = None  # fewest running after the peak was reached, if below wanted
    rows: int = 0
    window: float = 0.0  # seconds after the origin that count
    full_at: float | None = None  # first row with every user running, even past the window
    source: str = "history"  # "history": Locust's stats history; "workers": their own counts

    @property
    def held(self) -> bool:
        return self.reached_at is not None and self.dropped_to is None


def users_from_history(path: Path, wanted: int, duration: float, stop_margin: float = 2.0) -> Users:
    """Read <prefix>_stats_history.csv: the Aggregated rows' "User Count", one a second from the
    test's start (the first row), judged by `users_from_counts` from the first row: the
    history's first row comes about a second into the run, so its last seconds within
    `duration` can already be Locust stopping its users (a CI run read 20 users, then 2, in its
    last row)."""
    counts = aggregated_users(path)
    if not counts:
        return Users(wanted)
    return users_from_counts(counts, wanted, duration, counts[0][0], stop_margin)


def users_from_counts(
    counts: Sequence[tuple[float, int]],
    wanted: int,
    duration: float,
    origin: float,
    stop_margin: float = 2.0,
    source: str = "history",
) -> Users:
    """The concurrency goal from (time, users running) points, in time order, measured from
    `origin`: reached when a point before the window's end shows all `wanted` users; held when
    no later point in the window shows fewer. The window ends `stop_margin` seconds before
    `duration` (at least 1 s in): its last seconds can already be Locust stopping its users."""
    users = Users(wanted, rows=len(counts), source=source)
    if not counts:
        return users
    users.peak = max(c for _, c in counts)
    window = users.window = max(duration - stop_margin, min(duration, 1.0))
    users.full_at = next((round(max(0.0, t - origin), 3) for t, c in counts if c >= wanted), None)
    for t, count in counts:
        since = round(max(0.0, t - origin), 3)
        if since >= window:
            break
        if users.reached_at is None:
            if count >= wanted:
                users.reached_at = since
        elif count < wanted:
            users.dropped_to = count if users.dropped_to is None else min(users.dropped_to, count)
    return users


@dataclass
class Sample:
    t: float  # seconds since the test started
    cpu: dict[int, float]  # Locust process id -> percent of one core since the last sample
    rss: int | None  # the server and its children, bytes (None: not measured)
    group_held: int | None = None  # what the target's memory cgroup holds (memory_limit), bytes
    oom_kills: int | None = None  # the OOM killer's kills in that group so far


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


def read_lag(folder: Path, start: float, end: float, files: str = "lag-*.jsonl") -> list[float]:
    """The event loop lags (ms) the Locust processes measured between `start` and `end` (unix
    times), from lag-<pid>.jsonl (and, distributed, lag-worker-<n>.jsonl; `files` picks)."""
    lags: list[float] = []
    for path in sorted(folder.glob(files)):
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


@dataclass
class LimitFigures:
    """The target's memory cgroup during the load, against its limit."""

    limit: int
    samples: int
    peak: int  # the most the group held in a sample (anonymous and shared memory), bytes
    peak_at: float  # seconds into the load
    oom_at: float | None  # the first sample that counted an OOM kill the run had not had before
    before_oom: tuple[float, int] | None = None  # (t, held) of the highest sample before it

    @property
    def peak_fraction(self) -> float:
        return self.peak / self.limit


def limit_figures(samples: Sequence[Sample], limit: int, oom_base: int) -> LimitFigures | None:
    """The most the group held in a sample, and when; when an OOM kill was first counted."""
    measured = [s for s in samples if s.group_held is not None]
    if not measured:
        return None
    top = max(measured, key=lambda s: s.group_held or 0)
    oom = next((s.t for s in measured if (s.oom_kills or 0) > oom_base), None)
    figures = LimitFigures(limit, len(measured), top.group_held or 0, top.t, oom)
    before = [s for s in measured if oom is not None and s.t < oom]
    if before:
        high = max(before, key=lambda s: s.group_held or 0)
        figures.before_oom = (high.t, high.group_held or 0)
    return figures


@dataclass
class Settling:
    """What the group held after the load ended, (seconds after the end, bytes), until it was
    under `below` of the limit or `window` (settles_within and its tolerance) passed."""

    limit: int
    below: float
    window: float
    samples: list[tuple[float, int]] = field(default_factory=list)
    problem: str | None = None  # why the watch ended early (the server exited, a deadline)

    def fraction(self, held: int) -> float:
        return held / self.limit

    @property
    def under(self) -> tuple[float, int] | None:
        """The first sample under `below`, within the window."""
        return next(
            (
                (t, held)
                for t, held in self.samples
                if t <= self.window and held < self.below * self.limit
            ),
            None,
        )

    @property
    def lowest(self) -> tuple[float, int] | None:
        return min(self.samples, key=lambda s: s[1], default=None)

    @property
    def last(self) -> tuple[float, int] | None:
        return self.samples[-1] if self.samples else None
