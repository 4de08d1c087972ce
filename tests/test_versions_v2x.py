"""OCPP 2.0.1 / 2.1 ⇄ domain events: pure mapping tests (no sockets, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from csms import validation
from csms.events import (
    STOP_REASONS, AuthorizeRequest, Boot, BootResult, DeviceEventReport, DeviceReport, Heartbeat, IdTagInfo,
    MeterReport, Notification, Sample, SecurityEvent, StatusReport, TransactionStart, TransactionStop,
    TransactionUpdate, energy_readings, is_security_alarm, session_energy,
)
from csms.versions import SUBPROTOCOLS, codec_for, negotiate, v16, v2x

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=timezone.utc)
VERSIONS = ["2.0.1", "2.1"]


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def decode(version: str, action: str, payload: dict):
    validation.validate(version, action, payload, "1")
    return v2x.decode(action, payload)


def check_answer(version: str, action: str, payload: dict) -> dict:
    validation.validate(version, action, payload, "1", response=True)
    return payload


# ------------------------------------------------------------------ negotiation
def test_subprotocol_preference_order():
    assert list(SUBPROTOCOLS) == ["ocpp2.1", "ocpp2.0.1", "ocpp1.6"]
    assert negotiate(["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]) == "ocpp2.1"
    assert negotiate(["ocpp1.6", "ocpp2.0.1"]) == "ocpp2.0.1"
    assert negotiate(["ocpp2.0", "ocpp1.6"]) == "ocpp1.6"
    assert negotiate(["ocpp1.5", "ocpp2.0", "mqtt"]) is None
    assert negotiate([]) is None


def test_codec_for_every_version():
    assert codec_for("1.6") is v16
    assert codec_for("2.0.1") is v2x and codec_for("2.1") is v2x
    with pytest.raises(ValueError):
        codec_for("2.0")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_handled_action_has_a_schema(version):
    only_21 = {"NotifyDERAlarm", "NotifyDERStartStop", "NotifyPriorityCharging", "NotifySettlement",
               "ReportDERControl"}
    for action in v2x.ACTIONS:
        expected = version == "2.1" or action not in only_21
        assert validation.has_schema(version, action) is expected, action
        assert validation.has_schema(version, action, response=True) is expected, action


# ------------------------------------------------------------------ connector identity
def test_connector_identity_round_trip():
    assert v2x.connector_identity(None) == 0
    assert v2x.connector_identity(0, 1) == 0
    assert v2x.connector_identity(1) == 1 and v2x.connector_identity(1, 1) == 1
    assert v2x.connector_identity(3, 1) == 3
    assert v2x.connector_identity(2, 2) == 202
    for evse, conn in [(1, 1), (2, 1), (7, 1), (1, 2), (4, 3), (99, 1), (12, 9)]:
        assert v2x.evse_and_connector(v2x.connector_identity(evse, conn)) == (evse, conn)
    assert v2x.evse_and_connector(0) == (0, None)


# ------------------------------------------------------------------ simple messages
@pytest.mark.parametrize("version", VERSIONS)
def test_boot_heartbeat_authorize(version):
    boot = decode(version, "BootNotification", {
        "reason": "FirmwareUpdate",
        "chargingStation": {"vendorName": "ACME", "model": "AC22", "serialNumber": "S-1",
                            "firmwareVersion": "2.3", "modem": {"iccid": "8986", "imsi": "4600"}}})
    assert boot == Boot(vendor="ACME", model="AC22", serial_number="S-1", firmware_version="2.3",
                        iccid="8986", imsi="4600", reason="FirmwareUpdate")
    answer = check_answer(version, "BootNotification", v2x.encode("BootNotification", BootResult("Accepted", 300, T0)))
    assert answer == {"status": "Accepted", "currentTime": "2024-06-01T08:00:00.000Z", "interval": 300}
    assert decode(version, "Heartbeat", {}) == Heartbeat()
    assert check_answer(version, "Heartbeat", v2x.encode("Heartbeat", T0)) == {"currentTime": "2024-06-01T08:00:00.000Z"}
    auth = decode(version, "Authorize", {"idToken": {"idToken": "CARD1", "type": "ISO14443"}})
    assert auth == AuthorizeRequest("CARD1", "ISO14443")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("status", ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx", "Unknown"])
def test_id_token_info(version, status):
    info = IdTagInfo(status, T0 + timedelta(days=1), "GROUP")
    answer = check_answer(version, "Authorize", v2x.encode("Authorize", info))
    assert answer == {"idTokenInfo": {"status": status, "cacheExpiryDateTime": "2024-06-02T08:00:00.000Z",
                                      "groupIdToken": {"idToken": "GROUP", "type": "Central"}}}
    assert v2x.encode("Authorize", IdTagInfo("SomethingElse")) == {"idTokenInfo": {"status": "Invalid"}}


@pytest.mark.parametrize("version", VERSIONS)
def test_status_notification(version):
    s = decode(version, "StatusNotification", {"timestamp": iso(T0), "connectorStatus": "Occupied",
                                               "evseId": 2, "connectorId": 1})
    assert s == StatusReport(connector_id=2, status="Occupied", timestamp=T0, error_code="NoError", evse_id=2,
                             evse_connector_id=1)
    f = decode(version, "StatusNotification", {"timestamp": iso(T0), "connectorStatus": "Faulted",
                                               "evseId": 1, "connectorId": 2})
    assert (f.connector_id, f.status, f.error_code, f.evse_connector_id) == (102, "Faulted", "OtherError", 2)
    assert check_answer(version, "StatusNotification", v2x.encode("StatusNotification", None)) == {}


# ------------------------------------------------------------------ meter values
def test_samples_units_and_defaults():
    out = v2x.samples([{"timestamp": iso(T0), "sampledValue": [
        {"value": 12.5},  # default: energy register in Wh
        {"value": 3.2, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "kWh"},
         "context": "Transaction.Begin", "location": "Outlet"},
        {"value": 7, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh", "multiplier": 3}},
        {"value": 11, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}, "phase": "L1"},
        {"value": 230, "measurand": "Voltage"},
        {"value": 55, "measurand": "SoC"},
        {"value": 16, "measurand": "Current.Import", "unitOfMeasure": {"multiplier": 0}},  # unit: the measurand's
    ]}])
    assert [(s.measurand, s.value, s.unit, s.context, s.phase) for s in out] == [
        ("Energy.Active.Import.Register", 12.5, "Wh", None, None),
        ("Energy.Active.Import.Register", 3200.0, "Wh", "Transaction.Begin", None),
        ("Energy.Active.Import.Register", 7000.0, "Wh", None, None),
        ("Power.Active.Import", 11000.0, "W", None, "L1"),
        ("Voltage", 230.0, "V", None, None),
        ("SoC", 55.0, "Percent", None, None),
        ("Current.Import", 16.0, "A", None, None),
    ]
    assert all(s.timestamp == T0 for s in out)


@pytest.mark.parametrize("version", VERSIONS)
def test_validation_leaves_the_payload_as_sent(version):
    """No schema default is written into a payload: decoders apply the spec's defaults themselves."""
    import copy

    payload = {"eventType": "Updated", "timestamp": iso(T0), "triggerReason": "MeterValuePeriodic", "seqNo": 3,
               "transactionInfo": {"transactionId": "T"}, "meterValue": [{"timestamp": iso(T0), "sampledValue": [
                   {"value": 5, "unitOfMeasure": {"multiplier": 3}}]}]}
    sent = copy.deepcopy(payload)
    ev = decode(version, "TransactionEvent", payload)
    assert payload == sent
    assert ev.offline is False and [(s.value, s.unit) for s in ev.samples] == [(5000.0, "Wh")]
    report = {"requestId": 1, "generatedAt": iso(T0), "seqNo": 0, "reportData": [
        {"component": {"name": "C"}, "variable": {"name": "V"}, "variableAttribute": [{"value": "1"}]}]}
    sent = copy.deepcopy(report)
    rep = decode(version, "NotifyReport", report)
    assert report == sent
    assert rep.tbc is False and (rep.variables[0].persistent, rep.variables[0].constant) == (False, False)


@pytest.mark.parametrize("version", ["1.6", *VERSIONS])
def test_compiled_and_explaining_validators_agree(version):
    """The fast validator and the one that names the rule refuse the same payloads."""
    action = "MeterValues"
    good = ({"connectorId": 1, "meterValue": [{"timestamp": iso(T0), "sampledValue": [{"value": "10"}]}]}
            if version == "1.6" else
            {"evseId": 1, "meterValue": [{"timestamp": iso(T0), "sampledValue": [{"value": 10}]}]})
    check = validation._validator(version, action, False)
    assert check.is_valid(good)
    check.explain(good)
    mv = good["meterValue"][0]
    bad = [
        {**good, "meterValue": []},
        {**good, "meterValue": [{**mv, "timestamp": "2024-13-01T00:00:00Z"}]},
        {**good, "meterValue": [{**mv, "timestamp": "yesterday"}]},
        {**good, "meterValue": [{**mv, "sampledValue": [{**mv["sampledValue"][0], "measurand": "Nope"}]}]},
        {**good, "meterValue": [{**mv, "sampledValue": [{**mv["sampledValue"][0], "extra": 1}]}]},
        {**good, "meterValue": [{**mv, "sampledValue": [{}]}]},
        {k: v for k, v in good.items() if k != "meterValue"},
        {**good, "connectorId" if version == "1.6" else "evseId": "1"},
    ]
    for payload in bad:
        assert not check.is_valid(payload), payload
        with pytest.raises(validation.ValidationFailed):
            validation.validate(version, action, payload, "1")


@pytest.mark.parametrize("version", VERSIONS)
def test_meter_values_message(version):
    m = decode(version, "MeterValues", {"evseId": 0, "meterValue": [
        {"timestamp": iso(T0), "sampledValue": [{"value": 100.0}]}]})
    assert isinstance(m, MeterReport) and m.connector_id == 0 and m.evse_id == 0 and m.transaction_id is None
    assert m.samples[0].value == 100.0


def R(ts, wh, ctx=None, measurand="Energy.Active.Import.Register", phase=None):
    return Sample(ts, wh, measurand, phase, "Wh", ctx)


def test_energy_readings_rules():
    t = [T0 + timedelta(minutes=i) for i in range(5)]
    first, last, interval = energy_readings([R(t[2], 120), R(t[1], 110), R(t[3], 130), R(t[1], 5, phase="L1")])
    assert first == (t[1], 110, None) and last == (t[3], 130, None) and interval is None
    # Begin / End contexts win whatever the order; End is never a start, Begin never a stop.
    first, last, _ = energy_readings([R(t[3], 130, "Transaction.End"), R(t[0], 100, "Transaction.Begin"),
                                      R(t[4], 999, "Sample.Periodic")])
    assert first == (t[0], 100, "Transaction.Begin") and last == (t[3], 130, "Transaction.End")
    first, last, _ = energy_readings([R(t[3], 130, "Transaction.End")])
    assert first is None and last == (t[3], 130, "Transaction.End")
    # Interval energy: each timestamp once.
    iv = "Energy.Active.Import.Interval"
    _, _, interval = energy_readings([R(t[1], 10, measurand=iv), R(t[2], 12, measurand=iv),
                                      R(t[2], 12, measurand=iv), R(t[3], 4, measurand=iv, phase="L2")])
    assert interval == 22


def test_session_energy_rule():
    a, b = T0, T0 + timedelta(hours=1)
    assert session_energy((a, 100.0, "Transaction.Begin"), (b, 350.0, "Transaction.End"), None) == (250.0, None)
    assert session_energy((a, 100.0, None), (b, 150.0, None), 999.0) == (50.0, None)
    assert session_energy((a, 100.0, None), (b, 90.0, None), None) == (None, "meter_decreased")
    # one single reading is no difference: fall back to intervals, else unknown
    assert session_energy((a, 100.0, None), (a, 100.0, None), 42.0) == (42.0, None)
    assert session_energy(None, (b, 100.0, "Transaction.End"), None) == (None, None)
    assert session_energy((a, 100.0, "Transaction.Begin"), (a, 100.0, "Transaction.End"), None) == (0.0, None)


# ------------------------------------------------------------------ TransactionEvent
def tx_payload(event_type: str, seq: int, **kw) -> dict:
    p = {"eventType": event_type, "timestamp": iso(kw.pop("ts", T0)), "triggerReason": kw.pop("trigger", "Authorized"),
         "seqNo": seq, "transactionInfo": {"transactionId": "TX-1", **kw.pop("info", {})}}
    p.update(kw)
    return p


@pytest.mark.parametrize("version", VERSIONS)
def test_transaction_event_started(version):
    ev = decode(version, "TransactionEvent", tx_payload(
        "Started", 0, info={"chargingState": "Charging", "remoteStartId": 7}, evse={"id": 2, "connectorId": 1},
        idToken={"idToken": "CARD1", "type": "ISO14443"}, numberOfPhasesUsed=3, reservationId=5, offline=True,
        meterValue=[{"timestamp": iso(T0), "sampledValue": [{"value": 1000, "context": "Transaction.Begin"}]}]))
    assert isinstance(ev, TransactionStart)
    assert (ev.transaction_id, ev.seq_no, ev.connector_id, ev.evse_id, ev.evse_connector_id) == ("TX-1", 0, 2, 2, 1)
    assert (ev.id_tag, ev.id_token_type, ev.trigger_reason, ev.offline) == ("CARD1", "ISO14443", "Authorized", True)
    assert (ev.charging_state, ev.number_of_phases, ev.reservation_id, ev.remote_start_id) == ("Charging", 3, 5, 7)
    assert ev.timestamp == T0 and ev.meter_start_wh is None and ev.samples[0].value == 1000


@pytest.mark.parametrize("version", VERSIONS)
def test_transaction_event_updated_and_ended(version):
    up = decode(version, "TransactionEvent", tx_payload("Updated", 3, trigger="MeterValuePeriodic",
                                                        info={"chargingState": "SuspendedEV"}))
    assert isinstance(up, TransactionUpdate) and up.seq_no == 3 and up.charging_state == "SuspendedEV"
    assert up.connector_id is None and up.offline is False
    end = decode(version, "TransactionEvent", tx_payload("Ended", 9, trigger="StopAuthorized",
                                                         info={"stoppedReason": "Remote"}))
    assert isinstance(end, TransactionStop) and end.reason == "Remote" and end.seq_no == 9
    local = decode(version, "TransactionEvent", tx_payload("Ended", 10, trigger="EVDeparted"))
    assert local.reason == "Local"  # the spec allows leaving stoppedReason out only for Local


def test_stop_reason_vocabulary():
    assert set(v2x.STOP_REASON_2X.values()) <= STOP_REASONS
    assert set(v16.STOP_REASONS_16) <= STOP_REASONS
    assert v2x.stop_reason(None) == "Local"
    assert v2x.stop_reason("EVDisconnected") == "EVDisconnected"
    assert v2x.stop_reason("SomeFutureReason") == "Other"
    for version, folder in (("2.0.1", "v201"), ("2.1", "v21")):
        import json
        from importlib import resources

        schema = json.loads((resources.files("ocpp") / folder / "schemas" / "TransactionEventRequest.json")
                            .read_text(encoding="utf-8-sig"))
        for reason in schema["definitions"]["ReasonEnumType"]["enum"]:
            assert v2x.stop_reason(reason) == reason, (version, reason)


@pytest.mark.parametrize("version", VERSIONS)
def test_transaction_event_answer(version):
    assert check_answer(version, "TransactionEvent", v2x.encode("TransactionEvent", None)) == {}
    answer = check_answer(version, "TransactionEvent", v2x.encode("TransactionEvent", IdTagInfo("Blocked")))
    assert answer == {"idTokenInfo": {"status": "Blocked"}}


# ------------------------------------------------------------------ device model, events, security
def event_data(event_id, component, variable, value, **kw):
    d = {"eventId": event_id, "timestamp": iso(T0), "trigger": kw.pop("trigger", "Delta"), "actualValue": value,
         "eventNotificationType": "HardWiredNotification", "component": {"name": component},
         "variable": {"name": variable}}
    if "evse" in kw:
        d["component"]["evse"] = kw.pop("evse")
    d.update(kw)
    return d


@pytest.mark.parametrize("version", VERSIONS)
def test_notify_event_problems(version):
    rep = decode(version, "NotifyEvent", {"generatedAt": iso(T0), "seqNo": 0, "tbc": False, "eventData": [
        event_data(1, "RCD", "Tripped", "true", evse={"id": 1}, techCode="E42"),
        event_data(2, "ConnectorPlugRetentionLock", "Problem", "false", evse={"id": 2, "connectorId": 1}),
        event_data(3, "ChargingStation", "Problem", "true"),
        event_data(4, "TokenReader", "Problem", "true", cleared=True),
        event_data(5, "Connector", "AvailabilityState", "Occupied", evse={"id": 1, "connectorId": 2}),
        event_data(6, "TemperatureSensor", "Temperature", "95", trigger="Alerting"),
    ]})
    assert isinstance(rep, DeviceEventReport) and rep.seq_no == 0 and not rep.tbc
    got = [(e.event_id, e.connector_id, e.problem, e.error_code) for e in rep.events]
    assert got == [(1, 1, True, "GroundFailure"), (2, 2, False, "ConnectorLockFailure"), (3, 0, True, "OtherError"),
                   (4, 0, False, "ReaderFailure"), (5, 102, None, None), (6, 0, None, None)]
    assert rep.events[0].tech_code == "E42" and rep.events[0].evse_id == 1
    assert check_answer(version, "NotifyEvent", v2x.encode("NotifyEvent", None)) == {}


def test_alerting_with_severity_is_a_problem():
    assert v2x.problem_of("TemperatureSensor", "Temperature", "95", "Alerting", None, 2) == (True, "HighTemperature")
    assert v2x.problem_of("TemperatureSensor", "Temperature", "60", "Alerting", True, 2) == (False, "HighTemperature")
    assert v2x.problem_of("TemperatureSensor", "Temperature", "95", "Alerting", None, 6) == (None, None)
    assert v2x.problem_of("EVSE", "Problem", "yes", "Delta", None, None) == (True, "OtherError")


@pytest.mark.parametrize("version", VERSIONS)
def test_notify_report(version):
    rep = decode(version, "NotifyReport", {"requestId": 4, "generatedAt": iso(T0), "seqNo": 1, "tbc": True,
                                           "reportData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "variableAttribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite"}],
         "variableCharacteristics": {"dataType": "integer", "unit": "s", "minLimit": 10, "supportsMonitoring": False}},
        {"component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "Power"},
         "variableAttribute": [{"type": "Actual", "value": "7000"}, {"type": "MaxSet", "value": "22000"}]},
    ]})
    assert isinstance(rep, DeviceReport) and (rep.request_id, rep.seq_no, rep.tbc) == (4, 1, True)
    got = [(v.component, v.evse_id, v.variable, v.attribute_type, v.value, v.data_type, v.min_limit)
           for v in rep.variables]
    assert got == [("OCPPCommCtrlr", None, "HeartbeatInterval", "Actual", "300", "integer", 10),
                   ("EVSE", 2, "Power", "Actual", "7000", None, None),
                   ("EVSE", 2, "Power", "MaxSet", "22000", None, None)]


@pytest.mark.parametrize("version", VERSIONS)
def test_security_events(version):
    tamper = decode(version, "SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": iso(T0),
                                                           "techInfo": "lid open"})
    assert tamper == SecurityEvent("TamperDetectionActivated", T0, "lid open", True,
                                   {"type": "TamperDetectionActivated", "timestamp": iso(T0), "techInfo": "lid open"})
    boot = decode(version, "SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": iso(T0)})
    assert not boot.alarm
    assert is_security_alarm("InvalidFirmwareSignature") and is_security_alarm("AcmeCabinetTamper")
    assert not is_security_alarm("SettingSystemTime")
    # 1.6 security events are the same event
    ev16 = v16.decode("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": iso(T0)})
    assert isinstance(ev16, SecurityEvent) and ev16.alarm


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("action,payload", [
    ("FirmwareStatusNotification", {"status": "Installed", "requestId": 1}),
    ("LogStatusNotification", {"status": "Uploaded", "requestId": 2}),
    ("DataTransfer", {"vendorId": "com.acme", "messageId": "m", "data": {"k": 1}}),
    ("NotifyChargingLimit", {"chargingLimit": {"chargingLimitSource": "EMS"}, "evseId": 1}),
    ("ReservationStatusUpdate", {"reservationId": 3, "reservationUpdateStatus": "Expired"}),
    ("ClearedChargingLimit", {"chargingLimitSource": "EMS", "evseId": 1}),
    ("NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"}}),
])
def test_notifications_stored_as_they_came(version, action, payload):
    ev = decode(version, action, payload)
    assert ev == Notification(action, payload, None)
    check_answer(version, action, v2x.encode(action, None))
