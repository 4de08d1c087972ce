"""``csms demo seed``: a realistic synthetic Yangquan, so that the reports show real-looking figures at once.

What is real: the 43 townships and 777 villages/communities (reference files), the county
polygons, the plan and its per-county schedule (附件1). What is synthetic (every row marked
``synthetic``; ids start with ``DEMO-``; names end in （演示）):

* coordinates of townships and villages — random points inside the real county polygons,
  villages scattered around their township;
* scenic spots, Taihang No.1 road facilities, highway service areas, road parking areas and
  residential communities (the plan's counts);
* stations and piles commissioned 2022–2025 near the plan's pace — 2022 is the baseline (1384
  public piles), 2023–2025 follow 附件1 per county times a pace factor, with 矿区 and 盂县
  behind — placed to cover townships, villages, scenic spots and road facilities the way the
  plan asks, the rest in the urban areas; dedicated (institutions, depots) and private piles;
* EV stock per county and year (around the plan's vehicles-per-pile ratios, some counties
  above them) and bus/sanitation fleets;
* OCPP: ``chargers`` piles registered as charge points ``DEMO-CP-nnnn`` with connections
  (and outages), faults with repair times, and ``sessions`` charging sessions over the last
  ``history_days`` days.

Deterministic: the same :class:`DemoConfig` (seed, sizes and ``today``) gives the same rows.
Everything is written with COPY in one transaction; earlier demo rows are removed first.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Callable

import asyncpg
import numpy as np
import pandas as pd
import shapely

from .geography import Geography, haversine_m
from .plan import Plan
from .reports import default_inputs
from .store import LOCAL, today_local

__all__ = ["DemoConfig", "DemoError", "generate", "seed_database", "clear_demo", "PACE"]

#: Pace of new public piles per unit and plan year (× 附件1); < 1 = behind plan.
PACE = {
    "140302": (1.10, 1.05, 1.02), "140303": (0.92, 0.78, 0.72), "gaoxin": (1.05, 1.02, 1.05),
    "140311": (1.00, 0.95, 0.93), "140321": (1.06, 1.00, 0.97), "140322": (0.86, 0.72, 0.80),
}
#: EVs per public pile at each year end per unit (some above the plan's 7 / 6.5 / 6).
EV_RATIO = {
    "140302": (6.6, 6.2, 5.8), "140303": (7.4, 7.1, 6.9), "gaoxin": (6.2, 6.0, 5.6),
    "140311": (6.8, 6.4, 6.1), "140321": (6.5, 6.3, 5.9), "140322": (7.8, 7.3, 6.8),
}
BASELINE_YEAR = 2022
BASELINE_PUBLIC = 1384  # 5738 − 4354 (plan 三、发展目标)
SYN = "（演示）"


class DemoError(RuntimeError):
    """The demo cannot be seeded (e.g. the registry holds real data)."""


@dataclass
class DemoConfig:
    seed: int = 2023
    sessions: int = 60_000
    chargers: int = 240
    history_days: int = 365
    today: dt.date | None = None

    def day(self) -> dt.date:
        return self.today or today_local()


@dataclass
class DemoData:
    places: pd.DataFrame
    stations: pd.DataFrame
    piles: pd.DataFrame
    ev_counts: pd.DataFrame
    fleet_counts: pd.DataFrame
    charge_points: pd.DataFrame
    connectors: pd.DataFrame
    connections: pd.DataFrame
    faults: pd.DataFrame
    status_history: pd.DataFrame
    sessions: pd.DataFrame
    summary: dict = field(default_factory=dict)


# --- geometry ---------------------------------------------------------------------------------

def _points_in(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform random points inside *geom* (rejection sampling in its bounds)."""
    minx, miny, maxx, maxy = geom.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        m = max(64, 3 * (n - len(out)))
        xy = np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])
        out = np.vstack([out, xy[shapely.contains_xy(geom, xy[:, 0], xy[:, 1])]])
    return out[:n]


def _spread(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points inside *geom*, spread out (greedy farthest-point choice among candidates)."""
    cand = _points_in(geom, max(40, 12 * n), rng)
    chosen = [int(rng.integers(len(cand)))]
    dmin = haversine_m(cand[:, 0], cand[:, 1], cand[chosen[0], 0], cand[chosen[0], 1])
    for _ in range(n - 1):
        i = int(np.argmax(dmin))
        chosen.append(i)
        dmin = np.minimum(dmin, haversine_m(cand[:, 0], cand[:, 1], cand[i, 0], cand[i, 1]))
    return cand[chosen]


def _near(geom, lon: float, lat: float, sigma_m: float, rng: np.random.Generator, tries: int = 30
          ) -> tuple[float, float]:
    """A point around (lon, lat) (normal, sigma in metres) inside *geom*; the centre when none is found."""
    k = 1 / 111_320
    for _ in range(tries):
        x = lon + rng.normal(0, sigma_m) * k / math.cos(math.radians(lat))
        y = lat + rng.normal(0, sigma_m) * k
        if shapely.contains_xy(geom, x, y):
            return round(float(x), 6), round(float(y), 6)
    return round(lon, 6), round(lat, 6)


# --- the generator ------------------------------------------------------------------------------

class _Builder:
    def __init__(self, cfg: DemoConfig, plan: Plan, geo: Geography):
        self.cfg, self.plan, self.geo = cfg, plan, geo
        self.rng = np.random.default_rng(cfg.seed)
        self.today = cfg.day()
        self.stations: list[dict] = []
        self.piles: list[dict] = []
        self.places: list[dict] = []
        self.n_station = 0
        self.t_xy: dict[str, tuple[float, float]] = {}
        self.v_xy: dict[str, tuple[float, float]] = {}
        self.t_county = dict(zip(geo.townships["code"], geo.townships["county_code"]))
        self.t_name = dict(zip(geo.townships["code"], geo.townships["name"]))

    # -- places --------------------------------------------------------------------------------
    def geom(self, township_code: str):
        return self.geo.unit_polygon(self.t_county[township_code])

    def divisions(self) -> None:
        t = self.geo.townships
        for county, grp in t.groupby("county_code", sort=True):
            pts = _spread(self.geo.unit_polygon(county), len(grp), self.rng)
            for code, (x, y) in zip(grp["code"], pts):
                self.t_xy[code] = (round(float(x), 6), round(float(y), 6))
        for r in self.geo.villages.itertuples():
            lon, lat = self.t_xy[r.township_code]
            sigma = 1500 if r.kind == "community" else 4500
            self.v_xy[r.code] = _near(self.geom(r.township_code), lon, lat, sigma, self.rng)
        for r in t.itertuples():
            self.places.append({"code": r.code, "kind": "township", "name": r.name, "county": r.unit_code,
                                "township_code": r.code, "lon": self.t_xy[r.code][0], "lat": self.t_xy[r.code][1],
                                "a_level": None, "provincial_resort": False, "parking_spaces": None})
        for r in self.geo.villages.itertuples():
            self.places.append({"code": r.code, "kind": r.kind, "name": r.name, "county": r.unit_code,
                                "township_code": r.township_code, "lon": self.v_xy[r.code][0],
                                "lat": self.v_xy[r.code][1], "a_level": None, "provincial_resort": False,
                                "parking_spaces": None})

    def townships_of(self, unit: str) -> pd.DataFrame:
        return self.geo.townships[self.geo.townships["unit_code"] == unit]

    def urban_townships(self, unit: str) -> list[str]:
        core = set(self.plan.township_sets.get("core", ()))
        ts = self.townships_of(unit)
        urban = [c for c in ts["code"] if c in core]
        return urban or list(ts["code"][:1])

    def add_place(self, kind: str, unit: str, name: str, n: int, *, sigma: float = 6000, **extra) -> None:
        ts = list(self.townships_of(unit)["code"])
        prefix = {"scenic_spot": "SC", "taihang_station": "TH-YZ", "taihang_rv_camp": "TH-RV",
                  "taihang_parking": "TH-P", "highway_service_area": "HW", "road_parking_area": "RP",
                  "road_service_area": "RS", "residential_community": "RC"}[kind]
        for _ in range(n):
            t = ts[int(self.rng.integers(len(ts)))]
            lon, lat = _near(self.geom(t), *self.t_xy[t], sigma, self.rng)
            k = sum(1 for p in self.places if p["kind"] == kind) + 1
            self.places.append({"code": f"DEMO-{prefix}-{k:03d}", "kind": kind, "name": f"{name}{k:02d}{SYN}",
                                "county": unit, "township_code": t, "lon": lon, "lat": lat,
                                "a_level": extra.get("a_level"), "provincial_resort": extra.get("resort", False),
                                "parking_spaces": extra.get("spaces")})

    def other_places(self) -> None:
        rng = self.rng
        scenic_units = ["140322"] * 5 + ["140321"] * 5 + ["140311"] * 4 + ["140303"] * 2 + ["140302"] * 2 + ["gaoxin"]
        levels = [5, 4, 4, 3, 3, 3, 2, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        for u, lvl in zip(scenic_units, levels):
            self.add_place("scenic_spot", u, "示例景区", 1, a_level=lvl, resort=False,
                           spaces=int(rng.integers(40, 320)))
        for u, n in (("140322", 2), ("140321", 2), ("140311", 1)):
            self.add_place("taihang_station", u, "太行一号旅游公路驿站", n, spaces=int(rng.integers(20, 60)))
        for u in ("140322", "140321", "140311"):
            self.add_place("taihang_rv_camp", u, "太行一号房车营地", 1, spaces=int(rng.integers(20, 50)))
            self.add_place("taihang_parking", u, "太行一号旅游公路停车场", 1, spaces=int(rng.integers(15, 40)))
        for u in ("140311", "140321", "140322"):
            self.add_place("highway_service_area", u, "高速公路服务区", 1, spaces=int(rng.integers(80, 160)))
            self.add_place("road_parking_area", u, "国省干线公路停车区", 1, spaces=int(rng.integers(15, 40)))
        for u in self.plan.unit_codes:
            n = {"140302": 16, "140303": 12, "gaoxin": 8, "140311": 8, "140321": 8, "140322": 8}.get(u, 6)
            for _ in range(n):
                t = self.urban_townships(u)[int(rng.integers(len(self.urban_townships(u))))]
                lon, lat = _near(self.geom(t), *self.t_xy[t], 1500, rng)
                k = sum(1 for p in self.places if p["kind"] == "residential_community") + 1
                self.places.append({"code": f"DEMO-RC-{k:03d}", "kind": "residential_community",
                                    "name": f"示例小区{k:02d}{SYN}", "county": u, "township_code": t, "lon": lon,
                                    "lat": lat, "a_level": None, "provincial_resort": False,
                                    "parking_spaces": int(rng.integers(100, 600))})

    # -- stations & piles ------------------------------------------------------------------------
    def dates(self, year: int, n: int) -> list[dt.date]:
        start = dt.date(year, 1, 1)
        days = 366 if year % 4 == 0 else 365
        offs = np.sort((self.rng.beta(1.6, 1.2, n) * days).astype(int).clip(0, days - 1))
        return [start + dt.timedelta(days=int(o)) for o in offs]

    def station(self, unit: str, township: str, lon: float, lat: float, *, access: str, site: str, n: int,
                year: int, dc: float, name: str, village: str | None = None, place: str | None = None,
                spaces: int | None = None, centralized: bool = False, power_dc: tuple = (60, 120, 160)) -> str:
        self.n_station += 1
        sid = f"DEMO-ST-{self.n_station:05d}"
        self.stations.append({
            "station_id": sid, "name": name + SYN, "operator": f"示例充电运营公司{'ABCDE'[self.n_station % 5]}{SYN}",
            "county": unit, "township_code": township, "village_code": village, "address": None,
            "lon": lon, "lat": lat, "access": access, "site_type": site, "parking_spaces": spaces,
            "centralized": centralized, "place_code": place})
        self.add_piles(sid, n, year, dc, power_dc)
        return sid

    def add_piles(self, sid: str, n: int, year: int, dc: float, power_dc: tuple = (60, 120, 160)) -> None:
        rng = self.rng
        for d in self.dates(year, n):
            is_dc = rng.random() < dc
            k = len(self.piles) + 1
            decom = None
            if rng.random() < 0.015:
                decom = d + dt.timedelta(days=int(rng.integers(120, 900)))
                if decom > self.today:
                    decom = None
            self.piles.append({"pile_id": f"DEMO-P-{k:05d}", "station_id": sid,
                               "power_kw": float(rng.choice(power_dc)) if is_dc else 7.0,
                               "current_type": "DC" if is_dc else "AC", "connector_count": 2 if is_dc and
                               rng.random() < 0.5 else 1, "commissioned_on": d, "decommissioned_on": decom,
                               "charge_point_id": None})

    def plan_new(self) -> dict[tuple[str, int], float]:
        out = {}
        for t in self.plan.targets:
            if t.metric == "new_public_piles" and t.county and "since_year" not in t.params:
                out[(t.county, t.year)] = t.threshold
        return out

    def build_registry(self) -> None:
        rng, plan, geo = self.rng, self.plan, self.geo
        planned = self.plan_new()
        years = list(plan.years)
        units = list(plan.unit_codes)
        totals = {u: sum(planned.get((u, y), 0) for y in years) for u in units}
        budget: dict[tuple[str, int], int] = {}
        for u in units:
            budget[(u, BASELINE_YEAR)] = round(BASELINE_PUBLIC * totals[u] / max(1, sum(totals.values())))
            for i, y in enumerate(years):
                pace = PACE.get(u, (1.0,) * len(years))[min(i, 2)] * rng.uniform(0.97, 1.03)
                budget[(u, y)] = round(planned.get((u, y), 0) * pace)
        used = {k: 0 for k in budget}
        all_years = [BASELINE_YEAR, *years]

        def pace_of(u: str, y: int) -> float:
            return 1.0 if y == BASELINE_YEAR else PACE.get(u, (1.0,) * 3)[min(years.index(y), 2)]

        def put(u: str, y: int, **kw) -> str:
            if y > self.today.year:
                return ""
            used[(u, y)] += kw["n"]
            return self.station(u, **kw, year=y)

        # townships: about 60 % covered at the 2022 baseline, every one by 2023 (盂县 misses one
        # until 2024); a second site in 2024/2025 brings them to ~5 public piles on average
        for u in units:
            ts = self.townships_of(u)
            for j, r in enumerate(ts.itertuples()):
                y = BASELINE_YEAR if j < 0.6 * len(ts) else years[0]
                if u == "140322" and j == len(ts) - 1:
                    y = years[1]
                lon, lat = _near(self.geom(r.code), *self.t_xy[r.code], 300, rng)
                put(u, y, township=r.code, lon=lon, lat=lat, access="public", site="township_office",
                    n=int(rng.integers(2, 4)), dc=0.5, name=f"{r.name}便民充电站")
                y2 = years[1] if j % 2 else years[2]
                lon, lat = _near(self.geom(r.code), *self.t_xy[r.code], 800, rng)
                put(u, y2, township=r.code, lon=lon, lat=lat, access="public",
                    site="public_parking" if r.kind == "street" else "village_square",
                    n=int(rng.integers(2, 4)), dc=0.4, spaces=int(rng.integers(20, 80)), name=f"{r.name}公共充电站")
        # administrative villages: 100 / 360 / 620 by the plan, times the unit's pace, two piles each
        vil = geo.villages[geo.villages["kind"] == "village"].sample(frac=1.0, random_state=self.cfg.seed)
        city_quota = {years[0]: 100, years[1]: 360, years[2]: 620}
        for u in units:
            uv = vil[vil["unit_code"] == u]
            share = len(uv) / max(1, len(vil))
            done = 0
            for y in years:
                want = round(city_quota[y] * share * min(1.0, pace_of(u, y)) ** 1.5)
                for r in uv.iloc[done:max(done, want)].itertuples():
                    lon, lat = _near(self.geom(r.township_code), *self.v_xy[r.code], 60, rng)
                    put(u, y, township=r.township_code, village=r.code, lon=lon, lat=lat, access="public",
                        site="village_square", n=2, dc=0.15, name=f"{r.name.replace('村委会', '村')}充电站")
                done = max(done, want)
        # places (scenic spots, roads, residential communities): near the plan's schedule
        quotas = {"scenic_spot": (4, 10, 19), "taihang_station": (3, 5, 5), "taihang_rv_camp": (0, 1, 3),
                  "taihang_parking": (0, 1, 3), "highway_service_area": (3, 3, 3), "road_parking_area": (0, 1, 2),
                  "residential_community": (20, 45, 58)}
        sites = {"scenic_spot": "scenic_spot", "taihang_station": "taihang_station", "taihang_rv_camp": "rv_camp",
                 "taihang_parking": "taihang_parking", "highway_service_area": "highway_service_area",
                 "road_parking_area": "road_service_area", "residential_community": "residential"}
        places = pd.DataFrame(self.places)
        for kind, q in quotas.items():
            ps = places[places["kind"] == kind].reset_index(drop=True)
            done = 0
            for i, y in enumerate(years):
                for j, p in enumerate(ps.iloc[done:q[i]].itertuples()):
                    lon, lat = _near(self.geom(p.township_code), p.lon, p.lat, 120, rng)
                    dc = 1.0 if kind in ("taihang_station", "road_parking_area") else 0.5
                    if kind == "highway_service_area":
                        dc = 0.0 if j == 2 else 1.0  # one service area gets only AC piles: 2 of 3 fast-charged
                    n = max(2, round((p.parking_spaces or 20) * rng.uniform(0.12, 0.34))) \
                        if kind in ("scenic_spot", "highway_service_area", "road_parking_area") else \
                        int(rng.integers(2, 6))
                    put(p.county, y, township=p.township_code, lon=lon, lat=lat, access="public", site=sites[kind],
                        n=min(n, 24), dc=dc, place=p.code, spaces=p.parking_spaces, name=p.name.replace(SYN, "") +
                        "充电站", power_dc=(120, 160) if kind != "residential_community" else (60,))
                done = max(done, q[i])
            if kind == "highway_service_area":  # the third service area gets DC piles in 2025
                p = ps.iloc[2]
                st = next(s for s in self.stations if s["place_code"] == p.code)
                if years[2] <= self.today.year:
                    self.add_piles(st["station_id"], 4, years[2], 1.0, (120, 160))
                    used[(p.county, years[2])] += 4
        # centralized operating stations: two per unit by 2025 (矿区 only one), 12–22 piles
        for u in units:
            urban = self.urban_townships(u)
            for k, y in enumerate((years[0], years[2])):
                if u == "140303" and k == 1:
                    continue
                t = urban[int(rng.integers(len(urban)))]
                lon, lat = _near(self.geom(t), *self.t_xy[t], 1200, rng)
                n = int(rng.integers(12, 23))
                put(u, y, township=t, lon=lon, lat=lat, access="public", site="public_parking", n=n, dc=0.8,
                    centralized=True, spaces=int(n * rng.uniform(2.5, 5)), name=f"{geo.unit_name(u)}集中式充电站{k + 1}")
        # road parking pilots (城市道路路外公共泊位), one per unit and year, 矿区 and 盂县 skip 2024
        for u in units:
            for y in years:
                if u in ("140303", "140322") and y == years[1]:
                    continue
                t = self.urban_townships(u)[0]
                lon, lat = _near(self.geom(t), *self.t_xy[t], 1500, rng)
                put(u, y, township=t, lon=lon, lat=lat, access="public", site="road_parking", n=4, dc=0.0,
                    spaces=int(rng.integers(20, 50)), name="路外公共泊位充电试点")
        # the rest of each year's budget: urban public stations
        urban_sites = ["public_parking", "commercial_parking", "transport_hub", "park_and_ride", "fuel_station",
                       "other"]
        for u in units:
            comm = geo.villages[(geo.villages["unit_code"] == u) & (geo.villages["kind"] == "community")]
            urban = self.urban_townships(u)
            for y in all_years:
                while used[(u, y)] < budget[(u, y)] and y <= self.today.year:
                    n = int(min(budget[(u, y)] - used[(u, y)], rng.integers(4, 13)))
                    village = None
                    if len(comm) and rng.random() < 0.8:
                        c = comm.iloc[int(rng.integers(len(comm)))]
                        t, (lon0, lat0) = c["township_code"], self.v_xy[c["code"]]
                        village = c["code"] if rng.random() < 0.7 else None  # in the community, or just outside
                    else:
                        t = urban[int(rng.integers(len(urban)))]
                        lon0, lat0 = self.t_xy[t]
                    lon, lat = _near(self.geom(t), lon0, lat0, 300 if village else 900, rng)
                    site = urban_sites[int(rng.integers(len(urban_sites)))]
                    spaces = int(n / rng.uniform(0.07, 0.3)) if site != "other" else None
                    put(u, y, township=t, village=village, lon=lon, lat=lat, access="public", site=site, n=n, dc=0.45,
                        spaces=spaces,
                        name=f"{self.t_name[t]}{_SITE_NAMES[site]}充电站")
        # dedicated and private piles: institutions, bus / sanitation depots, residential
        for u in units:
            urban = self.urban_townships(u)
            for y in all_years:
                for _ in range(int(rng.integers(2, 5))):
                    t = urban[int(rng.integers(len(urban)))]
                    lon, lat = _near(self.geom(t), *self.t_xy[t], 1500, rng)
                    n = int(rng.integers(3, 10))
                    self.station(u, t, lon, lat, access="dedicated", site="institution", n=n, year=y, dc=0.1,
                                 spaces=int(n / rng.uniform(0.06, 0.2)), name="示例单位内部充电站")
                for _ in range(int(rng.integers(3, 8))):
                    t = urban[int(rng.integers(len(urban)))]
                    lon, lat = _near(self.geom(t), *self.t_xy[t], 1500, rng)
                    self.station(u, t, lon, lat, access="private", site="residential",
                                 n=int(rng.integers(4, 15)), year=y, dc=0.0, name="居住小区自用充电桩")
            t = urban[0]
            lon, lat = _near(self.geom(t), *self.t_xy[t], 2500, rng)
            self.station(u, t, lon, lat, access="dedicated", site="depot_bus", n=int(rng.integers(10, 20)),
                         year=years[0], dc=1.0, spaces=60, name=f"{geo.unit_name(u)}公交场站")
            if u not in ("140303",):
                self.station(u, t, lon, lat, access="dedicated", site="depot_bus", n=int(rng.integers(8, 16)),
                             year=years[2], dc=1.0, spaces=40, name=f"{geo.unit_name(u)}公交二场")
            self.station(u, t, lon, lat, access="dedicated", site="depot_sanitation", n=int(rng.integers(3, 8)),
                         year=years[1], dc=0.5, spaces=20, name=f"{geo.unit_name(u)}环卫场站")
        self.piles = [p for p in self.piles if p["commissioned_on"] <= self.today]
        keep = {p["station_id"] for p in self.piles}
        self.stations = [s for s in self.stations if s["station_id"] in keep]

    def vehicles(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        st = pd.DataFrame(self.stations).set_index("station_id")
        pl = pd.DataFrame(self.piles)
        pl["county"] = pl["station_id"].map(st["county"])
        pl["access"] = pl["station_id"].map(st["access"])
        years = list(self.plan.years)
        ev, fleets = [], []
        for u in self.plan.unit_codes:
            for i, y in enumerate([BASELINE_YEAR, *years]):
                if y > self.today.year:
                    continue
                end = dt.date(y, 12, 31)
                pub = pl[(pl["county"] == u) & (pl["access"] == "public") & (pl["commissioned_on"] <= end)
                         & (pl["decommissioned_on"].isna() | (pl["decommissioned_on"] > end))]
                ratio = 7.6 if i == 0 else EV_RATIO.get(u, (7.0, 6.5, 6.0))[min(i - 1, 2)]
                count = int(round(len(pub) * ratio * self.rng.uniform(0.98, 1.02)))
                ev.append({"county": u, "year": y, "ev_count": count})
                depot = pl[(pl["county"] == u) & (pl["access"] == "dedicated") & (pl["commissioned_on"] <= end)
                           & pl["station_id"].map(st["site_type"]).isin(["depot_bus", "depot_sanitation"])]
                buses = max(10, int(len(depot) * self.rng.uniform(1.7, 2.4)))
                fleets.append({"county": u, "year": y, "fleet_type": "bus", "vehicle_count": int(buses * 0.8)})
                fleets.append({"county": u, "year": y, "fleet_type": "sanitation", "vehicle_count": int(buses * 0.2)})
        return pd.DataFrame(ev), pd.DataFrame(fleets)

    # -- OCPP ------------------------------------------------------------------------------------
    def ocpp(self) -> dict[str, pd.DataFrame]:
        rng, cfg = self.rng, self.cfg
        now = dt.datetime.combine(self.today, dt.time(0), tzinfo=LOCAL)
        start = now - dt.timedelta(days=cfg.history_days)
        st = pd.DataFrame(self.stations).set_index("station_id")
        pl = pd.DataFrame(self.piles)
        cand = pl[(pl["station_id"].map(st["access"]) == "public") & pl["decommissioned_on"].isna()
                  & (pl["commissioned_on"] <= start.date())]
        n = min(cfg.chargers, len(cand))
        if n == 0:
            empty = {k: pd.DataFrame() for k in ("charge_points", "connectors", "connections", "faults",
                                                 "status_history", "sessions")}
            return empty
        weights = np.where(cand["current_type"] == "DC", 3.0, 1.0)
        pick = cand.iloc[np.sort(rng.choice(len(cand), n, replace=False, p=weights / weights.sum()))].copy()
        pick["cp"] = [f"DEMO-CP-{i + 1:04d}" for i in range(n)]
        id_of = dict(zip(pick["pile_id"], pick["cp"]))
        for p in self.piles:
            p["charge_point_id"] = id_of.get(p["pile_id"])
        cps = pd.DataFrame({"id": pick["cp"].to_numpy(), "ocpp_version": "1.6", "vendor": "DEMO",
                            "model": np.where(pick["current_type"] == "DC", "DEMO-DC120", "DEMO-AC7"),
                            "station_id": pick["station_id"].to_numpy(), "registered_at": start,
                            "last_seen": now - dt.timedelta(minutes=5)})
        cons = []
        for cp, k in zip(pick["cp"], pick["connector_count"]):
            cons += [(cp, c) for c in range(0, int(k) + 1)]
        connectors = pd.DataFrame(cons, columns=["charge_point_id", "connector_id"])
        window = (now - start).total_seconds()
        # connections with outages: ~1 a month (rural chargers more), 10 min – 3 days
        conn_rows, fault_rows, status_rows = [], [], []
        rural = pick["station_id"].map(st["site_type"]).isin(["village_square", "township_office"]).to_numpy()
        for i, cp in enumerate(pick["cp"]):
            k = rng.poisson((2.0 if rural[i] else 0.8) * cfg.history_days / 30)
            offs = np.sort(rng.uniform(0, window, k))
            durs = np.minimum(rng.lognormal(math.log(1800), 1.4, k), 3 * 86400)
            t = 0.0
            for o, d in zip(offs, durs):
                if o > t:
                    conn_rows.append((cp, start + dt.timedelta(seconds=t), start + dt.timedelta(seconds=float(o))))
                t = max(t, o + d)
            if t < window:
                conn_rows.append((cp, start + dt.timedelta(seconds=t), now))
            # faults: ~1 per 3 months; repaired in 1 h – 5 days (a few still open)
            k = rng.poisson(cfg.history_days / 90 * (2.5 if i % 17 == 0 else 1.0))
            for o in np.sort(rng.uniform(0, window, k)):
                opened = start + dt.timedelta(seconds=float(o))
                dur = float(np.clip(rng.lognormal(math.log(6 * 3600), 1.1), 3600, 5 * 86400))
                closed = opened + dt.timedelta(seconds=dur)
                connector = 0 if rng.random() < 0.4 else 1
                code = ("GroundFailure", "PowerMeterFailure", "ConnectorLockFailure", "OtherError",
                        "HighTemperature")[int(rng.integers(5))]
                fault_rows.append((cp, connector, code, opened, None if closed > now else closed))
                status_rows.append((cp, connector, "Faulted", code, opened))
                if closed <= now:
                    status_rows.append((cp, connector, "Available", "NoError", closed))
            for c in range(0, int(pick["connector_count"].iloc[i]) + 1):
                status_rows.append((cp, c, "Available", "NoError", start))
        connections = pd.DataFrame(conn_rows, columns=["charge_point_id", "connected_at", "disconnected_at"])
        faults = pd.DataFrame(fault_rows, columns=["charge_point_id", "connector_id", "error_code", "opened_at",
                                                   "closed_at"])
        status = pd.DataFrame(status_rows, columns=["charge_point_id", "connector_id", "status", "error_code",
                                                    "status_at"]).sort_values("status_at", kind="stable")
        # connectors' current status: Faulted while a fault is open
        open_f = faults[faults["closed_at"].isna()]
        connectors["status"] = "Available"
        connectors["error_code"] = "NoError"
        key = list(zip(connectors["charge_point_id"], connectors["connector_id"]))
        openset = set(zip(open_f["charge_point_id"], open_f["connector_id"]))
        connectors.loc[[k in openset for k in key], ["status", "error_code"]] = ["Faulted", "OtherError"]
        connectors["status_at"] = now
        sessions = self.sessions(pick, start, now)
        return {"charge_points": cps, "connectors": connectors, "connections": connections, "faults": faults,
                "status_history": status, "sessions": sessions}

    def sessions(self, pick: pd.DataFrame, start: dt.datetime, now: dt.datetime) -> pd.DataFrame:
        rng, total = self.rng, self.cfg.sessions
        if total == 0:
            return pd.DataFrame()
        window = (now - start).total_seconds()
        dc = (pick["current_type"] == "DC").to_numpy()
        w = np.where(dc, 3.0, 1.0) * rng.uniform(0.3, 1.7, len(pick))
        per_cp = rng.multinomial(total, w / w.sum())
        cp_idx = np.repeat(np.arange(len(pick)), per_cp)
        n = len(cp_idx)
        conns = pick["connector_count"].to_numpy()[cp_idx].astype(int)
        connector = 1 + (rng.random(n) * conns).astype(int)
        is_dc = dc[cp_idx]
        dur = np.where(is_dc, rng.lognormal(math.log(40 * 60), 0.45, n), rng.lognormal(math.log(4 * 3600), 0.5, n))
        power = pick["power_kw"].to_numpy()[cp_idx]
        df = pd.DataFrame({"cp": cp_idx, "connector": connector, "dur": dur, "u": rng.random(n)})
        # non-overlapping sessions per connector, spread over the window: start_i = u_i × free + busy before
        busy = df.groupby(["cp", "connector"])["dur"].transform("sum")
        scale = np.minimum(1.0, 0.85 * window / busy)
        df["dur"] = df["dur"] * scale
        df = df.sort_values(["cp", "connector", "u"], kind="stable").reset_index(drop=True)
        free = window - df.groupby(["cp", "connector"])["dur"].transform("sum")
        before = df.groupby(["cp", "connector"])["dur"].cumsum() - df["dur"]
        df["start_s"] = df["u"] * free + before
        kwh = np.minimum(power[df["cp"].to_numpy()] * df["dur"].to_numpy() / 3600 * rng.uniform(0.55, 0.9, n),
                         rng.uniform(30, 75, n))
        df["energy_wh"] = np.round(kwh * 1000, 1)
        df["meter_start_wh"] = df.groupby(["cp", "connector"])["energy_wh"].cumsum() - df["energy_wh"] + 1e6
        base = pd.Timestamp(start).tz_convert("UTC")
        started = base + pd.to_timedelta(np.round(df["start_s"].to_numpy()), unit="s")
        stopped = started + pd.to_timedelta(np.round(df["dur"].to_numpy()), unit="s")
        out = pd.DataFrame({
            "charge_point_id": pick["cp"].to_numpy()[df["cp"].to_numpy()],
            "transaction_id": np.arange(1, n + 1).astype(str), "ocpp_version": "1.6",
            "connector_id": df["connector"].to_numpy(),
            "id_tag": np.char.add("DEMO-TAG-", np.char.zfill(rng.integers(1, 3000, n).astype(str), 4)),
            "id_tag_status": "Accepted", "started_at": started, "stopped_at": stopped,
            "meter_start_wh": df["meter_start_wh"].to_numpy(),
            "meter_stop_wh": df["meter_start_wh"].to_numpy() + df["energy_wh"].to_numpy(),
            "energy_wh": df["energy_wh"].to_numpy(), "stop_reason": np.where(rng.random(n) < 0.8, "EVDisconnected",
                                                                             "Local")})
        return out[out["stopped_at"] <= pd.Timestamp(now)].reset_index(drop=True)


_SITE_NAMES = {"public_parking": "公共停车场", "commercial_parking": "商业区停车场", "transport_hub": "交通枢纽",
               "park_and_ride": "换乘停车场", "fuel_station": "加油站", "other": ""}


def generate(cfg: DemoConfig, plan: Plan | None = None, geo: Geography | None = None) -> DemoData:
    """All demo rows as DataFrames (no database)."""
    if plan is None or geo is None:
        plan, geo = default_inputs()
    b = _Builder(cfg, plan, geo)
    b.divisions()
    b.other_places()
    b.build_registry()
    ev, fleets = b.vehicles()
    ocpp = b.ocpp()
    data = DemoData(places=pd.DataFrame(b.places), stations=pd.DataFrame(b.stations), piles=pd.DataFrame(b.piles),
                    ev_counts=ev, fleet_counts=fleets, **ocpp)
    data.summary = {"stations": len(data.stations), "piles": len(data.piles), "places": len(data.places),
                    "ev_counts": len(ev), "chargers": len(data.charge_points), "sessions": len(data.sessions),
                    "faults": len(data.faults)}
    return data


# --- database -----------------------------------------------------------------------------------

def _rows(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    out = []
    for row in df[cols].itertuples(index=False):
        out.append(tuple(None if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT)
                         else (v.item() if isinstance(v, np.generic) else
                               (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v)) for v in row))
    return out


async def clear_demo(conn: asyncpg.Connection) -> dict[str, int]:
    """Delete every demo row; return the number of rows per table."""
    counts = {}
    async with conn.transaction():
        if await conn.fetchval("SELECT to_regclass('session_costs') IS NOT NULL"):
            await conn.execute("DELETE FROM session_costs WHERE session_id IN "
                               "(SELECT id FROM sessions WHERE charge_point_id LIKE 'DEMO-CP-%')")
        for table, where in (("sessions", "charge_point_id LIKE 'DEMO-CP-%'"),
                             ("status_history", "charge_point_id LIKE 'DEMO-CP-%'"),
                             ("faults", "charge_point_id LIKE 'DEMO-CP-%'"),
                             ("charge_points", "id LIKE 'DEMO-CP-%'"),
                             ("piles", "synthetic"), ("stations", "synthetic"), ("places", "synthetic"),
                             ("ev_counts", "synthetic"), ("fleet_counts", "synthetic")):
            status = await conn.execute(f"DELETE FROM {table} WHERE {where}")
            counts[table] = int(status.split()[-1])
    return counts


async def seed_database(conn: asyncpg.Connection, cfg: DemoConfig | None = None, *, force: bool = False,
                        progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Replace the demo rows of the database behind *conn* with freshly generated ones (one transaction)."""
    cfg = cfg or DemoConfig()
    say = progress or (lambda m: None)
    real = await conn.fetchval("SELECT count(*) FROM stations WHERE NOT synthetic")
    if real and not force:
        raise DemoError(f"the registry holds {real} real (non-demo) stations; demo data would mix with them in the "
                        "reports (use --force to seed anyway)")
    say("generating a synthetic Yangquan …")
    data = generate(cfg)
    say(f"writing {data.summary['stations']} stations, {data.summary['piles']} piles, "
        f"{data.summary['sessions']} sessions …")
    async with conn.transaction():
        await clear_demo(conn)
        cols = ["code", "kind", "name", "county", "township_code", "lon", "lat", "a_level", "provincial_resort",
                "parking_spaces"]
        # division places already stored (imported coordinates) stay; demo gives the others coordinates
        existing = {r["code"] for r in await conn.fetch("SELECT code FROM places")}
        places = data.places[~data.places["code"].isin(existing)].assign(synthetic=True)
        await conn.copy_records_to_table("places", records=_rows(places, [*cols, "synthetic"]),
                                         columns=[*cols, "synthetic"])
        cols = ["station_id", "name", "operator", "county", "township_code", "village_code", "address", "lon", "lat",
                "access", "site_type", "parking_spaces", "centralized", "place_code", "synthetic"]
        await conn.copy_records_to_table("stations", records=_rows(data.stations.assign(synthetic=True), cols),
                                         columns=cols)
        if len(data.charge_points):
            cols = ["id", "ocpp_version", "vendor", "model", "station_id", "registered_at", "last_seen"]
            await conn.copy_records_to_table("charge_points", records=_rows(data.charge_points, cols), columns=cols)
        cols = ["pile_id", "station_id", "power_kw", "current_type", "connector_count", "commissioned_on",
                "decommissioned_on", "charge_point_id", "synthetic"]
        await conn.copy_records_to_table("piles", records=_rows(data.piles.assign(synthetic=True), cols), columns=cols)
        cols = ["county", "year", "ev_count", "synthetic"]
        await conn.execute("DELETE FROM ev_counts WHERE (county, year) IN (SELECT * FROM unnest($1::text[], "
                           "$2::smallint[]))", list(data.ev_counts["county"]), list(data.ev_counts["year"]))
        await conn.copy_records_to_table("ev_counts", records=_rows(data.ev_counts.assign(synthetic=True), cols),
                                         columns=cols)
        cols = ["county", "year", "fleet_type", "vehicle_count", "synthetic"]
        await conn.execute("DELETE FROM fleet_counts WHERE (county, year) IN (SELECT * FROM unnest($1::text[], "
                           "$2::smallint[]))", list(data.fleet_counts["county"]), list(data.fleet_counts["year"]))
        await conn.copy_records_to_table("fleet_counts", records=_rows(data.fleet_counts.assign(synthetic=True), cols),
                                         columns=cols)
        if len(data.charge_points):
            cols = ["charge_point_id", "connector_id", "status", "error_code", "status_at"]
            await conn.copy_records_to_table("connectors", records=_rows(data.connectors, cols), columns=cols)
            await conn.copy_records_to_table("status_history", records=_rows(data.status_history, cols), columns=cols)
            await conn.copy_records_to_table(
                "charger_connections", records=[(*r, "demo", "1.6") for r in _rows(
                    data.connections, ["charge_point_id", "connected_at", "disconnected_at"])],
                columns=["charge_point_id", "connected_at", "disconnected_at", "node_id", "ocpp_version"])
            cols = ["charge_point_id", "connector_id", "error_code", "opened_at", "closed_at"]
            await conn.copy_records_to_table("faults", records=_rows(data.faults, cols), columns=cols)
            if len(data.sessions):
                cols = list(data.sessions.columns)
                chunk = 200_000
                for i in range(0, len(data.sessions), chunk):
                    await conn.copy_records_to_table("sessions", records=_rows(data.sessions.iloc[i:i + chunk], cols),
                                                     columns=cols)
                    if len(data.sessions) > chunk:
                        say(f"  sessions {min(i + chunk, len(data.sessions))}/{len(data.sessions)}")
    for table in ("sessions", "status_history", "faults", "charger_connections", "piles", "stations", "places"):
        await conn.execute(f"VACUUM ANALYZE {table}")  # the replaced demo rows leave dead tuples behind
    return data.summary
