"""What `python -X importtime` says an import costs: the top-level rows that `-c "import MODULE"`
adds to those of `-c "pass"` in the same interpreter (a module's parent packages are rows of
their own, so `email.message` is `email` plus `email.message`), their cumulative figures summed."""

from __future__ import annotations

import subprocess
import sys


def importtime_rows(stderr: str) -> dict[str, float]:
    """-X importtime's top-level rows: module -> cumulative seconds."""
    rows = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue  # the header
        name = fields[2][1:]
        if not name.startswith(" "):
            rows[name.strip()] = int(fields[1]) / 1e6
    return rows


def importtime_s(module: str, runs: int) -> list[float]:
    """The cumulative seconds of `import module`, per run (see the module's doc)."""
    figures = []
    for _ in range(runs):
        base = _importtime("pass")
        rows = _importtime(f"import {module}")
        added = {name: secs for name, secs in rows.items() if name not in base}
        if module not in added:
            raise RuntimeError(
                f"-X importtime shows no new top-level row for {module}: the interpreter "
                f"imports it at start-up already; its rows: {sorted(rows)}"
            )
        figures.append(sum(added.values()))
    return figures


def _importtime(code: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return importtime_rows(done.stderr)
