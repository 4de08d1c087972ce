"""The CSMS process: database, group committer, OCPP gateway, router and HTTP API on one asyncio loop.

:class:`CsmsApp` is what ``csms serve`` runs and what tests start in-process.
The HTTP API (uvicorn, :mod:`csms.api`) runs in the same loop on
``api_host:api_port`` (port 0 = any free port; :attr:`CsmsApp.api_port` is the
bound one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import asyncpg

from . import db, lifecycle, metrics
from .config import Settings
from .eventbus import EventBus
from .gateway import Gateway
from .group_commit import GroupCommitter
from .routing import Router
from .tcec102.sender import start_link as start_tcec_link, stop_link as stop_tcec_link

__all__ = ["CsmsApp", "run_forever", "resolve_database_url"]

log = logging.getLogger("csms.app")


class CsmsApp:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.pool: asyncpg.Pool | None = None
        self.committer: GroupCommitter | None = None
        self.gateway: Gateway | None = None
        self.bus = EventBus(settings.node_id, settings.event_queue_size)
        self.router: Router | None = None
        self.api_port: int | None = None
        self._api_server = None
        self._api_task: asyncio.Task | None = None
        self.tcec = None  # the T/CEC 102 link (csms.tcec102.sender)
        self.stopping = False  # set first thing in stop(): /readyz answers 503
        self._operations_tasks: list[asyncio.Task] = []  # periodic maintenance (csms.lifecycle)
        self._health_server = None  # health endpoints when the API is disabled

    async def start(self) -> None:
        await db.upgrade(self.database_url)
        self.pool = await db.create_pool(self.database_url, min_size=2, max_size=self.settings.db_pool_size)
        self.committer = GroupCommitter(self.pool, writers=self.settings.commit_writers,
                                        max_batch=self.settings.commit_max_batch,
                                        on_batch=metrics.observe_batch)
        await self.committer.start()
        await lifecycle.release_stale_leases(self.pool, self.settings.node_id)  # before accepting chargers
        self.gateway = Gateway(self.settings, self.pool, self.committer, publish=self.bus.publish)
        await self.gateway.start()
        log.info("serving OCPP", extra={"ports": self.gateway.ports, "tls_ports": self.gateway.tls_ports,
                                        "node_id": self.settings.node_id})
        await self._start_router_and_api()
        await lifecycle.started(self)  # periodic maintenance, health without API
        self.tcec = await start_tcec_link(self)  # T/CEC 102: outbox sender and scheduler

    async def _start_router_and_api(self) -> None:
        """Multi-node routing (LISTEN/NOTIFY) and the HTTP API; see :mod:`csms.routing`, :mod:`csms.api`."""
        self.router = Router(self.settings.node_id, self.database_url, self.pool, self.gateway, self.bus)
        await self.router.start()
        if not self.settings.api_enabled:
            return
        import uvicorn

        from .api import create_api

        api = lifecycle.with_health(create_api(self), self)  # + /healthz, /readyz, /metrics
        config = uvicorn.Config(api, host=self.settings.api_host, port=self.settings.api_port,
                                log_config=None, access_log=False, lifespan="off", ws="none",
                                timeout_graceful_shutdown=5, server_header=False)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup()
        except SystemExit:  # uvicorn exits when it cannot bind
            raise OSError(f"cannot listen on {self.settings.api_host}:{self.settings.api_port} "
                          "for the HTTP API") from None
        self._api_server = server
        self.api_port = server.servers[0].sockets[0].getsockname()[1]
        self._api_task = asyncio.create_task(server.main_loop(), name="api-server")
        log.info("serving HTTP API", extra={"port": self.api_port, "node_id": self.settings.node_id})

    async def _stop_router_and_api(self) -> None:
        server, self._api_server = self._api_server, None
        if server is not None:
            self.bus.close()  # ends the SSE streams, so that shutdown does not wait for them
            server.should_exit = True
            if self._api_task is not None:
                await asyncio.gather(self._api_task, return_exceptions=True)
            await server.shutdown()
        if self.router:
            await self.router.stop()

    async def stop(self) -> None:
        """Stop the API, close chargers (1001), finish in-flight commits, release leases, close the pool."""
        await lifecycle.stopping(self)  # /readyz -> 503, maintenance stops
        await stop_tcec_link(self.tcec)
        await self._stop_router_and_api()
        if self.gateway:
            await self.gateway.stop()
        if self.committer:
            await self.committer.stop()
        if self.pool:
            await self.pool.close()
        log.info("stopped")


def resolve_database_url(settings: Settings):
    """Return (url, embedded server or None). Starts the embedded PostgreSQL when no URL is set."""
    if settings.database_url:
        return settings.database_url, None
    from .embedded_pg import EmbeddedPostgres, ensure_database

    server = EmbeddedPostgres(settings.data_dir / "pg", port=settings.embedded_db_port)
    url = server.start()
    log.info("embedded PostgreSQL started", extra={"data_dir": str(settings.data_dir / "pg")})
    return ensure_database(url, "csms"), server


async def run_forever(settings: Settings, database_url: str, on_started=None) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully; ``on_started(app)`` is called once serving."""
    app = CsmsApp(settings, database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await app.start()
    if on_started is not None:
        on_started(app)
    try:
        await stop.wait()
    finally:
        await lifecycle.stop_within(app, settings.shutdown_timeout)
