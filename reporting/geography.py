"""Reference geography: divisions, planning units, polygons and distances.

Loads the shipped reference files (``reporting/data``: townships CSV, villages CSV, county
polygons GeoJSON) and the planning-zone mapping (``gaoxin_mapping.toml``), and answers:

* which *planning unit* (the plan's county-level unit: a statistical county, or a planning
  zone such as 高新区) a county/township/village code belongs to;
* which planning unit a user's text means (code, Chinese name, short name or alias);
* whether a WGS-84 point lies inside a planning unit's polygon;
* great-circle distances in metres (:func:`haversine_m`).

Nothing here is specific to one city: another city's files in another folder load the same way
(:func:`load_geography` with ``data_dir``). File names are found by pattern
(``*_townships.csv``, ``*_villages.csv``, ``*_counties.geojson``) unless given.
"""

from __future__ import annotations

import json
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point, shape
from shapely.ops import nearest_points, unary_union

__all__ = [
    "DATA_DIR",
    "EARTH_RADIUS_M",
    "Geography",
    "GeographyError",
    "PlanningUnit",
    "Zone",
    "haversine_m",
    "load_geography",
    "normalise_name",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ZONES_FILE = "gaoxin_mapping.toml"

#: Mean Earth radius (IUGG), metres. Distances are great-circle on this sphere.
EARTH_RADIUS_M = 6_371_008.8

#: Township-level kinds, from the name's ending.
TOWNSHIP_KINDS = {"街道": "street", "镇": "town", "乡": "township"}


class GeographyError(ValueError):
    """A reference file or the zone mapping is missing or inconsistent."""


def haversine_m(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres between points given in degrees (WGS-84 / CGCS2000).

    Accepts scalars or NumPy-broadcastable arrays; returns a float or an ndarray.
    """
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if np.ndim(d) == 0 else d


def normalise_name(text: object) -> str:
    """Key for matching user text: NFKC, whitespace removed, lower case."""
    return "".join(unicodedata.normalize("NFKC", str(text)).split()).lower()


@dataclass(frozen=True)
class Zone:
    """A planning zone carved out of statistical units (e.g. 高新区). See ``gaoxin_mapping.toml``."""

    code: str
    name: str
    name_en: str = ""
    aliases: tuple[str, ...] = ()
    townships: tuple[str, ...] = ()
    villages: tuple[str, ...] = ()
    exclude_villages: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanningUnit:
    """A county-level unit of the plan.

    ``kind`` is ``"county"`` (a statistical county) or ``"zone"``. ``polygon_counties`` are the
    statistical counties whose polygons together contain the unit.
    """

    code: str
    name: str
    name_en: str
    kind: str
    polygon_counties: tuple[str, ...]
    aliases: tuple[str, ...] = field(default=())


def _read_codes_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise GeographyError(f"reference file not found: {path}")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise GeographyError(f"{path.name}: missing columns {missing}")
    return df[columns].apply(lambda s: s.str.strip())


def _township_kind(name: str) -> str:
    for suffix, kind in TOWNSHIP_KINDS.items():
        if name.endswith(suffix):
            return kind
    return "other"


def _village_kind(name: str) -> str:
    return "village" if name.endswith("村委会") or name.endswith("村民委员会") else "community"


def _find(data_dir: Path, pattern: str) -> Path:
    hits = sorted(data_dir.glob(pattern))
    if len(hits) != 1:
        raise GeographyError(f"expected exactly one {pattern} in {data_dir}, found {[h.name for h in hits]}")
    return hits[0]


def _load_zones(path: Path | None) -> list[Zone]:
    if path is None or not path.exists():
        return []
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    zones = []
    for i, z in enumerate(doc.get("zones", [])):
        if not isinstance(z, dict) or not z.get("code") or not z.get("name"):
            raise GeographyError(f"{path.name}: zones[{i}] needs 'code' and 'name'")
        zones.append(
            Zone(
                code=str(z["code"]),
                name=str(z["name"]),
                name_en=str(z.get("name_en", "")),
                aliases=tuple(str(a) for a in z.get("aliases", [])),
                townships=tuple(str(t) for t in z.get("townships", [])),
                villages=tuple(str(v) for v in z.get("villages", [])),
                exclude_villages=tuple(str(v) for v in z.get("exclude_villages", [])),
            )
        )
    return zones


class Geography:
    """Reference divisions of one city plus its planning units.

    Attributes (DataFrames have ``str`` columns):

    * ``counties``: ``code, name`` — statistical counties (from the GeoJSON).
    * ``townships``: ``code, name, county_code, kind, unit_code`` — ``kind`` is street / town /
      township / other; ``unit_code`` the planning unit.
    * ``villages``: ``code, name, township_code, county_code, kind, unit_code`` — ``kind`` is
      ``village`` (村民委员会, administrative village) or ``community`` (居民委员会).
    * ``units``: planning units by code, counties first (by code), then zones.
    * ``city_code``: the prefecture code (county code's first four digits + ``00``).
    """

    def __init__(
        self,
        townships: pd.DataFrame,
        villages: pd.DataFrame,
        county_geoms: dict[str, tuple[str, object]],
        zones: list[Zone],
    ):
        self.counties = pd.DataFrame(
            [(c, n) for c, (n, _) in sorted(county_geoms.items())], columns=["code", "name"]
        )
        self._geoms = {c: g for c, (_, g) in county_geoms.items()}
        county_codes = set(self._geoms)
        prefixes = {c[:4] for c in county_codes}
        self.city_code = (prefixes.pop() + "00") if len(prefixes) == 1 else ""

        t = townships.copy()
        bad = sorted(set(t["county_code"]) - county_codes)
        if bad:
            raise GeographyError(f"townships refer to counties without polygon: {bad}")
        t["kind"] = t["name"].map(_township_kind)
        v = villages.copy()
        bad = sorted(set(v["township_code"]) - set(t["code"]))
        if bad:
            raise GeographyError(f"villages refer to unknown townships: {bad[:5]}")
        v["kind"] = v["name"].map(_village_kind)

        t["unit_code"] = t["county_code"]
        v["unit_code"] = v["county_code"]
        units: dict[str, PlanningUnit] = {}
        for code, name in self.counties.itertuples(index=False):
            units[code] = PlanningUnit(code, name, "", "county", (code,), _short_aliases(name))
        for z in zones:
            if z.code in units:
                raise GeographyError(f"zone code {z.code!r} collides with a county code")
            unknown_t = sorted(set(z.townships) - set(t["code"]))
            unknown_v = sorted((set(z.villages) | set(z.exclude_villages)) - set(v["code"]))
            if unknown_t or unknown_v:
                raise GeographyError(f"zone {z.code}: unknown township codes {unknown_t}, village codes {unknown_v}")
            t.loc[t["code"].isin(z.townships), "unit_code"] = z.code
            in_t = v["township_code"].isin(z.townships) & ~v["code"].isin(z.exclude_villages)
            v.loc[in_t | v["code"].isin(z.villages), "unit_code"] = z.code
            member_counties = set(t.loc[t["code"].isin(z.townships), "county_code"]) | set(
                v.loc[v["code"].isin(z.villages), "county_code"]
            )
            if not member_counties:
                raise GeographyError(f"zone {z.code} has no townships or villages")
            units[z.code] = PlanningUnit(
                z.code, z.name, z.name_en, "zone", tuple(sorted(member_counties)),
                tuple(z.aliases) + _short_aliases(z.name),
            )
        self.townships = t.reset_index(drop=True)
        self.villages = v.reset_index(drop=True)
        self.units = units
        self.zones = list(zones)
        self._alias = self._build_alias_index()

    # -- lookups -----------------------------------------------------------------------------

    def _build_alias_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for u in self.units.values():
            for key in (u.code, u.name, u.name_en, *u.aliases):
                if key:
                    index.setdefault(normalise_name(key), u.code)
        return index

    def resolve_unit(self, value: object) -> str | None:
        """The planning-unit code meant by *value* (code, name, short name or alias), or None."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        return self._alias.get(normalise_name(value))

    def unit_name(self, code: str) -> str:
        u = self.units.get(code)
        return u.name if u else code

    @cached_property
    def _township_unit(self) -> dict[str, str]:
        return dict(zip(self.townships["code"], self.townships["unit_code"]))

    @cached_property
    def _village_row(self) -> dict[str, tuple[str, str]]:
        return dict(zip(self.villages["code"], zip(self.villages["township_code"], self.villages["unit_code"])))

    def township_unit(self, township_code: str) -> str | None:
        """Planning unit of a township code, or None when the code is unknown."""
        return self._township_unit.get(str(township_code))

    def village_info(self, village_code: str) -> tuple[str, str] | None:
        """``(township_code, unit_code)`` of a village-level code, or None when unknown."""
        return self._village_row.get(str(village_code))

    # -- polygons ----------------------------------------------------------------------------

    @cached_property
    def _unit_geoms(self) -> dict[str, object]:
        return {c: unary_union([self._geoms[k] for k in u.polygon_counties]) for c, u in self.units.items()}

    def unit_polygon(self, unit_code: str):
        """The shapely geometry containing the planning unit (a zone gets its counties' union)."""
        return self._unit_geoms[unit_code]

    def contains(self, unit_code: str, lon, lat, tolerance_m: float = 0.0):
        """Whether point(s) lie inside the unit's polygon (boundary counts as inside).

        With ``tolerance_m`` > 0, points at most that far outside count as inside. Scalars give
        a bool, arrays an ndarray of bool.
        """
        geom = self._unit_geoms[unit_code]
        lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        inside = np.asarray(shapely.intersects_xy(geom, lon_a, lat_a))
        if tolerance_m > 0:
            outside = np.flatnonzero(~inside.ravel())
            flat = inside.ravel().copy()
            for i in outside:
                flat[i] = self.distance_outside_m(unit_code, lon_a.ravel()[i], lat_a.ravel()[i]) <= tolerance_m
            inside = flat.reshape(inside.shape)
        return bool(inside) if inside.ndim == 0 else inside

    def distance_outside_m(self, unit_code: str, lon: float, lat: float) -> float:
        """Great-circle metres from a point to the unit's polygon (0 when inside)."""
        geom = self._unit_geoms[unit_code]
        p = Point(float(lon), float(lat))
        if geom.intersects(p):
            return 0.0
        q = nearest_points(geom, p)[0]
        return haversine_m(lon, lat, q.x, q.y)

    def units_containing(self, lon: float, lat: float) -> list[str]:
        """Codes of the units whose polygon contains the point (a zone overlaps its county)."""
        return [c for c, g in self._unit_geoms.items() if g.intersects(Point(float(lon), float(lat)))]

    # -- places --------------------------------------------------------------------------------

    def reference_places(self) -> pd.DataFrame:
        """Township- and village-level units as rows of the *places* contract (no coordinates).

        Columns: ``code, kind, name, county, township_code, lon, lat, a_level,
        provincial_resort, parking_spaces`` with ``kind`` in township / village / community
        and ``county`` the planning unit. See :mod:`reporting.metrics` for the contract.
        """
        t = pd.DataFrame(
            {"code": self.townships["code"], "kind": "township", "name": self.townships["name"],
             "county": self.townships["unit_code"], "township_code": self.townships["code"]}
        )
        v = pd.DataFrame(
            {"code": self.villages["code"], "kind": self.villages["kind"], "name": self.villages["name"],
             "county": self.villages["unit_code"], "township_code": self.villages["township_code"]}
        )
        out = pd.concat([t, v], ignore_index=True)
        out["lon"] = np.nan
        out["lat"] = np.nan
        out["a_level"] = pd.array([pd.NA] * len(out), dtype="Int64")
        out["provincial_resort"] = False
        out["parking_spaces"] = pd.array([pd.NA] * len(out), dtype="Int64")
        return out


def _short_aliases(name: str) -> tuple[str, ...]:
    """``平定县`` → ``平定``; names that would shrink to one character keep only themselves."""
    for suffix in ("县", "区", "市"):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return (name[: -len(suffix)],)
    return ()


def load_geography(
    data_dir: Path | str | None = None,
    *,
    townships_csv: Path | str | None = None,
    villages_csv: Path | str | None = None,
    counties_geojson: Path | str | None = None,
    zones_toml: Path | str | None = None,
) -> Geography:
    """Load a city's reference geography (default: the shipped Yangquan files).

    ``zones_toml`` defaults to ``<data_dir>/gaoxin_mapping.toml`` when present; pass another
    file to change the 高新区 mapping (or a city's zones) without touching code.
    """
    d = Path(data_dir) if data_dir else DATA_DIR
    t_path = Path(townships_csv) if townships_csv else _find(d, "*_townships.csv")
    v_path = Path(villages_csv) if villages_csv else _find(d, "*_villages.csv")
    g_path = Path(counties_geojson) if counties_geojson else _find(d, "*_counties.geojson")
    z_path = Path(zones_toml) if zones_toml else (d / DEFAULT_ZONES_FILE)
    if zones_toml and not z_path.exists():
        raise GeographyError(f"zone mapping not found: {z_path}")

    townships = _read_codes_csv(t_path, ["code", "name", "county_code"])
    villages = _read_codes_csv(v_path, ["code", "name", "township_code", "county_code"])
    with g_path.open(encoding="utf-8") as fh:
        gj = json.load(fh)
    geoms: dict[str, tuple[str, object]] = {}
    for f in gj.get("features", []):
        props = f.get("properties") or {}
        code, name = str(props.get("code", "")), str(props.get("name", ""))
        if not code:
            raise GeographyError(f"{g_path.name}: a feature has no 'code' property")
        geoms[code] = (name, shape(f["geometry"]))
    if not geoms:
        raise GeographyError(f"{g_path.name}: no features")
    return Geography(townships, villages, geoms, _load_zones(z_path))
