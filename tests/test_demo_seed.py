"""``csms demo seed``: deterministic, inside the real county polygons, near the plan's pace, reports work on it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from reporting.demo import BASELINE_PUBLIC, PACE, DemoConfig, DemoError, clear_demo, generate, seed_database
from reporting.reports import default_inputs, produce

TODAY = dt.date(2026, 1, 15)
SMALL = DemoConfig(seed=7, sessions=3000, chargers=30, history_days=120, today=TODAY)


@pytest.fixture(scope="module")
def demo():
    return generate(SMALL)


def test_deterministic(demo):
    again = generate(SMALL)
    for name in ("places", "stations", "piles", "ev_counts", "sessions", "faults"):
        pd.testing.assert_frame_equal(getattr(demo, name), getattr(again, name))
    other = generate(DemoConfig(seed=8, sessions=3000, chargers=30, history_days=120, today=TODAY))
    assert not other.stations[["lon", "lat"]].equals(demo.stations[["lon", "lat"]])


def test_points_inside_the_real_polygons_and_marked_synthetic(demo):
    plan, geo = default_inputs()
    for unit, grp in demo.stations.groupby("county"):
        assert geo.contains(unit, grp["lon"].to_numpy(), grp["lat"].to_numpy()).all(), unit
    for unit, grp in demo.places.groupby("county"):
        assert geo.contains(unit, grp["lon"].to_numpy(), grp["lat"].to_numpy()).all(), unit
    assert demo.stations["station_id"].str.startswith("DEMO-").all()
    assert demo.stations["name"].str.endswith("（演示）").all()
    # the real divisions: every township and village gets (synthetic) coordinates
    codes = set(demo.places["code"])
    assert set(geo.townships["code"]) <= codes and set(geo.villages["code"]) <= codes
    assert demo.places["code"].is_unique and demo.piles["pile_id"].is_unique


def test_near_the_plan_pace_with_some_counties_behind(demo):
    plan, _ = default_inputs()
    st = demo.stations.set_index("station_id")
    pl = demo.piles.assign(county=demo.piles["station_id"].map(st["county"]),
                           access=demo.piles["station_id"].map(st["access"]),
                           year=pd.to_datetime(demo.piles["commissioned_on"]).dt.year)
    assert pl["commissioned_on"].between(dt.date(2022, 1, 1), dt.date(2025, 12, 31)).all()
    pub = pl[pl["access"] == "public"].groupby(["county", "year"]).size()
    assert pub.xs(2022, level="year").sum() == pytest.approx(BASELINE_PUBLIC, rel=0.05)
    planned = {(t.county, t.year): t.threshold for t in plan.targets
               if t.metric == "new_public_piles" and t.county and "since_year" not in t.params}
    city = {y: pub.xs(y, level="year").sum() for y in plan.years}
    assert city[2023] == pytest.approx(1050, rel=0.15) and city[2025] == pytest.approx(1924, rel=0.15)
    ratios = {(u, y): pub.get((u, y), 0) / planned[(u, y)] for u in plan.unit_codes for y in plan.years}
    assert all(0.6 < r < 1.4 for r in ratios.values()), ratios
    behind = [u for u in plan.unit_codes if ratios[(u, 2025)] < 0.9]
    assert "140303" in behind and "140322" in behind and len(behind) < len(plan.unit_codes)
    assert min(PACE["140303"]) < 0.8
    # EVs around the plan's vehicles-per-pile ratio; every unit and year present
    assert len(demo.ev_counts) == len(plan.unit_codes) * 4
    assert 25_000 < demo.ev_counts[demo.ev_counts["year"] == 2025]["ev_count"].sum() < 40_000


def test_sessions_do_not_overlap_on_a_connector(demo):
    s = demo.sessions.sort_values(["charge_point_id", "connector_id", "started_at"])
    assert len(s) and (s["stopped_at"] > s["started_at"]).all()
    prev_stop = s.groupby(["charge_point_id", "connector_id"])["stopped_at"].shift()
    assert (prev_stop.isna() | (prev_stop <= s["started_at"])).all()
    assert s["charge_point_id"].isin(demo.piles["charge_point_id"]).all()
    assert np.isclose(s["meter_stop_wh"] - s["meter_start_wh"], s["energy_wh"]).all()


async def test_seed_reports_and_clear(conn):
    summary = await seed_database(conn, SMALL)
    assert summary["stations"] == await conn.fetchval("SELECT count(*) FROM stations WHERE synthetic")
    assert await conn.fetchval("SELECT count(*) FROM sessions") == summary["sessions"] > 0
    rep = json.loads((await produce(conn, "targets", "json", as_of="2025-12-31")).content)
    assert "synthetic_data" in {n["code"] for n in rep["notes"]}
    statuses = {t["status"] for t in rep["targets"]}
    assert {"met", "not_met"} <= statuses
    ops = json.loads((await produce(conn, "operations", "json", month="2025-12")).content)
    city = next(r for r in ops["counties"] if r["county"] == "140300")
    assert city["piles_reporting"] == 30 and city["sessions"] > 0 and 0.8 < city["availability"] <= 1
    again = await seed_database(conn, SMALL)  # replaces the earlier demo rows
    assert again == summary and await conn.fetchval("SELECT count(*) FROM piles") == summary["piles"]
    counts = await clear_demo(conn)
    assert counts["stations"] == summary["stations"]
    for table in ("stations", "piles", "sessions", "charge_points", "ev_counts"):
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_refuses_to_mix_with_real_data(conn):
    await conn.execute("INSERT INTO stations (station_id, county, access, site_type) "
                       "VALUES ('REAL-1', '140302', 'public', 'other')")
    with pytest.raises(DemoError, match="real"):
        await seed_database(conn, SMALL)
    assert await conn.fetchval("SELECT count(*) FROM stations") == 1
