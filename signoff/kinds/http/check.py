"""[[http]] claims: what an endpoint of the served target answers, with or without a fault.

The request is sent `repeat` times, one after the other, on one keep-alive client, to the
run's target server (`signoff.server`); the fault, if any, is in force on the server's own proxy
for that service (a `kill` kills the real server too) for all of them. Each request gets
`within` plus the timing tolerance (as for [[timeouts]]) as a hard deadline for the whole
exchange, body included. The checks apply to the last response: its status (any 2xx unless
`status` is given), `json` (a subset of the response's JSON), `response_headers` (names
case-insensitive, values exact) and its time. A request before the last that gets no answer
in time ends the claim there: it fails, naming which one.

A fault the requests never meet proves nothing (see http_met.py for what is counted): when no
connection of the server met the fault and no connect attempt was seen, the claim is `error`
with that reason (and the answer it would have been judged on); otherwise the evidence and
`measured` say how many met it.
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
from signoff.engine.timing import tolerance
from signoff.faults.controller import faulted
from signoff.faults.model import Fault
from signoff.faults.proxy import FaultProxy
from signoff.kinds.http.met import FaultWatch, Met
from signoff.server import TargetServer, server_or_error
from signoff.units import format_duration, format_size
from signoff.verdict import Verdict

EXCERPT_MAX = 200
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


def json_mismatches(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where `actual` does not contain `expected`: tables are matched as subsets, recursively
    (every expected key present, with a matching value; other keys ignored); anything else,
    arrays included, must be equal, with its JSON type (true is not 1)."""
    where = path or "the body"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where}: expected an object, got {_short(actual)}"]
        problems: list[str] = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                problems.append(f"{sub}: missing")
            else:
                problems.extend(json_mismatches(actual[key], value, sub))
        return problems
    if not _same(actual, expected):
        return [f"{where}: expected {_short(expected)}, got {_short(actual)}"]
    return []


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and not json_mismatches(actual, expected)
    return type(actual) is type(expected) and actual == expected


def _short(value: Any) -> str:
    return _cut(json.dumps(value, ensure_ascii=False, sort_keys=False))


def _cut(text: str, limit: int = EXCERPT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    notes: list[str] = []
    if server.restart_note:
        notes.append(server.restart_note)
        server.restart_note = None
    fault_words = ""
    met: Met | None = None
    per_request = spec.within + slack
    if spec.fault is None:
        answer = asyncio.run(send(server, spec, per_request, ctx.deadline))
    else:
        name = spec.fault.service
        service = ctx.services.get(name)
        proxy = server.proxies.get(name)
        if service is None or proxy is None:
            verdict.status = "error"
            verdict.evidence = f"could not check: {name} is not among the run's services"
            verdict.duration_s = time.monotonic() - started
            return verdict
        fault = spec.fault.kind
        fault_words = describe_fault(name, fault)
        watch = FaultWatch(server, name, fault, open_before=proxy.connections)
        # the background's proxy is lifted last, once the service answers again
        with (
            _background_faulted(server.background_proxies.get(name), fault),
            faulted(fault, service=service, proxy=proxy) as state,
        ):
            watch.start()
            try:
                answer = asyncio.run(send(server, spec, per_request, ctx.deadline))
            finally:
                met = watch.stop()
        if state.note:
            notes.append(state.note)
        if met.exercised:
            fault_words += f"; {met.summary()}"
    _judge(verdict, spec, answer, per_request, fault_words)
    if met is not None:
        _judge_met(verdict, spec, met, answer)
    if answer.problem is not None and server.proc is not None:
        # a server that dropped the connection as it died: let its exit be seen
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(EXIT_WAIT)
    if not server.alive and server.proc is not None:
        notes.append(
            f"the server exited (status {server.proc.returncode}) during this claim; "
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


def _judge_met(verdict: Verdict, spec: HttpClaim, met: Met, answer: Answer) -> None:
    """Figures of what met the fault; `error` instead of `holds` when nothing did (the fault
    was not exercised). An answer that fails the claim fails it with the fault in place, met
    or not (as [[timeouts]] judges): it stays `fails`, with the reason as a note."""
    assert spec.fault is not None
    verdict.measured.update(met.measured())
    if met.exercised or answer.out_of_time:
        return
    service = spec.fault.service
    if met.unseen is not None:
        reason = (
            f"could not tell whether {spec.request} reached {service} while it "
            f"{while_words(spec.fault.kind)}: {met.seen()}, but {met.unseen}"
        )
    else:
        reason = (
            f"{spec.request} never reached {service} while it {while_words(spec.fault.kind)}: "
            f"the fault was not exercised ({met.seen()})"
        )
    if verdict.status != "holds":
        verdict.evidence += f"\nnote: {reason}{met.background_note()}"
        return
    verdict.status = "error"
    verdict.evidence = (
        f"{reason}{met.background_note()}\nthe answer, not judged: {verdict.evidence}"
    )


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
    if spec.fault is not None:
        budget["fault"] = f"{spec.fault.service} {spec.fault.kind}"
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
