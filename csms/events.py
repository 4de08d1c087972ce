"""Domain events and decisions: what a charger said and what the CSMS answers, in any OCPP version.

The version modules (:mod:`csms.versions.v16`, :mod:`csms.versions.v2x`) turn
OCPP payloads into these events and decisions back into payloads; the service
layer (:mod:`csms.service`) only ever sees these types. Times are timezone-aware
UTC datetimes, energy is in Wh, and statuses use one shared vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "parse_time", "Sample", "Boot", "Heartbeat", "StatusReport", "AuthorizeRequest",
    "TransactionStart", "TransactionStop", "TransactionUpdate", "MeterReport", "Notification",
    "IdTagInfo", "Event", "DeviceVariable", "DeviceReport", "DeviceEvent", "DeviceEventReport",
    "SecurityEvent", "is_security_alarm", "energy_readings", "session_energy",
]

#: Connector statuses, the union of OCPP 1.6 ChargePointStatus and 2.x ConnectorStatusEnumType.
STATUSES = frozenset({
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
    "Reserved", "Unavailable", "Faulted", "Occupied",
})

#: Stop reasons, one vocabulary for all versions (OCPP 2.x ReasonEnumType, a superset of 1.6 Reason).
STOP_REASONS = frozenset({
    "DeAuthorized", "EmergencyStop", "EnergyLimitReached", "EVDisconnected", "GroundFault",
    "ImmediateReset", "Local", "LocalOutOfCredit", "MasterPass", "Other", "OvercurrentFault",
    "PowerLoss", "PowerQuality", "Reboot", "Remote", "SOCLimitReached", "StoppedByEV",
    "TimeLimitReached", "Timeout", "HardReset", "SoftReset", "UnlockCommand",
    "ReqEnergyTransferRejected", "ResetCommand", "CostLimitReached", "LimitReached",
})

ENERGY_REGISTER = "Energy.Active.Import.Register"
ENERGY_INTERVAL = "Energy.Active.Import.Interval"


#: Units normalised on the way in (energy to Wh, power to W, ...): unit -> (base unit, factor).
UNIT_SCALE: dict[str, tuple[str, float]] = {
    "kWh": ("Wh", 1000.0), "kW": ("W", 1000.0), "kvarh": ("varh", 1000.0), "kvar": ("var", 1000.0),
    "kVAh": ("VAh", 1000.0), "kVA": ("VA", 1000.0), "MWh": ("Wh", 1e6),
}


def normalise_unit(value: float, unit: str | None) -> tuple[float, str | None]:
    """*value* in *unit* expressed in the base unit of :data:`UNIT_SCALE` (unchanged otherwise)."""
    scale = UNIT_SCALE.get(unit) if unit is not None else None
    if scale is None:
        return value, unit
    return value * scale[1], scale[0]


def parse_time(value: str) -> datetime:
    """Parse an OCPP timestamp: RFC 3339 with or without fractional seconds, ``Z`` or an offset.

    A timestamp without an offset is taken as UTC. The result is always UTC.
    Raises ``ValueError`` for anything else.
    """
    if not isinstance(value, str) or len(value) < 19:
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text.replace("t", "T", 1))
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


@dataclass(slots=True)
class Sample:
    """One sampled value of a meter reading."""

    timestamp: datetime
    value: float
    measurand: str = ENERGY_REGISTER
    phase: str | None = None
    unit: str | None = "Wh"
    context: str | None = None
    location: str | None = None
    raw: str | None = None  # the value as sent, when it was not a plain number


@dataclass(slots=True)
class Boot:
    vendor: str
    model: str
    serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class Heartbeat:
    pass


@dataclass(slots=True)
class StatusReport:
    connector_id: int  # 0 = the charger itself
    status: str
    timestamp: datetime | None
    error_code: str = "NoError"
    evse_id: int | None = None
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    evse_connector_id: int | None = None  # 2.x connectorId within the EVSE


@dataclass(slots=True)
class AuthorizeRequest:
    id_tag: str
    token_type: str | None = None


@dataclass(slots=True)
class IdTagInfo:
    status: str  # Accepted, Blocked, Expired, Invalid, ConcurrentTx (2.x adds Unknown, NoCredit, ...)
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None


@dataclass(slots=True)
class TransactionStart:
    connector_id: int
    id_tag: str | None
    timestamp: datetime
    meter_start_wh: float | None
    evse_id: int | None = None
    transaction_id: str | None = None  # None: the CSMS assigns one (OCPP 1.6)
    reservation_id: int | None = None
    seq_no: int | None = None
    trigger_reason: str | None = None
    offline: bool = False
    samples: list[Sample] = field(default_factory=list)
    id_token_type: str | None = None  # 2.x IdTokenEnumType
    charging_state: str | None = None
    number_of_phases: int | None = None
    remote_start_id: int | None = None
    evse_connector_id: int | None = None  # 2.x connectorId within the EVSE


@dataclass(slots=True)
class TransactionUpdate:
    """A 2.x TransactionEvent(Updated): samples and state while a transaction runs."""

    transaction_id: str
    timestamp: datetime
    seq_no: int | None = None
    connector_id: int | None = None
    evse_id: int | None = None
    id_tag: str | None = None
    charging_state: str | None = None
    trigger_reason: str | None = None
    offline: bool = False
    samples: list[Sample] = field(default_factory=list)
    id_token_type: str | None = None
    number_of_phases: int | None = None
    reservation_id: int | None = None
    remote_start_id: int | None = None
    evse_connector_id: int | None = None


@dataclass(slots=True)
class TransactionStop:
    transaction_id: str
    timestamp: datetime
    meter_stop_wh: float | None
    reason: str | None = None
    id_tag: str | None = None
    connector_id: int | None = None
    evse_id: int | None = None
    seq_no: int | None = None
    trigger_reason: str | None = None
    offline: bool = False
    samples: list[Sample] = field(default_factory=list)
    id_token_type: str | None = None
    charging_state: str | None = None
    number_of_phases: int | None = None
    reservation_id: int | None = None
    remote_start_id: int | None = None
    evse_connector_id: int | None = None


@dataclass(slots=True)
class MeterReport:
    connector_id: int
    samples: list[Sample]
    transaction_id: str | None = None
    evse_id: int | None = None


@dataclass(slots=True)
class Notification:
    """A charger message that is stored as it came (DataTransfer, firmware/diagnostics status, ...)."""

    action: str
    payload: dict[str, Any]
    timestamp: datetime | None = None


@dataclass(slots=True)
class DeviceVariable:
    """One variable attribute of a 2.x charger's device model (an entry of NotifyReport)."""

    component: str
    variable: str
    component_instance: str | None = None
    evse_id: int | None = None
    evse_connector_id: int | None = None
    variable_instance: str | None = None
    attribute_type: str = "Actual"
    value: str | None = None
    mutability: str | None = None
    persistent: bool | None = None
    constant: bool | None = None
    data_type: str | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None
    supports_monitoring: bool | None = None


@dataclass(slots=True)
class DeviceReport:
    """A 2.x NotifyReport: (part of) the device model, in answer to GetBaseReport / GetReport."""

    request_id: int
    generated_at: datetime
    seq_no: int
    tbc: bool
    variables: list[DeviceVariable] = field(default_factory=list)


@dataclass(slots=True)
class DeviceEvent:
    """One component/variable event of a 2.x NotifyEvent.

    ``problem`` is decided by the version module: True opens a fault (``error_code`` in the
    shared 1.6 ChargePointErrorCode vocabulary), False closes it, None leaves faults alone.
    ``connector_id`` is the shared connector identity (0 = the charger itself).
    """

    event_id: int
    timestamp: datetime
    trigger: str
    actual_value: str
    component: str
    variable: str
    connector_id: int = 0
    notification_type: str | None = None
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    evse_connector_id: int | None = None
    cause: int | None = None
    tech_code: str | None = None
    tech_info: str | None = None
    cleared: bool | None = None
    transaction_id: str | None = None
    monitoring_id: int | None = None
    severity: int | None = None
    problem: bool | None = None
    error_code: str | None = None


@dataclass(slots=True)
class DeviceEventReport:
    """A 2.x NotifyEvent message: one or more :class:`DeviceEvent`."""

    generated_at: datetime
    seq_no: int
    tbc: bool
    events: list[DeviceEvent] = field(default_factory=list)


#: Security event types (OCPP 2.x appendix and 1.6 security whitepaper) that raise an alarm:
#: they open a fault with source ``security`` that stays open until an operator closes it.
SECURITY_ALARMS = frozenset({
    "TamperDetectionActivated", "AttemptedReplayAttacks", "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate", "InvalidCsmsCertificate", "InvalidCentralSystemCertificate",
    "InvalidChargingStationCertificate", "InvalidChargePointCertificate", "InvalidTLSVersion",
    "InvalidTLSCipherSuite", "SecurityLogWasCleared", "MemoryExhaustion", "MaintenanceLoginFailed",
    "FailedToAuthenticateAtCsms", "FailedToAuthenticateAtCentralSystem", "CsmsFailedToAuthenticate",
    "CentralSystemFailedToAuthenticate", "InvalidMessages",
})


def is_security_alarm(event_type: str) -> bool:
    """True for security events that must raise an alarm (tamper, invalid certificates, ...)."""
    return event_type in SECURITY_ALARMS or "tamper" in event_type.lower()


@dataclass(slots=True)
class SecurityEvent:
    """SecurityEventNotification (1.6 security edition and 2.x); ``payload`` is kept as it came."""

    type: str
    timestamp: datetime
    tech_info: str | None = None
    alarm: bool = False
    payload: dict[str, Any] = field(default_factory=dict)


Event = (Boot | Heartbeat | StatusReport | AuthorizeRequest | TransactionStart | TransactionUpdate
         | TransactionStop | MeterReport | Notification | DeviceReport | DeviceEventReport | SecurityEvent)


@dataclass(slots=True)
class BootResult:
    status: str  # Accepted, Pending, Rejected
    interval: int
    current_time: datetime


@dataclass(slots=True)
class StartResult:
    transaction_id: str
    id_tag_info: IdTagInfo


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_time(dt: datetime) -> str:
    """RFC 3339 UTC with millisecond precision and ``Z``, as chargers expect."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


Reading = tuple[datetime, float, "str | None"]  #: (time, Wh, context) of an energy register reading


def energy_readings(samples: list[Sample]) -> tuple[Reading | None, Reading | None, float | None]:
    """The energy facts of a transaction's samples: (first reading, last reading, interval sum).

    Readings are total (phase-less) ``Energy.Active.Import.Register`` values as (time, Wh,
    context). The first reading is the one marked ``Transaction.Begin`` if any, else the
    earliest not marked ``Transaction.End``; the last one is the one marked
    ``Transaction.End`` if any, else the latest not marked ``Transaction.Begin``. The interval
    sum adds the phase-less ``Energy.Active.Import.Interval`` values, each timestamp once.
    The store applies the same rule to all samples of a session (see :mod:`csms.store`).
    """
    first: Reading | None = None
    last: Reading | None = None
    intervals: dict[datetime, float] = {}
    for s in samples:
        if s.phase is not None or s.value != s.value:  # NaN
            continue
        if s.measurand == ENERGY_REGISTER:
            ctx = s.context
            if ctx != "Transaction.End" and (
                    first is None or (ctx == "Transaction.Begin") > (first[2] == "Transaction.Begin")
                    or ((ctx == "Transaction.Begin") == (first[2] == "Transaction.Begin") and s.timestamp < first[0])):
                first = (s.timestamp, s.value, ctx)
            if ctx != "Transaction.Begin" and (
                    last is None or (ctx == "Transaction.End") > (last[2] == "Transaction.End")
                    or ((ctx == "Transaction.End") == (last[2] == "Transaction.End") and s.timestamp >= last[0])):
                last = (s.timestamp, s.value, ctx)
        elif s.measurand == ENERGY_INTERVAL:
            intervals[s.timestamp] = s.value
    return first, last, (sum(intervals.values()) if intervals else None)


def session_energy(start: Reading | None, stop: Reading | None, interval_wh: float | None
                   ) -> tuple[float | None, str | None]:
    """A transaction's energy in Wh and anomaly, from its register readings or else its intervals.

    *start* and *stop* are (time, Wh, context) of the first and last register reading (see
    :func:`energy_readings`). The difference counts when they are two readings (later stop, or
    marked Transaction.Begin / Transaction.End); a decreasing meter gives no energy and the
    anomaly ``meter_decreased``, as in 1.6. Without two readings the sum of
    ``Energy.Active.Import.Interval`` values is used; without those, the energy is unknown.
    """
    if start is not None and stop is not None and (
            stop[0] > start[0] or start[2] == "Transaction.Begin" or stop[2] == "Transaction.End"):
        diff = stop[1] - start[1]
        if diff < 0:
            return None, "meter_decreased"
        return diff, None
    if interval_wh is not None:
        return interval_wh, None
    return None, None
