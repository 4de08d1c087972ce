"""T/CEC 102 object builders and OCPP mappings."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from ocpp.v16.enums import ChargePointStatus, Reason
from ocpp.v201.enums import ConnectorStatusEnumType, ReasonEnumType
from ocpp.v21.enums import ReasonEnumType as Reason21

from csms.tariffs import Tariff, price_session
from csms.tcec102.codec import dumps_data
from csms.tcec102.objects import (
    CONNECTOR_STATUS_MAP,
    STOP_REASON_MAP,
    charge_order,
    connector_info,
    connector_status,
    connector_status_info,
    equipment_info,
    policy_infos,
    start_charge_seq,
    station_info,
    station_status_info,
    stop_reason,
    wgs84_to_gcj02,
)

CST = timezone(timedelta(hours=8))

# --- Connector status -------------------------------------------------------------

EXPECTED_STATUS = {
    "Available": 1,
    "Preparing": 2,
    "SuspendedEV": 2,
    "SuspendedEVSE": 2,
    "Finishing": 2,
    "Occupied": 2,
    "Charging": 3,
    "Reserved": 4,
    "Faulted": 255,
    "Unavailable": 0,
}


@pytest.mark.parametrize("ocpp_status, tcec", sorted(EXPECTED_STATUS.items()))
def test_connector_status_table(ocpp_status, tcec):
    assert connector_status(ocpp_status) == tcec


def test_every_ocpp_status_is_mapped():
    for s in [*ChargePointStatus, *ConnectorStatusEnumType]:
        assert s.value in CONNECTOR_STATUS_MAP


def test_offline_overrides_status():
    for s in EXPECTED_STATUS:
        assert connector_status(s, online=False) == 0
    assert connector_status(None) == 0


def test_occupied_with_charging_state():
    assert connector_status("Occupied", charging_state="Charging") == 3
    assert connector_status("Occupied", charging_state="SuspendedEV") == 2
    assert connector_status("Occupied", charging_state="EVConnected") == 2
    assert connector_status("Available", charging_state="Charging") == 1


def test_unknown_status_raises():
    with pytest.raises(ValueError):
        connector_status("charging")


def test_connector_status_info():
    assert connector_status_info("YQ0001A01", "Charging") == {"ConnectorID": "YQ0001A01", "Status": 3}
    assert connector_status_info("YQ0001A01", "Available", online=False, park_status=10, lock_status=50) == {
        "ConnectorID": "YQ0001A01",
        "Status": 0,
        "ParkStatus": 10,
        "LockStatus": 50,
    }
    with pytest.raises(ValueError):
        connector_status_info("YQ0001A01", "Available", park_status=5)
    with pytest.raises(ValueError):
        connector_status_info("X" * 27, "Available")
    info = station_status_info("YQ0001", [connector_status_info("YQ0001A01", "Faulted")])
    assert info == {"StationID": "YQ0001", "ConnectorStatusInfos": [{"ConnectorID": "YQ0001A01", "Status": 255}]}


# --- Stop reasons -------------------------------------------------------------------

EXPECTED_STOP = {
    # OCPP 1.6 Reason
    "Local": 0,
    "EVDisconnected": 4,
    "Remote": 1,
    "DeAuthorized": 1,
    "UnlockCommand": 1,
    "EmergencyStop": 3,
    "PowerLoss": 3,
    "HardReset": 3,
    "SoftReset": 3,
    "Reboot": 3,
    "Other": 3,
    # OCPP 2.0.1 additions
    "EnergyLimitReached": 1,
    "TimeLimitReached": 1,
    "SOCLimitReached": 2,
    "StoppedByEV": 2,
    "GroundFault": 3,
    "OvercurrentFault": 3,
    "PowerQuality": 3,
    "ImmediateReset": 3,
    "LocalOutOfCredit": 0,
    "MasterPass": 0,
    "Timeout": 4,
    # OCPP 2.1 addition
    "ReqEnergyTransferRejected": 2,
}


@pytest.mark.parametrize("reason, tcec", sorted(EXPECTED_STOP.items()))
def test_stop_reason_table(reason, tcec):
    assert stop_reason(reason) == tcec


def test_every_ocpp_reason_is_mapped():
    values = {r.value for r in [*Reason, *ReasonEnumType, *Reason21]}
    assert values == set(STOP_REASON_MAP) == set(EXPECTED_STOP)


def test_absent_reason_means_local():
    assert stop_reason(None) == 0


def test_unknown_reason():
    with pytest.raises(ValueError):
        stop_reason("Vandalism")
    assert stop_reason("Vandalism", default=3) == 3


# --- StartChargeSeq -------------------------------------------------------------------


def test_start_charge_seq():
    seq = start_charge_seq("MA0GYQ001", 42)
    assert seq == "MA0GYQ001000000000000000042"
    assert len(seq) == 27
    assert len(start_charge_seq("123456789", 10**18 - 1)) == 27
    assert start_charge_seq("123456789", 0) == "123456789" + "0" * 18


@pytest.mark.parametrize(
    "operator_id, number",
    [
        ("12345678", 1),
        ("1234567890", 1),
        ("12345678-", 1),
        ("阳泉充电运营公司一", 1),
        ("123456789", -1),
        ("123456789", 10**18),
        ("123456789", True),
        ("123456789", 1.0),
    ],
)
def test_start_charge_seq_rejects(operator_id, number):
    with pytest.raises(ValueError):
        start_charge_seq(operator_id, number)


# --- GCJ-02 -----------------------------------------------------------------------------

# Published pairs: wandergis/coordtransform README/test (Beijing, lng/lat order)
# and googollee/eviltransform tests (Shanghai, Shenzhen, Beijing).
PUBLISHED = [
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
]


@pytest.mark.parametrize("wgs, gcj", PUBLISHED)
def test_wgs84_to_gcj02_published_pairs(wgs, gcj):
    lng, lat = wgs84_to_gcj02(*wgs)
    assert lng == pytest.approx(gcj[0], abs=1e-9)
    assert lat == pytest.approx(gcj[1], abs=1e-9)


def test_outside_china_unchanged():
    assert wgs84_to_gcj02(2.3522, 48.8566) == (2.3522, 48.8566)
    with pytest.raises(ValueError):
        wgs84_to_gcj02(200.0, 10.0)
    with pytest.raises(ValueError):
        wgs84_to_gcj02(float("nan"), 10.0)


# --- Static information -------------------------------------------------------------------


def make_station(**overrides):
    conn = connector_info(
        connector_id="YQ0001A01",
        connector_type=4,
        voltage_upper_limits=750,
        voltage_lower_limits=200,
        current=250,
        power_kw=D("120"),
        connector_name="1号枪",
    )
    equip = equipment_info(
        equipment_id="YQ0001A",
        equipment_type=1,
        power_kw=119.96,
        connector_infos=[conn],
        manufacturer_name="某充电设备有限公司",
        production_date=date(2023, 6, 1),
        lng=116.404,
        lat=39.915,
    )
    kwargs = dict(
        station_id="YQ0001",
        operator_id="MA0GYQ001",
        equipment_owner_id="MA0GYQ001",
        station_name="阳泉市城区桃北充电站",
        area_code="140302",
        address="山西省阳泉市城区桃北中街1号",
        service_tel="0353-1234567",
        station_type=1,
        station_status=50,
        park_nums=10,
        lng=116.404,
        lat=39.915,
        construction=6,
        equipment_infos=[equip],
        busine_hours="00:00-24:00",
    )
    kwargs.update(overrides)
    return station_info(**kwargs)


def test_station_info():
    st = make_station()
    assert st["StationLng"] == 116.410244 and st["StationLat"] == 39.916404
    assert st["CountryCode"] == "CN" and st["AreaCode"] == "140302"
    assert st["StationType"] == 1 and st["StationStatus"] == 50 and st["Construction"] == 6
    assert "StationTel" not in st and st["BusineHours"] == "00:00-24:00"
    equip = st["EquipmentInfos"][0]
    assert equip["EquipmentLng"] == 116.410244 and equip["EquipmentLat"] == 39.916404
    assert equip["Power"] == 120.0 and equip["ProductionDate"] == "2023-06-01"
    conn = equip["ConnectorInfos"][0]
    assert conn == {
        "ConnectorID": "YQ0001A01",
        "ConnectorName": "1号枪",
        "ConnectorType": 4,
        "VoltageUpperLimits": 750,
        "VoltageLowerLimits": 200,
        "Current": 250,
        "Power": 120.0,
        "NationalStandard": 2,
    }
    text = dumps_data(st).decode("utf-8")
    assert "阳泉市城区桃北充电站" in text and '"StationLng":116.410244' in text
    assert json.loads(text) == st


@pytest.mark.parametrize(
    "overrides",
    [
        {"station_id": "X" * 21},
        {"operator_id": "12345678"},
        {"station_name": "长" * 51},
        {"area_code": "1403"},
        {"station_type": 2},
        {"station_status": 2},
        {"construction": 12},
        {"park_nums": -1},
        {"equipment_infos": []},
        {"support_order": 2},
        {"station_type": True},
    ],
)
def test_station_info_validation(overrides):
    with pytest.raises(ValueError):
        make_station(**overrides)


def test_equipment_and_connector_validation():
    with pytest.raises(ValueError):
        connector_info(connector_id="A", connector_type=7, voltage_upper_limits=1, voltage_lower_limits=0, current=1, power_kw=1)
    with pytest.raises(ValueError):
        connector_info(connector_id="A", connector_type=1, voltage_upper_limits=1, voltage_lower_limits=5, current=1, power_kw=1)
    with pytest.raises(ValueError):
        equipment_info(equipment_id="E" * 24, equipment_type=1, power_kw=1, connector_infos=[{"ConnectorID": "A"}])
    with pytest.raises(ValueError):
        equipment_info(equipment_id="E", equipment_type=1, power_kw=1, connector_infos=[{"ConnectorID": "A"}], lng=116.4)


# --- ChargeOrder / PolicyInfos ----------------------------------------------------------------

TOU = Tariff(
    [("00:00", "0.3100", "0.4000"), ("08:00", "0.6200", "0.6000"), ("18:00", "0.9300", "0.8000"), ("23:00", "0.3100", "0.4000")],
    valid_from=date(2024, 1, 1),
)


def test_policy_infos():
    assert policy_infos(TOU) == [
        {"StartTime": "000000", "ElecPrice": 0.31, "SevicePrice": 0.4},
        {"StartTime": "080000", "ElecPrice": 0.62, "SevicePrice": 0.6},
        {"StartTime": "180000", "ElecPrice": 0.93, "SevicePrice": 0.8},
        {"StartTime": "230000", "ElecPrice": 0.31, "SevicePrice": 0.4},
    ]


def test_charge_order():
    def at(d, h, m):
        return datetime(2024, 3, d, h, m, tzinfo=CST)

    samples = [(at(1, 22, 30), 0), (at(1, 23, 0), 3_500), (at(1, 23, 40), 8_000), (at(2, 0, 20), 12_000), (at(2, 0, 30), 13_000)]
    cost = price_session(TOU, samples, at(1, 22, 30), at(2, 0, 30))
    order = charge_order(
        start_charge_seq=start_charge_seq("MA0GYQ001", 1001),
        connector_id="YQ0001A01",
        cost=cost,
        stop_reason=stop_reason("EVDisconnected"),
    )
    assert order == {
        "StartChargeSeq": "MA0GYQ001000000000000001001",
        "ConnectorID": "YQ0001A01",
        "StartTime": "2024-03-01 22:30:00",
        "EndTime": "2024-03-02 00:30:00",
        "TotalPower": 13.0,
        "TotalElecMoney": 6.21,
        "TotalSeviceMoney": 6.6,
        "TotalMoney": 12.81,
        "StopReason": 4,
        "SumPeriod": 3,
        "ChargeDetails": [
            {"DetailStartTime": "2024-03-01 22:30:00", "DetailEndTime": "2024-03-01 23:00:00", "ElecPrice": 0.93,
             "SevicePrice": 0.8, "DetailPower": 3.5, "DetailElecMoney": 3.26, "DetailSeviceMoney": 2.8},
            {"DetailStartTime": "2024-03-01 23:00:00", "DetailEndTime": "2024-03-02 00:00:00", "ElecPrice": 0.31,
             "SevicePrice": 0.4, "DetailPower": 6.5, "DetailElecMoney": 2.02, "DetailSeviceMoney": 2.6},
            {"DetailStartTime": "2024-03-02 00:00:00", "DetailEndTime": "2024-03-02 00:30:00", "ElecPrice": 0.31,
             "SevicePrice": 0.4, "DetailPower": 3.0, "DetailElecMoney": 0.93, "DetailSeviceMoney": 1.2},
        ],
    }
    # On the wire the amounts appear exactly.
    text = dumps_data(order).decode()
    assert '"TotalMoney":12.81' in text and '"DetailElecMoney":3.26' in text


def test_charge_order_limits():
    t0 = datetime(2024, 3, 1, 12, 0, tzinfo=CST)
    t1 = t0 + timedelta(days=9)  # 4 periods a day → more than 32 details
    cost = price_session(TOU, [(t0, 0), (t1, 100_000)], t0, t1)
    assert len(cost.details) > 32
    with pytest.raises(ValueError, match="32"):
        charge_order(start_charge_seq="1" * 27, connector_id="A", cost=cost, stop_reason=0)
    short = price_session(TOU, [(t0, 0), (t0, 0)], t0, t0)
    with pytest.raises(ValueError):
        charge_order(start_charge_seq="1" * 26, connector_id="A", cost=short, stop_reason=0)
    with pytest.raises(ValueError):
        charge_order(start_charge_seq="1" * 27, connector_id="A", cost=short, stop_reason=100)
