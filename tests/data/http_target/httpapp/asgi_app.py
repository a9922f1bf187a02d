"""The ASGI variant: a plain async callable, no framework."""

from __future__ import annotations

import json
from typing import Any

from httpapp.checks import health, redis_ok_async


async def _respond(send: Any, status: int, body: dict[str, str]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    ok = await redis_ok_async()
    if scope["path"] == "/health":
        await _respond(send, *health(ok))
    elif scope["path"] == "/always-healthy":
        await _respond(send, 200, {"status": "healthy", "redis": "ok"})
    else:
        await _respond(send, 404, {"error": "not found"})
