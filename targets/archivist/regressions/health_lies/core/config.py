"""Archivist's settings, read from the environment once, at import.

The timeouts are the ones the fix summary promises: "Redis connections now timeout after 5
seconds", "Database connections now timeout after 5 seconds". Nothing here connects to anything.
"""

from __future__ import annotations

import math
import os

from core.exceptions import ConfigurationError


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{variable}: expected a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{variable}: expected a positive number of seconds, got {raw!r}")
    return value


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Every Redis socket (connect and each answer) gives up after this.
REDIS_TIMEOUT_S = _seconds("ARCHIVIST_REDIS_TIMEOUT", 5.0)
# Every Postgres connect gives up after this, and every statement (server side).
DATABASE_TIMEOUT_S = _seconds("ARCHIVIST_DATABASE_TIMEOUT", 5.0)

TRANSCRIPTION_QUEUE = os.environ.get("ARCHIVIST_TRANSCRIPTION_QUEUE", "transcription")
MEDIA_ROOT = os.environ.get("ARCHIVIST_MEDIA_ROOT", "/mnt/archive")

# The cable-access members whose recordings the archive holds: code -> city.
MEMBER_CITIES: dict[str, str] = {
    "BRK": "Brooklyn Park",
    "CRY": "Crystal",
    "GLV": "Golden Valley",
    "MAP": "Maple Grove",
    "NWH": "New Hope",
    "PLY": "Plymouth",
    "ROB": "Robbinsdale",
}
