"""The Celery app and its tasks, created lazily (the fix summary's LazyCeleryApp).

Importing this module imports neither Celery nor redis-py and connects to nothing ("core.tasks
import time: 0.001s (was 5.003s hanging)"). The app is made by `get_celery_app()` on first use;
`celery_app` is a proxy that makes it on first attribute access; `celery -A core.tasks worker`
finds it as `core.tasks.app` (a module attribute resolved on access, PEP 562).

The broker is Redis, with the timeouts of core.config on every socket and no silent retries: a
publish against a Redis that does not answer fails in REDIS_TIMEOUT_S. Results are not kept in
Celery: a transcription's state is its Transcript row in Postgres, written by the worker. (Celery's
Redis result backend subscribes to every queued task's result before publishing it, and retries
that subscription 20 times by default: ~19 s against a Redis that is down, twice the socket
timeout against a hung one, measured here.)
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import config
from core.exceptions import ConnectionTimeoutError, FileError, ServiceUnavailableError

if TYPE_CHECKING:
    from celery import Celery

TRANSCRIBE = "core.tasks.transcribe"

_app: Celery | None = None
_lock = threading.RLock()


def redis_transport_options() -> dict[str, Any]:
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


def _create_celery_app() -> Celery:
    from celery import Celery

    app = Celery("archivist", broker=config.REDIS_URL, set_as_current=False)
    app.conf.update(
        broker_connection_timeout=config.REDIS_TIMEOUT_S,
        broker_connection_retry=False,
        broker_connection_retry_on_startup=True,  # the worker's own start, not a request
        broker_connection_max_retries=1,  # 0 would mean "for ever" to Celery
        broker_transport_options=redis_transport_options(),
        task_publish_retry=False,
        task_ignore_result=True,
        task_default_queue=config.TRANSCRIPTION_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    app.task(name=TRANSCRIBE, bind=True, ignore_result=True)(_transcribe)
    return app


def get_celery_app() -> Celery:
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = _create_celery_app()
    return _app


class LazyCeleryApp:
    """Stands in for the Celery app; the first attribute access creates it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_celery_app(), name)

    def __repr__(self) -> str:
        return f"<LazyCeleryApp ({'created' if _app is not None else 'not created yet'})>"


celery_app = LazyCeleryApp()


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):  # what `celery -A core.tasks` looks for
        return get_celery_app()
    if name == "transcribe":
        return get_celery_app().tasks[TRANSCRIBE]
    raise AttributeError(f"module 'core.tasks' has no attribute {name!r}")


# --- the work ---------------------------------------------------------------------------------


def transcribe_media(media_path: str) -> dict[str, Any]:
    """The work itself. (The real service runs Whisper; this stand-in reads the file and
    reports what a transcript would be built from.)"""
    path = media_path if os.path.isabs(media_path) else os.path.join(config.MEDIA_ROOT, media_path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from exc
    return {
        "path": path,
        "bytes": size,
        "language": "en",
        "text": f"[transcript of {os.path.basename(path)}, {size} bytes]",
    }


def record_transcript(task_id: str, path: str, status: str, text: str, language: str = "") -> None:
    """Store a transcription's outcome (and its media item, first seen) in Postgres."""
    from sqlalchemy import select

    from core import database, models

    database.init_db()
    with database.session_scope() as session:
        item = session.scalar(select(models.MediaItem).where(models.MediaItem.path == path))
        if item is None:
            item = models.MediaItem(path=path, title=os.path.basename(path))
            session.add(item)
        transcript = session.scalar(
            select(models.Transcript).where(models.Transcript.task_id == task_id)
        )
        if transcript is None:
            transcript = models.Transcript(task_id=task_id, media_item=item)
            session.add(transcript)
        transcript.status = models.JobStatus(status)
        transcript.language = language or None
        transcript.text = text
        transcript.completed_at = datetime.now(UTC)


def _transcribe(self: Any, media_path: str) -> dict[str, Any]:
    task_id = str(self.request.id)
    try:
        result = transcribe_media(media_path)
    except FileError as exc:
        record_transcript(task_id, media_path, "failed", str(exc))
        raise
    record_transcript(task_id, result["path"], "done", result["text"], result["language"])
    return result


# --- what the web side calls --------------------------------------------------------------------


def _broker_error(exc: BaseException) -> ServiceUnavailableError:
    text = f"{type(exc).__name__}: {exc}"
    if "timeout" in text.lower() or "timed out" in text.lower():
        return ConnectionTimeoutError(
            f"the task queue (redis) did not answer within {config.REDIS_TIMEOUT_S:g}s: {text}",
            "redis",
        )
    return ServiceUnavailableError(f"the task queue (redis) is unavailable: {text}", "redis")


def enqueue_transcription(media_path: str) -> str:
    """Queue a transcription; its task id. ServiceUnavailableError (ConnectionTimeoutError)
    if the broker refuses (does not answer within REDIS_TIMEOUT_S)."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    try:
        result = get_celery_app().send_task(
            TRANSCRIBE, args=[media_path], retry=False, ignore_result=True
        )
    except (OperationalError, RedisError, OSError) as exc:
        raise _broker_error(exc) from exc
    return str(result.id)


def task_state(task_id: str) -> str:
    """ "queued" until the worker has recorded an outcome, then "done" or "failed"."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import select

    from core import database, models

    try:
        with database.session_scope() as session:
            status = session.scalar(
                select(models.Transcript.status).where(models.Transcript.task_id == task_id)
            )
    except sa_exc.ProgrammingError:  # no tables yet: nothing was ever transcribed
        return models.JobStatus.QUEUED.value
    except sa_exc.SQLAlchemyError as exc:
        raise database.translate(exc) from exc
    return (status or models.JobStatus.QUEUED).value


def check_broker() -> bool:
    """One connection to the broker and a PING, bounded by REDIS_TIMEOUT_S, no retries."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    try:
        with get_celery_app().connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=config.REDIS_TIMEOUT_S)
            conn.default_channel.client.ping()
    except (OperationalError, RedisError, OSError) as exc:
        raise _broker_error(exc) from exc
    return True
