"""Target metrics of a plan, computed with pandas from registry frames, as of any date.

Inputs are the frames of :mod:`reporting.contracts` (``stations``, ``piles``, ``places``,
``vehicles``, ``fleets``; ``pile_months`` for :mod:`reporting.operations`), bundled in
:class:`RegistryData`. The database layer aggregates in SQL and hands over exactly those
columns; :func:`RegistryData.build` checks and coerces them.

Definitions (also shown in the reports):

* A pile *counts on date d* when ``commissioned_on <= d`` and it is not decommissioned by d
  (``decommissioned_on`` is NaT or ``> d``). *Public* = its station's ``access == "public"``.
* *New piles in year Y* = commissioned within Y (up to the evaluation date), whatever happened
  later.
* *Vehicles per public pile* = EVs at the end of the target year ÷ public piles counting on the
  date. City EVs = the city row of ``vehicles`` (county = the plan's city code) when present,
  else the sum of the units. A missing year falls back to the latest earlier year, with a note.
* A *place is covered* when ≥ ``min_piles`` matching piles count: villages/communities by the
  station's ``village_code``, townships by ``township_code``; other places by stations linked
  through ``place_code`` or lying within ``coverage_radius_m`` (plan setting, default 500 m).
* *Charging distance* of a place = great-circle distance from its point to the nearest public
  pile counting on the date (any unit), rounded to the metre; reports give max, p95 and the
  worst places. Places without coordinates are excluded and listed in notes.
* *Installation ratio* = piles ÷ parking spaces at the matching sites (stations of the site
  types, or the selected places with their associated stations).

Evaluation of a target due at the end of year Y, as of date A:

* A ≥ 31 Dec Y → value on 31 Dec Y; status ``met`` / ``not_met``;
* A in year Y → value on A, a *projection* to 31 Dec Y (flow metrics: pace so far × the whole
  year; stock metrics: linear from the value on 31 Dec Y−1), status ``on_track`` / ``at_risk``
  (without projection: from the current value);
* A before year Y → value on A, status ``not_due``;
* ``no_data`` when the value cannot be computed, ``not_tracked`` for manual targets.

Every report carries data-quality :class:`Note` s instead of silently skipping rows.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .contracts import conform
from .geography import haversine_m
from .plan import METRICS, Plan, Target
from .vocabulary import DIVISION_PLACE_KINDS, SCENIC_TIERS

__all__ = [
    "Measure",
    "Note",
    "RegistryData",
    "TargetReport",
    "Evaluator",
    "evaluate_targets",
    "coverage_table",
    "distance_table",
    "installation_ratio_table",
    "unit_year_summary",
    "operations_report",
    "TARGET_HEADERS",
]

STATUSES = ("met", "not_met", "on_track", "at_risk", "not_due", "no_data", "not_tracked")
STATUS_LABELS = {
    "met": ("达标", "met"), "not_met": ("未达标", "not met"), "on_track": ("进度正常", "on track"),
    "at_risk": ("存在风险", "at risk"), "not_due": ("未到期", "not due"), "no_data": ("无数据", "no data"),
    "not_tracked": ("人工填报", "not tracked"),
}
WORST_N = 10


# --- inputs & notes ------------------------------------------------------------------------

@dataclass
class RegistryData:
    """The registry frames (see :mod:`reporting.contracts`); build with :meth:`build`."""

    stations: pd.DataFrame
    piles: pd.DataFrame
    places: pd.DataFrame
    vehicles: pd.DataFrame
    fleets: pd.DataFrame
    pile_months: pd.DataFrame

    @classmethod
    def build(cls, stations=None, piles=None, places=None, vehicles=None, fleets=None, pile_months=None) -> "RegistryData":
        """Check and coerce every frame against its contract (None = empty)."""
        return cls(conform("stations", stations), conform("piles", piles), conform("places", places),
                   conform("vehicles", vehicles), conform("fleets", fleets), conform("pile_months", pile_months))


@dataclass(frozen=True)
class Note:
    """A data-quality note. ``examples`` are a few ids; ``count`` how many rows are concerned."""

    code: str
    message_zh: str
    message_en: str
    count: int = 0
    examples: tuple[str, ...] = ()
    severity: str = "warning"

    def __str__(self) -> str:
        ex = f" e.g. {', '.join(self.examples)}" if self.examples else ""
        return f"[{self.code}] {self.message_zh} / {self.message_en} ({self.count}){ex}"

    def as_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message_zh": self.message_zh,
                "message_en": self.message_en, "count": self.count, "examples": list(self.examples)}


@dataclass
class Measure:
    """A metric's value on a date. ``status_hint`` forces a status when value is None."""

    value: float | None
    detail: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    status_hint: str | None = None


def _examples(values: Iterable, n: int = 5) -> tuple[str, ...]:
    return tuple(str(v) for v in list(values)[:n])


def _year_end(year: int) -> pd.Timestamp:
    return pd.Timestamp(year, 12, 31)


def _ts(d: dt.date | pd.Timestamp | str) -> pd.Timestamp:
    return pd.Timestamp(d).normalize()


# --- the evaluator ---------------------------------------------------------------------------

class Evaluator:
    """Computes metric values for one plan and one registry, caching per date.

    ``radius_m`` overrides the plan's ``settings.coverage_radius_m``.
    """

    def __init__(self, plan: Plan, data: RegistryData, *, radius_m: float | None = None):
        self.plan = plan
        self.data = data
        self.radius_m = float(plan.settings.get("coverage_radius_m", 500) if radius_m is None else radius_m)
        self.unit_codes = plan.unit_codes
        self.city_code = plan.city_code
        self.notes: list[Note] = []
        self._cache: dict[Any, Any] = {}
        self._prepare()

    # -- preparation & global data-quality notes ----------------------------------------------

    def _note(self, code: str, zh: str, en: str, ids: Iterable = (), count: int | None = None,
              severity: str = "warning") -> None:
        ids = list(ids)
        self.notes.append(Note(code, zh, en, len(ids) if count is None else count, _examples(ids), severity))

    def _prepare(self) -> None:
        st, pl, places = self.data.stations, self.data.piles, self.data.places
        dup = st["station_id"][st["station_id"].duplicated()]
        if len(dup):
            self._note("duplicate_station", "充电站编号重复，取第一条", "duplicate station ids; the first row is used", dup)
            st = st.drop_duplicates("station_id")
        orphan = pl[~pl["station_id"].isin(st["station_id"])]
        if len(orphan):
            self._note("pile_without_station", "充电桩的充电站不存在，未计入", "piles whose station is unknown are not counted",
                       orphan["pile_id"])
        undated = pl[pl["commissioned_on"].isna()]
        if len(undated):
            self._note("pile_without_date", "充电桩无投运日期，未计入", "piles without commissioning date are not counted",
                       undated["pile_id"])
        joined = pl[pl["station_id"].isin(st["station_id"]) & pl["commissioned_on"].notna()].merge(
            st.drop(columns=["name", "operator", "address"]), on="station_id", how="left")
        no_unit = joined[~joined["county"].isin(self.unit_codes)]
        if len(no_unit):
            self._note("pile_without_county", "充电桩所在充电站无有效县（区），只计入全市",
                       "piles whose station has no valid planning unit count for the city only", no_unit["pile_id"])
        no_xy = st[st["lon"].isna() | st["lat"].isna()]
        if len(no_xy):
            self._note("station_without_coordinates", "充电站无坐标，不参与充电距离和半径覆盖计算",
                       "stations without coordinates are left out of distances and radius coverage",
                       no_xy["station_id"])
        no_t = st[st["township_code"].isna()]
        if len(no_t):
            self._note("station_without_township", "充电站无乡镇（街道）代码，不计入乡镇覆盖",
                       "stations without township code count for no township", no_t["station_id"], severity="info")
        bad_link = st[st["place_code"].notna() & ~st["place_code"].isin(places["code"])]
        if len(bad_link):
            self._note("station_unknown_place", "充电站关联的场所代码不存在", "stations linked to unknown place codes",
                       bad_link["station_id"])
        for kind, grp in places[places["lon"].isna() | places["lat"].isna()].groupby("kind", sort=True):
            self._note(f"place_without_coordinates:{kind}", f"场所（{kind}）无坐标，不参与充电距离计算",
                       f"places of kind {kind} without coordinates are left out of distances", grp["code"])
        self.stations = st.reset_index(drop=True)
        self.joined = joined.reset_index(drop=True)
        self.places = places.drop_duplicates("code").reset_index(drop=True)
        self.assoc = self._associate()

    def _associate(self) -> pd.DataFrame:
        """(station_id, place_code) pairs for non-division places: linked, or within the radius."""
        places = self.places[~self.places["kind"].isin(DIVISION_PLACE_KINDS)]
        linked = self.stations.loc[self.stations["place_code"].isin(places["code"]), ["station_id", "place_code"]]
        pairs = [linked]
        p = places.dropna(subset=["lon", "lat"])
        s = self.stations.dropna(subset=["lon", "lat"])
        if len(p) and len(s) and self.radius_m > 0:
            d = haversine_m(s["lon"].to_numpy()[:, None], s["lat"].to_numpy()[:, None],
                            p["lon"].to_numpy()[None, :], p["lat"].to_numpy()[None, :])
            si, pj = np.nonzero(np.atleast_2d(d) <= self.radius_m)
            pairs.append(pd.DataFrame({"station_id": s["station_id"].to_numpy()[si],
                                       "place_code": p["code"].to_numpy()[pj]}))
        return pd.concat(pairs, ignore_index=True).drop_duplicates().reset_index(drop=True)

    # -- basic selections ------------------------------------------------------------------

    def in_service(self, d: pd.Timestamp) -> pd.DataFrame:
        """Piles (joined with their station) counting on date *d*."""
        key = ("in_service", d)
        if key not in self._cache:
            j = self.joined
            mask = (j["commissioned_on"] <= d) & (j["decommissioned_on"].isna() | (j["decommissioned_on"] > d))
            self._cache[key] = j[mask]
        return self._cache[key]

    def _scope(self, df: pd.DataFrame, county: str | None, col: str = "county") -> pd.DataFrame:
        return df if county is None else df[df[col] == county]

    @staticmethod
    def _filter_piles(df: pd.DataFrame, params: dict, default_access: tuple[str, ...] = ("public",)) -> pd.DataFrame:
        access = tuple(params.get("access", default_access))
        out = df[df["access"].isin(access)]
        if "current_type" in params:
            out = out[out["current_type"] == params["current_type"]]
        if "min_power_kw" in params:
            out = out[out["power_kw"] >= params["min_power_kw"]]
        if "site_types" in params:
            out = out[out["site_type"].isin(params["site_types"])]
        return out

    def select_places(self, place_kind: str | None, place_group: str | None, county: str | None) -> pd.DataFrame:
        """Places of a kind or a plan place group, within *county* (None = the city)."""
        p = self.places
        if place_group is not None:
            group = self.plan.place_groups[place_group]
            mask = pd.Series(False, index=p.index)
            for rule in group.rules:
                m = p["kind"].isin(rule.kinds)
                if rule.townships:
                    m &= p["township_code"].isin(rule.townships)
                if rule.exclude_townships:
                    m &= ~p["township_code"].isin(rule.exclude_townships)
                mask |= m
            p = p[mask]
        else:
            p = p[p["kind"] == place_kind]
        return self._scope(p, county)

    def place_pile_counts(self, places: pd.DataFrame, d: pd.Timestamp, params: dict) -> pd.Series:
        """Matching piles counting on *d* per place (0 when none), indexed like *places*.

        *places* must be rows of :attr:`places` (a selection keeps the index).
        """
        key = ("counts", d, repr(sorted(params.items())))
        if key not in self._cache:
            self._cache[key] = self._count_all(d, params)
        return self._cache[key].loc[places.index]

    def _count_all(self, d: pd.Timestamp, params: dict) -> pd.Series:
        places = self.places
        piles = self._filter_piles(self.in_service(d), params)
        counts = pd.Series(0, index=places["code"].to_numpy(), dtype="int64")
        for kind, col in (("township", "township_code"), ("village", "village_code"), ("community", "village_code")):
            codes = places.loc[places["kind"] == kind, "code"]
            if len(codes):
                c = piles[piles[col].isin(codes)].groupby(col).size()
                counts.loc[c.index] = c.to_numpy()
        other = places.loc[~places["kind"].isin(DIVISION_PLACE_KINDS), "code"]
        if len(other):
            a = self.assoc[self.assoc["place_code"].isin(other)]
            c = piles[["station_id"]].merge(a, on="station_id").groupby("place_code").size()
            counts.loc[c.index] = c.to_numpy()
        return pd.Series(counts.to_numpy(), index=places.index)

    def nearest_public_m(self, places: pd.DataFrame, d: pd.Timestamp) -> pd.Series:
        """Distance (m, rounded) from each place with coordinates to the nearest public pile on *d*.

        Indexed like the rows of *places* that have coordinates (NaN when no public pile has
        coordinates). *places* must be rows of :attr:`places`.
        """
        key = ("distances", d)
        if key not in self._cache:
            self._cache[key] = self._distances_all(d)
        all_d = self._cache[key]
        return all_d.loc[places.index[places.index.isin(all_d.index)]]

    def _distances_all(self, d: pd.Timestamp) -> pd.Series:
        pts = self.places.dropna(subset=["lon", "lat"])
        piles = self.in_service(d)
        piles = piles[(piles["access"] == "public") & piles["lon"].notna() & piles["lat"].notna()]
        if pts.empty or piles.empty:
            return pd.Series(np.nan, index=pts.index)
        sites = piles[["lon", "lat"]].drop_duplicates().to_numpy()
        out = np.empty(len(pts))
        plon, plat = pts["lon"].to_numpy(), pts["lat"].to_numpy()
        step = max(1, 2_000_000 // len(sites))
        for i in range(0, len(pts), step):
            dist = haversine_m(plon[i:i + step, None], plat[i:i + step, None], sites[None, :, 0], sites[None, :, 1])
            out[i:i + step] = np.atleast_2d(dist).min(axis=1)
        return pd.Series(np.round(out), index=pts.index)

    def ev_count(self, county: str | None, year: int, frame: str = "vehicles",
                 fleet_types: Iterable[str] | None = None) -> tuple[float | None, list[str]]:
        """EVs (or fleet vehicles) at the end of *year* for a unit or the city, with notes."""
        df = getattr(self.data, frame)
        if fleet_types is not None:
            df = df[df["fleet_type"].isin(list(fleet_types))]
        count_col = "ev_count" if frame == "vehicles" else "vehicle_count"
        notes = []
        if county is None:
            city = df[df["county"] == self.city_code]
            units = df[df["county"].isin(self.unit_codes)]
            src = city if len(city[city["year"] <= year]) else units
        else:
            src = df[df["county"] == county]
        src = src[src["year"] <= year]
        if src.empty:
            return None, [f"无{year}年及以前的车辆数据 no {frame} data for {year} or earlier"]
        used = int(src["year"].max())
        if used != year:
            notes.append(f"{year}年车辆数据缺失，使用{used}年 {frame} for {year} missing; {used} used")
        rows = src[src["year"] == used]
        if county is None and not (rows["county"] == self.city_code).any():
            missing = sorted(set(self.unit_codes) - set(rows["county"]))
            if missing:
                notes.append(f"全市合计缺少 {missing} city total lacks units {missing}")
        return float(rows[count_col].sum()), notes

    # -- metrics ---------------------------------------------------------------------------

    def measure(self, t: Target, d: pd.Timestamp) -> Measure:
        """Value of target *t*'s metric for its scope on date *d* (cached)."""
        key = ("measure", t.metric, t.county, t.place_kind, t.place_group, repr(sorted(t.params.items())),
               t.year, d)
        if key not in self._cache:
            self._cache[key] = getattr(self, f"_m_{t.metric}")(t, d)
        return self._cache[key]

    def _m_public_piles(self, t: Target, d) -> Measure:
        p = self._scope(self.in_service(d), t.county)
        return Measure(float((p["access"] == "public").sum()))

    def _m_new_public_piles(self, t: Target, d) -> Measure:
        start = pd.Timestamp(int(t.params.get("since_year", t.year)), 1, 1)
        j = self._scope(self.joined, t.county)
        n = ((j["access"] == "public") & (j["commissioned_on"] >= start) & (j["commissioned_on"] <= d)).sum()
        return Measure(float(n), {"from": start.date().isoformat()})

    def _m_vehicles_per_public_pile(self, t: Target, d) -> Measure:
        ev, notes = self.ev_count(t.county, t.year)
        piles = self._m_public_piles(t, d).value
        detail = {"ev_count": ev, "public_piles": piles}
        if ev is None:
            return Measure(None, detail, notes)
        if piles == 0:
            return Measure(None, detail, notes + ["无公共充电桩 no public piles"], "not_met" if ev > 0 else None)
        return Measure(ev / piles, detail, notes)

    def _coverage(self, t: Target, d) -> tuple[int, int, pd.DataFrame]:
        places = self.select_places(t.place_kind, t.place_group, t.county)
        counts = self.place_pile_counts(places, d, dict(t.params))
        covered = counts >= int(t.params.get("min_piles", 1))
        return int(covered.sum()), len(places), places[~covered]

    def _coverage_detail(self, t: Target, covered: int, total: int, uncovered: pd.DataFrame) -> tuple[dict, list[str]]:
        notes = []
        if t.metric == "places_covered" and total < t.threshold:
            notes.append(f"仅登记{total}个场所，目标{int(t.threshold)}个 only {total} places registered; "
                         f"the target counts {int(t.threshold)}")
        return {"covered": covered, "places": total, "uncovered": _examples(uncovered["code"], WORST_N)}, notes

    def _m_places_covered(self, t: Target, d) -> Measure:
        covered, total, unc = self._coverage(t, d)
        detail, notes = self._coverage_detail(t, covered, total, unc)
        return Measure(float(covered), detail, notes)

    def _m_places_covered_share(self, t: Target, d) -> Measure:
        covered, total, unc = self._coverage(t, d)
        detail, notes = self._coverage_detail(t, covered, total, unc)
        if total == 0:
            return Measure(None, detail, notes + ["无此类场所 no such places registered"])
        return Measure(covered / total, detail, notes)

    def _m_mean_public_piles_per_place(self, t: Target, d) -> Measure:
        places = self.select_places(t.place_kind, t.place_group, t.county)
        if places.empty:
            return Measure(None, {"places": 0}, ["无此类场所 no such places registered"])
        counts = self.place_pile_counts(places, d, {})
        return Measure(float(counts.sum()) / len(places), {"places": len(places), "piles": int(counts.sum()),
                                                           "min": int(counts.min())})

    def _m_charging_distance_max_km(self, t: Target, d) -> Measure:
        places = self.select_places(t.place_kind, t.place_group, t.county)
        stats = self.distance_stats(places, d)
        notes = []
        if stats["places_without_coordinates"]:
            notes.append(f"{stats['places_without_coordinates']}个场所无坐标，未计算 places without coordinates "
                         f"left out")
        if stats["places"] == 0:
            return Measure(None, stats, notes + ["无此类场所 no such places registered"])
        if stats["max_km"] is None:
            hint = "not_met" if stats["places_with_coordinates"] and stats["no_public_piles"] else None
            return Measure(None, stats, notes + (["无有坐标的公共充电桩 no public piles with coordinates"] if hint else
                                                 ["无有坐标的场所 no places with coordinates"]), hint)
        return Measure(stats["max_km"], stats, notes)

    def distance_stats(self, places: pd.DataFrame, d: pd.Timestamp) -> dict:
        """max, p95 and the worst places of the charging distance of *places* on *d*."""
        dist = self.nearest_public_m(places, d)
        with_xy = places.loc[dist.index]
        finite = dist.dropna()
        worst = finite.sort_values(ascending=False).head(WORST_N)
        return {
            "places": len(places), "places_with_coordinates": len(with_xy),
            "places_without_coordinates": len(places) - len(with_xy),
            "no_public_piles": bool(len(with_xy) and finite.empty),
            "max_km": None if finite.empty else float(finite.max()) / 1000,
            "p95_km": None if finite.empty else float(np.percentile(finite, 95)) / 1000,
            "worst": [{"code": places.at[i, "code"], "name": places.at[i, "name"], "km": float(v) / 1000}
                      for i, v in worst.items()],
        }

    def _centralized(self, t: Target, d) -> pd.DataFrame:
        p = self._scope(self.in_service(d), t.county)
        return p[p["centralized"] & (p["access"] == "public")]

    def _m_centralized_stations(self, t: Target, d) -> Measure:
        return Measure(float(self._centralized(t, d)["station_id"].nunique()))

    def _m_centralized_station_public_piles(self, t: Target, d) -> Measure:
        return Measure(float(len(self._centralized(t, d))))

    def _m_units_with_centralized_station(self, t: Target, d) -> Measure:
        units = sorted(set(self._centralized(t, d)["county"]) & set(self.unit_codes))
        return Measure(float(len(units)), {"units": units})

    def _m_new_stations(self, t: Target, d) -> Measure:
        j = self._filter_piles(self._scope(self.joined, t.county), dict(t.params),
                               default_access=("public", "dedicated", "private"))
        first = j.groupby("station_id")["commissioned_on"].min()
        new = first[(first >= pd.Timestamp(t.year, 1, 1)) & (first <= d)]
        return Measure(float(len(new)), {"stations": _examples(new.index, WORST_N)})

    def _m_installation_ratio(self, t: Target, d) -> Measure:
        params = dict(t.params)
        if params.get("basis", "stations") == "stations":
            piles = self._filter_piles(self._scope(self.in_service(d), t.county), {
                "site_types": params["site_types"], "access": params.get("access", ("public", "dedicated", "private"))})
            per_station = piles.groupby("station_id").size()
            st = self.stations.set_index("station_id").loc[per_station.index]
            known = st["parking_spaces"].notna() & (st["parking_spaces"] > 0)
            notes = []
            if (~known).any():
                notes.append(f"{int((~known).sum())}个站点无车位数，未计入 stations without parking spaces left out: "
                             f"{', '.join(_examples(st.index[~known]))}")
            spaces = float(st.loc[known, "parking_spaces"].sum())
            n = float(per_station[known.to_numpy()].sum())
            detail = {"piles": n, "parking_spaces": spaces, "sites": int(known.sum())}
        else:
            places = self.select_places(t.place_kind, t.place_group, t.county)
            tier = params.get("scenic_tier")
            if tier is not None:
                places = places[_scenic_tier(places) == tier]
            known = places["parking_spaces"].notna() & (places["parking_spaces"] > 0)
            notes = []
            if (~known).any():
                notes.append(f"{int((~known).sum())}个场所无车位数，未计入 places without parking spaces left out: "
                             f"{', '.join(_examples(places.loc[~known, 'code']))}")
            counts = self.place_pile_counts(places[known], d, {"access": params.get("access", ("public",))})
            spaces = float(places.loc[known, "parking_spaces"].sum())
            n = float(counts.sum())
            detail = {"piles": n, "parking_spaces": spaces, "sites": int(known.sum())}
        if spaces == 0:
            return Measure(None, detail, notes + ["无有车位数的场所 no sites with parking spaces"])
        return Measure(n / spaces, detail, notes)

    def _m_fleet_piles_per_vehicle(self, t: Target, d) -> Measure:
        params = dict(t.params)
        piles = self._filter_piles(self._scope(self.in_service(d), t.county), {
            "site_types": params["site_types"], "access": params.get("access", ("public", "dedicated", "private"))})
        vehicles, notes = self.ev_count(t.county, t.year, "fleets", params["fleet_types"])
        detail = {"piles": len(piles), "vehicles": vehicles}
        if not vehicles:
            return Measure(None, detail, notes + ([] if vehicles is None else ["车辆数为0 no vehicles"]))
        return Measure(len(piles) / vehicles, detail, notes)

    def _m_manual(self, t: Target, d) -> Measure:
        return Measure(None, {"measure": t.params.get("measure", "")},
                       ["登记系统不跟踪，需人工填报 not tracked in the registry; report manually"], "not_tracked")

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self, t: Target, as_of: pd.Timestamp) -> dict:
        """One result row for target *t* as of *as_of* (see the module docstring)."""
        due = _year_end(t.year)
        d = min(as_of, due)
        m = self.measure(t, d)
        met = t.compare(m.value)
        projection = None
        if m.value is None:
            status = m.status_hint or "no_data"
            if status == "not_met" and as_of < due:
                status = "not_due" if as_of.year < t.year else "at_risk"
        elif as_of >= due:
            status = "met" if met else "not_met"
        elif as_of.year < t.year:
            status = "not_due"
        else:
            projection = self._project(t, as_of, m)
            ok = met if projection is None else t.compare(projection)
            status = "on_track" if ok else "at_risk"
        unit = self.plan.unit(t.county) if t.county else None
        return {
            "target_id": t.id, "template_id": t.template_id, "year": t.year, "scope": t.scope,
            "county": t.county or self.city_code, "county_name": unit.name if unit else self.plan.city_name,
            "metric": t.metric, "place": t.place_label, "params": dict(t.params), "comparator": t.comparator,
            "threshold": t.threshold, "unit": t.unit, "strength": t.strength, "value": m.value,
            "evaluated_on": d.date(), "met": met, "projection": projection, "status": status,
            "status_zh": STATUS_LABELS[status][0], "label_zh": t.label_zh, "label_en": t.label_en,
            "source": t.source, "quote": t.quote, "interpretation": t.interpretation,
            "detail": m.detail, "notes": list(m.notes),
        }

    def _project(self, t: Target, as_of: pd.Timestamp, m: Measure) -> float | None:
        kind = METRICS[t.metric].projection
        start = pd.Timestamp(t.year, 1, 1)
        days = 366 if calendar.isleap(t.year) else 365
        factor = days / ((as_of - start).days + 1)
        if kind not in ("flow", "stock"):
            return None
        if t.metric == "vehicles_per_public_pile":
            ev, piles_now = m.detail["ev_count"], m.detail["public_piles"]
            piles_before = self._m_public_piles(t, start - pd.Timedelta(days=1)).value
            piles_proj = piles_before + (piles_now - piles_before) * factor
            return ev / piles_proj if piles_proj > 0 else None
        # flow metrics count 0 on 31 Dec Y-1 (unless cumulative since an earlier year), so one
        # formula serves both: the value at the start of the year plus this year's pace.
        before = self.measure(t, start - pd.Timedelta(days=1)).value
        if before is None:
            return None
        return before + (m.value - before) * factor


def _scenic_tier(places: pd.DataFrame) -> pd.Series:
    """Tier of each scenic spot: 4a_or_resort, a_1_3 or below_a (empty A-level = below A)."""
    level = places["a_level"].fillna(0).astype(int)
    tier = np.where(places["provincial_resort"] | (level >= 4), "4a_or_resort",
                    np.where(level >= 1, "a_1_3", "below_a"))
    assert set(tier) <= set(SCENIC_TIERS)
    return pd.Series(tier, index=places.index)


# --- reports -------------------------------------------------------------------------------

@dataclass
class TargetReport:
    """Result of :func:`evaluate_targets`: one row per target, plus the data-quality notes."""

    plan: Plan
    as_of: dt.date
    results: pd.DataFrame
    notes: list[Note]

    def interpretations(self) -> pd.DataFrame:
        """Distinct interpretation notes by template target (for the report's appendix)."""
        r = self.results[self.results["interpretation"] != ""]
        return r.drop_duplicates("template_id")[["template_id", "label_zh", "label_en", "quote", "interpretation"]]


def evaluate_targets(plan: Plan, data: RegistryData, as_of: dt.date | str, *, radius_m: float | None = None,
                     evaluator: Evaluator | None = None) -> TargetReport:
    """Evaluate every target of *plan* on *data* as of *as_of*."""
    ev = evaluator or Evaluator(plan, data, radius_m=radius_m)
    when = _ts(as_of)
    rows = [ev.evaluate(t, when) for t in plan.targets]
    results = pd.DataFrame(rows)
    for col in ("value", "projection", "met"):  # keep None (not NaN) for unknown values
        results[col] = pd.Series([r[col] for r in rows], index=results.index, dtype=object)
    return TargetReport(plan, when.date(), results, list(ev.notes))


def unit_year_summary(report: TargetReport, evaluator: Evaluator) -> list[dict]:
    """Per unit (and the city) and plan year: the issue's JSON fields plus a ``targets`` list.

    Fields: county, county_name, year, evaluated_on, public_piles, new_public_piles,
    planned_new_public_piles, ev_count, vehicles_per_public_pile, vehicles_per_pile_all
    (all piles incl. dedicated and private), target_vehicles_per_pile, targets (target_id,
    metric, label_zh, value, comparator, threshold, status). Years after the as-of year have
    null measured values.
    """
    plan, res = report.plan, report.results
    as_of = _ts(report.as_of)
    out = []
    for county in [None, *plan.unit_codes]:
        code = county or plan.city_code
        for year in plan.years:
            d = min(as_of, _year_end(year))
            due = as_of.year >= year
            rows = res[(res["county"] == code) & (res["year"] == year)]
            planned = rows[(rows["metric"] == "new_public_piles") & rows["params"].map(lambda p: "since_year" not in p)]
            vpp = rows[rows["metric"] == "vehicles_per_public_pile"]
            inserv = evaluator._scope(evaluator.in_service(d), county)
            ev, _ = evaluator.ev_count(county, year)
            public = int((inserv["access"] == "public").sum())
            j = evaluator._scope(evaluator.joined, county)
            new = int(((j["access"] == "public") & (j["commissioned_on"] >= pd.Timestamp(year, 1, 1))
                       & (j["commissioned_on"] <= d)).sum())
            unit = plan.unit(county) if county else None
            out.append({
                "county": code, "county_name": unit.name if unit else plan.city_name, "year": year,
                "evaluated_on": d.date().isoformat() if due else None,
                "public_piles": public if due else None,
                "new_public_piles": new if due else None,
                "planned_new_public_piles": float(planned["threshold"].iloc[0]) if len(planned) else None,
                "ev_count": ev if due else None,
                "vehicles_per_public_pile": (ev / public) if due and ev is not None and public else None,
                "vehicles_per_pile_all": (ev / len(inserv)) if due and ev is not None and len(inserv) else None,
                "target_vehicles_per_pile": float(vpp["threshold"].iloc[0]) if len(vpp) else None,
                "targets": [
                    {"target_id": r.target_id, "metric": r.metric, "label_zh": r.label_zh, "value": _json_num(r.value),
                     "comparator": r.comparator, "threshold": r.threshold, "status": r.status}
                    for r in rows.itertuples()
                ],
            })
    return out


def _json_num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def coverage_table(evaluator: Evaluator, as_of: dt.date | str, kinds: Iterable[str] | None = None,
                   access: Iterable[str] = ("public",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage per place and summary per unit × kind (plus city rows) on *as_of*.

    Per place: code, kind, name, county, public_piles, dc_public_piles, covered, distance_km.
    Summary: county, kind, places, covered, share.
    """
    d = _ts(as_of)
    places = evaluator.places if kinds is None else evaluator.places[evaluator.places["kind"].isin(list(kinds))]
    params = {"access": list(access)}
    out = places[["code", "kind", "name", "county"]].copy()
    out["public_piles"] = evaluator.place_pile_counts(places, d, params)
    out["dc_public_piles"] = evaluator.place_pile_counts(places, d, {**params, "current_type": "DC"})
    out["covered"] = out["public_piles"] >= 1
    out["distance_km"] = evaluator.nearest_public_m(places, d) / 1000
    out = out.reset_index(drop=True)
    by_unit = out.groupby(["county", "kind"]).agg(places=("code", "size"), covered=("covered", "sum")).reset_index()
    city = out.groupby("kind").agg(places=("code", "size"), covered=("covered", "sum")).reset_index()
    city.insert(0, "county", evaluator.city_code)
    summary = pd.concat([city, by_unit], ignore_index=True)
    summary["share"] = summary["covered"] / summary["places"]
    return out, summary


def distance_table(evaluator: Evaluator, as_of: dt.date | str,
                   selections: Iterable[tuple[str | None, str | None]] = (("village", None), ("township", None)),
                   ) -> pd.DataFrame:
    """Charging distance per unit (and city) for each (place_kind, place_group) selection.

    Columns: county, place, places, places_with_coordinates, places_without_coordinates,
    max_km, p95_km, worst (list of {code, name, km}).
    """
    d = _ts(as_of)
    rows = []
    for kind, group in selections:
        for county in [None, *evaluator.unit_codes]:
            places = evaluator.select_places(kind, group, county)
            stats = evaluator.distance_stats(places, d)
            stats.pop("no_public_piles")
            rows.append({"county": county or evaluator.city_code, "place": group or kind, **stats})
    return pd.DataFrame(rows)


def installation_ratio_table(evaluator: Evaluator, as_of: dt.date | str) -> pd.DataFrame:
    """Installation ratio per site type and unit (plus city): piles, parking_spaces, ratio.

    Counts piles of any access at stations with a recorded number of parking spaces.
    """
    d = _ts(as_of)
    p = evaluator.in_service(d)
    per_station = p.groupby("station_id").size().rename("piles").reset_index()
    st = evaluator.stations.merge(per_station, on="station_id")
    st = st[st["parking_spaces"].notna() & (st["parking_spaces"] > 0)]
    by_unit = st.groupby(["county", "site_type"]).agg(piles=("piles", "sum"), parking_spaces=("parking_spaces", "sum"))
    city = st.groupby("site_type").agg(piles=("piles", "sum"), parking_spaces=("parking_spaces", "sum"))
    city = city.assign(county=evaluator.city_code).set_index("county", append=True).reorder_levels([1, 0])
    out = pd.concat([city, by_unit]).reset_index()
    out["ratio"] = out["piles"] / out["parking_spaces"].astype(float)
    return out


#: Chinese (English) report headers of :attr:`TargetReport.results`.
TARGET_HEADERS = {
    "target_id": "指标编号 target", "year": "年度 year", "county_name": "县（区） unit", "label_zh": "指标",
    "label_en": "target", "value": "实际值 measured", "comparator": "比较 comparator", "threshold": "目标值 threshold",
    "unit": "单位 unit", "projection": "年末预测 projection", "status_zh": "状态", "status": "status",
    "strength": "性质 strength", "evaluated_on": "统计日期 as of", "quote": "原文 source sentence",
    "interpretation": "口径说明 interpretation",
}


def operations_report(data: RegistryData, start: dt.date, end: dt.date, plan: Plan, as_of: dt.date | None = None):
    """Operations per unit and month for *plan*'s units; see :func:`reporting.operations.operations_report`."""
    from .operations import operations_report as _ops

    return _ops(data, start, end, city_code=plan.city_code, unit_codes=plan.unit_codes, as_of=as_of)
