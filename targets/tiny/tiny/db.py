"""The database: short-lived connections that give up on connect."""

import psycopg

from tiny import config


def connect() -> psycopg.Connection:
    # connect_timeout bounds the connect only; every caller here opens a fresh connection per
    # round trip, so a server that stops answering costs at most DATABASE_TIMEOUT_S
    return psycopg.connect(
        config.DATABASE_URL,
        connect_timeout=config.DATABASE_TIMEOUT_S,
        options=f"-c statement_timeout={config.DATABASE_TIMEOUT_S * 1000}",
        autocommit=True,
    )


def count_rows(table: str = "pg_class") -> int:
    with connect() as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0
