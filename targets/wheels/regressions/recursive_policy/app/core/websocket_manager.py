"""WebSocket connections with the app's own heartbeat (the seed's "Improved heartbeat system").

Every WEBSOCKET_HEARTBEAT_INTERVAL (20 s) the server sends each client a heartbeat message
{"type": "ping", "seq": n, "ts": unix time}; a client answers {"type": "pong"} (any message
counts as a sign of life). A client that sent nothing for WEBSOCKET_IDLE_TIMEOUT (60 s) is
closed with code 4408 ("idle timeout"; 4000-4999 are the application's codes, 408 as in HTTP
Request Timeout). The seed's "before" was a 120 s timeout with no heartbeat at all. Heartbeats
are messages, not ping frames: an ASGI app cannot send ping frames. The round trip from a
heartbeat to its pong is the connection's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.core import config

logger = logging.getLogger(__name__)

IDLE_CLOSE_CODE = 4408
IDLE_CLOSE_REASON = "idle timeout"


@dataclass
class Connection:
    id: int
    websocket: WebSocket
    connected_at: float
    last_seen: float
    pings_sent: int = 0
    last_ping_at: float | None = None
    latencies_s: list[float] = field(default_factory=list)


class ConnectionManager:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.connections: dict[int, Connection] = {}
        self.total = 0
        self.closed_idle = 0

    async def serve(self, websocket: WebSocket) -> None:
        """The whole life of one connection: accept, heartbeat, watch for idleness, read."""
        interval = config.websocket_heartbeat_interval()
        idle_timeout = config.websocket_idle_timeout()
        await websocket.accept()
        now = time.monotonic()
        conn = Connection(next(self._ids), websocket, now, now)
        self.connections[conn.id] = conn
        self.total += 1
        tasks = [
            asyncio.create_task(self._heartbeat(conn, interval)),
            asyncio.create_task(self._watch_idle(conn, idle_timeout)),
        ]
        try:
            await self._read(conn)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.connections.pop(conn.id, None)

    async def _read(self, conn: Connection) -> None:
        while True:
            try:
                event = await conn.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return  # the server closed it
            if event["type"] == "websocket.disconnect":
                return  # the client left, or answered the server's close
            received = time.monotonic()
            conn.last_seen = received
            try:
                message = json.loads(event.get("text") or event.get("bytes") or b"")
            except ValueError:
                message = None
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "pong" and conn.last_ping_at is not None:
                conn.latencies_s.append(received - conn.last_ping_at)
                del conn.latencies_s[:-100]
            elif kind == "ping":
                await self._send(conn, {"type": "pong", "ts": time.time()})

    async def _heartbeat(self, conn: Connection, interval: float) -> None:
        """A heartbeat every `interval` from the connect on, on a fixed schedule (no drift)."""
        for beat in itertools.count(1):
            await asyncio.sleep(max(0.0, conn.connected_at + beat * interval - time.monotonic()))
            conn.last_ping_at = time.monotonic()
            conn.pings_sent += 1
            if not await self._send(conn, {"type": "ping", "seq": beat, "ts": time.time()}):
                return

    async def _watch_idle(self, conn: Connection, idle_timeout: float) -> None:
        while True:
            remaining = conn.last_seen + idle_timeout - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        self.closed_idle += 1
        logger.info("websocket %d idle for %.0f s: closing", conn.id, idle_timeout)
        with contextlib.suppress(Exception):
            await conn.websocket.close(code=IDLE_CLOSE_CODE, reason=IDLE_CLOSE_REASON)

    async def _send(self, conn: Connection, message: dict[str, Any]) -> bool:
        if conn.websocket.application_state != WebSocketState.CONNECTED:
            return False
        try:
            await conn.websocket.send_text(json.dumps(message))
        except Exception:  # the client is gone: the reader ends the connection
            return False
        return True

    def stats(self) -> dict[str, Any]:
        latencies = [s for c in self.connections.values() for s in c.latencies_s]
        return {
            "connections": len(self.connections),
            "total": self.total,
            "closed_idle": self.closed_idle,
            "heartbeat_interval_s": config.websocket_heartbeat_interval(),
            "idle_timeout_s": config.websocket_idle_timeout(),
            "mean_latency_ms": (
                round(1000 * sum(latencies) / len(latencies), 2) if latencies else None
            ),
        }


manager = ConnectionManager()
