"""`signoff run --baseline OLD`, as a plugin object the command line gives pytest.main: the run's
RunInfo names the baseline from the start (run.json, so `signoff report DIR` compares again, and
the reports written at the end compare with it), the comparison is printed after the verdict
table, and a run whose every claim holds but that regressed against the baseline exits 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signoff.errors import UsageError
from signoff.report.compare import Comparison, comparison_for, load_run, run_folder


def check_baseline(path: str, target: str, report_dir: str | None) -> str:
    """The baseline's path, absolute (so `signoff report` finds it from any folder), once it is
    known to be a run of `target` that this run's reports will not overwrite: a UsageError
    before anything starts otherwise."""
    doc = load_run(path)
    if doc["target"] != target:
        raise UsageError(
            f"--baseline {path}: a run of target {doc['target']!r}, not of {target!r}: "
            "compare two runs of the same target"
        )
    if report_dir and run_folder(path).resolve() == Path(report_dir).resolve():
        raise UsageError(
            f"--baseline {path}: this run's reports would overwrite it (--report-dir "
            f"{report_dir}); give the run another --report-dir"
        )
    return str(Path(path).resolve())


class BaselineHooks:
    def __init__(self, baseline: str) -> None:
        self.baseline = baseline
        self.comparison: Comparison | None = None

    @staticmethod
    def _ctx(config: pytest.Config) -> Any:
        from signoff.plugin import RUN_KEY

        return config.stash.get(RUN_KEY, None)

    @pytest.hookimpl(trylast=True)  # after signoff's plugin has made the run
    def pytest_configure(self, config: pytest.Config) -> None:
        ctx = self._ctx(config)
        if ctx is not None:
            ctx.info.baseline = self.baseline
            ctx.info.save(ctx.report_dir)

    @pytest.hookimpl(trylast=True)  # after signoff's plugin has written the reports
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        ctx = self._ctx(session.config)
        if ctx is None:
            return
        self.comparison = comparison_for(ctx.info, ctx.ledger.read(), ctx.report_dir)
        if self.comparison is not None and self.comparison.regressed and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)  # below the verdict table
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from signoff.report.terminal import render_comparison

        if self.comparison is None:
            return
        width = max(terminalreporter._tw.fullwidth, 80)
        for line in render_comparison(self.comparison, width=width):
            terminalreporter.write_line(line)
