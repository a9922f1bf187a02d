"""signoff's pytest plugin: `pytest --signoff-claims FILE` turns every claim into one test.

With --signoff-claims, signoff's own suites (signoff.bundled.suites()) are collected next to the
project's tests; --claims FILE (what `signoff run` passes) checks with the suites pytest is given
(`pytest suites --claims FILE` in a checkout). The fixtures of signoff.user_fixtures (a real
Redis and Postgres, a fault for one block) are registered for every session.

The hooks only hand off to signoff.stages: the claims are loaded at configure time (a bad
file stops the run with exit status 2 before anything starts), services start once at session
start (exit status 3 if no backend can provide them), each test checks one claim and appends
its verdict to the ledger at once, and the reports are written at session end, whatever
happened. Nothing heavy is imported unless --claims is given.

The other hooks watch how the run goes (signoff.run_end.RunEnd): an interruption, a suite
that could not be collected, a test deselected, skipped or broken before its check, pytest
stopping early. A claim left without a verdict is reported with that reason.

A --claims run (`signoff run`) shows each claim as it runs and ends (signoff.report.live)
instead of pytest's dots, except with -v; --signoff-claims keeps pytest's own output, as the
project's own tests run in it too.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the keys' types only; nothing heavy is imported at plugin load
    from signoff.claims import ClaimRef
    from signoff.context import RunContext  # noqa: F401
    from signoff.report.live import Progress
    from signoff.run_end import RunEnd
    from signoff.stages import Handler  # noqa: F401

RUN_KEY = pytest.StashKey["RunContext"]()
REFS_KEY = pytest.StashKey["tuple[ClaimRef, ...]"]()
END_KEY = pytest.StashKey["RunEnd"]()
NODES_KEY = pytest.StashKey["dict[str, str]"]()  # a claim test's nodeid -> its claim's id
SIGTERM_KEY = pytest.StashKey["Handler"]()
LIVE_KEY = pytest.StashKey["Progress"]()
BACKEND_CHOICES = ("auto", "docker", "system", "embedded", "url")

pytest_plugins = ["signoff.user_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("signoff", "signoff: check a claims file")
    group.addoption(
        "--signoff-claims",
        metavar="FILE",
        help="the claims file to check: signoff's suites are collected with your tests, one test "
        "per claim",
    )
    group.addoption(
        "--claims",
        metavar="FILE",
        help="the claims file to check, with the suites given on the command line only "
        "(pytest suites --claims FILE)",
    )
    group.addoption(
        "--signoff-report-dir",
        metavar="DIR",
        help="where the reports go (default: reports/<time>-<target>)",
    )
    group.addoption(
        "--signoff-services",
        default="auto",
        choices=BACKEND_CHOICES,
        help="which backend provides Redis and Postgres (default: auto)",
    )
    group.addoption(
        "--signoff-only", metavar="KIND[,KIND]", help="check only claims of these kinds"
    )
    group.addoption(
        "--signoff-jobs",
        default="1",
        metavar="N",
        help="claims that only wait run side by side, N at once (auto: from the cores); CPU-time "
        "claims run alone. Default 1 here, so that your own tests never run beside a claim "
        "(`signoff run` defaults to auto)",
    )
    group.addoption(
        "--signoff-deadline",
        default="30m",
        metavar="DURATION",
        help="no claim starts after this much of the run (default: 30m)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "signoff_kinds(*kinds): the claim kinds a suite checks")
    path = _claims_path(config)
    if not path:
        return
    from signoff import stages
    from signoff.errors import ClaimsError

    try:
        ctx, refs = stages.configure(
            path,
            only=config.getoption("signoff_only"),
            deadline=config.getoption("signoff_deadline"),
            report_dir=config.getoption("signoff_report_dir"),
            jobs=config.getoption("signoff_jobs"),
        )
    except ClaimsError as exc:
        pytest.exit(f"signoff: the claims file is wrong:\n{exc}", returncode=2)
    except ValueError as exc:
        pytest.exit(f"signoff: {exc}", returncode=2)
    from signoff.run_end import RunEnd

    config.stash[RUN_KEY] = ctx
    config.stash[REFS_KEY] = tuple(refs)
    config.stash[END_KEY] = end = RunEnd()
    nodes: dict[str, str] = {}
    config.stash[NODES_KEY] = nodes
    config.pluginmanager.register(_RunWatch(end, nodes), "signoff-run-watch")
    config.stash[SIGTERM_KEY] = stages.stop_on_sigterm()
    if not config.getoption("claims") or config.get_verbosity() > 0:
        return  # a user's run (their own tests' dots), or -v: pytest's own lines
    from signoff.report import live

    # the claims' progress replaces pytest's dots, on the terminal pytest's capture hides
    config.stash[LIVE_KEY] = display = live.Progress.on_stdout(total=len(refs))
    live.activate(display)
    config.pluginmanager.register(_LiveWatch(display, nodes), "signoff-live")


def _claims_path(config: pytest.Config) -> str | None:
    """The claims file; with --signoff-claims, the bundled suites are added to what pytest
    collects (unless they are among its arguments already)."""
    bundled_run, named_run = config.getoption("signoff_claims"), config.getoption("claims")
    if bundled_run and named_run:
        pytest.exit("signoff: give --signoff-claims or --claims, not both", returncode=2)
    if bundled_run:
        from signoff import bundled

        suites = bundled.suites()
        given = [Path(arg.split("::")[0]).resolve() for arg in config.args]
        if not any(path == suites or suites in path.parents for path in given):
            config.args.append(str(suites))
    return bundled_run or named_run


def pytest_unconfigure(config: pytest.Config) -> None:
    if LIVE_KEY in config.stash:
        from signoff.report import live

        config.stash[LIVE_KEY].stop()
        if live.active() is config.stash[LIVE_KEY]:
            live.activate(None)
    if SIGTERM_KEY in config.stash:
        from signoff import stages

        stages.restore_sigterm(config.stash[SIGTERM_KEY])


def pytest_sessionstart(session: pytest.Session) -> None:
    ctx = session.config.stash.get(RUN_KEY, None)
    if ctx is None:
        return
    from signoff import stages
    from signoff.errors import ServiceError
    from signoff.run_end import describe_failure

    refs = session.config.stash[REFS_KEY]
    end = session.config.stash[END_KEY]
    # pytest calls no pytest_sessionfinish when this hook raises: each way out finishes here
    try:
        stages.start(ctx, refs, backend=session.config.getoption("signoff_services"))
    except ServiceError as exc:
        end.services = str(exc)
        ctx.info.notes.append(f"could not start the services: {exc}")
        stages.finish(ctx, refs, end)
        pytest.exit(f"signoff: could not start the services: {exc}", returncode=3)
    except KeyboardInterrupt as exc:
        end.interrupted = _interruption(exc)
        stages.finish(ctx, refs, end)
        raise
    except Exception as exc:
        end.harness_error = describe_failure(exc)
        ctx.info.notes.append(f"the harness failed while starting the run: {end.harness_error}")
        stages.finish(ctx, refs, end)
        pytest.exit(
            f"signoff: the harness failed while starting the run: {end.harness_error}",
            returncode=3,
        )


def _interruption(exc: BaseException) -> str:
    from signoff.stages import SIGTERM

    return SIGTERM if str(exc) == SIGTERM else "Ctrl-C"


def _claim_id(item: pytest.Item) -> str | None:
    from signoff.claims import ClaimRef

    claim = getattr(getattr(item, "callspec", None), "params", {}).get("claim")
    return claim.id if isinstance(claim, ClaimRef) else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "claim" not in metafunc.fixturenames:
        return
    refs = metafunc.config.stash.get(REFS_KEY, ())
    marker = metafunc.definition.get_closest_marker("signoff_kinds")
    kinds = set(marker.args) if marker else set()
    chosen = [r for r in refs if r.kind in kinds]
    metafunc.parametrize("claim", chosen, ids=[r.id for r in chosen])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A suite whose kind has no claim in the file is dropped, not shown as skipped."""
    if config.stash.get(RUN_KEY, None) is None:
        return
    empty = [
        item
        for item in items
        if "claim" in getattr(item, "fixturenames", ()) and _claim_id(item) is None
    ]
    if empty:
        config.hook.pytest_deselected(items=empty)
    nodes = config.stash[NODES_KEY]
    for item in items:
        if (claim_id := _claim_id(item)) is not None:
            nodes[item.nodeid] = claim_id
    config.stash[END_KEY].collected = set(nodes.values())
    refs = config.stash[REFS_KEY]
    order = {ref.id: i for i, ref in enumerate(refs)}
    # the claims file's order, whichever suite checks each claim
    items[:] = sorted(
        (item for item in items if item not in empty),
        key=lambda item: (
            order.get(item.callspec.params["claim"].id, len(order))
            if hasattr(item, "callspec")
            else len(order)
        ),
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """With --signoff-jobs above 1, the claims pytest will run start now, side by side (the
    services are up: pytest_sessionstart ran before the collection); each test then waits for
    its claim's verdict."""
    ctx = session.config.stash.get(RUN_KEY, None)
    if ctx is None or session.config.option.collectonly:
        return
    if session.config.stash[END_KEY].collection_errors:
        return  # pytest stops before any test
    from signoff import stages
    from signoff.claims import ClaimRef

    refs: list[ClaimRef] = []
    for item in session.items:
        claim = getattr(getattr(item, "callspec", None), "params", {}).get("claim")
        if isinstance(claim, ClaimRef):
            refs.append(claim)
    stages.start_side_by_side(ctx, refs)


class _RunWatch:
    """Hooks that record how the run goes into its RunEnd (registered by pytest_configure for a
    run with --claims; a plugin object of its own, so nested runs keep their own)."""

    def __init__(self, end: RunEnd, nodes: dict[str, str]) -> None:
        self.end = end
        self.nodes = nodes

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            if (claim_id := _claim_id(item)) is not None:
                self.end.claims.setdefault(claim_id, "deselected (pytest's -k, -m or --deselect)")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            where = report.nodeid or "suites"
            self.end.collection_errors.append(f"{where}: {_last_line(report.longreprtext)}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        claim_id = self.nodes.get(report.nodeid)
        if claim_id is None or not (report.failed or report.skipped):
            return
        what = _last_line(report.longreprtext)
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else what
            why = f"its test was skipped: {reason}"
        elif report.when == "call":
            # verify() records a verdict before it fails the test: this one never got there
            why = f"its test failed before a verdict: {what}"
        else:
            doing = "setting up" if report.when == "setup" else "tearing down"
            why = f"the harness failed {doing} its test: {what}"
        self.end.claims.setdefault(claim_id, why)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if isinstance(excinfo.value, pytest.Session.Interrupted):
            # pytest's own stop: collection errors (recorded already) or a plugin's shouldstop
            if not self.end.collection_errors:
                self.end.stopped = str(excinfo.value)
        elif isinstance(excinfo.value, KeyboardInterrupt):
            self.end.interrupted = _interruption(excinfo.value)

    def pytest_internalerror(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        from signoff.run_end import describe_failure

        self.end.harness_error = describe_failure(excinfo.value)


class _LiveWatch:
    """The live display's hooks (registered with it by pytest_configure): no dot or letter for
    a claim's test (its line is the display's), and the display stopped, the terminal left as
    it was, before pytest writes its summary or its word about an interruption."""

    def __init__(self, display: Progress, nodes: dict[str, str]) -> None:
        self.display = display
        self.nodes = nodes

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport | pytest.CollectReport
    ) -> Generator[None, Any, Any]:
        status = yield
        if report.nodeid in self.nodes and isinstance(status, tuple):
            return (status[0], "", "")  # the category still counts in pytest's last line
        return status

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.display.stop()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.display.stop()


def _last_line(text: str) -> str:
    """The line of a pytest report that says what happened ("E   KeyError: 'x'")."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    line = (errors or lines or ["?"])[-1]
    return line.removeprefix("E").strip()[:300]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ctx = session.config.stash.get(RUN_KEY, None)
    if ctx is None:
        return
    from signoff import stages

    refs = session.config.stash[REFS_KEY]
    end = session.config.stash[END_KEY]
    end.exit_status = int(exitstatus)
    stopped = session.shouldfail or session.shouldstop
    if stopped and end.stopped is None:
        end.stopped = str(stopped)
    stages.finish(ctx, refs, end)
    if end.collection_errors and end.interrupted is None:
        # pytest says "interrupted" (exit status 2): no one interrupted it, the harness could
        # not run its own suites
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    ctx = terminalreporter.config.stash.get(RUN_KEY, None)
    if ctx is None:
        return
    from signoff import stages

    terminalreporter.section(f"signoff: {ctx.info.target}")
    for line in stages.summary_lines(ctx, width=max(terminalreporter._tw.fullwidth, 80)):
        terminalreporter.write_line(line)
