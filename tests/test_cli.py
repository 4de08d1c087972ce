"""The ``csms`` command line, run as a real process against a real database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from csms.simulator import SimulatorConfig, run_simulation

CSMS = str(Path(sys.executable).parent / "csms")


async def run(db_url: str | None, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    if db_url:
        environ["CSMS_DATABASE_URL"] = db_url
    environ.update(env or {})
    proc = await asyncio.create_subprocess_exec(CSMS, *args, env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_help_everywhere():
    for args in ([], ["chargers"], ["idtags"], ["sessions"], ["faults"], ["db"], ["serve", "--help"],
                 ["simulate", "--help"], ["sessions", "list", "--help"]):
        code, out, err = await run(None, *args, "--help" if args[-1:] != ["--help"] else "")
        assert "Usage" in out + err


async def test_chargers_and_idtags(db_url, conn):
    code, out, _ = await run(db_url, "chargers", "add", "CP-1", "--password", "pw-123456")
    assert code == 0 and "registered CP-1" in out
    row = await conn.fetchrow("SELECT password_hash, security_profile FROM charge_points WHERE id='CP-1'")
    assert row["password_hash"].startswith("scrypt$") and "pw-123456" not in row["password_hash"]
    assert row["security_profile"] == 1
    code, out, _ = await run(db_url, "chargers", "list", "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [c["id"] for c in listed] == ["CP-1"] and listed[0]["online"] is False

    code, out, _ = await run(db_url, "idtags", "add", "TAG1", "--expires", "2030-01-01")
    assert code == 0
    code, out, _ = await run(db_url, "idtags", "add", "TAG2", "--blocked")
    code, out, _ = await run(db_url, "idtags", "list", "--json")
    tags = {t["id_tag"]: t for t in map(json.loads, out.splitlines())}
    assert tags["TAG1"]["status"] == "Accepted" and tags["TAG1"]["expiry_date"].startswith("2030-01-01")
    assert tags["TAG2"]["status"] == "Blocked"

    code, out, _ = await run(db_url, "chargers", "remove", "CP-1")
    assert code == 0
    assert await conn.fetchval("SELECT count(*) FROM charge_points") == 0


async def test_bad_input_gives_message_and_nonzero_exit(db_url, conn):
    code, _, err = await run(db_url, "chargers", "remove", "NOPE")
    assert code == 1 and "no charge point 'NOPE'" in err
    code, _, err = await run(db_url, "idtags", "add", "TAG", "--expires", "someday")
    assert code == 2 and "--expires" in err
    assert await conn.fetchval("SELECT count(*) FROM id_tags") == 0
    code, _, err = await run(db_url, "chargers", "add", "x" * 65)
    assert code == 2
    code, _, err = await run(db_url, "sessions", "list", env={"CSMS_HEARTBEAT_INTERVAL": "abc"})
    assert code == 2 and "CSMS_HEARTBEAT_INTERVAL" in err
    code, _, err = await run("postgresql://postgres@127.0.0.1:1/none", "sessions", "list")
    assert code == 1 and "cannot reach the database" in err


async def test_sessions_and_faults_list(csms):
    await csms.register("SIM-0001")
    await csms.add_tag("SIMTAG")
    report = await run_simulation(SimulatorConfig(url=csms.ocpp_url, ids=["SIM-0001"], samples=2,
                                                  meter_interval=0.05, fault_rate=1.0, sessions=1))
    assert not report["failed_chargers"]
    code, out, _ = await run(csms.db_url, "sessions", "list", "--json", "--charger", "SIM-0001")
    sessions = [json.loads(line) for line in out.splitlines()]
    assert len(sessions) == 1
    s = sessions[0]
    for key in ("id", "charge_point_id", "connector_id", "id_tag", "started_at", "stopped_at", "meter_start_wh",
                "meter_stop_wh", "energy_wh", "stop_reason"):
        assert key in s
    assert s["energy_wh"] == report["sessions"][0]["energy_wh"] and s["stop_reason"] == "EVDisconnected"
    code, out, _ = await run(csms.db_url, "sessions", "list", "--charger", "OTHER", "--json")
    assert out == ""
    code, out, _ = await run(csms.db_url, "sessions", "list")
    assert "SIM-0001" in out and "energy_wh" in out

    code, out, _ = await run(csms.db_url, "faults", "list", "--json")
    faults = [json.loads(line) for line in out.splitlines()]
    assert len(faults) == 1 and faults[0]["error_code"] == "GroundFailure"
    for key in ("charge_point_id", "connector_id", "error_code", "opened_at", "closed_at"):
        assert key in faults[0]
    assert faults[0]["closed_at"] is not None
    code, out, _ = await run(csms.db_url, "faults", "list", "--open", "--json")
    assert out == ""


async def test_db_upgrade_is_idempotent(db_url):
    code, out, _ = await run(db_url, "db", "upgrade")
    assert code == 0 and "up to date" in out
