"""[[http]] claims: what an endpoint of the served target answers, with or without faults.

The request is sent `repeat` times, one after the other, on one keep-alive client, to the
run's target server (`signoff.server`); the faults, if any (`fault`, or several at once with
`faults`), are all in force on the server's own proxies for those services (a `kill` kills the
real server too) for all of them. Each request gets `within` plus the timing tolerance (as for
[[timeouts]]) as a hard deadline for the whole exchange, body included. The checks apply to the
last response: its status (any 2xx unless `status` is given), `json` (a subset of the
response's JSON), `response_headers` (names case-insensitive, values exact), `absent_headers`
(not there at all) and its time. A request before the last that gets no answer in time ends
the claim there: it fails, naming which one.

A fault the requests never meet proves nothing (see met.py for what is counted), and with
several faults each one must be met: when no connection of the server met one of them and no
connect attempt was seen, the claim is `error` naming that service (and the answer it would
have been judged on); otherwise the evidence and `measured` say how many met each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from signoff.claims.model import ClaimRef, HttpClaim
from signoff.context import RunContext
from signoff.engine.json_subset import cut as _cut
from signoff.engine.json_subset import json_mismatches
from signoff.engine.json_subset import short_json as _short
from signoff.engine.met import describe_faults, figures_by_fault, missing_evidence, missing_targets
from signoff.engine.timing import tolerance
from signoff.faults.controller import faulted
from signoff.faults.model import Fault
from signoff.faults.proxy import FaultProxy
from signoff.server import TargetServer, server_or_error
from signoff.server_met import FaultWatch, Met
from signoff.units import format_duration, format_size
from signoff.verdict import Verdict

EXIT_WAIT = 0.5  # after a request with no answer: how long the server may take to exit
_WHILE_WORDS = {
    "kill": "was killed",
    "hang": "hung",
    "blackhole": "was blackholed",
    "refuse": "refused connections",
    "reset": "reset connections",
}
_FAULT_WORDS = {
    "kill": "killed",
    "hang": "hung",
    "blackhole": "blackholed",
    "refuse": "refusing connections",
    "reset": "resetting connections",
}


@dataclass
class Answer:
    """The last response (or why there was none)."""

    sent: int = 0  # requests sent, the last one included
    status: int | None = None
    seconds: float | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    problem: str | None = None  # no response: "did not answer within 1.100 s", ...
    out_of_time: bool = False  # the run's deadline stopped the sequence
    waited: float | None = None  # the last request had no answer after this many seconds


def describe_fault(service: str, fault: Fault) -> str:
    """ "redis killed", "redis hung", "redis answering 2 s late"."""
    word = _FAULT_WORDS.get(fault.kind)
    if word:
        return f"{service} {word}"
    if fault.kind == "latency" and fault.amount is not None:
        return f"{service} answering {fault.amount:g} s late"
    if fault.kind == "slow" and fault.amount is not None:
        return f"{service} answering at {format_size(fault.amount)}/s"
    return f"{service} {fault}"


def body_excerpt(body: bytes, headers: httpx.Headers) -> tuple[str, Any, bool]:
    """(excerpt, parsed JSON or None, whether it parsed)."""
    if not body:
        return "(empty body)", None, False
    try:
        parsed = json.loads(body)
    except ValueError:
        kind = headers.get("content-type", "unknown type").split(";")[0]
        text = body.decode("utf-8", "replace")
        if kind.startswith("text/") or kind.endswith("json"):
            return _cut(" ".join(text.split())), None, False
        return f"({len(body)} bytes of {kind})", None, False
    return _short(parsed), parsed, True


async def send(
    server: TargetServer, spec: HttpClaim, per_request: float, deadline: float
) -> Answer:
    """Send the request `spec.repeat` times; return the last answer. `deadline`: the run's
    (time.monotonic()); no request starts after it."""
    answer = Answer()
    content: dict[str, Any] = {} if spec.body is None else {"json": spec.body}
    async with httpx.AsyncClient(
        base_url=server.base_url,
        trust_env=False,  # loopback only: never through a proxy from the environment
        follow_redirects=False,
        timeout=httpx.Timeout(per_request),
    ) as client:
        for i in range(spec.repeat):
            if time.monotonic() >= deadline:
                answer.out_of_time = True
                answer.problem = f"the run's deadline passed after {i} of {spec.repeat} requests"
                return answer
            answer.sent = i + 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(per_request):
                    response = await client.request(
                        spec.method, spec.path, headers=spec.headers, **content
                    )
            except TimeoutError:
                answer.waited = time.perf_counter() - started
                answer.problem = f"did not answer within {format_duration(per_request)}"
                return answer
            except httpx.HTTPError as exc:
                detail = f": {exc}" if str(exc) else ""
                answer.problem = f"got no answer ({type(exc).__name__}{detail})"
                return answer
            answer.seconds = time.perf_counter() - started
            answer.status = response.status_code
            answer.headers = response.headers
            answer.body = response.content
    return answer


def check_http(ctx: RunContext, claim_id: str, spec: HttpClaim) -> Verdict:
    started = time.monotonic()
    slack = tolerance(spec.within)
    verdict = Verdict(
        claim_id,
        "http",
        "holds",
        budget=_budget(spec, slack),
    )
    server = server_or_error(ctx, verdict, started)
    if server is None:
        return verdict
    notes = server.take_restart_note()
    per_request = spec.within + slack
    faults = spec.planned_faults()
    missing = missing_targets(faults, ctx.services, server.proxies)
    if missing:
        verdict.status = "error"
        verdict.evidence = missing_evidence(missing)
        verdict.duration_s = time.monotonic() - started
        return verdict
    watches = {
        name: FaultWatch(server, name, fault, open_before=server.proxies[name].connections)
        for name, fault in faults.items()
    }
    mets: dict[str, Met] = {}
    with contextlib.ExitStack() as in_force:
        states = []
        for name, fault in faults.items():
            # the background's proxy is lifted after the service's, once it answers again
            in_force.enter_context(_background_faulted(server.background_proxies.get(name), fault))
            states.append(
                in_force.enter_context(
                    faulted(fault, service=ctx.services[name], proxy=server.proxies[name])
                )
            )
        for watch in watches.values():  # every fault is in force: the window opens
            watch.start()
        try:
            answer = asyncio.run(send(server, spec, per_request, ctx.deadline))
        finally:
            mets = {name: watch.stop() for name, watch in watches.items()}
    notes.extend(state.note for state in states if state.note)
    _judge(verdict, spec, answer, per_request, _fault_words(faults, mets))
    if mets:
        _judge_met(verdict, spec, mets, answer)
    if answer.problem is not None and server.proc is not None:
        # a server that dropped the connection as it died: let its exit be seen
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(EXIT_WAIT)
    if not server.alive and server.proc is not None:
        notes.append(
            f"{server.exit_words()} during this claim; "
            "last lines of server.log:\n" + "\n".join(server.log_tail().splitlines()[-8:])
        )
    notes.extend(server.background_problems())
    if notes:
        verdict.evidence += "\n" + "\n".join(f"note: {n}" for n in notes)
    verdict.duration_s = time.monotonic() - started
    return verdict


@contextlib.contextmanager
def _background_faulted(proxy: FaultProxy | None, fault: Fault) -> Iterator[None]:
    """The same fault on the background processes' proxy (the service itself is `faulted`'s)."""
    if proxy is None:
        yield
        return
    proxy.set_fault(fault)
    try:
        yield
    finally:
        proxy.set_fault(None)


def _fault_words(faults: Mapping[str, Fault], mets: Mapping[str, Met]) -> str:
    """ "redis killed; 1 connect attempt refused", each fault's words (what met it, when
    anything did), one after the other."""
    parts = []
    for name, fault in faults.items():
        words = describe_fault(name, fault)
        met = mets.get(name)
        if met is not None and met.exercised:
            words += f"; {met.summary()}"
        parts.append(words)
    return "; ".join(parts)


def _judge_met(
    verdict: Verdict, spec: HttpClaim, met: Met | Mapping[str, Met], answer: Answer
) -> None:
    """Figures of what met each fault (`met`: the claim's one fault's, or each fault's by
    service); `error` instead of `holds` when one of them met nothing (that fault was not
    exercised). An answer that fails the claim fails it with the faults in place, met or not
    (as [[timeouts]] judges): it stays `fails`, with the reason as a note."""
    faults = spec.planned_faults()
    mets = met if isinstance(met, Mapping) else dict.fromkeys(faults, met)
    verdict.measured.update(figures_by_fault({name: m.measured() for name, m in mets.items()}))
    if answer.out_of_time:
        return
    reasons = []
    for name, one in mets.items():
        if one.exercised:
            continue
        if one.unseen is not None:
            reason = (
                f"could not tell whether {spec.request} reached {name} while it "
                f"{while_words(faults[name])}: {one.seen()}, but {one.unseen}"
            )
        else:
            reason = (
                f"{spec.request} never reached {name} while it {while_words(faults[name])}: "
                f"the fault was not exercised ({one.seen()})"
            )
        reasons.append(reason + one.background_note())
    if not reasons:
        return
    if verdict.status != "holds":
        verdict.evidence += "".join(f"\nnote: {reason}" for reason in reasons)
        return
    verdict.status = "error"
    verdict.evidence = "\n".join(reasons) + f"\nthe answer, not judged: {verdict.evidence}"


def while_words(fault: Fault) -> str:
    """ "hung", "was killed", "answered 2 s late": after "while it"."""
    if fault.kind == "latency" and fault.amount is not None:
        return f"answered {fault.amount:g} s late"
    if fault.kind == "slow" and fault.amount is not None:
        return f"answered at {format_size(fault.amount)}/s"
    return _WHILE_WORDS.get(fault.kind, f"had {fault}")


def _budget(spec: HttpClaim, slack: float) -> dict[str, Any]:
    budget: dict[str, Any] = {
        "request": spec.request,
        "within_s": spec.within,
        "tolerance_s": round(slack, 3),
        "status": list(spec.status) if spec.status else "2xx",
    }
    if spec.json_ is not None:
        budget["json"] = spec.json_
    if spec.response_headers:
        budget["response_headers"] = dict(spec.response_headers)
    if spec.repeat > 1:
        budget["repeat"] = spec.repeat
    if spec.absent_headers:
        budget["absent_headers"] = ", ".join(name.lower() for name in spec.absent_headers)
    if faults := spec.planned_faults():
        budget["fault"] = describe_faults(faults)
    return budget


def _judge(
    verdict: Verdict, spec: HttpClaim, answer: Answer, per_request: float, fault_words: str
) -> None:
    during = f" ({fault_words})" if fault_words else ""
    which = (
        f"{spec.request} (request {answer.sent} of {spec.repeat})"
        if spec.repeat > 1
        else spec.request
    )
    if answer.problem is not None:
        verdict.status = "error" if answer.out_of_time else "fails"
        verdict.measured = {"status": None, "seconds": None}
        if answer.waited is not None:
            verdict.measured["waited_s"] = round(answer.waited, 4)
        if spec.repeat > 1:
            verdict.measured["sent"] = answer.sent
        verdict.evidence = f"{which} {answer.problem}{during}"
        if answer.out_of_time:
            verdict.evidence = f"not checked: {answer.problem}{during}"
        return
    assert answer.status is not None and answer.seconds is not None
    excerpt, parsed, is_json = body_excerpt(answer.body, answer.headers)
    verdict.measured = {
        "status": answer.status,
        "seconds": round(answer.seconds, 4),
        "body": excerpt,
    }
    if spec.repeat > 1:
        verdict.measured["sent"] = answer.sent
    last = f" (the last of {spec.repeat})" if spec.repeat > 1 else ""
    said = (
        f"{spec.request}{last} answered {answer.status} {excerpt} in "
        f"{format_duration(answer.seconds)}"
    )
    expected: list[str] = []
    why: list[str] = []
    if spec.status:
        if answer.status not in spec.status:
            expected.append("status " + " or ".join(str(s) for s in spec.status))
    elif not 200 <= answer.status < 300:
        expected.append("a 2xx status")
    if spec.json_ is not None:
        if not is_json:
            expected.append(f"json {_short(spec.json_)}")
            why.append("the body is not JSON")
        else:
            mismatches = json_mismatches(parsed, spec.json_)
            if mismatches:
                expected.append(f"json {_short(spec.json_)}")
                why.extend(mismatches)
    for name, value in spec.response_headers.items():
        got = answer.headers.get(name)
        if got != value:
            expected.append(f'header {name}: "{value}"')
            why.append(f"header {name}: missing" if got is None else f'header {name}: "{got}"')
    for name in spec.absent_headers:
        got = answer.headers.get(name)
        if got is not None:
            expected.append(f"no header {name.lower()}")
            why.append(f'header {name.lower()}: "{got}" should not be there')
    if answer.seconds > per_request:
        expected.append(
            f"an answer within {format_duration(spec.within)} "
            f"(+{format_duration(per_request - spec.within)} tolerance)"
        )
    if expected:
        verdict.status = "fails"
        verdict.evidence = f"{said}; expected {' and '.join(expected)}{during}"
        if why:
            verdict.evidence += "\n" + "\n".join(why)
        with contextlib.suppress(UnicodeDecodeError):
            verdict.details = answer.body[:4000].decode("utf-8")
    else:
        verdict.evidence = f"{said}{during}"


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    """The registry's entry point (signoff.kinds)."""
    assert isinstance(ref.spec, HttpClaim)
    return check_http(ctx, ref.id, ref.spec)
