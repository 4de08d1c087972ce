"""Operator commands, free of I/O: typed requests → the OCPP action and payload for a charger's version.

Every CSMS→charger operation the API offers is a pydantic model here, with
version-neutral field names (snake_case, e.g. ``reset(type="soft")``).
:func:`build` maps one to the CALL a charger of a given OCPP version expects::

    build(Reset(type="soft"), "1.6")    -> OcppCall("Reset", {"type": "Soft"})
    build(Reset(type="soft"), "2.0.1")  -> OcppCall("Reset", {"type": "OnIdle"})

and validates the produced payload against the official schema, so what
reaches a charger is always well-formed. A command that does not exist in a
version (GetConfiguration on 2.x, GetVariables on 1.6, ...) raises
:class:`UnsupportedCommand`; a value the version cannot carry (a 21-character
id tag for 1.6, a non-numeric transaction id for 1.6) raises
:class:`CommandInvalid`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from . import validation
from .events import format_time

__all__ = [
    "OcppCall", "Command", "CommandError", "UnsupportedCommand", "CommandInvalid", "COMMANDS", "build",
    "VERSIONS", "Timestamp",
]

VERSIONS = ("1.6", "2.0.1", "2.1")

def _bounded_time(dt: datetime) -> datetime:
    """A timezone-aware UTC datetime between 1970 and 9000 (naive = UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    if not 1970 <= dt.year <= 9000:
        raise ValueError("timestamp out of range (years 1970 to 9000)")
    return dt.astimezone(timezone.utc)


#: A timestamp parameter: RFC 3339 / ISO 8601, naive = UTC, normalised to UTC.
Timestamp = Annotated[datetime, AfterValidator(_bounded_time)]

Int32 = Annotated[int, Field(ge=0, le=2_147_483_647)]
PositiveInt32 = Annotated[int, Field(ge=1, le=2_147_483_647)]
IdTag = Annotated[str, Field(min_length=1, max_length=36, description="The id tag / id token value")]
Url = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$",
                           description="Absolute URL, e.g. ftp://host/path")]

#: id token types (OCPP 2.0.1 IdTokenEnumType, plus the OCPP 2.1 additions).
IdTokenType = Literal["Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress",
                      "NoAuthorization", "DirectPayment", "EVCCID", "VIN"]


class CommandError(ValueError):
    """A command that cannot be sent to a charger of this version."""

    code = "invalid_command"


class UnsupportedCommand(CommandError):
    code = "unsupported_for_version"


class CommandInvalid(CommandError):
    code = "invalid_for_version"


@dataclass(frozen=True, slots=True)
class OcppCall:
    action: str
    payload: dict[str, Any]


def _time(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return format_time(dt)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _request_id() -> int:
    """A positive 31-bit id for requests that need one (remoteStartId, requestId)."""
    return secrets.randbelow(2_147_483_646) + 1


def _int_transaction_id(value: str) -> int:
    try:
        tx = int(value)
    except ValueError:
        raise CommandInvalid(f"OCPP 1.6 transaction ids are integers, not {value!r}") from None
    if not 0 <= tx <= 2_147_483_647:
        raise CommandInvalid(f"OCPP 1.6 transaction id out of range: {value!r}")
    return tx


class Command(BaseModel):
    """Base of all commands: strict (unknown fields are errors), no NaN/infinity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: ClassVar[str]
    summary: ClassVar[str]

    def v16(self) -> OcppCall:
        raise UnsupportedCommand(f"{self.name} is not available in OCPP 1.6")

    def v2x(self, version: str) -> OcppCall:
        raise UnsupportedCommand(f"{self.name} is not available in OCPP {version}")


def _evse(evse_id: int | None, connector_id: int | None) -> dict[str, Any] | None:
    if evse_id is None:
        return None
    return _drop_none({"id": evse_id, "connectorId": connector_id})


# --------------------------------------------------------------------- charging profiles
class ChargingSchedulePeriod(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start_period: Int32 = Field(description="Seconds from the start of the schedule")
    limit: float = Field(ge=0, le=1_000_000, description="Limit in the schedule's unit (A or W)")
    number_phases: int | None = Field(None, ge=1, le=3)


class ChargingSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    unit: Literal["A", "W"]
    periods: list[ChargingSchedulePeriod] = Field(min_length=1, max_length=1024)
    duration: Int32 | None = None
    start: Timestamp | None = None
    min_charging_rate: float | None = Field(None, ge=0, le=1_000_000)


class ChargingProfile(BaseModel):
    """A charging profile in version-neutral form (1.6 ``csChargingProfiles`` / 2.x ``chargingProfile``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: Int32
    stack_level: Int32 = 0
    purpose: Literal["ChargePointMaxProfile", "ChargingStationMaxProfile", "TxDefaultProfile", "TxProfile",
                     "ChargingStationExternalConstraints"] = Field(
        description="ChargePointMaxProfile (1.6) and ChargingStationMaxProfile (2.x) are the same thing")
    kind: Literal["Absolute", "Recurring", "Relative"]
    recurrency: Literal["Daily", "Weekly"] | None = None
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None
    transaction_id: str | None = Field(None, min_length=1, max_length=36)
    schedule: ChargingSchedule

    def v16(self) -> dict[str, Any]:
        purpose = {"ChargingStationMaxProfile": "ChargePointMaxProfile"}.get(self.purpose, self.purpose)
        if purpose == "ChargingStationExternalConstraints":
            raise UnsupportedCommand("purpose ChargingStationExternalConstraints does not exist in OCPP 1.6")
        s = self.schedule
        return _drop_none({
            "chargingProfileId": self.id,
            "transactionId": None if self.transaction_id is None else _int_transaction_id(self.transaction_id),
            "stackLevel": self.stack_level,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": self.kind,
            "recurrencyKind": self.recurrency,
            "validFrom": self.valid_from and _time(self.valid_from),
            "validTo": self.valid_to and _time(self.valid_to),
            "chargingSchedule": _drop_none({
                "duration": s.duration,
                "startSchedule": s.start and _time(s.start),
                "chargingRateUnit": s.unit,
                # 1.6 limits are multiples of 0.1
                "chargingSchedulePeriod": [_drop_none({"startPeriod": p.start_period, "limit": round(p.limit, 1),
                                                       "numberPhases": p.number_phases}) for p in s.periods],
                "minChargingRate": None if s.min_charging_rate is None else round(s.min_charging_rate, 1),
            }),
        })

    def v2x(self) -> dict[str, Any]:
        purpose = {"ChargePointMaxProfile": "ChargingStationMaxProfile"}.get(self.purpose, self.purpose)
        s = self.schedule
        return _drop_none({
            "id": self.id,
            "stackLevel": self.stack_level,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": self.kind,
            "recurrencyKind": self.recurrency,
            "validFrom": self.valid_from and _time(self.valid_from),
            "validTo": self.valid_to and _time(self.valid_to),
            "transactionId": self.transaction_id,
            "chargingSchedule": [_drop_none({
                "id": self.id,
                "startSchedule": s.start and _time(s.start),
                "duration": s.duration,
                "chargingRateUnit": s.unit,
                "chargingSchedulePeriod": [_drop_none({"startPeriod": p.start_period, "limit": p.limit,
                                                       "numberPhases": p.number_phases}) for p in s.periods],
                "minChargingRate": s.min_charging_rate,
            })],
        })


# --------------------------------------------------------------------- transactions
class RemoteStart(Command):
    name = "remote-start"
    summary = "RemoteStartTransaction (1.6) / RequestStartTransaction (2.x)"

    id_tag: IdTag
    connector_id: PositiveInt32 | None = Field(None, description="1.6 connector; for 2.x used as evse id "
                                                                 "when evse_id is not given")
    evse_id: PositiveInt32 | None = Field(None, description="2.x only")
    id_token_type: IdTokenType = Field("ISO14443", description="2.x only")
    remote_start_id: PositiveInt32 | None = Field(None, description="2.x only; generated when omitted")
    charging_profile: ChargingProfile | None = None

    def v16(self) -> OcppCall:
        return OcppCall("RemoteStartTransaction", _drop_none({
            "connectorId": self.connector_id if self.connector_id is not None else self.evse_id,
            "idTag": self.id_tag,
            "chargingProfile": self.charging_profile and self.charging_profile.v16(),
        }))

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("RequestStartTransaction", _drop_none({
            "idToken": {"idToken": self.id_tag, "type": self.id_token_type},
            "remoteStartId": self.remote_start_id or _request_id(),
            "evseId": self.evse_id if self.evse_id is not None else self.connector_id,
            "chargingProfile": self.charging_profile and self.charging_profile.v2x(),
        }))


class RemoteStop(Command):
    name = "remote-stop"
    summary = "RemoteStopTransaction (1.6) / RequestStopTransaction (2.x)"

    transaction_id: str = Field(min_length=1, max_length=36,
                                description="The transaction id as the charger knows it (see sessions)")

    def v16(self) -> OcppCall:
        return OcppCall("RemoteStopTransaction", {"transactionId": _int_transaction_id(self.transaction_id)})

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("RequestStopTransaction", {"transactionId": self.transaction_id})


# --------------------------------------------------------------------- charger control
class Reset(Command):
    name = "reset"
    summary = "Reset: soft (1.6 Soft, 2.x OnIdle) or hard (1.6 Hard, 2.x Immediate)"

    type: Literal["soft", "hard"] = "soft"
    evse_id: Int32 | None = Field(None, description="2.x only: reset one EVSE")

    def v16(self) -> OcppCall:
        if self.evse_id is not None:
            raise CommandInvalid("OCPP 1.6 resets the whole charge point; evse_id is 2.x only")
        return OcppCall("Reset", {"type": "Soft" if self.type == "soft" else "Hard"})

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("Reset", _drop_none({"type": "OnIdle" if self.type == "soft" else "Immediate",
                                             "evseId": self.evse_id}))


class UnlockConnector(Command):
    name = "unlock-connector"
    summary = "UnlockConnector"

    connector_id: PositiveInt32 = Field(description="1.6 connector id; in 2.x the connector on the EVSE")
    evse_id: PositiveInt32 | None = Field(None, description="2.x EVSE; when omitted, connector_id is taken "
                                                            "as the EVSE id and its connector 1 is unlocked")

    def v16(self) -> OcppCall:
        return OcppCall("UnlockConnector", {"connectorId": self.connector_id})

    def v2x(self, version: str) -> OcppCall:
        if self.evse_id is None:
            return OcppCall("UnlockConnector", {"evseId": self.connector_id, "connectorId": 1})
        return OcppCall("UnlockConnector", {"evseId": self.evse_id, "connectorId": self.connector_id})


class ChangeAvailability(Command):
    name = "change-availability"
    summary = "ChangeAvailability: Operative / Inoperative"

    type: Literal["Operative", "Inoperative"]
    connector_id: Int32 = Field(0, description="0 = the whole charger (1.6); in 2.x the EVSE unless evse_id")
    evse_id: Int32 | None = Field(None, description="2.x EVSE (then connector_id is the connector on it)")

    def v16(self) -> OcppCall:
        return OcppCall("ChangeAvailability", {"connectorId": self.connector_id, "type": self.type})

    def v2x(self, version: str) -> OcppCall:
        if self.evse_id is not None:
            evse = _evse(self.evse_id, self.connector_id or None)
        else:
            evse = _evse(self.connector_id, None) if self.connector_id else None
        return OcppCall("ChangeAvailability", _drop_none({"operationalStatus": self.type, "evse": evse}))


class TriggerMessage(Command):
    name = "trigger-message"
    summary = "TriggerMessage"

    requested_message: Literal[
        "BootNotification", "DiagnosticsStatusNotification", "LogStatusNotification",
        "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StatusNotification", "TransactionEvent",
        "SignChargingStationCertificate", "SignV2GCertificate", "SignCombinedCertificate",
        "PublishFirmwareStatusNotification",
    ] = Field(description="DiagnosticsStatusNotification (1.6) and LogStatusNotification (2.x) map onto "
                          "each other")
    connector_id: PositiveInt32 | None = Field(None, description="1.6 connector / 2.x EVSE unless evse_id")
    evse_id: PositiveInt32 | None = None

    def v16(self) -> OcppCall:
        msg = {"LogStatusNotification": "DiagnosticsStatusNotification"}.get(self.requested_message,
                                                                             self.requested_message)
        return OcppCall("TriggerMessage", _drop_none({"requestedMessage": msg,
                                                      "connectorId": self.connector_id or self.evse_id}))

    def v2x(self, version: str) -> OcppCall:
        msg = {"DiagnosticsStatusNotification": "LogStatusNotification"}.get(self.requested_message,
                                                                             self.requested_message)
        if self.evse_id is not None:
            evse = _evse(self.evse_id, self.connector_id)
        else:
            evse = _evse(self.connector_id, None)
        return OcppCall("TriggerMessage", _drop_none({"requestedMessage": msg, "evse": evse}))


# --------------------------------------------------------------------- configuration
class GetConfiguration(Command):
    name = "get-configuration"
    summary = "GetConfiguration (1.6 only; use get-variables for 2.x)"

    keys: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(
        None, max_length=100, description="Omit for all keys")

    def v16(self) -> OcppCall:
        return OcppCall("GetConfiguration", _drop_none({"key": self.keys}))


class ChangeConfiguration(Command):
    name = "change-configuration"
    summary = "ChangeConfiguration (1.6 only; use set-variables for 2.x)"

    key: str = Field(min_length=1, max_length=50)
    value: str = Field(max_length=500)

    def v16(self) -> OcppCall:
        return OcppCall("ChangeConfiguration", {"key": self.key, "value": self.value})


class VariableRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    component: str = Field(min_length=1, max_length=50)
    component_instance: str | None = Field(None, min_length=1, max_length=50)
    evse_id: Int32 | None = None
    connector_id: Int32 | None = None
    variable: str = Field(min_length=1, max_length=50)
    variable_instance: str | None = Field(None, min_length=1, max_length=50)
    attribute_type: Literal["Actual", "Target", "MinSet", "MaxSet"] | None = None

    def ocpp(self) -> dict[str, Any]:
        return _drop_none({
            "attributeType": self.attribute_type,
            "component": _drop_none({"name": self.component, "instance": self.component_instance,
                                     "evse": _evse(self.evse_id, self.connector_id)}),
            "variable": _drop_none({"name": self.variable, "instance": self.variable_instance}),
        })


class VariableValue(VariableRef):
    value: str = Field(max_length=1000)


class GetVariables(Command):
    name = "get-variables"
    summary = "GetVariables (2.x only; use get-configuration for 1.6)"

    variables: list[VariableRef] = Field(min_length=1, max_length=100)

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("GetVariables", {"getVariableData": [v.ocpp() for v in self.variables]})


class SetVariables(Command):
    name = "set-variables"
    summary = "SetVariables (2.x only; use change-configuration for 1.6)"

    variables: list[VariableValue] = Field(min_length=1, max_length=100)

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("SetVariables", {"setVariableData": [
            {"attributeValue": v.value, **v.ocpp()} for v in self.variables]})


class GetBaseReport(Command):
    name = "get-base-report"
    summary = "GetBaseReport (2.x only)"

    report_base: Literal["ConfigurationInventory", "FullInventory", "SummaryInventory"] = "FullInventory"
    request_id: PositiveInt32 | None = Field(None, description="Generated when omitted")

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("GetBaseReport", {"requestId": self.request_id or _request_id(),
                                          "reportBase": self.report_base})


# --------------------------------------------------------------------- reservations
class ReserveNow(Command):
    name = "reserve-now"
    summary = "ReserveNow"

    reservation_id: Int32
    id_tag: IdTag
    expiry: Timestamp = Field(description="When the reservation ends")
    connector_id: Int32 = Field(0, description="1.6 connector (0 = any); 2.x EVSE unless evse_id")
    evse_id: Int32 | None = None
    parent_id_tag: IdTag | None = None
    id_token_type: IdTokenType = Field("ISO14443", description="2.x only")

    def v16(self) -> OcppCall:
        return OcppCall("ReserveNow", _drop_none({
            "connectorId": self.connector_id if self.evse_id is None else self.evse_id,
            "expiryDate": _time(self.expiry), "idTag": self.id_tag, "parentIdTag": self.parent_id_tag,
            "reservationId": self.reservation_id}))

    def v2x(self, version: str) -> OcppCall:
        evse = self.evse_id if self.evse_id is not None else (self.connector_id or None)
        return OcppCall("ReserveNow", _drop_none({
            "id": self.reservation_id, "expiryDateTime": _time(self.expiry),
            "idToken": {"idToken": self.id_tag, "type": self.id_token_type},
            "evseId": evse,
            "groupIdToken": self.parent_id_tag and {"idToken": self.parent_id_tag, "type": self.id_token_type},
        }))


class CancelReservation(Command):
    name = "cancel-reservation"
    summary = "CancelReservation"

    reservation_id: Int32

    def v16(self) -> OcppCall:
        return OcppCall("CancelReservation", {"reservationId": self.reservation_id})

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("CancelReservation", {"reservationId": self.reservation_id})


# --------------------------------------------------------------------- smart charging
class SetChargingProfile(Command):
    name = "set-charging-profile"
    summary = "SetChargingProfile"

    connector_id: Int32 = Field(0, description="1.6 connector / 2.x EVSE (0 = the whole charger)")
    profile: ChargingProfile

    def v16(self) -> OcppCall:
        return OcppCall("SetChargingProfile", {"connectorId": self.connector_id,
                                               "csChargingProfiles": self.profile.v16()})

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("SetChargingProfile", {"evseId": self.connector_id, "chargingProfile": self.profile.v2x()})


class ClearChargingProfile(Command):
    name = "clear-charging-profile"
    summary = "ClearChargingProfile (all criteria optional; none = clear every profile)"

    profile_id: Int32 | None = None
    connector_id: Int32 | None = Field(None, description="1.6 connector / 2.x EVSE")
    purpose: Literal["ChargePointMaxProfile", "ChargingStationMaxProfile", "TxDefaultProfile", "TxProfile",
                     "ChargingStationExternalConstraints"] | None = None
    stack_level: Int32 | None = None

    def v16(self) -> OcppCall:
        purpose = {"ChargingStationMaxProfile": "ChargePointMaxProfile"}.get(self.purpose or "", self.purpose)
        if purpose == "ChargingStationExternalConstraints":
            raise UnsupportedCommand("purpose ChargingStationExternalConstraints does not exist in OCPP 1.6")
        return OcppCall("ClearChargingProfile", _drop_none({
            "id": self.profile_id, "connectorId": self.connector_id, "chargingProfilePurpose": purpose,
            "stackLevel": self.stack_level}))

    def v2x(self, version: str) -> OcppCall:
        purpose = {"ChargePointMaxProfile": "ChargingStationMaxProfile"}.get(self.purpose or "", self.purpose)
        criteria = _drop_none({"evseId": self.connector_id, "chargingProfilePurpose": purpose,
                               "stackLevel": self.stack_level})
        return OcppCall("ClearChargingProfile", _drop_none({"chargingProfileId": self.profile_id,
                                                            "chargingProfileCriteria": criteria or None}))


class GetCompositeSchedule(Command):
    name = "get-composite-schedule"
    summary = "GetCompositeSchedule"

    connector_id: Int32 = Field(0, description="1.6 connector / 2.x EVSE (0 = the grid connection)")
    duration: PositiveInt32 = Field(description="Seconds")
    unit: Literal["A", "W"] | None = None

    def v16(self) -> OcppCall:
        return OcppCall("GetCompositeSchedule", _drop_none({"connectorId": self.connector_id,
                                                            "duration": self.duration,
                                                            "chargingRateUnit": self.unit}))

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("GetCompositeSchedule", _drop_none({"evseId": self.connector_id, "duration": self.duration,
                                                            "chargingRateUnit": self.unit}))


# --------------------------------------------------------------------- local authorization list
class LocalListEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_tag: IdTag
    status: Literal["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"] | None = Field(
        None, description="Omitted in a differential update = remove the tag from the list")
    expiry: Timestamp | None = None
    parent_id_tag: IdTag | None = None


class SendLocalList(Command):
    name = "send-local-list"
    summary = "SendLocalList (from_database = the id tags table as the list)"

    list_version: PositiveInt32
    update_type: Literal["Full", "Differential"] = "Full"
    entries: list[LocalListEntry] = Field(default_factory=list, max_length=10_000)
    from_database: bool = Field(False, description="Send every id tag registered in the CSMS (entries must "
                                                   "then be empty)")
    id_token_type: IdTokenType = Field("ISO14443", description="2.x only")

    @model_validator(mode="after")
    def _entries_or_database(self) -> SendLocalList:
        if self.from_database and self.entries:
            raise ValueError("give either entries or from_database, not both")
        return self

    def v16(self) -> OcppCall:
        items = [_drop_none({"idTag": e.id_tag, "idTagInfo": None if e.status is None else _drop_none({
            "status": e.status, "expiryDate": e.expiry and _time(e.expiry),
            "parentIdTag": e.parent_id_tag})}) for e in self.entries]
        return OcppCall("SendLocalList", _drop_none({"listVersion": self.list_version,
                                                     "updateType": self.update_type,
                                                     "localAuthorizationList": items or None}))

    def v2x(self, version: str) -> OcppCall:
        def token(tag: str) -> dict[str, Any]:
            return {"idToken": tag, "type": self.id_token_type}

        items = [_drop_none({"idToken": token(e.id_tag), "idTokenInfo": None if e.status is None else _drop_none({
            "status": e.status, "cacheExpiryDateTime": e.expiry and _time(e.expiry),
            "groupIdToken": e.parent_id_tag and token(e.parent_id_tag)})}) for e in self.entries]
        return OcppCall("SendLocalList", _drop_none({"versionNumber": self.list_version,
                                                     "updateType": self.update_type,
                                                     "localAuthorizationList": items or None}))


class _NoPayload(Command):
    """A command whose OCPP call is the same, empty, in every version."""

    action: ClassVar[str]

    def v16(self) -> OcppCall:
        return OcppCall(self.action, {})

    def v2x(self, version: str) -> OcppCall:
        return OcppCall(self.action, {})


class GetLocalListVersion(_NoPayload):
    name = "get-local-list-version"
    summary = "GetLocalListVersion"
    action = "GetLocalListVersion"


class ClearCache(_NoPayload):
    name = "clear-cache"
    summary = "ClearCache (the charger's authorization cache)"
    action = "ClearCache"


# --------------------------------------------------------------------- firmware and diagnostics
class UpdateFirmware(Command):
    name = "update-firmware"
    summary = "UpdateFirmware"

    location: Url
    retrieve_at: Timestamp
    retries: Int32 | None = None
    retry_interval: Int32 | None = None
    install_at: Timestamp | None = Field(None, description="2.x only")
    request_id: PositiveInt32 | None = Field(None, description="2.x only; generated when omitted")
    signing_certificate: str | None = Field(None, max_length=5500, description="2.x only")
    signature: str | None = Field(None, max_length=800, description="2.x only")

    def v16(self) -> OcppCall:
        if self.signing_certificate or self.signature:
            raise CommandInvalid("signed firmware updates need OCPP 2.x")
        return OcppCall("UpdateFirmware", _drop_none({
            "location": self.location, "retrieveDate": _time(self.retrieve_at), "retries": self.retries,
            "retryInterval": self.retry_interval}))

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("UpdateFirmware", _drop_none({
            "requestId": self.request_id or _request_id(),
            "firmware": _drop_none({"location": self.location, "retrieveDateTime": _time(self.retrieve_at),
                                    "installDateTime": self.install_at and _time(self.install_at),
                                    "signingCertificate": self.signing_certificate,
                                    "signature": self.signature}),
            "retries": self.retries, "retryInterval": self.retry_interval}))


class GetDiagnostics(Command):
    name = "get-diagnostics"
    summary = "GetDiagnostics (1.6) / GetLog (2.x): upload a log to a URL"

    location: Url
    start_time: Timestamp | None = None
    stop_time: Timestamp | None = None
    retries: Int32 | None = None
    retry_interval: Int32 | None = None
    log_type: Literal["DiagnosticsLog", "SecurityLog"] = Field("DiagnosticsLog", description="2.x only")
    request_id: PositiveInt32 | None = Field(None, description="2.x only; generated when omitted")

    def v16(self) -> OcppCall:
        if self.log_type != "DiagnosticsLog":
            raise CommandInvalid("OCPP 1.6 (without the security extension) only uploads diagnostics")
        return OcppCall("GetDiagnostics", _drop_none({
            "location": self.location, "retries": self.retries, "retryInterval": self.retry_interval,
            "startTime": self.start_time and _time(self.start_time),
            "stopTime": self.stop_time and _time(self.stop_time)}))

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("GetLog", _drop_none({
            "logType": self.log_type, "requestId": self.request_id or _request_id(),
            "log": _drop_none({"remoteLocation": self.location,
                               "oldestTimestamp": self.start_time and _time(self.start_time),
                               "latestTimestamp": self.stop_time and _time(self.stop_time)}),
            "retries": self.retries, "retryInterval": self.retry_interval}))


# --------------------------------------------------------------------- vendor specific
class DataTransfer(Command):
    name = "data-transfer"
    summary = "DataTransfer (1.6 carries data as a string: other JSON is sent serialised)"

    vendor_id: str = Field(min_length=1, max_length=255)
    message_id: str | None = Field(None, min_length=1, max_length=50)
    data: Any = None

    @field_validator("data")
    @classmethod
    def _json_data(cls, value: Any) -> Any:
        try:
            if len(orjson.dumps(value)) > 64 * 1024:
                raise ValueError("data larger than 64 KiB")
        except TypeError as exc:
            raise ValueError(f"data is not representable as JSON: {exc}") from None
        return value

    def v16(self) -> OcppCall:
        data = self.data
        if data is not None and not isinstance(data, str):
            data = orjson.dumps(data).decode()
        return OcppCall("DataTransfer", _drop_none({"vendorId": self.vendor_id, "messageId": self.message_id,
                                                    "data": data}))

    def v2x(self, version: str) -> OcppCall:
        return OcppCall("DataTransfer", _drop_none({"vendorId": self.vendor_id, "messageId": self.message_id,
                                                    "data": self.data}))


#: Every command, by its API name.
COMMANDS: dict[str, type[Command]] = {c.name: c for c in (
    RemoteStart, RemoteStop, Reset, UnlockConnector, ChangeAvailability, TriggerMessage,
    GetConfiguration, ChangeConfiguration, GetVariables, SetVariables, GetBaseReport,
    ReserveNow, CancelReservation, SetChargingProfile, ClearChargingProfile, GetCompositeSchedule,
    SendLocalList, GetLocalListVersion, ClearCache, UpdateFirmware, GetDiagnostics, DataTransfer,
)}


def build(command: Command, version: str, *, validate: bool = True) -> OcppCall:
    """The OCPP CALL (action and payload) for *command* on a charger speaking *version*.

    Raises :class:`UnsupportedCommand` or :class:`CommandInvalid`; with
    *validate* (the default) the payload is checked against the version's
    official schema, and a violation raises :class:`CommandInvalid`.
    """
    if version == "1.6":
        call = command.v16()
    elif version in ("2.0.1", "2.1"):
        call = command.v2x(version)
    else:
        raise UnsupportedCommand(f"unknown OCPP version {version!r}")
    if validate:
        try:
            validation.validate(version, call.action, call.payload, "-")
        except validation.ValidationFailed as exc:
            path = exc.details.get("path") or ""
            raise CommandInvalid(f"not valid for OCPP {version} {call.action}: {exc.description}"
                                 + (f" ({path})" if path and path not in exc.description else "")) from None
    return call
