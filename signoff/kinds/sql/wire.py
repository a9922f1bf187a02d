"""Talking to the run's Postgres: a bounded connection, and one simple query (a whole setup file,
or a claim's query) sent as it is, with every result it gives, before a hard deadline.

Through libpq's own calls (psycopg.pq), not a cursor: a cursor raises at the first error and
forgets the results before it, whose count says which statement of a setup file failed. The
deadline is the client's: statement_timeout, set too, cancels a slow statement on the server,
the deadline also covers a server that stops answering."""

from __future__ import annotations

import math
import select
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from signoff.services import Service
from signoff.services.postgres import libpq_url
from signoff.services.redis import where

CONNECT_TIMEOUT = 5.0  # seconds; libpq counts whole seconds, at least 2
APPLICATION_NAME = "signoff-sql"
_COPY = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH)


class WireError(Exception):
    """No answer: the connection failed, was lost, or the deadline passed."""


class OutOfTime(WireError):
    """The deadline passed before the last result came."""


@dataclass(frozen=True)
class PgError:
    """An error Postgres answered with."""

    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None
    context: str | None = None
    position: int | None = None  # 1-based character position in the query, when parsing

    def headline(self) -> str:
        """ "42P01 relation "affiliate_sales" does not exist"."""
        return f"{self.sqlstate} {self.message}"

    def more(self) -> list[str]:
        """Detail, hint and context lines, those Postgres gave."""
        labelled = (("detail", self.detail), ("hint", self.hint), ("context", self.context))
        return [f"{label}: {' / '.join(value.splitlines())}" for label, value in labelled if value]


@dataclass(frozen=True)
class Results:
    """What one simple query gave: the results of the statements that succeeded, in order,
    and the error that ended it (Postgres runs no statement after an error)."""

    ok: list[pq.abc.PGresult]
    error: PgError | None
    seconds: float


def connect(service: Service, dbname: str | None, statement_timeout: float) -> psycopg.Connection:
    """A connection to `service` (to its own database, or `dbname`), in autocommit, whose every
    statement the server cancels after `statement_timeout` seconds. WireError if none."""
    url = libpq_url(service.url)
    extra: dict[str, Any] = {} if dbname is None else {"dbname": dbname}
    try:
        given = conninfo_to_dict(url).get("options") or ""  # the URL's own, kept
        limit = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, math.ceil(CONNECT_TIMEOUT)),
            application_name=APPLICATION_NAME,
            options=f"{given} {limit}".strip(),
            **extra,
        )
    except psycopg.Error as exc:
        raise WireError(
            f"could not connect to postgres at {where(url)}: {first_line(exc)}"
        ) from None


def run(conn: psycopg.Connection, text: str, deadline: float) -> Results:
    """Send `text` as one simple query and read every result until the last, or until
    `deadline` (time.monotonic()): OutOfTime, and the connection is closed."""
    pgconn = conn.pgconn
    started = time.perf_counter()
    try:
        pgconn.send_query(text.encode(conn.info.encoding))
        while pgconn.flush():
            _wait(pgconn, deadline, write=True)
        ok: list[pq.abc.PGresult] = []
        error: PgError | None = None
        while True:
            while pgconn.is_busy():
                _wait(pgconn, deadline, write=False)
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:  # the end; after an error, Postgres ran nothing more
                return Results(ok, error, time.perf_counter() - started)
            if result.status == pq.ExecStatus.FATAL_ERROR:
                error = error or pg_error(result)
            elif result.status in _COPY:
                conn.close()  # nothing to copy: leave the server's COPY by leaving
                raise WireError("COPY from or to the client cannot run here (no data stream)")
            else:
                ok.append(result)
    except OutOfTime:
        conn.close()
        raise
    except psycopg.Error as exc:
        conn.close()
        raise WireError(f"the connection to postgres was lost: {first_line(exc)}") from None


def _wait(pgconn: pq.abc.PGconn, deadline: float, *, write: bool) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutOfTime("no answer before the deadline")
    fd = pgconn.socket
    ready = select.select([], [fd], [], left) if write else select.select([fd], [], [], left)
    if not any(ready):
        raise OutOfTime("no answer before the deadline")


def pg_error(result: pq.abc.PGresult) -> PgError:
    def field(code: pq.DiagnosticField) -> str | None:
        value = result.error_field(code)
        return value.decode("utf-8", "replace") if value is not None else None

    position = field(pq.DiagnosticField.STATEMENT_POSITION)
    return PgError(
        sqlstate=field(pq.DiagnosticField.SQLSTATE) or "?????",
        message=field(pq.DiagnosticField.MESSAGE_PRIMARY)
        or result.error_message.decode("utf-8", "replace").strip(),
        detail=field(pq.DiagnosticField.MESSAGE_DETAIL),
        hint=field(pq.DiagnosticField.MESSAGE_HINT),
        context=field(pq.DiagnosticField.CONTEXT),
        position=int(position) if position and position.isdigit() else None,
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
