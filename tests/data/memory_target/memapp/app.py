"""A plain ASGI app whose memory is known, for memory_limit tests. Every block is a private
anonymous mmap whose pages are all touched, so holding one is resident memory and dropping one
gives it back to the system at once (no allocator keeps it).

- GET /health, GET /small: 200, nothing kept.
- GET /grow: keeps 4 MiB per request for ever, without bound: the limit kills the server.
- GET /cache: keeps 2 MiB per request for CACHE_TTL (1.5 s); a sweeper drops what expired every
  0.1 s, so the memory falls back within about 1.6 s of the last request.
- GET /hold: keeps 2 MiB per request, up to HOLD_CAP (40 MiB), and never gives it back.
"""

from __future__ import annotations

import asyncio
import json
import mmap
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BLOCK = 2 << 20
GROW_BLOCK = 4 << 20
CACHE_TTL = 1.5
HOLD_CAP = 40 << 20
_grown: list[mmap.mmap] = []
_cache: list[tuple[float, mmap.mmap]] = []
_held: list[mmap.mmap] = []


def _block(size: int = BLOCK) -> mmap.mmap:
    block = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    block.write(b"x" * size)  # every page touched: resident
    return block


def _sweep(now: float) -> None:
    while _cache and _cache[0][0] <= now:
        _cache.pop(0)[1].close()


async def _sweeper() -> None:
    while True:
        await asyncio.sleep(0.1)
        _sweep(time.monotonic())


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
        sweeper = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                sweeper = asyncio.get_running_loop().create_task(_sweeper())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if sweeper is not None:
                    sweeper.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    if path in ("/health", "/small"):
        await _answer(send, 200, {"status": "ok"})
    elif path == "/grow":
        _grown.append(_block(GROW_BLOCK))
        await _answer(send, 200, {"kept": len(_grown)})
    elif path == "/cache":
        _cache.append((time.monotonic() + CACHE_TTL, _block()))
        await _answer(send, 200, {"cached": len(_cache)})
    elif path == "/hold":
        if len(_held) * BLOCK < HOLD_CAP:
            _held.append(_block())
        await _answer(send, 200, {"held": len(_held)})
    else:
        await _answer(send, 404, {"detail": "not found"})
