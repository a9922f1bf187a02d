"""The timing rules every kind shares: the slack a timing claim gets, how long a call is watched
before it is called hung, how long a child waits at a barrier for the parent."""

from __future__ import annotations

MIN_HANG_MARGIN = 2.0  # a call still running at within + tolerance + max(within, this) hangs
BARRIER_TIMEOUT = (
    120.0  # how long a child waits at a barrier for the parent (to put or lift a fault)
)


def tolerance(within: float) -> float:
    """The slack a timing claim gets, stated in the report: 10% of the budget, at most 250 ms."""
    return min(0.10 * within, 0.25)


def observe_s(within: float) -> float:
    """How long a call is watched before it is called hung: long enough to see a client with
    default retries give up (redis-py's take ~15 s against a hung server)."""
    return within + max(20.0, within)


def watch_s(within: float, min_margin: float = MIN_HANG_MARGIN) -> float:
    """How long a call is watched before it is reported as hung, stacks and all: twice its
    budget (plus the tolerance), and at least `min_margin` past the budget."""
    return within + tolerance(within) + max(within, min_margin)
