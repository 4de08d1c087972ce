"""``csms db backup`` / ``csms db restore`` with the real pg_dump/pg_restore, restored into a fresh database."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from csms.backup import BackupError, find_tool
from csms.embedded_pg import bundled_bin_dir
from csms.simulator import Charger16, SimulatorConfig, connect

from .conftest import fresh_database
from .test_cli import run


async def table_counts(conn: asyncpg.Connection) -> dict[str, int]:
    tables = await conn.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1""")
    return {t["relname"]: await conn.fetchval(f'SELECT count(*) FROM "{t["relname"]}"') for t in tables}


@pytest.fixture
async def empty_db(pg_server_url):
    async with fresh_database(pg_server_url, prefix="csms_restore_") as url:
        yield url


async def test_backup_restore_round_trip(csms, empty_db, tmp_path: Path):
    # real data: a complete session from a charger over a real websocket
    await csms.register("BK-1")
    await csms.add_tag("TAG-BK")
    ws = await connect(csms.ocpp_url, "BK-1")
    cp = Charger16("BK-1", ws, SimulatorConfig(url="", ids=["BK-1"], id_tag="TAG-BK"))
    task = asyncio.create_task(cp.start())
    try:
        await cp.boot()
        measured = await cp.charge(samples=3, interval=0.01)
    finally:
        task.cancel()
        await ws.close()
    source = await asyncpg.connect(csms.db_url)
    try:
        counts = await table_counts(source)
        session = dict(await source.fetchrow("SELECT * FROM sessions WHERE transaction_id=$1",
                                             str(measured["transaction_id"])))
        meter = [dict(r) for r in await source.fetch(
            "SELECT * FROM meter_values WHERE session_id=$1 ORDER BY sampled_at, measurand", session["id"])]
    finally:
        await source.close()
    assert session["energy_wh"] == measured["energy_wh"] and len(meter) == 6

    archive = tmp_path / "csms.dump"
    code, out, err = await run(csms.db_url, "db", "backup", str(archive))
    assert code == 0, err
    assert "backup written" in out and archive.stat().st_size > 0
    assert archive.read_bytes()[:5] == b"PGDMP"  # custom format
    assert not list(tmp_path.glob(".*partial"))

    code, out, err = await run(empty_db, "db", "restore", str(archive))
    assert code == 0, err
    restored = await asyncpg.connect(empty_db)
    try:
        assert await table_counts(restored) == counts
        assert dict(await restored.fetchrow("SELECT * FROM sessions WHERE id=$1", session["id"])) == session
        assert [dict(r) for r in await restored.fetch(
            "SELECT * FROM meter_values WHERE session_id=$1 ORDER BY sampled_at, measurand", session["id"])] == meter
        # the restored database is a working one: sequences continue, partitions are attached
        assert await restored.fetchval("SELECT nextval('sessions_id_seq')") > session["id"]
        assert await restored.fetchval("SELECT count(*) FROM pg_inherits WHERE inhparent='meter_values'::regclass") \
            > 12
    finally:
        await restored.close()

    # restoring over a database that has data needs --clean
    code, _, err = await run(empty_db, "db", "restore", str(archive))
    assert code == 1 and "not empty" in err and "--clean" in err
    code, _, err = await run(empty_db, "db", "restore", str(archive), "--clean")
    assert code == 0, err

    code, _, err = await run(empty_db, "db", "restore", str(tmp_path / "missing.dump"))
    assert code == 1 and "no such file" in err
    (tmp_path / "junk.dump").write_bytes(b"not an archive")
    code, _, err = await run(empty_db, "db", "restore", str(tmp_path / "junk.dump"))
    assert code == 1 and "not a readable pg_dump" in err


def test_tool_matches_the_server_major_version(tmp_path: Path):
    bundled = find_tool("pg_restore", 18)  # the embedded PostgreSQL's own
    assert bundled.major == 18 and bundled.path.parent == bundled_bin_dir()
    assert find_tool("pg_dump", 11).major > 11  # no 11 anywhere: the oldest newer one can dump it
    system = shutil.which("pg_dump")
    if system and "(PostgreSQL) 15." in subprocess.run([system, "--version"], capture_output=True, text=True).stdout:
        assert find_tool("pg_dump", 15).major == 15  # Debian's, not the newer bundled one
    with pytest.raises(BackupError, match="PostgreSQL 99"):
        find_tool("pg_dump", 99)
    with pytest.raises(BackupError, match="CSMS_PG_BIN_DIR"):
        find_tool("pg_dump", 15, bin_dir=tmp_path)


async def test_backup_reports_missing_tools(db_url, tmp_path: Path):
    code, _, err = await run(db_url, "db", "backup", str(tmp_path / "x.dump"), env={"CSMS_PG_BIN_DIR": str(tmp_path)})
    assert code == 1 and "no pg_dump for PostgreSQL" in err
    code, _, err = await run(db_url, "db", "backup", str(tmp_path / "nodir" / "x.dump"))
    assert code == 1 and "directory does not exist" in err
