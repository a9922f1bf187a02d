"""The detection matrix for the Archivist target (seeds 000-002): the reference holds every
claim; each regression, with one seed bug put back, fails exactly the claims aimed at that bug,
with evidence that names the cause, and holds all the others."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.matrix import assert_fails_exactly, assert_generated, run_all
from tests.runs import ROOT

pytestmark = pytest.mark.slow

ARCHIVIST = ROOT / "targets" / "archivist"
EXPECTED = tomllib.loads((ARCHIVIST / "regressions" / "expected.toml").read_text())

# what the evidence of the claims aimed at each bug must name
EVIDENCE = {
    "circular_import": ("import:core.admin_ui", ["circular import: core -> core.admin_ui"]),
    "eager_celery": ("import:core.tasks", ["network: connect 127.0.0.1:", "from core/tasks.py:"]),
    "redis_no_timeout": (
        "timeout:redis ping gives up after 5 s on a hung server",
        ["still running when watching stopped at", "s claimed, waiting on 127.0.0.1:"],
    ),
    "no_fallback": (
        "degradation:transcription degrades to a mock when redis dies, and recovers",
        ["ServiceUnavailableError", "instead of degrading"],
    ),
    "cached_mock": (
        "degradation:transcription degrades to a mock when redis dies, and recovers",
        ["still degraded"],
    ),
    "health_lies": ("http:health says degraded when redis is down", ["healthy"]),
    "slow_import": ("import:core.admin_ui", ["over budget", "slowest imports"]),
    "double_model": ("import:core.models", ["warning:", "from core/models.py:"]),
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    """Every claims file of the matrix, run two at a time: most of a run is waiting on hung
    services, so two runs share the 2 cores without moving the figures near their budgets."""
    files = {"reference": ARCHIVIST / "signoff.toml"} | {
        name: ARCHIVIST / "regressions" / name / "signoff.toml" for name in EXPECTED
    }
    return run_all(files, tmp_path_factory.mktemp("archivist"))


def test_reference_holds_every_claim(matrix: dict[str, dict[str, dict[str, Any]]]) -> None:
    found = matrix["reference"]
    kinds = {claim_id.split(":")[0] for claim_id in found}
    assert {"import", "timeout", "degradation", "http"} <= kinds
    broken = {k: (v["status"], v["evidence"]) for k, v in found.items() if v["status"] != "holds"}
    assert broken == {}


def test_every_bug_has_a_regression_and_evidence_check() -> None:
    folders = {
        p.name
        for p in (ARCHIVIST / "regressions").iterdir()
        if p.is_dir() and (p / "signoff.toml").is_file()
    }
    assert folders == set(EXPECTED) == set(EVIDENCE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_regression_fails_exactly_its_claims(
    matrix: dict[str, dict[str, dict[str, Any]]], name: str
) -> None:
    found = matrix[name]
    assert_fails_exactly(found, EXPECTED[name]["fails"], *EVIDENCE[name])


def test_regressions_are_the_reference_with_one_bug_each() -> None:
    assert_generated(ARCHIVIST / "regressions" / "make.py")
