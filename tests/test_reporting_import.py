"""Registry import (CSV/XLSX, validation, templates) and the reference geography it relies on."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook

from reporting.geography import DATA_DIR, GeographyError, haversine_m, load_geography
from reporting.registry_import import COLUMNS, KINDS, parse_file, read_table, write_template
from reporting.vocabulary import ACCESS, CURRENT_TYPES, FLEET_TYPES, PLACE_KINDS, SITE_TYPES

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2025, 6, 30)

# Points inside the county polygons (checked in test_fixture_points_are_inside).
CHENGQU = (113.5828, 37.8542)
JIAOQU = (113.4968, 37.9327)  # also inside 高新区 (its polygon is 郊区's)
PINGDING = (113.8260, 37.8872)
YUXIAN = (113.2716, 38.2342)

PILE_HEADER = ("station_id,station_name,county,township_code,village_code,lon,lat,access,site_type,"
               "parking_spaces,centralized,pile_id,power_kw,current_type,commissioned_on,decommissioned_on")


@pytest.fixture(scope="module")
def geo():
    return load_geography()


def _csv(*rows: str, header: str = PILE_HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode("utf-8")


def _parse(kind, data, geo, name="f.csv", **kw):
    return parse_file(kind, data, geo, filename=name, today=TODAY, **kw)


# --- reference geography ----------------------------------------------------------------------

def test_reference_files_match_the_plan(geo):
    assert len(geo.townships) == 43
    assert (geo.villages["kind"] == "village").sum() == 620
    assert (geo.villages["kind"] == "community").sum() == 157
    assert sorted(geo.counties["code"]) == ["140302", "140303", "140311", "140321", "140322"]
    assert geo.city_code == "140300"
    for name in ("yangquan_townships.csv", "yangquan_villages.csv", "yangquan_counties.geojson", "README.md",
                 "gaoxin_mapping.toml"):
        assert (DATA_DIR / name).exists(), name


def test_fixture_points_are_inside(geo):
    assert geo.contains("140302", *CHENGQU) and not geo.contains("140302", *PINGDING)
    assert geo.contains("140311", *JIAOQU) and geo.contains("gaoxin", *JIAOQU)
    assert geo.contains("140321", *PINGDING) and geo.contains("140322", *YUXIAN)


def test_default_gaoxin_mapping(geo):
    assert geo.resolve_unit("高新区") == "gaoxin" == geo.resolve_unit("阳泉高新区") == geo.resolve_unit(" 高新 ")
    assert geo.resolve_unit("平定") == "140321" == geo.resolve_unit("平定县") == geo.resolve_unit(140321)
    assert geo.resolve_unit("盂") is None
    assert geo.township_unit("140311400") == "gaoxin"
    assert geo.township_unit("140311100") == "140311"
    units = geo.villages.groupby("unit_code")["kind"].value_counts().to_dict()
    assert units[("gaoxin", "community")] == 16 and units[("gaoxin", "village")] == 8
    assert units[("140311", "village")] == 93
    assert geo.units["gaoxin"].polygon_counties == ("140311",)


def test_custom_gaoxin_mapping_moves_township_and_single_village(tmp_path):
    mapping = tmp_path / "zones.toml"
    mapping.write_text(
        'schema_version = 1\n[[zones]]\ncode = "hz"\nname = "高新区"\n'
        'townships = ["140311400", "140311103"]\nvillages = ["140302100201"]\n'
        'exclude_villages = ["140311400201"]\n',
        encoding="utf-8",
    )
    g = load_geography(zones_toml=mapping)
    assert g.resolve_unit("高新区") == "hz"
    assert g.township_unit("140311103") == "hz"  # 平坦镇 moved
    assert g.village_info("140302100201")[1] == "hz"  # a single village of 城区's 义井镇
    assert g.village_info("140311400201")[1] == "140311"  # excluded: stays with 郊区
    assert set(g.units["hz"].polygon_counties) == {"140302", "140311"}
    assert g.contains("hz", *CHENGQU) and g.contains("hz", *JIAOQU)


def test_bad_mapping_is_rejected(tmp_path):
    mapping = tmp_path / "zones.toml"
    mapping.write_text('[[zones]]\ncode = "z"\nname = "Z"\ntownships = ["999999999"]\n', encoding="utf-8")
    with pytest.raises(GeographyError, match="unknown township codes"):
        load_geography(zones_toml=mapping)
    mapping.write_text('[[zones]]\ncode = "140302"\nname = "Z"\ntownships = ["140311400"]\n', encoding="utf-8")
    with pytest.raises(GeographyError, match="collides"):
        load_geography(zones_toml=mapping)


def test_haversine_and_distance_outside(geo):
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111_195.08, abs=0.01)
    assert haversine_m(113.0, 38.0, 113.0, 38.0) == 0
    d = haversine_m([113.0, 113.0], [38.0, 38.0], [113.0, 113.1], [38.1, 38.0])
    assert d.shape == (2,) and d[0] == pytest.approx(11_119.5, abs=0.1)
    assert geo.distance_outside_m("140302", *CHENGQU) == 0
    far = geo.distance_outside_m("140302", *PINGDING)
    assert 10_000 < far < 30_000
    assert geo.contains("140302", *PINGDING, tolerance_m=far + 1)
    assert not geo.contains("140302", *PINGDING, tolerance_m=far - 1)


def test_reference_places_follow_the_contract(geo):
    places = geo.reference_places()
    assert len(places) == 43 + 777
    assert set(places["kind"]) == {"township", "village", "community"}
    assert places.loc[places["code"] == "140311400201", "county"].item() == "gaoxin"


# --- piles ------------------------------------------------------------------------------------

def _valid_pile_rows():
    cq, pd_, jq = CHENGQU, PINGDING, JIAOQU
    return [
        f"S1,北大街停车场,城区,140302003,,{cq[0]},{cq[1]},公用,公共停车场,100,是,P1,120,直流,2023-12-31,",
        f"S1,北大街停车场,140302,140302003,,{cq[0]},{cq[1]},public,public_parking,100,yes,P2,7,AC,2023-03-01,2023-07-01",
        f"S2,冠山镇政府,平定,140321100,140321100201,{pd_[0]},{pd_[1]},公用,乡镇办公场所,,,P3,60,DC,2024-01-01,",
        f"S3,开发区单位,高新区,140311400,,{jq[0]},{jq[1]},专用,党政机关及企事业单位,20,否,P4,7,交流,2024-05-01,",
    ]


def test_valid_piles_file(geo):
    res = _parse("piles", _csv(*_valid_pile_rows()), geo)
    assert res.ok, res.report()
    st, pl = res.records["stations"], res.records["piles"]
    assert list(st["station_id"]) == ["S1", "S2", "S3"]
    assert list(st["county"]) == ["140302", "140321", "gaoxin"]
    assert list(st["access"]) == ["public", "public", "dedicated"]
    assert list(st["site_type"]) == ["public_parking", "township_office", "institution"]
    assert list(st["centralized"]) == [True, False, False]
    assert st["parking_spaces"].tolist()[0] == 100 and pd.isna(st["parking_spaces"].tolist()[1])
    assert st.loc[1, "village_code"] == "140321100201"
    assert list(pl["pile_id"]) == ["P1", "P2", "P3", "P4"]
    assert list(pl["current_type"]) == ["DC", "AC", "DC", "AC"]
    assert pl.loc[0, "commissioned_on"] == pd.Timestamp("2023-12-31")
    assert pl.loc[1, "decommissioned_on"] == pd.Timestamp("2023-07-01") and pd.isna(pl.loc[0, "decommissioned_on"])
    assert list(pl["connector_count"]) == [1, 1, 1, 1]


def test_reimport_of_the_same_file_gives_identical_records(geo):
    data = _csv(*_valid_pile_rows())
    a, b = _parse("piles", data, geo), _parse("piles", data, geo)
    for key in ("stations", "piles"):
        pd.testing.assert_frame_equal(a.records[key], b.records[key])


def test_mixed_valid_and_invalid_rows_import_nothing_and_list_every_problem(geo):
    cq, pd_ = CHENGQU, PINGDING
    rows = _valid_pile_rows() + [
        f"S4,x,未知县,140302003,,{cq[0]},{cq[1]},公用,公共停车场,10,否,P5,7,AC,2023-01-01,",       # row 6
        f"S5,x,城区,140399999,,{cq[0]},{cq[1]},公用,公共停车场,10,否,P6,7,AC,2023-01-01,",          # row 7
        f"S6,x,城区,140302003,,{pd_[0]},{pd_[1]},公用,公共停车场,10,否,P7,7,AC,2023-01-01,",        # row 8
        f"S7,x,城区,140302003,,{cq[0]},{cq[1]},公用,公共停车场,10,否,P1,7,AC,2023-01-01,",          # row 9
        f"S8,x,城区,140302003,,{cq[0]},{cq[1]},公用,公共停车场,10,否,P8,7,AC,2023-05-01,2023-04-30",  # row 10
        f"S9,x,城区,140302003,,{cq[0]},{cq[1]},公用,公共停车场,10,否,P9,-7,AC,2023-01-01,",         # row 11
        f"S10,x,郊区,140311400,,{JIAOQU[0]},{JIAOQU[1]},公用,公共停车场,10,否,P10,7,AC,2023-01-01,",  # row 12
        f"S11,x,城区,140302003,,{cq[0]},,公用,停车场,10,否,P11,7,ACDC,2023/01/01,",                 # row 13
        f"S1,other name,城区,140302003,,{cq[0]},{cq[1]},公用,公共停车场,100,是,P12,7,AC,2023-01-01,",  # row 14
    ]
    res = _parse("piles", _csv(*rows), geo)
    assert not res.ok and res.records == {}
    by_row = {}
    for p in res.errors:
        by_row.setdefault(p.row, []).append(p)
    assert set(by_row) == {6, 7, 8, 9, 10, 11, 12, 13, 14}
    text = res.report()
    expectations = {
        6: "未知县（区）“未知县”", 7: "unknown township code 140399999", 8: "outside the unit's polygon",
        9: "duplicate pile id P1 (also row 2)", 10: "decommissioned before commissioned", 11: "negative power",
        12: "township belongs to gaoxin, not 140311", 14: "station field differs from row 2",
    }
    for row, fragment in expectations.items():
        assert any(fragment in str(p) for p in by_row[row]), (row, fragment, text)
    row13 = " ".join(str(p) for p in by_row[13])
    for fragment in ("give both lon and lat", "invalid value", "ISO YYYY-MM-DD"):
        assert fragment in row13, fragment
    assert "第6行 row 6" in text and "nothing imported" in text


def test_blank_lines_keep_the_files_row_numbers(geo):
    cq = CHENGQU
    bad = f"S9,x,城区,140302003,,{cq[0]},{cq[1]},公用,公共停车场,10,否,P9,-7,AC,2023-01-01,"
    data = _csv(*_valid_pile_rows()[:1], "", ",,,,,,,,,,,,,,,", bad)  # the bad row is line 5 of the file
    res = _parse("piles", data, geo)
    assert not res.ok
    assert {p.row for p in res.errors} == {5}


def test_missing_required_column_and_empty_values(geo):
    res = _parse("piles", _csv("S1,城区,P1", header="station_id,county,pile_id"), geo)
    assert not res.ok
    missing = {p.column for p in res.errors if p.row == 1}
    assert missing == {"access", "site_type", "power_kw", "current_type", "commissioned_on"}
    res = _parse("piles", _csv(",,,,,,,,,,,,,,,,x", header=PILE_HEADER + ",operator"), geo)
    assert {p.column for p in res.errors} >= {"station_id", "pile_id", "county", "power_kw", "commissioned_on"}


def test_chinese_headers_gbk_and_warnings(geo):
    header = "充电站编号,县区,乡镇代码,类型,场所类型,充电桩编号,额定功率(kW),交直流,投运日期,未知列"
    res = _parse("piles", _csv("S1,城区,,公用,其他,P1,7,交流,2023-01-01,z", header=header).decode().encode("gbk"), geo)
    assert res.ok, res.report()
    texts = " ".join(str(w) for w in res.warnings)
    assert "unknown column '未知列' ignored" in texts
    assert "no township code" in texts and "no coordinates" in texts


def test_bilingual_headers_from_template_are_accepted(geo, tmp_path):
    for lang in ("bilingual", "zh", "en"):
        path = write_template("piles", tmp_path / f"t_{lang}.csv", lang=lang)
        headers, rows = read_table(path)
        assert rows == []
        line = f"S1,,城区,140302003,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,10,是,P1,7,AC,2023-01-01,,,,,,"
        data = path.read_bytes() + line.encode("utf-8") + b"\n"
        res = _parse("piles", data, geo)
        assert res.ok, (lang, res.report())
        assert res.records["piles"].loc[0, "pile_id"] == "P1"


def test_xlsx_with_date_cells_and_numeric_codes(geo, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["充电站编号", "县（区）", "乡镇（街道）代码", "经度", "纬度", "类型", "场所类型", "车位数",
               "充电桩编号", "额定功率（kW）", "交直流", "投运日期", "退役日期"])
    ws.append(["S1", "城区", 140302003, CHENGQU[0], CHENGQU[1], "公用", "公共停车场", 50.0, 1001, 60.0, "DC",
               dt.datetime(2023, 12, 31), None])
    path = tmp_path / "piles.xlsx"
    wb.save(path)
    res = parse_file("piles", path, geo, today=TODAY)
    assert res.ok, res.report()
    pl, st = res.records["piles"], res.records["stations"]
    assert pl.loc[0, "pile_id"] == "1001" and st.loc[0, "township_code"] == "140302003"
    assert pl.loc[0, "commissioned_on"] == pd.Timestamp("2023-12-31") and st.loc[0, "parking_spaces"] == 50


def test_coordinate_tolerance(geo):
    outside = (113.60, 37.70)  # a little south of 城区
    d = geo.distance_outside_m("140302", *outside)
    assert d > 0
    row = f"S1,x,城区,,,{outside[0]},{outside[1]},公用,其他,,,P1,7,AC,2023-01-01,"
    assert not _parse("piles", _csv(row), geo).ok
    assert _parse("piles", _csv(row), geo, tolerance_m=d + 10).ok


# --- vehicles --------------------------------------------------------------------------------

def test_vehicles_with_fleets_and_city_total(geo):
    data = _csv("城区,2023,5200,120,30,,,", "高新区,2023,800,,,,,", "全市,2023,32000,,,,,",
                header="county,year,ev_count,bus_count,sanitation_count,taxi_count,logistics_count,commuter_count")
    res = _parse("vehicles", data, geo)
    assert res.ok, res.report()
    v, f = res.records["vehicles"], res.records["fleets"]
    assert list(zip(v["county"], v["year"], v["ev_count"])) == [("140302", 2023, 5200), ("gaoxin", 2023, 800),
                                                                ("140300", 2023, 32000)]
    assert list(zip(f["county"], f["fleet_type"], f["vehicle_count"])) == [("140302", "bus", 120),
                                                                           ("140302", "sanitation", 30)]


def test_invalid_vehicles(geo):
    data = _csv("城区,2023,5200", "城区,2023,10", "火星,2023,1", "矿区,20x3,-5", "矿区,2024,1.5",
                header="县区,年份,电动汽车保有量")
    res = _parse("vehicles", data, geo)
    assert not res.ok and res.records == {}
    text = res.report()
    assert "duplicate county and year (also row 2)" in text and "unknown county" in text
    assert "not a number" in text and "must be an integer" in text
    assert {p.row for p in res.errors} == {3, 4, 5, 6}


# --- places ----------------------------------------------------------------------------------

PLACE_HEADER = "kind,code,name,county,lon,lat,a_level,parking_spaces"


def test_valid_places(geo):
    data = _csv(
        f"景区,SC-1,娘子关景区,平定,{PINGDING[0]},{PINGDING[1]},5A,300",
        f"scenic_spot,SC-2,某景区,平定县,{PINGDING[0]},{PINGDING[1]},AAA,",
        f"village,140321100201,,,{PINGDING[0]},{PINGDING[1]},,",
        "township,140311400,,,,,,",
        f"高速公路服务区,HW-1,服务区,盂县,{YUXIAN[0]},{YUXIAN[1]},,120",
        header=PLACE_HEADER,
    )
    res = _parse("places", data, geo)
    assert res.ok, res.report()
    p = res.records["places"].set_index("code")
    assert p.loc["SC-1", "a_level"] == 5 and p.loc["SC-2", "a_level"] == 3 and p.loc["SC-1", "parking_spaces"] == 300
    assert p.loc["140321100201", "county"] == "140321" and p.loc["140321100201", "township_code"] == "140321100"
    assert p.loc["140321100201", "name"].endswith("村委会")
    assert p.loc["140311400", "county"] == "gaoxin" and pd.isna(p.loc["140311400", "lon"])
    assert p.loc["HW-1", "kind"] == "highway_service_area"


def test_invalid_places(geo):
    data = _csv(
        "township,140302001001,,,,,,",               # a community code given as township → unknown township
        "village,140302001001,,,,,,",                # a community (居委会), not an administrative village
        f"scenic_spot,SC-1,x,城区,{PINGDING[0]},{PINGDING[1]},6A,",
        "scenic_spot,SC-1,y,城区,,,,-3",
        "village,140321100201,,城区,,,,",
        "castle,C1,z,城区,,,,",
        "scenic_spot,SC-9,,,,,,",
        header=PLACE_HEADER,
    )
    res = _parse("places", data, geo)
    assert not res.ok and res.records == {}
    text = res.report()
    for fragment in ("unknown township code 140302001001", "code is a community, not a village",
                     "outside the unit's polygon", "invalid A-level", "duplicate place code SC-1 (also row 4)",
                     "parking spaces must be >= 0", "code belongs to 140321, not 140302", "invalid value",
                     "(县（区）)", "(名称)"):
        assert fragment in text, fragment


# --- templates & vocabularies -------------------------------------------------------------

def test_templates_csv_and_xlsx(geo, tmp_path):
    for kind in KINDS:
        csv_path = write_template(kind, tmp_path / f"{kind}.csv")
        assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
        headers, _ = read_table(csv_path)
        assert len(headers) == len(COLUMNS[kind])
        xlsx = write_template(kind, tmp_path / f"{kind}.xlsx", geography=geo)
        wb = load_workbook(xlsx)
        assert wb.sheetnames[:3] == ["数据 data", "说明 instructions", "取值 values"]
        assert "区划 divisions" in wb.sheetnames
        res = parse_file(kind, xlsx, geo)
        assert res.ok and res.rows == 0
    issue_columns = PILE_HEADER.split(",")
    assert [c.id for c in COLUMNS["piles"]][: len(issue_columns)] == issue_columns
    assert [c.id for c in COLUMNS["vehicles"]][:3] == ["county", "year", "ev_count"]
    assert [c.id for c in COLUMNS["places"]][:8] == PLACE_HEADER.split(",")
    with pytest.raises(ValueError):
        write_template("piles", tmp_path / "t.txt")


def test_sql_checks_match_vocabularies():
    sql = (ROOT / "schemas" / "migrations" / "0003_registry.sql").read_text(encoding="utf-8")

    def check_list(column: str) -> set[str]:
        m = re.search(rf"{column}\s+text NOT NULL CHECK \({column} IN \((.*?)\)\)", sql, re.S)
        assert m, column
        return set(re.findall(r"'([^']+)'", m.group(1)))

    assert check_list("access") == set(ACCESS)
    assert check_list("site_type") == set(SITE_TYPES)
    assert check_list("current_type") == set(CURRENT_TYPES)
    assert check_list("kind") == set(PLACE_KINDS)
    assert check_list("fleet_type") == set(FLEET_TYPES)
    assert "REFERENCES charge_points" not in sql
