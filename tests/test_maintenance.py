"""Partitions ahead and the retention period, on a real database; ``csms db maintain`` as a process."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from csms.maintenance import LOCK_KEY, maintain, retention_cutoff

from .test_cli import run

OLD = datetime(2015, 3, 10, tzinfo=timezone.utc)       # in a partition of its own, long past retention
OLDER = datetime(2016, 6, 1, tzinfo=timezone.utc)      # caught by the default partition
RECENT = datetime.now(timezone.utc) - timedelta(days=40)
EDGE = retention_cutoff(datetime.now(timezone.utc), 5) + timedelta(hours=1)  # just inside the period


def months_ahead(n: int) -> str:
    now = datetime.now(timezone.utc)
    index = now.year * 12 + now.month - 1 + n
    return f"{index // 12:04d}{index % 12 + 1:02d}"


async def seed(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT ensure_meter_values_partition($1)", OLD)
    rows = [("CP", 1, None, None, t, "Energy.Active.Import.Register", None, "Wh", None, None, 1.0, "1")
            for t in (OLD, OLD, OLDER, EDGE, RECENT, RECENT)]
    await conn.copy_records_to_table("meter_values", records=rows, columns=(
        "charge_point_id", "connector_id", "session_id", "transaction_id", "sampled_at", "measurand", "phase",
        "unit", "context", "location", "value", "raw_value"))
    for t in (OLD, OLDER, EDGE, RECENT):
        await conn.execute("""INSERT INTO status_history (charge_point_id, connector_id, status, error_code, status_at)
                              VALUES ('CP', 1, 'Available', 'NoError', $1)""", t)
        await conn.execute("INSERT INTO charger_messages (charge_point_id, action, payload, received_at) "
                           "VALUES ('CP', 'DataTransfer', '{}', $1)", t)
    for i, (started, stopped) in enumerate([(OLD, OLD + timedelta(hours=1)), (OLD, None),
                                            (RECENT, RECENT + timedelta(hours=1))]):
        await conn.execute("""INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, started_at,
                              stopped_at) VALUES ('CP', $1, '1.6', $2, $3)""", str(i), started, stopped)
    await conn.execute("""INSERT INTO faults (charge_point_id, connector_id, error_code, opened_at, closed_at)
                          VALUES ('CP', 1, 'GroundFailure', $1, $2), ('CP', 2, 'GroundFailure', $1, NULL)""",
                       OLD, OLD + timedelta(hours=2))
    # the last partition the migration made, gone: maintenance must create it again
    await conn.execute(f"DROP TABLE meter_values_{months_ahead(12)}")


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in
            ("meter_values", "status_history", "charger_messages", "sessions", "faults")}


async def test_dry_run_then_maintain(conn):
    await seed(conn)
    before = await counts(conn)

    dry = await maintain(conn, dry_run=True)
    assert dry.locked and dry.dry_run and not dry.errors
    assert dry.cutoff == retention_cutoff(await conn.fetchval("SELECT now()"), 5)
    assert dry.dropped == ["meter_values_201503"]
    assert f"meter_values {months_ahead(12)[:4]}-{months_ahead(12)[4:]}" in dry.created
    assert dry.deleted == {"meter_values_default": 1, "status_history": 2, "charger_messages": 2, "sessions": 1,
                           "faults": 1}
    assert await counts(conn) == before  # a dry run changes nothing
    assert await conn.fetchval("SELECT to_regclass('meter_values_201503') IS NOT NULL")

    done = await maintain(conn, months_ahead=14)
    assert not done.errors and done.dropped == ["meter_values_201503"]
    assert len(done.created) == 3  # month +12 again, +13 and +14
    after = await counts(conn)
    assert after == {"meter_values": before["meter_values"] - 3, "status_history": 2, "charger_messages": 2,
                     "sessions": 2, "faults": 1}
    # what is left: everything inside the period, and the open session / open fault whatever their age
    assert await conn.fetchval("SELECT min(sampled_at) FROM meter_values") == EDGE
    assert await conn.fetchval("SELECT count(*) FROM sessions WHERE stopped_at IS NULL AND started_at=$1", OLD) == 1
    assert await conn.fetchval("SELECT closed_at FROM faults") is None
    for n in (12, 13, 14):
        assert await conn.fetchval(f"SELECT to_regclass('meter_values_{months_ahead(n)}') IS NOT NULL")

    again = await maintain(conn, months_ahead=14)
    assert (again.created, again.dropped, again.deleted, again.errors) == ([], [], {}, [])


async def test_retention_floor_and_lock(conn, db_url):
    with pytest.raises(ValueError, match="5-year"):
        await maintain(conn, retention_years=3)
    report = await maintain(conn, retention_years=3, retention_override=True, dry_run=True)
    assert report.cutoff == retention_cutoff(await conn.fetchval("SELECT now()"), 3)

    other = await asyncpg.connect(db_url)
    try:
        await other.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        skipped = await maintain(conn)
        assert not skipped.locked and not skipped.created
    finally:
        await other.close()
    assert (await maintain(conn)).locked


async def test_cli_db_maintain(db_url, conn):
    await seed(conn)
    code, out, err = await run(db_url, "db", "maintain", "--dry-run", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"] and report["dropped"] == ["meter_values_201503"]
    assert await conn.fetchval("SELECT to_regclass('meter_values_201503') IS NOT NULL")

    code, out, err = await run(db_url, "db", "maintain")
    assert code == 0, err
    assert "meter_values_201503" in out and "keeping data from" in out
    assert not await conn.fetchval("SELECT to_regclass('meter_values_201503') IS NOT NULL")

    code, _, err = await run(db_url, "db", "maintain", "--dry-run", env={"CSMS_RETENTION_YEARS": "3"})
    assert code == 2 and "CSMS_RETENTION_YEARS" in err and "CSMS_RETENTION_OVERRIDE" in err
    code, out, err = await run(db_url, "db", "maintain", "--dry-run", "--json",
                               env={"CSMS_RETENTION_YEARS": "3", "CSMS_RETENTION_OVERRIDE": "true"})
    assert code == 0, err
    assert json.loads(out)["cutoff"].startswith(str(datetime.now(timezone.utc).year - 3))


async def test_periodic_maintenance_on_running_nodes(db_url, conn):
    """Two nodes with a short interval share the work through the advisory lock; partitions appear."""
    import asyncio

    from csms.app import CsmsApp
    from csms.metrics import MAINTENANCE_LAST_SUCCESS

    from .conftest import make_settings

    await conn.execute(f"DROP TABLE meter_values_{months_ahead(12)}")
    started = time.time()
    apps = [CsmsApp(make_settings(maintenance_interval=0.2), db_url) for _ in range(2)]
    for app in apps:
        await app.start()
    try:
        from .conftest import wait_for

        await wait_for(lambda: conn.fetchval(f"SELECT to_regclass('meter_values_{months_ahead(12)}') IS NOT NULL"),
                       timeout=90)
        await wait_for(lambda: MAINTENANCE_LAST_SUCCESS._value.get() > started, timeout=30)  # noqa: SLF001
    finally:
        await asyncio.gather(*(app.stop() for app in apps))
