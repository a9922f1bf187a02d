"""A probe's overhead per claim: one [[timeouts]] claim on an empty call (`os:getpid`), from a
claims file through signoff's check path (signoff.checks.check: its proxy setup, a fresh
interpreter of the target, the probe child, the verdict) to its Verdict, next to what starting
the same interpreter alone costs (`python -c pass`)."""

from __future__ import annotations

from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from signoff import checks
from signoff.faults.proxy import ProxyHub
from signoff.verdict import Verdict

from .support import claims_context, interpreter_start

ROUNDS = 10
CLAIMS = """
[target]
name = "bench"

[[timeouts]]
name = "empty call"
call = "os:getpid"
within = "5s"
env = { SIGNOFF_BENCH = "1" }  # a timeout claim needs a fault or an env; an env costs nothing
"""


def test_bare_interpreter(benchmark: BenchmarkFixture) -> None:
    benchmark.pedantic(interpreter_start, rounds=ROUNDS, warmup_rounds=1)


def test_timeout_claim_empty_call(
    benchmark: BenchmarkFixture, tmp_path: Path, hub: ProxyHub
) -> None:
    ctx, refs = claims_context(tmp_path, CLAIMS, hub)
    (ref,) = refs
    verdicts: list[Verdict] = []

    def claim() -> None:
        verdicts.append(checks.check(ctx, ref))

    benchmark.pedantic(claim, rounds=ROUNDS, warmup_rounds=1)
    # a claim that did not hold measured something else than the overhead
    assert all(v.status == "holds" for v in verdicts), [v.evidence for v in verdicts]
    benchmark.extra_info["claim_id"] = ref.id
    benchmark.extra_info["verdict_measured"] = verdicts[-1].measured
