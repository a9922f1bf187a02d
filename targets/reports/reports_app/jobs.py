"""Starting jobs and keeping their records: what the web side and the worker both call.

A job is started by writing its record (status "pending") in Postgres and committing, then
publishing its Celery task, whose id is the job's id; the request returns at once with that id.
The worker moves the record to "running", then "complete" (with its result, and its PDF in
report_files) or "failed" (with the error). The status endpoint reads the record, so a job's
status never depends on Redis, only on Postgres. Job records are scoped to their user.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from reports_app.errors import InvalidRequestError, JobNotFoundError, ServiceUnavailableError

ANONYMOUS = "anonymous"
MAX_USER = 128


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def user_of(header: str | None) -> str:
    """The user a request is made for (the X-User header; "anonymous" without one)."""
    user = (header or "").strip()
    if not user:
        return ANONYMOUS
    if len(user) > MAX_USER or not user.isprintable():
        raise InvalidRequestError(f"X-User: expected at most {MAX_USER} printable characters")
    return user


# --- records ----------------------------------------------------------------------------------


def create(kind: str, user: str, params: dict[str, Any]) -> str:
    """A new pending job's id (committed before it is returned)."""
    from reports_app import database, models

    job_id = str(uuid.uuid4())
    with database.session_scope() as session:
        session.add(
            models.ReportJob(
                id=job_id,
                kind=kind,
                status=models.PENDING,
                user_id=user,
                params=params,
                attempts=0,
                created_at=_now(),
            )
        )
    return job_id


def mark_running(job_id: str) -> dict[str, Any] | None:
    """Count an attempt and mark the job running; its kind, user and params. None when the job
    is already complete (a message delivered again after the worker restarted)."""
    from reports_app import database, models

    with database.session_scope() as session:
        job = session.get(models.ReportJob, job_id, with_for_update=True)
        if job is None:
            raise JobNotFoundError(f"no job {job_id}")
        if job.status == models.COMPLETE:
            return None
        job.status = models.RUNNING
        job.attempts += 1
        job.error = None
        job.started_at = job.started_at or _now()
        return {
            "kind": job.kind,
            "user": job.user_id,
            "params": dict(job.params),
            "attempts": job.attempts,
        }


def mark_complete(
    job_id: str,
    result: dict[str, Any],
    file: tuple[bytes, str, str] | None = None,
) -> None:
    """The job is done: its result, and the file (content, filename, content type) it made."""
    from reports_app import database, models

    with database.session_scope() as session:
        job = session.get(models.ReportJob, job_id, with_for_update=True)
        if job is None:
            raise JobNotFoundError(f"no job {job_id}")
        now = _now()
        if file is not None:
            content, filename, content_type = file
            session.merge(
                models.ReportFile(
                    job_id=job_id,
                    filename=filename,
                    content_type=content_type,
                    size=len(content),
                    sha256=hashlib.sha256(content).hexdigest(),
                    content=content,
                    created_at=now,
                )
            )
        job.status = models.COMPLETE
        job.result = result
        job.error = None
        job.finished_at = now


def mark_failed(job_id: str, error: str, *, final: bool = True) -> None:
    """An attempt failed: the job is failed (`final`), or pending again for a retry."""
    from reports_app import database, models

    with database.session_scope() as session:
        job = session.get(models.ReportJob, job_id, with_for_update=True)
        if job is None:
            return
        job.status = models.FAILED if final else models.PENDING
        job.error = error[:2000]
        if final:
            job.finished_at = _now()


def status(job_id: str, user: str) -> dict[str, Any]:
    """The job's public record. JobNotFoundError for an unknown id or another user's job."""
    from reports_app import database, models

    try:
        uuid.UUID(job_id)
    except ValueError:
        raise JobNotFoundError(f"no job {job_id!r}") from None
    with database.session_scope() as session:
        job = session.get(models.ReportJob, job_id)
        if job is None or job.user_id != user:
            raise JobNotFoundError(f"no job {job_id}")
        view: dict[str, Any] = {
            "task_id": job.id,
            "kind": job.kind,
            "status": job.status,
            "attempts": job.attempts,
            "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at),
            "finished_at": _iso(job.finished_at),
            "result": job.result,
            "error": job.error,
        }
    if view["kind"] == models.PDF and view["status"] == models.COMPLETE:
        view["download"] = f"/reports/{job_id}/pdf"
    return view


def file_of(job_id: str, user: str) -> tuple[bytes, str, str]:
    """The PDF a complete job made: (content, filename, content type)."""
    from reports_app import database, models

    status(job_id, user)  # unknown or another user's: JobNotFoundError
    with database.session_scope() as session:
        row = session.get(models.ReportFile, job_id)
        if row is None:
            raise JobNotFoundError(f"job {job_id} has no file (yet)")
        return bytes(row.content), row.filename, row.content_type


# --- starting jobs ------------------------------------------------------------------------------


def _start(kind: str, task: str, user: str, params: dict[str, Any]) -> dict[str, Any]:
    from reports_app import tasks

    job_id = create(kind, user, params)
    try:
        tasks.enqueue(task, job_id)
    except ServiceUnavailableError as exc:
        # the record says why the job never ran; the caller gets a 503
        with contextlib.suppress(Exception):  # the queue's error is the one to report
            mark_failed(job_id, f"could not be queued: {exc}")
        raise
    return {"task_id": job_id, "kind": kind, "status": "pending", "status_url": f"/tasks/{job_id}"}


def start_pdf(report: str, rows: int, user: str) -> dict[str, Any]:
    """Start a PDF job ("Returns immediately (<100ms)", seed 003)."""
    from reports_app import pdf, tasks

    if report not in pdf.REPORTS:
        raise InvalidRequestError(f"report: expected one of {', '.join(sorted(pdf.REPORTS))}")
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= pdf.MAX_ROWS:
        raise InvalidRequestError(f"rows: expected 1 to {pdf.MAX_ROWS}")
    return _start("pdf", tasks.PDF_TASK, user, {"report": report, "rows": rows})


def start_fetch(path: object, timeout: object, retries: object, user: str) -> dict[str, Any]:
    """Start an external-API job, rate limited per URL and user ("100 req/hour per URL/user")."""
    from reports_app import external, ratelimit, tasks

    fetch = external.plan(path, timeout, retries)
    ratelimit.check(fetch.path, user)
    params = {"path": fetch.path, "timeout_s": fetch.timeout_s, "retries": fetch.retries}
    return _start("fetch", tasks.FETCH_TASK, user, params)
