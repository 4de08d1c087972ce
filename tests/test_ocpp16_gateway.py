"""OCPP 1.6J end to end: real chargers (the ocpp library) on real websockets, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
import websockets
from ocpp.v16 import call

from csms.app import CsmsApp
from csms.simulator import Charger16, connect, now_iso

from .conftest import RawClient as Raw
from .conftest import make_settings, wait_for


async def open_charger(csms, cp_id: str, **kw):
    ws = await connect(csms.ocpp_url, cp_id, "1.6", **kw)
    cp = Charger16(cp_id, ws)
    task = asyncio.create_task(cp.start())
    return ws, cp, task


class Online:
    """``async with Online(csms, "CP1") as cp:`` — a connected, started 1.6 charger."""

    def __init__(self, csms, cp_id: str, **kw):
        self.csms, self.cp_id, self.kw = csms, cp_id, kw

    async def __aenter__(self) -> Charger16:
        self.ws, self.cp, self.task = await open_charger(self.csms, self.cp_id, **self.kw)
        return self.cp

    async def __aexit__(self, *exc):
        self.task.cancel()
        await self.ws.close()


# ----------------------------------------------------------------------------- handshake
async def test_unknown_charger_refused_with_404(csms):
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(csms.ocpp_url, "NOPE")
    assert info.value.response.status_code == 404


async def test_basic_auth(csms):
    await csms.register("SECURE", password="s3cret-pass")
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(csms.ocpp_url, "SECURE")
    assert info.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(csms.ocpp_url, "SECURE", password="wrong")
    assert info.value.response.status_code == 401
    async with Online(csms, "SECURE", password="s3cret-pass") as cp:
        result = await cp.boot()
        assert result.status == "Accepted"


async def test_no_common_subprotocol_refused(csms):
    await csms.register("CP1")
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(f"{csms.ocpp_url}/CP1", subprotocols=["ocpp1.5"])
    assert info.value.response.status_code == 400
    assert b"ocpp1.6" in info.value.response.body


async def test_second_connection_replaces_first(csms):
    await csms.register("CP1")
    first = await connect(csms.ocpp_url, "CP1")
    second = await connect(csms.ocpp_url, "CP1")
    await asyncio.wait_for(first.wait_closed(), 5)
    assert first.close_code == 1000
    raw = Raw(second)
    reply = await raw.call("Heartbeat", {})
    assert reply[0] == 3
    assert csms.app.gateway.connections["CP1"].ws.id == (await _server_side_id(csms, "CP1"))
    await second.close()


async def _server_side_id(csms, cp_id):
    return csms.app.gateway.connections[cp_id].ws.id


# ----------------------------------------------------------------------------- messages
async def test_boot_heartbeat_and_charger_info(csms):
    await csms.register("CP1")
    async with Online(csms, "CP1") as cp:
        boot = await cp.call(call.BootNotification(
            charge_point_vendor="ACME", charge_point_model="X1", charge_point_serial_number="SN1",
            charge_box_serial_number="BOX1", firmware_version="2.3", iccid="8986", imsi="4600",
            meter_type="M", meter_serial_number="MS1"))
        assert boot.status == "Accepted" and boot.interval == 60
        hb = await cp.call(call.Heartbeat())
        assert abs(datetime.fromisoformat(hb.current_time.replace("Z", "+00:00"))
                   - datetime.now(timezone.utc)) < timedelta(seconds=5)
        row = await csms.pool.fetchrow("SELECT * FROM charge_points WHERE id='CP1'")
        assert (row["vendor"], row["model"], row["serial_number"], row["charge_box_serial_number"],
                row["firmware_version"], row["iccid"], row["imsi"], row["meter_type"],
                row["meter_serial_number"]) == ("ACME", "X1", "SN1", "BOX1", "2.3", "8986", "4600", "M", "MS1")
        assert row["ocpp_version"] == "1.6" and row["node_id"] == csms.app.settings.node_id
        assert row["lease_expires_at"] > datetime.now(timezone.utc)
    await wait_for(lambda: csms.pool.fetchval("SELECT node_id IS NULL FROM charge_points WHERE id='CP1'"))
    conns = await csms.pool.fetch("SELECT * FROM charger_connections WHERE charge_point_id='CP1'")
    assert len(conns) == 1 and conns[0]["disconnected_at"] is not None


async def test_status_connector_zero_faults_and_late_messages(csms):
    await csms.register("CP1")
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    ts = lambda s: (t0 + timedelta(seconds=s)).isoformat().replace("+00:00", "Z")  # noqa: E731
    async with Online(csms, "CP1") as cp:
        await cp.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available",
                                              timestamp=ts(0)))
        await cp.call(call.StatusNotification(connector_id=1, error_code="GroundFailure", status="Faulted",
                                              timestamp=ts(10), vendor_id="ACME", vendor_error_code="E7",
                                              info="leak"))
        faults = await csms.pool.fetch("SELECT * FROM faults")
        assert len(faults) == 1 and faults[0]["closed_at"] is None
        assert (faults[0]["error_code"], faults[0]["vendor_error_code"], faults[0]["info"]) == (
            "GroundFailure", "E7", "leak")
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available",
                                              timestamp=ts(20)))
        # A late message from the charger's offline queue, older than the current status.
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging",
                                              timestamp=ts(5)))
        # An error code with a non-Faulted status is a fault too.
        await cp.call(call.StatusNotification(connector_id=2, error_code="HighTemperature", status="Charging",
                                              timestamp=ts(30)))
    rows = {r["connector_id"]: r for r in await csms.pool.fetch("SELECT * FROM connectors WHERE charge_point_id='CP1'")}
    assert rows[0]["status"] == "Available"
    assert rows[1]["status"] == "Available"  # not overwritten by the older Charging
    assert rows[1]["status_at"] == t0 + timedelta(seconds=20)
    assert rows[2]["error_code"] == "HighTemperature"
    history = await csms.pool.fetchval("SELECT count(*) FROM status_history WHERE charge_point_id='CP1'")
    assert history == 5
    faults = await csms.pool.fetch("SELECT * FROM faults ORDER BY opened_at")
    assert [(f["connector_id"], f["closed_at"]) for f in faults] == [
        (1, t0 + timedelta(seconds=20)), (2, None)]


async def test_late_fault_is_recorded_closed(csms):
    await csms.register("CP1")
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    async with Online(csms, "CP1") as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available",
                                              timestamp=(t0 + timedelta(minutes=5)).isoformat()))
        await cp.call(call.StatusNotification(connector_id=1, error_code="PowerMeterFailure", status="Faulted",
                                              timestamp=t0.isoformat()))
    fault = await csms.pool.fetchrow("SELECT * FROM faults")
    assert fault["opened_at"] == t0 and fault["closed_at"] == t0 + timedelta(minutes=5)
    assert await csms.pool.fetchval("SELECT status FROM connectors WHERE connector_id=1") == "Available"


async def test_authorize_statuses(csms):
    await csms.register("CP1")
    await csms.add_tag("OK")
    await csms.add_tag("BLOCKED", "Blocked")
    await csms.add_tag("OLD", expiry=datetime.now(timezone.utc) - timedelta(days=1))
    future = datetime.now(timezone.utc) + timedelta(days=30)
    await csms.add_tag("LATER", expiry=future)
    async with Online(csms, "CP1") as cp:
        got = {}
        for tag in ("OK", "BLOCKED", "OLD", "UNKNOWN", "LATER"):
            got[tag] = (await cp.call(call.Authorize(id_tag=tag))).id_tag_info
        assert {k: v["status"] for k, v in got.items()} == {
            "OK": "Accepted", "BLOCKED": "Blocked", "OLD": "Expired", "UNKNOWN": "Invalid", "LATER": "Accepted"}
        assert got["LATER"]["expiry_date"].startswith(future.strftime("%Y-%m-%dT%H:%M"))
        await cp.call(call.StartTransaction(connector_id=1, id_tag="OK", meter_start=0, timestamp=now_iso()))
        again = await cp.call(call.Authorize(id_tag="OK"))
        assert again.id_tag_info["status"] == "ConcurrentTx"
        second = await cp.call(call.StartTransaction(connector_id=2, id_tag="OK", meter_start=0,
                                                     timestamp=now_iso()))
        assert second.id_tag_info["status"] == "ConcurrentTx"


async def test_session_with_meter_values_and_transaction_data(csms):
    await csms.register("CP1")
    await csms.add_tag("TAG")
    async with Online(csms, "CP1") as cp:
        start = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG", meter_start=1000,
                                                    timestamp="2024-05-01T10:00:00Z"))
        tx = start.transaction_id
        assert start.id_tag_info["status"] == "Accepted"
        # Committed before the answer: visible at once from another connection.
        row = await csms.pool.fetchrow("SELECT * FROM sessions WHERE transaction_id=$1", str(tx))
        assert row is not None and row["meter_start_wh"] == 1000
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
            {"timestamp": "2024-05-01T10:15:00Z", "sampledValue": [
                {"value": "2.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register",
                 "context": "Sample.Periodic", "location": "Outlet"},
                {"value": "230.1", "unit": "V", "measurand": "Voltage", "phase": "L1-N"}]}]))
        assert await csms.pool.fetchval("SELECT count(*) FROM meter_values") == 2
        stop = await cp.call(call.StopTransaction(
            meter_stop=4000, timestamp="2024-05-01T10:30:00.5+00:00", transaction_id=tx, reason="EVDisconnected",
            id_tag="TAG", transaction_data=[{"timestamp": "2024-05-01T10:30:00Z", "sampledValue": [
                {"value": "4000", "context": "Transaction.End"}]}]))
        assert stop.id_tag_info["status"] == "Accepted"
    s = await csms.pool.fetchrow("SELECT * FROM sessions WHERE transaction_id=$1", str(tx))
    assert (s["energy_wh"], s["stop_reason"], s["meter_stop_wh"]) == (3000, "EVDisconnected", 4000)
    assert s["stopped_at"] == datetime(2024, 5, 1, 10, 30, 0, 500000, tzinfo=timezone.utc)
    mv = await csms.pool.fetch("SELECT * FROM meter_values ORDER BY sampled_at, measurand")
    assert len(mv) == 3 and all(r["session_id"] == s["id"] for r in mv)
    energy = [r for r in mv if r["measurand"] == "Energy.Active.Import.Register"]
    assert [(r["value"], r["unit"], r["context"]) for r in energy] == [
        (2500.0, "Wh", "Sample.Periodic"), (4000.0, "Wh", "Transaction.End")]
    volt = [r for r in mv if r["measurand"] == "Voltage"][0]
    assert (volt["value"], volt["phase"], volt["unit"]) == (230.1, "L1-N", "V")
    # Stored in the month's partition, not the default one.
    assert await csms.pool.fetchval("SELECT count(*) FROM meter_values_202405") == 3


async def test_idempotent_start_and_stop(csms):
    await csms.register("CP1")
    await csms.add_tag("TAG")
    start = call.StartTransaction(connector_id=1, id_tag="TAG", meter_start=500, timestamp="2024-06-01T08:00:00Z")
    async with Online(csms, "CP1") as cp:
        first = await cp.call(start)
    # The charger reconnects and repeats the same StartTransaction (it never saw the answer).
    async with Online(csms, "CP1") as cp:
        again = await cp.call(start)
        assert again.transaction_id == first.transaction_id
        assert again.id_tag_info["status"] == "Accepted"
        stop = call.StopTransaction(meter_stop=800, timestamp="2024-06-01T09:00:00Z",
                                    transaction_id=first.transaction_id, reason="Local")
        await cp.call(stop)
        before = await csms.pool.fetchrow("SELECT * FROM sessions")
        await cp.call(call.StopTransaction(meter_stop=999, timestamp="2024-06-01T09:30:00Z",
                                           transaction_id=first.transaction_id, reason="Remote"))
        after = await csms.pool.fetchrow("SELECT * FROM sessions")
    assert await csms.pool.fetchval("SELECT count(*) FROM sessions") == 1
    assert dict(before) == dict(after)
    assert after["energy_wh"] == 300


async def test_stop_for_unknown_transaction_is_recorded(csms):
    await csms.register("CP1")
    async with Online(csms, "CP1") as cp:
        result = await cp.call(call.StopTransaction(meter_stop=1234, timestamp="2024-06-01T09:00:00Z",
                                                    transaction_id=987654, reason="PowerLoss"))
        assert result.id_tag_info is None
    s = await csms.pool.fetchrow("SELECT * FROM sessions WHERE transaction_id='987654'")
    assert s["anomaly"] == "start_missing" and s["meter_stop_wh"] == 1234 and s["stop_reason"] == "PowerLoss"


async def test_notifications_stored(csms):
    await csms.register("CP1")
    async with Online(csms, "CP1") as cp:
        dt = await cp.call(call.DataTransfer(vendor_id="com.acme", message_id="x", data="hello"))
        assert dt.status == "Accepted"
        await cp.call(call.DiagnosticsStatusNotification(status="Uploaded"))
        await cp.call(call.FirmwareStatusNotification(status="Installed"))
    rows = await csms.pool.fetch("SELECT action, payload FROM charger_messages ORDER BY id")
    assert [(r["action"], r["payload"]) for r in rows] == [
        ("DataTransfer", {"vendorId": "com.acme", "messageId": "x", "data": "hello"}),
        ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
        ("FirmwareStatusNotification", {"status": "Installed"}),
    ]


@pytest.mark.parametrize("ts", ["2024-07-01T12:00:00Z", "2024-07-01T12:00:00.123Z",
                                "2024-07-01T20:00:00+08:00", "2024-07-01T12:00:00.123456+00:00"])
async def test_timestamp_forms(csms, ts):
    await csms.register("CP1")
    async with websockets.connect(f"{csms.ocpp_url}/CP1", subprotocols=["ocpp1.6"]) as ws:
        reply = await Raw(ws).call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                        "timestamp": ts})
        assert reply[0] == 3
    started = await csms.pool.fetchval("SELECT started_at FROM sessions")
    assert started.replace(microsecond=0) == datetime(2024, 7, 1, 12, tzinfo=timezone.utc)


# ----------------------------------------------------------------------------- bad input
async def test_bad_input_gets_callerrors_and_harms_nothing(csms):
    await csms.register("BAD")
    await csms.register("GOOD")
    await csms.add_tag("TAG")
    async with Online(csms, "GOOD") as good:
        started = await good.call(call.StartTransaction(connector_id=1, id_tag="TAG", meter_start=10,
                                                        timestamp=now_iso()))
        async with websockets.connect(f"{csms.ocpp_url}/BAD", subprotocols=["ocpp1.6"]) as ws:
            raw = Raw(ws)
            reply = await raw.send_raw('[2,"a1","Heartbeat",{')
            assert reply[:3] == [4, "-1", "FormationViolation"]
            reply = await raw.send_raw('[7,"a2","Heartbeat",{}]')
            assert reply[:3] == [4, "a2", "ProtocolError"]
            reply = await raw.call("FlyToTheMoon", {})
            assert reply[0] == 4 and reply[2] == "NotImplemented"
            reply = await raw.call("RemoteStartTransaction", {"idTag": "X"})
            assert reply[0] == 4 and reply[2] == "NotSupported"
            reply = await raw.call("StartTransaction", {"connectorId": "one", "idTag": "T", "meterStart": 0,
                                                        "timestamp": now_iso()})
            assert reply[0] == 4 and reply[2] == "TypeConstraintViolation"
            reply = await raw.call("StatusNotification", {"connectorId": 1, "status": "Available"})
            assert reply[0] == 4 and reply[2] == "OccurenceConstraintViolation"
            reply = await raw.call("StatusNotification", {"connectorId": 1, "status": "Flying",
                                                          "errorCode": "NoError"})
            assert reply[0] == 4 and reply[2] == "PropertyConstraintViolation"
            reply = await raw.send_raw('"just a string"')
            assert reply[:3] == [4, "-1", "FormationViolation"]
            # A CALLRESULT for a message we never sent is logged and ignored ...
            await ws.send('[3,"never-sent",{}]')
            await ws.send('[4,"never-sent-either","GenericError","",{}]')
            # ... and the connection still works.
            assert (await raw.call("Heartbeat", {}))[0] == 3
            # Oversized frame: the connection is closed with 1009 (message too big).
            await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * 300_000}]))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1009
        # The other charger was not affected and its data is intact.
        await good.call(call.MeterValues(connector_id=1, transaction_id=started.transaction_id, meter_value=[
            {"timestamp": now_iso(), "sampledValue": [{"value": "20"}]}]))
        await good.call(call.StopTransaction(meter_stop=30, timestamp=now_iso(),
                                             transaction_id=started.transaction_id))
    s = await csms.pool.fetchrow("SELECT * FROM sessions WHERE charge_point_id='GOOD'")
    assert s["energy_wh"] == 20
    assert await csms.pool.fetchval("SELECT count(*) FROM sessions WHERE charge_point_id='BAD'") == 0


async def test_invalid_timestamp_that_passes_the_schema(csms):
    await csms.register("CP1")
    async with websockets.connect(f"{csms.ocpp_url}/CP1", subprotocols=["ocpp1.6"]) as ws:
        reply = await Raw(ws).call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                        "timestamp": "2024-02-30T00:00:00Z"})
        assert reply[0] == 4 and reply[2] in ("TypeConstraintViolation", "PropertyConstraintViolation")
        assert (await Raw(ws).call("Heartbeat", {}))[0] == 3


# ----------------------------------------------------------------------------- restarts
async def test_server_restart_mid_session(db_url):
    settings = make_settings()
    app = CsmsApp(settings, db_url)
    await app.start()
    port = app.gateway.ports[0]
    url = f"ws://127.0.0.1:{port}/ocpp"
    await app.pool.execute("INSERT INTO charge_points (id) VALUES ('CP1')")
    await app.pool.execute("INSERT INTO id_tags (id_tag) VALUES ('TAG')")
    ws = await connect(url, "CP1")
    cp = Charger16("CP1", ws)
    task = asyncio.create_task(cp.start())
    started = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG", meter_start=100,
                                                  timestamp=now_iso()))
    await app.stop()  # the server goes away mid-session
    task.cancel()
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 1001

    app2 = CsmsApp(make_settings(ocpp_port=port), db_url)
    await app2.start()
    try:
        ws = await connect(url, "CP1")
        cp = Charger16("CP1", ws)
        task = asyncio.create_task(cp.start())
        await cp.call(call.MeterValues(connector_id=1, transaction_id=started.transaction_id, meter_value=[
            {"timestamp": now_iso(), "sampledValue": [{"value": "600"}]}]))
        await cp.call(call.StopTransaction(meter_stop=1100, timestamp=now_iso(),
                                           transaction_id=started.transaction_id, reason="Local"))
        task.cancel()
        await ws.close()
        s = await app2.pool.fetchrow("SELECT * FROM sessions")
        assert s["energy_wh"] == 1000 and s["stopped_at"] is not None
        assert await app2.pool.fetchval("SELECT count(*) FROM meter_values WHERE session_id=$1", s["id"]) == 1
    finally:
        await app2.stop()


async def test_many_chargers_concurrently(csms):
    """Group commit under concurrency: 30 chargers, every session stored with the right energy."""
    from csms.simulator import SimulatorConfig, run_simulation

    ids = [f"C{i:03d}" for i in range(30)]
    for i in ids:
        await csms.register(i)
    await csms.add_tag("SIMTAG")
    report = await run_simulation(SimulatorConfig(url=csms.ocpp_url, ids=ids, samples=4, meter_interval=0.02,
                                                  fault_rate=0.0, sessions=2))
    assert not report["failed_chargers"]
    rows = await csms.pool.fetch("SELECT charge_point_id, transaction_id, energy_wh FROM sessions")
    assert len(rows) == 60
    measured = {(s["charge_point_id"], str(s["transaction_id"])): s["energy_wh"] for s in report["sessions"]}
    assert {(r["charge_point_id"], r["transaction_id"]): r["energy_wh"] for r in rows} == measured
    assert await csms.pool.fetchval("SELECT count(*) FROM meter_values") == 60 * 4 * 2
    assert csms.app.committer.batches < csms.app.committer.items  # batching happened
