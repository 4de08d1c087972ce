"""Builders for T/CEC 102-2016 JSON objects, and OCPP → T/CEC mappings. Pure.

Builders take plain Python values and return JSON-ready dicts using the
standard's field names (including its spellings ``SevicePrice``,
``TotalSeviceMoney``). Optional fields that are None are omitted. Numbers
are emitted as ``int`` or ``float``; floats are always derived from exactly
rounded ``Decimal`` values, and a float's shortest repr reproduces those
digits on the wire (``Decimal("12.30")`` is written ``12.3``).

Coordinates are accepted in WGS-84 (what GPS and OCPP deliver) and reported
in GCJ-02 with 6 decimals, as the standard requires.

OCPP connector status → ``ConnectorStatusInfo.Status``
    ======================================  ==========================
    OCPP (1.6 ChargePointStatus /           T/CEC Status
    2.0.1 ConnectorStatusEnumType)
    ======================================  ==========================
    charger offline (any status)            0 离网
    Unavailable                             0 离网
    Available                               1 空闲
    Preparing, SuspendedEV, SuspendedEVSE,  2 占用(未充电)
    Finishing, Occupied
    Occupied with 2.0.1 chargingState       3 充电中
    ``Charging``
    Charging                                3 充电中
    Reserved                                4 预约锁定
    Faulted                                 255 故障
    ======================================  ==========================

OCPP stop reason → ``ChargeOrder.StopReason``
    (0 用户手动停止, 1 客户归属地运营商平台停止, 2 BMS 停止, 3 充电机设备故障,
    4 连接器断开)

    ======================  =====  ==========================================
    OCPP reason             T/CEC  why
    ======================  =====  ==========================================
    (absent)                0      OCPP: may be absent only when ``Local``
    Local                   0      user stopped at the charger (card/button)
    MasterPass              0      stopped at the charger with a master pass
    LocalOutOfCredit        0      the user's local (prepaid) credit ran out
    Remote                  1      stopped via our platform (app / remote)
    DeAuthorized            1      our platform refused/revoked authorisation
    UnlockCommand           1      platform sent UnlockConnector (1.6)
    EnergyLimitReached      1      platform-set limit (e.g. prepaid amount)
    TimeLimitReached        1      platform-set limit
    SOCLimitReached         2      EV reported its SoC limit
    StoppedByEV             2      EV (BMS) ended the session
    ReqEnergyTransfer-      2      EV's requested transfer mode refused (2.1)
    Rejected
    EmergencyStop           3      emergency stop = safety event at the charger
    PowerLoss               3      charger lost power
    HardReset, SoftReset,   3      charger reset/reboot interrupted charging
    Reboot, ImmediateReset
    GroundFault,            3      electrical fault
    OvercurrentFault,
    PowerQuality
    Other                   3      unspecified: treated as a charger-side stop
    EVDisconnected          4      cable unplugged / EV moved away
    Timeout                 4      EV was not connected in time
    ======================  =====  ==========================================

    ``DeAuthorized`` is mapped to 1, not 0: the stop is the platform's
    authorisation decision, not a manual user action. ``Local`` is 0, not 4:
    OCPP defines it as the user's regular stop at the charger; only
    ``EVDisconnected`` means the connector was unplugged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from csms.tariffs import ChargeDetail, SessionCost, Tariff

__all__ = [
    "CONNECTOR_STATUS_MAP",
    "STOP_REASON_MAP",
    "ConnectorStatus",
    "StopReason",
    "charge_detail",
    "charge_order",
    "connector_info",
    "connector_status",
    "connector_status_info",
    "equipment_info",
    "policy_infos",
    "start_charge_seq",
    "station_info",
    "station_status_info",
    "stop_reason",
    "wgs84_to_gcj02",
]


class ConnectorStatus(IntEnum):
    """``ConnectorStatusInfo.Status``."""

    OFFLINE = 0
    IDLE = 1
    OCCUPIED = 2
    CHARGING = 3
    RESERVED = 4
    FAULTED = 255


class StopReason(IntEnum):
    """``ChargeOrder.StopReason`` (5–99 are operator-defined and unused here)."""

    USER = 0
    PLATFORM = 1
    BMS = 2
    CHARGER_FAULT = 3
    CONNECTOR_DISCONNECTED = 4


#: OCPP connector status → T/CEC status (see the module docstring).
CONNECTOR_STATUS_MAP: Mapping[str, ConnectorStatus] = {
    "Available": ConnectorStatus.IDLE,
    "Preparing": ConnectorStatus.OCCUPIED,
    "SuspendedEV": ConnectorStatus.OCCUPIED,
    "SuspendedEVSE": ConnectorStatus.OCCUPIED,
    "Finishing": ConnectorStatus.OCCUPIED,
    "Occupied": ConnectorStatus.OCCUPIED,
    "Charging": ConnectorStatus.CHARGING,
    "Reserved": ConnectorStatus.RESERVED,
    "Faulted": ConnectorStatus.FAULTED,
    "Unavailable": ConnectorStatus.OFFLINE,
}

#: OCPP 1.6 ``Reason`` / 2.0.1 and 2.1 ``ReasonEnumType`` → StopReason.
STOP_REASON_MAP: Mapping[str, StopReason] = {
    "Local": StopReason.USER,
    "MasterPass": StopReason.USER,
    "LocalOutOfCredit": StopReason.USER,
    "Remote": StopReason.PLATFORM,
    "DeAuthorized": StopReason.PLATFORM,
    "UnlockCommand": StopReason.PLATFORM,
    "EnergyLimitReached": StopReason.PLATFORM,
    "TimeLimitReached": StopReason.PLATFORM,
    "SOCLimitReached": StopReason.BMS,
    "StoppedByEV": StopReason.BMS,
    "ReqEnergyTransferRejected": StopReason.BMS,
    "EmergencyStop": StopReason.CHARGER_FAULT,
    "PowerLoss": StopReason.CHARGER_FAULT,
    "HardReset": StopReason.CHARGER_FAULT,
    "SoftReset": StopReason.CHARGER_FAULT,
    "Reboot": StopReason.CHARGER_FAULT,
    "ImmediateReset": StopReason.CHARGER_FAULT,
    "GroundFault": StopReason.CHARGER_FAULT,
    "OvercurrentFault": StopReason.CHARGER_FAULT,
    "PowerQuality": StopReason.CHARGER_FAULT,
    "Other": StopReason.CHARGER_FAULT,
    "EVDisconnected": StopReason.CONNECTOR_DISCONNECTED,
    "Timeout": StopReason.CONNECTOR_DISCONNECTED,
}

_STATION_TYPES = frozenset({1, 50, 100, 101, 102, 103, 255})
_STATION_STATUSES = frozenset({0, 1, 5, 6, 50})
_CONSTRUCTIONS = frozenset({*range(1, 12), 255})
_EQUIPMENT_TYPES = frozenset({1, 2, 3, 4, 5})
_CONNECTOR_TYPES = frozenset({1, 2, 3, 4, 5, 6})
_NATIONAL_STANDARDS = frozenset({1, 2})
_PARK_STATUSES = frozenset({0, 10, 50})
_LOCK_STATUSES = frozenset({0, 10, 50})

_TIME_FMT = "%Y-%m-%d %H:%M:%S"


# ---------------------------------------------------------------------------
# Mappings


def connector_status(
    ocpp_status: str | None,
    *,
    online: bool = True,
    charging_state: str | None = None,
) -> int:
    """Map an OCPP connector status to ``ConnectorStatusInfo.Status``.

    :param ocpp_status: the last ``StatusNotification`` status (1.6 or
        2.0.1/2.1), or None if never reported (→ 0).
    :param online: False if the charger's connection is down (→ 0 whatever
        the last status was).
    :param charging_state: 2.0.1 ``TransactionEvent`` ``chargingState``; with
        ``"Charging"`` an ``Occupied`` connector is reported as 3.
    :raises ValueError: for a status not in :data:`CONNECTOR_STATUS_MAP`.
    """
    if not online or ocpp_status is None:
        return int(ConnectorStatus.OFFLINE)
    try:
        status = CONNECTOR_STATUS_MAP[ocpp_status]
    except KeyError:
        raise ValueError(f"unknown OCPP connector status {ocpp_status!r}") from None
    if status is ConnectorStatus.OCCUPIED and ocpp_status == "Occupied" and charging_state == "Charging":
        status = ConnectorStatus.CHARGING
    return int(status)


def stop_reason(reason: str | None, *, default: int | None = None) -> int:
    """Map an OCPP stop reason to ``ChargeOrder.StopReason``.

    :param reason: 1.6 ``StopTransaction.reason`` or 2.0.1/2.1
        ``transactionInfo.stoppedReason``; None means ``Local`` (both OCPP
        versions allow omitting the field only in that case).
    :param default: returned for a reason not in :data:`STOP_REASON_MAP`;
        if None, such a reason raises :class:`ValueError`.
    """
    if reason is None:
        reason = "Local"
    mapped = STOP_REASON_MAP.get(reason)
    if mapped is None:
        if default is None:
            raise ValueError(f"unknown OCPP stop reason {reason!r}")
        return int(default)
    return int(mapped)


def start_charge_seq(operator_id: str, number: int) -> str:
    """``StartChargeSeq``: OperatorID (9 chars) + *number* zero-padded to 18 digits.

    :param operator_id: our 9-character organisation code (ASCII letters and
        digits).
    :param number: a unique non-negative integer below 10**18 (e.g. the
        transaction's database id).
    :returns: a 27-character string.
    :raises ValueError: for a malformed operator id or an out-of-range number.
    """
    if not isinstance(operator_id, str) or len(operator_id) != 9 or not (
        operator_id.isascii() and operator_id.isalnum()
    ):
        raise ValueError("operator_id must be 9 ASCII letters or digits")
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError("number must be an int")
    if not 0 <= number < 10**18:
        raise ValueError("number must be in [0, 10**18)")
    return f"{operator_id}{number:018d}"


# ---------------------------------------------------------------------------
# Coordinates

_GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_GCJ_EE = 0.00669342162296594323  # eccentricity squared


def _out_of_china(lng: float, lat: float) -> bool:
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """Convert WGS-84 longitude/latitude to GCJ-02 (the public formula).

    Points outside mainland China's bounding box are returned unchanged, as
    the usual implementations do. The result is not rounded.

    :raises ValueError: for non-finite or out-of-range coordinates.
    """
    lng, lat = float(lng), float(lat)
    if not (math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180 and -90 <= lat <= 90):
        raise ValueError("longitude must be in [-180, 180] and latitude in [-90, 90]")
    if _out_of_china(lng, lat):
        return lng, lat
    dlat = _delta_lat(lng - 105.0, lat - 35.0)
    dlng = _delta_lng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _GCJ_EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1 - _GCJ_EE)) / (magic * sqrtmagic) * math.pi)
    dlng = (dlng * 180.0) / (_GCJ_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lng + dlng, lat + dlat


def _gcj02_6dp(lng: float, lat: float) -> tuple[float, float]:
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    return _round_float(g_lng, 6), _round_float(g_lat, 6)


# ---------------------------------------------------------------------------
# Helpers


def _round_float(value: float | int | Decimal | str, places: int, what: str = "value") -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what} must be a number") from None
    if not d.is_finite():
        raise ValueError(f"{what} must be finite")
    return float(d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _dec(value: Decimal) -> float:
    """JSON number for an already rounded Decimal."""
    return float(value)


def _text(value: object, name: str, max_len: int, *, exact: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str")
    if exact and len(value) != max_len:
        raise ValueError(f"{name} must be exactly {max_len} characters")
    if len(value) > max_len:
        raise ValueError(f"{name} must be at most {max_len} characters")
    return value


def _code(value: object, name: str, allowed: frozenset[int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or int(value) not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}")
    return int(value)


def _non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int")
    return int(value)


def _put(obj: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        obj[key] = value


# ---------------------------------------------------------------------------
# Status


def connector_status_info(
    connector_id: str,
    ocpp_status: str | None,
    *,
    online: bool = True,
    charging_state: str | None = None,
    park_status: int | None = None,
    lock_status: int | None = None,
) -> dict[str, Any]:
    """Build a ``ConnectorStatusInfo``.

    :param connector_id: T/CEC ``ConnectorID`` (≤26 chars).
    :param ocpp_status: see :func:`connector_status`.
    :param park_status: ``ParkStatus`` (0 unknown, 10 free, 50 occupied).
    :param lock_status: ``LockStatus`` (0 unknown, 10 unlocked, 50 locked).
    """
    obj: dict[str, Any] = {
        "ConnectorID": _text(connector_id, "ConnectorID", 26),
        "Status": connector_status(ocpp_status, online=online, charging_state=charging_state),
    }
    if park_status is not None:
        obj["ParkStatus"] = _code(park_status, "ParkStatus", _PARK_STATUSES)
    if lock_status is not None:
        obj["LockStatus"] = _code(lock_status, "LockStatus", _LOCK_STATUSES)
    return obj


def station_status_info(station_id: str, connector_status_infos: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Build a ``StationStatusInfo`` from ``ConnectorStatusInfo`` objects."""
    return {
        "StationID": _text(station_id, "StationID", 20),
        "ConnectorStatusInfos": [dict(c) for c in connector_status_infos],
    }


# ---------------------------------------------------------------------------
# Static information


def connector_info(
    *,
    connector_id: str,
    connector_type: int,
    voltage_upper_limits: int,
    voltage_lower_limits: int,
    current: int,
    power_kw: float | int | Decimal,
    national_standard: int = 2,
    connector_name: str | None = None,
    park_no: str | None = None,
) -> dict[str, Any]:
    """Build a ``ConnectorInfo``.

    :param connector_type: 1 家用插座(模式2), 2 交流插座(模式3 B), 3 交流插头
        (模式3 C), 4 直流枪头(模式4), 5 无线充电座, 6 其他.
    :param national_standard: 1 = GB/T 20234-2011, 2 = 2015 (default).
    :param power_kw: rounded to 1 decimal, half up.
    """
    obj: dict[str, Any] = {"ConnectorID": _text(connector_id, "ConnectorID", 26)}
    _put(obj, "ConnectorName", connector_name)
    obj["ConnectorType"] = _code(connector_type, "ConnectorType", _CONNECTOR_TYPES)
    obj["VoltageUpperLimits"] = _non_negative_int(voltage_upper_limits, "VoltageUpperLimits")
    obj["VoltageLowerLimits"] = _non_negative_int(voltage_lower_limits, "VoltageLowerLimits")
    if obj["VoltageLowerLimits"] > obj["VoltageUpperLimits"]:
        raise ValueError("VoltageLowerLimits must not exceed VoltageUpperLimits")
    obj["Current"] = _non_negative_int(current, "Current")
    obj["Power"] = _round_float(power_kw, 1, "Power")
    _put(obj, "ParkNo", park_no)
    obj["NationalStandard"] = _code(national_standard, "NationalStandard", _NATIONAL_STANDARDS)
    return obj


def equipment_info(
    *,
    equipment_id: str,
    equipment_type: int,
    power_kw: float | int | Decimal,
    connector_infos: Sequence[Mapping[str, Any]],
    manufacturer_id: str | None = None,
    manufacturer_name: str | None = None,
    equipment_model: str | None = None,
    production_date: date | None = None,
    lng: float | None = None,
    lat: float | None = None,
    equipment_name: str | None = None,
) -> dict[str, Any]:
    """Build an ``EquipmentInfo`` (one charging pile).

    :param equipment_type: 1 直流, 2 交流, 3 交直流一体, 4 无线, 5 其他.
    :param connector_infos: from :func:`connector_info`; at least one.
    :param lng: WGS-84 longitude; reported as GCJ-02 ``EquipmentLng``, 6 dp.
    :param lat: WGS-84 latitude; reported as GCJ-02 ``EquipmentLat``, 6 dp.
    """
    if not connector_infos:
        raise ValueError("ConnectorInfos must not be empty")
    obj: dict[str, Any] = {"EquipmentID": _text(equipment_id, "EquipmentID", 23)}
    _put(obj, "ManufacturerID", manufacturer_id)
    _put(obj, "ManufacturerName", manufacturer_name)
    _put(obj, "EquipmentModel", equipment_model)
    if production_date is not None:
        obj["ProductionDate"] = production_date.strftime("%Y-%m-%d")
    obj["EquipmentType"] = _code(equipment_type, "EquipmentType", _EQUIPMENT_TYPES)
    obj["ConnectorInfos"] = [dict(c) for c in connector_infos]
    if (lng is None) != (lat is None):
        raise ValueError("give both lng and lat, or neither")
    if lng is not None and lat is not None:
        obj["EquipmentLng"], obj["EquipmentLat"] = _gcj02_6dp(lng, lat)
    obj["Power"] = _round_float(power_kw, 1, "Power")
    _put(obj, "EquipmentName", equipment_name)
    return obj


def station_info(
    *,
    station_id: str,
    operator_id: str,
    equipment_owner_id: str,
    station_name: str,
    area_code: str,
    address: str,
    service_tel: str,
    station_type: int,
    station_status: int,
    park_nums: int,
    lng: float,
    lat: float,
    construction: int,
    equipment_infos: Sequence[Mapping[str, Any]],
    country_code: str = "CN",
    station_tel: str | None = None,
    site_guide: str | None = None,
    pictures: Sequence[str] | None = None,
    match_cars: str | None = None,
    park_info: str | None = None,
    busine_hours: str | None = None,
    electricity_fee: str | None = None,
    service_fee: str | None = None,
    park_fee: str | None = None,
    payment: str | None = None,
    support_order: int | None = None,
    remark: str | None = None,
) -> dict[str, Any]:
    """Build a ``StationInfo``.

    :param station_id: ≤20 chars. :param operator_id: 9 chars.
    :param equipment_owner_id: 9 chars. :param station_name: ≤50 chars.
    :param area_code: 6-digit GB/T 2260 code, e.g. ``"140302"`` (阳泉市城区).
    :param address: ≤50 chars.
    :param station_type: 1 公共, 50 个人, 100 公交, 101 环卫, 102 物流,
        103 出租车, 255 其他.
    :param station_status: 0 未知, 1 建设中, 5 关闭下线, 6 维护中, 50 正常使用.
    :param park_nums: number of parking spaces, 0 if unknown.
    :param lng: WGS-84; reported as GCJ-02 ``StationLng`` with 6 dp.
    :param lat: WGS-84; reported as GCJ-02 ``StationLat`` with 6 dp.
    :param construction: 1–11 or 255 (see the standard).
    :param equipment_infos: from :func:`equipment_info`; at least one.
    :param support_order: 0 or 1.
    """
    if not equipment_infos:
        raise ValueError("EquipmentInfos must not be empty")
    if not isinstance(area_code, str) or len(area_code) != 6 or not area_code.isdigit():
        raise ValueError("AreaCode must be a 6-digit GB/T 2260 code")
    if support_order is not None and support_order not in (0, 1):
        raise ValueError("SupportOrder must be 0 or 1")
    station_lng, station_lat = _gcj02_6dp(lng, lat)
    obj: dict[str, Any] = {
        "StationID": _text(station_id, "StationID", 20),
        "OperatorID": _text(operator_id, "OperatorID", 9, exact=True),
        "EquipmentOwnerID": _text(equipment_owner_id, "EquipmentOwnerID", 9, exact=True),
        "StationName": _text(station_name, "StationName", 50),
        "CountryCode": _text(country_code, "CountryCode", 2, exact=True),
        "AreaCode": area_code,
        "Address": _text(address, "Address", 50),
    }
    _put(obj, "StationTel", station_tel)
    obj["ServiceTel"] = _text(service_tel, "ServiceTel", 30)
    obj["StationType"] = _code(station_type, "StationType", _STATION_TYPES)
    obj["StationStatus"] = _code(station_status, "StationStatus", _STATION_STATUSES)
    obj["ParkNums"] = _non_negative_int(park_nums, "ParkNums")
    obj["StationLng"] = station_lng
    obj["StationLat"] = station_lat
    _put(obj, "SiteGuide", site_guide)
    obj["Construction"] = _code(construction, "Construction", _CONSTRUCTIONS)
    if pictures is not None:
        obj["Pictures"] = list(pictures)
    _put(obj, "MatchCars", match_cars)
    _put(obj, "ParkInfo", park_info)
    _put(obj, "BusineHours", busine_hours)
    _put(obj, "ElectricityFee", electricity_fee)
    _put(obj, "ServiceFee", service_fee)
    _put(obj, "ParkFee", park_fee)
    _put(obj, "Payment", payment)
    _put(obj, "SupportOrder", support_order)
    _put(obj, "Remark", remark)
    obj["EquipmentInfos"] = [dict(e) for e in equipment_infos]
    return obj


# ---------------------------------------------------------------------------
# Orders and prices


def charge_detail(detail: ChargeDetail) -> dict[str, Any]:
    """Build a T/CEC ``ChargeDetail`` from a priced :class:`~csms.tariffs.ChargeDetail`."""
    return {
        "DetailStartTime": detail.start.strftime(_TIME_FMT),
        "DetailEndTime": detail.end.strftime(_TIME_FMT),
        "ElecPrice": _dec(detail.elec_price),
        "SevicePrice": _dec(detail.service_price),
        "DetailPower": _dec(detail.power),
        "DetailElecMoney": _dec(detail.elec_money),
        "DetailSeviceMoney": _dec(detail.service_money),
    }


def charge_order(
    *,
    start_charge_seq: str,
    connector_id: str,
    cost: SessionCost,
    stop_reason: int,
) -> dict[str, Any]:
    """Build a ``ChargeOrder`` (``notification_charge_order_info``).

    :param start_charge_seq: 27 chars, see :func:`start_charge_seq`.
    :param connector_id: T/CEC ``ConnectorID``.
    :param cost: from :func:`csms.tariffs.price_session`; ``StartTime`` /
        ``EndTime`` and detail times are its local times, and all amounts are
        taken from it unchanged (so totals equal the sums of the details).
    :param stop_reason: from :func:`stop_reason` (0–99).
    :raises ValueError: if the session crossed more than 32 periods
        (``SumPeriod`` is limited to 0–32).
    """
    if len(cost.details) > 32:
        raise ValueError(f"session crosses {len(cost.details)} tariff periods; SumPeriod allows at most 32")
    if isinstance(stop_reason, bool) or not isinstance(stop_reason, int) or not 0 <= stop_reason <= 99:
        raise ValueError("StopReason must be an int from 0 to 99")
    return {
        "StartChargeSeq": _text(start_charge_seq, "StartChargeSeq", 27, exact=True),
        "ConnectorID": _text(connector_id, "ConnectorID", 26),
        "StartTime": cost.started_at.strftime(_TIME_FMT),
        "EndTime": cost.stopped_at.strftime(_TIME_FMT),
        "TotalPower": _dec(cost.total_power),
        "TotalElecMoney": _dec(cost.total_elec_money),
        "TotalSeviceMoney": _dec(cost.total_service_money),
        "TotalMoney": _dec(cost.total_money),
        "StopReason": int(stop_reason),
        "SumPeriod": len(cost.details),
        "ChargeDetails": [charge_detail(d) for d in cost.details],
    }


def policy_infos(tariff: Tariff) -> list[dict[str, Any]]:
    """Build ``PolicyInfos``: ``[{StartTime "HHmmss", ElecPrice, SevicePrice}]``."""
    return [
        {
            "StartTime": p.start.strftime("%H%M%S"),
            "ElecPrice": _dec(p.elec_price),
            "SevicePrice": _dec(p.service_price),
        }
        for p in tariff.periods
    ]
