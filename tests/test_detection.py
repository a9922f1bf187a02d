"""The detection matrix: every claim of the reference target holds, and every claim aimed at a
known bug fails with evidence that names it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs import RUNS, TINY, claims, signoff, statuses

pytestmark = pytest.mark.slow


def test_reference_target_holds(tmp_path: Path) -> None:
    run = signoff(
        "run", str(TINY / "signoff.toml"), "--services", "embedded", "--report-dir", str(tmp_path)
    )
    found = statuses(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert found and set(found.values()) == {"holds"}, found
    assert {"import:tiny", "import:tiny.cache", "import:tiny.health"} <= set(found)
    assert len([c for c in found if c.startswith("timeout:")]) == 11
    assert "Traceback" not in run.stderr


def test_regressions_fail_with_real_figures(tmp_path: Path) -> None:
    run = signoff(
        "run",
        str(TINY / "regressions.toml"),
        "--services",
        "embedded",
        "--report-dir",
        str(tmp_path),
    )
    assert run.returncode == 1, run.stdout + run.stderr
    found = claims(tmp_path)
    # a breaker stuck open never tries Redis: the hang is not met, the claim proves nothing
    breaker = found.pop("timeout:redis ping behind a circuit breaker gives up on a hung server")
    assert breaker["status"] == "error", breaker
    assert breaker["evidence"].startswith(
        "the call never connected to redis: the hang was not exercised\n"
    )
    assert breaker["measured"]["connections_met"] == 0
    assert {c["status"] for c in found.values()} == {"fails"}, found

    retries = found["timeout:redis client with default retries gives up within 3 s"]
    # the real wall time of redis-py's default retries, far beyond the 3 s claimed
    assert retries["measured"]["seconds"] > 3.25
    assert re.search(r"gave up after \d+\.\d+ s", retries["evidence"])

    blackhole = found["timeout:a socket with no connect timeout gives up within 2 s"]
    watched = r"still running when watching stopped at \d+\.\d+ s, [\d.]+x the 2\.000 s claimed"
    assert re.search(watched, blackhole["evidence"]), blackhole["evidence"]
    assert "waiting on 127.0.0.1:" in blackhole["evidence"]
    assert "stuck at tiny/clients.py:" in blackhole["evidence"]
    assert "SYN_SENT" in blackhole.get("details", "")

    wrong = found["timeout:redis ping raises a redis TimeoutError"]
    assert "raised the wrong exception: tiny.errors.ServiceUnavailableError" in wrong["evidence"]


def test_pytest_and_signoff_run_agree(tmp_path: Path) -> None:
    by_run = tmp_path / "run"
    by_pytest = tmp_path / "pytest"
    run = signoff(
        "run", str(RUNS / "mixed.toml"), "--services", "embedded", "--report-dir", str(by_run)
    )
    direct = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(TINY.parent.parent / "suites"),
            "-p",
            "no:cacheprovider",
            "--claims",
            str(RUNS / "mixed.toml"),
            "--signoff-services",
            "embedded",
            "--signoff-report-dir",
            str(by_pytest),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == direct.returncode == 1, direct.stdout[-3000:]
    assert (
        statuses(by_run)
        == statuses(by_pytest)
        == {
            "import:tiny.config": "holds",
            "timeout:ping raises a redis error": "fails",
            "websocket:heartbeat every 20 s": "fails",
        }
    )
    # pytest's own test ids are the claim ids
    assert "[timeout:ping raises a redis error]" in direct.stdout
    websocket = claims(by_run)["websocket:heartbeat every 20 s"]
    assert re.fullmatch(
        r"the opening handshake of ws://127\.0\.0\.1:\d+/ws failed: the server answered "
        r"HTTP/1\.0 404 File not found \(not 101 Switching Protocols\)",
        websocket["evidence"],
    ), websocket["evidence"]
