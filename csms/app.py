"""The CSMS process: database, group committer and OCPP gateway on one asyncio loop.

:class:`CsmsApp` is what ``csms serve`` runs and what tests start in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import asyncpg

from . import db
from .config import Settings
from .gateway import Gateway
from .group_commit import GroupCommitter

__all__ = ["CsmsApp", "run_forever", "resolve_database_url"]

log = logging.getLogger("csms.app")


class CsmsApp:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.pool: asyncpg.Pool | None = None
        self.committer: GroupCommitter | None = None
        self.gateway: Gateway | None = None

    async def start(self) -> None:
        await db.upgrade(self.database_url)
        self.pool = await db.create_pool(self.database_url, min_size=2, max_size=self.settings.db_pool_size)
        self.committer = GroupCommitter(self.pool, writers=self.settings.commit_writers,
                                        max_batch=self.settings.commit_max_batch)
        await self.committer.start()
        self.gateway = Gateway(self.settings, self.pool, self.committer)
        await self.gateway.start()
        log.info("serving OCPP", extra={"ports": self.gateway.ports, "node_id": self.settings.node_id})

    async def stop(self) -> None:
        """Close chargers (1001), finish in-flight commits, release leases, close the pool."""
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


async def run_forever(settings: Settings, database_url: str) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully."""
    app = CsmsApp(settings, database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
