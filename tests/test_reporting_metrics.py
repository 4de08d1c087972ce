"""Target metrics on small hand-computed fixtures (pure pandas, no database).

The fixture city "C0" has three units: U1 and U2 with stations, U3 empty. All dates below are
checked by hand; comments give the arithmetic.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from reporting.geography import EARTH_RADIUS_M, haversine_m, load_geography
from reporting.metrics import Evaluator, RegistryData, coverage_table, distance_table, evaluate_targets, \
    installation_ratio_table, operations_report, unit_year_summary
from reporting.plan import load_plan, plan_from_dict
from reporting.registry_import import parse_file

LAT = 38.0
# Longitude offset that puts a point exactly 10 000 m (after rounding to the metre) west of S1.
D10KM = math.degrees(2 * math.asin(math.sin(10_000 / (2 * EARTH_RADIUS_M)) / math.cos(math.radians(LAT))))


def T(id_, metric, year, threshold, comparator=">=", county=None, **extra):
    t = {"id": id_, "year": year, "metric": metric, "threshold": threshold, "comparator": comparator,
         "unit": "u", "label_zh": "指标", "label_en": "target", "source": "s", "quote": "原文"}
    t.update({"scope": "county", "county": county} if county else {"scope": "city"})
    t.update(extra)
    return t


def make_plan(*targets, groups=None):
    return plan_from_dict({
        "schema_version": 1, "id": "test", "title": "测试计划", "version": "1", "city_code": "C0",
        "city_name": "测试市", "years": [2023, 2024, 2025],
        "units": [{"code": "U1", "name": "一区"}, {"code": "U2", "name": "二区"}, {"code": "U3", "name": "三区"}],
        "settings": {"coverage_radius_m": 500},
        "place_groups": groups or [],
        "targets": list(targets),
    })


def stations():
    return pd.DataFrame([
        # id  unit  township village  lon      lat  access       site_type         spaces central place
        ("S1", "U1", "T1", "V1", 113.000, LAT, "public", "public_parking", 20, True, None),
        ("S2", "U1", "T1", None, 113.010, LAT, "dedicated", "institution", 50, False, None),
        ("S3", "U2", "T2", "V2", 113.200, LAT, "public", "other", None, False, "SC2"),
        ("S4", "U2", "T2", None, None, None, "private", "residential", None, False, None),
        ("S5", "U1", "T1", None, 113.020, LAT, "dedicated", "depot_bus", 10, False, None),
        ("S6", None, None, None, 113.300, LAT, "public", "other", None, False, None),
    ], columns=["station_id", "county", "township_code", "village_code", "lon", "lat", "access", "site_type",
                "parking_spaces", "centralized", "place_code"])


def piles():
    return pd.DataFrame([
        ("P1", "S1", 120, "DC", "2023-03-01", None),
        ("P2", "S1", 7, "AC", "2023-12-31", None),          # commissioned on 31 December
        ("P3", "S1", 7, "AC", "2022-05-01", "2023-07-01"),  # decommissioned mid-year
        ("P4", "S2", 7, "AC", "2023-01-10", None),          # dedicated
        ("P5", "S3", 60, "DC", "2024-02-01", None),
        ("P6", "S4", 7, "AC", "2023-05-05", None),          # private
        ("P7", "S5", 60, "DC", "2023-06-01", None),         # bus depot
        ("P8", "S5", 60, "DC", "2023-06-01", None),         # bus depot
        ("P9", "SX", 7, "AC", "2023-01-01", None),          # unknown station
        ("P10", "S6", 7, "AC", "2023-02-01", None),         # station without unit
    ], columns=["pile_id", "station_id", "power_kw", "current_type", "commissioned_on", "decommissioned_on"])


def places():
    rows = [
        ("T1", "township", "一镇", "U1", "T1", 113.000, LAT, None, False, None),
        ("T2", "township", "二镇", "U2", "T2", 113.200, LAT, None, False, None),
        ("T3", "township", "三镇", "U3", "T3", None, None, None, False, None),
        ("V1", "village", "一村", "U1", "T1", 113.000, LAT, None, False, None),
        ("V2", "village", "二村", "U2", "T2", 113.200, LAT, None, False, None),
        ("V3", "village", "三村", "U1", "T1", 113.000 - D10KM, LAT, None, False, None),  # 10 km west of S1
        ("K1", "community", "一社区", "U1", "T1", 113.001, LAT, None, False, None),
        ("SC1", "scenic_spot", "近景区", "U1", None, 113.0045, LAT, 5, False, 10),   # 394 m from S1
        ("SC2", "scenic_spot", "挂靠景区", "U2", None, 113.5, LAT, 2, False, 20),    # linked to S3
        ("SC3", "scenic_spot", "远景区", "U1", None, 113.008, LAT, None, False, 40),  # 701 m from S1
    ]
    return pd.DataFrame(rows, columns=["code", "kind", "name", "county", "township_code", "lon", "lat", "a_level",
                                       "provincial_resort", "parking_spaces"])


def vehicles():
    return pd.DataFrame([("U1", 2023, 14), ("U2", 2023, 10), ("C0", 2024, 30), ("U1", 2024, 16)],
                        columns=["county", "year", "ev_count"])


def fleets():
    return pd.DataFrame([("U1", 2023, "bus", 4), ("U1", 2023, "taxi", 100)],
                        columns=["county", "year", "fleet_type", "vehicle_count"])


@pytest.fixture
def data():
    return RegistryData.build(stations(), piles(), places(), vehicles(), fleets())


def run(data, as_of, *targets, groups=None):
    plan = make_plan(*targets, groups=groups)
    rep = evaluate_targets(plan, data, as_of)
    return {r["target_id"]: r for r in rep.results.to_dict("records")}, rep


# --- pile counts ------------------------------------------------------------------------------

def test_public_piles_on_dates(data):
    ts = [T(f"pp.{c}", "public_piles", 2023, 1, county=c) for c in ("U1", "U2", "U3")] + \
         [T("pp.city", "public_piles", 2023, 1)]
    r, _ = run(data, "2023-12-31", *ts)
    # U1: P1 + P2 (commissioned 31 Dec counts on 31 Dec); P3 decommissioned on 1 Jul no longer counts.
    assert r["pp.U1"]["value"] == 2
    assert r["pp.U2"]["value"] == 0 and r["pp.U3"]["value"] == 0 and r["pp.U3"]["status"] == "not_met"
    # city: P1, P2 and P10 (public, no unit: counts for the city only)
    assert r["pp.city"]["value"] == 3
    r, _ = run(data, "2023-06-30", *ts)
    assert r["pp.U1"]["value"] == 2  # P1 and P3 (still in service on 30 Jun)
    r, _ = run(data, "2023-07-01", *ts)
    assert r["pp.U1"]["value"] == 1  # only P1: P3 decommissioned that day
    r, _ = run(data, "2023-12-30", *ts)
    assert r["pp.U1"]["value"] == 1  # P2 not yet


def test_new_public_piles_and_dec_31(data):
    ts = [T("new.U1.2023", "new_public_piles", 2023, 2, county="U1"),
          T("new.U1.2024", "new_public_piles", 2024, 1, county="U1"),
          T("new.U2.2024", "new_public_piles", 2024, 1, county="U2"),
          T("new.U3.2023", "new_public_piles", 2023, 1, county="U3"),
          T("new.city.cum", "new_public_piles", 2025, 4, params={"since_year": 2023})]
    r, _ = run(data, "2026-01-01", *ts)
    assert r["new.U1.2023"]["value"] == 2 and r["new.U1.2023"]["status"] == "met"  # P1, P2 (31 Dec); P3 is 2022
    assert r["new.U1.2023"]["evaluated_on"].isoformat() == "2023-12-31"
    assert r["new.U1.2024"]["value"] == 0 and r["new.U1.2024"]["status"] == "not_met"
    assert r["new.U2.2024"]["value"] == 1  # P5
    assert r["new.U3.2023"]["value"] == 0 and r["new.U3.2023"]["status"] == "not_met"  # empty unit
    assert r["new.city.cum"]["value"] == 4  # P1, P2, P5, P10
    r, _ = run(data, "2023-12-30", *ts)
    assert r["new.U1.2023"]["value"] == 1  # P2 is commissioned on the 31st


def test_projection_on_track_and_at_risk(data):
    # 2024 is a leap year: 1 Jan – 1 Jul = 183 of 366 days, so the pace factor is exactly 2.
    ts = [T("flow.ok", "new_public_piles", 2024, 2, county="U2"),
          T("flow.risk", "new_public_piles", 2024, 3, county="U2"),
          T("stock", "public_piles", 2024, 4),
          T("future", "public_piles", 2025, 4),
          T("vpp", "vehicles_per_public_pile", 2024, 7.5, "<=")]
    r, _ = run(data, "2024-07-01", *ts)
    assert r["flow.ok"]["value"] == 1 and r["flow.ok"]["projection"] == pytest.approx(2.0)
    assert r["flow.ok"]["status"] == "on_track" and r["flow.risk"]["status"] == "at_risk"
    # city public piles: 3 on 31 Dec 2023 (P1, P2, P10), 4 on 1 Jul 2024 (+P5) → 3 + 1 × 2 = 5
    assert r["stock"]["value"] == 4 and r["stock"]["projection"] == pytest.approx(5.0)
    assert r["stock"]["status"] == "on_track"
    assert r["future"]["status"] == "not_due" and r["future"]["projection"] is None
    # EVs 2024 (city row) 30 ÷ projected 5 piles = 6.0; now 30 ÷ 4 = 7.5
    assert r["vpp"]["value"] == pytest.approx(7.5) and r["vpp"]["projection"] == pytest.approx(6.0)
    assert r["vpp"]["status"] == "on_track"


# --- vehicles per pile ----------------------------------------------------------------------

def test_vehicles_per_public_pile(data):
    ts = [T(f"v.{c}", "vehicles_per_public_pile", 2023, 7, "<=", county=c) for c in ("U1", "U2", "U3")] + \
         [T("v.city", "vehicles_per_public_pile", 2023, 7, "<="),
          T("v.city.2024", "vehicles_per_public_pile", 2024, 10, "<="),
          T("v.U1.2025", "vehicles_per_public_pile", 2025, 8, "<=", county="U1")]
    r, _ = run(data, "2026-01-01", *ts)
    assert r["v.U1"]["value"] == pytest.approx(7.0) and r["v.U1"]["status"] == "met"  # 14 ÷ 2, at the threshold
    assert r["v.U2"]["value"] is None and r["v.U2"]["status"] == "not_met"  # 10 EVs, no public pile
    assert r["v.U3"]["status"] == "no_data"  # no EV data
    # city 2023: no city row → U1 + U2 = 24 EVs (U3 missing: noted) ÷ 3 public piles = 8
    assert r["v.city"]["value"] == pytest.approx(8.0) and r["v.city"]["status"] == "not_met"
    assert any("U3" in n for n in r["v.city"]["notes"])
    # 2024: the city row (30) wins over the unit rows; public piles on 31 Dec 2024 = 4
    assert r["v.city.2024"]["value"] == pytest.approx(7.5)
    # 2025 EVs missing for U1 → falls back to 2024 (16) with a note; 16 ÷ 2 = 8
    assert r["v.U1.2025"]["value"] == pytest.approx(8.0) and r["v.U1.2025"]["status"] == "met"
    assert any("2024" in n for n in r["v.U1.2025"]["notes"])


# --- coverage ------------------------------------------------------------------------------

def test_coverage_by_code_and_by_radius_or_link(data):
    ts = [T("twp.city", "places_covered", 2023, 3, place_kind="township"),
          T("twp.share.U3", "places_covered_share", 2023, 1, county="U3", place_kind="township"),
          T("vil.U1", "places_covered_share", 2023, 0.5, county="U1", place_kind="village"),
          T("vil.2piles", "places_covered", 2023, 1, place_kind="village", params={"min_piles": 2}),
          T("vil.3piles", "places_covered", 2023, 1, place_kind="village", params={"min_piles": 3}),
          T("scenic.2023", "places_covered", 2023, 1, place_kind="scenic_spot"),
          T("scenic.2024", "places_covered", 2024, 3, place_kind="scenic_spot"),
          T("scenic.dc", "places_covered", 2023, 1, place_kind="scenic_spot", params={"current_type": "DC"}),
          T("vil.any", "places_covered", 2023, 1, place_kind="village",
            params={"access": ["public", "dedicated", "private"]})]
    r, _ = run(data, "2025-01-01", *ts)
    # townships on 31 Dec 2023: T1 has public P1, P2 (P4 is dedicated); T2 only gets P5 in 2024; T3 none
    assert r["twp.city"]["value"] == 1 and r["twp.city"]["detail"]["uncovered"] == ("T2", "T3")
    assert r["twp.city"]["status"] == "not_met"
    assert r["twp.share.U3"]["value"] == 0 and r["twp.share.U3"]["status"] == "not_met"  # empty unit
    assert r["vil.U1"]["value"] == 0.5 and r["vil.U1"]["status"] == "met"  # V1 yes, V3 no
    assert r["vil.2piles"]["value"] == 1 and r["vil.3piles"]["value"] == 0  # V1 has exactly 2 public piles
    # scenic 2023: SC1 by radius (394 m ≤ 500 m, via S1); SC3 at 701 m is not; SC2's linked S3 has no pile yet
    assert r["scenic.2023"]["value"] == 1 and r["scenic.2023"]["detail"]["uncovered"] == ("SC2", "SC3")
    assert r["scenic.2024"]["value"] == 2  # + SC2 through its linked station S3 (P5)
    assert "only 3 places registered" not in " ".join(r["scenic.2024"]["notes"])
    assert r["scenic.dc"]["value"] == 1  # P1 is DC
    assert r["vil.any"]["value"] == 1  # V1; S4's private pile has no village code


def test_coverage_radius_is_configurable(data):
    plan = make_plan(T("sc", "places_covered", 2023, 1, place_kind="scenic_spot"))
    ev = Evaluator(plan, data, radius_m=800)
    rep = evaluate_targets(plan, data, "2024-01-01", evaluator=ev)
    assert rep.results.loc[0, "value"] == 2  # SC1 and SC3 (701 m)


def test_fewer_registered_places_than_the_target_is_noted(data):
    r, _ = run(data, "2024-01-01", T("sc", "places_covered", 2023, 19, place_kind="scenic_spot"))
    assert any("only 3 places registered" in n for n in r["sc"]["notes"])


def test_mean_piles_per_place(data):
    ts = [T("mean.city", "mean_public_piles_per_place", 2023, 5, place_kind="township"),
          T("mean.U1", "mean_public_piles_per_place", 2023, 2, county="U1", place_kind="township")]
    r, _ = run(data, "2024-01-01", *ts)
    assert r["mean.city"]["value"] == pytest.approx(2 / 3)  # T1: 2, T2: 0, T3: 0
    assert r["mean.U1"]["value"] == 2 and r["mean.U1"]["status"] == "met"


# --- charging distance ----------------------------------------------------------------------

def test_village_exactly_at_the_distance_threshold(data):
    assert round(haversine_m(113.0 - D10KM, LAT, 113.0, LAT)) == 10_000
    ts = [T("d.lt", "charging_distance_max_km", 2023, 10, "<", county="U1", place_kind="village"),
          T("d.le", "charging_distance_max_km", 2023, 10, "<=", county="U1", place_kind="village")]
    r, _ = run(data, "2024-01-01", *ts)
    assert r["d.lt"]["value"] == 10.0
    assert r["d.lt"]["status"] == "not_met"  # "小于10公里": exactly 10 km is not below
    assert r["d.le"]["status"] == "met"
    worst = r["d.lt"]["detail"]["worst"]
    assert worst[0] == {"code": "V3", "name": "三村", "km": 10.0} and worst[1]["km"] == 0.0


def test_distance_uses_public_piles_in_service_anywhere(data):
    ts = [T("d.U2", "charging_distance_max_km", 2023, 50, "<", county="U2", place_kind="village"),
          T("d.U2.2024", "charging_distance_max_km", 2024, 50, "<", county="U2", place_kind="village"),
          T("d.U3", "charging_distance_max_km", 2023, 50, "<", county="U3", place_kind="township")]
    r, _ = run(data, "2025-01-01", *ts)
    # 2023: V2 (113.2) has no pile of its own; the nearest public pile is P10 at 113.3 (S6, no unit)
    expected = round(haversine_m(113.2, LAT, 113.3, LAT)) / 1000
    assert r["d.U2"]["value"] == pytest.approx(expected) and r["d.U2"]["status"] == "met"
    assert r["d.U2.2024"]["value"] == 0  # P5 at S3 from 2024
    assert r["d.U3"]["status"] == "no_data"  # T3 has no coordinates
    assert any("without coordinates" in n for n in r["d.U3"]["notes"])


def test_distance_without_any_public_pile(data):
    empty = RegistryData.build(stations().iloc[:0], piles().iloc[:0], places(), vehicles())
    r, _ = run(empty, "2024-01-01", T("d", "charging_distance_max_km", 2023, 50, "<", place_kind="village"))
    assert r["d"]["value"] is None and r["d"]["status"] == "not_met"


def test_place_groups(data):
    groups = [{"id": "core", "name": "核心区", "include": [{"kinds": ["community"], "townships": ["T1"]}]},
              {"id": "edge", "name": "边缘地区",
               "include": [{"kinds": ["village"], "townships": ["T1"]}, {"kinds": ["community"],
                                                                        "exclude_townships": ["T1"]}]}]
    ts = [T("core", "charging_distance_max_km", 2023, 1, "<", county="U1", place_group="core"),
          T("edge", "charging_distance_max_km", 2023, 11, "<", county="U1", place_group="edge")]
    r, _ = run(data, "2024-01-01", *ts, groups=groups)
    assert r["core"]["value"] == pytest.approx(round(haversine_m(113.001, LAT, 113.0, LAT)) / 1000)  # K1, 88 m
    assert r["edge"]["detail"]["places"] == 2 and r["edge"]["value"] == 10.0  # V1, V3


def test_coverage_and_distance_tables(data):
    plan = make_plan(T("x", "public_piles", 2023, 1))
    ev = Evaluator(plan, data)
    per_place, summary = coverage_table(ev, "2023-12-31", kinds=["village", "township"])
    assert per_place.set_index("code").loc["V1", "public_piles"] == 2
    assert per_place.set_index("code").loc["V1", "dc_public_piles"] == 1
    city = summary[(summary["county"] == "C0") & (summary["kind"] == "village")].iloc[0]
    assert (city["places"], city["covered"]) == (3, 1)
    dist = distance_table(ev, "2023-12-31").set_index(["county", "place"])
    assert dist.loc[("U1", "village"), "max_km"] == 10.0
    assert dist.loc[("U1", "village"), "p95_km"] == pytest.approx(9.5)  # of [0, 10]: 0 + 0.95 × 10
    assert dist.loc[("U3", "township"), "places_without_coordinates"] == 1


# --- centralized stations, ratios, fleets ---------------------------------------------------

def test_centralized_stations(data):
    ts = [T("cs.U1", "centralized_stations", 2023, 1, county="U1"),
          T("cs.U2", "centralized_stations", 2023, 1, county="U2"),
          T("cp.U1", "centralized_station_public_piles", 2023, 2, county="U1"),
          T("units", "units_with_centralized_station", 2023, 3)]
    r, _ = run(data, "2024-01-01", *ts)
    assert r["cs.U1"]["value"] == 1 and r["cs.U2"]["value"] == 0
    assert r["cp.U1"]["value"] == 2 and r["cp.U1"]["status"] == "met"
    assert r["units"]["value"] == 1 and r["units"]["detail"]["units"] == ["U1"]


def test_installation_ratios(data):
    ts = [T("parking", "installation_ratio", 2023, 0.10, params={"site_types": ["public_parking"]}),
          T("inst", "installation_ratio", 2023, 0.10, params={"site_types": ["institution"]}),
          T("other", "installation_ratio", 2024, 0.10, params={"site_types": ["other"]}),
          T("scenic5", "installation_ratio", 2023, 0.30, place_kind="scenic_spot",
            params={"basis": "places", "scenic_tier": "4a_or_resort"}),
          T("scenicA", "installation_ratio", 2024, 0.05, place_kind="scenic_spot",
            params={"basis": "places", "scenic_tier": "a_1_3"}),
          T("below", "installation_ratio", 2023, 0.10, place_kind="scenic_spot",
            params={"basis": "places", "scenic_tier": "below_a"})]
    r, _ = run(data, "2025-01-01", *ts)
    assert r["parking"]["value"] == pytest.approx(2 / 20) and r["parking"]["status"] == "met"  # S1: P1, P2 / 20
    assert r["inst"]["value"] == pytest.approx(1 / 50) and r["inst"]["status"] == "not_met"  # S2: P4 / 50
    assert r["other"]["status"] == "no_data"  # S3 and S6 have no parking spaces: left out, noted
    assert any("without parking spaces" in n for n in r["other"]["notes"])
    assert r["scenic5"]["value"] == pytest.approx(2 / 10) and r["scenic5"]["status"] == "not_met"  # SC1
    assert r["scenicA"]["value"] == pytest.approx(1 / 20) and r["scenicA"]["status"] == "met"  # SC2 via S3 (P5)
    assert r["below"]["value"] == 0  # SC3 (no A-level): no pile within 500 m


def test_installation_ratio_table(data):
    ev = Evaluator(make_plan(T("x", "public_piles", 2023, 1)), data)
    t = installation_ratio_table(ev, "2023-12-31").set_index(["county", "site_type"])
    assert t.loc[("C0", "public_parking"), "ratio"] == pytest.approx(0.1)
    assert t.loc[("U1", "depot_bus"), "ratio"] == pytest.approx(0.2)


def test_fleet_piles_per_vehicle(data):
    ts = [T("f", "fleet_piles_per_vehicle", 2023, 0.5, county="U1",
            params={"site_types": ["depot_bus"], "fleet_types": ["bus"]}),
          T("f1", "fleet_piles_per_vehicle", 2023, 1.0, params={"site_types": ["depot_bus"], "fleet_types": ["bus"]}),
          T("f2", "fleet_piles_per_vehicle", 2023, 0.5, county="U2",
            params={"site_types": ["depot_bus"], "fleet_types": ["bus"]})]
    r, _ = run(data, "2024-01-01", *ts)
    assert r["f"]["value"] == pytest.approx(0.5) and r["f"]["status"] == "met"  # P7, P8 ÷ 4 buses = 1:2
    assert r["f1"]["status"] == "not_met"
    assert r["f2"]["status"] == "no_data"


def test_new_stations_and_manual_targets(data):
    ts = [T("ns", "new_stations", 2023, 1, county="U1", params={"site_types": ["depot_bus"]}),
          T("ns.pp", "new_stations", 2023, 1, county="U1", params={"site_types": ["public_parking"]}),
          T("manual", "manual", 2023, 2, county="U1", params={"measure": "试点数"})]
    r, _ = run(data, "2024-01-01", *ts)
    assert r["ns"]["value"] == 1  # S5 first pile 2023-06-01
    assert r["ns.pp"]["value"] == 0  # S1's first pile (P3) is from 2022
    assert r["manual"]["status"] == "not_tracked" and r["manual"]["value"] is None


# --- data quality, summaries -----------------------------------------------------------------

def test_data_quality_notes(data):
    _, rep = run(data, "2024-01-01", T("x", "public_piles", 2023, 1))
    notes = {n.code: n for n in rep.notes}
    assert notes["pile_without_station"].examples == ("P9",)
    assert notes["pile_without_county"].examples == ("P10",)
    assert notes["station_without_coordinates"].examples == ("S4",)
    assert notes["place_without_coordinates:township"].examples == ("T3",)
    assert "station_without_township" in notes  # S6
    assert all(n.message_zh and n.message_en for n in rep.notes)


def test_unit_year_summary_fields(data):
    plan = make_plan(T("new.U1", "new_public_piles", 2023, 2, county="U1"),
                     T("vpp.U1", "vehicles_per_public_pile", 2023, 7, "<=", county="U1"))
    ev = Evaluator(plan, data)
    rep = evaluate_targets(plan, data, "2024-06-30", evaluator=ev)
    rows = {(r["county"], r["year"]): r for r in unit_year_summary(rep, ev)}
    u1 = rows[("U1", 2023)]
    assert {k: u1[k] for k in ("public_piles", "new_public_piles", "planned_new_public_piles", "ev_count",
                               "vehicles_per_public_pile", "target_vehicles_per_pile")} == {
        "public_piles": 2, "new_public_piles": 2, "planned_new_public_piles": 2.0, "ev_count": 14.0,
        "vehicles_per_public_pile": 7.0, "target_vehicles_per_pile": 7.0}
    assert u1["vehicles_per_pile_all"] == pytest.approx(14 / 5)  # P1, P2, P4, P7, P8 in service
    assert [t["status"] for t in u1["targets"]] == ["met", "met"]
    assert rows[("U1", 2025)]["public_piles"] is None  # not yet
    assert rows[("U3", 2023)]["public_piles"] == 0 and rows[("C0", 2023)]["county_name"] == "测试市"


# --- operations ------------------------------------------------------------------------------

def test_operations_per_unit_and_month(data):
    day = 86_400
    pl = piles()
    pl["charge_point_id"] = pl["pile_id"].map({"P1": "CP1", "P2": "CP2", "P3": "CP3"})
    pm = pd.DataFrame([
        # P1: the whole of December; P2 only on the 31st
        ("P1", "2023-12-01", 10, 100.0, 31 * day / 4, day, 0, 2, 1, 7200),
        ("P2", "2023-12-01", 1, 5.0, day / 2, 0, day / 2, 0, 0, 0),
        ("P3", "2023-06-01", 3, 30.0, 3 * day, 0, 0, 0, 0, 0),  # decommissioned 1 Jul: 30 days in June
        ("P3", "2023-07-01", 1, 1.0, 0, 0, 0, 0, 0, 0),         # after decommissioning: noted
        ("PX", "2023-12-01", 1, 1.0, 0, 0, 0, 0, 0, 0),         # unknown pile: noted
    ], columns=["pile_id", "month", "sessions", "energy_kwh", "charging_seconds", "unavailable_seconds",
                "offline_seconds", "faults", "repaired_faults", "repair_seconds"])
    d = RegistryData.build(stations(), pl, places(), vehicles(), fleets(), pm)
    plan = make_plan(T("x", "public_piles", 2023, 1))
    table, by_pile, notes = operations_report(d, pd.Timestamp("2023-06-01").date(), pd.Timestamp("2023-12-31").date(),
                                              plan)
    dec = table[(table["county"] == "U1") & (table["month"] == "2023-12-01")].iloc[0]
    assert dec["piles_reporting"] == 2 and dec["sessions"] == 11 and dec["energy_kwh"] == 105
    # in service: P1 31 days + P2 1 day = 32 days; charging 7.75 + 0.5 days; down 1 + 0.5 days
    assert dec["utilisation"] == pytest.approx(8.25 / 32)
    assert dec["availability"] == pytest.approx(1 - 1.5 / 32)
    assert dec["availability_mean_pile"] == pytest.approx(((1 - 1 / 31) + 0.5) / 2)
    assert dec["faults"] == 2 and dec["mttr_hours"] == pytest.approx(2.0)
    # P1, P2, P4, P7, P8 are in service in December (P3 is gone, S6/P10 has no unit)
    assert dec["piles_in_service"] == 5
    june = by_pile[(by_pile["pile_id"] == "P3") & (by_pile["month"] == "2023-06-01")].iloc[0]
    assert june["in_service_seconds"] == 30 * day and june["utilisation"] == pytest.approx(0.1)
    codes = {n.code for n in notes}
    assert {"ops_unknown_pile", "ops_outside_service", "ops_pile_without_county"} <= codes
    city = table[(table["county"] == "C0") & (table["month"] == "2023-12-01")].iloc[0]
    assert city["sessions"] == 11
    # as of 15 December only 15 days of P1 count
    table, by_pile, _ = operations_report(d, pd.Timestamp("2023-12-01").date(), pd.Timestamp("2023-12-31").date(),
                                          plan, as_of=pd.Timestamp("2023-12-15").date())
    p1 = by_pile[by_pile["pile_id"] == "P1"].iloc[0]
    assert p1["in_service_seconds"] == 15 * day


# --- 高新区 mapping end to end, and the real plan ------------------------------------------------

def test_gaoxin_mapping_from_import_to_metrics():
    geo = load_geography()
    csv = ("station_id,county,township_code,lon,lat,access,site_type,pile_id,power_kw,current_type,commissioned_on\n"
           "G1,高新区,140311400,113.4968,37.9327,公用,公共停车场,GP1,60,DC,2023-05-01\n"
           "J1,郊区,140311100,113.4968,37.9327,公用,公共停车场,JP1,60,DC,2023-05-01\n"
           "J2,郊区,140311100,113.4968,37.9327,公用,公共停车场,JP2,60,DC,2023-06-01\n").encode()
    res = parse_file("piles", csv, geo, filename="p.csv")
    assert res.ok, res.report()
    plan = load_plan()
    data = RegistryData.build(res.records["stations"], res.records["piles"], geo.reference_places())
    ev = Evaluator(plan, data)
    rep = evaluate_targets(plan, data, "2024-01-01", evaluator=ev)
    r = rep.results.set_index("target_id")
    assert r.loc["new_public_piles.gaoxin.2023", "value"] == 1
    assert r.loc["new_public_piles.jiaoqu.2023", "value"] == 2
    assert r.loc["townships.covered.share.2023@gaoxin", "value"] == 1.0  # 开发区 is 高新区's only township
    assert r.loc["townships.covered.share.2023@140311", "value"] == pytest.approx(1 / 7)  # 荫营镇 of 7


def test_real_plan_over_6000_piles_is_fast():
    geo = load_geography()
    plan = load_plan()
    rng = np.random.default_rng(7)
    places = geo.reference_places()
    places["lon"] = 113.0 + rng.random(len(places)) * 0.9
    places["lat"] = 37.6 + rng.random(len(places)) * 0.7
    n_st = 3000
    v = geo.villages.sample(n_st, replace=True, random_state=1).reset_index(drop=True)
    st = pd.DataFrame({"station_id": [f"S{i}" for i in range(n_st)], "county": v["unit_code"],
                       "township_code": v["township_code"], "village_code": v["code"],
                       "lon": 113.0 + rng.random(n_st) * 0.9, "lat": 37.6 + rng.random(n_st) * 0.7,
                       "access": rng.choice(["public", "dedicated", "private"], n_st),
                       "site_type": rng.choice(["public_parking", "institution", "depot_bus", "other"], n_st),
                       "parking_spaces": rng.integers(5, 200, n_st), "centralized": rng.random(n_st) < 0.1})
    n = 6500
    pl = pd.DataFrame({"pile_id": [f"P{i}" for i in range(n)], "station_id": rng.choice(st["station_id"], n),
                       "power_kw": 60.0, "current_type": rng.choice(["AC", "DC"], n),
                       "commissioned_on": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 1700, n),
                                                                                         unit="D")})
    veh = pd.DataFrame([(u, y, 5000) for u in plan.unit_codes for y in (2023, 2024, 2025)],
                       columns=["county", "year", "ev_count"])
    start = time.perf_counter()
    data = RegistryData.build(st, pl, places, veh)
    ev = Evaluator(plan, data)
    rep = evaluate_targets(plan, data, "2025-06-30", evaluator=ev)
    summary = unit_year_summary(rep, ev)
    elapsed = time.perf_counter() - start
    assert len(rep.results) == len(plan.targets) and len(summary) == 7 * 3
    assert set(rep.results["status"]) <= {"met", "not_met", "on_track", "at_risk", "not_due", "no_data",
                                          "not_tracked"}
    assert elapsed < 2.0, elapsed
