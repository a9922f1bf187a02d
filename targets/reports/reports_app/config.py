"""The reports backend's settings, read from the environment once, at import.

Nothing here connects to anything. The service URLs come from the environment signoff (or a
deployment) gives: REDIS_URL (Celery's broker and result backend, the rate limiter) and
DATABASE_URL (the job records).
"""

from __future__ import annotations

import math
import os

from reports_app.errors import ConfigurationError


def _number(variable: str, default: float, *, integer: bool = False) -> float:
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{variable}: expected a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0 or (integer and value != int(value)):
        kind = "a positive whole number" if integer else "a positive number"
        raise ConfigurationError(f"{variable}: expected {kind}, got {raw!r}")
    return value


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Every Redis socket (the connect and each answer) gives up after this many seconds, with no
# retry on a timeout (one retry on a dropped connection: a pooled connection to a restarted
# server).
REDIS_TIMEOUT_S = _number("REPORTS_REDIS_TIMEOUT", 1.0)
# Every Postgres connect gives up after this (libpq counts whole seconds, at least 2) and every
# statement too (statement_timeout, enforced by the server).
DATABASE_TIMEOUT_S = _number("REPORTS_DATABASE_TIMEOUT", 2.0)

# "Rate limiting (100 req/hour per URL/user)" (seed 003): external API calls, per URL and user.
RATE_LIMIT = int(_number("REPORTS_RATE_LIMIT", 100, integer=True))
RATE_WINDOW_S = _number("REPORTS_RATE_WINDOW", 3600.0)

# The external API the fetch jobs call. Empty: the worker serves a stub API itself, on a free
# loopback port (reports_app.stub_api).
EXTERNAL_API_URL = os.environ.get("REPORTS_EXTERNAL_API_URL", "").rstrip("/")
# "Timeout enforcement (max 120s)" (seed 003): a job may ask for less, never more.
EXTERNAL_TIMEOUT_S = _number("REPORTS_EXTERNAL_TIMEOUT", 10.0)
EXTERNAL_TIMEOUT_MAX_S = 120.0
# "Session with retry strategy": attempts after the first one, with a short backoff.
EXTERNAL_RETRIES = int(_number("REPORTS_EXTERNAL_RETRIES", 3, integer=True))
EXTERNAL_RETRIES_MAX = 5
EXTERNAL_BACKOFF_S = _number("REPORTS_EXTERNAL_BACKOFF", 0.2)

# PDF generation: "Automatic retry (max 3 attempts)" (seed 003).
PDF_MAX_ATTEMPTS = 3

# The Celery queue both sides use.
QUEUE = os.environ.get("REPORTS_QUEUE", "reports")
# How long Celery's result backend keeps a result, and a finished job's cached status.
RESULT_EXPIRES_S = 3600
