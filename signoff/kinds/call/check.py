"""[[call]] claims: a callable of the target, called with arguments, returns what was promised
(an instance of `returns`, a dict containing `json`) or raises one of `raises`, within `within`,
with or without faults.

The claim runs in ONE fresh interpreter of the target (`run_steps`): with the faults in force,
it imports `call`'s module and looks `call` up, resolves `returns` and `raises` (classes are
compared with isinstance there: the harness never imports target code), then calls
`call(*args, **kwargs)` (a coroutine it returns is run to its end, inside the call's time). The
call must end within `within` plus the timing tolerance; it is watched for about twice that
(`watch_s`) before it is reported as still running, with where it is stuck.

A `call` that cannot be looked up (the missing `clear_expired` of the seed: AttributeError), or
whose module raises at import, fails: that is the target's code, not the harness. A `returns`
or `raises` class that cannot be resolved makes the claim `error` (nothing was checked). A fault
the call never meets proves nothing (`met.py`): with faults, each one must be met, or a claim
that would hold is `error`, naming the fault nobody met."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from signoff.claims.model import CallClaim, ClaimRef
from signoff.context import RunContext
from signoff.engine.evidence import crash_details, describe_exception, describe_hang, hang_details
from signoff.engine.json_subset import cut, json_mismatches, short_json
from signoff.engine.met import FaultWindows, describe_faults, judge_met
from signoff.engine.runner import MIN_IMPORT_TIMEOUT, ChildResult, Step, StepsResult, run_steps
from signoff.engine.timing import tolerance, watch_s
from signoff.engine.warmup import missing_call
from signoff.units import format_duration
from signoff.verdict import Verdict

MEASURED = ("call",)  # the step whose connections count as meeting the faults
LOOKUP = "resolve_call"  # the step that imports `call`'s module and looks `call` up
RETURNS = "returns"  # the step that resolves the `returns` class
REPR_MAX = 100  # the result's repr, in `measured` and the evidence
# object.__repr__'s address: it says nothing a person needs, and differs from run to run
_DEFAULT_REPR = re.compile(r" (?:object )?at 0x[0-9a-fA-F]+>")


def check_call(ctx: RunContext, claim_id: str, spec: CallClaim) -> Verdict:
    started = time.monotonic()
    slack = tolerance(spec.within)
    verdict = Verdict(claim_id, "call", "holds", budget=_budget(spec, slack))
    watch = min(watch_s(spec.within), max(ctx.remaining(), spec.within + slack))
    steps, classes = _steps(spec, watch)
    with ctx.claim_setup(spec.env) as setup:
        windows = FaultWindows(ctx, setup, spec.planned_faults(), MEASURED)
        if windows.missing:
            verdict.status = "error"
            verdict.evidence = windows.missing_evidence()
            verdict.duration_s = time.monotonic() - started
            return verdict
        with windows:
            windows.put()
            result = run_steps(setup.target, steps, on_tick=windows.on_tick)
        roots = setup.target.pythonpath
        call = _judge(verdict, spec, result, classes, watch, roots)
        if call is not None:
            judge_met(verdict, windows.met([call], result.events))
        if windows.note:
            verdict.evidence += f"\nnote: {windows.note}"
    verdict.duration_s = time.monotonic() - started
    return verdict


def _budget(spec: CallClaim, slack: float) -> dict[str, Any]:
    budget: dict[str, Any] = {"within_s": spec.within, "tolerance_s": round(slack, 3)}
    if spec.returns is not None:
        budget["returns"] = spec.returns
    if spec.json_ is not None:
        budget["json"] = spec.json_
    if spec.raises:
        budget["raises"] = list(spec.raises)
    if faults := spec.planned_faults():
        budget["fault"] = describe_faults(faults)
    return budget


def _steps(spec: CallClaim, watch: float) -> tuple[list[Step], dict[str, str]]:
    """The steps of the claim, and the classes they resolve ({step name: reference})."""
    classes: dict[str, str] = {}
    if spec.returns is not None:
        classes[RETURNS] = spec.returns
    for i, name in enumerate(spec.raises):
        classes[f"raises_{i}"] = name if ":" in name else f"builtins:{name}"
    bound = max(watch, MIN_IMPORT_TIMEOUT)
    return [
        Step(LOOKUP, "resolve", bound, ref=spec.call),
        *(Step(step, "resolve", bound, ref=ref, is_class=True) for step, ref in classes.items()),
        Step(
            "call",
            "call",
            watch,
            func=LOOKUP,
            classify=tuple(classes),
            args=tuple(spec.args),
            kwargs=dict(spec.kwargs),
            as_json=spec.json_ is not None,
        ),
    ], classes


def _judge(
    verdict: Verdict,
    spec: CallClaim,
    result: StepsResult,
    classes: dict[str, str],
    watch: float,
    roots: tuple[str, ...],
) -> ChildResult | None:
    """Judge the claim into `verdict`; the call step's result when the call was made."""
    bound = max(watch, MIN_IMPORT_TIMEOUT)
    lookup = result.get(LOOKUP) or missing_call(result, LOOKUP)
    if lookup.outcome != "returned":
        verdict.status = "fails"
        verdict.measured = {"seconds": None, "outcome": f"{lookup.outcome} before the call"}
        verdict.evidence = _unfinished(lookup, f"looking up {spec.call}", bound, roots)
        verdict.details = _details(lookup)
        return None
    for step, ref in classes.items():
        resolved = result.get(step) or missing_call(result, step)
        if resolved.outcome != "returned":
            key = "returns" if step == RETURNS else "raises"
            verdict.status = "error"
            verdict.evidence = f"not checked: could not resolve {key} {ref}: " + _unfinished(
                resolved, ref, bound, roots
            )
            verdict.details = _details(resolved)
            return None
    call = result.get("call") or missing_call(result, "call")
    if call.outcome in ("hung", "crashed") or call.seconds is None:
        hung = call.outcome == "hung"
        verdict.status = "fails"
        verdict.measured = {
            "seconds": None,
            "outcome": "still running" if hung else "crashed",
            **({"watched_s": round(watch, 3)} if hung else {"exit_status": call.returncode}),
        }
        verdict.evidence = _unfinished(call, spec.call, watch, roots, budget=spec.within)
        verdict.details = _details(call)
        return call
    _judge_ended(verdict, spec, call, classes)
    return call


def _judge_ended(
    verdict: Verdict, spec: CallClaim, call: ChildResult, classes: dict[str, str]
) -> None:
    """A call that returned or raised: its time, then what it gave against what was promised."""
    seconds = call.seconds or 0.0
    slack = tolerance(spec.within)
    verdict.measured = {"seconds": round(seconds, 6), "outcome": call.outcome}
    if call.outcome == "returned":
        shown = cut(_DEFAULT_REPR.sub(">", call.result_repr or "?"), REPR_MAX)
        verdict.measured["result"] = shown
        ended = f"returned {_dotted(call.result_type)}"
        if not _DEFAULT_REPR.search(call.result_repr or ""):  # an object's own repr says more
            ended += f" {shown}"
    else:
        verdict.measured["exception"] = cut(_exception(call), REPR_MAX)
        ended = f"raised {_exception(call)}"
        verdict.details = call.traceback or ""
    problems: list[str] = []
    if seconds > spec.within + slack:
        problems.append(
            f"took {format_duration(seconds)}, over the {format_duration(spec.within)} claimed "
            f"(+{format_duration(slack)} tolerance): {ended}"
        )
    raises = [step for step in classes if step != RETURNS]
    if spec.raises:
        wanted = " or ".join(spec.raises)
        if call.outcome == "returned":
            problems.append(f"{ended} in {format_duration(seconds)}; expected it to raise {wanted}")
        elif not any(call.instance_of.get(step) for step in raises):
            problems.append(f"raised the wrong exception: {_exception(call)}; expected {wanted}")
    elif call.outcome == "raised":
        promised = f" a {spec.returns}" if spec.returns is not None else ""
        problems.append(f"{ended} in {format_duration(seconds)}; expected it to return{promised}")
    else:
        if spec.returns is not None and not call.instance_of.get(RETURNS):
            problems.append(f"{ended}, not a {spec.returns}")
        if spec.json_ is not None:
            problems.extend(_json_problems(call, spec.json_, ended))
    if problems:
        verdict.status = "fails"
        verdict.evidence = "\n".join(problems)
    else:
        verdict.evidence = f"{ended} in {format_duration(seconds)}"


def _json_problems(call: ChildResult, expected: dict[str, Any], ended: str) -> list[str]:
    """Why the returned value does not contain `expected`: a first line, then one per key."""
    head = f"{ended}; expected json {short_json(expected)}"
    if call.result_json is None:
        return [f"{head}\nthe result could not be read as JSON: {call.result_json_error}"]
    mismatches = json_mismatches(json.loads(call.result_json), expected, whole="the result")
    return [head, *mismatches] if mismatches else []


def _unfinished(
    result: ChildResult,
    what: str,
    watch: float,
    roots: tuple[str, ...],
    budget: float | None = None,
) -> str:
    """The evidence of a step that raised, hung or killed its interpreter."""
    if result.outcome == "raised":
        return f"{what} raised {_exception(result)}"
    if result.outcome == "hung":
        return describe_hang(result, what, watch, roots, budget=budget)
    return f"{what} killed its interpreter (exit status {result.returncode})"


def _exception(result: ChildResult) -> str:
    """ "AttributeError: module 'app.cache' has no attribute 'clear_expired'", "redis.exceptions.
    ConnectionError: ... (at app/cache.py:12)": a builtin by its bare name."""
    return describe_exception(result).removeprefix("builtins.")


def _details(result: ChildResult) -> str:
    return hang_details(result) if result.outcome == "hung" else crash_details(result)


def _dotted(type_name: str | None) -> str:
    return (type_name or "?").replace(":", ".")


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds)."""
    assert isinstance(ref.spec, CallClaim)
    return check_call(ctx, ref.id, ref.spec)
