"""Import claims: cold imports in fresh interpreters, timed, watched for hangs and side effects."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from signoff.claims.model import ClaimRef, Imports
from signoff.context import RunContext
from signoff.engine.evidence import (
    crash_details,
    describe_exception,
    describe_hang,
    hang_details,
)
from signoff.engine.runner import ChildResult, TargetProcess, run_import
from signoff.faults import Fault
from signoff.report import live
from signoff.units import format_duration
from signoff.verdict import Verdict

_SIDE_EFFECT_EVENTS = {"network", "thread", "subprocess", "warning"}
SLOWEST_SHOWN = 10  # of an over-budget module's imports (-X importtime), in its figures


def check_import(
    ctx: RunContext, claim_id: str, module: str, budget_s: float, spec: Imports
) -> Verdict:
    started = time.monotonic()
    verdict = Verdict(
        claim_id, "import", "holds", budget={"median_s": budget_s, "timeout_s": spec.timeout}
    )
    if spec.max_spread is not None:
        verdict.budget["max_spread"] = spec.max_spread
    fault = _services_fault(spec)
    runs: list[float] = []
    with ctx.claim_setup() as setup:
        for proxy in setup.proxies.values():
            proxy.set_fault(fault)
        roots = setup.target.pythonpath
        for i in range(spec.repeat):
            live.note(f"fresh interpreter {i + 1} of {spec.repeat}")
            timeout = min(spec.timeout, max(ctx.remaining(), 1.0))
            result = run_import(setup.target, module, timeout=timeout)
            if result.outcome != "returned" or result.seconds is None:
                _fill_failure(verdict, result, module, timeout, roots)
                # what it did before it hung or raised is often the cause: name it too
                effects = _forbidden(result, spec.forbid)
                if effects and verdict.status == "fails":
                    verdict.evidence += "\n" + "\n".join(effects)
                break
            runs.append(result.seconds)
            effects = _forbidden(result, spec.forbid)
            if effects:
                verdict.status = "fails"
                verdict.evidence = "\n".join(effects)
                break
        verdict.measured["runs_s"] = [round(r, 6) for r in runs]
        if runs:
            median = statistics.median(runs)
            verdict.measured = {"median_s": round(median, 6), **verdict.measured}
            if verdict.status == "holds":
                _judge_time(verdict, setup.target, module, median, runs, budget_s, spec)
        for proxy in setup.proxies.values():
            proxy.set_fault(None)
    verdict.duration_s = time.monotonic() - started
    return verdict


def _services_fault(spec: Imports) -> Fault | None:
    if spec.services_down:
        return Fault("hang")
    if not spec.with_services:
        return Fault("refuse")
    return None


def _fill_failure(
    verdict: Verdict, result: ChildResult, module: str, timeout: float, roots: Sequence[str]
) -> None:
    verdict.status = "fails"
    if result.outcome == "hung":
        verdict.measured["hung_after_s"] = round(timeout, 3)
        verdict.evidence = describe_hang(result, f"import {module}", timeout, roots, is_hang=True)
        verdict.details = hang_details(result)
    elif result.outcome == "raised":
        verdict.evidence = f"import {module} raised {describe_exception(result)}"
        if result.cycle:
            verdict.evidence += "\ncircular import: " + " -> ".join(result.cycle)
        verdict.details = result.traceback or ""
    else:
        verdict.status = "error"
        verdict.evidence = (
            f"the interpreter importing {module} died (exit status {result.returncode})"
        )
        verdict.details = crash_details(result)


def _forbidden(result: ChildResult, forbid: Sequence[str]) -> list[str]:
    wanted = set(forbid) & _SIDE_EFFECT_EVENTS
    lines = [f"{e.kind}: {e.detail} from {e.where}" for e in result.events if e.kind in wanted]
    return list(dict.fromkeys(lines))  # the same warning twice is one finding


def _judge_time(
    verdict: Verdict,
    target: TargetProcess,
    module: str,
    median: float,
    runs: list[float],
    budget_s: float,
    spec: Imports,
) -> None:
    problems = []
    if median > budget_s:
        problems.append(
            f"median {format_duration(median)} over budget "
            f"{format_duration(budget_s)} ({len(runs)} fresh interpreters)"
        )
    if spec.max_spread is not None and len(runs) > 1 and median > 0:
        spread = (max(runs) - min(runs)) / median
        verdict.measured["spread"] = round(spread, 3)
        if spread > spec.max_spread:
            problems.append(f"spread (max-min)/median {spread:.2f} over {spec.max_spread:.2f}")
    if not problems:
        return
    verdict.status = "fails"
    if median > budget_s:
        profile = run_import(target, module, timeout=spec.timeout, importtime=True)
        if profile.importtime:
            slowest = ", ".join(
                f"{name} {format_duration(secs)}" for name, secs in profile.importtime[:5]
            )
            problems.append(f"slowest imports: {slowest}")
            verdict.measured["slowest_imports"] = [  # for signoff.html's plot
                [name, round(secs, 6)] for name, secs in profile.importtime[:SLOWEST_SHOWN]
            ]
    verdict.evidence = "\n".join(problems)


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds). A discovered module's claim has the
    [imports] section as its spec too, and the default budget."""
    spec = ref.spec if isinstance(ref.spec, Imports) else ctx.claims.imports
    assert spec is not None
    module = ref.name
    budget = spec.budgets.get(module, spec.default_budget)
    if budget is None:
        return Verdict(ref.id, ref.kind, "error", evidence=f"no budget for {module}")
    return check_import(ctx, ref.id, module, budget, spec)
