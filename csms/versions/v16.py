"""OCPP 1.6J ⇄ domain events.

:func:`decode` turns a validated charger-initiated CALL payload into a
:mod:`csms.events` event; :func:`encode` turns the service's outcome into the
CALLRESULT payload. Both are pure functions.
"""

from __future__ import annotations

from typing import Any

from ..events import (
    ENERGY_REGISTER, AuthorizeRequest, Boot, BootResult, Event, Heartbeat, IdTagInfo, MeterReport,
    Notification, Sample, SecurityEvent, StartResult, StatusReport, TransactionStart, TransactionStop,
    format_time, is_security_alarm, normalise_unit, parse_time,
)

VERSION = "1.6"

#: Charger-initiated actions this CSMS handles.
ACTIONS = frozenset({
    "BootNotification", "Heartbeat", "StatusNotification", "Authorize", "StartTransaction",
    "StopTransaction", "MeterValues", "DataTransfer", "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    # OCPP 1.6 security whitepaper edition 2
    "SecurityEventNotification", "SignedFirmwareStatusNotification", "LogStatusNotification",
})

#: 1.6 stop reasons are a subset of the shared vocabulary and map onto themselves.
STOP_REASONS_16 = frozenset({
    "EmergencyStop", "EVDisconnected", "HardReset", "Local", "Other", "PowerLoss", "Reboot", "Remote",
    "SoftReset", "UnlockCommand", "DeAuthorized",
})


def _value(raw: Any) -> tuple[float, str | None]:
    """A 1.6 sampled value is a string; keep the number and the raw text when it is not one."""
    try:
        return float(raw), None
    except (TypeError, ValueError):
        return float("nan"), str(raw)


def samples(meter_values: list[dict[str, Any]]) -> list[Sample]:
    """Flatten 1.6 ``MeterValue[]`` into samples, energy normalised to Wh."""
    out: list[Sample] = []
    for mv in meter_values:
        ts = parse_time(mv["timestamp"])
        for sv in mv.get("sampledValue", ()):
            value, raw = _value(sv.get("value"))
            value, unit = normalise_unit(value, sv.get("unit", "Wh"))
            measurand = sv.get("measurand", ENERGY_REGISTER)
            out.append(Sample(ts, value, measurand, sv.get("phase"), unit, sv.get("context"),
                              sv.get("location"), raw))
    return out


def decode(action: str, p: dict[str, Any]) -> Event:
    """Map a validated 1.6 CALL payload to a domain event.

    Raises ``ValueError`` for content the schema cannot catch (e.g. an
    unparseable timestamp); the gateway answers those with a CALLERROR.
    """
    if action == "MeterValues":
        tx = p.get("transactionId")
        return MeterReport(p["connectorId"], samples(p["meterValue"]),
                           None if tx is None else str(tx))
    if action == "Heartbeat":
        return Heartbeat()
    if action == "StatusNotification":
        ts = p.get("timestamp")
        return StatusReport(
            connector_id=p["connectorId"], status=p["status"], error_code=p["errorCode"],
            evse_id=p["connectorId"],  # a 1.6 connector is a 2.x EVSE (0: the charger itself)
            timestamp=parse_time(ts) if ts else None, info=p.get("info"),
            vendor_id=p.get("vendorId"), vendor_error_code=p.get("vendorErrorCode"),
        )
    if action == "StartTransaction":
        return TransactionStart(
            connector_id=p["connectorId"], id_tag=p["idTag"], timestamp=parse_time(p["timestamp"]),
            meter_start_wh=float(p["meterStart"]), reservation_id=p.get("reservationId"), evse_id=p["connectorId"],
        )
    if action == "StopTransaction":
        reason = p.get("reason", "Local")
        return TransactionStop(
            transaction_id=str(p["transactionId"]), timestamp=parse_time(p["timestamp"]),
            meter_stop_wh=float(p["meterStop"]), reason=reason, id_tag=p.get("idTag"),
            samples=samples(p.get("transactionData") or []),
        )
    if action == "Authorize":
        return AuthorizeRequest(p["idTag"])
    if action == "BootNotification":
        return Boot(
            vendor=p["chargePointVendor"], model=p["chargePointModel"],
            serial_number=p.get("chargePointSerialNumber"),
            charge_box_serial_number=p.get("chargeBoxSerialNumber"),
            firmware_version=p.get("firmwareVersion"), iccid=p.get("iccid"), imsi=p.get("imsi"),
            meter_type=p.get("meterType"), meter_serial_number=p.get("meterSerialNumber"),
        )
    if action == "SecurityEventNotification":
        return SecurityEvent(p["type"], parse_time(p["timestamp"]), p.get("techInfo"),
                             is_security_alarm(p["type"]), p)
    ts = p.get("timestamp")
    return Notification(action, p, parse_time(ts) if isinstance(ts, str) else None)


def _id_tag_info(info: IdTagInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"status": info.status if info.status in (
        "Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx") else "Invalid"}
    if info.expiry_date is not None:
        out["expiryDate"] = format_time(info.expiry_date)
    if info.parent_id_tag:
        out["parentIdTag"] = info.parent_id_tag
    return out


def encode(action: str, outcome: Any) -> dict[str, Any]:
    """Build the CALLRESULT payload for *action* from the service's *outcome*."""
    if action in ("MeterValues", "StatusNotification", "DiagnosticsStatusNotification",
                  "FirmwareStatusNotification", "SecurityEventNotification",
                  "SignedFirmwareStatusNotification", "LogStatusNotification"):
        return {}
    if action == "Heartbeat":
        return {"currentTime": format_time(outcome)}
    if action == "StartTransaction":
        assert isinstance(outcome, StartResult)
        return {"transactionId": int(outcome.transaction_id), "idTagInfo": _id_tag_info(outcome.id_tag_info)}
    if action == "StopTransaction":
        return {} if outcome is None else {"idTagInfo": _id_tag_info(outcome)}
    if action == "Authorize":
        return {"idTagInfo": _id_tag_info(outcome)}
    if action == "BootNotification":
        assert isinstance(outcome, BootResult)
        return {"status": outcome.status, "currentTime": format_time(outcome.current_time),
                "interval": outcome.interval}
    if action == "DataTransfer":
        return {"status": "Accepted"}
    raise KeyError(action)
