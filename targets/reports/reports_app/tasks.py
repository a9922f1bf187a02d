"""The Celery side: the worker's app and its two tasks, and the web side's publisher.

Importing this module imports no Celery and connects nowhere; the apps are made on first use.
`celery -A reports_app.tasks worker` finds the worker's app as `reports_app.tasks.app` (a
module attribute resolved on access, PEP 562).

Two apps on the same broker (Redis, REDIS_URL), on purpose:
- the WORKER's app has Redis as its result backend too (results expire after an hour) and
  reconnects to the broker for as long as it takes after Redis restarts;
- the web side's PUBLISHER has no result backend and never retries: a publish against a Redis
  that does not answer fails within REDIS_TIMEOUT_S, and the request gets a 503. (With a Redis
  result backend, Celery subscribes to each task's result channel before publishing it, and
  retries that subscription about 20 times against a Redis that is down: ~19 s, measured on the
  archivist target. The web side never waits on a result: a job's status is its record.)
The Celery task id is the job's id, so the result backend's key is the job's too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from reports_app import config
from reports_app.errors import ConnectionTimeoutError, ServiceUnavailableError

if TYPE_CHECKING:
    from celery import Celery

PDF_TASK = "reports.generate_pdf"
FETCH_TASK = "reports.fetch_external"

log = logging.getLogger("reports.tasks")

_worker_app: Celery | None = None
_publisher: Celery | None = None
_lock = threading.RLock()


def publisher_transport_options() -> dict[str, Any]:
    timeout = config.REDIS_TIMEOUT_S
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry_on_timeout": False,
        # kombu's own reconnect loop when a channel is first needed: one attempt only
        "max_retries": 0,
        "interval_start": 0,
        "interval_step": 0,
        "interval_max": 0,
        "health_check_interval": 30,
    }


def _common(app: Celery) -> None:
    app.conf.update(
        task_default_queue=config.QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
    )


def _create_worker_app() -> Celery:
    from celery import Celery
    from celery.signals import worker_ready

    app = Celery("reports", broker=config.REDIS_URL, backend=config.REDIS_URL, set_as_current=False)
    _common(app)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=config.REDIS_TIMEOUT_S,
        # the worker polls with BRPOP (1 s): its socket timeout must be longer than that
        broker_transport_options={
            "socket_connect_timeout": config.REDIS_TIMEOUT_S,
            "socket_timeout": 10.0,
            "health_check_interval": 30,
        },
        redis_socket_connect_timeout=config.REDIS_TIMEOUT_S,
        redis_socket_timeout=10.0,
        result_expires=config.RESULT_EXPIRES_S,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # a job running when the broker connection drops is redelivered (its ack is lost anyway)
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
    )
    app.task(name=PDF_TASK, bind=True, max_retries=config.PDF_MAX_ATTEMPTS - 1)(_generate_pdf)
    app.task(name=FETCH_TASK, bind=True, max_retries=0)(_fetch_external)
    worker_ready.connect(_warm_up_worker, weak=False)
    return app


def _create_publisher() -> Celery:
    from celery import Celery

    app = Celery("reports-web", broker=config.REDIS_URL, set_as_current=False)
    _common(app)
    app.conf.update(
        broker_connection_timeout=config.REDIS_TIMEOUT_S,
        broker_connection_retry=False,
        broker_connection_max_retries=1,  # 0 would mean "for ever" to Celery
        broker_transport_options=publisher_transport_options(),
        broker_pool_limit=64,
        task_publish_retry=False,
    )
    return app


def get_worker_app() -> Celery:
    global _worker_app
    with _lock:
        if _worker_app is None:
            _worker_app = _create_worker_app()
        return _worker_app


def get_publisher() -> Celery:
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = _create_publisher()
        return _publisher


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):  # what `celery -A reports_app.tasks` looks for
        return get_worker_app()
    raise AttributeError(f"module 'reports_app.tasks' has no attribute {name!r}")


# --- the web side --------------------------------------------------------------------------------


def _broker_error(exc: BaseException) -> ServiceUnavailableError:
    text = f"{type(exc).__name__}: {exc}"
    if "timeout" in text.lower() or "timed out" in text.lower():
        return ConnectionTimeoutError(
            f"the task queue (redis) did not answer within {config.REDIS_TIMEOUT_S:g}s: {text}",
            "redis",
        )
    return ServiceUnavailableError(f"the task queue (redis) is unavailable: {text}", "redis")


def enqueue(task: str, job_id: str) -> None:
    """Publish `task` for the job (task id = job id). ServiceUnavailableError
    (ConnectionTimeoutError) if the broker refuses (does not answer within REDIS_TIMEOUT_S)."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    try:
        get_publisher().send_task(task, args=[job_id], task_id=job_id, retry=False)
    except (OperationalError, RedisError, OSError) as exc:
        raise _broker_error(exc) from exc


def check_broker() -> bool:
    """One connection to the broker and a PING, bounded by REDIS_TIMEOUT_S, no retries."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    try:
        with get_publisher().connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=config.REDIS_TIMEOUT_S)
            conn.default_channel.client.ping()
    except (OperationalError, RedisError, OSError) as exc:
        raise _broker_error(exc) from exc
    return True


def warm_up_publisher() -> None:
    """Open the publisher's pooled broker connection now (the first job then costs no connect).
    Raises ServiceUnavailableError like `enqueue`."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    try:
        app = get_publisher()
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0, timeout=config.REDIS_TIMEOUT_S)
            producer.channel.client.ping()
    except (OperationalError, RedisError, OSError) as exc:
        raise _broker_error(exc) from exc


# --- the worker side ----------------------------------------------------------------------------


def _warm_up_worker(**_: Any) -> None:
    """Once the worker is ready: import fpdf2 and create the tables, so that the first job
    costs neither. A service that is down is only logged: the jobs will say so."""
    try:
        import fpdf  # noqa: F401

        from reports_app import database

        database.init_db()
    except Exception as exc:
        log.warning("warm-up: %s: %s", type(exc).__name__, exc)


def _generate_pdf(self: Any, job_id: str) -> dict[str, Any]:
    from reports_app import jobs, pdf

    job = jobs.mark_running(job_id)
    if job is None:
        return {"already": "complete"}
    params = job["params"]
    started = time.perf_counter()
    try:
        rendered = pdf.render_report(
            str(params["report"]), int(params["rows"]), job_id, job["user"]
        )
    except Exception as exc:
        problem = f"attempt {job['attempts']}: {type(exc).__name__}: {exc}"
        if job["attempts"] < config.PDF_MAX_ATTEMPTS:
            jobs.mark_failed(job_id, problem, final=False)
            raise self.retry(exc=exc, countdown=1) from exc
        jobs.mark_failed(job_id, problem)
        raise
    result = {
        "report": params["report"],
        "pages": rendered.pages,
        "bytes": len(rendered.content),
        "sha256": rendered.sha256,
        "render_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    jobs.mark_complete(job_id, result, (rendered.content, rendered.filename, "application/pdf"))
    return result


def _fetch_external(self: Any, job_id: str) -> dict[str, Any]:
    from reports_app import external, jobs
    from reports_app.errors import ExternalAPIError

    job = jobs.mark_running(job_id)
    if job is None:
        return {"already": "complete"}
    params = job["params"]
    fetch = external.FetchPlan(
        str(params["path"]), float(params["timeout_s"]), int(params["retries"])
    )
    try:
        result = external.call(fetch)
    except ExternalAPIError as exc:
        jobs.mark_failed(job_id, str(exc))
        raise
    jobs.mark_complete(job_id, result)
    return result
