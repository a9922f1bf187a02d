"""Degradation claims: with a service down, a getter still returns in time (a stand-in, when
`expect` names one), the stand-in fails cleanly (`then`, `raises`), and once the service is back
the getter hands out the real thing again (`recovers`). A fault the getter never met proves
nothing (`met.py`): such a claim is `error`, never `holds`. Several faults at once (`faults =
{...}`: a fallback chain, one claim per link) are put in force together and lifted together,
and each one must be met: a chain that skips a link it claims to try is `error`, naming it.
With `warmup`, `call` runs once without the faults first, in the same process (`warmup.py`).

The whole claim runs in ONE fresh interpreter of the target (`run_steps`): under the fault it
calls `call` and `then`; at the barrier "lifted" the parent lifts the fault (a killed server is
restarted and answers again) and lets that same process call `call` again, every POLL_EVERY
seconds, until the result is no longer an `expect`. A getter that caches its stand-in forever
(the seeds' lazy singleton) never recovers, and that is what `recovers` catches. Classes
(`expect`, `raises`) are resolved and compared with isinstance in the child: the harness never
imports target code."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from signoff.claims.model import ClaimRef, DegradationClaim
from signoff.context import RunContext
from signoff.engine.evidence import crash_details, describe_exception, describe_hang, hang_details
from signoff.engine.met import FaultWindows, Met, as_mets, describe_faults, met_figures, met_lines
from signoff.engine.runner import (
    MIN_IMPORT_TIMEOUT,
    ChildResult,
    Step,
    StepsResult,
    run_steps,
)
from signoff.engine.timing import BARRIER_TIMEOUT, tolerance, watch_s
from signoff.engine.warmup import FAULT_BARRIER, read_warmup, warmup_steps
from signoff.kinds.degradation.timeline import Clock, timeline
from signoff.report import live
from signoff.units import format_duration
from signoff.verdict import Status, Verdict

POLL_EVERY = 0.2  # seconds between two calls while waiting for the recovery
MEASURED = ("call", "then")  # the steps whose connections count as meeting the fault


def check_degradation(ctx: RunContext, claim_id: str, spec: DegradationClaim) -> Verdict:
    started = time.monotonic()
    slack = tolerance(spec.within)
    verdict = Verdict(
        claim_id,
        "degradation",
        "holds",
        budget={"within_s": spec.within, "tolerance_s": round(slack, 3)},
    )
    faults = spec.planned_faults()
    if faults:
        verdict.budget["fault"] = describe_faults(faults)
    if spec.recovers is not None:
        verdict.budget["recovers_s"] = spec.recovers
        verdict.budget["recovers_tolerance_s"] = round(tolerance(spec.recovers), 3)
    plan = _Plan(spec, min(watch_s(spec.within), max(ctx.remaining(), spec.within + slack)))
    with (
        ctx.claim_setup(spec.env) as setup,
        FaultWindows(ctx, setup, faults, MEASURED) as window,
    ):
        if window.missing:
            verdict.status = "error"
            verdict.evidence = window.missing_evidence()
            verdict.duration_s = time.monotonic() - started
            return verdict
        waiting = f"waiting for the degraded answer ({describe_faults(faults)})"
        clock = Clock()  # the moments of the timeline (timeline.py)
        if not spec.warmup:
            window.put()
            clock.mark("fault on")
        live.note(waiting if not spec.warmup else "the warmup call, before the fault")

        def at_barrier(name: str, done: tuple[ChildResult, ...]) -> bool:
            if name == FAULT_BARRIER:  # the warmup is done: the faults start now
                window.put()
                clock.mark("fault on")
                live.note(waiting)
                return True
            clock.mark("lifted")
            window.lift()  # a killed server restarts and answers before this returns
            clock.mark("back")
            live.note("the fault is lifted: waiting for the recovery")
            return _judge_degraded(plan, _lookup(done)).status == "holds"

        result = run_steps(setup.target, plan.steps, on_barrier=at_barrier, on_tick=window.on_tick)
    roots = setup.target.pythonpath
    warm = spec.warmup if isinstance(spec.warmup, str) else spec.call
    warmup = read_warmup(result, warm, plan.watch, roots) if spec.warmup else None
    if warmup is not None and warmup.problem:
        findings = _Findings(measured=dict(warmup.measured), details=[warmup.details])
        findings.error(warmup.problem)
    else:
        findings = _judge(plan, result, roots)
        if result.get("call") is not None:
            _judge_met(findings, window.met([result.get(s) for s in MEASURED], result.events))
        if warmup is not None:
            findings.measured.update(warmup.measured)
            (findings.facts if findings.status == "holds" else findings.problems).append(
                warmup.line
            )
    note = window.note
    verdict.status = findings.status
    verdict.measured = findings.measured
    events = timeline(clock, result)
    if events:
        verdict.measured["timeline"] = events
    lines = findings.problems if findings.status != "holds" else findings.facts
    if findings.status != "holds" and findings.skipped:
        lines = [*lines, findings.skipped]
    if note:
        lines = [*lines, f"note: {note}"]
    verdict.evidence = "\n".join(lines)
    verdict.details = "\n\n".join(d for d in findings.details if d)
    verdict.duration_s = time.monotonic() - started
    return verdict


# -- the steps the child runs ------------------------------------------------------------------


@dataclass
class _Plan:
    """The claim as steps for `run_steps`, and how long each is watched."""

    spec: DegradationClaim
    watch: float  # for `call` and `then`
    steps: list[Step] = field(default_factory=list)
    resolves: list[tuple[str, str]] = field(default_factory=list)  # (step name, reference)
    raises: list[tuple[str, str]] = field(default_factory=list)  # (step name, class name)

    def __post_init__(self) -> None:
        spec = self.spec
        import_timeout = self.import_timeout
        self.resolves.append(("resolve_call", spec.call))
        if spec.expect is not None:
            self.resolves.append(("expect", spec.expect))
        for i, name in enumerate(spec.raises):
            ref = name if ":" in name else f"builtins:{name}"
            self.resolves.append((f"raises_{i}", ref))
            self.raises.append((f"raises_{i}", name))
        for i, (step, ref) in enumerate(self.resolves):
            self.steps.append(Step(step, "resolve", import_timeout, ref=ref, is_class=i > 0))
        if spec.warmup:
            self.steps.extend(warmup_steps("resolve_call", self.watch, spec.warmup))
        expect = ("expect",) if spec.expect is not None else ()
        on_call = tuple(s for s, _ in self.raises) if spec.then is None else ()
        self.steps.append(
            Step("call", "call", self.watch, func="resolve_call", classify=expect + on_call)
        )
        if spec.then is not None:
            self.steps.append(
                Step(
                    "then",
                    "call",
                    self.watch,
                    func="call",
                    attr=spec.then,
                    classify=tuple(s for s, _ in self.raises),
                )
            )
        if spec.recovers is not None:
            self.steps.append(Step("lifted", "barrier", BARRIER_TIMEOUT))
            self.steps.append(
                Step(
                    "recovers",
                    "poll",
                    self.recover_watch,
                    func="resolve_call",
                    until_not="expect",
                    every=POLL_EVERY,
                    for_s=spec.recovers,
                )
            )

    @property
    def import_timeout(self) -> float:
        return max(self.watch, MIN_IMPORT_TIMEOUT)

    @property
    def recover_watch(self) -> float:
        recovers = self.spec.recovers or 0.0
        return recovers + tolerance(recovers) + self.watch

    @property
    def short(self) -> str:
        """The callable's own name: "get_transcription_service"."""
        return self.spec.call.partition(":")[2]

    @property
    def came_back(self) -> str:
        names = list(self.spec.planned_faults())
        if not names:
            return "after the fault was lifted"
        return f"after {' and '.join(names)} came back"


# -- judging -----------------------------------------------------------------------------------


@dataclass
class _Findings:
    status: Status = "holds"
    problems: list[str] = field(default_factory=list)  # why it fails (or cannot be checked)
    facts: list[str] = field(default_factory=list)  # what was seen, for a claim that holds
    measured: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    skipped: str = ""  # a part not checked because an earlier one failed

    def fail(self, line: str) -> None:
        if self.status == "holds":
            self.status = "fails"
        self.problems.append(line)

    def error(self, line: str) -> None:
        self.status = "error"
        self.problems.append(line)


def _judge_met(findings: _Findings, met: Met | Sequence[Met] | None) -> None:
    """A getter that never met one of its faults proves nothing: what would hold is `error`,
    naming the fault nobody met (a chain that skips a link); what fails still fails (it did
    what the claim says it must not), and says so too. `met`: what met the fault, or each."""
    mets = as_mets(met)
    if not mets:
        return
    findings.measured.update(met_figures(mets))
    lines = met_lines(mets)
    if any(m.total == 0 for m in mets) and findings.status == "holds":
        findings.status = "error"
        findings.problems = [*lines, *findings.facts]
    elif findings.status == "holds":
        findings.facts[1:1] = lines  # after "degraded in ...": what the getter met
    else:
        findings.problems.extend(lines)


def _lookup(done: tuple[ChildResult, ...]) -> Callable[[str], ChildResult | None]:
    by_name = {r.step: r for r in done}
    return by_name.get


def _judge(plan: _Plan, result: StepsResult, roots: tuple[str, ...]) -> _Findings:
    findings = _judge_degraded(plan, result.get, roots, result)
    if plan.spec.recovers is None or findings.status == "error":
        return findings
    answer = result.barriers.get("lifted")
    if answer == "stop" or (findings.status != "holds" and answer is None):
        findings.measured["recovered_after_s"] = None
        findings.skipped = "recovery not checked: it did not degrade as claimed"
    elif answer == "timeout":
        findings.error(
            f"the probe gave up waiting for the fault to be lifted "
            f"({format_duration(BARRIER_TIMEOUT)})"
        )
    else:
        _judge_recovery(plan, result, roots, findings)
    return findings


def _judge_degraded(
    plan: _Plan,
    get: Callable[[str], ChildResult | None],
    roots: tuple[str, ...] = (),
    whole: StepsResult | None = None,
) -> _Findings:
    """Under the fault: the references resolve, `call` returns (an `expect`) in time, and
    `then` raises one of `raises` (or returns, without `raises`) in time."""
    spec, findings = plan.spec, _Findings()
    for step, ref in plan.resolves:
        resolved = get(step)
        if resolved is None or resolved.outcome != "returned":
            what = "import" if step == "resolve_call" else f"resolve {step.split('_')[0]}"
            findings.error(
                f"could not {what} {ref}: "
                + _ended_badly(resolved, ref, roots, whole, plan.import_timeout)
            )
            findings.details.append(_details(resolved, whole))
            return findings
    call = get("call")
    if call is None or call.outcome in ("hung", "crashed"):
        findings.measured = {"seconds": None, "outcome": "still running", "watched_s": plan.watch}
        if call is None or call.outcome == "crashed":
            findings.measured = {"outcome": "crashed", "exit_status": _exit_status(call, whole)}
        findings.fail(_ended_badly(call, spec.call, roots, whole, plan.watch))
        findings.details.append(_details(call, whole))
        return findings
    _judge_call(plan, call, findings)
    if spec.then is not None:
        _judge_then(plan, call, get("then"), roots, whole, findings)
    return findings


def _judge_call(plan: _Plan, call: ChildResult, findings: _Findings) -> None:
    spec, slack = plan.spec, tolerance(plan.spec.within)
    seconds = call.seconds or 0.0
    findings.measured["seconds"] = round(seconds, 4)
    if call.outcome == "returned":
        findings.measured["result"] = call.result_type
        ended = f"returned {call.result_type}"
    else:
        findings.measured["exception"] = _dotted(call.exc_type)
        ended = f"raised {describe_exception(call)}"
        findings.details.append(call.traceback or "")
    if seconds > spec.within + slack:
        findings.fail(
            f"{plan.short} took {format_duration(seconds)}, over the "
            f"{format_duration(spec.within)} claimed (+{format_duration(slack)} tolerance): "
            f"{ended}"
        )
    if spec.raises and spec.then is None:
        wanted = " or ".join(spec.raises)
        if call.outcome == "returned":
            findings.fail(f"expected {plan.short} to raise {wanted}, but it {ended}")
        elif not any(call.instance_of.get(step) for step, _ in plan.raises):
            findings.fail(
                f"{plan.short} raised the wrong exception: {describe_exception(call)}; "
                f"expected {wanted}"
            )
    elif call.outcome == "raised":
        findings.fail(f"{plan.short} raised {describe_exception(call)} instead of degrading")
    elif spec.expect is not None and not call.instance_of.get("expect"):
        findings.fail(f"{plan.short} returned {call.result_type}, not a {spec.expect}")
    findings.facts.append(f"degraded in {format_duration(seconds)}: {plan.short} {ended}")


def _judge_then(
    plan: _Plan,
    call: ChildResult,
    then: ChildResult | None,
    roots: tuple[str, ...],
    whole: StepsResult | None,
    findings: _Findings,
) -> None:
    spec, slack = plan.spec, tolerance(plan.spec.within)
    owner = (call.result_type or "?").rpartition(":")[2]
    what = f"{owner}.{spec.then}"
    if then is None:
        findings.measured["then"] = None  # the call raised: there is nothing to call it on
        return
    if then.outcome in ("hung", "crashed"):
        findings.measured["then"] = "still running" if then.outcome == "hung" else "crashed"
        findings.fail(_ended_badly(then, what, roots, whole, plan.watch))
        findings.details.append(_details(then, whole))
        return
    seconds = then.seconds or 0.0
    findings.measured["then_seconds"] = round(seconds, 4)
    if then.outcome == "returned":
        findings.measured["then"] = "returned"
        ended = f"returned {then.result_type}"
    else:
        findings.measured["then"] = f"raised {_dotted(then.exc_type)}"
        ended = f"raised {describe_exception(then)}"
        findings.details.append(then.traceback or "")
    if seconds > spec.within + slack:
        findings.fail(
            f"{what} took {format_duration(seconds)}, over the {format_duration(spec.within)} "
            f"claimed (+{format_duration(slack)} tolerance): {ended}"
        )
    if spec.raises:
        wanted = " or ".join(spec.raises)
        if then.outcome == "returned":
            findings.fail(f"{what} {ended} instead of raising {wanted}")
        elif not any(then.instance_of.get(step) for step, _ in plan.raises):
            findings.fail(
                f"{what} raised the wrong exception: {describe_exception(then)}; expected {wanted}"
            )
    elif then.outcome == "raised":
        findings.fail(f"{what} {ended}; expected it to return")
    findings.facts.append(f"{what} {ended}")


def _judge_recovery(
    plan: _Plan, result: StepsResult, roots: tuple[str, ...], findings: _Findings
) -> None:
    spec = plan.spec
    recovers = spec.recovers or 0.0
    slack = tolerance(recovers)
    poll = result.get("recovers")
    findings.measured["recovered_after_s"] = None
    if poll is None or poll.outcome in ("hung", "crashed"):
        findings.fail(
            f"{plan.came_back}: " + _ended_badly(poll, spec.call, roots, result, plan.recover_watch)
        )
        findings.details.append(_details(poll, result))
        return
    attempts = poll.attempts
    findings.measured["recovery_calls"] = len(attempts)
    last = attempts[-1] if attempts else None
    if last is not None and last.outcome == "returned" and not last.instance:
        at = last.ended
        findings.measured["recovered_after_s"] = round(at, 3)
        told = f"call {len(attempts)} returned {last.type}"
        if at > recovers + slack:
            findings.fail(
                f"recovered only {format_duration(at)} {plan.came_back}, over the "
                f"{format_duration(recovers)} claimed (+{format_duration(slack)} tolerance): "
                f"{told}"
            )
        findings.facts.append(f"recovered {format_duration(at)} {plan.came_back}: {told}")
        return
    waited = last.ended if last is not None else 0.0
    findings.fail(
        f"still degraded {format_duration(waited)} {plan.came_back}: "
        + _summary(poll, len(attempts))
    )
    if poll.outcome == "raised":
        findings.details.append(poll.traceback or "")


def _summary(poll: ChildResult, n: int) -> str:
    """ "48 calls all returned core.services:MockTranscriptionService", or a breakdown."""
    counts = Counter(
        (a.outcome, a.type if a.outcome == "returned" else _dotted(a.type)) for a in poll.attempts
    )
    calls = f"{n} call" + ("s" if n != 1 else "")
    if len(counts) == 1:
        (outcome, type_name), _ = counts.popitem()
        head = f"{calls} all {outcome} {type_name}" if n > 1 else f"{calls} {outcome} {type_name}"
        if outcome == "raised" and poll.exc_message:
            head += f" (the last: {poll.exc_message})"
        return head
    parts = [f"{count} {outcome} {name}" for (outcome, name), count in counts.most_common()]
    return f"{calls}: " + ", ".join(parts)


def _ended_badly(
    result: ChildResult | None,
    what: str,
    roots: tuple[str, ...],
    whole: StepsResult | None,
    watched: float | None = None,
) -> str:
    """One or two lines on a step that raised, hung or crashed (or never ran)."""
    if result is None:
        status = _exit_status(None, whole)
        return f"the probe ended before {what} (exit status {status})"
    if result.outcome == "raised":
        return describe_exception(result)
    if result.outcome == "hung":
        return describe_hang(result, what, watched if watched is not None else 0.0, roots)
    return f"{what} killed its interpreter (exit status {result.returncode})"


def _details(result: ChildResult | None, whole: StepsResult | None) -> str:
    if result is not None and result.outcome == "hung":
        return hang_details(result)
    if result is not None:
        return crash_details(result)
    return whole.stderr.strip() if whole is not None else ""


def _exit_status(result: ChildResult | None, whole: StepsResult | None) -> int | None:
    if result is not None:
        return result.returncode
    return whole.returncode if whole is not None else None


def _dotted(type_name: str | None) -> str:
    return (type_name or "?").replace(":", ".")


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds)."""
    assert isinstance(ref.spec, DegradationClaim)
    return check_degradation(ctx, ref.id, ref.spec)
