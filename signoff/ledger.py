"""The ledger: one JSON line per verdict, appended and flushed to disk as each claim ends,
so a run that is killed keeps everything it had measured."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from signoff.verdict import Verdict


class Ledger:
    """The ledger of one run. Opening it starts it empty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")  # a report folder reused by a new run starts empty

    def append(self, verdict: Verdict) -> None:
        line = json.dumps(verdict.to_json(), ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

    def read(self) -> list[Verdict]:
        return read_ledger(self.path)


def read_ledger(path: Path) -> list[Verdict]:
    """Every complete line of a ledger; a line cut short by a kill is skipped."""
    verdicts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            verdicts.append(Verdict.from_json(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return verdicts
