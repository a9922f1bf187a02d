"""What a report says about the run as a whole."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class RunInfo:
    target: str
    claims_file: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    python: str = field(default_factory=platform.python_version)
    services: dict[str, str] = field(default_factory=dict)  # name -> "embedded 6.2.14"
    notes: list[str] = field(default_factory=list)  # run-level problems (deadline passed, ...)

    @property
    def started_iso(self) -> str:
        return self.started.strftime("%Y-%m-%dT%H:%M:%SZ")
