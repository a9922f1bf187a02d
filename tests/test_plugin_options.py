"""`pytest --signoff-claims FILE` in a project collects signoff's own suites next to its tests;
`--claims FILE` only the suites it is given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TINY = Path(__file__).resolve().parent.parent / "targets" / "tiny" / "signoff.toml"
OWN_TEST = "def test_mine():\n    pass\n"


def _collect(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (project / "test_own.py").write_text(OWN_TEST)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "--signoff-only", "import", "--signoff-report-dir", str(project / "report"), *args],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_signoff_claims_adds_the_bundled_suites(tmp_path: Path) -> None:
    done = _collect(tmp_path, "--signoff-claims", str(TINY))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_own.py::test_mine" in done.stdout
    assert "test_imports.py::test_claim[import:tiny.cache]" in done.stdout


def test_claims_checks_with_the_suites_given_only(tmp_path: Path) -> None:
    done = _collect(tmp_path, "--claims", str(TINY))
    assert "test_own.py::test_mine" in done.stdout
    assert "test_claim[" not in done.stdout


def test_both_spellings_at_once_is_a_usage_error(tmp_path: Path) -> None:
    done = _collect(tmp_path, "--signoff-claims", str(TINY), "--claims", str(TINY))
    assert done.returncode == 2
    assert "give --signoff-claims or --claims, not both" in done.stdout + done.stderr
