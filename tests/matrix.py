"""What the detection matrices (tests/test_detection_<target>.py) share: run a reference target
and its regressions, and check that a regression fails exactly the claims aimed at its bug, with
evidence that names the cause, and holds every other claim."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.runs import claims, signoff

Found = dict[str, dict[str, Any]]  # claim id -> its entry in signoff.json


def run_embedded(claims_file: Path, report_dir: Path) -> Found:
    """`signoff run` on embedded services; the claims it reported."""
    run = signoff(
        "run", str(claims_file), "--services", "embedded", "--report-dir", str(report_dir),
        timeout=600,
    )  # fmt: skip
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    return claims(report_dir)


def run_all(files: Mapping[str, Path], root: Path, at_once: int = 2) -> dict[str, Found]:
    """Every claims file, `at_once` runs at a time (most of a run waits on hung services and
    timeouts, so two share the 2 cores without moving figures near their budgets)."""
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        futures = {n: pool.submit(run_embedded, path, root / n) for n, path in files.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_fails_exactly(
    found: Found, fails: Sequence[str], claim_id: str, words: Sequence[str]
) -> None:
    """The claims of `fails` fail (caught, not `error`), every other claim holds, and the
    evidence of `claim_id` names each of `words`."""
    failing = {k for k, v in found.items() if v["status"] != "holds"}
    assert failing == set(fails), {
        k: (found[k]["status"], found[k]["evidence"]) for k in failing ^ set(fails) if k in found
    }
    assert all(found[k]["status"] == "fails" for k in failing)
    evidence = str(found[claim_id]["evidence"])
    for word in words:
        assert word in evidence, evidence


def assert_generated(make_py: Path) -> None:
    """The regression folders are generated: a reference change must be carried into them."""
    check = subprocess.run(
        [sys.executable, str(make_py), "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
