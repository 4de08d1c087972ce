"""OCPP 2.0.1 and 2.1 ⇄ domain events.

One module for both versions: 2.1 is a superset of 2.0.1 for everything a charger
sends that this CSMS handles, and the payloads were validated against the
version's own schema before :func:`decode` sees them. :func:`encode` builds the
CALLRESULT payload, valid in both versions. Pure functions, no I/O.

Mapping decisions (the "one model"):

* **Connector identity.** OCPP 1.6 numbers connectors 1..n per charger, 0 being
  the charger itself; a 1.6 connector is what 2.x calls an EVSE. So the shared
  ``connector_id`` of a 2.x (evseId, connectorId) is the EVSE id when the EVSE's
  connector is 1 (or not given), ``evseId * 100 + connectorId`` for further
  connectors of one EVSE, and 0 for EVSE 0. See :func:`connector_identity`.
* **Statuses.** 2.x connector statuses are stored as they come (``Occupied`` is
  part of the shared vocabulary); a ``Faulted`` status carries the 1.6 error
  code ``OtherError`` so that it opens a fault exactly like a 1.6 one. The
  details come from NotifyEvent problem events (see :data:`PROBLEM_ERROR_CODES`).
* **Stop reasons.** The shared vocabulary is the 2.x ReasonEnumType plus the
  1.6-only reasons; 2.x reasons map onto themselves, an omitted one is
  ``Local`` (the spec allows omission only for Local), an unknown one ``Other``.
* **Energy.** Register readings (``Energy.Active.Import.Register``) are
  normalised to Wh with the unit's multiplier; see
  :func:`csms.events.energy_readings` and :mod:`csms.store`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..events import (
    ENERGY_REGISTER, STOP_REASONS, AuthorizeRequest, Boot, BootResult, DeviceEvent, DeviceEventReport,
    DeviceReport, DeviceVariable, Event, Heartbeat, IdTagInfo, MeterReport, Notification, Sample,
    SecurityEvent, StatusReport, TransactionStart, TransactionStop, TransactionUpdate, format_time,
    is_security_alarm, normalise_unit, parse_time,
)

VERSIONS = ("2.0.1", "2.1")

#: Charger-initiated actions this CSMS handles (2.1-only ones are refused for 2.0.1 by the schema check).
ACTIONS = frozenset({
    "BootNotification", "Heartbeat", "StatusNotification", "Authorize", "TransactionEvent", "MeterValues",
    "NotifyEvent", "SecurityEventNotification", "NotifyReport", "FirmwareStatusNotification",
    "LogStatusNotification", "DataTransfer", "NotifyChargingLimit", "ReservationStatusUpdate",
    "ClearedChargingLimit", "NotifyEVChargingNeeds",
    # stored as they came, answered with an empty payload
    "NotifyCustomerInformation", "NotifyDisplayMessages", "NotifyMonitoringReport",
    "PublishFirmwareStatusNotification", "ReportChargingProfiles",
    # OCPP 2.1
    "NotifyDERAlarm", "NotifyDERStartStop", "NotifyPriorityCharging", "NotifySettlement", "ReportDERControl",
})

#: Actions whose answer is an empty payload.
_EMPTY_ANSWER = frozenset({
    "StatusNotification", "MeterValues", "NotifyEvent", "SecurityEventNotification", "NotifyReport",
    "FirmwareStatusNotification", "LogStatusNotification", "NotifyChargingLimit", "ReservationStatusUpdate",
    "ClearedChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages", "NotifyMonitoringReport",
    "PublishFirmwareStatusNotification", "ReportChargingProfiles", "NotifyDERAlarm", "NotifyDERStartStop",
    "NotifyPriorityCharging", "NotifySettlement", "ReportDERControl",
})

#: 2.x ReasonEnumType → shared stop-reason vocabulary (all 2.x reasons are in it unchanged).
STOP_REASON_2X = {r: r for r in (
    "DeAuthorized", "EmergencyStop", "EnergyLimitReached", "EVDisconnected", "GroundFault", "ImmediateReset",
    "Local", "LocalOutOfCredit", "MasterPass", "Other", "OvercurrentFault", "PowerLoss", "PowerQuality",
    "Reboot", "Remote", "SOCLimitReached", "StoppedByEV", "TimeLimitReached", "Timeout",
    "ReqEnergyTransferRejected",
)}
assert set(STOP_REASON_2X.values()) <= STOP_REASONS

#: Variables that report a problem of their component (boolean-like actualValue).
PROBLEM_VARIABLES = frozenset({"Problem", "Tripped", "Operated", "Fault", "Faulted"})

#: Component (or variable) of a problem event → 1.6 ChargePointErrorCode, so that faults from
#: 2.x look like faults from 1.6. Anything not listed is ``OtherError``.
PROBLEM_ERROR_CODES = {
    "ConnectorPlugRetentionLock": "ConnectorLockFailure",
    "RCD": "GroundFailure",
    "OverCurrentProtection": "OverCurrentFailure",
    "OverCurrentProtectionRecloser": "OverCurrentFailure",
    "TemperatureSensor": "HighTemperature",
    "PowerContactor": "PowerSwitchFailure",
    "TokenReader": "ReaderFailure",
    "FiscalMetering": "PowerMeterFailure",
    "EnergyMeter": "PowerMeterFailure",
    "CPPWMController": "EVCommunicationError",
    "ISO15118Ctrlr": "EVCommunicationError",
    "Controller": "InternalError",
    "OverVoltage": "OverVoltage",
    "UnderVoltage": "UnderVoltage",
    "HighTemperature": "HighTemperature",
    "Overcurrent": "OverCurrentFailure",
    "GroundFault": "GroundFailure",
}

_TRUE = frozenset({"true", "1", "yes", "on", "active", "tripped", "operated", "faulted", "problem"})
_FALSE = frozenset({"false", "0", "no", "off", "inactive", "", "ok", "cleared"})

def connector_identity(evse_id: int | None, connector_id: int | None = None) -> int:
    """The shared connector id of 2.x (*evse_id*, *connector_id*); 0 is the charger itself."""
    if evse_id is None or evse_id <= 0:
        return 0
    if connector_id is None or connector_id <= 1:
        return evse_id
    return evse_id * 100 + connector_id


def evse_and_connector(identity: int) -> tuple[int, int | None]:
    """The inverse of :func:`connector_identity`: (evseId, connectorId or None for the whole EVSE)."""
    if identity <= 0:
        return 0, None
    if identity < 100:
        return identity, 1
    return identity // 100, identity % 100


def _default_unit(measurand: str) -> str | None:
    if measurand.startswith("Energy.Active"):
        return "Wh"
    if measurand.startswith("Energy.Reactive"):
        return "varh"
    if measurand.startswith("Energy.Apparent"):
        return "VAh"
    if measurand.startswith("Power.Reactive"):
        return "var"
    if measurand.startswith("Power.Factor"):
        return None
    if measurand.startswith("Power"):
        return "W"
    if measurand.startswith("Current"):
        return "A"
    if measurand.startswith("Voltage"):
        return "V"
    if measurand == "Frequency":
        return "Hz"
    if measurand == "SoC":
        return "Percent"
    return None


def samples(meter_values: list[dict[str, Any]] | None, known_time: tuple[str, datetime] | None = None
            ) -> list[Sample]:
    """Flatten 2.x ``MeterValueType[]`` into samples: multiplier applied, energy in Wh.

    *known_time* is a timestamp already parsed, as (text, value): a meter value stamped with
    the same text (a TransactionEvent's readings usually are) is not parsed again.
    """
    out: list[Sample] = []
    for mv in meter_values or ():
        text = mv["timestamp"]
        ts = known_time[1] if known_time is not None and text == known_time[0] else parse_time(text)
        for sv in mv.get("sampledValue", ()):
            measurand = sv.get("measurand", ENERGY_REGISTER)
            uom = sv.get("unitOfMeasure")
            if uom:
                unit = uom.get("unit") or _default_unit(measurand)
                multiplier = uom.get("multiplier", 0) or 0
            else:
                unit, multiplier = _default_unit(measurand), 0
            value = float(sv["value"])
            if multiplier:
                value *= 10.0 ** multiplier
            value, unit = normalise_unit(value, unit)
            out.append(Sample(ts, value, measurand, sv.get("phase"), unit, sv.get("context"),
                              sv.get("location")))
    return out


def stop_reason(reason: str | None) -> str:
    """A 2.x stoppedReason in the shared vocabulary."""
    if reason is None:
        return "Local"
    return STOP_REASON_2X.get(reason, "Other")


def _flag(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in _FALSE:
        return False
    return True


def problem_of(component: str, variable: str, actual_value: str, trigger: str, cleared: bool | None,
               severity: int | None) -> tuple[bool | None, str | None]:
    """Decide whether a device event opens (True) or closes (False) a fault, or neither (None).

    A problem event is one on a problem variable (``Problem``, ``Tripped``, ``Operated``...) or an
    ``Alerting`` monitor event of severity Error or worse (0-4). ``cleared`` or a false-like
    ``actualValue`` closes it. Returns the decision and the 1.6 error code for it.
    """
    code = PROBLEM_ERROR_CODES.get(component) or PROBLEM_ERROR_CODES.get(variable) or "OtherError"
    if variable in PROBLEM_VARIABLES:
        if cleared:
            return False, code
        return _flag(actual_value), code
    if trigger == "Alerting" and severity is not None and severity <= 4:
        return (False if cleared else True), code
    if cleared and trigger == "Alerting":
        return False, code
    return None, None


def _evse(p: dict[str, Any] | None) -> tuple[int | None, int | None]:
    if not p:
        return None, None
    return p.get("id"), p.get("connectorId")


def _transaction_event(p: dict[str, Any]) -> Event:
    # Hot path (every periodic TransactionEvent): no intermediate dicts, absent parts skipped.
    info = p["transactionInfo"]
    evse = p.get("evse")
    if evse:
        evse_id, conn = evse.get("id"), evse.get("connectorId")
        connector_id = None if evse_id is None else connector_identity(evse_id, conn)
    else:
        evse_id = conn = connector_id = None
    token = p.get("idToken")
    id_tag, id_token_type = (token.get("idToken"), token.get("type")) if token else (None, None)
    meter_value = p.get("meterValue")
    kind = p["eventType"]
    stamp = p["timestamp"]
    timestamp = parse_time(stamp)
    readings = samples(meter_value, (stamp, timestamp)) if meter_value else []
    if kind == "Updated":
        return TransactionUpdate(
            info["transactionId"], timestamp, p["seqNo"], connector_id, evse_id, id_tag,
            info.get("chargingState"), p["triggerReason"], bool(p.get("offline", False)),
            readings, id_token_type, p.get("numberOfPhasesUsed"),
            p.get("reservationId"), info.get("remoteStartId"), conn)
    common = dict(
        transaction_id=info["transactionId"], timestamp=timestamp, seq_no=p["seqNo"],
        connector_id=connector_id, evse_id=evse_id, evse_connector_id=conn, id_tag=id_tag,
        id_token_type=id_token_type, trigger_reason=p["triggerReason"], offline=bool(p.get("offline", False)),
        samples=readings, charging_state=info.get("chargingState"),
        number_of_phases=p.get("numberOfPhasesUsed"), remote_start_id=info.get("remoteStartId"),
        reservation_id=p.get("reservationId"),
    )
    if kind == "Started":
        return TransactionStart(meter_start_wh=None, **common)
    return TransactionStop(meter_stop_wh=None, reason=stop_reason(info.get("stoppedReason")), **common)


def _device_variables(report: list[dict[str, Any]] | None) -> list[DeviceVariable]:
    out: list[DeviceVariable] = []
    for item in report or ():
        comp, var = item["component"], item["variable"]
        evse_id, conn = _evse(comp.get("evse"))
        ch = item.get("variableCharacteristics") or {}
        for attr in item["variableAttribute"]:
            out.append(DeviceVariable(
                component=comp["name"], variable=var["name"], component_instance=comp.get("instance"),
                evse_id=evse_id, evse_connector_id=conn, variable_instance=var.get("instance"),
                attribute_type=attr.get("type", "Actual"), value=attr.get("value"),
                mutability=attr.get("mutability"), persistent=attr.get("persistent", False),
                constant=attr.get("constant", False), data_type=ch.get("dataType"), unit=ch.get("unit"),
                min_limit=ch.get("minLimit"), max_limit=ch.get("maxLimit"), values_list=ch.get("valuesList"),
                supports_monitoring=ch.get("supportsMonitoring"),
            ))
    return out


def _device_event(e: dict[str, Any]) -> DeviceEvent:
    comp, var = e["component"], e["variable"]
    evse_id, conn = _evse(comp.get("evse"))
    problem, code = problem_of(comp["name"], var["name"], e["actualValue"], e["trigger"], e.get("cleared"),
                               e.get("severity"))
    return DeviceEvent(
        event_id=e["eventId"], timestamp=parse_time(e["timestamp"]), trigger=e["trigger"],
        actual_value=e["actualValue"], component=comp["name"], variable=var["name"],
        connector_id=connector_identity(evse_id, conn), notification_type=e.get("eventNotificationType"),
        component_instance=comp.get("instance"), variable_instance=var.get("instance"), evse_id=evse_id,
        evse_connector_id=conn, cause=e.get("cause"), tech_code=e.get("techCode"), tech_info=e.get("techInfo"),
        cleared=e.get("cleared"), transaction_id=e.get("transactionId"),
        monitoring_id=e.get("variableMonitoringId"), severity=e.get("severity"), problem=problem, error_code=code,
    )


def decode(action: str, p: dict[str, Any]) -> Event:
    """Map a validated 2.0.1 / 2.1 CALL payload to a domain event.

    Raises ``ValueError`` for content the schema cannot catch (an unparseable timestamp).
    """
    if action == "TransactionEvent":
        return _transaction_event(p)
    if action == "Heartbeat":
        return Heartbeat()
    if action == "MeterValues":
        evse_id = p["evseId"]
        return MeterReport(connector_identity(evse_id), samples(p["meterValue"]), None, evse_id)
    if action == "StatusNotification":
        status = p["connectorStatus"]
        return StatusReport(
            connector_id=connector_identity(p["evseId"], p["connectorId"]), status=status,
            timestamp=parse_time(p["timestamp"]), error_code="OtherError" if status == "Faulted" else "NoError",
            evse_id=p["evseId"], evse_connector_id=p["connectorId"],
        )
    if action == "Authorize":
        token = p["idToken"]
        return AuthorizeRequest(token["idToken"], token.get("type"))
    if action == "NotifyEvent":
        return DeviceEventReport(parse_time(p["generatedAt"]), p["seqNo"], bool(p.get("tbc", False)),
                                 [_device_event(e) for e in p["eventData"]])
    if action == "NotifyReport":
        return DeviceReport(p["requestId"], parse_time(p["generatedAt"]), p["seqNo"], bool(p.get("tbc", False)),
                            _device_variables(p.get("reportData")))
    if action == "SecurityEventNotification":
        return SecurityEvent(p["type"], parse_time(p["timestamp"]), p.get("techInfo"),
                             is_security_alarm(p["type"]), p)
    if action == "BootNotification":
        cs = p["chargingStation"]
        modem = cs.get("modem") or {}
        return Boot(vendor=cs["vendorName"], model=cs["model"], serial_number=cs.get("serialNumber"),
                    firmware_version=cs.get("firmwareVersion"), iccid=modem.get("iccid"), imsi=modem.get("imsi"),
                    reason=p["reason"])
    ts = p.get("timestamp")
    return Notification(action, p, parse_time(ts) if isinstance(ts, str) else None)


_AUTH_STATUSES = frozenset({"Accepted", "Blocked", "ConcurrentTx", "Expired", "Invalid", "NoCredit",
                            "NotAllowedTypeEVSE", "NotAtThisLocation", "NotAtThisTime", "Unknown"})


def id_token_info(info: IdTagInfo) -> dict[str, Any]:
    """IdTagInfo → 2.x IdTokenInfoType (expiry → cacheExpiryDateTime, parent → groupIdToken)."""
    out: dict[str, Any] = {"status": info.status if info.status in _AUTH_STATUSES else "Invalid"}
    if info.expiry_date is not None:
        out["cacheExpiryDateTime"] = format_time(info.expiry_date)
    if info.parent_id_tag:
        out["groupIdToken"] = {"idToken": info.parent_id_tag, "type": "Central"}
    return out


def encode(action: str, outcome: Any) -> dict[str, Any]:
    """Build the CALLRESULT payload for *action* from the service's *outcome*."""
    if action in _EMPTY_ANSWER:
        return {}
    if action == "TransactionEvent":
        return {} if outcome is None else {"idTokenInfo": id_token_info(outcome)}
    if action == "Heartbeat":
        return {"currentTime": format_time(outcome)}
    if action == "Authorize":
        return {"idTokenInfo": id_token_info(outcome)}
    if action == "BootNotification":
        assert isinstance(outcome, BootResult)
        return {"status": outcome.status, "currentTime": format_time(outcome.current_time),
                "interval": outcome.interval}
    if action == "DataTransfer":
        return {"status": "Accepted"}
    if action == "NotifyEVChargingNeeds":
        # This CSMS computes no charging schedules (valid in 2.0.1 and 2.1): the EV charges at its default.
        return {"status": "Rejected"}
    raise KeyError(action)
