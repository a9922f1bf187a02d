"""A plain ASGI app whose latency and memory are known, for [[load]] tests.

- GET /health: 200.
- GET /near: a uniform 101-105 ms delay (true p95 about 104.8 ms).
- GET /tail: 3 requests in every 100 take 400 ms, the others 5 ms (p95 5 ms, p99 400 ms).
- GET /fast: at once.
- GET /slow: a uniform 0.5-1.5 s delay (requests still in flight when Locust stops).
- GET /leak: keeps 1 MiB per request for ever; GET /noleak: the same work, kept for nothing.
- POST /jobs: starts a job ({"task_id": ...}); GET /jobs/{id}: {"status": "running"} for 300 ms,
  then {"status": "complete"}.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MIB = 1 << 20
JOB_SECONDS = 0.3
_kept: list[bytes] = []
_jobs: dict[str, float] = {}
_tail = itertools.count()


async def _answer(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    method: str = scope["method"]
    if path in ("/health", "/fast"):
        await _answer(send, 200, {"status": "ok"})
    elif path == "/near":
        await asyncio.sleep(random.uniform(0.101, 0.105))
        await _answer(send, 200, {"ok": True})
    elif path == "/slow":
        await asyncio.sleep(random.uniform(0.5, 1.5))
        await _answer(send, 200, {"ok": True})
    elif path == "/tail":
        await asyncio.sleep(0.4 if next(_tail) % 100 < 3 else 0.005)
        await _answer(send, 200, {"ok": True})
    elif path in ("/leak", "/noleak"):
        block = b"x" * MIB  # every page touched
        if path == "/leak":
            _kept.append(block)
        await _answer(send, 200, {"kept": len(_kept)})
    elif path == "/jobs" and method == "POST":
        job = uuid.uuid4().hex
        _jobs[job] = time.monotonic()
        await _answer(send, 202, {"task_id": job})
    elif path.startswith("/jobs/"):
        started = _jobs.get(path.removeprefix("/jobs/"))
        if started is None:
            await _answer(send, 404, {"detail": "no such job"})
        else:
            done = time.monotonic() - started >= JOB_SECONDS
            await _answer(send, 200, {"status": "complete" if done else "running"})
    else:
        await _answer(send, 404, {"detail": "not found"})
