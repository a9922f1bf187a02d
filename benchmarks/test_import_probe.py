"""The import probe against `python -X importtime`: an [imports] claim per module, checked by
signoff's import kind (each a median of `repeat` fresh interpreters, with the probe's audit
hook in place), next to the cumulative figure -X importtime gives for the same import in the
same interpreter (importtime.py), median of as many runs."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from signoff import checks
from signoff.faults.proxy import ProxyHub

from .importtime import importtime_s
from .support import claims_context

MODULES = ["json", "email.message", "asyncio"]
REPEAT = 5  # fresh interpreters per claim, as [imports].repeat
ROUNDS = 3  # claims per module: the probe's median is over REPEAT * ROUNDS interpreters
CLAIMS = """
[target]
name = "bench"

[imports]
repeat = {repeat}
timeout = "10s"

[imports.budgets]
"{module}" = "5s"
"""


@pytest.mark.parametrize("module", MODULES)
def test_import_probe(
    benchmark: BenchmarkFixture, module: str, tmp_path: Path, hub: ProxyHub
) -> None:
    ctx, refs = claims_context(tmp_path, CLAIMS.format(repeat=REPEAT, module=module), hub)
    (ref,) = refs
    runs: list[float] = []

    def claim() -> None:
        verdict = checks.check(ctx, ref)
        assert verdict.status == "holds", verdict.evidence
        runs.extend(verdict.measured["runs_s"])

    benchmark.pedantic(claim, rounds=ROUNDS)
    reference = importtime_s(module, REPEAT * ROUNDS)
    benchmark.extra_info["probe_median_s"] = statistics.median(runs)
    benchmark.extra_info["probe_runs"] = len(runs)
    benchmark.extra_info["importtime_s"] = statistics.median(reference)
    benchmark.extra_info["importtime_runs"] = len(reference)
