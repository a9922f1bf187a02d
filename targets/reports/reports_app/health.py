"""Health checks: each service's check ends within that service's timeout (plus a second of
grace for a client that ignores its own), and `overall()` runs them side by side, so a hung
service never stalls the report.

`ping_*` raise (ConnectionTimeoutError when a service does not answer in time,
ServiceUnavailableError when it refuses); `check_*` and `overall()` never raise, they report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from reports_app import config
from reports_app.errors import ConnectionTimeoutError

GRACE_S = 1.0


def ping_redis() -> bool:
    """The web side's Redis client (rate limiting): one PING."""
    from reports_app import redis_client

    return redis_client.ping()


def ping_database() -> bool:
    """SELECT 1 on the job records' database."""
    from reports_app import database

    return database.ping()


def ping_broker() -> bool:
    """The task queue: a connection to Celery's broker and a PING."""
    from reports_app import tasks

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
    thread.join(timeout_s + GRACE_S)
    elapsed = time.perf_counter() - started
    if thread.is_alive() or "status" not in outcome:
        error = ConnectionTimeoutError(f"{name} did not answer within {timeout_s + GRACE_S:g}s")
        outcome = {"status": "down", "error": f"{type(error).__name__}: {error}"}
    return {**outcome, "latency_ms": round(elapsed * 1000, 1)}


CHECKS: dict[str, tuple[Callable[[], bool], float]] = {
    "redis": (ping_redis, config.REDIS_TIMEOUT_S),
    "database": (ping_database, config.DATABASE_TIMEOUT_S),
}


def overall() -> dict[str, Any]:
    """{"status": "healthy" | "degraded", "services": {name: {"status": "up" | "down", ...}}}:
    healthy only when every service answers. Ends within the slowest timeout plus 2 s."""
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, ping: Callable[[], bool], timeout_s: float) -> None:
        results[name] = _check(name, ping, timeout_s)

    threads = [
        threading.Thread(target=run, args=(name, *check), name=f"health-{name}", daemon=True)
        for name, check in CHECKS.items()
    ]
    for thread in threads:
        thread.start()
    deadline = started + max(t for _, t in CHECKS.values()) + 2 * GRACE_S
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
