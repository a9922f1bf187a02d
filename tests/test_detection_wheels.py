"""The detection matrix for the Wheels & Wins target (seed 004): the reference holds every
claim; each regression, with one "before" bug of the seed put back, fails exactly the claims
aimed at that bug, with evidence that names the cause, and holds all the others. And the
websocket claims at the seed's real values (20 s heartbeat, 60 s idle timeout) hold."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.matrix import assert_fails_exactly, assert_generated, run_all, run_embedded
from tests.runs import ROOT

pytestmark = pytest.mark.slow

WHEELS = ROOT / "targets" / "wheels"
EXPECTED = tomllib.loads((WHEELS / "regressions" / "expected.toml").read_text())

# what the evidence of a claim aimed at each bug must name
EVIDENCE = {
    "preflight_400": (
        "http:a preflight from the app's origin answers 200 with the allow headers",
        ["400"],
    ),
    "wildcard_origin": (
        "http:a request from another origin gets no access-control-allow-origin",
        ['header access-control-allow-origin: "https://evil.example" should not be there'],
    ),
    "no_heartbeat": (
        "websocket:a heartbeat every 2 s, silent clients closed after 6 s, answering ones kept",
        ["still open", "no heartbeat"],
    ),
    "skip_coqui": (
        "degradation:tts falls back to Coqui when Edge is refused, and back to Edge",
        ["SystemTTS"],
    ),
    "no_text_only": (
        "call:synthesize answers with text only when every engine is down",
        ["TTSEngineError", "no TTS engine available", "tts_service.py"],
    ),
    "no_clear_expired": (
        "call:the cache service has clear_expired, and it returns a count",
        ["AttributeError", "clear_expired"],
    ),
    "recursive_policy": (
        "sql:a wishlist owner reads their own rows, without policy recursion",
        ["42P17", "infinite recursion detected in policy for relation"],
    ),
    "missing_table": (
        "sql:affiliate_sales exists and a user reads their own sales",
        ["42P01", "affiliate_sales"],
    ),
    "optimizer_never_frees": (
        "load:memory stays under 85% of the limit under report load, and settles under 65%",
        ["killed by its memory limit", "OOM"],
    ),
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    """Every claims file of the matrix, run two at a time (most of a run is waiting: on
    heartbeats, hung engines, the load's fixed rate), on the 2 cores."""
    files = {"reference": WHEELS / "signoff.toml"} | {
        name: WHEELS / "regressions" / name / "signoff.toml" for name in EXPECTED
    }
    return run_all(files, tmp_path_factory.mktemp("wheels"))


def test_reference_holds_every_claim(matrix: dict[str, dict[str, dict[str, Any]]]) -> None:
    found = matrix["reference"]
    kinds = {claim_id.split(":")[0] for claim_id in found}
    assert {"http", "websocket", "call", "degradation", "sql", "load"} <= kinds
    broken = {k: (v["status"], v["evidence"]) for k, v in found.items() if v["status"] != "holds"}
    assert broken == {}


def test_every_bug_has_a_regression_and_evidence_check() -> None:
    folders = {
        p.name
        for p in (WHEELS / "regressions").iterdir()
        if p.is_dir() and (p / "signoff.toml").is_file()
    }
    assert folders == set(EXPECTED) == set(EVIDENCE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_regression_fails_exactly_its_claims(
    matrix: dict[str, dict[str, dict[str, Any]]], name: str
) -> None:
    found = matrix[name]
    assert set(found) == set(matrix["reference"])  # the same claims, verbatim
    assert_fails_exactly(found, EXPECTED[name]["fails"], *EVIDENCE[name])


def test_regressions_are_the_reference_with_one_bug_each() -> None:
    assert_generated(WHEELS / "regressions" / "make.py")


@pytest.mark.realtime
def test_websockets_hold_at_the_real_20_s_heartbeat_and_60_s_timeout(tmp_path: Path) -> None:
    """websocket-real.toml: the seed's own values, about 80 s."""
    found = run_embedded(WHEELS / "websocket-real.toml", tmp_path / "report")
    (claim,) = found.values()
    assert claim["status"] == "holds", claim["evidence"]
    assert len(claim["measured"]["gaps_s"]) == 3
    assert claim["measured"]["idle_close_code"] == 4408
