"""CORS for the API (the seed's "Complete CORS overhaul"): Starlette's CORSMiddleware.

Origins come from CORS_ALLOWED_ORIGINS (comma-separated). Credentials are allowed, so the
origin is never a wildcard: the middleware echoes an allowed origin and sends nothing to
another one. Preflights (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
origin answer 200 with the allow headers, for every API path; the seed's "before" answered 400
because the frontend's Authorization header was not among the allowed ones.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.core import config

ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# what the frontend sends: its Supabase JWT, JSON bodies, and its own request tracing
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "Accept",
    "Origin",
    "X-Requested-With",
    "X-Request-ID",
]
PREFLIGHT_MAX_AGE_S = 600


def cors_options() -> dict[str, Any]:
    origins = config.cors_allowed_origins()
    if "*" in origins:
        raise ValueError(
            "CORS_ALLOWED_ORIGINS: a wildcard origin cannot go with credentials; list the origins"
        )
    return {
        "allow_origins": origins,
        "allow_credentials": True,
        "allow_methods": ALLOWED_METHODS,
        "allow_headers": ALLOWED_HEADERS,
        "expose_headers": ["X-Request-ID"],
        "max_age": PREFLIGHT_MAX_AGE_S,
    }


def setup_cors(app: FastAPI) -> None:
    app.add_middleware(CORSMiddleware, **cors_options())
