"""OCPP 2.0.1 and 2.1 end to end: chargers built on the ocpp library (and a raw client for what a
library never sends) on real websockets, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
import websockets
from ocpp.v21 import call as call21
from ocpp.v201 import call as call201

from csms.gateway import CommandRejected
from csms.simulator import Charger16, connect, now_iso
from csms.simulator_v2x import charger_class

from .conftest import RawClient as Raw
from .conftest import wait_for

VERSIONS = ["2.0.1", "2.1"]
SUB = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
T0 = datetime(2024, 6, 1, 8, 0, tzinfo=timezone.utc)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def calls(version: str):
    return call201 if version == "2.0.1" else call21


class Online:
    """``async with Online(csms, "CP1", "2.0.1") as cp:`` — a connected, started 2.x library charger."""

    def __init__(self, csms, cp_id: str, version: str, **kw):
        self.csms, self.cp_id, self.version, self.kw = csms, cp_id, version, kw

    async def __aenter__(self):
        self.ws = await connect(self.csms.ocpp_url, self.cp_id, self.version, **self.kw)
        self.cp = charger_class(self.version)(self.cp_id, self.ws)
        self.task = asyncio.create_task(self.cp.start())
        return self.cp

    async def __aexit__(self, *exc):
        self.task.cancel()
        await self.ws.close()


class RawOnline:
    def __init__(self, csms, cp_id: str, version: str):
        self.csms, self.cp_id, self.version = csms, cp_id, version

    async def __aenter__(self) -> Raw:
        self.ws = await websockets.connect(f"{self.csms.ocpp_url}/{self.cp_id}", subprotocols=[SUB[self.version]])
        return Raw(self.ws)

    async def __aexit__(self, *exc):
        await self.ws.close()


def tx(event_type: str, seq: int, ts: datetime, tx_id: str = "TX-1", trigger: str = "MeterValuePeriodic",
       readings: list[tuple[datetime, float, str | None]] | None = None, **kw) -> dict:
    """A TransactionEvent payload."""
    p: dict = {"eventType": event_type, "timestamp": iso(ts), "triggerReason": trigger, "seqNo": seq,
               "transactionInfo": {"transactionId": tx_id, **kw.pop("info", {})}}
    if readings:
        p["meterValue"] = [{"timestamp": iso(t), "sampledValue": [
            {"value": v, **({"context": c} if c else {})}]} for t, v, c in readings]
    p.update(kw)
    return p


async def session(csms, cp_id: str, tx_id: str = "TX-1"):
    return await csms.pool.fetchrow("SELECT * FROM sessions WHERE charge_point_id=$1 AND transaction_id=$2",
                                    cp_id, tx_id)


# ----------------------------------------------------------------------------- handshake
async def test_highest_common_version_is_negotiated_and_stored(csms):
    await csms.register("CP1")
    async with websockets.connect(f"{csms.ocpp_url}/CP1", subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]) as ws:
        assert ws.subprotocol == "ocpp2.1"
        assert (await Raw(ws).call("Heartbeat", {}))[0] == 3
        assert await csms.pool.fetchval("SELECT ocpp_version FROM charge_points WHERE id='CP1'") == "2.1"
    async with websockets.connect(f"{csms.ocpp_url}/CP1", subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        await wait_for(lambda: csms.pool.fetchval(
            "SELECT ocpp_version = '2.0.1' FROM charge_points WHERE id='CP1'"))
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(f"{csms.ocpp_url}/CP1", subprotocols=["ocpp2.0", "ocpp1.5"])
    assert info.value.response.status_code == 400
    assert all(p in info.value.response.body for p in (b"ocpp2.1", b"ocpp2.0.1", b"ocpp1.6"))
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(f"{csms.ocpp_url}/CP1")  # no subprotocol at all
    assert info.value.response.status_code == 400


@pytest.mark.parametrize("version", VERSIONS)
async def test_basic_auth_profile_1(csms, version):
    await csms.register("SECURE", password="s3cret-pass")
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(csms.ocpp_url, "SECURE", version)
    assert info.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(csms.ocpp_url, "SECURE", version, password="wrong")
    assert info.value.response.status_code == 401
    async with Online(csms, "SECURE", version, password="s3cret-pass") as cp:
        assert (await cp.boot()).status == "Accepted"


# ----------------------------------------------------------------------------- messages
@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_heartbeat_status(csms, version):
    await csms.register("CP1")
    async with Online(csms, "CP1", version) as cp:
        boot = await cp.boot("FirmwareUpdate")
        assert boot.status == "Accepted" and boot.interval == 60
        hb = await cp.call(calls(version).Heartbeat())
        assert hb.current_time.endswith("Z")
        await cp.status(1, "Available")
        await cp.status(2, "Occupied")
        await cp.status(2, "Unavailable", connector_id=2)
    row = await csms.pool.fetchrow("SELECT * FROM charge_points WHERE id='CP1'")
    assert (row["vendor"], row["model"], row["serial_number"], row["firmware_version"], row["boot_reason"],
            row["ocpp_version"]) == ("CSMS-Sim", "Sim-AC7", "CP1", "1.0.0", "FirmwareUpdate", version)
    conns = await csms.pool.fetch("SELECT * FROM connectors WHERE charge_point_id='CP1' ORDER BY connector_id")
    assert [(c["connector_id"], c["evse_id"], c["evse_connector_id"], c["status"], c["error_code"])
            for c in conns] == [(1, 1, 1, "Available", "NoError"), (2, 2, 1, "Occupied", "NoError"),
                                (202, 2, 2, "Unavailable", "NoError")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_authorize_statuses(csms, version):
    await csms.register("CP1")
    await csms.add_tag("GOOD")
    await csms.add_tag("BLOCKED", status="Blocked")
    await csms.add_tag("OLD", expiry=datetime.now(timezone.utc) - timedelta(days=1))
    async with Online(csms, "CP1", version) as cp:
        async def status(tag, kind="ISO14443"):
            r = await cp.call(calls(version).Authorize(id_token={"idToken": tag, "type": kind}))
            return r.id_token_info["status"]

        assert await status("GOOD") == "Accepted"
        assert await status("BLOCKED") == "Blocked"
        assert await status("OLD") == "Expired"
        assert await status("NOBODY") == "Invalid"
        assert await status("", "NoAuthorization") == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
async def test_transaction_lifecycle(csms, version):
    await csms.register("CP1")
    await csms.add_tag("SIMTAG")
    async with Online(csms, "CP1", version) as cp:
        await cp.boot()
        await cp.status(1, "Available")
        measured = await cp.charge(1, samples=3, interval=0.01)
    s = await session(csms, "CP1", measured["transaction_id"])
    assert s["ocpp_version"] == version and s["transaction_id"] == measured["transaction_id"]
    assert (s["connector_id"], s["evse_id"], s["id_tag"], s["id_tag_status"]) == (1, 1, "SIMTAG", "Accepted")
    assert s["meter_start_wh"] == measured["meter_start"] and s["meter_stop_wh"] == measured["meter_stop"]
    assert s["energy_wh"] == measured["energy_wh"] > 0
    assert s["stop_reason"] == "EVDisconnected" and s["anomaly"] is None
    assert s["started_at"] < s["stopped_at"] and s["start_seen"] and s["number_of_phases"] == 3
    assert (s["last_seq_no"], s["end_seq_no"], s["charging_state"]) == (4, 4, "Idle")
    events = await csms.pool.fetch("SELECT seq_no, event_type FROM transaction_events WHERE transaction_id=$1 "
                                   "ORDER BY seq_no", measured["transaction_id"])
    assert [e["event_type"] for e in events] == ["Started", "Updated", "Updated", "Updated", "Ended"]
    mv = await csms.pool.fetch("SELECT * FROM meter_values WHERE session_id=$1 ORDER BY sampled_at, measurand",
                               s["id"])
    assert len(mv) == 1 + 3 * 2 + 1 and all(m["connector_id"] == 1 for m in mv)
    assert {m["context"] for m in mv} == {"Transaction.Begin", "Sample.Periodic", "Transaction.End"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_transaction_event_token_info(csms, version):
    await csms.register("CP1")
    await csms.add_tag("BLOCKED", status="Blocked")
    async with RawOnline(csms, "CP1", version) as raw:
        r = await raw.ok("TransactionEvent", tx("Started", 0, T0, trigger="Authorized",
                                                idToken={"idToken": "BLOCKED", "type": "ISO14443"},
                                                evse={"id": 1, "connectorId": 1}))
        assert r == {"idTokenInfo": {"status": "Blocked"}}
        assert await raw.ok("TransactionEvent", tx("Updated", 1, T0 + timedelta(minutes=1))) == {}
    s = await session(csms, "CP1")
    assert (s["id_tag"], s["id_tag_status"], s["id_token_type"]) == ("BLOCKED", "Blocked", "ISO14443")


@pytest.mark.parametrize("version", VERSIONS)
async def test_idempotent_out_of_order_and_late_events(csms, version):
    """Duplicates change nothing; events apply by seqNo and timestamp whatever their order; an Updated
    arriving after the Ended is recorded but does not reopen the session."""
    await csms.register("CP1")
    t = [T0 + timedelta(minutes=10 * i) for i in range(6)]
    async with RawOnline(csms, "CP1", version) as raw:
        await raw.ok("StatusNotification", {"timestamp": iso(t[0]), "connectorStatus": "Occupied", "evseId": 1,
                                            "connectorId": 1})
        start = tx("Started", 0, t[0], trigger="CablePluggedIn", evse={"id": 1, "connectorId": 1},
                   readings=[(t[0], 1000, "Transaction.Begin")], info={"chargingState": "EVConnected"})
        await raw.ok("TransactionEvent", start)
        await raw.ok("TransactionEvent", start)  # duplicate
        up2 = tx("Updated", 2, t[2], readings=[(t[2], 3000, "Sample.Periodic")], info={"chargingState": "SuspendedEV"})
        up1 = tx("Updated", 1, t[1], readings=[(t[1], 2000, "Sample.Periodic")], info={"chargingState": "Charging"})
        await raw.ok("TransactionEvent", up2)
        await raw.ok("TransactionEvent", up1)  # late: seq 1 after seq 2
        await raw.ok("TransactionEvent", up1)  # duplicate
        await raw.ok("TransactionEvent", up2)  # duplicate
        s = await session(csms, "CP1")
        assert s["stopped_at"] is None and s["charging_state"] == "SuspendedEV" and s["last_seq_no"] == 2
        await raw.ok("TransactionEvent", tx("Ended", 4, t[4], trigger="EVDeparted",
                                            readings=[(t[4], 5000, "Transaction.End")],
                                            info={"stoppedReason": "EVDisconnected", "chargingState": "Idle"}))
        # seq 3 was queued offline and comes after the Ended; seq 5 claims a time after the end
        await raw.ok("TransactionEvent", tx("Updated", 3, t[3], offline=True,
                                            readings=[(t[3], 4000, "Sample.Periodic")]))
        await raw.ok("TransactionEvent", tx("Updated", 5, t[5], readings=[(t[5], 9999, "Sample.Periodic")],
                                            info={"chargingState": "Charging"}))
        await raw.ok("TransactionEvent", tx("Ended", 4, t[4], trigger="EVDeparted"))  # duplicate Ended
    s = await session(csms, "CP1")
    assert (s["started_at"], s["stopped_at"], s["stop_reason"]) == (t[0], t[4], "EVDisconnected")
    assert (s["meter_start_wh"], s["meter_stop_wh"], s["energy_wh"]) == (1000, 5000, 4000)
    assert s["charging_state"] == "Idle" and s["connector_id"] == 1 and s["anomaly"] is None
    events = await csms.pool.fetch("SELECT seq_no, event_type, offline, after_end FROM transaction_events "
                                   "WHERE charge_point_id='CP1' ORDER BY seq_no")
    assert [(e["seq_no"], e["event_type"], e["offline"], e["after_end"]) for e in events] == [
        (0, "Started", False, False), (1, "Updated", False, False), (2, "Updated", False, False),
        (3, "Updated", True, True), (4, "Ended", False, False), (5, "Updated", False, True)]
    values = await csms.pool.fetch("SELECT value FROM meter_values WHERE session_id=$1 ORDER BY sampled_at", s["id"])
    assert [v["value"] for v in values] == [1000, 2000, 3000, 4000, 5000, 9999]  # each once


@pytest.mark.parametrize("version", VERSIONS)
async def test_arrival_order_does_not_matter(csms, version):
    """The same transaction delivered in order and in reverse order gives the same session."""
    await csms.register("CP1")
    await csms.add_tag("T1")
    t = [T0 + timedelta(minutes=15 * i) for i in range(4)]

    def events(tx_id):
        return [
            tx("Started", 0, t[0], tx_id, trigger="Authorized", idToken={"idToken": "T1", "type": "ISO14443"},
               evse={"id": 1, "connectorId": 1}, readings=[(t[0], 500, "Transaction.Begin")],
               info={"chargingState": "Charging"}, numberOfPhasesUsed=1),
            tx("Updated", 1, t[1], tx_id, readings=[(t[1], 800, None)], offline=True),
            tx("Updated", 2, t[2], tx_id, readings=[(t[2], 1100, None)], info={"chargingState": "SuspendedEV"},
               offline=True),
            tx("Ended", 3, t[3], tx_id, trigger="StopAuthorized", idToken={"idToken": "T1", "type": "ISO14443"},
               readings=[(t[3], 1250, "Transaction.End")], info={"stoppedReason": "Local"}, offline=True),
        ]

    async with RawOnline(csms, "CP1", version) as raw:
        for p in events("IN-ORDER"):
            await raw.ok("TransactionEvent", p)
        for p in reversed(events("REVERSED")):
            await raw.ok("TransactionEvent", p)
    cols = ["connector_id", "evse_id", "id_tag", "id_tag_status", "started_at", "stopped_at", "meter_start_wh",
            "meter_stop_wh", "energy_wh", "stop_reason", "stop_id_tag", "start_seen", "number_of_phases",
            "last_seq_no", "end_seq_no", "anomaly"]
    a, b = await session(csms, "CP1", "IN-ORDER"), await session(csms, "CP1", "REVERSED")
    assert {c: a[c] for c in cols} == {c: b[c] for c in cols}
    assert (a["energy_wh"], a["started_at"], a["id_tag"], a["id_tag_status"]) == (750, t[0], "T1", "Accepted")


@pytest.mark.parametrize("version", VERSIONS)
async def test_ended_without_started_is_a_complete_session(csms, version):
    await csms.register("CP1")
    t = [T0 + timedelta(minutes=30 * i) for i in range(3)]
    iv = "Energy.Active.Import.Interval"
    async with RawOnline(csms, "CP1", version) as raw:
        # The charger was offline for the whole transaction; only the Ended got through, with its
        # begin and end readings.
        await raw.ok("TransactionEvent", tx(
            "Ended", 7, t[2], "OFFLINE-1", trigger="EVDeparted", offline=True, evse={"id": 1},
            idToken={"idToken": "CARD", "type": "ISO14443"},
            readings=[(t[0], 100.0, "Transaction.Begin"), (t[2], 2100.0, "Transaction.End")],
            info={"stoppedReason": "EVDisconnected"}))
        # Another one reports only interval energy.
        p = tx("Ended", 3, t[2], "OFFLINE-2", trigger="EVDeparted", offline=True, evse={"id": 1},
               info={"stoppedReason": "PowerLoss"})
        p["meterValue"] = [{"timestamp": iso(t[i]), "sampledValue": [{"value": v, "measurand": iv}]}
                           for i, v in ((1, 700.0), (2, 300.0))]
        await raw.ok("TransactionEvent", p)
    s = await session(csms, "CP1", "OFFLINE-1")
    assert (s["started_at"], s["stopped_at"], s["meter_start_wh"], s["meter_stop_wh"], s["energy_wh"]) == (
        t[0], t[2], 100, 2100, 2000)
    assert (s["stop_reason"], s["id_tag"], s["stop_id_tag"], s["start_seen"], s["connector_id"]) == (
        "EVDisconnected", "CARD", "CARD", False, 1)
    s2 = await session(csms, "CP1", "OFFLINE-2")
    assert (s2["energy_wh"], s2["stop_reason"], s2["stopped_at"]) == (1000, "PowerLoss", t[2])
    assert s2["started_at"] <= t[1]


@pytest.mark.parametrize("version", VERSIONS)
async def test_seq_gaps_and_unknown_evse(csms, version):
    await csms.register("CP1")
    async with RawOnline(csms, "CP1", version) as raw:
        await raw.ok("StatusNotification", {"timestamp": iso(T0), "connectorStatus": "Available", "evseId": 1,
                                            "connectorId": 1})
        await raw.ok("TransactionEvent", tx("Started", 0, T0, "GAPS", evse={"id": 1},
                                            readings=[(T0, 10, "Transaction.Begin")]))
        await raw.ok("TransactionEvent", tx("Updated", 5, T0 + timedelta(minutes=5), "GAPS"))
        await raw.ok("TransactionEvent", tx("Ended", 9, T0 + timedelta(minutes=9), "GAPS",
                                            readings=[(T0 + timedelta(minutes=9), 90, "Transaction.End")]))
        # EVSE 7 was never reported by this charger; EVSE 0 is the charger itself.
        assert await raw.ok("TransactionEvent", tx("Started", 0, T0, "ODD-EVSE", evse={"id": 7})) == {}
        assert await raw.ok("TransactionEvent", tx("Started", 0, T0, "EVSE-ZERO", evse={"id": 0})) == {}
        assert (await raw.call("Heartbeat", {}))[0] == 3
    s = await session(csms, "CP1", "GAPS")
    assert (s["energy_wh"], s["last_seq_no"], s["anomaly"]) == (80, 9, None)
    odd = await session(csms, "CP1", "ODD-EVSE")
    assert (odd["anomaly"], odd["evse_id"], odd["connector_id"]) == ("unknown_evse", 7, 7)
    assert (await session(csms, "CP1", "EVSE-ZERO"))["anomaly"] == "unknown_evse"


@pytest.mark.parametrize("version", VERSIONS)
async def test_meter_values_outside_a_transaction(csms, version):
    await csms.register("CP1")
    async with Online(csms, "CP1", version) as cp:
        await cp.call(calls(version).MeterValues(evse_id=2, meter_value=[
            {"timestamp": now_iso(), "sampledValue": [{"value": 1.5, "unitOfMeasure": {"unit": "kWh"}}]}]))
    row = await csms.pool.fetchrow("SELECT * FROM meter_values WHERE charge_point_id='CP1'")
    assert (row["connector_id"], row["session_id"], row["value"], row["unit"]) == (2, None, 1500, "Wh")


# ----------------------------------------------------------------------------- faults, events, device model
@pytest.mark.parametrize("version", VERSIONS)
async def test_problem_events_and_faults_like_16(csms, version):
    await csms.register("CP1")
    async with Online(csms, "CP1", version) as cp:
        await cp.status(1, "Faulted")
        await cp.problem(1, True, "RCD", "Tripped", "E42")
        await cp.problem(1, False, "RCD", "Tripped", "E42")
        faults = await csms.pool.fetch("SELECT * FROM faults WHERE charge_point_id='CP1'")
        assert len(faults) == 1 and faults[0]["closed_at"] is None  # open until the status recovers
        await cp.status(1, "Available")
        # A problem of the charger itself, without a status.
        await cp.problem(0, True, "ChargingStation", "Problem", None)
        await cp.problem(0, True, "ChargingStation", "Problem", None)  # still there
        # A monitor event that is no problem.
        await cp.call(calls(version).NotifyEvent(generated_at=now_iso(), seq_no=0, event_data=[{
            "eventId": 99, "timestamp": now_iso(), "trigger": "Delta", "actualValue": "Occupied",
            "eventNotificationType": "HardWiredNotification",
            "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
            "variable": {"name": "AvailabilityState"}}]))
    faults = await csms.pool.fetch("SELECT * FROM faults WHERE charge_point_id='CP1' ORDER BY id")
    assert [(f["connector_id"], f["source"], f["error_code"], f["vendor_error_code"], f["closed_at"] is None)
            for f in faults] == [(1, "status", "GroundFailure", "E42", False), (0, "event", "OtherError", None, True)]
    assert faults[0]["component"] == "RCD" and faults[0]["variable"] == "Tripped"
    events = await csms.pool.fetch("SELECT event_id, connector_id, problem FROM device_events ORDER BY id")
    assert [(e["event_id"], e["connector_id"], e["problem"]) for e in events] == [
        (1, 1, True), (2, 1, False), (3, 0, True), (4, 0, True), (99, 1, None)]
    # ... and the problem clears
    async with Online(csms, "CP1", version) as cp:
        cp.event_id = 10
        await cp.problem(0, False, "ChargingStation", "Problem", None)
    assert await csms.pool.fetchval("SELECT count(*) FROM faults WHERE closed_at IS NULL") == 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_duplicate_notify_event_is_ignored(csms, version):
    await csms.register("CP1")
    data = {"eventId": 5, "timestamp": iso(T0), "trigger": "Delta", "actualValue": "true",
            "eventNotificationType": "HardWiredNotification", "component": {"name": "TokenReader"},
            "variable": {"name": "Problem"}}
    async with RawOnline(csms, "CP1", version) as raw:
        for _ in range(2):
            await raw.ok("NotifyEvent", {"generatedAt": iso(T0), "seqNo": 0, "eventData": [data]})
    assert await csms.pool.fetchval("SELECT count(*) FROM device_events") == 1
    f = await csms.pool.fetchrow("SELECT * FROM faults")
    assert (f["error_code"], f["connector_id"], f["source"]) == ("ReaderFailure", 0, "event")


@pytest.mark.parametrize("version", VERSIONS)
async def test_security_events_and_alarms(csms, version):
    await csms.register("CP1")
    async with Online(csms, "CP1", version) as cp:
        c = calls(version)
        await cp.call(c.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now_iso()))
        await cp.call(c.SecurityEventNotification(type="TamperDetectionActivated", timestamp=now_iso(),
                                                  tech_info="cabinet opened"))
        await cp.call(c.SecurityEventNotification(type="TamperDetectionActivated", timestamp=now_iso()))
    msgs = await csms.pool.fetch("SELECT payload FROM charger_messages WHERE action='SecurityEventNotification'")
    assert [m["payload"]["type"] for m in msgs] == ["StartupOfTheDevice", "TamperDetectionActivated",
                                                    "TamperDetectionActivated"]
    alarms = await csms.pool.fetch("SELECT * FROM faults WHERE source='security'")
    assert len(alarms) == 1
    assert (alarms[0]["error_code"], alarms[0]["info"], alarms[0]["connector_id"], alarms[0]["closed_at"]) == (
        "TamperDetectionActivated", "cabinet opened", 0, None)


async def test_security_alarm_from_16_too(csms):
    await csms.register("CP16")
    ws = await connect(csms.ocpp_url, "CP16", "1.6")
    cp = Charger16("CP16", ws)
    task = asyncio.create_task(cp.start())
    try:
        from ocpp.v16 import call as call16

        await cp.call(call16.SecurityEventNotification(type="TamperDetectionActivated", timestamp=now_iso(),
                                                       tech_info="lid"))
    finally:
        task.cancel()
        await ws.close()
    assert await csms.pool.fetchval("SELECT error_code FROM faults WHERE source='security'") == \
        "TamperDetectionActivated"
    assert await csms.pool.fetchval("SELECT count(*) FROM charger_messages") == 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_device_model_report_via_get_base_report(csms, version):
    await csms.register("CP1")
    async with Online(csms, "CP1", version) as cp:
        answer = await csms.app.gateway.call("CP1", "GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"})
        assert answer == {"status": "Accepted"}
        await wait_for(lambda: csms.pool.fetchval("SELECT count(*) >= 5 FROM device_variables"))
        cp.variables[("OCPPCommCtrlr", "HeartbeatInterval")] = "120"
        await cp.notify_report(8)
    rows = await csms.pool.fetch("SELECT * FROM device_variables WHERE charge_point_id='CP1' "
                                 "ORDER BY component, variable, attribute_type")
    got = {(r["component"], r["evse_id"], r["variable"], r["attribute_type"]): r["value"] for r in rows}
    assert got[("OCPPCommCtrlr", -1, "HeartbeatInterval", "Actual")] == "120"
    assert got[("EVSE", 1, "Power", "MaxSet")] == "7400"
    assert {r["request_id"] for r in rows} == {8}


@pytest.mark.parametrize("version", VERSIONS)
async def test_other_messages_stored(csms, version):
    await csms.register("CP1")
    c = calls(version)
    async with Online(csms, "CP1", version) as cp:
        await cp.call(c.FirmwareStatusNotification(status="Installed", request_id=1))
        await cp.call(c.LogStatusNotification(status="Uploaded", request_id=2))
        dt = await cp.call(c.DataTransfer(vendor_id="com.acme", message_id="x", data="hello"))
        assert dt.status == "Accepted"
        await cp.call(c.NotifyChargingLimit(charging_limit={"chargingLimitSource": "EMS"}, evse_id=1))
        await cp.call(c.ReservationStatusUpdate(reservation_id=3, reservation_update_status="Expired"))
        await cp.call(c.ClearedChargingLimit(charging_limit_source="EMS", evse_id=1))
        needs = await cp.call(c.NotifyEVChargingNeeds(evse_id=1, charging_needs={
            "requestedEnergyTransfer": "AC_three_phase"}))
        assert needs.status == "Rejected"
    rows = await csms.pool.fetch("SELECT action, payload FROM charger_messages ORDER BY id")
    assert [r["action"] for r in rows] == [
        "FirmwareStatusNotification", "LogStatusNotification", "DataTransfer", "NotifyChargingLimit",
        "ReservationStatusUpdate", "ClearedChargingLimit", "NotifyEVChargingNeeds"]
    assert rows[2]["payload"] == {"vendorId": "com.acme", "messageId": "x", "data": "hello"}


# ----------------------------------------------------------------------------- CSMS → charger
@pytest.mark.parametrize("version", VERSIONS)
async def test_csms_initiated_calls(csms, version):
    await csms.register("CP1")
    gw = csms.app.gateway
    async with Online(csms, "CP1", version) as cp:
        await cp.boot()
        assert await gw.call("CP1", "RequestStartTransaction", {
            "idToken": {"idToken": "T", "type": "Central"}, "remoteStartId": 1, "evseId": 1}) == {"status": "Accepted"}
        assert (await gw.call("CP1", "RequestStopTransaction", {"transactionId": "abc"}))["status"] == "Accepted"
        assert (await gw.call("CP1", "Reset", {"type": "OnIdle"}))["status"] == "Accepted"
        assert (await gw.call("CP1", "UnlockConnector", {"evseId": 1, "connectorId": 1}))["status"] == "Unlocked"
        assert (await gw.call("CP1", "ChangeAvailability", {"operationalStatus": "Inoperative"}))["status"] == \
            "Accepted"
        got = await gw.call("CP1", "GetVariables", {"getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            {"component": {"name": "Nope"}, "variable": {"name": "X"}}]})
        assert [(r["attributeStatus"], r.get("attributeValue")) for r in got["getVariableResult"]] == [
            ("Accepted", "300"), ("UnknownComponent", None)]
        got = await gw.call("CP1", "SetVariables", {"setVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
             "attributeValue": "60"}]})
        assert got["setVariableResult"][0]["attributeStatus"] == "Accepted"
        assert (await gw.call("CP1", "TriggerMessage", {"requestedMessage": "Heartbeat"}))["status"] == "Accepted"
        assert (await gw.call("CP1", "ClearCache", {}))["status"] == "Accepted"
        assert (await gw.call("CP1", "DataTransfer", {"vendorId": "com.acme"}))["data"] == "pong"
        # An action this charger has no handler for is answered NotImplemented in 2.1 as well
        # (the library's 2.1 ChargePoint would stay silent; the simulator fixes that).
        with pytest.raises(CommandRejected) as info:
            await gw.call("CP1", "CostUpdated", {"totalCost": 1.5, "transactionId": "abc"}, timeout=5)
        assert info.value.code == "NotImplemented"
    assert [a for a, _ in cp.received] == ["RequestStartTransaction", "RequestStopTransaction", "Reset",
                                           "UnlockConnector", "ChangeAvailability", "GetVariables", "SetVariables",
                                           "TriggerMessage", "ClearCache", "DataTransfer"]
    assert cp.availability == "Inoperative" and cp.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "60"


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("version", ["1.6", *VERSIONS])
async def test_unknown_action_is_answered_in_every_version(csms, version):
    await csms.register("CP1")
    async with RawOnline(csms, "CP1", version) as raw:
        reply = await raw.call("FlyToTheMoon", {})
        assert reply[:3] == [4, "m1", "NotImplemented"]
        # a real OCPP action this CSMS does not take from a charger
        reply = await raw.call("Reset", {"type": "OnIdle"} if version != "1.6" else {"type": "Soft"})
        assert reply[:3] == [4, "m2", "NotSupported"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_bad_input_gets_callerrors_and_harms_nothing(csms, version):
    await csms.register("BAD")
    await csms.register("GOOD")
    await csms.add_tag("SIMTAG")
    async with Online(csms, "GOOD", version) as good:
        await good.boot()
        await good.status(1, "Available")
        async with RawOnline(csms, "BAD", version) as raw:
            ws = raw.ws
            assert (await raw.send_raw('[2,"a1","Heartbeat",{'))[:3] == [4, "-1", "RpcFrameworkError"]
            assert (await raw.send_raw('[7,"a2","Heartbeat",{}]'))[:3] == [4, "a2", "MessageTypeNotSupported"]
            assert (await raw.send_raw('"just a string"'))[:3] == [4, "-1", "RpcFrameworkError"]
            assert (await raw.send_raw('[2,"a3","Heartbeat"]'))[:3] == [4, "a3", "RpcFrameworkError"]
            reply = await raw.call("StatusNotification", {"timestamp": now_iso(), "connectorStatus": "Flying",
                                                          "evseId": 1, "connectorId": 1})
            assert reply[0] == 4 and reply[2] == "PropertyConstraintViolation"
            reply = await raw.call("StatusNotification", {"timestamp": now_iso(), "connectorStatus": "Available"})
            assert reply[0] == 4 and reply[2] == "OccurrenceConstraintViolation"
            reply = await raw.call("TransactionEvent", tx("Started", "zero", T0))
            assert reply[0] == 4 and reply[2] == "TypeConstraintViolation"
            reply = await raw.call("TransactionEvent", {**tx("Started", 0, T0), "colour": "red"})
            assert reply[0] == 4 and reply[2] == "FormatViolation"
            reply = await raw.call("TransactionEvent", tx("Started", 0, T0) | {"timestamp": "2024-02-30T00:00:00Z"})
            assert reply[0] == 4 and reply[2] in ("TypeConstraintViolation", "PropertyConstraintViolation")
            # responses to nothing are ignored
            await ws.send('[3,"never-sent",{}]')
            await ws.send('[4,"never-sent-either","GenericError","",{}]')
            if version == "2.1":  # SEND and CALLRESULTERROR exist in 2.1 only and are never answered
                await ws.send(json.dumps([6, "s1", "NotifyPeriodicEventStream",
                                          {"id": 1, "pending": 0, "basetime": iso(T0), "data": []}]))
                await ws.send('[5,"never-sent-3","GenericError","",{}]')
            assert (await raw.call("Heartbeat", {}))[0] == 3
            await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * 300_000}]))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1009
        measured = await good.charge(1, samples=2, interval=0.01)
    s = await session(csms, "GOOD", measured["transaction_id"])
    assert s["energy_wh"] == measured["energy_wh"]
    assert await csms.pool.fetchval("SELECT count(*) FROM sessions WHERE charge_point_id='BAD'") == 0
    assert await csms.pool.fetchval("SELECT count(*) FROM transaction_events WHERE charge_point_id='BAD'") == 0


async def test_charger_switching_versions_between_connections(csms):
    await csms.register("FLIP")
    await csms.add_tag("SIMTAG")
    ws = await connect(csms.ocpp_url, "FLIP", "1.6")
    cp16 = Charger16("FLIP", ws)
    task = asyncio.create_task(cp16.start())
    await cp16.boot()
    m16 = await cp16.charge(1, samples=1, interval=0.01)
    task.cancel()
    await ws.close()
    for version in VERSIONS:
        async with Online(csms, "FLIP", version) as cp:
            await cp.boot()
            await cp.status(1, "Available")
            m2 = await cp.charge(1, samples=1, interval=0.01)
            assert await csms.pool.fetchval("SELECT ocpp_version FROM charge_points WHERE id='FLIP'") == version
            s = await session(csms, "FLIP", m2["transaction_id"])
            assert s["energy_wh"] == m2["energy_wh"] and s["ocpp_version"] == version
    # and back to 1.6: the earlier data is intact and the charger works
    ws = await connect(csms.ocpp_url, "FLIP", "1.6")
    raw = Raw(ws)
    assert (await raw.call("Heartbeat", {}))[0] == 3
    await ws.close()
    s16 = await session(csms, "FLIP", str(m16["transaction_id"]))
    assert s16["energy_wh"] == m16["energy_wh"] and s16["ocpp_version"] == "1.6"
    await wait_for(lambda: csms.pool.fetchval(
        "SELECT count(*) = 4 FROM charger_connections WHERE disconnected_at IS NOT NULL"))
    versions = [r["ocpp_version"] for r in await csms.pool.fetch(
        "SELECT ocpp_version FROM charger_connections WHERE charge_point_id='FLIP' ORDER BY id")]
    assert versions == ["1.6", "2.0.1", "2.1", "1.6"]


# ----------------------------------------------------------------------------- store, no sockets
async def test_store_applies_a_batch_with_several_events_per_session(conn):
    """One bulk call may hold several events of one session (and repeats): applied round by round."""
    from csms import db, store
    from csms.group_commit import insert_rows
    from csms.versions import v2x

    await db._init_connection(conn)
    await conn.execute("INSERT INTO charge_points (id) VALUES ('CP1')")
    t = [T0 + timedelta(minutes=i) for i in range(4)]
    payloads = [
        tx("Ended", 3, t[3], "B1", readings=[(t[3], 400, "Transaction.End")], info={"stoppedReason": "Remote"}),
        tx("Started", 0, t[0], "B1", evse={"id": 1}, readings=[(t[0], 100, "Transaction.Begin")]),
        tx("Updated", 1, t[1], "B1", readings=[(t[1], 200, None)]),
        tx("Updated", 1, t[1], "B1", readings=[(t[1], 200, None)]),
        tx("Started", 0, t[0], "B2", evse={"id": 1}),
    ]
    records = [("CP1", "2.0.1", v2x.decode("TransactionEvent", p), T0) for p in payloads]
    async with conn.transaction():
        results = await store.transaction_events(conn, records)
        await insert_rows(conn, (), [row for r in results for row in r.rows])
    assert [r.duplicate for r in results] == [False, False, False, True, False]
    assert results[0].stopped and results[1].started and results[4].created
    s = await conn.fetchrow("SELECT * FROM sessions WHERE transaction_id='B1'")
    assert (s["started_at"], s["stopped_at"], s["energy_wh"], s["stop_reason"]) == (t[0], t[3], 300, "Remote")
    assert await conn.fetchval("SELECT count(*) FROM meter_values WHERE transaction_id='B1'") == 3


async def test_light_path_repeat_stored_by_another_connection(csms):
    """A plain Updated event the connection cannot know is a repeat (stored through an earlier
    connection of the charger whose write committed late) is answered, not written twice."""
    await csms.register("CP1")
    t = [T0 + timedelta(minutes=i) for i in range(5)]
    async with RawOnline(csms, "CP1", "2.0.1") as raw:
        await raw.ok("TransactionEvent", tx("Started", 0, t[0], evse={"id": 1, "connectorId": 1},
                                            readings=[(t[0], 100, "Transaction.Begin")]))
        await raw.ok("TransactionEvent", tx("Updated", 1, t[1], readings=[(t[1], 200, None)]))
        # seq 2 arrives through a connection that is gone, and commits only now
        await csms.pool.execute(
            """INSERT INTO transaction_events (charge_point_id, transaction_id, seq_no, event_type, event_at,
                   samples, ocpp_version) VALUES ('CP1', 'TX-1', 2, 'Updated', $1, 1, '2.0.1')""", t[2])
        await csms.pool.execute(
            """INSERT INTO meter_values (charge_point_id, connector_id, session_id, transaction_id, sampled_at,
                   measurand, value) SELECT 'CP1', 1, id, 'TX-1', $1, 'Energy.Active.Import.Register', 300
               FROM sessions WHERE transaction_id='TX-1'""", t[2])
        # the charger, never having had the answer, sends seq 2 again on this connection
        assert await raw.ok("TransactionEvent", tx("Updated", 2, t[2], readings=[(t[2], 300, None)])) == {}
        await raw.ok("TransactionEvent", tx("Updated", 3, t[3], readings=[(t[3], 400, None)]))
        await raw.ok("TransactionEvent", tx("Updated", 3, t[3], readings=[(t[3], 400, None)]))  # a plain repeat
        await raw.ok("TransactionEvent", tx("Ended", 4, t[4], readings=[(t[4], 500, "Transaction.End")]))
    s = await session(csms, "CP1")
    assert (s["energy_wh"], s["last_seq_no"]) == (400, 4)
    values = await csms.pool.fetch("SELECT value FROM meter_values WHERE session_id=$1 ORDER BY sampled_at", s["id"])
    assert [v["value"] for v in values] == [100, 200, 300, 400, 500]  # each once
    seqs = await csms.pool.fetch("SELECT seq_no, samples FROM transaction_events WHERE transaction_id='TX-1' "
                                 "ORDER BY seq_no")
    assert [(r["seq_no"], r["samples"]) for r in seqs] == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]
