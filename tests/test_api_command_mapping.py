"""csms.commands without I/O: each typed command → the OCPP action and a schema-valid payload per version."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from csms import commands as c
from csms import validation

T = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

PROFILE = {"id": 7, "stack_level": 1, "purpose": "TxDefaultProfile", "kind": "Absolute",
           "valid_from": "2030-01-01T00:00:00Z",
           "schedule": {"unit": "A", "start": "2030-01-01T00:00:00Z", "duration": 3600,
                        "periods": [{"start_period": 0, "limit": 16.3, "number_phases": 3},
                                    {"start_period": 1800, "limit": 10}], "min_charging_rate": 6}}

#: (command, body) pairs that every version can carry.
EXAMPLES: list[tuple[str, dict]] = [
    ("remote-start", {"id_tag": "TAG1", "connector_id": 1}),
    ("remote-start", {"id_tag": "TAG1", "connector_id": 1, "charging_profile": {**PROFILE, "purpose": "TxProfile"}}),
    ("remote-stop", {"transaction_id": "42"}),
    ("reset", {"type": "soft"}),
    ("reset", {"type": "hard"}),
    ("unlock-connector", {"connector_id": 1}),
    ("change-availability", {"type": "Inoperative", "connector_id": 0}),
    ("change-availability", {"type": "Operative", "connector_id": 2}),
    ("trigger-message", {"requested_message": "StatusNotification", "connector_id": 1}),
    ("trigger-message", {"requested_message": "DiagnosticsStatusNotification"}),
    ("trigger-message", {"requested_message": "Heartbeat"}),
    ("reserve-now", {"reservation_id": 5, "id_tag": "TAG1", "expiry": "2030-01-02T03:04:05Z", "connector_id": 1}),
    ("reserve-now", {"reservation_id": 5, "id_tag": "TAG1", "expiry": "2030-01-02T03:04:05Z",
                     "parent_id_tag": "GROUP"}),
    ("cancel-reservation", {"reservation_id": 5}),
    ("set-charging-profile", {"connector_id": 1, "profile": PROFILE}),
    ("set-charging-profile", {"connector_id": 0, "profile": {**PROFILE, "purpose": "ChargePointMaxProfile"}}),
    ("clear-charging-profile", {}),
    ("clear-charging-profile", {"profile_id": 7}),
    ("clear-charging-profile", {"connector_id": 1, "purpose": "TxDefaultProfile", "stack_level": 1}),
    ("get-composite-schedule", {"connector_id": 1, "duration": 3600, "unit": "W"}),
    ("send-local-list", {"list_version": 3, "update_type": "Full",
                         "entries": [{"id_tag": "A", "status": "Accepted", "expiry": "2031-01-01T00:00:00Z"},
                                     {"id_tag": "B", "status": "Blocked", "parent_id_tag": "A"}]}),
    ("send-local-list", {"list_version": 4, "update_type": "Differential", "entries": [{"id_tag": "B"}]}),
    ("get-local-list-version", {}),
    ("clear-cache", {}),
    ("update-firmware", {"location": "https://fw.example.org/fw-2.bin", "retrieve_at": "2030-01-01T00:00:00Z",
                         "retries": 3, "retry_interval": 60}),
    ("get-diagnostics", {"location": "ftp://logs.example.org/up", "start_time": "2030-01-01T00:00:00Z",
                         "stop_time": "2030-01-02T00:00:00Z"}),
    ("data-transfer", {"vendor_id": "com.example", "message_id": "ping", "data": "hello"}),
    ("data-transfer", {"vendor_id": "com.example", "data": {"nested": [1, 2]}}),
]

ONLY_16 = [("get-configuration", {"keys": ["HeartbeatInterval"]}), ("get-configuration", {}),
           ("change-configuration", {"key": "HeartbeatInterval", "value": "120"})]
ONLY_2X = [("get-variables", {"variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
                                            {"component": "EVSE", "evse_id": 1, "variable": "AvailabilityState",
                                             "attribute_type": "Actual"}]}),
           ("set-variables", {"variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval",
                                             "value": "120"}]}),
           ("get-base-report", {"report_base": "FullInventory", "request_id": 9}),
           ("reset", {"type": "soft", "evse_id": 1})]


def make(name: str, body: dict) -> c.Command:
    return c.COMMANDS[name].model_validate(body)


@pytest.mark.parametrize("version", c.VERSIONS)
@pytest.mark.parametrize(("name", "body"), EXAMPLES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(EXAMPLES)])
def test_every_command_builds_a_schema_valid_payload(version, name, body):
    call = c.build(make(name, body), version)
    validation.validate(version, call.action, call.payload, "-")  # build validated it; check again


@pytest.mark.parametrize(("name", "body"), ONLY_16)
def test_configuration_is_16_only(name, body):
    call = c.build(make(name, body), "1.6")
    assert call.action in ("GetConfiguration", "ChangeConfiguration")
    for version in ("2.0.1", "2.1"):
        with pytest.raises(c.UnsupportedCommand, match="not available in OCPP 2"):
            c.build(make(name, body), version)


@pytest.mark.parametrize(("name", "body"), ONLY_2X)
def test_variables_and_reports_are_2x_only(name, body):
    for version in ("2.0.1", "2.1"):
        c.build(make(name, body), version)
    with pytest.raises(c.CommandError):
        c.build(make(name, body), "1.6")


def test_every_command_has_an_example():
    covered = {n for n, _ in EXAMPLES + ONLY_16 + ONLY_2X}
    assert covered == set(c.COMMANDS)


def test_reset_mapping():
    assert c.build(c.Reset(type="soft"), "1.6") == c.OcppCall("Reset", {"type": "Soft"})
    assert c.build(c.Reset(type="hard"), "1.6") == c.OcppCall("Reset", {"type": "Hard"})
    assert c.build(c.Reset(type="soft"), "2.0.1") == c.OcppCall("Reset", {"type": "OnIdle"})
    assert c.build(c.Reset(type="hard"), "2.1") == c.OcppCall("Reset", {"type": "Immediate"})


def test_remote_start_and_stop_mapping():
    start = c.RemoteStart(id_tag="TAG1", connector_id=2, remote_start_id=77)
    assert c.build(start, "1.6") == c.OcppCall("RemoteStartTransaction", {"connectorId": 2, "idTag": "TAG1"})
    assert c.build(start, "2.0.1") == c.OcppCall("RequestStartTransaction", {
        "idToken": {"idToken": "TAG1", "type": "ISO14443"}, "remoteStartId": 77, "evseId": 2})
    generated = c.build(c.RemoteStart(id_tag="T"), "2.1").payload["remoteStartId"]
    assert 1 <= generated < 2 ** 31
    assert c.build(c.RemoteStop(transaction_id="12"), "1.6").payload == {"transactionId": 12}
    assert c.build(c.RemoteStop(transaction_id="abc-1"), "2.0.1").payload == {"transactionId": "abc-1"}
    with pytest.raises(c.CommandInvalid, match="integers"):
        c.build(c.RemoteStop(transaction_id="abc-1"), "1.6")


def test_id_tag_longer_than_16_allows_is_refused_for_16_only():
    start = c.RemoteStart(id_tag="X" * 25)
    with pytest.raises(c.CommandInvalid, match="RemoteStartTransaction"):
        c.build(start, "1.6")
    c.build(start, "2.0.1")


def test_charging_profile_mapping():
    sp = make("set-charging-profile", {"connector_id": 1, "profile": PROFILE})
    p16 = c.build(sp, "1.6").payload
    assert p16["connectorId"] == 1
    prof = p16["csChargingProfiles"]
    assert prof["chargingProfileId"] == 7 and prof["chargingProfilePurpose"] == "TxDefaultProfile"
    assert prof["chargingSchedule"]["chargingSchedulePeriod"][0] == {"startPeriod": 0, "limit": 16.3,
                                                                     "numberPhases": 3}
    assert prof["validFrom"] == "2030-01-01T00:00:00.000Z"
    p2 = c.build(sp, "2.0.1").payload
    assert p2["evseId"] == 1
    assert p2["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] == "A"
    max16 = c.build(make("set-charging-profile", {"profile": {**PROFILE, "purpose": "ChargingStationMaxProfile"}}),
                    "1.6")
    assert max16.payload["csChargingProfiles"]["chargingProfilePurpose"] == "ChargePointMaxProfile"
    max2 = c.build(make("set-charging-profile", {"profile": {**PROFILE, "purpose": "ChargePointMaxProfile"}}),
                   "2.1")
    assert max2.payload["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    with pytest.raises(c.UnsupportedCommand):
        c.build(make("set-charging-profile", {"profile": {**PROFILE,
                                                          "purpose": "ChargingStationExternalConstraints"}}), "1.6")


def test_other_mappings():
    assert c.build(c.ChangeAvailability(type="Inoperative", connector_id=0), "2.0.1").payload == {
        "operationalStatus": "Inoperative"}
    assert c.build(c.ChangeAvailability(type="Inoperative", connector_id=2), "2.0.1").payload == {
        "operationalStatus": "Inoperative", "evse": {"id": 2}}
    assert c.build(c.UnlockConnector(connector_id=2), "2.0.1").payload == {"evseId": 2, "connectorId": 1}
    assert c.build(c.UnlockConnector(connector_id=2, evse_id=1), "2.1").payload == {"evseId": 1, "connectorId": 2}
    assert c.build(c.TriggerMessage(requested_message="DiagnosticsStatusNotification"), "2.0.1").payload == {
        "requestedMessage": "LogStatusNotification"}
    assert c.build(c.TriggerMessage(requested_message="LogStatusNotification"), "1.6").payload == {
        "requestedMessage": "DiagnosticsStatusNotification"}
    assert c.build(c.GetDiagnostics(location="ftp://h/p"), "2.0.1").action == "GetLog"
    assert c.build(c.DataTransfer(vendor_id="v", data={"a": 1}), "1.6").payload["data"] == '{"a":1}'
    assert c.build(c.DataTransfer(vendor_id="v", data={"a": 1}), "2.0.1").payload["data"] == {"a": 1}
    fw = c.build(make("update-firmware", {"location": "https://h/f", "retrieve_at": T.isoformat()}), "2.0.1")
    assert fw.payload["firmware"] == {"location": "https://h/f", "retrieveDateTime": "2030-01-02T03:04:05.000Z"}
    rn = c.build(make("reserve-now", {"reservation_id": 1, "id_tag": "T", "expiry": "2030-01-02T11:04:05+08:00"}),
                 "1.6")
    assert rn.payload["expiryDate"] == "2030-01-02T03:04:05.000Z"


def test_bad_requests_are_refused_by_the_models():
    bad = [("reset", {"type": "Soft"}), ("reset", {"kind": "soft"}), ("remote-start", {}),
           ("remote-start", {"id_tag": ""}), ("change-availability", {"type": "Broken"}),
           ("unlock-connector", {"connector_id": 0}), ("reserve-now", {"reservation_id": 1, "id_tag": "T",
                                                                       "expiry": "0001-01-01T00:00:00+05:00"}),
           ("update-firmware", {"location": "not a url", "retrieve_at": "2030-01-01T00:00:00Z"}),
           ("set-charging-profile", {"profile": {**PROFILE, "schedule": {"unit": "A", "periods": []}}}),
           ("set-charging-profile", {"profile": {**PROFILE, "schedule": {
               "unit": "A", "periods": [{"start_period": 0, "limit": float("nan")}]}}}),
           ("send-local-list", {"list_version": 1, "from_database": True, "entries": [{"id_tag": "A"}]}),
           ("cancel-reservation", {"reservation_id": 2 ** 40})]
    for name, body in bad:
        with pytest.raises(ValidationError):
            make(name, body)
