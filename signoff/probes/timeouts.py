"""Timeout claims: a client call against a service that stops answering must end in time.

Time is the call's wall time in the child, retries included. The call is watched well past its
budget (`observe_s`), so a client that gives up late is reported with its real time, not just
"over budget"."""

from __future__ import annotations

import contextlib
import time

from signoff.claims.model import TimeoutClaim
from signoff.context import RunContext
from signoff.faults.controller import faulted
from signoff.probes.evidence import (
    crash_details,
    describe_exception,
    describe_hang,
    hang_details,
)
from signoff.probes.runner import ChildResult, run_call
from signoff.units import format_duration
from signoff.verdict import Verdict


def tolerance(within: float) -> float:
    """The slack a timing claim gets, stated in the report: 10% of the budget, at most 250 ms."""
    return min(0.10 * within, 0.25)


def observe_s(within: float) -> float:
    """How long a call is watched before it is called hung: long enough to see a client with
    default retries give up (redis-py's take ~15 s against a hung server)."""
    return within + max(20.0, within)


def check_timeout(ctx: RunContext, claim_id: str, spec: TimeoutClaim) -> Verdict:
    started = time.monotonic()
    slack = tolerance(spec.within)
    verdict = Verdict(
        claim_id,
        "timeout",
        "holds",
        budget={"within_s": spec.within, "tolerance_s": round(slack, 3)},
    )
    if spec.fault is not None:
        verdict.budget["fault"] = f"{spec.service} {spec.fault}"
    with ctx.claim_setup(spec.env) as setup:
        fault_ctx = (
            faulted(
                spec.fault, service=ctx.services[spec.service], proxy=setup.proxies[spec.service]
            )
            if spec.fault is not None and spec.service is not None
            else contextlib.nullcontext()
        )
        watch = min(observe_s(spec.within), max(ctx.remaining(), spec.within + slack))
        with fault_ctx:
            result = run_call(setup.target, spec.call, timeout=watch)
        _judge(verdict, spec, result, watch, slack, setup.target.pythonpath)
    verdict.duration_s = time.monotonic() - started
    return verdict


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
        verdict.evidence = describe_hang(result, spec.call, watch, roots)
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


def raised_matches(expected: str, mro: tuple[str, ...]) -> bool:
    """Whether a class named "pkg.mod:Name" (or a bare builtin "ValueError") is in the raised
    exception's MRO. A package may name a class it re-exports: "redis:TimeoutError" matches
    "redis.exceptions:TimeoutError"."""
    module, _, name = expected.rpartition(":")
    module = module or "builtins"
    for entry in mro:
        mod, _, qual = entry.rpartition(":")
        if qual == name and (mod == module or mod.startswith(module + ".")):
            return True
    return False
