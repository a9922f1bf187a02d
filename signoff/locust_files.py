"""What a Locust run leaves in its folder that both the load check and the report read: the
start marks of signoff's plugin (`started-<pid>`) and the stats history CSV
(`--csv-full-history`, a row a second); and the last lines of a growing file, for what is read
again while the run goes on."""

from __future__ import annotations

import csv
import os
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


def tail_lines(path: Path, size: int) -> list[str] | None:
    """The whole lines within the last `size` bytes of a file that is still being written (a
    line cut by the window's start is left out; a last line still being written may be cut):
    what a live display reads every half second, in time independent of the run's length.
    None when the file cannot be read."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            start = max(0, end - size)
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    lines = text.splitlines()
    return lines[1:] if start > 0 else lines
