"""Timeout claims: a client call against a service that stops answering must end in time.

Time is the call's wall time in the child, retries included. The call is watched well past its
budget (`observe_s`), so a client that gives up late is reported with its real time, not just
"over budget". A fault the call never met proves nothing (`met.py`): such a claim is `error`,
never `holds`; with several faults at once (`faults = {...}`), each one must be met. With
`warmup`, the call runs once without the fault first, in the same process (`warmup.py`), and
only the second call is measured; every fault is put in force after it."""

from __future__ import annotations

import time

from signoff.claims.model import ClaimRef, TimeoutClaim
from signoff.context import RunContext
from signoff.engine.evidence import (
    crash_details,
    describe_exception,
    describe_hang,
    hang_details,
    raised_matches,
)
from signoff.engine.met import FaultWindows, describe_faults, judge_met
from signoff.engine.runner import (
    MIN_IMPORT_TIMEOUT,
    ChildResult,
    Event,
    Step,
    TargetProcess,
    run_call,
    run_steps,
)
from signoff.engine.timing import observe_s, tolerance
from signoff.engine.warmup import Warmup, missing_call, read_warmup, warmup_steps
from signoff.report import live
from signoff.units import format_duration
from signoff.verdict import Verdict

MEASURED = ("call",)  # the step whose connections count as meeting the fault


def check_timeout(ctx: RunContext, claim_id: str, spec: TimeoutClaim) -> Verdict:
    started = time.monotonic()
    slack = tolerance(spec.within)
    verdict = Verdict(
        claim_id,
        "timeout",
        "holds",
        budget={"within_s": spec.within, "tolerance_s": round(slack, 3)},
    )
    faults = spec.planned_faults()
    if faults:
        verdict.budget["fault"] = describe_faults(faults)
    with ctx.claim_setup(spec.env) as setup:
        roots = setup.target.pythonpath
        watch = min(observe_s(spec.within), max(ctx.remaining(), spec.within + slack))
        window = FaultWindows(ctx, setup, faults, MEASURED)
        if window.missing:
            verdict.status = "error"
            verdict.evidence = window.missing_evidence()
            verdict.duration_s = time.monotonic() - started
            return verdict
        with window:
            if spec.warmup:
                live.note("the warmup call, before the fault")
                result, warmup, events = _run_warm(setup.target, spec, watch, window, roots)
            else:
                window.put()
                live.note(f"waiting for the call to end ({describe_faults(faults) or 'no fault'})")
                warmup = None
                result = run_call(setup.target, spec.call, timeout=watch, on_tick=window.on_tick)
                events = result.events
        if warmup is not None and warmup.problem:
            verdict.status = "error"
            verdict.measured = dict(warmup.measured)
            verdict.evidence = warmup.problem
            verdict.details = warmup.details
        else:
            _judge(verdict, spec, result, watch, slack, roots)
            if result.step == "call":
                judge_met(verdict, window.met([result], events))
            if warmup is not None:
                verdict.measured.update(warmup.measured)
                verdict.evidence += "\n" + warmup.line
        if window.note:
            verdict.evidence += f"\nnote: {window.note}"
    verdict.duration_s = time.monotonic() - started
    return verdict


def _run_warm(
    target: TargetProcess,
    spec: TimeoutClaim,
    watch: float,
    window: FaultWindows,
    roots: tuple[str, ...],
) -> tuple[ChildResult, Warmup | None, tuple[Event, ...]]:
    """Import, the warmup call, the fault put in force at the barrier, the measured call: the
    measured call's result (or the import's, when it failed), the warmup, the child's events."""

    waiting = f"waiting for the measured call to end ({describe_faults(spec.planned_faults())})"

    def at_barrier(name: str, done: tuple[ChildResult, ...]) -> bool:
        window.put()
        live.note(waiting)
        return True

    whole = run_steps(
        target,
        [
            Step("import", "resolve", max(watch, MIN_IMPORT_TIMEOUT), ref=spec.call),
            *warmup_steps("import", watch, spec.warmup),
            Step("call", "call", watch, func="import"),
        ],
        on_barrier=at_barrier,
        on_tick=window.on_tick,
    )
    imported = whole.get("import")
    if imported is not None and imported.outcome != "returned":
        result = imported
    else:
        result = whole.get("call") or missing_call(whole, "call")
    warm = spec.warmup if isinstance(spec.warmup, str) else spec.call
    return result, read_warmup(whole, warm, watch, roots), whole.events


def _judge(
    verdict: Verdict,
    spec: TimeoutClaim,
    result: ChildResult,
    watch: float,
    slack: float,
    roots: tuple[str, ...],
) -> None:
    if result.step == "import" and result.outcome != "returned":
        verdict.status = "error"
        verdict.evidence = f"could not import {spec.call}: " + (
            describe_exception(result) if result.outcome == "raised" else result.outcome
        )
        verdict.details = result.traceback or crash_details(result)
        return
    if result.outcome == "hung":
        verdict.status = "fails"
        verdict.measured = {"seconds": None, "outcome": "still running", "watched_s": watch}
        verdict.evidence = describe_hang(result, spec.call, watch, roots, budget=spec.within)
        verdict.details = hang_details(result)
        return
    if result.outcome == "crashed" or result.seconds is None:
        verdict.status = "fails"
        verdict.measured = {"outcome": "crashed", "exit_status": result.returncode}
        verdict.evidence = f"{spec.call} killed its interpreter (exit status {result.returncode})"
        verdict.details = crash_details(result)
        return
    seconds = result.seconds
    ended = (
        "returned " + (result.result_type or "?").replace(":", ".")
        if result.outcome == "returned"
        else "raised " + describe_exception(result)
    )
    verdict.measured = {"seconds": round(seconds, 4), "outcome": result.outcome}
    if result.exc_type:
        verdict.measured["exception"] = result.exc_type.replace(":", ".")
    problems = []
    if seconds > spec.within + slack:
        problems.append(
            f"gave up after {format_duration(seconds)}, over the "
            f"{format_duration(spec.within)} claimed (+{format_duration(slack)} "
            f"tolerance): {ended}"
        )
    if spec.raises:
        if result.outcome != "raised":
            problems.append(f"expected it to raise {' or '.join(spec.raises)}, but it {ended}")
        elif not any(raised_matches(r, result.exc_mro) for r in spec.raises):
            problems.append(
                f"raised the wrong exception: {describe_exception(result)}; "
                f"expected {' or '.join(spec.raises)}"
            )
    if problems:
        verdict.status = "fails"
        verdict.evidence = "\n".join(problems)
        verdict.details = result.traceback or ""
    else:
        verdict.evidence = f"ended after {format_duration(seconds)}: {ended}"


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds)."""
    assert isinstance(ref.spec, TimeoutClaim)
    return check_timeout(ctx, ref.id, ref.spec)
