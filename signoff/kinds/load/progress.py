"""How far a running Locust test is, for the live display: "312 requests, 20 users", from the
last aggregated row of its stats history CSV (Locust writes one a second with
--csv-full-history). Under a distributed master that file's user count lags the workers by up to
3 s (they report stats every 3 s), so the caller may pass the workers' own latest count."""

from __future__ import annotations

import csv
from pathlib import Path

from signoff.locust_files import tail_lines

TAIL_BYTES = 8192  # the last rows; a row is some 200 bytes


def locust_progress(history: Path, users: int | None = None) -> str | None:
    """None before Locust has written a row (or when the file is not one of its); `users`, when
    given, replaces the file's user count."""
    tail = tail_lines(history, TAIL_BYTES)
    try:
        with history.open("rb") as f:
            header = f.readline().decode(errors="replace")
    except OSError:
        return None
    if tail is None:
        return None
    names = next(csv.reader([header]), [])
    try:
        name, users_at = names.index("Name"), names.index("User Count")
        requests, failures = names.index("Total Request Count"), names.index("Total Failure Count")
    except ValueError:
        return None
    for line in reversed(tail):  # the header, if in the window, is no Aggregated row
        row = next(csv.reader([line]), [])
        if len(row) == len(names) and row[name] == "Aggregated":
            failed = f", {row[failures]} failed" if row[failures] not in ("0", "") else ""
            running = row[users_at] if users is None else str(users)
            return f"{row[requests]} requests{failed}, {running} users"
    return None
