"""[target.server] memory_limit and the [[load]] claims that judge memory against it: the figures
and their evidence (pure), and real runs of a served target in a memory cgroup
(tests/data/memory_target): an app that stays small, a cache that frees after the load, memory
that is held, growth without bound until the limit kills the server, the server started again;
a machine where no cgroup can be made; a limit too small for the app to start; the group of a
killed run, reaped by the next."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from signoff import cgroup
from signoff.claims.model import Memory
from signoff.kinds.load.check import _judge_memory, _oom_line
from signoff.kinds.load.stats import LimitFigures, Sample, Settling, limit_figures
from tests.runs import ROOT, claims, signoff

MIB = 1 << 20
TARGET = Path(__file__).resolve().parent / "data" / "memory_target"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root")


# -- figures and evidence --------------------------------------------------------------------


def _memory(**keys: Any) -> Memory:
    return Memory.model_validate(keys)


def test_the_peak_and_the_first_oom_kill_come_from_the_samples() -> None:
    samples = [
        Sample(0.5, {}, None, group_held=40 * MIB, oom_kills=2),
        Sample(1.0, {}, None, group_held=90 * MIB, oom_kills=2),
        Sample(1.5, {}, None, group_held=3 * MIB, oom_kills=3),  # the server is gone
        Sample(2.0, {}, None),  # not read
    ]
    figures = limit_figures(samples, 128 * MIB, oom_base=2)
    assert figures is not None
    assert (figures.peak, figures.peak_at, figures.samples) == (90 * MIB, 1.0, 3)
    assert figures.oom_at == 1.5 and figures.before_oom == (1.0, 90 * MIB)
    assert limit_figures(samples, 128 * MIB, oom_base=3).oom_at is None  # type: ignore[union-attr]
    assert limit_figures([Sample(1.0, {}, 5)], 128 * MIB, 0) is None


def test_max_fraction_evidence_names_the_peak_against_the_limit() -> None:
    limit = LimitFigures(256_000_000, samples=20, peak=231_000_000, peak_at=12.3, oom_at=None)
    fails: list[str] = []
    seen: list[str] = []
    assert _judge_memory(_memory(max_fraction=0.85), None, limit, None, fails, seen) is None
    assert fails == ["peak 231 MB = 90.2% of 256 MB, over the 85% claimed, at 12.3 s"]
    assert seen == []
    fails.clear()
    assert _judge_memory(_memory(max_fraction=0.95), None, limit, None, fails, seen) is None
    assert (fails, seen) == ([], ["peak 231 MB = 90.2% of 256 MB at 12.3 s (at most 95%)"])
    unread = _judge_memory(_memory(max_fraction=0.95), None, None, None, [], [])
    assert unread == "the target's memory cgroup could not be sampled during the load"


def test_settling_evidence_says_when_it_was_back_under_or_where_it_stayed() -> None:
    settled = Settling(256_000_000, 0.65, 30.25, [(0.0, 200_000_000), (4.2, 148_000_000)])
    fails: list[str] = []
    seen: list[str] = []
    memory = _memory(settles_below=0.65)
    assert _judge_memory(memory, None, None, settled, fails, seen) is None
    assert seen == [
        "back under 65% 4.2 s after the load ended (148 MB = 57.8% of 256 MB; 65% within "
        "30.000 s claimed)"
    ]
    stuck = Settling(256_000_000, 0.65, 30.25, [(0.0, 210_000_000), (12.1, 199_000_000)])
    stuck.samples.append((30.25, 205_000_000))
    assert _judge_memory(memory, None, None, stuck, fails, seen) is None
    assert fails == [
        "still at 205 MB = 80.1% of 256 MB 30.2 s after the load ended, not under the 65% "
        "within 30.000 s claimed (lowest 77.7% at 12.1 s)"
    ]
    # under only after the window: not settled
    late = Settling(256_000_000, 0.65, 2.2, [(0.0, 210_000_000), (2.5, 10_000_000)])
    assert late.under is None
    gone = Settling(256_000_000, 0.65, 30.25, [(0.0, 210_000_000)], problem="the server exited")
    assert _judge_memory(memory, None, None, gone, [], []) == "settles_below: the server exited"
    assert _judge_memory(memory, None, None, None, [], []) == "settles_below: no sample"


def test_an_oom_kill_is_the_first_line_with_the_highest_sample_before_it() -> None:
    limit = LimitFigures(64 * MIB, 6, 60 * MIB, 1.0, oom_at=1.5, before_oom=(1.0, 60 * MIB))
    words = "the server was killed by its memory limit (OOM, 64 MiB; peak 64 MiB)"
    assert _oom_line(words, limit, _memory(max_fraction=0.85)) == (
        f"{words} 1.5 s into the load (sampled every 0.5 s); the highest sample before it: "
        "60 MiB = 93.8% of 64 MiB at 1.0 s; over the 85% claimed: it reached the limit"
    )
    assert _oom_line(words, None, None) == f"{words} during the claim"


# -- real runs -------------------------------------------------------------------------------


@pytest.fixture
def cgroup_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A group of this test's own, under which the run makes its groups: what is left in it
    afterwards was left by the run (other runs on this machine make theirs elsewhere)."""
    parent = cgroup.make(1 << 30)
    assert not isinstance(parent, str), f"no memory cgroup on this machine: {parent}"
    monkeypatch.setenv(cgroup.ROOT_ENV, str(parent.path))
    try:
        yield parent.path
    finally:
        assert parent.remove() is None


def _run(claims_file: Path, report: Path, **env: str) -> tuple[str, dict[str, dict[str, Any]]]:
    run = signoff("run", str(claims_file), "--report-dir", str(report), env=env)
    assert "Traceback" not in run.stderr, run.stderr
    return f"exit {run.returncode}\n{run.stdout}\n{run.stderr}", claims(report)


@root_only
@pytest.mark.slow
def test_load_claims_judge_memory_against_the_limit(tmp_path: Path, cgroup_root: Path) -> None:
    output, found = _run(TARGET / "limits.toml", tmp_path, SIGNOFF_STATE_DIR=str(tmp_path / "s"))
    assert output.startswith("exit 1"), output
    small = "load:a small app stays under half its limit"
    cache = "load:a cache that expires settles back under 30%"
    held = "load:memory that is held never settles under 30%"
    grow = "load:unbounded growth stays under 85%"
    again = "load:the server started again after the kill"
    assert {cid: c["status"] for cid, c in found.items()} == {
        small: "holds",
        cache: "holds",
        held: "fails",
        grow: "fails",
        again: "holds",
    }, output
    limit = 128 * MIB
    for cid in found:
        assert found[cid]["measured"]["memory_limit"]["limit"] == limit
    # about 18 MB idle (uvicorn and the app), 2 MiB blocks on top
    assert found[small]["measured"]["memory_limit"]["peak_fraction"] < 0.3, output
    assert re.match(r"peak \d+(\.\d)? MiB = \d+(\.\d)?% of 128 MiB at ", found[small]["evidence"])
    cached = found[cache]["measured"]["memory_limit"]
    assert cached["peak_fraction"] > 0.3, output  # it did rise over the fraction it settles under
    assert cached["settling"]["fraction_then"] < 0.3
    assert re.search(r"back under 30% \d+\.\d s after the load ended", found[cache]["evidence"])
    kept = found[held]
    assert kept["measured"]["memory_limit"]["settling"]["under_after_s"] is None
    assert re.match(
        r"still at \d+(\.\d)? MiB = \d+(\.\d)?% of 128 MiB 2\.\d s after the load ended, not "
        r"under the 30% within 2\.000 s claimed",
        kept["evidence"],
    ), kept["evidence"]
    killed = found[grow]
    assert killed["evidence"].startswith(
        "the server was killed by its memory limit (OOM, 128 MiB; peak 12"
    ), killed["evidence"]
    assert "over the 85% claimed: it reached the limit" in killed["evidence"]
    assert killed["measured"]["memory_limit"]["oom_killed"].startswith("the server was killed")
    assert (
        "note: the server was killed by its memory limit (OOM, 128 MiB; peak 12"
        in found[again]["evidence"]
    ), found[again]["evidence"]
    # every group the run made was removed when it ended
    assert [p.name for p in cgroup_root.iterdir() if p.is_dir()] == []


def _claims(tmp_path: Path, limit: str) -> Path:
    path = tmp_path / "signoff.toml"
    path.write_text(
        f"""
[target]
name = "memory-limit"
pythonpath = ["{TARGET}"]

[target.server]
app = "memapp.app:app"
ready = "/health"
memory_limit = "{limit}"
startup = "20s"

[[load]]
name = "first"
locustfile = "{TARGET / "small.py"}"
users = 1
duration = "4s"
memory = {{ max_fraction = 0.5 }}

[[load]]
name = "second"
locustfile = "{TARGET / "small.py"}"
users = 1
duration = "4s"
memory = {{ max_rss = "1GB" }}
"""
    )
    return path


def test_without_a_cgroup_every_claim_on_the_served_target_is_error(tmp_path: Path) -> None:
    root = tmp_path / "no-cgroup"
    root.mkdir()
    output, found = _run(
        _claims(tmp_path, "128MiB"),
        tmp_path / "report",
        SIGNOFF_CGROUP_ROOT=str(root),
        SIGNOFF_STATE_DIR=str(tmp_path / "s"),
    )
    assert output.startswith("exit 1"), output
    reason = (
        "could not check: could not run the target under memory_limit = 128 MiB: no memory "
        f"cgroup could be made: {root} is not a memory cgroup (no memory.limit_in_bytes, no "
        "cgroup.controllers)"
    )
    assert {cid: (c["status"], c["evidence"]) for cid, c in found.items()} == {
        "load:first": ("error", reason),
        "load:second": ("error", reason),  # remembered, not tried again
    }, output
    assert not (tmp_path / "report" / "load").exists()  # Locust never started


@root_only
def test_a_limit_too_small_for_the_app_kills_it_as_it_starts(
    tmp_path: Path, cgroup_root: Path
) -> None:
    output, found = _run(
        _claims(tmp_path, "16MiB"), tmp_path / "report", SIGNOFF_STATE_DIR=str(tmp_path / "s")
    )
    assert output.startswith("exit 1"), output
    first = found["load:first"]
    assert first["status"] == "error", output
    assert first["evidence"].startswith(
        "could not check: the server was killed by its memory limit (OOM, 16 MiB; peak 16 MiB) "
        "before GET /health answered 2xx"
    ), first["evidence"]
    assert found["load:second"]["evidence"] == first["evidence"]
    assert [p.name for p in cgroup_root.iterdir() if p.is_dir()] == []


@root_only
@pytest.mark.slow
def test_the_group_of_a_killed_run_is_reaped_by_the_next(tmp_path: Path, cgroup_root: Path) -> None:
    state = tmp_path / "s"
    env = {**os.environ, "SIGNOFF_STATE_DIR": str(state)}
    argv = [sys.executable, "-m", "signoff", "run", str(TARGET / "limits.toml")]
    with open(tmp_path / "out", "wb") as out:
        run = subprocess.Popen(
            [*argv, "--report-dir", str(tmp_path / "report")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 60
        groups: list[Path] = []
        while time.monotonic() < deadline and run.poll() is None:
            groups = [p for p in cgroup_root.iterdir() if p.is_dir()]
            if groups and cgroup.MemoryGroup(groups[0], 1, 0).pids():
                break
            time.sleep(0.1)
        assert len(groups) == 1, (tmp_path / "out").read_text()
        server = cgroup.MemoryGroup(groups[0], 1, 0).pids()
        assert server
    finally:
        run.kill()  # SIGKILL to the harness alone: the server and its group stay behind
        run.wait(30)
    assert groups[0].exists() and all(psutil.pid_exists(pid) for pid in server)
    output, _ = _run(
        _claims(tmp_path, "128MiB"),
        tmp_path / "again",
        SIGNOFF_STATE_DIR=str(state),
        SIGNOFF_CGROUP_ROOT=str(tmp_path),  # no cgroup: this run makes none of its own
    )
    assert f"memory cgroup {groups[0]}, removed (left by harness pid {run.pid})" in output, output
    assert not groups[0].exists()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in server)
    assert list((state / "cgroups").glob("*.json")) == []
