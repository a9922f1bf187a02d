"""`warmup = true`: the claim's call runs once WITHOUT the fault first, in the same process, so
lazy imports and pools are in place when the fault starts and the clock measures the timeout
alone. `warmup = "pkg.mod:attr"` calls that callable instead (a claim about a new connection
warms its imports without leaving a pooled connection behind). The warmup's outcome and time
are told, never judged (a warmup that raises is fine); a warmup still running at its bound
makes the claim `error`: nothing was checked.

As steps of `run_steps`: the warmup call, then the barrier FAULT_BARRIER at which the parent
puts the fault in force, then the measured call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signoff.engine.evidence import crash_details, describe_exception, describe_hang, hang_details
from signoff.engine.runner import MIN_IMPORT_TIMEOUT, ChildResult, Step, StepsResult
from signoff.engine.timing import BARRIER_TIMEOUT
from signoff.units import format_duration

WARMUP = "warmup"  # the step's name
WARMUP_REF = "resolve_warmup"  # the step that imports a warmup callable of its own
FAULT_BARRIER = "fault"  # the barrier at which the fault is put in force


def warmup_bound(watch: float) -> float:
    """How long the warmup is watched: as long as the measured call, and at least as long as an
    import may take (the warmup is where the cold imports happen)."""
    return max(watch, MIN_IMPORT_TIMEOUT)


def warmup_steps(func: str, watch: float, warmup: bool | str = True) -> list[Step]:
    """The warmup call of the callable kept under `func` (or, when `warmup` names a callable,
    of that one, resolved first), and the barrier after it."""
    steps = []
    if isinstance(warmup, str):
        steps.append(Step(WARMUP_REF, "resolve", warmup_bound(watch), ref=warmup))
        func = WARMUP_REF
    return [
        *steps,
        Step(WARMUP, "call", warmup_bound(watch), func=func),
        Step(FAULT_BARRIER, "barrier", BARRIER_TIMEOUT),
    ]


@dataclass
class Warmup:
    """What the warmup did, as the verdict tells it."""

    line: str = ""  # for the evidence
    measured: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # set when the claim could not be checked because of the warmup
    details: str = ""


def read_warmup(
    whole: StepsResult, what: str, watch: float, roots: tuple[str, ...]
) -> Warmup | None:
    """The warmup of a run_steps result; None when it did not run (an earlier step failed)."""
    resolved = whole.get(WARMUP_REF)
    if resolved is not None and resolved.outcome != "returned":
        why = describe_exception(resolved) if resolved.outcome == "raised" else resolved.outcome
        return Warmup(
            measured={"warmup": f"could not import {what}"},
            problem=f"not checked: could not import the warmup {what}: {why}",
            details=resolved.traceback or crash_details(resolved),
        )
    warm = whole.get(WARMUP)
    if warm is None:
        return None
    bound = warmup_bound(watch)
    if warm.outcome == "hung":
        hang = describe_hang(warm, f"the warmup of {what}", bound, roots)
        return Warmup(
            measured={"warmup": "still running", "warmup_watched_s": round(bound, 3)},
            problem=f"not checked: the warmup (the call without the fault) did not end\n{hang}",
            details=hang_details(warm),
        )
    if warm.outcome == "crashed" or warm.seconds is None:
        return Warmup(
            measured={"warmup": "crashed", "warmup_exit_status": warm.returncode},
            problem=(
                f"not checked: the warmup (the call without the fault) killed its interpreter "
                f"(exit status {warm.returncode})"
            ),
            details=crash_details(warm),
        )
    took = format_duration(warm.seconds)
    measured: dict[str, Any] = {"warmup_s": round(warm.seconds, 4)}
    if warm.outcome == "returned":
        measured["warmup"] = "returned"
        line = f"warmup without the fault: returned {_dotted(warm.result_type)} in {took}"
    else:
        measured["warmup"] = f"raised {_dotted(warm.exc_type)}"
        line = f"warmup without the fault: raised {describe_exception(warm)} in {took} (not judged)"
    problem = ""
    answer = whole.barriers.get(FAULT_BARRIER)
    if answer == "timeout":
        problem = (
            f"not checked: the probe gave up waiting for the fault to be put in force "
            f"({format_duration(BARRIER_TIMEOUT)})"
        )
    return Warmup(line=line, measured=measured, problem=problem)


def _dotted(type_name: str | None) -> str:
    return (type_name or "?").replace(":", ".")


def missing_call(whole: StepsResult, step: str) -> ChildResult:
    """A stand-in result for a measured step the child never reported (it died before)."""
    return ChildResult(
        outcome="crashed",
        step=step,
        seconds=None,
        elapsed=whole.elapsed,
        stderr=whole.stderr,
        returncode=whole.returncode,
    )
