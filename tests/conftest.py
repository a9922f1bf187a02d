"""How the harness's own tests share the cores under pytest-xdist (`-n auto`).

Tests whose figures are CPU time (Locust's load and its saturation check, webhook constant-time,
cron `time`, the matrices with load claims) form one lane: one worker runs them one after
another, so no two of them ever run at once. Every other module is a unit of its own (its
module-scoped fixtures, such as a detection matrix's runs, are computed once) and goes to
whichever worker is free. Without xdist this does nothing.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

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
