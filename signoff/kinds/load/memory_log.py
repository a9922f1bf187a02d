"""memory.csv in a load claim's folder: every memory sample the claim took, during the load (the
server's RSS and, with memory_limit, what its memory cgroup holds) and as it settled after it,
in seconds since the test started, for signoff.html's plot of memory over time."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from signoff.kinds.load.stats import Sample, Settling

MEMORY_FILE = "memory.csv"
COLUMNS = ("t_s", "phase", "rss_bytes", "cgroup_bytes")


def write_memory_log(
    folder: Path,
    samples: Sequence[Sample],
    started: float | None,
    settling: Settling | None = None,
    settled_from: float | None = None,
) -> Path | None:
    """Write memory.csv; `started`, `settled_from`: unix times the test and the settling watch
    started. Nothing is written when no sample was taken."""
    rows: list[tuple[float, str, int | None, int | None]] = [
        (s.t, "load", s.rss, s.group_held) for s in samples
    ]
    if settling is not None and started is not None and settled_from is not None:
        offset = settled_from - started
        rows += [(offset + t, "settling", None, held) for t, held in settling.samples]
    if not rows:
        return None
    path = folder / MEMORY_FILE
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for t, phase, rss, held in rows:
            writer.writerow(
                [f"{t:.3f}", phase, "" if rss is None else rss, "" if held is None else held]
            )
    return path
