"""The fault vocabulary of the claims file: "hang", "refuse", "latency:2s", "slow:64B/s", ..."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from signoff.units import format_duration, format_size, parse_duration, parse_rate

FaultKind = Literal["hang", "blackhole", "refuse", "reset", "latency", "slow", "kill"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "hang",
    "blackhole",
    "refuse",
    "reset",
    "latency",
    "slow",
    "kill",
)
FAULT_HINT = (
    'a fault: "hang", "blackhole", "refuse", "reset", "kill", "latency:<duration>" '
    '(e.g. "latency:2s") or "slow:<rate>" (e.g. "slow:64B/s")'
)


@dataclass(frozen=True)
class Fault:
    """One fault. `amount` is the delay in seconds (latency) or bytes per second (slow)."""

    kind: FaultKind
    amount: float | None = None

    def __str__(self) -> str:
        if self.kind == "latency" and self.amount is not None:
            return f"latency:{format_duration(self.amount).replace(' ', '')}"
        if self.kind == "slow" and self.amount is not None:
            return f"slow:{format_size(self.amount).replace(' ', '')}/s"
        return self.kind


def parse_fault(text: str) -> Fault:
    """A Fault from its spelling in a claims file or on the command line."""
    kind, _, arg = text.strip().partition(":")
    if kind in ("latency", "slow"):
        if not arg:
            raise ValueError(f"expected {FAULT_HINT}; {kind} needs a value after ':'")
        try:
            amount = parse_duration(arg) if kind == "latency" else parse_rate(arg)
        except ValueError as exc:
            raise ValueError(f"{kind}:{arg}: {exc}") from None
        if kind == "slow" and amount <= 0:
            raise ValueError("slow: expected a rate above 0 B/s")
        return Fault(cast(FaultKind, kind), amount)
    if kind in FAULT_KINDS and not arg:
        return Fault(cast(FaultKind, kind))
    raise ValueError(f"expected {FAULT_HINT}")
