"""Health, readiness and metrics endpoints.

* ``GET /healthz`` — the process is alive and its event loop answers (always 200).
* ``GET /readyz`` — 200 when the database answers, every migration this code
  knows is applied and the OCPP gateway is listening; 503 with the failing
  checks otherwise, and from the moment a graceful shutdown begins.
* ``GET /metrics`` — Prometheus text format (:mod:`csms.metrics`).

:func:`router` gives these as a FastAPI ``APIRouter`` for the HTTP API's app;
:class:`HealthServer` serves them on their own (uvicorn) when the process has
no HTTP API app to include them in. Neither needs an API token: restrict
``/metrics`` at the proxy if it must not be public (deploy/nginx does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import asyncpg
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response

from . import db
from .metrics import CONTENT_TYPE, AppMetrics

if TYPE_CHECKING:
    from .app import CsmsApp

__all__ = ["router", "readiness", "HealthServer", "health_app"]

log = logging.getLogger("csms.health")

CHECK_TIMEOUT = 2.0


async def _database(app: "CsmsApp") -> dict[str, Any]:
    pool = app.pool
    if pool is None:
        return {"ok": False, "error": "not started"}
    last: Exception | None = None
    # Two attempts: after the database restarts, the pool's first connection is a dead one.
    for _ in range(2):
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
                    missing = await db.pending(conn)
            if missing:
                return {"ok": False, "error": f"migrations not applied: {', '.join(missing)}"}
            return {"ok": True}
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            last = exc
    return {"ok": False, "error": f"database unreachable: {type(last).__name__}: {last}"}


def _gateway(app: "CsmsApp") -> dict[str, Any]:
    gateway = app.gateway
    servers = getattr(gateway, "_servers", None) if gateway is not None else None
    if not servers or not all(s.is_serving() for s in servers):
        return {"ok": False, "error": "OCPP gateway not listening"}
    return {"ok": True, "ports": list(gateway.ports), "chargers": len(gateway.connections)}


async def readiness(app: "CsmsApp") -> tuple[bool, dict[str, Any]]:
    """``(ready, details)``: database + migrations, gateway, not shutting down."""
    checks: dict[str, Any] = {"gateway": _gateway(app), "database": await _database(app)}
    if getattr(app, "stopping", False):
        checks["shutdown"] = {"ok": False, "error": "shutting down"}
    ready = all(c["ok"] for c in checks.values())
    return ready, {"status": "ready" if ready else "unready", "node_id": app.settings.node_id, "checks": checks}


def router(app: "CsmsApp") -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics`` for *app*."""
    r = APIRouter(tags=["operations"])
    metrics = getattr(app, "metrics", None) or AppMetrics(app)
    started = time.time()

    @r.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "node_id": app.settings.node_id, "uptime_seconds": round(time.time() - started, 1)}

    @r.get("/readyz", summary="Readiness: database reachable, migrations current, gateway listening",
           responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        ready, details = await readiness(app)
        return JSONResponse(details, status_code=200 if ready else 503)

    @r.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE)

    return r


def health_app(app: "CsmsApp") -> FastAPI:
    """A FastAPI app with only the health router (used when there is no HTTP API app)."""
    api = FastAPI(title="csms health", docs_url=None, redoc_url=None, openapi_url=None)
    api.include_router(router(app))
    return api


class HealthServer:
    """Serves :func:`health_app` with uvicorn on the loop of the running app.

    uvicorn's own signal handling is disabled: the process's SIGTERM handling
    (:func:`csms.app.run_forever`) decides when to stop.
    """

    def __init__(self, app: "CsmsApp", host: str, port: int) -> None:
        import uvicorn

        class _Server(uvicorn.Server):
            def capture_signals(self):  # noqa: D401 - uvicorn API
                return contextlib.nullcontext()

        config = uvicorn.Config(health_app(app), host=host, port=port, lifespan="off", log_config=None,
                                access_log=False, timeout_graceful_shutdown=5)
        self._server = _Server(config)
        self._host, self._port = host, port
        self._task: asyncio.Task | None = None
        self.port: int | None = None

    async def start(self) -> None:
        # Bind here so that a taken port raises OSError (uvicorn would call sys.exit).
        family, kind, proto, _, addr = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="health-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the startup error (e.g. port in use)
                raise OSError("health server stopped during startup")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 10)
        self._task = None
