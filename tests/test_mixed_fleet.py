"""A mixed fleet of OCPP 1.6, 2.0.1 and 2.1 chargers on one CSMS: records indistinguishable in kind."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from csms.simulator import SimulatorConfig, run_simulation

CSMS = str(Path(sys.executable).parent / "csms")
VERSIONS = ("1.6", "2.0.1", "2.1")


async def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    environ["CSMS_DATABASE_URL"] = db_url
    proc = await asyncio.create_subprocess_exec(CSMS, *args, env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def test_mixed_fleet_sessions_and_faults_alike(csms):
    fleet = {v: [f"V{v.replace('.', '')}-{i}" for i in range(3)] for v in VERSIONS}
    for ids in fleet.values():
        for cp_id in ids:
            await csms.register(cp_id)
    await csms.pool.execute("INSERT INTO id_tags (id_tag, max_active_transactions) VALUES ('SIMTAG', 100)")
    reports = await asyncio.gather(*(run_simulation(SimulatorConfig(
        url=csms.ocpp_url, ids=ids, version=v, sessions=2, meter_interval=0.02, samples=3, fault_rate=1.0, seed=3))
        for v, ids in fleet.items()))
    for report in reports:
        assert report["failed_chargers"] == [] and len(report["sessions"]) == 6 and report["faults"] == 6

    # Every session the chargers measured is stored with the same energy, whatever the version.
    measured = {(s["charge_point_id"], str(s["transaction_id"])): s for r in reports for s in r["sessions"]}
    rows = await csms.pool.fetch("SELECT * FROM sessions")
    assert len(rows) == len(measured) == 18
    for row in rows:
        m = measured[(row["charge_point_id"], row["transaction_id"])]
        assert (row["meter_start_wh"], row["meter_stop_wh"], row["energy_wh"]) == (
            m["meter_start"], m["meter_stop"], m["energy_wh"])

    # ... and looks the same in kind: the same columns filled, the same vocabulary.
    shared = ["charge_point_id", "transaction_id", "ocpp_version", "connector_id", "id_tag", "id_tag_status",
              "started_at", "stopped_at", "meter_start_wh", "meter_stop_wh", "energy_wh", "stop_reason"]
    by_version: dict[str, set] = {}
    for row in rows:
        filled = frozenset(c for c in shared if row[c] is not None)
        by_version.setdefault(row["ocpp_version"], set()).add(
            (filled, row["connector_id"], row["id_tag_status"], row["stop_reason"], row["anomaly"]))
    assert set(by_version) == set(VERSIONS)
    kinds = list(by_version.values())
    assert kinds[0] == kinds[1] == kinds[2] and len(kinds[0]) == 1
    assert all(isinstance(r["transaction_id"], str) for r in rows)

    # Faults: one per incident, same code, connector, source and life cycle for every version.
    faults = await csms.pool.fetch("SELECT f.*, cp.ocpp_version FROM faults f JOIN charge_points cp "
                                   "ON cp.id = f.charge_point_id")
    assert len(faults) == 18
    assert {(f["connector_id"], f["source"], f["error_code"], f["vendor_error_code"], f["closed_at"] is not None)
            for f in faults} == {(1, "status", "GroundFailure", "E42", True)}
    assert {f["ocpp_version"] for f in faults} == set(VERSIONS)

    # The command line shows them all the same way.
    code, out, err = await cli(csms.db_url, "chargers", "list", "--json")
    assert code == 0, err
    listed = {c["id"]: c for c in lines(out)}
    for v, ids in fleet.items():
        assert all(listed[cp_id]["ocpp_version"] == v for cp_id in ids)
    code, out, err = await cli(csms.db_url, "sessions", "list", "--json")
    assert code == 0, err
    sessions = lines(out)
    assert len(sessions) == 18 and {s["ocpp_version"] for s in sessions} == set(VERSIONS)
    assert len({frozenset(k for k, v in s.items() if v is not None) for s in sessions}) == 1
    code, out, err = await cli(csms.db_url, "faults", "list", "--json")
    assert code == 0, err
    assert {(f["error_code"], f["vendor_error_code"]) for f in lines(out)} == {("GroundFailure", "E42")}


async def test_simulate_command_for_each_version(csms):
    for version in ("2.0.1", "2.1"):
        prefix = f"SIM{version.replace('.', '')}"
        code, out, err = await cli(csms.db_url, "simulate", "--url", csms.ocpp_url, "--ocpp", version,
                                   "--chargers", "2", "--sessions", "1", "--samples", "2", "--meter-interval", "0.05",
                                   "--fault-rate", "0", "--register", "--prefix", prefix)
        assert code == 0, err
        report = json.loads(out.strip().splitlines()[-1])
        assert report["failed_chargers"] == [] and len(report["sessions"]) == 2
        rows = await csms.pool.fetch("SELECT * FROM sessions WHERE charge_point_id LIKE $1", prefix + "-%")
        assert sorted(r["energy_wh"] for r in rows) == sorted(s["energy_wh"] for s in report["sessions"])
        assert {r["ocpp_version"] for r in rows} == {version}
