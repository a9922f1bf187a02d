"""Health checks: each answers within its service's timeout, or raises."""

from tiny import cache, db
from tiny.errors import ServiceUnavailableError


def ping_redis() -> bool:
    try:
        return bool(cache.client().ping())
    except Exception as exc:  # redis raises several families; the caller needs one
        raise ServiceUnavailableError(f"redis: {exc}") from exc


def ping_db() -> bool:
    try:
        with db.connect() as conn:
            conn.execute("SELECT 1")
        return True
    except Exception as exc:
        raise ServiceUnavailableError(f"postgres: {exc}") from exc
