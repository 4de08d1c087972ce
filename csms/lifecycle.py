"""What a production node does besides serving: health endpoints, periodic maintenance, shutdown deadline.

:class:`csms.app.CsmsApp` calls in here at five points:

* :func:`release_stale_leases` — before the gateway accepts chargers: leases this node id
  left behind (a node restarted after a crash takes its chargers back as they reconnect);
* :func:`with_health` — adds ``/healthz``, ``/readyz`` and ``/metrics`` to the HTTP API app;
* :func:`started` — after everything serves: starts the periodic maintenance task, and
  serves the health endpoints on their own when the HTTP API is disabled;
* :func:`stopping` — first thing in a graceful stop: ``/readyz`` turns 503,
  maintenance stops;
* :func:`stop_within` — the SIGTERM path: ``app.stop()`` under the
  ``shutdown_timeout`` deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from . import maintenance
from .metrics import AppMetrics

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .app import CsmsApp

__all__ = ["with_health", "release_stale_leases", "started", "stopping", "stop_within"]

log = logging.getLogger("csms.lifecycle")


def _metrics(app: "CsmsApp") -> AppMetrics:
    m = getattr(app, "metrics", None)
    if m is None:
        m = app.metrics = AppMetrics(app)  # type: ignore[attr-defined]
    return m


def with_health(api: "FastAPI", app: "CsmsApp") -> "FastAPI":
    """*api* with the health router included (at the root: ``/healthz``, ``/readyz``, ``/metrics``)."""
    from .health import router

    _metrics(app)
    api.include_router(router(app))
    return api


async def started(app: "CsmsApp") -> None:
    _metrics(app)
    app.stopping = False
    settings = app.settings
    tasks: list[asyncio.Task] = []
    if settings.maintenance_interval > 0:
        tasks.append(asyncio.create_task(maintenance.periodic(app.pool, settings), name="maintenance"))
    app._operations_tasks = tasks
    if not settings.api_enabled:
        from .health import HealthServer

        server = HealthServer(app, settings.api_host, settings.api_port)
        await server.start()
        app._health_server = server
        if app.api_port is None:
            app.api_port = server.port
        log.info("serving health endpoints", extra={"port": server.port, "node_id": settings.node_id})


async def release_stale_leases(pool: asyncpg.Pool, node_id: str) -> None:
    """Leases recorded for this node id (left by a crash). Called before the gateway accepts
    connections, so every lease of this node id is stale then."""
    try:
        status = await pool.execute(
            "UPDATE charge_points SET node_id = NULL, lease_expires_at = NULL WHERE node_id = $1", node_id)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not clear stale leases: %s", exc)
        return
    if status != "UPDATE 0":
        log.info("cleared stale leases of this node id", extra={"rows": status.split()[-1]})


async def stopping(app: "CsmsApp") -> None:
    """Readiness off, background tasks stopped, the stand-alone health server closed."""
    app.stopping = True
    tasks, app._operations_tasks = app._operations_tasks, []
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    server, app._health_server = app._health_server, None
    if server is not None:
        await server.stop()


async def stop_within(app: "CsmsApp", timeout: float) -> bool:
    """``await app.stop()`` for at most *timeout* seconds; True if it finished in time."""
    try:
        await asyncio.wait_for(app.stop(), timeout)
        return True
    except TimeoutError:
        log.error("graceful shutdown did not finish within %s s (CSMS_SHUTDOWN_TIMEOUT); exiting anyway",
                  timeout)
        pool: Any = getattr(app, "pool", None)
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.terminate()
        return False
