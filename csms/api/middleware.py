"""ASGI middleware: request body size limit and an access log that never contains credentials."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ApiMiddleware"]

access_log = logging.getLogger("csms.api.access")


class ApiMiddleware:
    """Refuses bodies over *max_body_bytes* with 413 (by Content-Length, or while reading a chunked
    body) and logs one line per request: method, path (no query string), status, duration, token name."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": None}
        limit = self.max_body_bytes

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > limit:
                await _too_large(send_wrapper, limit)
                return
            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise HTTPException(413, f"request body larger than {limit} bytes")
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            principal = scope.get("state", {}).get("principal")
            access_log.info("%s %s %s", scope.get("method"), scope.get("path"), status["code"], extra={
                "status": status["code"], "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "token_name": getattr(principal, "name", None),
                "client": (scope.get("client") or (None,))[0]})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = orjson.dumps({"error": {"code": "payload_too_large",
                                   "message": f"request body larger than {limit} bytes"}})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
