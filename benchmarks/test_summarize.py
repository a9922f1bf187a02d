"""The benchmarks' own arithmetic, without timing anything: -X importtime's rows, the ratios
from a run's JSON, and the Markdown table summarize.py prints."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks import summarize
from benchmarks.importtime import importtime_rows
from benchmarks.ratios import RATIOS, Figure, compute, figure_value

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       542 |        542 |       _json
import time:      1343 |       1885 |     json.scanner
import time:      1342 |       3226 |   json.decoder
import time:       768 |       5275 | json
import time:       100 |        250 | email
something else on stderr
"""


def _bench(name: str, median: float | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "stats": {"median": median}, "extra_info": extra}


def _run(*benchmarks: dict[str, Any], when: str = "2026-12-02T10:00:00.000000") -> dict[str, Any]:
    return {
        "datetime": when,
        "machine_info": {"python_implementation": "CPython", "python_version": "3.11.7"},
        "commit_info": {"id": "0123456789abcdef", "dirty": True},
        "benchmarks": list(benchmarks),
    }


FULL = [
    _bench("test_service_start[redis]", 0.01),
    _bench("test_service_start[postgres]", 1.0),
    _bench("test_service_start[redis+postgres]", 1.2),
    _bench("test_echo_roundtrip[direct]", 40e-6),
    _bench("test_echo_roundtrip[proxy]", 200e-6),
    _bench("test_bulk_read[direct]", 0.01, bytes_per_s=2e9),
    _bench("test_bulk_read[proxy]", 0.05, bytes_per_s=5e8),
    _bench(
        "test_signoff_load[processes=1]",
        10.0,
        rps=1000.0,
        status="error",
        generator_saturated_share=0.25,
    ),
    _bench("test_wrk", 8.0, rps=2000.0),
]


def _ratio(rows: list[dict[str, Any]], start: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["what"].startswith(start)]
    return row


def test_importtime_rows_are_the_top_level_ones() -> None:
    assert importtime_rows(IMPORTTIME) == {"json": 0.005275, "email": 0.00025}


def test_ratios_of_medians_extra_info_and_sums() -> None:
    rows = compute(FULL)
    assert len(rows) == len(RATIOS)
    parallel = _ratio(rows, "embedded Redis + Postgres in parallel / Postgres alone")
    assert parallel["ratio"] == 1.2 and "missing" not in parallel
    sequential = _ratio(rows, "embedded Redis + Postgres in parallel / one after")
    assert math.isclose(sequential["denominator"]["value"], 1.01)
    assert sequential["ratio"] == round(1.2 / 1.01, 4)
    assert _ratio(rows, "fault proxy latency: 64-byte")["ratio"] == 5.0
    assert _ratio(rows, "fault proxy throughput")["ratio"] == 0.25
    assert _ratio(rows, "load generator: signoff (Locust, 1 process)")["ratio"] == 0.5


def test_a_ratio_without_its_benchmark_names_what_is_missing() -> None:
    rows = compute(FULL)
    two = _ratio(rows, "load generator: signoff (Locust, 2 processes)")
    assert two["ratio"] is None
    assert two["missing"] == ["test_signoff_load[processes=2]"]
    json_row = _ratio(rows, "import probe `json`")
    assert json_row["missing"] == ["test_import_probe[json]"]  # named once, not per figure


@pytest.mark.parametrize("raw", [None, True, float("nan"), "12"])
def test_a_figure_that_is_not_a_number_is_missing(raw: Any) -> None:
    runs = {"b": _bench("b", 1.0, rps=raw)}
    assert figure_value(runs, Figure("b", "rps")) is None
    assert figure_value(runs, Figure("b")) == 1.0


def test_the_table_shows_ratio_figures_previous_and_notes() -> None:
    before = _run(
        _bench("test_echo_roundtrip[direct]", 40e-6), _bench("test_echo_roundtrip[proxy]", 160e-6)
    )
    text = summarize.render(_run(*FULL), "0002_x.json", before, "0001_x.json")
    first = text.splitlines()[0]
    assert "`0002_x.json`" in first and "2026-12-02 10:00 UTC" in first
    assert "commit 0123456 (uncommitted changes)" in first and "CPython 3.11.7" in first
    assert "previous run `0001_x.json`" in first
    latency = next(line for line in text.splitlines() if "64-byte echo" in line)
    assert "| **5.00** | 200 us / 40 us (+160 us) | 4.00 |" in latency
    assert "| **0.25** | 500 MB/s / 2000 MB/s | - |" in text
    assert "not measured: no `test_signoff_load[processes=2]`" in text
    assert (
        "- `test_signoff_load[processes=1]`: the claim was `error` "
        "(Locust above 90% of a core in 25% of the samples)" in text
    )


def _save(folder: Path, name: str, doc: dict[str, Any], mtime: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(doc))
    os.utime(path, (mtime, mtime))
    return path


def test_main_prints_the_newest_run_against_the_one_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = tmp_path / "Linux-CPython-3.11-64bit"
    old = _save(machine, "0001_a.json", _run(*FULL[:3]), 1000)
    new = _save(machine, "0002_b.json", _run(*FULL[:2], _bench(FULL[2]["name"], 1.5)), 2000)
    assert summarize.previous_run(new) == old and summarize.previous_run(old) is None
    assert summarize.main(["--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "`0002_b.json`" in out and "previous run `0001_a.json`" in out
    assert "| **1.50** | 1.500 s / 1.000 s (+500 ms) | 1.20 |" in out


def test_main_says_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert summarize.main(["--storage", str(tmp_path / "none")]) == 2
    assert "no saved benchmark run under" in capsys.readouterr().err
    broken = _save(tmp_path / "m", "0001_c.json", {"benchmarks": "no"}, 1000)
    assert summarize.main([str(broken)]) == 2
    assert "expected a pytest-benchmark run" in capsys.readouterr().err
