"""The job records' database: a SQLAlchemy 2 engine on psycopg 3, created on first use, and
its tables created on first use too.

Every new connection gives up after DATABASE_TIMEOUT_S (libpq's connect_timeout, whole seconds,
at least 2), every statement after the same (statement_timeout, enforced by the server), and a
pooled connection is tested before use (pool_pre_ping), so a restarted Postgres costs one failed
ping, not a failed request. Importing this module imports neither SQLAlchemy nor psycopg.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from reports_app import config
from reports_app.errors import ConnectionTimeoutError, ReportsError, ServiceUnavailableError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

# pg_advisory_xact_lock key: the web side and the worker may both create the tables at once
_SCHEMA_LOCK = 3_003_001

_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None
_tables_ready = False
_lock = threading.Lock()


def sqlalchemy_url(url: str) -> str:
    """`postgresql://...` (what the environment gives) with the psycopg 3 driver named."""
    return re.sub(r"^postgres(?:ql)?(?:\+[\w-]+)?://", "postgresql+psycopg://", url)


def connect_timeout_s() -> int:
    """libpq takes whole seconds and treats anything under 2 as 2."""
    return max(2, math.ceil(config.DATABASE_TIMEOUT_S))


def get_engine() -> Engine:
    global _engine
    with _lock:
        if _engine is None:
            from sqlalchemy import create_engine

            _engine = create_engine(
                sqlalchemy_url(config.DATABASE_URL),
                pool_pre_ping=False,  # _on_checkout pings, under the watchdog
                pool_size=10,
                max_overflow=20,
                pool_timeout=config.DATABASE_TIMEOUT_S,
                pool_recycle=1800,
                connect_args={
                    "connect_timeout": connect_timeout_s(),
                    "options": f"-c statement_timeout={int(config.DATABASE_TIMEOUT_S * 1000)}",
                    "application_name": "reports",
                },
            )
            _watch(_engine)
        return _engine


def operation_deadline_s() -> float:
    """How long a connection may stay checked out: the server's statement_timeout plus half a
    second, so the server's own timeout normally speaks first."""
    return config.DATABASE_TIMEOUT_S + 0.5


def _watch(engine: Engine) -> None:
    """Every checkout of a pooled connection is bounded by the watchdog, its ping included: a
    connection to a server that stopped answering is cut after operation_deadline_s() instead of
    waiting for ever. The ping (of a connection that was not just made) replaces SQLAlchemy's
    pool_pre_ping, which would run before this listener and unguarded: a dead pooled
    connection is replaced by a new one (bounded by connect_timeout)."""
    from sqlalchemy import event
    from sqlalchemy import exc as sa_exc

    from reports_app import watchdog

    @event.listens_for(engine, "connect")
    def _fresh(dbapi_connection: Any, record: Any) -> None:
        record.info["fresh"] = True

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        key = id(record)
        watchdog.arm(key, dbapi_connection.fileno(), operation_deadline_s())
        if record.info.pop("fresh", False):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            watchdog.disarm(key)
            if watchdog.fired_for_this_thread():  # the server stopped answering: give up
                raise ConnectionTimeoutError(
                    f"postgres did not answer a ping within {operation_deadline_s():g}s (the "
                    "connection was cut by the client-side deadline)",
                    "postgres",
                ) from exc
            # a dead connection (the server restarted, say): the pool replaces it
            raise sa_exc.DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        watchdog.disarm(id(record))

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, record: Any, exception: Any) -> None:
        watchdog.disarm(id(record))


def get_sessionmaker() -> sessionmaker[Session]:
    global _sessions
    engine = get_engine()
    with _lock:
        if _sessions is None:
            from sqlalchemy.orm import sessionmaker

            _sessions = sessionmaker(bind=engine, expire_on_commit=False)
        return _sessions


class DatabaseError(ReportsError):
    """A query failed (not a connection problem)."""


def translate(exc: BaseException) -> Exception:
    """A SQLAlchemy/psycopg error as one of the reports backend's."""
    from sqlalchemy import exc as sa_exc

    from reports_app import watchdog

    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if watchdog.fired_for_this_thread():
        return ConnectionTimeoutError(
            f"postgres did not answer within {operation_deadline_s():g}s (the connection was cut"
            f" by the client-side deadline): {text}",
            "postgres",
        )
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection free in time
        return ConnectionTimeoutError(f"postgres: no connection within the pool timeout: {text}")
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        import psycopg

        timed_out = isinstance(
            orig, (psycopg.errors.ConnectionTimeout, psycopg.errors.QueryCanceled)
        )
        if timed_out or "timeout expired" in text:
            return ConnectionTimeoutError(
                f"postgres did not answer within {config.DATABASE_TIMEOUT_S:g}s: {text}", "postgres"
            )
        return ServiceUnavailableError(f"postgres is unavailable: {text}", "postgres")
    return DatabaseError(f"postgres: {text}")


def init_db() -> None:
    """Create the tables (once per process; idempotent, and safe when another process does it
    at the same time: the creation holds a transaction-level advisory lock)."""
    global _tables_ready
    if _tables_ready:
        return
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import func, select

    from reports_app import models

    try:
        with get_engine().begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            models.Base.metadata.create_all(conn)
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc) from exc
    _tables_ready = True


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session on the job tables (created first if needed) that commits when the block ends
    normally and rolls back otherwise; database errors come out translated."""
    from sqlalchemy import exc as sa_exc

    init_db()
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except sa_exc.SQLAlchemyError as exc:
        _rollback(session)
        raise translate(exc) from exc
    except BaseException:
        _rollback(session)
        raise
    finally:
        session.close()


def _rollback(session: Session) -> None:
    from sqlalchemy import exc as sa_exc

    with contextlib.suppress(sa_exc.SQLAlchemyError, OSError):
        session.rollback()


def ping() -> bool:
    """SELECT 1 through the pool: ConnectionTimeoutError when Postgres does not answer in
    time, ServiceUnavailableError when it refuses."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import text

    try:
        with get_engine().connect() as conn:
            return bool(conn.execute(text("SELECT 1")).scalar_one() == 1)
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc) from exc


def dispose() -> None:
    """Close every pooled connection (tests, and after a fork)."""
    global _engine, _sessions, _tables_ready
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine, _sessions, _tables_ready = None, None, False
