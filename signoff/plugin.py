"""signoff's pytest plugin: `pytest suites --claims FILE` turns every claim into one test.

The hooks only hand off to signoff.session: the claims are loaded at configure time (a bad
file stops the run with exit status 2 before anything starts), services start once at session
start (exit status 3 if no backend can provide them), each test checks one claim and appends
its verdict to the ledger at once, and the reports are written at session end, whatever
happened. Nothing heavy is imported unless --claims is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the keys' types only; nothing heavy is imported at plugin load
    from signoff.claims import ClaimRef  # noqa: F401
    from signoff.context import RunContext  # noqa: F401

RUN_KEY = pytest.StashKey["RunContext"]()
REFS_KEY = pytest.StashKey["tuple[ClaimRef, ...]"]()
BACKEND_CHOICES = ("auto", "docker", "system", "embedded", "url")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("signoff", "signoff: check a claims file")
    group.addoption("--claims", metavar="FILE", help="the claims file to check")
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
        "--signoff-deadline",
        default="30m",
        metavar="DURATION",
        help="no claim starts after this much of the run (default: 30m)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "signoff_kinds(*kinds): the claim kinds a suite checks")
    path = config.getoption("claims")
    if not path:
        return
    from signoff import session
    from signoff.errors import ClaimsError

    try:
        ctx, refs = session.configure(
            path,
            only=config.getoption("signoff_only"),
            deadline=config.getoption("signoff_deadline"),
            report_dir=config.getoption("signoff_report_dir"),
        )
    except ClaimsError as exc:
        pytest.exit(f"signoff: the claims file is wrong:\n{exc}", returncode=2)
    except ValueError as exc:
        pytest.exit(f"signoff: {exc}", returncode=2)
    config.stash[RUN_KEY] = ctx
    config.stash[REFS_KEY] = tuple(refs)
    session.stop_on_sigterm()


def pytest_sessionstart(session: pytest.Session) -> None:
    ctx = session.config.stash.get(RUN_KEY, None)
    if ctx is None:
        return
    from signoff import session as run
    from signoff.errors import ServiceError

    refs = session.config.stash[REFS_KEY]
    try:
        run.start(ctx, refs, backend=session.config.getoption("signoff_services"))
    except ServiceError as exc:
        ctx.info.notes.append(f"could not start the services: {exc}")
        run.finish(ctx, refs, interrupted=False)
        pytest.exit(f"signoff: could not start the services: {exc}", returncode=3)


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
    from signoff.claims import ClaimRef

    empty = [
        item
        for item in items
        if "claim" in getattr(item, "fixturenames", ())
        and not isinstance(
            getattr(getattr(item, "callspec", None), "params", {}).get("claim"), ClaimRef
        )
    ]
    if empty:
        config.hook.pytest_deselected(items=empty)
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ctx = session.config.stash.get(RUN_KEY, None)
    if ctx is None:
        return
    from signoff import session as run

    refs = session.config.stash[REFS_KEY]
    run.finish(ctx, refs, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    ctx = terminalreporter.config.stash.get(RUN_KEY, None)
    if ctx is None:
        return
    from signoff import session as run

    terminalreporter.section(f"signoff: {ctx.info.target}")
    for line in run.summary_lines(ctx, width=max(terminalreporter._tw.fullwidth, 80)):
        terminalreporter.write_line(line)
