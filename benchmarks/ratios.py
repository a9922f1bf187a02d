"""The ratios the README reports, from one pytest-benchmark run's JSON (its "benchmarks" list).

A ratio divides one benchmark's figure by another's (or two figures of one benchmark): a
timing's median, or a figure the benchmark put in its `extra_info` (requests/s, bytes/s, the
import probe's own median). conftest.py stores them in the saved JSON under "signoff_ratios";
summarize.py prints them. A ratio whose benchmark did not run (skipped: no wrk) has no value
and says which figure is missing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from signoff.units import format_duration

MEDIAN = "median"  # a benchmark's timing median (seconds), as pytest-benchmark measured it


@dataclass(frozen=True)
class Figure:
    # the benchmark's name, as pytest-benchmark gives it ("test_bulk_read[proxy]"); several
    # names: the sum of their figures
    benchmark: str | tuple[str, ...]
    field: str = MEDIAN  # MEDIAN or a key of the benchmark's extra_info
    unit: str = "s"  # "s", "B/s" or "req/s"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.benchmark,) if isinstance(self.benchmark, str) else self.benchmark

    @property
    def label(self) -> str:
        return " + ".join(self.names)


@dataclass(frozen=True)
class Ratio:
    what: str
    numerator: Figure
    denominator: Figure
    reading: str  # how to read it: what 1.0 would mean


def _service(names: str) -> Figure:
    return Figure(f"test_service_start[{names}]")


def _imports(module: str) -> Ratio:
    bench = f"test_import_probe[{module}]"
    return Ratio(
        f"import probe `{module}`: median / `python -X importtime` cumulative",
        Figure(bench, "probe_median_s"),
        Figure(bench, "importtime_s"),
        "1.0: the probe times the import as -X importtime does",
    )


RATIOS: tuple[Ratio, ...] = (
    Ratio(
        "embedded Redis + Postgres in parallel / Postgres alone",
        _service("redis+postgres"),
        _service("postgres"),
        "1.0: starting both costs no more than the slower one",
    ),
    Ratio(
        "embedded Redis + Postgres in parallel / one after the other",
        _service("redis+postgres"),
        Figure(("test_service_start[redis]", "test_service_start[postgres]")),
        "below 1.0: the parallel start saves time",
    ),
    Ratio(
        "a probe's overhead: a timeout claim on `os:getpid` / `python -c pass`",
        Figure("test_timeout_claim_empty_call"),
        Figure("test_bare_interpreter"),
        "1.0: a claim costs no more than starting the interpreter",
    ),
    Ratio(
        "fault proxy latency: 64-byte echo round trip, through the proxy / direct",
        Figure("test_echo_roundtrip[proxy]"),
        Figure("test_echo_roundtrip[direct]"),
        "1.0: the proxy adds no latency",
    ),
    Ratio(
        "fault proxy latency: redis-py PING to embedded Redis, through the proxy / direct",
        Figure("test_redis_ping[proxy]"),
        Figure("test_redis_ping[direct]"),
        "1.0: the proxy adds no latency",
    ),
    Ratio(
        "fault proxy throughput: 32 MiB bulk read, through the proxy / direct",
        Figure("test_bulk_read[proxy]", "bytes_per_s", "B/s"),
        Figure("test_bulk_read[direct]", "bytes_per_s", "B/s"),
        "1.0: the proxy carries bytes as fast as a direct connection",
    ),
    _imports("json"),
    _imports("email.message"),
    _imports("asyncio"),
    Ratio(
        "load generator: signoff (Locust, 1 process) / wrk, `GET /fast`, 50 connections",
        Figure("test_signoff_load[processes=1]", "rps", "req/s"),
        Figure("test_wrk", "rps", "req/s"),
        "1.0: signoff's generator sends as many requests as wrk",
    ),
    Ratio(
        "load generator: signoff (Locust, 2 processes) / wrk, `GET /fast`, 50 connections",
        Figure("test_signoff_load[processes=2]", "rps", "req/s"),
        Figure("test_wrk", "rps", "req/s"),
        "1.0: signoff's generator sends as many requests as wrk",
    ),
)


def figure_value(benchmarks: Mapping[str, Mapping[str, Any]], figure: Figure) -> float | None:
    """The figure's value in a run (by benchmark name), or None when it is not there."""
    total = 0.0
    for name in figure.names:
        bench = benchmarks.get(name)
        if bench is None:
            return None
        if figure.field == MEDIAN:
            raw = bench.get("stats", {}).get("median")
        else:
            raw = bench.get("extra_info", {}).get(figure.field)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            return None
        total += raw
    return total


def compute(benchmarks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every ratio of RATIOS for one run's benchmark list, as JSON-ready rows."""
    by_name = {str(b.get("name")): b for b in benchmarks}
    rows = []
    for ratio in RATIOS:
        top = figure_value(by_name, ratio.numerator)
        bottom = figure_value(by_name, ratio.denominator)
        missing = list(
            dict.fromkeys(
                f.label
                for f, v in ((ratio.numerator, top), (ratio.denominator, bottom))
                if v is None
            )
        )
        value = None if top is None or bottom is None or bottom == 0 else top / bottom
        row: dict[str, Any] = {
            "what": ratio.what,
            "ratio": None if value is None else round(value, 4),
            "numerator": _figure_row(ratio.numerator, top),
            "denominator": _figure_row(ratio.denominator, bottom),
            "reading": ratio.reading,
        }
        if missing:
            row["missing"] = missing
        rows.append(row)
    return rows


def _figure_row(figure: Figure, value: float | None) -> dict[str, Any]:
    return {
        "benchmark": figure.label,
        "field": figure.field,
        "unit": figure.unit,
        "value": value,
    }


def format_figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return format_duration(value)
    if unit == "B/s":
        return f"{value / 1e6:.0f} MB/s"
    return f"{value:.0f} {unit}"
