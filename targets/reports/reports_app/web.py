"""The HTTP app (FastAPI, ASGI): `reports_app.web:app`.

- POST /reports/pdf {"report": "monthly", "rows": 60} -> 202 {"task_id", "status": "pending", ...}
  at once ("Returns immediately (<100ms)", seed 003); the worker makes the PDF.
- POST /external/fetch {"path": "/rates", "timeout": 10, "retries": 3} -> 202 {"task_id", ...};
  rate limited: 100 requests an hour per URL and user (X-User), then 429 with Retry-After.
- GET /tasks/{task_id} -> the job's record: {"status": "pending" | "running" | "complete" |
  "failed", "result", "error", ...}; 404 for an unknown id or another user's job.
- GET /reports/{task_id}/pdf -> the PDF of a complete job (application/pdf).
- GET /health -> 200 {"status": "healthy"} or 503 {"status": "degraded"}, per service.

Importing this module imports FastAPI only: no SQLAlchemy, redis-py or Celery, and it connects
nowhere. Those come on the app's start-up (the lifespan warms them up, bounded by the services'
timeouts, so that the first request pays no import or connect) or on first use. The endpoints
are plain functions: FastAPI runs them in its thread pool, so a slow service holds a thread,
never the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from reports_app import jobs
from reports_app.errors import (
    ConnectionTimeoutError,
    InvalidRequestError,
    JobNotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
)

log = logging.getLogger("reports.web")


def warm_up() -> dict[str, str]:
    """Import what the endpoints use and open their connections: the tables, a pooled database
    connection, the rate limiter's script, the publisher's broker connection. A service that is
    down is only reported (the app still starts, and /health says what is down)."""
    done: dict[str, str] = {}
    steps = {
        "database": _warm_database,
        "redis": _warm_redis,
        "broker": _warm_broker,
    }
    for name, step in steps.items():
        try:
            step()
            done[name] = "ready"
        except Exception as exc:
            done[name] = f"{type(exc).__name__}: {exc}"
            log.warning("warm-up of %s failed: %s", name, done[name])
    return done


def _warm_database() -> None:
    from reports_app import database, models  # noqa: F401

    database.init_db()
    database.ping()


def _warm_redis() -> None:
    from reports_app import ratelimit, redis_client

    redis_client.ping()
    script = ratelimit.get_script()
    redis_client.get_client().script_load(script.script)


def _warm_broker() -> None:
    from reports_app import tasks

    tasks.warm_up_publisher()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await run_in_threadpool(warm_up)
    yield


app = FastAPI(title="reports", version="1.0", lifespan=lifespan)


class PdfRequest(BaseModel):
    report: str = "monthly"
    rows: int = Field(default=60, ge=1, le=5000)


class FetchRequest(BaseModel):
    path: str
    timeout: float | None = None
    retries: int | None = None


UserHeader = Annotated[str | None, Header(alias="X-User")]


@app.exception_handler(RateLimitedError)
def _rate_limited(_: Request, exc: RateLimitedError) -> JSONResponse:
    return JSONResponse(
        {"error": "rate_limited", "detail": str(exc)},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


@app.exception_handler(ServiceUnavailableError)
def _unavailable(_: Request, exc: ServiceUnavailableError) -> JSONResponse:
    kind = "timeout" if isinstance(exc, ConnectionTimeoutError) else "unavailable"
    return JSONResponse(
        {
            "error": "service_unavailable",
            "service": exc.service,
            "reason": kind,
            "detail": str(exc),
        },
        status_code=503,
        headers={"Retry-After": "5"},
    )


@app.exception_handler(InvalidRequestError)
def _invalid(_: Request, exc: InvalidRequestError) -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "detail": str(exc)}, status_code=400)


@app.exception_handler(JobNotFoundError)
def _not_found(_: Request, exc: JobNotFoundError) -> JSONResponse:
    return JSONResponse({"error": "not_found", "status": "unknown", "detail": str(exc)}, 404)


@app.post("/reports/pdf", status_code=202)
def start_pdf(body: PdfRequest, x_user: UserHeader = None) -> dict[str, Any]:
    return jobs.start_pdf(body.report, body.rows, jobs.user_of(x_user))


@app.post("/external/fetch", status_code=202)
def start_fetch(body: FetchRequest, x_user: UserHeader = None) -> dict[str, Any]:
    return jobs.start_fetch(body.path, body.timeout, body.retries, jobs.user_of(x_user))


@app.get("/tasks/{task_id}")
def task_status(task_id: str, x_user: UserHeader = None) -> dict[str, Any]:
    return jobs.status(task_id, jobs.user_of(x_user))


@app.get("/reports/{task_id}/pdf")
def download_pdf(task_id: str, x_user: UserHeader = None) -> Response:
    content, filename, content_type = jobs.file_of(task_id, jobs.user_of(x_user))
    return Response(
        content,
        media_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@app.get("/health")
def health() -> JSONResponse:
    from reports_app import health as checks

    report = checks.overall()
    return JSONResponse(report, status_code=200 if report["status"] == "healthy" else 503)
