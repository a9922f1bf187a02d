"""The WSGI variant (Flask)."""

from __future__ import annotations

import os
import threading

from flask import Flask, Response, jsonify, request

from httpapp.checks import LIMIT, health, redis_ok

app = Flask(__name__)
_lock = threading.Lock()
_seen = {"limited": 0}
_cache: dict[str, tuple[int, dict[str, str]]] = {}
_breaker = {"open": False}


@app.get("/health")
def honest_health() -> tuple[Response, int]:
    status, body = health(redis_ok())
    return jsonify(body), status


@app.get("/always-healthy")
def lying_health() -> tuple[Response, int]:
    redis_ok()  # looks, then says healthy whatever it saw
    return jsonify({"status": "healthy", "redis": "ok"}), 200


@app.get("/cached-health")
def cached_health() -> tuple[Response, int]:
    """The health found by the first request, cached and never refreshed: a hung or dead redis
    goes unnoticed (what "a fault the call never meets proves nothing" is for)."""
    with _lock:
        if "health" not in _cache:
            _cache["health"] = health(redis_ok())
        status, body = _cache["health"]
    return jsonify(body), status


@app.get("/breaker-health")
def breaker_health() -> tuple[Response, int]:
    """Behind a circuit breaker that opens at the first failure and never closes again (no
    half-open try): once open, it says degraded without trying redis."""
    if _breaker["open"]:
        return jsonify({"status": "degraded", "redis": "down", "breaker": "open"}), 503
    ok = redis_ok()
    if not ok:
        _breaker["open"] = True
    status, body = health(ok)
    return jsonify(body), status


@app.get("/limited")
def limited() -> tuple[Response, int]:
    with _lock:
        _seen["limited"] += 1
        count = _seen["limited"]
    if count > LIMIT:
        return jsonify({"error": "rate limited"}), 429
    return jsonify({"count": count}), 200


@app.post("/echo")
def echo() -> tuple[Response, int]:
    response = jsonify({"got": request.get_json(), "nested": {"a": 1, "b": [1, 2]}})
    origin = request.headers.get("Origin")
    if origin == "https://app.example.com":
        response.headers["Access-Control-Allow-Origin"] = origin
    return response, 201


@app.get("/crash")
def crash() -> tuple[Response, int]:
    os._exit(3)
