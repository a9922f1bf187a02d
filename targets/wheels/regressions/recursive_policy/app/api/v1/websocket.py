"""/ws: the realtime channel, kept alive by the manager's heartbeat."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from app.core.websocket_manager import manager

router = APIRouter()


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await manager.serve(websocket)
