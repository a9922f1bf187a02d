"""Helpers for tests that run the real `signoff` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "targets" / "tiny"
RUNS = Path(__file__).resolve().parent / "data" / "runs"


def signoff(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signoff", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def statuses(report_dir: Path) -> dict[str, str]:
    doc = json.loads((report_dir / "signoff.json").read_text())
    return {c["id"]: c["status"] for c in doc["claims"]}


def claims(report_dir: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads((report_dir / "signoff.json").read_text())
    return {c["id"]: c for c in doc["claims"]}
