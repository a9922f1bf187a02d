"""Archivist core: the media archive's models, task queue, services and admin UI.

Importing `core` imports nothing but importlib and typing, and connects to nothing
(the fix summary: "core import time: 0.001s"). Every name below is resolved on first use, by the
module `__getattr__` (PEP 562): `core.get_celery_app`, `core.MEMBER_CITIES`, ... import their
module then, and only then.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "1.0"

# exported name -> "module:attribute", imported on first access
_LAZY: dict[str, str] = {
    # settings
    "MEMBER_CITIES": "core.config:MEMBER_CITIES",
    # exceptions
    "ArchivistException": "core.exceptions:ArchivistException",
    "ConfigurationError": "core.exceptions:ConfigurationError",
    "ConnectionTimeoutError": "core.exceptions:ConnectionTimeoutError",
    "DatabaseError": "core.exceptions:DatabaseError",
    "FileError": "core.exceptions:FileError",
    "ServiceUnavailableError": "core.exceptions:ServiceUnavailableError",
    "TranscriptionError": "core.exceptions:TranscriptionError",
    "ValidationError": "core.exceptions:ValidationError",
    # models
    "Base": "core.models:Base",
    "MediaItem": "core.models:MediaItem",
    "Transcript": "core.models:Transcript",
    # lazy getters of the heavy parts
    "get_admin_ui": "core.lazy_imports:get_admin_ui",
    "get_celery_app": "core.lazy_imports:get_celery_app",
    "get_engine": "core.lazy_imports:get_engine",
    "get_health_report": "core.lazy_imports:get_health_report",
    "get_transcription_service": "core.lazy_imports:get_transcription_service",
    # the Celery app behind a proxy that creates it on first attribute access
    "celery_app": "core.tasks:celery_app",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    ref = _LAZY.get(name)
    if ref is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    module, _, attr = ref.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
