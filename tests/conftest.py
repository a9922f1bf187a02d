"""How the harness's own tests share the cores under pytest-xdist (`-n auto`).

Tests whose figures are CPU time (Locust's load and its saturation check, webhook constant-time,
cron `time`, the matrices with load claims) form one lane: one worker runs them one after
another, so no two of them ever run at once. Every other module is a unit of its own (its
module-scoped fixtures, such as a detection matrix's runs, are computed once) and goes to
whichever worker is free. Without xdist this does nothing.

It also gives SIGINT back to the tests' children: the Ctrl-C tests need it.
"""

from __future__ import annotations

import signal
from pathlib import PurePosixPath
from typing import Any

import pytest

# A shell without job control starts a background job (`pytest ... &` in a script) with SIGINT
# ignored, and every child inherits that: a Ctrl-C test's signoff would never see its Ctrl-C.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# the CPU-time lane: one worker, one test at a time
CPU_LANE = frozenset(
    {
        "test_load.py",
        "test_memory_limit.py",
        "test_webhooks.py",
        "test_cron.py",
        "test_detection_reports.py",
        "test_detection_wheels.py",
    }
)


def lane_of(nodeid: str) -> str:
    """The unit a test is scheduled with: the CPU lane, or its own module."""
    module = nodeid.split("::", 1)[0]
    return "cpu-lane" if PurePosixPath(module).name in CPU_LANE else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # xdist's loadgroup marks are lost on pytest 9.2 (node ids are no longer `_nodeid`), so
    # the lanes are a scope scheduler's scopes instead
    from xdist.scheduler import LoadScopeScheduling

    class Lanes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane_of(nodeid)

    return Lanes(config, log)


# the tests that start real servers of a backend (beside the docker-marked ones): the summary
# line says they ran, and how they ended, so a CI log shows none was skipped
EVERY_BACKEND = "test_tiny_gives_the_same_verdicts_on_every_backend"
BACKEND_TESTS = {
    "system": ("test_system_backend[", EVERY_BACKEND),
    "url": (
        "test_url_backend_on_the_standing_services",
        "test_url_backend_uses_given_servers",
        EVERY_BACKEND,
    ),
}
_backend_outcomes: dict[str, dict[str, int]] = {"docker": {}, "system": {}, "url": {}}


def _backends_of(report: pytest.TestReport) -> list[str]:
    found = ["docker"] if "docker" in report.keywords else []
    for backend, names in BACKEND_TESTS.items():
        if any(name in report.nodeid for name in names):
            found.append(backend)
    return found


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # a test's outcome: its call, or its setup when that did not pass (skipped, error)
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        for backend in _backends_of(report):
            counts = _backend_outcomes[backend]
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not any(_backend_outcomes.values()):
        return
    parts = []
    for backend, counts in _backend_outcomes.items():
        said = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none ran"
        parts.append(f"{backend}: {said}")
    terminalreporter.write_line("backends' tests on real servers: " + "; ".join(parts))
