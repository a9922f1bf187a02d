"""Postgres (the seed's Supabase database): one short-lived psycopg connection per check, with
libpq's connect_timeout and a server-side statement_timeout."""

from __future__ import annotations

import math

from app.core import config
from app.core.exceptions import ServiceUnavailableError


def ping() -> bool:
    """SELECT 1; ServiceUnavailableError when Postgres refuses or does not answer in time."""
    import psycopg

    timeout = config.service_timeout()
    try:
        with psycopg.connect(
            config.database_url(),
            connect_timeout=max(1, math.ceil(timeout)),
            options=f"-c statement_timeout={int(timeout * 1000)}",
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailableError(f"postgres is unavailable: {first_line}") from exc
    return True
