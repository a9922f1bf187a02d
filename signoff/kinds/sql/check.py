"""[[sql]] claims: a query on the run's real Postgres, as a role under row-level security.

The harness runs the query itself, straight to the service (no fault proxy: [[sql]] has no
faults): after the claim's setup files (`database.py`), a new connection as the service's user
to the run's own database, BEGIN, `SET ROLE role` when given, `set_config(k, v, false)` for
each setting, then the query, timed alone, sent as it is; the transaction is never committed,
so a claim's writes are gone before the next claim. The server cancels it (statement_timeout)
a little after `within` plus the tolerance; a server that stops answering is left 2 s later.

Judged on time (within + tolerance), then on the row count of the last statement (rows
returned, or affected by insert/update/delete: exactly `rows`, at least `min_rows`, at most
`max_rows`), or with `sqlstate` on the error it must fail with. A query that errors when rows
were expected fails with Postgres's SQLSTATE and message."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import pq, sql

from signoff.claims.model import ClaimRef, SqlClaim
from signoff.claims.secrets import scrub, secret_values
from signoff.context import RunContext
from signoff.engine.timing import tolerance
from signoff.kinds.sql.database import ADMIN_TIMEOUT, CLIENT_MARGIN, NotChecked, ready
from signoff.kinds.sql.outcome import Outcome, judge, sample
from signoff.kinds.sql.wire import OutOfTime, WireError, connect, run
from signoff.report import live
from signoff.services import Service
from signoff.verdict import Verdict

QUERY_MARGIN = 1.0  # the server cancels the query this long after within + tolerance


def check(ctx: RunContext, ref: ClaimRef) -> Verdict:
    spec = ref.spec
    assert isinstance(spec, SqlClaim)
    started = time.monotonic()
    slack = tolerance(spec.within)
    verdict = Verdict(ref.id, ref.kind, "holds", budget=_budget(spec, slack))
    try:
        live.note("the database and its setup files")
        service, database = ready(ctx, spec)
        live.note(f"waiting for the query{f' as {spec.role}' if spec.role else ''}")
        outcome = _query(spec, service, database, spec.within + slack + QUERY_MARGIN)
    except NotChecked as exc:
        verdict.status = "error"
        verdict.evidence = str(exc)
        verdict.measured = exc.measured
    else:
        judge(verdict, spec, outcome, slack)
    verdict.evidence = scrub(verdict.evidence, secret_values(ctx.claims))
    verdict.duration_s = time.monotonic() - started
    return verdict


def _budget(spec: SqlClaim, slack: float) -> dict[str, Any]:
    budget: dict[str, Any] = {"query": spec.query, "within_s": spec.within}
    budget["tolerance_s"] = round(slack, 3)
    if spec.role is not None:
        budget["role"] = spec.role
    for key in ("rows", "min_rows", "max_rows", "sqlstate"):
        if getattr(spec, key) is not None:
            budget[key] = getattr(spec, key)
    return budget


def _query(spec: SqlClaim, service: Service, database: str, limit: float) -> Outcome:
    """Run the claim's query (`limit`: its statement_timeout, seconds)."""
    try:
        conn = connect(service, database, limit)
    except WireError as exc:
        raise NotChecked(f"not checked: {exc}") from None
    try:
        _prepare(conn, spec)
        started = time.monotonic()
        try:
            results = run(conn, spec.query, started + limit + CLIENT_MARGIN)
        except OutOfTime:
            return Outcome(
                time.monotonic() - started,
                cut="the client gave up: postgres neither answered nor cancelled it",
            )
        except WireError as exc:
            raise NotChecked(f"not checked: {exc}") from None
    finally:
        conn.close()
    error = results.error
    if error is not None and error.sqlstate == "57014" and results.seconds >= limit * 0.9:
        return Outcome(results.seconds, cut="cancelled by its statement_timeout")
    if error is not None:
        return Outcome(results.seconds, error=error)
    last = results.ok[-1] if results.ok else None
    if last is not None and last.status == pq.ExecStatus.TUPLES_OK:
        return Outcome(results.seconds, rows=last.ntuples, sample=sample(last))
    tag = last.command_status.decode() if last is not None and last.command_status else ""
    count = last.command_tuples if last is not None else None
    return Outcome(results.seconds, rows=count or 0, tag=tag or None)


def _prepare(conn: psycopg.Connection, spec: SqlClaim) -> None:
    """BEGIN, SET ROLE and the settings; NotChecked with Postgres's reason if one fails."""
    steps: list[tuple[str, sql.Composable]] = [("BEGIN", sql.SQL("BEGIN"))]
    if spec.role is not None:
        steps.append(
            (f"SET ROLE {spec.role}", sql.SQL("SET ROLE {}").format(sql.Identifier(spec.role)))
        )
    for key, value in spec.settings.items():
        call = sql.SQL("SELECT set_config({}, {}, false)").format(
            sql.Literal(key), sql.Literal(value)
        )
        steps.append((f"set_config({key!r}, ...)", call))
    for what, statement in steps:
        try:
            error = run(conn, statement.as_string(conn), time.monotonic() + ADMIN_TIMEOUT).error
        except WireError as exc:
            raise NotChecked(f"not checked: {what}: {exc}") from None
        if error is not None:
            raise NotChecked(
                f"not checked: {what} failed: {error.headline()}", {"sqlstate": error.sqlstate}
            )
