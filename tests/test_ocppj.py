"""OCPP-J framing, schema validation and 1.6 mapping: pure code, no sockets."""

from datetime import datetime, timezone

import pytest

from csms import ocppj, validation
from csms.events import (
    BootResult, IdTagInfo, MeterReport, Notification, StartResult, StatusReport, TransactionStart,
    TransactionStop, format_time, parse_time,
)
from csms.versions import negotiate, v16


class TestParse:
    def test_call(self):
        msg = ocppj.parse('[2,"abc","Heartbeat",{}]', "1.6")
        assert msg == ocppj.Call("abc", "Heartbeat", {})

    def test_call_result_and_error(self):
        assert ocppj.parse('[3,"x",{"a":1}]', "1.6") == ocppj.CallResult("x", {"a": 1})
        err = ocppj.parse('[4,"x","NotSupported","nope",{}]', "1.6")
        assert err == ocppj.CallError("x", "NotSupported", "nope", {})

    @pytest.mark.parametrize("version,code", [("1.6", "FormationViolation"), ("2.0.1", "RpcFrameworkError")])
    def test_malformed_json(self, version, code):
        with pytest.raises(ocppj.FrameError) as info:
            ocppj.parse('[2,"abc","Heartbeat",{', version)
        assert ocppj.error_code(info.value.kind, version) == code
        assert info.value.unique_id == "-1"

    def test_not_an_array(self):
        with pytest.raises(ocppj.FrameError) as info:
            ocppj.parse('{"a":1}', "1.6")
        assert ocppj.error_code(info.value.kind, "1.6") == "FormationViolation"

    @pytest.mark.parametrize("version,code", [("1.6", "ProtocolError"), ("2.0.1", "MessageTypeNotSupported"),
                                              ("2.1", "MessageTypeNotSupported")])
    def test_unknown_message_type(self, version, code):
        with pytest.raises(ocppj.FrameError) as info:
            ocppj.parse('[9,"id7","Heartbeat",{}]', version)
        assert ocppj.error_code(info.value.kind, version) == code
        assert info.value.unique_id == "id7"

    def test_send_only_in_21(self):
        assert isinstance(ocppj.parse('[6,"s1","NotifyPeriodicEventStream",{}]', "2.1"), ocppj.Send)
        with pytest.raises(ocppj.FrameError):
            ocppj.parse('[6,"s1","NotifyPeriodicEventStream",{}]', "2.0.1")

    def test_bad_unique_id(self):
        with pytest.raises(ocppj.FrameError) as info:
            ocppj.parse('[2, 17, "Heartbeat", {}]', "1.6")
        assert info.value.unique_id == "-1"
        with pytest.raises(ocppj.FrameError) as info:
            ocppj.parse('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "1.6")
        assert info.value.unique_id == "-1"

    def test_payload_not_object(self):
        with pytest.raises(ocppj.FrameError) as info:
            ocppj.parse('[2,"a","Heartbeat",[]]', "1.6")
        assert info.value.unique_id == "a"
        assert ocppj.error_code(info.value.kind, "1.6") == "FormationViolation"

    def test_bad_response_is_not_answered(self):
        with pytest.raises(ocppj.FrameError) as info:
            ocppj.parse('[3,"a"]', "1.6")
        assert info.value.unique_id is None

    def test_boolean_type_id_rejected(self):
        with pytest.raises(ocppj.FrameError):
            ocppj.parse('[true,"a","Heartbeat",{}]', "1.6")

    def test_encode_round_trip(self):
        for m in (ocppj.Call("1", "Reset", {"type": "Hard"}), ocppj.CallResult("2", {}),
                  ocppj.CallError("3", "GenericError", "x", {"k": 1})):
            assert ocppj.parse(ocppj.encode(m), "1.6") == m


class TestValidation:
    def test_valid(self):
        validation.validate("1.6", "Heartbeat", {}, "u")
        validation.validate("1.6", "StartTransaction", {"connectorId": 1, "idTag": "T",
                                                        "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"}, "u")

    @pytest.mark.parametrize("payload,code", [
        ({"connectorId": "one", "idTag": "T", "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"},
         "TypeConstraintViolation"),
        ({"idTag": "T", "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"}, "OccurenceConstraintViolation"),
        ({"connectorId": 1, "idTag": "T" * 21, "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"},
         "PropertyConstraintViolation"),
        ({"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday"}, "TypeConstraintViolation"),
        ({"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z", "x": 1},
         "FormationViolation"),
    ])
    def test_violations(self, payload, code):
        with pytest.raises(validation.ValidationFailed) as info:
            validation.validate("1.6", "StartTransaction", payload, "u1")
        assert ocppj.error_code(info.value.kind, "1.6") == code
        assert info.value.unique_id == "u1"

    def test_enum(self):
        with pytest.raises(validation.ValidationFailed) as info:
            validation.validate("1.6", "StatusNotification",
                                {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}, "u")
        assert ocppj.error_code(info.value.kind, "1.6") == "PropertyConstraintViolation"
        assert info.value.details == {"rule": "enum", "path": "data.status"}
        assert "must be one of" in info.value.description and "Available" in info.value.description

    @pytest.mark.parametrize("value", [1, True, None, ["Charging"], {"x": 1}, "charging", "Charging "])
    def test_enum_takes_only_its_strings(self, value):
        payload = {"eventType": "Updated", "timestamp": "2024-01-01T00:00:00Z", "triggerReason": "Trigger",
                   "seqNo": 1, "transactionInfo": {"transactionId": "T", "chargingState": value}}
        with pytest.raises(validation.ValidationFailed):
            validation.validate("2.0.1", "TransactionEvent", payload, "u")
        payload["transactionInfo"]["chargingState"] = "Charging"
        validation.validate("2.0.1", "TransactionEvent", payload, "u")

    def test_made_up_action_names_are_not_remembered(self):
        before = len(validation._CHECKS)
        for i in range(200):
            assert not validation.has_schema("2.0.1", f"Made{i}Up")
            with pytest.raises(validation.ValidationFailed):
                validation.validate("2.0.1", f"Made{i}Up", {}, "u")
        assert len(validation._CHECKS) == before

    def test_unknown_action(self):
        assert not validation.has_schema("1.6", "FooBar")
        assert not validation.has_schema("1.6", "../../etc/passwd")
        assert validation.has_schema("1.6", "RemoteStartTransaction")
        assert validation.has_schema("2.0.1", "TransactionEvent")
        assert validation.has_schema("2.1", "NotifyDERAlarm")


class TestTimes:
    @pytest.mark.parametrize("text", [
        "2024-03-01T08:00:00Z", "2024-03-01T08:00:00.123Z", "2024-03-01T16:00:00+08:00",
        "2024-03-01T08:00:00.123456789Z", "2024-03-01T08:00:00", "2024-03-01T08:00:00.5-00:00",
    ])
    def test_accepted_forms(self, text):
        dt = parse_time(text)
        assert dt.tzinfo is timezone.utc
        assert dt.replace(microsecond=0) == datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)

    @pytest.mark.parametrize("text", ["", "2024-13-01T00:00:00Z", "now", "2024-03-01"])
    def test_rejected(self, text):
        with pytest.raises(ValueError):
            parse_time(text)

    def test_format(self):
        assert format_time(datetime(2024, 3, 1, 8, 0, 0, 123456, tzinfo=timezone.utc)) == "2024-03-01T08:00:00.123Z"


class TestV16Mapping:
    def test_meter_values_units_normalised(self):
        ev = v16.decode("MeterValues", {"connectorId": 2, "transactionId": 7, "meterValue": [
            {"timestamp": "2024-01-01T00:00:00Z", "sampledValue": [
                {"value": "1.5", "unit": "kWh"}, {"value": "11", "unit": "kW", "measurand": "Power.Active.Import",
                                                  "phase": "L1"},
                {"value": "garbage"}]}]})
        assert isinstance(ev, MeterReport) and ev.transaction_id == "7" and ev.connector_id == 2
        assert ev.samples[0].value == 1500.0 and ev.samples[0].unit == "Wh"
        assert ev.samples[0].measurand == "Energy.Active.Import.Register"
        assert ev.samples[1].value == 11000.0 and ev.samples[1].unit == "W" and ev.samples[1].phase == "L1"
        assert ev.samples[2].raw == "garbage"

    def test_start_stop(self):
        start = v16.decode("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 100,
                                                "timestamp": "2024-01-01T00:00:00+08:00"})
        assert isinstance(start, TransactionStart)
        assert start.timestamp == datetime(2023, 12, 31, 16, tzinfo=timezone.utc)
        stop = v16.decode("StopTransaction", {"transactionId": 5, "meterStop": 900,
                                              "timestamp": "2024-01-01T01:00:00Z"})
        assert isinstance(stop, TransactionStop) and stop.transaction_id == "5" and stop.reason == "Local"

    def test_status_and_notifications(self):
        st = v16.decode("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"})
        assert isinstance(st, StatusReport) and st.timestamp is None
        n = v16.decode("DataTransfer", {"vendorId": "acme", "data": "x"})
        assert isinstance(n, Notification) and n.payload["vendorId"] == "acme"

    def test_encode(self):
        now = datetime(2024, 1, 1, tzinfo=timezone.utc)
        assert v16.encode("BootNotification", BootResult("Accepted", 60, now)) == {
            "status": "Accepted", "currentTime": "2024-01-01T00:00:00.000Z", "interval": 60}
        payload = v16.encode("StartTransaction", StartResult("42", IdTagInfo("ConcurrentTx")))
        assert payload == {"transactionId": 42, "idTagInfo": {"status": "ConcurrentTx"}}
        assert v16.encode("StopTransaction", None) == {}
        # Every encoded payload satisfies the 1.6 response schema.
        validation.validate("1.6", "StartTransaction", payload, "u", response=True)
        validation.validate("1.6", "BootNotification", v16.encode("BootNotification", BootResult(
            "Accepted", 60, now)), "u", response=True)

    def test_negotiate(self):
        assert negotiate(["ocpp1.6"]) == "ocpp1.6"
        assert negotiate(["ocpp1.5", "foo"]) is None
        assert negotiate([]) is None
