"""Lazy loading helpers: heavy modules (SQLAlchemy, Celery, Flask, redis-py) are imported the
first time something needs them, never when `core` is imported.

`resolve("pkg.mod:attr.sub")` imports a module and walks attributes; the `get_*` functions are
the getters the rest of the code base (and `core` itself) exports: each imports its module on
the first call. (The Celery app's own stand-in, `LazyCeleryApp`, lives in core.tasks.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery
    from flask import Flask
    from sqlalchemy.engine import Engine

    from core.services import MockTranscriptionService, TranscriptionService


def resolve(ref: str) -> Any:
    """The object named "package.module:attr.sub" (or a module, without ":")."""
    module_name, _, path = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in path.split(".") if path else ():
        obj = getattr(obj, part)
    return obj


def get_celery_app() -> Celery:
    from core.tasks import get_celery_app as getter

    return getter()


def get_engine() -> Engine:
    from core.database import get_engine as getter

    return getter()


def get_transcription_service() -> TranscriptionService | MockTranscriptionService:
    from core.services import get_transcription_service as getter

    return getter()


def get_admin_ui() -> Flask:
    from core.admin_ui import get_app

    return get_app()


def get_health_report() -> dict[str, Any]:
    from core.health_check import overall

    return overall()
