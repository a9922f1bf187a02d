"""A claim's verdict: holds, fails, or error (could not be checked), with figures and evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["holds", "fails", "error"]
STATUSES: tuple[Status, ...] = ("holds", "fails", "error")


@dataclass
class Verdict:
    """What signoff found for one claim. `evidence` is what a person reads first: one or a few
    lines naming the figure, the cause and where it is. `details` holds the long material
    (stacks of every thread, tracebacks) for the reports that have room for it."""

    id: str
    kind: str
    status: Status
    evidence: str = ""
    budget: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    details: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        if not data["details"]:
            del data["details"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def overall(verdicts: list[Verdict]) -> Literal["holds", "fails"]:
    """The run holds only when every claim holds: a claim that could not be checked is no pass."""
    return "holds" if verdicts and all(v.status == "holds" for v in verdicts) else "fails"
