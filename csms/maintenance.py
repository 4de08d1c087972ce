"""Database maintenance: monthly partitions ahead of need, and the retention period.

``csms db maintain [--dry-run]`` and a periodic task on every node (one node at
a time: a PostgreSQL advisory lock is *tried*; a node that does not get it
skips the run) do the same thing:

1. **Partitions ahead.** Every partitioned table ``T`` that has a function
   ``ensure_T_partition(timestamptz)`` (``meter_values`` has one, migration
   0001) gets its monthly partitions from the current month to
   ``partitions_ahead_months`` ahead, so rows never land in the default
   partition in normal operation.
2. **Retention.** Operating data older than the retention period
   (``retention_years``, default 5 — the city rule, 运营管理办法 第十四条;
   below 5 only with ``retention_override``) is removed: whole monthly
   partitions that end on or before the cutoff are dropped (cheap, no row
   scan), then older rows of the default partitions and of the
   non-partitioned history tables in :data:`RETENTION_TABLES` are deleted in
   batches. The cutoff is the start of the month ``retention_years`` ago, so
   at least the full period is always kept.

Each step runs in its own transaction; a step that fails is reported and the
others still run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg

__all__ = ["RETENTION_FLOOR_YEARS", "RETENTION_TABLES", "MaintenanceReport", "maintain", "periodic",
           "retention_cutoff", "LOCK_KEY"]

log = logging.getLogger("csms.maintenance")

RETENTION_FLOOR_YEARS = 5
LOCK_KEY = 0x6373_6D73_0002  # "csms" + 2: the maintenance advisory lock
DELETE_BATCH = 20_000

#: (table, SQL expression of the row's time, extra condition). Rows whose time is before the
#: cutoff are deleted. Tables that do not exist (yet) are skipped. Open sessions, open faults,
#: pending commands and undelivered platform notifications are kept whatever their age.
RETENTION_TABLES: list[tuple[str, str, str]] = [
    ("status_history", "status_at", "TRUE"),
    ("charger_messages", "received_at", "TRUE"),
    ("charger_connections", "coalesce(disconnected_at, connected_at)", "disconnected_at IS NOT NULL"),
    ("faults", "closed_at", "closed_at IS NOT NULL"),
    ("sessions", "coalesce(stopped_at, started_at, created_at)", "stopped_at IS NOT NULL"),
    ("command_log", "requested_at", "outcome <> 'pending'"),
    ("transaction_events", "event_at", "TRUE"),
    ("device_events", "event_at", "TRUE"),
    ("session_costs", "priced_at", "TRUE"),
    ("tcec_outbox", "created_at", "state <> 'pending'"),
]


@dataclass
class MaintenanceReport:
    dry_run: bool
    cutoff: datetime | None = None
    locked: bool = True  # False: another node holds the lock, nothing was done
    created: list[str] = field(default_factory=list)              # "meter_values 2027-12"
    dropped: list[str] = field(default_factory=list)              # partition names
    deleted: dict[str, int] = field(default_factory=dict)         # table -> rows
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "cutoff": self.cutoff.isoformat() if self.cutoff else None,
                "locked": self.locked, "created": self.created, "dropped": self.dropped,
                "deleted": self.deleted, "errors": self.errors, "seconds": round(self.seconds, 3)}


def _months_ago(now: datetime, months: int) -> datetime:
    index = now.year * 12 + (now.month - 1) - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def retention_cutoff(now: datetime, years: int) -> datetime:
    """The first instant kept: the start of the (UTC) month *years* before *now*."""
    return _months_ago(now.astimezone(timezone.utc), years * 12)


def check_retention(years: int, override: bool) -> None:
    if years < RETENTION_FLOOR_YEARS and not override:
        raise ValueError(f"retention of {years} years is below the {RETENTION_FLOOR_YEARS}-year city rule; "
                         "set CSMS_RETENTION_OVERRIDE=true to allow it")
    if years < 1:
        raise ValueError("retention must be at least 1 year")


async def _partitioned_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(current_schemas(false)) AND NOT c.relispartition ORDER BY 1""")
    return [r["relname"] for r in rows]


async def _partitions(conn: asyncpg.Connection, table: str) -> list[asyncpg.Record]:
    """(name, lo, hi, is_default) of the range partitions of *table*."""
    return await conn.fetch(
        r"""SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz
                       AS lo,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
                       AS hi
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass($1) ORDER BY lo NULLS FIRST""", table)


async def _exists(conn: asyncpg.Connection, table: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)


async def _has_ensure_function(conn: asyncpg.Connection, table: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = $1 AND pronargs = 1)", f"ensure_{table}_partition")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _delete_old(conn: asyncpg.Connection, table: str, time_expr: str, condition: str,
                      cutoff: datetime, dry_run: bool) -> int:
    where = f"{time_expr} < $1 AND ({condition})"
    if dry_run:
        return await conn.fetchval(f"SELECT count(*) FROM {_quote(table)} WHERE {where}", cutoff)
    total = 0
    while True:
        async with conn.transaction():
            status = await conn.execute(
                f"""DELETE FROM {_quote(table)} WHERE ctid = ANY(ARRAY(
                        SELECT ctid FROM {_quote(table)} WHERE {where} LIMIT {DELETE_BATCH}))""", cutoff)
        n = int(status.split()[-1])
        total += n
        if n < DELETE_BATCH:
            return total


async def maintain(conn: asyncpg.Connection, *, retention_years: int = RETENTION_FLOOR_YEARS,
                   retention_override: bool = False, months_ahead: int = 12, dry_run: bool = False,
                   now: datetime | None = None, wait_for_lock: bool = False) -> MaintenanceReport:
    """Create partitions ahead and enforce retention, holding the maintenance advisory lock.

    Without *wait_for_lock* the lock is only tried: when another node holds it
    the report says ``locked=False`` and nothing is done.
    """
    check_retention(retention_years, retention_override)
    started = time.perf_counter()
    now = now or await conn.fetchval("SELECT now()")
    report = MaintenanceReport(dry_run=dry_run, cutoff=retention_cutoff(now, retention_years))
    if wait_for_lock:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    elif not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        report.locked = False
        return report
    try:
        await _run(conn, report, now, months_ahead, dry_run)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    report.seconds = time.perf_counter() - started
    return report


async def _run(conn: asyncpg.Connection, report: MaintenanceReport, now: datetime, months_ahead: int,
               dry_run: bool) -> None:
    cutoff = report.cutoff
    assert cutoff is not None
    tables = await _partitioned_tables(conn)
    for table in tables:
        try:
            parts = await _partitions(conn, table)
            ranges = [(p["lo"], p["hi"]) for p in parts if not p["is_default"] and p["lo"] is not None]
            # 1. partitions ahead
            if await _has_ensure_function(conn, table):
                for k in range(0, months_ahead + 1):
                    month = _months_ago(now, -k)
                    if any(lo <= month < hi for lo, hi in ranges):
                        continue
                    if not dry_run:
                        async with conn.transaction():
                            await conn.execute(f"SELECT ensure_{table}_partition($1)", month)
                    report.created.append(f"{table} {month:%Y-%m}")
            # 2. whole partitions past the retention period
            for p in parts:
                if p["is_default"] or p["hi"] is None or p["hi"] > cutoff:
                    continue
                if not dry_run:
                    async with conn.transaction():
                        await conn.execute(f"DROP TABLE {_quote(p['name'])}")
                report.dropped.append(p["name"])
            # 3. old rows that a default partition caught
            for p in parts:
                if p["is_default"]:
                    column = await _partition_column(conn, table)
                    if column:
                        n = await _delete_old(conn, p["name"], _quote(column), "TRUE", cutoff, dry_run)
                        if n:
                            report.deleted[p["name"]] = n
        except (asyncpg.PostgresError, ValueError) as exc:
            report.errors.append(f"{table}: {exc}")
            log.error("maintenance of %s failed: %s", table, exc)
    for table, time_expr, condition in RETENTION_TABLES:
        if table in tables:
            continue
        try:
            if not await _exists(conn, table):
                continue
            n = await _delete_old(conn, table, time_expr, condition, cutoff, dry_run)
            if n:
                report.deleted[table] = n
        except asyncpg.PostgresError as exc:
            report.errors.append(f"{table}: {exc}")
            log.error("retention of %s failed: %s", table, exc)


async def _partition_column(conn: asyncpg.Connection, table: str) -> str | None:
    """The single partition-key column of *table* (None for expression keys)."""
    return await conn.fetchval(
        """SELECT a.attname FROM pg_partitioned_table p
           JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
           WHERE p.partrelid = to_regclass($1) AND p.partnatts = 1""", table)


async def periodic(pool: asyncpg.Pool, settings: Any, first_delay: float | None = None) -> None:
    """Run :func:`maintain` every ``settings.maintenance_interval`` seconds (one node at a time)."""
    from . import metrics

    interval = float(settings.maintenance_interval)
    if interval <= 0:
        return
    # Soon after start (spread over the nodes), then every interval.
    delay = first_delay if first_delay is not None else min(interval, random.uniform(10, 60))
    while True:
        await asyncio.sleep(delay)
        delay = interval
        try:
            async with pool.acquire() as conn:
                report = await maintain(conn, retention_years=settings.retention_years,
                                        retention_override=settings.retention_override,
                                        months_ahead=settings.partitions_ahead_months)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            log.warning("maintenance run failed: %s", exc)
            continue
        if not report.locked:
            log.debug("maintenance skipped: another node holds the lock")
            continue
        if not report.errors:
            metrics.MAINTENANCE_LAST_SUCCESS.set(time.time())
        if report.created or report.dropped or report.deleted or report.errors:
            log.info("maintenance done", extra=report.as_dict())
