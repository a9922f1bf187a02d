"""Health checks: each service's check ends within that service's timeout, and `overall()`
runs them side by side under one deadline, so a hung service never stalls the report.

`ping_*` raise (ConnectionTimeoutError when a service does not answer in time,
ServiceUnavailableError when it refuses); `check_*` and `overall()` never raise, they report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from core import config
from core.exceptions import ConnectionTimeoutError

# a check whose client ignores its own timeout is abandoned this long after it
_GRACE_S = 1.0


def ping_redis() -> bool:
    from core import redis_client

    return redis_client.ping()


def ping_database() -> bool:
    from core import database

    return database.ping()


def ping_broker() -> bool:
    from core import tasks

    return tasks.check_broker()


def _check(name: str, ping: Callable[[], bool], timeout_s: float) -> dict[str, Any]:
    """Run `ping` in a daemon thread; report within timeout_s + grace whatever it does."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            ping()
            outcome["status"] = "up"
        except Exception as exc:
            outcome["status"] = "down"
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    started = time.perf_counter()
    thread = threading.Thread(target=run, name=f"health-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s + _GRACE_S)
    elapsed = time.perf_counter() - started
    if thread.is_alive():
        error = ConnectionTimeoutError(f"{name} did not answer within {timeout_s + _GRACE_S:g}s")
        outcome = {"status": "down", "error": f"{type(error).__name__}: {error}"}
    return {**outcome, "latency_ms": round(elapsed * 1000, 1)}


def check_redis() -> dict[str, Any]:
    return _check("redis", ping_redis, config.REDIS_TIMEOUT_S)


def check_database() -> dict[str, Any]:
    return _check("database", ping_database, config.DATABASE_TIMEOUT_S)


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "redis": check_redis,
    "database": check_database,
}


def overall() -> dict[str, Any]:
    """{"status": "healthy" | "degraded", "services": {name: {"status": "up" | "down", ...}}}:
    healthy only when every service answers."""
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, check: Callable[[], dict[str, Any]]) -> None:
        results[name] = check()

    threads = [
        threading.Thread(target=run, args=(name, check), name=f"health-{name}", daemon=True)
        for name, check in CHECKS.items()
    ]
    for thread in threads:
        thread.start()
    deadline = started + max(config.REDIS_TIMEOUT_S, config.DATABASE_TIMEOUT_S) + 2 * _GRACE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    services = {
        name: results.get(name, {"status": "down", "error": "no answer in time"}) for name in CHECKS
    }
    healthy = all(s["status"] == "up" for s in services.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "services": services,
        "checked_in_ms": round((time.perf_counter() - started) * 1000, 1),
    }
