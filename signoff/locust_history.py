"""Locust's stats history CSV (`--csv-full-history`, a row a second): the user counts signoff
reads from it, for the concurrency goal and for the report's plot."""

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
