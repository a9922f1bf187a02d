"""A websocket manager in miniature (plain ASGI, served by signoff's uvicorn), for
tests/test_websocket.py. Each path is one behaviour; the times come from the environment:
WS_HEARTBEAT_S (the heartbeat interval), WS_IDLE_S (a client that sends nothing this long is
closed with 4000 "idle timeout"), WS_DROP_AFTER_S (/ws/drops closes every client this long
after the connect with 4001 "session over").

- /ws: heartbeats, idle clients closed
- /ws/silent: never sends, never closes
- /ws/keeps-idle: heartbeats, never closes an idle client
- /ws/drops: heartbeats, idle clients closed, and every client dropped after WS_DROP_AFTER_S
- /ws/redis: each heartbeat pings Redis (REDIS_URL) first, giving up after 0.2 s
- /ws/redis-blocking: each heartbeat waits for Redis's answer, however long (the bug)
- /ws/crash: the whole server exits (status 3) 0.5 s after the connect
- any other websocket path: the handshake is refused (403)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

HEARTBEAT_S = float(os.environ.get("WS_HEARTBEAT_S", "1"))
IDLE_S = float(os.environ.get("WS_IDLE_S", "2"))
DROP_AFTER_S = float(os.environ.get("WS_DROP_AFTER_S", "1.5"))
REDIS_TIMEOUT_S = 0.2

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class Behaviour:
    def __init__(
        self, *, beats: bool = True, idle: bool = True, drop: bool = False, redis: str = ""
    ) -> None:
        self.beats = beats
        self.idle = idle
        self.drop = drop
        self.redis = redis  # "", "timeout" or "blocking"


PATHS = {
    "/ws": Behaviour(),
    "/ws/silent": Behaviour(beats=False, idle=False),
    "/ws/keeps-idle": Behaviour(idle=False),
    "/ws/drops": Behaviour(drop=True),
    "/ws/redis": Behaviour(redis="timeout"),
    "/ws/redis-blocking": Behaviour(redis="blocking"),
}


async def _redis_state(client: aioredis.Redis, how: str) -> str:
    try:
        if how == "blocking":
            await client.ping()
        else:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await client.ping()
    except Exception:
        return "down"
    return "ok"


async def _heartbeats(send: Send, behaviour: Behaviour) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"]) if behaviour.redis else None
    try:
        for n in range(1, 1_000_000):
            tick = start + n * HEARTBEAT_S
            beat: dict[str, Any] = {"type": "heartbeat", "n": n}
            if client is not None:  # asked ahead, so that a timely answer keeps the beat on time
                await asyncio.sleep(max(0.0, tick - REDIS_TIMEOUT_S - loop.time()))
                beat["redis"] = await _redis_state(client, behaviour.redis)
            await asyncio.sleep(max(0.0, tick - loop.time()))
            await send({"type": "websocket.send", "text": json.dumps(beat)})
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(0.5):
                    await client.aclose()


async def _close(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await send({"type": "websocket.close", "code": code, "reason": reason})


async def _drop_later(send: Send) -> None:
    await asyncio.sleep(DROP_AFTER_S)
    await _close(send, 4001, "session over")


async def _session(receive: Receive, send: Send, behaviour: Behaviour) -> None:
    await send({"type": "websocket.accept"})
    tasks = []
    if behaviour.beats:
        tasks.append(asyncio.create_task(_heartbeats(send, behaviour)))
    if behaviour.drop:
        tasks.append(asyncio.create_task(_drop_later(send)))
    try:
        while True:
            try:
                async with asyncio.timeout(IDLE_S if behaviour.idle else None):
                    message = await receive()
            except TimeoutError:
                await _close(send, 4000, "idle timeout")
                return
            if message["type"] == "websocket.disconnect":
                return
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def _respond(send: Send, status: int, body: dict[str, str]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        found = scope["path"] == "/health"
        await _respond(send, 200 if found else 404, {"status": "ok" if found else "not found"})
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    if scope["path"] == "/ws/crash":
        await send({"type": "websocket.accept"})
        await asyncio.sleep(0.5)
        os._exit(3)
    behaviour = PATHS.get(scope["path"])
    if behaviour is None:
        await send({"type": "websocket.close", "code": 1008})
        return
    await _session(receive, send, behaviour)
