"""A fault the call never meets proves nothing (signoff/engine/met.py), and what a warmup tells
(signoff/engine/warmup.py): the counting, its wording and the verdicts, without services."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from signoff.engine.met import (
    Met,
    SocketSampler,
    connect_attempts,
    count_met,
    judge_met,
    refused_in_error,
)
from signoff.engine.runner import ChildResult, Event, StepsResult
from signoff.engine.warmup import read_warmup, warmup_bound
from signoff.faults.model import Fault, parse_fault
from signoff.kinds.degradation.check import _Findings
from signoff.kinds.degradation.check import _judge_met as judge_degradation_met
from signoff.verdict import Verdict

PROXY = ("127.0.0.1", 41235)
LIBPQ_REFUSED = (
    'connection failed: connection to server at "127.0.0.1", port 41235 failed: '
    "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"
)


def connect(port: int = PROXY[1], step: str = "call", host: str = "127.0.0.1") -> Event:
    return Event("network", f"connect {host}:{port}", "app/client.py:12", 0.001, step)


def raised(message: str, traceback: str = "", step: str = "call") -> ChildResult:
    return ChildResult(
        outcome="raised",
        step=step,
        seconds=0.001,
        elapsed=0.2,
        exc_type="app.errors:Unavailable",
        exc_message=message,
        traceback=traceback,
    )


def met(fault: str, *, at_proxy: int = 0, events: tuple[Event, ...] = (), **kw: object) -> Met:
    results = kw.pop("results", ())
    sampled = kw.pop("sampled", 0)
    assert not kw
    return count_met(
        parse_fault(fault),
        "postgres",
        at_proxy=at_proxy,
        address=PROXY,
        results=results,  # type: ignore[arg-type]
        events=events,
        steps=("call", "then"),
        sampled=sampled,  # type: ignore[arg-type]
    )


# --- counting -----------------------------------------------------------------------------------


def test_the_proxy_sees_every_accepted_connect_so_the_larger_count_wins() -> None:
    # hang accepts: the proxy counted the connect the hook saw, plus a pooled connection
    assert met("hang", at_proxy=2, events=(connect(),)).total == 2
    assert met("hang", at_proxy=1, events=(connect(),)).total == 1
    # a connect the proxy had not accepted yet when the fault was lifted
    assert met("reset", at_proxy=0, events=(connect(),)).total == 1
    assert met("latency:2s", at_proxy=0).total == 0


def test_refused_connects_are_counted_on_the_client_side_once() -> None:
    # the hook, and the error naming the same refused connect: one attempt, not two
    both = met("refuse", events=(connect(),), results=(raised(LIBPQ_REFUSED),))
    assert (both.total, both.attempts, both.seen_by) == (1, 1, "hook")
    # a connect made in C (libpq): only its error says so
    libpq = met("kill", results=(raised("postgres is unavailable", LIBPQ_REFUSED),))
    assert (libpq.total, libpq.seen_by) == (1, "error")
    # pooled connections the proxy saw meet a blackhole, plus new connects nobody answered
    hole = met("blackhole", at_proxy=1, events=(connect(), connect()), sampled=1)
    assert (hole.at_proxy, hole.attempts, hole.total, hole.seen_by) == (1, 2, 3, "hook")
    assert met("blackhole", sampled=1).seen_by == "sockets"


def test_only_the_measured_steps_and_the_proxy_address_count() -> None:
    events = (
        connect(step="warmup"),  # before the fault
        connect(step="import"),
        connect(port=6379),  # another service
        Event("network", f"getaddrinfo 127.0.0.1:{PROXY[1]}", "?", 0.0, "call"),
        connect(host="localhost"),
        connect(host="[::1]", step="then"),
    )
    assert connect_attempts(events, PROXY, ("call", "then")) == 2
    assert met("refuse", events=events[:4]).total == 0


def test_a_refusal_counts_only_when_the_error_names_the_proxy_port() -> None:
    port = PROXY[1]
    redis_py = f"Error 111 connecting to 127.0.0.1:{port}. Connection refused."
    assert refused_in_error(raised(redis_py), port)
    assert refused_in_error(raised("unavailable", traceback=LIBPQ_REFUSED), port)
    assert not refused_in_error(raised("redis: circuit open"), port)
    assert not refused_in_error(raised(redis_py.replace(str(port), "6379")), port)
    assert not refused_in_error(raised(f"port {port}1 refused"), port)
    # a blackhole or hang is never "refused": the error is not read
    assert met("hang", results=(raised(redis_py),)).total == 0
    assert met("blackhole", results=(raised(redis_py),)).total == 0


def test_the_wording_says_what_met_the_fault() -> None:
    assert met("hang", at_proxy=2).describe() == "2 connections met the hang"
    assert met("latency:300ms", at_proxy=1).describe() == "1 connection met the latency:300ms"
    assert met("refuse", events=(connect(),)).describe() == "1 connect refused"
    assert met("kill", results=(raised(LIBPQ_REFUSED),)).describe() == (
        "1 connect refused (named by the call's own error: a connect made in C code)"
    )
    assert met("blackhole", at_proxy=1, sampled=2).describe() == (
        "1 open connection met the blackhole, 2 connects never answered "
        "(seen SYN-SENT among its sockets: a connect made in C code)"
    )
    assert Met(Fault("hang"), "redis").describe() == (
        "the call never connected to redis: the hang was not exercised"
    )


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """A loopback address where connects are never answered: a full-backlog listener (its own
    fillers, connecting from this process too, are left out of what the test counts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        for _ in range(2):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(sock.getsockname())
            fillers.append(filler)
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


def test_the_sampler_sees_a_connect_nobody_answers(blackhole: tuple[str, int]) -> None:
    sampler = SocketSampler(blackhole, steps=("call",))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.setblocking(False)
        client.connect_ex(blackhole)
        mine = client.getsockname()[1]
        sampler(os.getpid(), "warmup")  # not a measured step
        assert sampler.count == 0
        sampler(os.getpid(), "call")
        assert mine in sampler.connecting
        seen = sampler.count
        sampler(os.getpid(), "call")  # the same sockets again are the same connects
        assert sampler.count == seen
    sampler(2**22 + 12345, "call")  # a process gone: nothing, no error
    assert sampler.count == seen


# --- the verdicts -------------------------------------------------------------------------------


def verdict(status: str, evidence: str) -> Verdict:
    return Verdict("timeout:x", "timeout", status, evidence=evidence)  # type: ignore[arg-type]


def test_a_timeout_that_would_hold_without_meeting_its_fault_is_error() -> None:
    v = verdict("holds", "ended after 8 us: raised app.errors.Unavailable: circuit open")
    judge_met(v, Met(Fault("hang"), "redis"))
    assert v.status == "error"
    assert v.evidence == (
        "the call never connected to redis: the hang was not exercised\n"
        "ended after 8 us: raised app.errors.Unavailable: circuit open"
    )
    assert v.measured["connections_met"] == 0


def test_a_failing_timeout_stays_failed_and_tells_the_count() -> None:
    v = verdict("fails", "raised the wrong exception")
    judge_met(v, Met(Fault("hang"), "redis"))
    assert (v.status, v.evidence.splitlines()[-1]) == (
        "fails",
        "the call never connected to redis: the hang was not exercised",
    )
    ok = verdict("holds", "ended after 1.005 s")
    judge_met(ok, Met(Fault("hang"), "redis", at_proxy=1))
    assert (ok.status, ok.evidence) == ("holds", "ended after 1.005 s\n1 connection met the hang")
    judge_met(ok, None)  # no fault put in force: nothing to say
    assert ok.measured == {"connections_met": 1}


def test_a_degradation_that_never_tried_the_service_is_error() -> None:
    findings = _Findings(facts=["degraded in 4 us: get returned Mock", "Mock.run raised X"])
    judge_degradation_met(findings, Met(Fault("kill"), "redis"))
    assert findings.status == "error"
    assert findings.problems == [
        "the call never connected to redis: the kill was not exercised",
        "degraded in 4 us: get returned Mock",
        "Mock.run raised X",
    ]
    tried = _Findings(facts=["degraded in 3 ms: get returned Mock", "Mock.run raised X"])
    judge_degradation_met(tried, Met(Fault("kill"), "redis", attempts=1, seen_by="hook"))
    assert tried.status == "holds"
    assert tried.facts[1] == "1 connect refused"


# --- the warmup -----------------------------------------------------------------------------------


def steps_result(*steps: ChildResult, barriers: dict[str, str] | None = None) -> StepsResult:
    return StepsResult(
        outcome="hung" if any(s.outcome == "hung" for s in steps) else "ended",
        steps=steps,
        barriers=barriers if barriers is not None else {"fault": "go"},
        elapsed=1.0,
        events=(),
        stderr="",
        returncode=0,
    )


def test_a_warmup_is_told_never_judged() -> None:
    ok = ChildResult("returned", "warmup", 0.412, 1.0, result_type="builtins:bool")
    told = read_warmup(steps_result(ok), "app:ping", 5.0, ())
    assert told is not None and not told.problem
    assert told.line == "warmup without the fault: returned builtins.bool in 412 ms"
    assert told.measured == {"warmup_s": 0.412, "warmup": "returned"}
    failed = read_warmup(steps_result(raised("redis down", step="warmup")), "app:ping", 5.0, ())
    assert failed is not None and not failed.problem
    assert failed.line.endswith("(not judged)")
    assert failed.measured["warmup"] == "raised app.errors.Unavailable"


def test_a_warmup_that_does_not_end_leaves_the_claim_unchecked() -> None:
    hung = ChildResult("hung", "warmup", None, 30.0, sockets=("1.2.3.4:5 -> 127.0.0.1:6 SYN_SENT",))
    told = read_warmup(steps_result(hung), "app:ping", 5.0, ())
    assert told is not None
    assert told.problem.startswith("not checked: the warmup (the call without the fault) did not")
    assert "the warmup of app:ping" in told.problem and "127.0.0.1:6" in told.problem
    assert told.measured == {"warmup": "still running", "warmup_watched_s": warmup_bound(5.0)}
    assert warmup_bound(5.0) >= 10  # room for a cold start's imports
    ok = ChildResult("returned", "warmup", 0.1, 1.0, result_type="builtins:bool")
    stuck = read_warmup(steps_result(ok, barriers={"fault": "timeout"}), "app:ping", 5.0, ())
    assert stuck is not None
    assert stuck.problem.startswith("not checked: the probe gave up waiting for the fault")
    assert read_warmup(steps_result(), "app:ping", 5.0, ()) is None  # it never ran
