"""Live events as server-sent events.

``GET /api/v1/events`` streams ``event: <kind>`` / ``data: <json>`` records:
``status``, ``fault`` (a status reporting a fault), ``fault_opened`` /
``fault_closed`` (2.x device faults), ``session_started``, ``session_stopped``,
``charger_connected``, ``charger_disconnected`` and (admin/operator only)
``security_alarm`` and ``command``, from every node. A client that reads too slowly loses events,
never slows the CSMS down: it receives ``event: dropped`` with the number of
events lost in their place. A comment line is sent every 15 s of silence.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ..eventbus import role_filter
from .auth import ApiRoute, Principal, require
from .common import CP_ID_MAX, app_of
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["events"], route_class=ApiRoute, responses=ERROR_RESPONSES)

Kind = Literal["status", "fault", "fault_opened", "fault_closed", "security_alarm", "session_started",
               "session_stopped", "charger_connected", "charger_disconnected", "command"]

KEEPALIVE_SECONDS = 15.0


@router.get("/events", response_class=StreamingResponse, summary="Live events (server-sent events)",
            dependencies=[Depends(require("operator", "bureau"))],
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "An endless text/event-stream"}})
async def events(request: Request,
                 kinds: list[Kind] | None = Query(None, description="Only these kinds (repeat the parameter)"),
                 charger: str | None = Query(None, max_length=CP_ID_MAX, description="Only this charge point"),
                 ) -> StreamingResponse:
    principal: Principal = request.state.principal
    bus = app_of(request).bus
    sub = bus.subscribe(role_filter(principal.role, kinds, charger))

    async def stream():
        try:
            yield b"retry: 3000\n: connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(sub.get(), KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if event is None:
                    return
                yield (b"id: %d\nevent: %s\ndata: " % (event.get("id", 0), str(event.get("kind")).encode())
                       + orjson.dumps(event, default=str) + b"\n\n")
        finally:
            sub.close()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
