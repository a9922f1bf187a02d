"""The words of a hang's evidence: a call still running when the probe stopped watching is
said to be just that (with how far past its budget), never "hangs", unless the claims file
itself calls that a hang (an import's `timeout`)."""

from __future__ import annotations

from signoff.engine.evidence import describe_hang
from signoff.engine.runner import ChildResult

STUCK = ChildResult(
    outcome="hung",
    step="call",
    seconds=None,
    elapsed=23.4,
    sockets=("127.0.0.1:53422 -> 127.0.0.1:6379 SYN_SENT",),
    stacks='Thread 0x1 (most recent call first):\n  File "/t/core/health.py", line 12 in ping\n',
)


def test_a_call_still_running_is_not_said_to_hang() -> None:
    # it might have given up at 26.8 s on its own: all that was seen is 23 s of it
    text = describe_hang(STUCK, "core.health:ping", 23.0, ["/t"], budget=3.0)
    assert text == (
        "core.health:ping still running when watching stopped at 23.000 s, 7.7x the 3.000 s "
        "claimed, waiting on 127.0.0.1:6379\nstuck at core/health.py:12 in ping"
    )
    assert "hang" not in text


def test_the_ratio_to_the_budget_is_optional_and_whole_when_large() -> None:
    assert describe_hang(STUCK, "f", 22.0, [], budget=2.0).startswith(
        "f still running when watching stopped at 22.000 s, 11x the 2.000 s claimed, waiting"
    )
    assert describe_hang(STUCK, "f", 4.5, []).startswith(
        "f still running when watching stopped at 4.500 s, waiting on 127.0.0.1:6379"
    )


def test_an_import_past_its_timeout_hangs_by_the_claims_own_definition() -> None:
    text = describe_hang(STUCK, "import core.tasks", 10.0, ["/t"], is_hang=True)
    assert text.startswith("hangs: import core.tasks still running after 10.000 s, waiting on")
