"""Claims side by side: a run costs about its longest wait, not the sum of its waits.

Each claim already has its own proxies and processes, so claims that only wait (timeouts, hangs,
degradation, websocket, sql, call) run at once, at most `jobs` of them. Claims whose figure is
CPU time (import medians, cron:time, webhook:constant-time, load, and http: the served target's
answer times, 100 ms budgets that other claims' CPU pushed past) and claims with a budget under
TIGHT_S run in the quiet lane: first, one at a time, while nothing else runs, so that
concurrency never changes their figures. More rules keep claims apart where they share
something: the claims of kinds in one `group` run one at a time (cron and webhooks: hypothesis
is not thread-safe), a claim that uses the served target has it to itself (its figure is that
one process's answers), a claim that kills a service or dependency (`kill` stops the real
server) has them all to itself, and no claim starts beside others while the CPU is busy.

The pytest tests still report one claim each, in the claims file's order: a test waits for its
claim's verdict. Each verdict goes to `on_verdict` (the ledger) as its claim ends; after
`stop()` nothing more does, and no claim starts.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from signoff import kinds
from signoff.claims import ClaimRef
from signoff.verdict import Verdict

SERVED = "served target"  # the group of the claims that use the run's served target
SERVICES = "services"  # of those that use the services and dependencies (a kill stops them)
WAIT_SLICE_S = 0.5  # a waiting test wakes this often (Ctrl-C is seen at once anyway)
# A claim that "only waits" still runs the target's code, which takes CPU (a redis client's
# 200 ms of it became 800 ms with 8 claims at once on 2 cores): another claim starts beside
# running ones only while the machine's CPU (all cores, over the last look) is below this,
# and never sooner than START_GAP_S after the last start, so that its load shows first.
BUSY_PERCENT = 70.0
TIGHT_S = 1.0  # a claim with a budget under this runs in the quiet lane
START_GAP_S = 0.3


def cpu_busy() -> bool:
    """Whether the machine's CPU, since the last call, was above BUSY_PERCENT."""
    return psutil.cpu_percent(interval=None) > BUSY_PERCENT


def default_jobs() -> int:
    """Claims that wait use little CPU, but each starts a target interpreter: 4 per core, at
    most 8."""
    return max(2, min(8, 4 * (os.cpu_count() or 1)))


def parse_jobs(text: str | int) -> int:
    """`--jobs`: a whole number from 1 on, or "auto"; ValueError naming what was expected."""
    if isinstance(text, int):
        value = text
    elif text.strip().lower() == "auto":
        return default_jobs()
    else:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(
                f"--jobs {text!r}: expected a whole number of claims at once (1 runs them one "
                "after another) or auto"
            ) from None
    if value < 1:
        raise ValueError(f"--jobs {value}: expected 1 or more")
    return value


@dataclass(frozen=True)
class Slot:
    """How a claim may run beside others."""

    quiet: bool  # alone: nothing else runs
    exclusive: frozenset[str]  # groups it holds alone
    shared: frozenset[str]  # groups it holds with others that share them


def slot_of(ref: ClaimRef) -> Slot:
    kind = kinds.by_name(ref.kind)
    exclusive: set[str] = {kind.group} if kind.group else set()
    shared: set[str] = set()
    planned = getattr(ref.spec, "planned_faults", None)
    faults = planned() if planned is not None else {}
    if kind.server:  # its figure is the served target's answer: another claim's requests
        exclusive.add(SERVED)  # to that one process would change it
    if any(getattr(fault, "kind", None) == "kill" for fault in faults.values()):
        exclusive.add(SERVICES)  # it kills the real server: no other claim may meet that
    elif kinds.needs_services(ref):
        shared.add(SERVICES)
    return Slot(kinds.is_quiet(ref) or tight(ref), frozenset(exclusive), frozenset(shared))


def tight(ref: ClaimRef) -> bool:
    """Whether the claim's budget is so short that the CPU of other claims would show in it
    ("fails at once": within 500 ms, a redis client's 194 ms took 735 ms beside 8 claims)."""
    within = getattr(ref.spec, "within", None)
    return isinstance(within, int | float) and not isinstance(within, bool) and within < TIGHT_S


class Schedule:
    """Runs `refs` with `run_one` in worker threads, the quiet lane first (see the module's
    docstring); `verdict(id)` waits for one claim's verdict."""

    def __init__(
        self,
        refs: Sequence[ClaimRef],
        run_one: Callable[[ClaimRef], Verdict],
        on_verdict: Callable[[Verdict], None],
        jobs: int,
        busy: Callable[[], bool] = cpu_busy,
    ) -> None:
        self._slots = {ref.id: slot_of(ref) for ref in refs}
        # the quiet lane first, each lane in the claims file's order
        self._pending = sorted(refs, key=lambda r: not self._slots[r.id].quiet)
        self._run_one, self._on_verdict, self.jobs = run_one, on_verdict, max(1, jobs)
        self._running: dict[str, Slot] = {}
        self._done: dict[str, Verdict] = {}
        self._stopping = False
        self._raised: BaseException | None = None
        self._busy = busy
        self._last_start = 0.0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._dispatch, name="signoff-schedule", daemon=True)
        self._thread.start()

    def __contains__(self, claim_id: object) -> bool:
        return claim_id in self._slots

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                ref = self._next()
                while ref is None:
                    if self._stopping or (not self._pending and not self._running):
                        return
                    self._cond.wait(START_GAP_S)
                    ref = self._next()
                self._pending.remove(ref)
                self._running[ref.id] = self._slots[ref.id]
                self._last_start = time.monotonic()
            threading.Thread(
                target=self._work, args=(ref,), name=f"signoff-claim {ref.id}", daemon=True
            ).start()

    def _next(self) -> ClaimRef | None:
        """The first pending claim that may start now; None while none may."""
        if self._stopping:
            return None
        if any(slot.quiet for slot in self._running.values()):
            return None
        held_alone = {g for slot in self._running.values() for g in slot.exclusive}
        held = held_alone | {g for slot in self._running.values() for g in slot.shared}
        for ref in self._pending:
            slot = self._slots[ref.id]
            if slot.quiet:  # the quiet lane comes first: it waits for the others to end
                return None if self._running else ref
            if len(self._running) >= self.jobs:
                return None
            if slot.exclusive & held or slot.shared & held_alone:
                continue
            if self._running and not self._room():
                return None
            return ref
        return None

    def _room(self) -> bool:
        """Whether one more claim may start beside those running: CPU to spare."""
        if time.monotonic() - self._last_start < START_GAP_S:
            return False
        return not self._busy()

    def _work(self, ref: ClaimRef) -> None:
        try:
            verdict = self._run_one(ref)
        except BaseException as exc:  # run_one makes every Exception the claim's error
            # an interruption (KeyboardInterrupt, SystemExit) ends the run: the waiting test
            # raises it, as if it had come in the main thread
            with self._cond:
                self._running.pop(ref.id, None)
                self._raised = self._raised or exc
                self._stopping = True
                self._cond.notify_all()
            return
        with self._cond:
            self._running.pop(ref.id, None)
            if not self._stopping:
                self._done[ref.id] = verdict
                self._on_verdict(verdict)
            self._cond.notify_all()

    def verdict(self, claim_id: str, timeout: float) -> Verdict | None:
        """The verdict of `claim_id` once its claim ended; None if the schedule stopped first or
        `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while claim_id not in self._done:
                if self._raised is not None:
                    raise self._raised
                left = deadline - time.monotonic()
                if self._stopping or left <= 0:
                    return None
                self._cond.wait(min(WAIT_SLICE_S, left))
            return self._done[claim_id]

    def stop(self) -> list[str]:
        """No claim starts from now on and no verdict is recorded; the ids of the claims that
        were still running."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            return list(self._running)
