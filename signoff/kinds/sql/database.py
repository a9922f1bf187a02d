"""The run's own database on the run's Postgres, and the setup files run in it, once each.

Every run works in a database of its own (`signoff_sql_<random>`), created by the service's
user at the first [[sql]] claim and dropped when the run ends, so runs that share a server (the
url backend, or a Postgres of the machine) never see each other's tables. Roles are the
cluster's, not the database's: setup files create them idempotently.

A setup file runs the first time a claim names it, whole, as one simple query, as the database
owner; its outcome is kept for the run, so a file several claims name runs once and a failed
file makes each of them `error` at once, with the file, the line and Postgres's message."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from signoff.claims.model import SqlClaim
from signoff.context import RunContext
from signoff.kinds.sql.locate import failure_line
from signoff.kinds.sql.wire import OutOfTime, WireError, connect, run
from signoff.services import Service
from signoff.units import format_duration

SETUP_TIMEOUT = 60.0  # seconds one setup file may run (each statement, and the whole file)
ADMIN_TIMEOUT = 10.0  # CREATE DATABASE, DROP DATABASE, SET ROLE and settings
CLIENT_MARGIN = 2.0  # past the server's statement_timeout, the client stops waiting
SOURCE_MAX = 120  # characters of the failing line quoted in the evidence


class NotChecked(Exception):
    """The claim cannot be checked: no database, or a setup file failed. The message is the
    claim's evidence; `measured` what it found."""

    def __init__(self, evidence: str, measured: dict[str, Any] | None = None) -> None:
        super().__init__(evidence)
        self.measured = measured or {}


@dataclass
class _Failure:
    evidence: str
    measured: dict[str, Any]


@dataclass
class SqlRun:
    """What [[sql]] keeps for the run (in RunContext.stash)."""

    service: Service | None
    database: str | None = None
    failure: _Failure | None = None  # no database: every claim is error with this
    setups: dict[Path, _Failure | None] = field(default_factory=dict)  # None: it ran


_STATE_KEY = pytest.StashKey[SqlRun]()


def ready(ctx: RunContext, spec: SqlClaim) -> tuple[Service, str]:
    """The service and the run's database, every setup file of `spec` run in it; NotChecked if
    not (the same reason for every claim, each time). Claims side by side wait here for the
    one that creates the database or runs a setup file."""
    with _lock:
        state = ctx.stash.get(_STATE_KEY, None)
        if state is None:
            state = ctx.stash[_STATE_KEY] = _create(ctx)
        if state.failure is not None:
            raise NotChecked(state.failure.evidence, state.failure.measured)
        assert state.service is not None and state.database is not None
        for path in spec.setup:
            if path not in state.setups:
                state.setups[path] = _run_setup(ctx, state.service, state.database, path)
            failed = state.setups[path]
            if failed is not None:
                raise NotChecked(failed.evidence, failed.measured)
        return state.service, state.database


_lock = threading.Lock()


def _create(ctx: RunContext) -> SqlRun:
    service = ctx.services.get("postgres")
    if service is None:
        return SqlRun(
            None, failure=_Failure("not checked: postgres is not running in this run", {})
        )
    name = f"signoff_sql_{uuid.uuid4().hex[:12]}"
    problem = _admin(service, f'CREATE DATABASE "{name}"')
    if problem is not None:
        evidence = (
            f"not checked: could not create the run's own database on postgres "
            f"({service.describe()}): {problem}"
        )
        if "42501" in problem:
            evidence += "\n[[sql]] needs a Postgres user that may CREATE DATABASE"
        return SqlRun(service, failure=_Failure(evidence, {}))
    ctx.at_finish(lambda: _drop(service, name))
    return SqlRun(service, name)


def _drop(service: Service, name: str) -> None:
    problem = _admin(service, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if problem is not None and problem.startswith("42601"):  # before Postgres 13: no FORCE
        problem = _admin(service, f'DROP DATABASE IF EXISTS "{name}"')
    if problem is not None:
        raise RuntimeError(f"[[sql]] could not drop the run's database {name}: {problem}")


def _admin(service: Service, statement: str) -> str | None:
    """Run one statement as the service's user in its own database; what went wrong, or None."""
    try:
        conn = connect(service, None, ADMIN_TIMEOUT)
        try:
            error = run(conn, statement, time.monotonic() + ADMIN_TIMEOUT + CLIENT_MARGIN).error
        finally:
            conn.close()
    except WireError as exc:
        return str(exc)
    return None if error is None else error.headline()


def shown_path(ctx: RunContext, path: Path) -> str:
    """A setup file as the claims file names it (relative to its folder when inside it)."""
    try:
        return str(path.relative_to(ctx.claims.path.parent))
    except ValueError:
        return str(path)


def _run_setup(ctx: RunContext, service: Service, database: str, path: Path) -> _Failure | None:
    shown = shown_path(ctx, path)
    measured: dict[str, Any] = {"setup": shown}
    try:
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeError) as exc:
        return _Failure(f"not checked: setup file {shown} could not be read: {exc}", measured)
    budget = max(1.0, min(SETUP_TIMEOUT, ctx.remaining()))
    started = time.monotonic()
    try:
        conn = connect(service, database, budget)
        try:
            results = run(conn, text, started + budget + CLIENT_MARGIN)
        finally:
            conn.close()
    except OutOfTime:
        waited = format_duration(time.monotonic() - started)
        return _Failure(f"not checked: setup file {shown} still running after {waited}", measured)
    except WireError as exc:
        return _Failure(f"not checked: setup file {shown} could not run: {exc}", measured)
    error = results.error
    if error is None:
        return None
    line = failure_line(text, len(results.ok), error.position, error.context)
    measured.update(line=line, sqlstate=error.sqlstate)
    at = f" at line {line}" if line is not None else ""
    lines = [f"not checked: setup file {shown} failed{at}: {error.headline()}"]
    if line is not None:
        lines_of_file = text.split("\n")  # as Postgres and failure_line count them
        source = lines_of_file[line - 1].strip() if line <= len(lines_of_file) else ""
        if source:
            cut = source if len(source) <= SOURCE_MAX else source[: SOURCE_MAX - 3] + "..."
            lines.append(f"{line} | {cut}")
    return _Failure("\n".join([*lines, *error.more()]), measured)
