"""signoff.json: the run and every verdict, in the schema shared/CLAIMS.md fixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from signoff.report.run_info import RunInfo
from signoff.verdict import Verdict, overall


def as_document(info: RunInfo, verdicts: list[Verdict]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "target": info.target,
        "verdict": overall(verdicts),
        "started": info.started_iso,
        "duration_s": round(info.duration_s, 3),
        "jobs": info.jobs,
        "environment": {"python": info.python, "services": dict(info.services)},
        "service_start_s": {name: round(s, 3) for name, s in info.service_start_s.items()},
        "claims": [v.to_json() for v in verdicts],
    }
    if info.notes:
        doc["notes"] = list(info.notes)
    return doc


def write_json(info: RunInfo, verdicts: list[Verdict], path: Path) -> Path:
    path.write_text(
        json.dumps(as_document(info, verdicts), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return path
