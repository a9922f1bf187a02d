"""[[degradation]] claims: the multi-step probe (`run_steps`: barriers, polls, classes resolved in
the child) against tests/data/degradation_target/flag.py, and the whole claim kind through
`signoff run` against real Redis (tests/data/degradation_target/claims.toml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from signoff import processes
from signoff.engine.runner import (
    Attempt,
    ChildResult,
    Step,
    TargetProcess,
    run_steps,
)
from signoff.engine.timing import watch_s
from signoff.kinds.degradation.check import _summary
from tests.runs import claims, signoff

DATA = Path(__file__).parent / "data"
PACKAGE = DATA / "degradation_target"
FLAG = "degradation_target.flag"


def line_of(module: str, marker: str) -> int:
    """The line of degradation_target/<module>.py that carries the comment `# <- marker`."""
    lines = (PACKAGE / f"{module}.py").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.endswith(f"# <- {marker}"))


@pytest.fixture
def flag(tmp_path: Path) -> Path:
    """The file whose existence switches flag.get() from a StandIn to a Real."""
    return tmp_path / "flag"


@pytest.fixture
def target(tmp_path: Path, flag: Path) -> TargetProcess:
    return TargetProcess(
        python=sys.executable,
        pythonpath=(str(DATA),),
        env={"FLAG_FILE": str(flag)},
        cwd=str(tmp_path),
    )


@pytest.fixture(autouse=True)
def spawned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[subprocess.Popen[Any]]]:
    """The probe children started during the test; none may outlive it."""
    monkeypatch.setenv("SIGNOFF_STATE_DIR", str(tmp_path / "state"))
    procs: list[subprocess.Popen[Any]] = []
    real = processes.spawn

    def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = real(argv, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(processes, "spawn", spawn)
    yield procs
    left = [proc for proc in procs if proc.poll() is None]
    for proc in left:
        processes.kill(proc)
    assert not left, "a probe child outlived run_steps"


def resolve(name: str, ref: str, *, is_class: bool = True) -> Step:
    return Step(name, "resolve", 10, ref=ref, is_class=is_class)


GETTER = [
    resolve("get", f"{FLAG}:get", is_class=False),
    resolve("stand_in", f"{FLAG}:StandIn"),
    resolve("lookup", "builtins:LookupError"),
    resolve("key", "builtins:KeyError"),
]


def steps(*more: Step) -> list[Step]:
    return [*GETTER, *more]


# --- run_steps --------------------------------------------------------------------------------


def test_barrier_lets_the_parent_change_the_world(target: TargetProcess, flag: Path) -> None:
    seen: list[tuple[str, list[str]]] = []

    def on_barrier(name: str, done: tuple[ChildResult, ...]) -> bool:
        seen.append((name, [r.step for r in done]))
        flag.touch()  # what lifting a fault is to a real claim
        return True

    result = run_steps(
        target,
        steps(
            Step("call", "call", 5, func="get", classify=("stand_in",)),
            Step("then", "call", 5, func="call", attr="fail", classify=("lookup", "key")),
            Step("lifted", "barrier", 30),
            Step("recovers", "poll", 10, func="get", until_not="stand_in", every=0.05, for_s=5),
        ),
        on_barrier=on_barrier,
    )
    assert result.outcome == "ended", result.stderr
    assert result.returncode == 0
    assert seen == [("lifted", ["get", "stand_in", "lookup", "key", "call", "then"])]
    assert result.barriers == {"lifted": "go"}
    call, then, recovers = result.get("call"), result.get("then"), result.get("recovers")
    assert call is not None and call.outcome == "returned"
    assert call.result_type == f"{FLAG}:StandIn"
    assert call.instance_of == {"stand_in": True}
    # the exception's class is resolved in the child: a subclass counts, another class not
    assert then is not None and then.outcome == "raised"
    assert then.exc_type == "builtins:LookupError" and then.exc_message == "nothing here"
    assert then.instance_of == {"lookup": True, "key": False}
    # the same process, after the barrier: the first call already sees the flag
    assert recovers is not None and recovers.outcome == "returned"
    assert recovers.result_type == f"{FLAG}:Real"
    assert [(a.outcome, a.type, a.instance) for a in recovers.attempts] == [
        ("returned", f"{FLAG}:Real", False)
    ]


def test_stop_at_a_barrier_ends_the_steps(target: TargetProcess) -> None:
    result = run_steps(
        target,
        steps(
            Step("call", "call", 5, func="get"),
            Step("lifted", "barrier", 30),
            Step("recovers", "poll", 10, func="get", until_not="stand_in", for_s=5),
        ),
        on_barrier=lambda name, done: False,
    )
    assert result.outcome == "ended", result.stderr
    assert result.barriers == {"lifted": "stop"}
    assert result.get("call") is not None
    assert result.get("recovers") is None


def test_poll_that_never_recovers_lists_every_call(target: TargetProcess) -> None:
    result = run_steps(
        target,
        steps(Step("recovers", "poll", 10, func="get", until_not="stand_in", every=0.1, for_s=0.5)),
    )
    poll = result.get("recovers")
    assert poll is not None and poll.outcome == "returned", result.stderr
    assert poll.result_type == f"{FLAG}:StandIn"
    assert 3 <= len(poll.attempts) <= 7  # a call every 0.1 s for 0.5 s: six, give or take
    assert all(a.instance and a.outcome == "returned" for a in poll.attempts)
    ends = [a.ended for a in poll.attempts]
    assert ends == sorted(ends)
    assert ends[-1] >= 0.5  # the last call is made at the end of the time given, not before


def test_poll_counts_raising_calls_as_not_recovered(target: TargetProcess, flag: Path) -> None:
    def on_barrier(name: str, done: tuple[ChildResult, ...]) -> bool:
        return True

    result = run_steps(
        target,
        steps(
            resolve("get_or_raise", f"{FLAG}:get_or_raise", is_class=False),
            Step("recovers", "poll", 10, func="get_or_raise", until_not="stand_in", for_s=0.3),
        ),
        on_barrier=on_barrier,
    )
    poll = result.get("recovers")
    assert poll is not None and poll.outcome == "raised", result.stderr
    assert poll.exc_type == "builtins:ConnectionError" and poll.exc_message == "not yet"
    assert poll.attempts and {a.outcome for a in poll.attempts} == {"raised"}
    assert {a.type for a in poll.attempts} == {"builtins:ConnectionError"}


def test_a_step_without_its_input_ends_the_steps(target: TargetProcess) -> None:
    result = run_steps(
        target,
        [
            resolve("get_or_raise", f"{FLAG}:get_or_raise", is_class=False),
            Step("call", "call", 5, func="get_or_raise"),
            Step("then", "call", 5, func="call", attr="fine"),  # the call raised: no result
            Step("again", "call", 5, func="get_or_raise"),
        ],
    )
    assert result.outcome == "ended", result.stderr
    assert [r.step for r in result.steps] == ["get_or_raise", "call"]


def test_resolving_a_class_that_is_none(target: TargetProcess) -> None:
    result = run_steps(
        target,
        [resolve("number", f"{FLAG}:NOT_A_CLASS"), resolve("missing", f"{FLAG}:Nowhere")],
    )
    number, missing = result.get("number"), result.get("missing")
    assert number is not None and number.outcome == "raised"
    assert number.exc_type == "builtins:TypeError"
    assert number.exc_message == f"{FLAG}:NOT_A_CLASS is builtins:int, not a class"
    assert missing is not None and missing.exc_type == "builtins:AttributeError"


def test_hung_step_shows_its_stack_and_is_killed(
    target: TargetProcess, spawned: list[subprocess.Popen[Any]]
) -> None:
    started = time.monotonic()
    result = run_steps(
        target,
        [
            resolve("sleep", f"{FLAG}:sleep_forever", is_class=False),
            Step("call", "call", 1, func="sleep"),
            Step("after", "call", 5, func="sleep"),
        ],
    )
    assert time.monotonic() - started < 15  # a 1 s deadline, generous slack
    assert result.outcome == "hung"
    hung = result.steps[-1]
    assert (hung.step, hung.outcome, hung.seconds) == ("call", "hung", None)
    assert hung.stacks is not None
    where = f'degradation_target/flag.py", line {line_of("flag", "sleeping")} in sleep_forever'
    assert where in hung.stacks
    assert result.get("after") is None
    assert len(spawned) == 1 and spawned[0].poll() is not None


def test_barrier_not_answered_in_time(target: TargetProcess) -> None:
    def slow(name: str, done: tuple[ChildResult, ...]) -> bool:
        time.sleep(1.0)
        return True

    result = run_steps(
        target,
        steps(
            Step("lifted", "barrier", 0.3),
            Step("recovers", "poll", 5, func="get", until_not="stand_in", for_s=1),
        ),
        on_barrier=slow,
    )
    assert result.outcome == "ended", result.stderr
    assert result.barriers == {"lifted": "timeout"}
    assert result.get("recovers") is None


def test_an_error_at_the_barrier_kills_the_child(
    target: TargetProcess, spawned: list[subprocess.Popen[Any]]
) -> None:
    def broken(name: str, done: tuple[ChildResult, ...]) -> bool:
        raise RuntimeError("the service did not come back")

    with pytest.raises(RuntimeError, match="did not come back"):
        run_steps(target, steps(Step("lifted", "barrier", 30)), on_barrier=broken)
    assert len(spawned) == 1 and spawned[0].poll() is not None


_ORPHANING_PARENT = """
import os, sys
import psutil
from signoff.engine.runner import Step, TargetProcess, run_steps

def die(name, done):
    print(" ".join(str(p.pid) for p in psutil.Process().children(recursive=True)), flush=True)
    os._exit(3)  # like kill -9: no cleanup, the pipes close with the process

target = TargetProcess(sys.executable, (sys.argv[1],), {}, os.getcwd())
run_steps(target, [Step("lifted", "barrier", 120)], on_barrier=die)
"""


def test_child_exits_when_its_parent_dies(tmp_path: Path) -> None:
    """At a barrier the child waits for its parent's answer; if the parent is gone (the release
    pipe hits EOF), it exits at once instead of waiting out the barrier's 120 s."""
    parent = subprocess.run(
        [sys.executable, "-c", _ORPHANING_PARENT, str(DATA)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        # the parent dies like a kill -9 and leaves its probe folder: in tmp_path, not /tmp
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).parent.parent),
            "TMPDIR": str(tmp_path),
        },
    )
    assert parent.returncode == 3, parent.stderr
    pids = [int(pid) for pid in parent.stdout.split()]
    assert pids
    give_up = time.monotonic() + 10
    while any(_running(pid) for pid in pids) and time.monotonic() < give_up:
        time.sleep(0.05)
    left = [pid for pid in pids if _running(pid)]
    for pid in left:
        psutil.Process(pid).kill()
    assert not left, "the child kept waiting at its barrier after its parent died"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_bad_steps_are_refused(target: TargetProcess) -> None:
    with pytest.raises(ValueError, match="two steps"):
        run_steps(target, [resolve("a", f"{FLAG}:get"), resolve("a", f"{FLAG}:get")])
    with pytest.raises(ValueError, match="needs 'nothing'"):
        run_steps(target, [Step("call", "call", 1, func="nothing")])
    with pytest.raises(ValueError, match="step name"):
        run_steps(target, [resolve("end", f"{FLAG}:get")])
    with pytest.raises(ValueError, match="positive"):
        run_steps(target, [Step("lifted", "barrier", 0)])


# --- the verdict's wording --------------------------------------------------------------------


def _poll(attempts: list[Attempt], message: str | None = None) -> ChildResult:
    last = attempts[-1]
    return ChildResult(
        outcome="raised" if last.outcome == "raised" else "returned",
        step="recovers",
        seconds=last.ended,
        elapsed=0.0,
        result_type=None,
        result_mro=(),
        result_repr=None,
        exc_type=None,
        exc_mro=(),
        exc_message=message,
        exc_where=None,
        traceback=None,
        cycle=None,
        stacks=None,
        sockets=(),
        events=(),
        importtime=(),
        stderr="",
        returncode=0,
        attempts=tuple(attempts),
    )


def test_summary_of_the_calls_that_did_not_recover() -> None:
    mock = Attempt(0.1, 0.0, "returned", "core.services:Mock", True)
    down = Attempt(0.2, 0.0, "raised", "redis.exceptions:ConnectionError", False)
    assert _summary(_poll([mock] * 48), 48) == "48 calls all returned core.services:Mock"
    assert _summary(_poll([mock]), 1) == "1 call returned core.services:Mock"
    assert (
        _summary(_poll([mock, mock, down]), 3)
        == "3 calls: 2 returned core.services:Mock, 1 raised redis.exceptions.ConnectionError"
    )
    assert _summary(_poll([down, down], "refused"), 2) == (
        "2 calls all raised redis.exceptions.ConnectionError (the last: refused)"
    )


def test_a_call_is_watched_well_past_its_budget() -> None:
    assert watch_s(1.0) == pytest.approx(1.0 + 0.1 + 2.0)
    assert watch_s(10.0) == pytest.approx(10.0 + 0.25 + 10.0)


# --- the claim kind, through `signoff run`, against real Redis --------------------------------


@pytest.mark.slow
def test_degradation_claims_against_real_redis(tmp_path: Path) -> None:
    run = signoff(
        "run",
        str(PACKAGE / "claims.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path),
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    found = claims(tmp_path)
    status = {name.split(":", 1)[1]: c["status"] for name, c in found.items()}
    assert status == {
        "recovers after redis comes back": "holds",
        "a mock that raises a builtin, without recovery": "holds",
        "the cached mock never recovers": "fails",
        "no fallback": "fails",
        "no timeout": "fails",
        "a quiet mock": "fails",
        "not degraded at all": "fails",
        "a mock without trying": "error",
    }, json.dumps(found, indent=1)
    services = "degradation_target.services"

    # a getter that tries the real service on every call recovers once redis is back
    recovers = found["degradation:recovers after redis comes back"]
    assert recovers["measured"]["result"] == f"{services}:MockTranscriptionService"
    assert recovers["measured"]["then"] == (
        "raised degradation_target.exceptions.ServiceUnavailableError"
    )
    assert 0 <= recovers["measured"]["recovered_after_s"] <= 3.25
    assert recovers["budget"] == {
        "within_s": 2.0,
        "tolerance_s": 0.2,
        "fault": "redis kill",
        "recovers_s": 3.0,
        "recovers_tolerance_s": 0.25,
    }
    assert f"returned {services}:TranscriptionService" in recovers["evidence"]
    # the getter tried redis once, and was refused (the server was killed)
    assert recovers["measured"]["connections_met"] == 1
    assert recovers["evidence"].splitlines()[1] == "1 connect refused"

    # the seeds' singleton keeps the mock it made while redis was down, forever
    cached = found["degradation:the cached mock never recovers"]
    assert cached["evidence"].startswith("still degraded 2.")
    assert "after redis came back: " in cached["evidence"]
    assert f"calls all returned {services}:MockTranscriptionService" in cached["evidence"]
    assert cached["measured"]["recovered_after_s"] is None
    assert cached["measured"]["recovery_calls"] >= 5  # every 0.2 s for 2 s

    bare = found["degradation:no fallback"]
    assert bare["evidence"].startswith(
        "get_service_without_fallback raised redis.exceptions.ConnectionError: "
    )
    where = f"(at degradation_target/services.py:{line_of('services', 'connect')})"
    assert f"{where} instead of degrading" in bare["evidence"]
    assert "recovery not checked" in bare["evidence"]

    hangs = found["degradation:no timeout"]
    assert "still running when watching stopped at" in hangs["evidence"]
    assert "waiting on 127.0.0.1:" in hangs["evidence"]
    assert (
        f"stuck at degradation_target/services.py:{line_of('services', 'connect')}"
        in (hangs["evidence"])
    )
    assert hangs["measured"]["seconds"] is None
    assert "SYN_SENT" in hangs.get("details", "")
    assert hangs["evidence"].endswith("\n1 connect never answered")

    quiet = found["degradation:a quiet mock"]
    assert quiet["evidence"] == (
        "QuietMockTranscriptionService.transcribe_file returned builtins:str instead of raising "
        "degradation_target.exceptions:ServiceUnavailableError\n"
        "1 connect refused"
    )
    # a wrong answer without meeting the fault still fails, and says the fault was not met
    lazy = found["degradation:not degraded at all"]
    assert lazy["evidence"] == (
        f"get_lazy_service returned {services}:TranscriptionService, "
        f"not a {services}:MockTranscriptionService\n"
        "the call never connected to redis: the kill was not exercised"
    )

    # the mock handed out without trying redis would hold: it proves nothing
    untried = found["degradation:a mock without trying"]
    assert untried["evidence"].startswith(
        "the call never connected to redis: the kill was not exercised\ndegraded in "
    )
    assert untried["measured"]["connections_met"] == 0


@pytest.mark.slow
def test_warmup_takes_the_cold_start_out_of_the_clock(tmp_path: Path) -> None:
    """lazy_client's first call imports a module that takes 0.6 s: the same tight claims hold
    with `warmup = true` and fail without it."""
    run = signoff(
        "run",
        str(PACKAGE / "warmup.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path),
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    found = claims(tmp_path)
    assert {name: c["status"] for name, c in found.items()} == {
        "timeout:cold: refused at once": "fails",
        "timeout:warm: refused at once": "holds",
        "timeout:warm: the pooled connection gives up on a hung server": "holds",
        "timeout:warm by a callable: a new connect gives up when never answered": "holds",
        "timeout:a warmup that cannot be imported": "error",
        "degradation:cold: degrades at once": "fails",
        "degradation:warm: degrades at once": "holds",
    }, json.dumps(found, indent=1)
    cold = found["timeout:cold: refused at once"]
    assert "over the 300 ms claimed" in cold["evidence"]
    assert "warmup" not in cold["measured"]
    for name in ("timeout:warm: refused at once", "degradation:warm: degrades at once"):
        warm = found[name]
        assert warm["measured"]["warmup"] == "returned"
        assert warm["measured"]["warmup_s"] > warm["measured"]["seconds"]
        assert warm["measured"]["connections_met"] == 1
        assert "\nwarmup without the fault: returned " in warm["evidence"]
    # the connection pooled by the warmup met the hang: no new connect, yet it counts
    pooled = found["timeout:warm: the pooled connection gives up on a hung server"]
    assert pooled["evidence"].splitlines()[1] == "1 connection met the hang"
    # a warmup callable: the cold start out of the clock, and a NEW connect met the blackhole
    fresh = found["timeout:warm by a callable: a new connect gives up when never answered"]
    assert fresh["measured"]["warmup"] == "returned"
    # heavy.py's cold start paid in the warmup, not in the measured call
    assert (
        fresh["measured"]["warmup_s"]
        > found["timeout:warm: refused at once"]["measured"]["seconds"]
    )
    assert fresh["measured"]["connections_met"] == 1
    assert "1 connect never answered" in fresh["evidence"]
    missing = found["timeout:a warmup that cannot be imported"]
    assert missing["evidence"].startswith(
        "not checked: could not import the warmup degradation_target.lazy_client:no_such_warmup:"
    ), missing["evidence"]
