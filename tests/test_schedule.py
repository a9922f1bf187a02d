"""signoff.schedule: claims side by side, the quiet lane alone, groups one at a time, and
nothing recorded after stop(). Fake claims that only wait on events: no time is asserted."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
from pydantic import BaseModel

from signoff.claims import ClaimRef
from signoff.faults.model import parse_fault
from signoff.schedule import SERVED, SERVICES, Schedule, parse_jobs, slot_of
from signoff.verdict import Verdict

DEADLINE_S = 20.0  # every wait of these tests ends by then, whatever the schedule does


class _Http:
    def __init__(self, faults: dict[str, str]) -> None:
        self.faults = {name: parse_fault(text) for name, text in faults.items()}

    def planned_faults(self) -> dict[str, object]:
        return dict(self.faults)


class _Tight:
    def __init__(self, within: float) -> None:
        self.within = within

    def planned_faults(self) -> dict[str, object]:
        return {}


def ref(claim_id: str, spec: object = None) -> ClaimRef:
    return ClaimRef(claim_id, claim_id.partition(":")[0], cast(BaseModel, spec), "x")


class _Recorder:
    """run_one for the schedule: records which claims run at once; each claim blocks until the
    test releases it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.together: list[frozenset[str]] = []  # what ran when each claim started
        self.release: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self.recorded: list[str] = []

    def gate(self, claim_id: str) -> threading.Event:
        self.started.setdefault(claim_id, threading.Event())
        return self.release.setdefault(claim_id, threading.Event())

    def __call__(self, claim: ClaimRef) -> Verdict:
        release = self.gate(claim.id)
        with self.lock:
            self.running.add(claim.id)
            self.together.append(frozenset(self.running))
        self.started[claim.id].set()
        assert release.wait(DEADLINE_S), f"{claim.id} was never released"
        with self.lock:
            self.running.discard(claim.id)
        return Verdict(claim.id, claim.kind, "holds", evidence=f"ran {claim.id}")

    def on_verdict(self, verdict: Verdict) -> None:
        self.recorded.append(verdict.id)


def _schedule(refs: list[ClaimRef], jobs: int) -> tuple[Schedule, _Recorder]:
    recorder = _Recorder()
    for r in refs:
        recorder.gate(r.id)
    schedule = Schedule(refs, recorder, recorder.on_verdict, jobs=jobs, busy=lambda: False)
    schedule.start()
    return schedule, recorder


def _wait_started(recorder: _Recorder, *ids: str) -> None:
    for claim_id in ids:
        assert recorder.started[claim_id].wait(DEADLINE_S), f"{claim_id} never started"


def test_waiting_claims_run_side_by_side_up_to_jobs() -> None:
    refs = [ref(f"timeout:t{i}") for i in range(5)]
    schedule, rec = _schedule(refs, jobs=3)
    _wait_started(rec, "timeout:t0", "timeout:t1", "timeout:t2")
    assert not rec.started["timeout:t3"].is_set()  # jobs = 3: the fourth waits
    rec.release["timeout:t1"].set()
    _wait_started(rec, "timeout:t3")
    for event in rec.release.values():
        event.set()
    for r in refs:
        verdict = schedule.verdict(r.id, timeout=DEADLINE_S)
        assert verdict is not None and verdict.evidence == f"ran {r.id}"
    assert max(len(t) for t in rec.together) == 3
    assert sorted(rec.recorded) == sorted(r.id for r in refs)


def test_the_quiet_lane_runs_first_and_alone() -> None:
    refs = [
        ref("timeout:a"),
        ref("import:m1"),
        ref("cron:time"),
        ref("cron:count"),
        ref("import:m2"),
    ]
    schedule, rec = _schedule(refs, jobs=8)
    for claim_id in ("import:m1", "cron:time", "import:m2"):
        _wait_started(rec, claim_id)
        assert rec.running == {claim_id}
        rec.release[claim_id].set()
    _wait_started(rec, "timeout:a", "cron:count")  # then the others, side by side
    for event in rec.release.values():
        event.set()
    assert all(schedule.verdict(r.id, timeout=DEADLINE_S) for r in refs)
    quiet = {"import:m1", "cron:time", "import:m2"}
    assert all(len(t) == 1 for t in rec.together if t & quiet)
    assert rec.recorded[:3] == ["import:m1", "cron:time", "import:m2"]


def test_a_group_runs_one_at_a_time_and_the_served_target_serves_one_claim() -> None:
    assert slot_of(ref("cron:count")).exclusive == {"hypothesis"}
    assert slot_of(ref("webhook:forgery")).exclusive == {"hypothesis"}
    assert slot_of(ref("webhook:constant-time")).quiet
    assert slot_of(ref("http:answers", _Http({}))).quiet  # the served target's answer times
    assert slot_of(ref("timeout:at once", _Tight(0.5))).quiet  # a budget under a second
    assert not slot_of(ref("timeout:gives up", _Tight(5.0))).quiet
    assert slot_of(ref("websocket:plain", _Http({}))).exclusive == {SERVED}
    assert slot_of(ref("websocket:plain", _Http({}))).shared == {SERVICES}
    assert slot_of(ref("websocket:down", _Http({"redis": "hang"}))).exclusive == {SERVED}
    # a kill stops the real server: no other claim that uses a service runs beside it
    assert slot_of(ref("timeout:x", _Http({"redis": "kill"}))).exclusive == {SERVICES}
    assert slot_of(ref("timeout:y", _Http({"redis": "hang"}))).shared == {SERVICES}
    refs = [
        ref("websocket:plain1", _Http({})),
        ref("websocket:plain2", _Http({})),
        ref("websocket:down", _Http({"redis": "hang"})),
        ref("webhook:forgery"),
        ref("cron:count"),
    ]
    schedule, rec = _schedule(refs, jobs=8)
    _wait_started(rec, "websocket:plain1", "webhook:forgery")
    assert not rec.started["websocket:plain2"].is_set()  # one claim at a time on the target
    assert not rec.started["cron:count"].is_set()  # hypothesis: one claim at a time
    rec.release["websocket:plain1"].set()
    _wait_started(rec, "websocket:plain2")
    assert not rec.started["websocket:down"].is_set()
    rec.release["websocket:plain2"].set()
    _wait_started(rec, "websocket:down")
    rec.release["webhook:forgery"].set()
    _wait_started(rec, "cron:count")
    for event in rec.release.values():
        event.set()
    assert all(schedule.verdict(r.id, timeout=DEADLINE_S) for r in refs)
    for together in rec.together:
        assert len(together & {"websocket:plain1", "websocket:plain2", "websocket:down"}) <= 1
        assert not {"webhook:forgery", "cron:count"} <= together


def test_after_stop_nothing_starts_and_nothing_is_recorded() -> None:
    refs = [ref("timeout:a"), ref("timeout:b")]
    schedule, rec = _schedule(refs, jobs=1)
    _wait_started(rec, "timeout:a")
    assert schedule.stop() == ["timeout:a"]
    rec.release["timeout:a"].set()
    assert schedule.verdict("timeout:a", timeout=DEADLINE_S) is None
    assert schedule.verdict("timeout:b", timeout=DEADLINE_S) is None
    assert not rec.started["timeout:b"].is_set()
    assert rec.recorded == []


def test_an_interruption_in_a_worker_is_raised_in_the_waiting_test() -> None:
    def interrupted(claim: ClaimRef) -> Verdict:
        raise KeyboardInterrupt("SIGTERM")

    got: list[Verdict] = []
    schedule = Schedule(
        [ref("timeout:a"), ref("timeout:b")], interrupted, got.append, jobs=1, busy=lambda: False
    )
    schedule.start()
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        schedule.verdict("timeout:b", timeout=DEADLINE_S)
    assert got == []  # nothing recorded, and the second claim never started


@pytest.mark.parametrize(
    ("text", "expected"), [("1", 1), ("6", 6), (3, 3), ("auto", None), (" AUTO ", None)]
)
def test_jobs_parse(text: Any, expected: int | None) -> None:
    jobs = parse_jobs(text)
    assert jobs == expected if expected is not None else 2 <= jobs <= 8


@pytest.mark.parametrize("text", ["0", "-2", "many", "1.5"])
def test_bad_jobs_are_named(text: str) -> None:
    with pytest.raises(ValueError, match="--jobs"):
        parse_jobs(text)


def test_no_claim_starts_beside_others_while_the_cpu_is_busy() -> None:
    busy = threading.Event()
    busy.set()
    refs = [ref("timeout:a"), ref("timeout:b")]
    rec = _Recorder()
    for r in refs:
        rec.gate(r.id)
    schedule = Schedule(refs, rec, rec.on_verdict, jobs=4, busy=busy.is_set)
    schedule.start()
    _wait_started(rec, "timeout:a")  # the first starts whatever the CPU does
    assert not rec.started["timeout:b"].wait(1.0)  # no time asserted: it must not start at all
    busy.clear()
    _wait_started(rec, "timeout:b")
    for event in rec.release.values():
        event.set()
    assert all(schedule.verdict(r.id, timeout=DEADLINE_S) for r in refs)
