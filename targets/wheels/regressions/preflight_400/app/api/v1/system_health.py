"""The seed's System Health API, under /api/v1/system:

    GET  /health              overall health: "healthy", or "degraded" with what is down
    GET  /performance/report  a performance report (kept in the monitor's history)
    GET  /monitoring/status   the optimizer, the websocket manager and the cache
    POST /memory/optimize     a manual cleanup (?tier=warning|critical|emergency)
    POST /cache/clear         clear_expired (and, with ?all=true, every entry)

Endpoints that wait on Redis or Postgres are plain functions (FastAPI runs them in its thread
pool), so a slow service never stalls the event loop; each wait is bounded by SERVICE_TIMEOUT.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from app.core import database
from app.core.exceptions import ServiceUnavailableError
from app.core.performance_monitor import performance_monitor
from app.core.redis_client import get_redis
from app.core.websocket_manager import manager
from app.monitoring.memory_optimizer import TIERS, memory_optimizer
from app.services.cache_service import cache_service

router = APIRouter()


def _check(name: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        if name == "redis":
            get_redis().ping()
        else:
            database.ping()
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"}
    return {"status": "up", "latency_ms": round(1000 * (time.perf_counter() - started), 2)}


@router.get("/health")
def health() -> dict[str, Any]:
    services = {name: _check(name) for name in ("redis", "database")}
    healthy = all(s["status"] == "up" for s in services.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "services": services,
        "memory": memory_optimizer.usage(),
        "websocket": {"connections": len(manager.connections)},
        "timestamp": time.time(),
    }


@router.get("/performance/report")
async def performance_report(hours: float = Query(6.0, gt=0, le=24 * 30)) -> dict[str, Any]:
    # async: built on the event loop's thread, so its large blocks come from the main heap
    return performance_monitor.build_report(hours, memory_optimizer.usage())


@router.get("/monitoring/status")
def monitoring_status() -> dict[str, Any]:
    return {
        "memory_optimizer": memory_optimizer.status(),
        "performance": {
            "reports_kept": len(performance_monitor.history),
            "history_bytes": performance_monitor.history_bytes(),
        },
        "websocket": manager.stats(),
        "cache": cache_service.stats(),
    }


@router.post("/memory/optimize")
def optimize_memory(tier: str = Query("critical")) -> Any:
    if tier not in TIERS:
        return JSONResponse(
            {"error": f"tier {tier!r}: expected one of {', '.join(TIERS)}"}, status_code=422
        )
    return memory_optimizer.optimize(tier)


@router.post("/cache/clear")
def clear_cache(all: bool = Query(False)) -> Any:
    try:
        removed = cache_service.clear_expired()
        cleared = cache_service.clear() if all else 0
    except ServiceUnavailableError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    return {"status": "ok", "expired_removed": removed, "cleared": cleared}
