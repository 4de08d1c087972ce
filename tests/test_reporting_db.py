"""Reports through the database path: import → SQL → pandas → JSON/CSV/XLSX, on hand-computed fixtures.

The registry (piles.csv below): 城区 has S1 with P1 (2023-03-01), P2 (commissioned on 31 December
2023) and P3 (2022-05-01, decommissioned mid-year on 2023-07-01), and a dedicated pile P4; 高新区
has GP1 (township 开发区 140311400, which the mapping moves out of 郊区); 郊区 has JP1 and JP2;
盂县 has YP1 in 秀水镇 (village 东关北村); 矿区 and 平定县 are empty. A village of 盂县 lies exactly
10 km west of YP1.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math

import pytest
from openpyxl import load_workbook

from reporting.geography import EARTH_RADIUS_M, haversine_m
from reporting.registry_db import detect_kind, import_file
from reporting.reports import default_inputs, produce
from reporting.store import load_pile_months, load_registry

CHENGQU = (113.5828, 37.8542)
JIAOQU = (113.4968, 37.9327)
YUXIAN = (113.2716, 38.2342)
D10KM = math.degrees(2 * math.asin(math.sin(10_000 / (2 * EARTH_RADIUS_M)) / math.cos(math.radians(YUXIAN[1]))))

PILES = """station_id,county,township_code,village_code,lon,lat,access,site_type,parking_spaces,centralized,pile_id,power_kw,current_type,commissioned_on,decommissioned_on,charge_point_id
S1,城区,140302001,,{c[0]},{c[1]},公用,公共停车场,20,是,P1,120,直流,2023-03-01,,CP1
S1,城区,140302001,,{c[0]},{c[1]},公用,公共停车场,20,是,P2,7,交流,2023-12-31,,CP2
S1,城区,140302001,,{c[0]},{c[1]},公用,公共停车场,20,是,P3,7,交流,2022-05-01,2023-07-01,
S2,城区,140302001,,{c[0]},{c[1]},专用,党政机关及企事业单位,50,否,P4,7,交流,2023-01-10,,
G1,高新区,140311400,,{j[0]},{j[1]},公用,公共停车场,,否,GP1,60,直流,2023-05-01,,
J1,郊区,140311100,,{j[0]},{j[1]},公用,公共停车场,,否,JP1,60,直流,2023-05-01,,
J1,郊区,140311100,,{j[0]},{j[1]},公用,公共停车场,,否,JP2,60,直流,2023-06-01,,
Y1,盂县,140322100,140322100200,{y[0]},{y[1]},公用,村群众广场,,否,YP1,60,直流,2024-02-01,,
""".format(c=CHENGQU, j=JIAOQU, y=YUXIAN).encode()

VEHICLES = "county,year,ev_count\n城区,2023,14\n矿区,2023,10\n城区,2025,16\n".encode()
PLACES = (f"kind,code,name,lon,lat\n行政村,140322100201,东关南村村委会,{YUXIAN[0] - D10KM},{YUXIAN[1]}\n"
          f"行政村,140322100200,东关北村村委会,{YUXIAN[0]},{YUXIAN[1]}\n").encode()


@pytest.fixture(scope="module")
def geo():
    return default_inputs()[1]


async def _load(conn, geo):
    for kind, data in (("piles", PILES), ("vehicles", VEHICLES), ("places", PLACES)):
        out = await import_file(conn, data, geo, filename=f"{kind}.csv", today=dt.date(2025, 6, 30))
        assert out.ok, out.report()


async def _json(conn, name, **kw):
    out = await produce(conn, name, "json", **kw)
    return json.loads(out.content)


# --- import -------------------------------------------------------------------------------------

async def test_import_upserts_and_reimport_changes_nothing(conn, geo):
    out = await import_file(conn, PILES, geo, filename="piles.csv")
    assert out.ok and out.counts["stations"]["inserted"] == 5 and out.counts["piles"]["inserted"] == 8
    before = await conn.fetch("SELECT pile_id, updated_at FROM piles ORDER BY pile_id")
    again = await import_file(conn, PILES, geo, filename="piles.csv")
    assert again.ok and again.counts == {"stations": {"inserted": 0, "updated": 0, "unchanged": 5},
                                         "piles": {"inserted": 0, "updated": 0, "unchanged": 8}}
    assert await conn.fetch("SELECT pile_id, updated_at FROM piles ORDER BY pile_id") == before
    # a changed row is updated, the rest unchanged
    changed = PILES.replace(b"P4,7,", b"P4,11,")
    third = await import_file(conn, changed, geo, filename="piles.csv")
    assert third.counts["piles"] == {"inserted": 0, "updated": 1, "unchanged": 7}
    assert await conn.fetchval("SELECT count(*) FROM registry_imports") == 3
    # the planning unit of G1 is 高新区, not 郊区
    assert await conn.fetchval("SELECT county FROM stations WHERE station_id='G1'") == "gaoxin"


async def test_mixed_valid_and_invalid_rows_import_nothing(conn, geo):
    bad = PILES.decode().splitlines()
    bad += [
        "B1,某某县,,,,,公用,公共停车场,,否,B1-1,60,直流,2024-01-01,,",                      # row 10: unknown county
        f"B2,城区,140302999,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,,否,B2-1,60,直流,2024-01-01,,",  # 11: township
        f"B3,城区,140302001,,{YUXIAN[0]},{YUXIAN[1]},公用,公共停车场,,否,B3-1,60,直流,2024-01-01,,",  # 12: outside
        f"B4,城区,140302001,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,,否,P1,60,直流,2024-01-01,,",  # 13: dup P1
        f"B5,城区,140302001,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,,否,B5-1,60,直流,2024-01-01,2023-01-01,",
        f"B6,城区,140302001,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,,否,B6-1,-7,交流,2024-01-01,,",  # 15
    ]
    data = ("\n".join(bad) + "\n").encode()
    out = await import_file(conn, data, geo, filename="mixed.csv")
    assert not out.ok
    rows = {(p.row, p.column) for p in out.errors}
    assert {(10, "county"), (11, "township_code"), (12, "lon"), (13, "pile_id"), (14, "decommissioned_on"),
            (15, "power_kw")} <= rows
    assert all(p.row and p.row >= 10 for p in out.errors)  # the valid rows have no problem
    text = out.report()
    assert "第13行" in text and "row 13" in text and "nothing imported" in text
    for table in ("stations", "piles", "registry_imports"):
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_dry_run_counts_and_writes_nothing(conn, geo):
    out = await import_file(conn, PILES, geo, filename="piles.csv", dry_run=True)
    assert out.ok and out.counts["piles"]["inserted"] == 8 and out.import_id is None
    assert await conn.fetchval("SELECT count(*) FROM piles") == 0


async def test_ocpp_id_held_by_another_pile_is_a_row_error(conn, geo):
    assert (await import_file(conn, PILES, geo, filename="piles.csv")).ok
    other = PILES.decode().splitlines()[0] + "\n" + \
        f"S9,城区,140302001,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,,否,P9,60,直流,2024-01-01,,CP1\n"
    out = await import_file(conn, other.encode(), geo, filename="p9.csv")
    assert not out.ok and [(p.row, p.column) for p in out.errors] == [(2, "charge_point_id")]
    assert "P1" in out.errors[0].message
    assert await conn.fetchval("SELECT count(*) FROM piles WHERE pile_id='P9'") == 0
    # moving CP1 from P1 to P2 and CP2 from P2 to P1 within one file is fine
    swapped = PILES.replace(b",CP1\n", b",CPX\n").replace(b",CP2\n", b",CP1\n").replace(b",CPX\n", b",CP2\n")
    assert (await import_file(conn, swapped, geo, filename="piles.csv")).ok
    assert await conn.fetchval("SELECT charge_point_id FROM piles WHERE pile_id='P2'") == "CP1"


def test_detect_kind():
    assert detect_kind(PILES.decode().splitlines()[0].split(",")) == "piles"
    assert detect_kind(["县（区）", "年份", "电动汽车保有量"]) == "vehicles"
    assert detect_kind(["场所类别（kind）", "场所代码（code）"]) == "places"
    assert detect_kind(["foo", "bar"]) is None


# --- targets ------------------------------------------------------------------------------------

async def test_targets_hand_computed(conn, geo):
    await _load(conn, geo)
    rep = await _json(conn, "targets", as_of="2024-01-01")
    rows = {(r["county"], r["year"]): r for r in rep["counties"]}
    cq = rows[("140302", 2023)]
    # 城区 on 31 Dec 2023: P1 and P2 (commissioned that day) are public and count; P3 left on 1 Jul 2023
    assert {k: cq[k] for k in ("public_piles", "new_public_piles", "planned_new_public_piles", "ev_count",
                               "vehicles_per_public_pile", "target_vehicles_per_pile")} == {
        "public_piles": 2, "new_public_piles": 2, "planned_new_public_piles": 200.0, "ev_count": 14.0,
        "vehicles_per_public_pile": 7.0, "target_vehicles_per_pile": 7.0}
    statuses = {t["metric"]: t["status"] for t in cq["targets"]}
    assert statuses["vehicles_per_public_pile"] == "met"  # 14 ÷ 2 = 7, at the threshold (≤ 7)
    assert statuses["new_public_piles"] == "not_met"  # 2 of 200
    assert {"metric", "value", "threshold", "status"} <= set(cq["targets"][0])
    # 高新区 (GP1), 郊区 (JP1, JP2), 矿区 empty, city = 2 + 1 + 2
    assert rows[("gaoxin", 2023)]["new_public_piles"] == 1
    assert rows[("140311", 2023)]["new_public_piles"] == 2
    km = rows[("140303", 2023)]
    assert km["public_piles"] == 0 and km["new_public_piles"] == 0 and km["vehicles_per_public_pile"] is None
    city = rows[("140300", 2023)]
    assert city["public_piles"] == 5 and city["new_public_piles"] == 5 and city["planned_new_public_piles"] == 1050
    assert city["ev_count"] == 24 and city["vehicles_per_public_pile"] == pytest.approx(24 / 5)
    assert rows[("140300", 2025)]["public_piles"] is None  # not due yet
    t = {r["target_id"]: r for r in rep["targets"]}
    assert t["vehicles_per_public_pile.county.2023@140303"]["status"] == "not_met"  # 10 EVs, no public pile
    assert t["townships.covered.share.2023@gaoxin"]["value"] == 1.0  # 开发区 is 高新区's only township
    assert t["townships.covered.share.2023@140311"]["value"] == pytest.approx(1 / 7)  # 荫营镇 of 郊区's 7
    assert t["new_public_piles.city.2024"]["status"] == "at_risk"  # 1 January: nothing yet this year
    codes = {n["code"] for n in rep["notes"]}
    assert "station_without_coordinates" not in codes
    # the day before: P2 (31 December) does not count yet
    rep = await _json(conn, "targets", as_of="2023-12-30")
    cq = {(r["county"], r["year"]): r for r in rep["counties"]}[("140302", 2023)]
    assert cq["public_piles"] == 1 and cq["new_public_piles"] == 1
    # mid-2023: P3 still in service until 30 June
    rep = await _json(conn, "targets", as_of="2023-06-30")
    assert {(r["county"], r["year"]): r for r in rep["counties"]}[("140302", 2023)]["public_piles"] == 2


async def test_village_exactly_at_the_distance_threshold(conn, geo):
    await _load(conn, geo)
    assert round(haversine_m(YUXIAN[0] - D10KM, YUXIAN[1], *YUXIAN)) == 10_000
    rep = await _json(conn, "targets", as_of="2026-01-01")
    t = {r["target_id"]: r for r in rep["targets"]}
    d = t["distance.villages.unit.2025@140322"]
    assert d["value"] == 10.0 and d["comparator"] == "<" and d["status"] == "not_met"  # 小于10公里: 10 is not < 10
    assert d["detail"]["worst"][0] == {"code": "140322100201", "name": "东关南村村委会", "km": 10.0}
    dist = await _json(conn, "distance", as_of="2026-01-01")
    row = next(r for r in dist["rows"] if r["county"] == "140322" and r["place"] == "village")
    n_villages = int(((geo.villages["unit_code"] == "140322") & (geo.villages["kind"] == "village")).sum())
    assert row["max_km"] == 10.0 and row["places_with_coordinates"] == 2 and row["places"] == n_villages
    cov = await _json(conn, "coverage", as_of="2026-01-01")
    yx = next(r for r in cov["summary"] if r["county"] == "140322" and r["kind"] == "village")
    assert yx["covered"] == 1  # 东关北村, through Y1's village code
    place = next(p for p in cov["places"] if p["code"] == "140322100201")
    assert place["covered"] is False and place["distance_km"] == 10.0


async def test_station_unit_follows_the_mapping(conn, geo):
    await _load(conn, geo)
    # a stored row that still says 郊区 for a station in 开发区 (e.g. imported before the mapping)
    await conn.execute("UPDATE stations SET county='140311' WHERE station_id='G1'")
    loaded = await load_registry(conn, geo)
    assert loaded.data.stations.set_index("station_id").at["G1", "county"] == "gaoxin"
    assert [n.examples for n in loaded.notes if n.code == "station_unit_remapped"] == [("G1",)]


async def test_csv_and_xlsx_outputs(conn, geo):
    await _load(conn, geo)
    out = await produce(conn, "targets", "csv", as_of="2024-01-01")
    text = out.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("target_id,year,county,county_name,metric")
    assert "new_public_piles.chengqu.2023,2023,140302,城区" in text
    out = await produce(conn, "targets", "xlsx", as_of="2024-01-01")
    wb = load_workbook(io.BytesIO(out.content))
    assert wb.sheetnames[:2] == ["附件1 新增公共充电桩", "附件2 公路"]
    ws = wb["附件1 新增公共充电桩"]
    rows = [r for r in ws.iter_rows(values_only=True)]
    assert rows[2][:2] == ("县（区）", "2023") and rows[3][1:5] == ("计划", "实际", "完成率", "状态")
    chengqu = next(r for r in rows if r[0] == "城区")
    assert chengqu[1:5] == (200, 2, 0.01, "未达标")
    total = next(r for r in rows if r[0] == "总计")
    assert total[1:3] == (1050, 5)
    a2 = [r for r in wb["附件2 公路"].iter_rows(values_only=True)]
    assert a2[2] == ("分类", "2023年底", "2024年底", "2025年底")
    assert {r[0] for r in a2[3:6]} == {"太行一号旅游公路设施", "普通国省干线公路服务区、停车区", "高速公路服务区"}
    for name in ("coverage", "distance"):
        for fmt in ("csv", "xlsx"):
            out = await produce(conn, name, fmt, as_of="2024-01-01")
            assert out.content and out.filename == f"{name}-2024-01-01.{fmt}"


# --- operations -----------------------------------------------------------------------------------

def _t(s: str) -> dt.datetime:
    """A local (UTC+8) time."""
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


async def _ocpp(conn):
    """CP1 (pile P1, in service all of March 2025) and CP2 (pile P2, commissioned 16 March 2025)."""
    await conn.execute("UPDATE piles SET commissioned_on='2025-03-16' WHERE pile_id='P2'")
    await conn.execute("INSERT INTO charge_points (id) VALUES ('CP1'), ('CP2')")
    await conn.executemany("INSERT INTO connectors (charge_point_id, connector_id, status, status_at) "
                           "VALUES ($1, $2, 'Available', now())",
                           [("CP1", 0), ("CP1", 1), ("CP1", 2), ("CP2", 0), ("CP2", 1)])
    sessions = [  # (connector, start, stop, kWh)
        (1, "2025-03-05 10:00", "2025-03-05 12:00", 10.0),  # overlapping connectors: 10:00-13:00 = 3 h once
        (2, "2025-03-05 11:00", "2025-03-05 13:00", 20.0),
        (1, "2025-03-31 23:00", "2025-04-01 01:00", 5.0),   # across the month end: 1 h each month
    ]
    await conn.executemany(
        "INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at, stopped_at,"
        " energy_wh) VALUES ('CP1', $1, '1.6', $2, $3, $4, $5)",
        [(str(i), c, _t(a), _t(b), kwh * 1000) for i, (c, a, b, kwh) in enumerate(sessions)])
    # a session on CP2 before its pile was commissioned: counted, but no charging time in service
    await conn.execute("INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at,"
                       " stopped_at, energy_wh) VALUES ('CP2', '1', '1.6', 1, $1, $2, 1000)",
                       _t("2025-03-10 08:00"), _t("2025-03-10 09:00"))
    # connected 1 Feb – 10 Mar and 11 Mar – 5 Apr: one day offline in March
    await conn.executemany("INSERT INTO charger_connections (charge_point_id, node_id, ocpp_version, connected_at,"
                           " disconnected_at) VALUES ('CP1', 'n', '1.6', $1, $2)",
                           [(_t("2025-02-01 00:00"), _t("2025-03-10 00:00")),
                            (_t("2025-03-11 00:00"), _t("2025-04-05 00:00"))])
    statuses = [  # (connector, status, at)
        (0, "Unavailable", "2025-02-28 20:00"), (0, "Available", "2025-03-01 01:00"),  # 1 h in March
        (0, "Unavailable", "2025-03-20 00:00"), (0, "Available", "2025-03-20 06:00"),  # 6 h: the whole charger
        (1, "Faulted", "2025-03-21 00:00"), (1, "Available", "2025-03-21 02:00"),      # one connector only: 0
        (1, "Faulted", "2025-03-22 00:00"), (2, "Faulted", "2025-03-22 00:00"),        # both: 1 h
        (1, "Available", "2025-03-22 01:00"), (2, "Available", "2025-03-22 01:30"),
        (2, "Unavailable", "2025-03-12 00:00"), (2, "Available", "2025-03-12 00:30"),  # one connector only: 0
    ]
    await conn.executemany("INSERT INTO status_history (charge_point_id, connector_id, status, error_code, status_at)"
                           " VALUES ('CP1', $1, $2, 'NoError', $3)", [(c, s, _t(a)) for c, s, a in statuses])
    await conn.executemany("INSERT INTO faults (charge_point_id, connector_id, error_code, opened_at, closed_at, "
                           "source) VALUES ('CP1', $1, 'OtherError', $2, $3, $4)", [
                               (1, _t("2025-02-28 22:00"), _t("2025-03-01 02:00"), "status"),  # repaired in March, 4 h
                               (1, _t("2025-03-21 00:00"), _t("2025-03-21 02:00"), "status"),  # 2 h
                               (0, _t("2025-03-25 00:00"), None, "security")])                 # not a fault


async def test_pile_months_hand_computed(conn, geo):
    await _load(conn, geo)
    await _ocpp(conn)
    pm = await load_pile_months(conn, dt.date(2025, 3, 1), dt.date(2025, 4, 1), as_of=dt.date(2025, 4, 10))
    got = {(r.pile_id, r.month.strftime("%Y-%m")): r for r in pm.itertuples()}
    m = got[("P1", "2025-03")]
    assert (m.sessions, m.energy_kwh) == (3, 35.0)
    assert m.charging_seconds == 3 * 3600 + 3600
    assert m.offline_seconds == 86400
    assert m.unavailable_seconds == 3600 + 6 * 3600 + 3600
    assert (m.faults, m.repaired_faults, m.repair_seconds) == (1, 2, 6 * 3600)
    a = got[("P1", "2025-04")]  # cut at the end of 10 April; disconnected from 5 April 00:00
    assert (a.sessions, a.charging_seconds, a.offline_seconds) == (0, 3600, 6 * 86400)
    p2 = got[("P2", "2025-03")]  # in service from 16 March (16 days), never connected
    assert p2.sessions == 1 and p2.charging_seconds == 0 and p2.offline_seconds == 16 * 86400


async def test_operations_report_hand_computed(conn, geo):
    await _load(conn, geo)
    await _ocpp(conn)
    rep = await _json(conn, "operations", month="2025-03")
    cq = next(r for r in rep["counties"] if r["county"] == "140302")
    day = 86400
    in_service = 31 * day + 16 * day  # P1 all month, P2 from the 16th
    assert cq["piles_reporting"] == 2 and cq["piles_in_service"] == 3  # + dedicated P4
    assert cq["sessions"] == 4 and cq["energy_kwh"] == 36.0
    assert cq["utilisation"] == pytest.approx(4 * 3600 / in_service)
    assert cq["availability"] == pytest.approx(1 - (8 * 3600 + day + 16 * day) / in_service)
    assert cq["faults"] == 1 and cq["repaired_faults"] == 2 and cq["mttr_hours"] == pytest.approx(3.0)
    assert rep["month"] == "2025-03" and rep["as_of"] == "2025-03-31"
    city = next(r for r in rep["counties"] if r["county"] == "140300")
    assert city["sessions"] == 4
    out = await produce(conn, "operations", "csv", month="2025-03")
    assert out.content.decode("utf-8-sig").splitlines()[0].startswith("county,month,piles_in_service")
    # --as-of inside the month cuts it there
    rep = await _json(conn, "operations", as_of="2025-03-10")
    cq = next(r for r in rep["counties"] if r["county"] == "140302")
    assert rep["month"] == "2025-03" and cq["sessions"] == 3  # P2's session on the 10th counts, 31st not yet


async def test_monthly_workbook(conn, geo):
    await _load(conn, geo)
    await _ocpp(conn)
    out = await produce(conn, "monthly", "xlsx", month="2025-03")
    assert out.filename == "monthly-report-2025-03.xlsx"
    wb = load_workbook(io.BytesIO(out.content))
    assert wb.sheetnames[:5] == ["附件1 新增公共充电桩", "附件2 公路", "覆盖汇总 coverage", "充电距离 distance",
                                 "运营 2025-03"]
    assert "统计截至 2025-03-31" in wb.worksheets[0]["A2"].value
