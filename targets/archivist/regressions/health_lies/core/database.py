"""The database: a SQLAlchemy 2 engine on psycopg 3, created on first use.

Every new connection gives up after DATABASE_TIMEOUT_S (libpq's connect_timeout, whole seconds,
at least 2), every statement after the same (statement_timeout, enforced by the server), and a
pooled connection is tested before use (pool_pre_ping), so a restarted Postgres costs one failed
ping, not a failed request. Importing this module imports neither SQLAlchemy nor psycopg.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from core import config
from core.exceptions import ConnectionTimeoutError, DatabaseError, ServiceUnavailableError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None
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
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=5,
                pool_timeout=config.DATABASE_TIMEOUT_S,
                pool_recycle=1800,
                connect_args={
                    "connect_timeout": connect_timeout_s(),
                    "options": f"-c statement_timeout={int(config.DATABASE_TIMEOUT_S * 1000)}",
                    "application_name": "archivist",
                },
            )
        return _engine


def get_sessionmaker() -> sessionmaker[Session]:
    global _sessions
    engine = get_engine()
    with _lock:
        if _sessions is None:
            from sqlalchemy.orm import sessionmaker

            _sessions = sessionmaker(bind=engine, expire_on_commit=False)
        return _sessions


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def translate(exc: BaseException) -> Exception:
    """A SQLAlchemy/psycopg error as one of Archivist's: unreachable, timed out, or a query."""
    from sqlalchemy import exc as sa_exc

    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
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


def ping() -> bool:
    """SELECT 1 through the pool: ConnectionTimeoutError when Postgres does not answer in
    time, ServiceUnavailableError when it refuses."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import text

    try:
        with get_engine().connect() as conn:
            return conn.execute(text("SELECT 1")).scalar_one() == 1
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc) from exc


def init_db() -> None:
    """Create the tables the models declare (idempotent)."""
    from core import models

    models.Base.metadata.create_all(get_engine())


def dispose() -> None:
    """Close every pooled connection (tests, and after a fork)."""
    global _engine, _sessions
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine, _sessions = None, None
