"""What a report says about the run as a whole, kept in the run folder as `run.json` from the
start of the run on (and again when the services are up and when it ends), so that `signoff
report DIR` can render the reports of a run that was killed before it wrote them."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"


@dataclass
class RunInfo:
    target: str
    claims_file: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    python: str = field(default_factory=platform.python_version)
    services: dict[str, str] = field(default_factory=dict)  # name -> "embedded 6.2.14"
    service_start_s: dict[str, float] = field(default_factory=dict)  # name -> seconds to answer
    notes: list[str] = field(default_factory=list)  # run-level problems (deadline passed, ...)
    planned: list[tuple[str, str]] = field(default_factory=list)  # (claim id, kind), in order
    finished: bool = False  # the run got to write its reports
    baseline: str = ""  # `run --baseline OLD`: the older run its reports compare with
    jobs: int = 1  # claims at most at once (`--jobs`)

    @property
    def started_iso(self) -> str:
        return self.started.strftime("%Y-%m-%dT%H:%M:%SZ")

    def save(self, folder: Path) -> Path:
        """Write run.json into `folder` (whole: a temp file renamed over the old one)."""
        doc: dict[str, Any] = asdict(self)
        doc["started"] = self.started.isoformat()
        path = folder / RUN_FILE
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        partial.replace(path)
        return path

    @classmethod
    def load(cls, folder: Path) -> RunInfo:
        """The RunInfo a run saved in `folder`; ValueError naming what is wrong with it."""
        path = folder / RUN_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                target=str(doc["target"]),
                claims_file=str(doc["claims_file"]),
                started=datetime.fromisoformat(doc["started"]),
                duration_s=float(doc.get("duration_s", 0.0)),
                python=str(doc.get("python", "")),
                services={str(k): str(v) for k, v in doc.get("services", {}).items()},
                service_start_s={
                    str(k): float(v) for k, v in doc.get("service_start_s", {}).items()
                },
                notes=[str(n) for n in doc.get("notes", [])],
                planned=[(str(i), str(k)) for i, k in doc.get("planned", [])],
                finished=bool(doc.get("finished", False)),
                baseline=str(doc.get("baseline", "")),
                jobs=int(doc.get("jobs", 1)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: not a run's {RUN_FILE} ({type(exc).__name__}: {exc})"
            ) from None
