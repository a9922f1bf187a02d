"""The Wheels & Wins API: `app.main:app` (FastAPI).

CORS (app.core.cors_config), the System Health API under /api/v1/system, the websocket /ws,
every request timed by the performance monitor, and the memory optimizer checking in the
background from start-up to shutdown, with the monitor's report history as what it cleans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response

from app.api.v1 import system_health, websocket
from app.core import config
from app.core.cors_config import setup_cors
from app.core.performance_monitor import performance_monitor
from app.monitoring.memory_optimizer import memory_optimizer
from app.services.cache_service import cache_service

logger = logging.getLogger("app")


def _clear_expired_cache() -> int:
    return cache_service.clear_expired()


def _register_cleanups() -> None:
    memory_optimizer.register(
        "warning", "performance reports: keep the newest half", performance_monitor.trim_half
    )
    memory_optimizer.register("warning", "cache: clear expired entries", _clear_expired_cache)
    memory_optimizer.register(
        "critical", "performance reports: keep the newest ten", performance_monitor.trim_critical
    )
    memory_optimizer.register("emergency", "performance reports: clear", performance_monitor.clear)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = None
    if config.memory_optimization_enabled():
        task = asyncio.create_task(memory_optimizer.run(stop))
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            await task


def create_app() -> FastAPI:
    application = FastAPI(title="Wheels & Wins API", version="2.0", lifespan=lifespan)
    setup_cors(application)
    application.include_router(system_health.router, prefix="/api/v1/system", tags=["system"])
    application.include_router(websocket.router)

    @application.middleware("http")
    async def timed(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        performance_monitor.record(time.perf_counter() - started)
        return response

    return application


_register_cleanups()
app = create_app()
