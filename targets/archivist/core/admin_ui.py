"""The admin UI's HTTP API (Flask), built by an app factory on first use.

Importing this module imports neither Flask nor the rest of `core` ("core.admin_ui import time:
0.004s"): names come from their own modules (core.config, core.lazy_imports), never from the
`core` package itself, so there is no admin_ui <-> core import cycle. `core.admin_ui.app` (what
a WSGI server is given) creates the app on first access (PEP 562 module attribute).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from core.config import MEMBER_CITIES
from core.exceptions import FileError, ServiceUnavailableError, ValidationError
from core.lazy_imports import get_health_report, get_transcription_service

if TYPE_CHECKING:
    from flask import Flask
    from flask.typing import ResponseReturnValue

_app: Flask | None = None
_lock = threading.Lock()


def create_app() -> Flask:
    from flask import Flask, jsonify, request

    app = Flask("core.admin_ui")
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.get("/health")
    def health() -> ResponseReturnValue:
        report = get_health_report()
        return jsonify(report), 200 if report["status"] == "healthy" else 503

    @app.get("/health/<service>")
    def health_of(service: str) -> ResponseReturnValue:
        from core import health_check

        check = health_check.CHECKS.get(service)
        if check is None:
            return jsonify(error=f"no such service: {service}"), 404
        result = check()
        return jsonify(result), 200 if result["status"] == "up" else 503

    @app.get("/api/member-cities")
    def member_cities() -> ResponseReturnValue:
        return jsonify(MEMBER_CITIES)

    @app.post("/api/transcriptions")
    def transcribe() -> ResponseReturnValue:
        body: Any = request.get_json(silent=True) or {}
        path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            raise ValidationError('expected a JSON body like {"path": "BRK/2024-05-01.mp4"}')
        task_id = get_transcription_service().transcribe_file(path)
        return jsonify(task_id=task_id, status="queued"), 202

    @app.get("/api/transcriptions/<task_id>")
    def transcription(task_id: str) -> ResponseReturnValue:
        state = get_transcription_service().job_status(task_id)
        return jsonify(task_id=task_id, state=state)

    @app.errorhandler(ServiceUnavailableError)
    def unavailable(exc: ServiceUnavailableError) -> ResponseReturnValue:
        return jsonify(error=str(exc), service=exc.service), 503

    @app.errorhandler(ValidationError)
    def invalid(exc: ValidationError) -> ResponseReturnValue:
        return jsonify(error=str(exc)), 400

    @app.errorhandler(FileError)
    def missing(exc: FileError) -> ResponseReturnValue:
        return jsonify(error=str(exc)), 404

    return app


def get_app() -> Flask:
    global _app
    with _lock:
        if _app is None:
            _app = create_app()
        return _app


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(f"module 'core.admin_ui' has no attribute {name!r}")
