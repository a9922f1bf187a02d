"""[imports] options a run must honour: services_down, with_services, max_spread."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runs import claims, signoff

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parent / "data" / "imports"


def _run(name: str, tmp_path: Path) -> dict[str, dict[str, object]]:
    run = signoff(
        "run",
        str(DATA / name),
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path),
        timeout=120,
    )
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    return claims(tmp_path)


def test_services_down_hangs_an_import_that_connects(tmp_path: Path) -> None:
    found = _run("services_down.toml", tmp_path)["import:eager.tasks"]
    assert found["status"] == "fails"
    evidence = str(found["evidence"])
    assert evidence.startswith("hangs: import eager.tasks still running after 2.000 s")
    assert "stuck at eager/tasks.py:9" in evidence
    assert "network: connect 127.0.0.1:" in evidence and "from eager/tasks.py:9" in evidence


def test_without_services_nothing_listens(tmp_path: Path) -> None:
    found = _run("without_services.toml", tmp_path)
    assert found["import:tiny.config"]["status"] == "holds"
    eager = found["import:eager.tasks"]
    assert eager["status"] == "fails"
    assert "import eager.tasks raised redis.exceptions.ConnectionError" in str(eager["evidence"])


def test_max_spread_fails_on_its_own(tmp_path: Path) -> None:
    found = _run("spread.toml", tmp_path)["import:tiny.config"]
    assert found["status"] == "fails"
    assert "spread (max-min)/median" in str(found["evidence"])
    assert found["measured"]["spread"] > 0.000001  # type: ignore[index,operator]
    assert len(found["measured"]["runs_s"]) == 3  # type: ignore[arg-type,index]
