"""Database access: the connection pool and the migration runner.

Migrations are the SQL files in ``schemas/migrations`` named ``NNNN_name.sql``,
applied in name order, each in its own transaction, and recorded in
``schema_migrations``. :func:`upgrade` holds a PostgreSQL advisory lock while it
works, so several nodes starting at once apply each migration exactly once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

__all__ = ["MIGRATIONS_DIR", "create_pool", "upgrade", "pending", "migration_files"]

log = logging.getLogger("csms.db")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "schemas" / "migrations"
_LOCK_KEY = 0x6373_6D73_0001  # "csms" + 1: the migration advisory lock


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in application order."""
    return sorted(p for p in directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))


async def _applied(conn: asyncpg.Connection) -> set[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    return {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}


async def pending(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Names of migrations not yet applied to the database behind *conn*."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")} if exists else set()
    return [p.stem for p in migration_files(directory) if p.stem not in done]


async def upgrade(dsn_or_conn: str | asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the names applied. Idempotent and safe to run concurrently."""
    conn = dsn_or_conn if isinstance(dsn_or_conn, asyncpg.Connection) else await asyncpg.connect(dsn_or_conn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            done = await _applied(conn)
            applied: list[str] = []
            for path in migration_files(directory):
                if path.stem in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text(encoding="utf-8"))
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
                log.info("migration applied", extra={"migration": path.stem})
                applied.append(path.stem)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        if conn is not dsn_or_conn:
            await conn.close()


async def _init_connection(conn: asyncpg.Connection) -> None:
    import orjson

    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, schema="pg_catalog",
            encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, format="text",
        )


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections encode/decode json and jsonb with orjson."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     command_timeout=60)
