"""The group committer against a real PostgreSQL: batching, row inserts, failures, broken connections."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg
import pytest

from csms import db
from csms.group_commit import METER_COLUMNS, TRANSACTION_EVENT_COLUMNS, GroupCommitter

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def meter_row(cp: str, value: float, measurand: str | None = "Energy.Active.Import.Register") -> tuple:
    return (cp, 1, None, "T1", T0, measurand, None, "Wh", "Sample.Periodic", None, value, str(value))


def event_row(cp: str, seq: int) -> tuple:
    return (cp, "T1", seq, "Updated", "MeterValuePeriodic", T0, False, 1, 1, "Charging", 1, "2.0.1")


@pytest.fixture
async def committer(db_url):
    pool = await db.create_pool(db_url, min_size=1, max_size=4)
    gc = GroupCommitter(pool, writers=2)
    await gc.start()
    try:
        yield gc, pool
    finally:
        await gc.stop()
        await pool.close()


async def test_row_types_match_the_column_lists(conn):
    """The batch insert sends positional rows as row types: their fields must be the columns, in order."""
    for type_name, columns in (("meter_value_row", METER_COLUMNS),
                               ("transaction_event_row", TRANSACTION_EVENT_COLUMNS)):
        fields = [r["attname"] for r in await conn.fetch(
            """SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid
               WHERE t.typname = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""", type_name)]
        assert fields == list(columns), type_name


async def test_concurrent_rows_are_batched_and_all_stored(committer):
    gc, pool = committer
    await pool.execute("INSERT INTO charge_points (id) VALUES ('CP1')")
    writes = [gc.insert_meter_values([meter_row("CP1", i)]) for i in range(300)]
    writes += [gc.insert_transaction_events([event_row("CP1", i)], [meter_row("CP1", 1000 + i)]) for i in range(200)]
    await asyncio.gather(*writes)
    assert gc.items == 500 and gc.batches < 500  # shared commits
    assert await pool.fetchval("SELECT count(*) FROM meter_values") == 500
    assert await pool.fetchval("SELECT count(*) FROM transaction_events") == 200
    assert sorted(r["value"] for r in await pool.fetch("SELECT value FROM meter_values")) == (
        [float(i) for i in range(300)] + [float(1000 + i) for i in range(200)])


async def test_a_bad_row_fails_alone_and_an_event_stored_twice_is_refused(committer):
    gc, pool = committer
    await pool.execute("INSERT INTO charge_points (id) VALUES ('CP1')")
    await gc.insert_transaction_events([event_row("CP1", 7)], [meter_row("CP1", 7)])
    good = [gc.insert_meter_values([meter_row("CP1", i)]) for i in range(20)]
    bad = gc.insert_meter_values([meter_row("CP1", 99, measurand=None)])  # measurand is NOT NULL
    repeat = gc.insert_transaction_events([event_row("CP1", 7)], [meter_row("CP1", 77)])
    outcomes = await asyncio.gather(*good, bad, repeat, return_exceptions=True)
    assert outcomes[:20] == [None] * 20
    assert isinstance(outcomes[20], asyncpg.NotNullViolationError)
    assert isinstance(outcomes[21], asyncpg.UniqueViolationError)
    # the repeat's samples went nowhere: events and their samples are one statement
    values = sorted(r["value"] for r in await pool.fetch("SELECT value FROM meter_values"))
    assert values == sorted([7.0] + [float(i) for i in range(20)])


async def test_writer_replaces_a_connection_the_server_closed(committer):
    gc, pool = committer
    await pool.execute("INSERT INTO charge_points (id) VALUES ('CP1')")
    await asyncio.gather(*(gc.insert_meter_values([meter_row("CP1", i)]) for i in range(10)))
    killed = await pool.fetchval(
        """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()""")
    assert killed >= 1
    await asyncio.sleep(0.2)  # the writers' connections see the server hang up
    for i in range(4):  # one at a time: no batch retry to hide behind
        await asyncio.wait_for(gc.insert_meter_values([meter_row("CP1", 100 + i)]), 5)
    outcomes = await asyncio.gather(*(gc.insert_meter_values([meter_row("CP1", 200 + i)]) for i in range(10)),
                                    return_exceptions=True)
    assert outcomes == [None] * 10
    assert await pool.fetchval("SELECT count(*) FROM meter_values") == 24


async def test_stop_returns_the_writers_connections(db_url):
    pool = await db.create_pool(db_url, min_size=1, max_size=3)
    gc = GroupCommitter(pool, writers=2)
    await gc.start()
    await pool.execute("INSERT INTO charge_points (id) VALUES ('CP1')")
    await asyncio.gather(*(gc.insert_meter_values([meter_row("CP1", i)]) for i in range(50)))
    await gc.stop()
    await asyncio.wait_for(pool.close(), 5)  # would wait forever for a connection never released
