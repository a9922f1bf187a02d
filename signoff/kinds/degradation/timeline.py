"""A degradation claim's timeline, for signoff.html's plot: the fault put on, the degraded
call (and `then`), the fault lifted, the service answering again, and each recovery call,
in seconds since the fault was put on.

The parent marks the moments it acts on (`Clock`); the child times its own calls. The child
reaches the barrier "lifted" right after `then` (or `call`) ends, so those calls are placed
back from that moment by their own durations (the message between them takes a millisecond
or so). The recovery calls are timed from the start of the poll, which begins as the parent
answers the barrier, once the service is back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from signoff.engine.runner import Attempt, ChildResult, StepsResult

MAX_CALLS = 300  # recovery calls kept (every k-th, and the last, beyond that)


@dataclass
class Clock:
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, moment: str) -> None:
        self.marks[moment] = time.monotonic()


def timeline(clock: Clock, result: StepsResult) -> list[dict[str, Any]]:
    """The events, [] when the fault was not lifted inside the claim (no `recovers`)."""
    on, lifted, back = (clock.marks.get(m) for m in ("fault on", "lifted", "back"))
    if on is None or lifted is None or back is None:
        return []
    end = lifted - on
    calls: list[dict[str, Any]] = []
    for step in ("then", "call"):  # backwards from the barrier
        done = result.get(step)
        if done is None or done.seconds is None:
            continue
        calls.insert(0, _span(step, end - done.seconds, end, _ended(done)))
        end -= done.seconds
    events = [{"event": "fault on", "at_s": 0.0}, *calls]
    events += [{"event": "lifted", "at_s": round(lifted - on, 4)}]
    events += [{"event": "back", "at_s": round(back - on, 4)}]
    poll = result.get("recovers")
    for attempt in _thinned(poll.attempts if poll is not None else ()):
        events.append(
            {
                "event": "recovery call",
                "at_s": round(back - on + attempt.ended, 4),
                "result": attempt.type
                if attempt.outcome == "returned"
                else f"raised {attempt.type}",
                "degraded": attempt.instance,
            }
        )
    return events


def _span(step: str, start: float, end: float, result: str) -> dict[str, Any]:
    return {
        "event": step,
        "from_s": round(max(start, 0.0), 4),
        "at_s": round(end, 4),
        "result": result,
    }


def _ended(done: ChildResult) -> str:
    if done.outcome == "returned":
        return done.result_type or "returned"
    return f"raised {(done.exc_type or '?').replace(':', '.')}"


def _thinned(attempts: tuple[Attempt, ...]) -> list[Attempt]:
    if len(attempts) <= MAX_CALLS:
        return list(attempts)
    k = -(-len(attempts) // MAX_CALLS)
    kept = list(attempts[::k])
    return kept if kept[-1] is attempts[-1] else [*kept, attempts[-1]]
