"""What a Locust run leaves in its folder that both the load check and the report read: the
start marks of signoff's plugin (`started-<pid>`) and the stats history CSV
(`--csv-full-history`, a row a second)."""

from __future__ import annotations

import csv
from pathlib import Path


def aggregated_users(path: Path) -> list[tuple[float, int]]:
    """(Locust's timestamp, users running) of each Aggregated row, in file order; empty when
    the file is missing or holds none. A row that does not parse is skipped."""
    counts: list[tuple[float, int]] = []
    if not path.is_file():
        return counts
    with open(path, newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            if row.get("Name") != "Aggregated":
                continue
            try:
                counts.append((float(row["Timestamp"]), int(row["User Count"])))
            except (KeyError, ValueError, TypeError):
                continue
    return counts


def started_at(folder: Path) -> float | None:
    """The unix time the test started: the earliest started-<pid> mark that holds a time. None
    until one does (the plugin renames a written mark into place; a mark read while it is
    being written, or holding something else, is no mark)."""
    marks = []
    for path in folder.glob("started-*"):
        try:
            marks.append(float(path.read_text(encoding="utf-8").split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return min(marks, default=None)
