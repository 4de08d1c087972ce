"""DataFrame contracts between the database layer, the import and the metrics.

The import (:mod:`reporting.registry_import`) produces these frames; the database layer must
produce exactly these columns for :mod:`reporting.metrics`. :func:`conform` checks and coerces
a frame (missing *optional* columns are added as missing values; a missing *required* column
raises :class:`ContractError`).

Types: ``text`` = pandas ``str`` (missing = NaN), ``float`` = float64 (missing = NaN), ``Int64``
= nullable integer, ``int`` = int64 (no missing), ``bool`` = bool (missing → False),
``date`` = datetime64 at midnight (missing = NaT).

stations — one row per charging station
    station_id text*, name text, operator text, county text* (planning-unit code, e.g.
    ``140302`` or ``gaoxin``), township_code text, village_code text, address text,
    lon float, lat float (WGS-84 degrees), access text* (public | dedicated | private),
    site_type text* (see :data:`reporting.vocabulary.SITE_TYPES`), parking_spaces Int64,
    centralized bool (集中式经营性充电站), place_code text (a place the station serves).

piles — one row per pile (充电桩)
    pile_id text*, station_id text*, power_kw float*, current_type text* (AC | DC),
    connector_count Int64, commissioned_on date*, decommissioned_on date (NaT = in service),
    charge_point_id text (OCPP id when the pile is ours).

places — every place the plan counts, including the reference townships/villages/communities
    code text* (unique over all kinds), kind text* (see :data:`reporting.vocabulary.PLACE_KINDS`),
    name text, county text* (planning unit), township_code text, lon float, lat float,
    a_level Int64 (0 = no A rating, 1–5 = 1A–5A; scenic spots), provincial_resort bool
    (省级以上旅游度假区), parking_spaces Int64 (for highway areas: small-car spaces).

vehicles — EV stock at year end
    county text* (planning-unit code, or the city code for a city-wide total), year int*,
    ev_count int*.

fleets — public-service fleet EVs at year end
    county text* (as vehicles), year int*, fleet_type text* (see FLEET_TYPES), vehicle_count int*.

pile_months — OCPP operations aggregated in SQL per pile and calendar month (UTC+8 months)
    pile_id text*, month date* (first day of the month), sessions int, energy_kwh float,
    charging_seconds float (time with a session charging), unavailable_seconds float (time in
    Faulted or Unavailable), offline_seconds float (time without a connection),
    faults int (faults opened in the month), repaired_faults int (faults closed in the month),
    repair_seconds float (total open→close duration of the faults closed in the month).
    A charge point with several connectors: a second counts once if any connector is in the
    state (charging) / the whole charge point is in it (unavailable, offline).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["CONTRACTS", "ContractError", "conform", "empty"]


class ContractError(ValueError):
    """A frame lacks required columns or has values of the wrong type."""


# name -> {column: (type, required)}
CONTRACTS: dict[str, dict[str, tuple[str, bool]]] = {
    "stations": {
        "station_id": ("text", True), "name": ("text", False), "operator": ("text", False),
        "county": ("text", True), "township_code": ("text", False), "village_code": ("text", False),
        "address": ("text", False), "lon": ("float", False), "lat": ("float", False),
        "access": ("text", True), "site_type": ("text", True), "parking_spaces": ("Int64", False),
        "centralized": ("bool", False), "place_code": ("text", False),
    },
    "piles": {
        "pile_id": ("text", True), "station_id": ("text", True), "power_kw": ("float", True),
        "current_type": ("text", True), "connector_count": ("Int64", False),
        "commissioned_on": ("date", True), "decommissioned_on": ("date", False),
        "charge_point_id": ("text", False),
    },
    "places": {
        "code": ("text", True), "kind": ("text", True), "name": ("text", False), "county": ("text", True),
        "township_code": ("text", False), "lon": ("float", False), "lat": ("float", False),
        "a_level": ("Int64", False), "provincial_resort": ("bool", False), "parking_spaces": ("Int64", False),
    },
    "vehicles": {"county": ("text", True), "year": ("int", True), "ev_count": ("int", True)},
    "fleets": {
        "county": ("text", True), "year": ("int", True), "fleet_type": ("text", True),
        "vehicle_count": ("int", True),
    },
    "pile_months": {
        "pile_id": ("text", True), "month": ("date", True), "sessions": ("int", False),
        "energy_kwh": ("float", False), "charging_seconds": ("float", False),
        "unavailable_seconds": ("float", False), "offline_seconds": ("float", False),
        "faults": ("int", False), "repaired_faults": ("int", False), "repair_seconds": ("float", False),
    },
}


def _coerce(series: pd.Series, kind: str) -> pd.Series:
    if kind == "text":
        s = series.astype(object).where(series.notna(), None)
        s = s.map(lambda v: None if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)))
        return s.astype("str")
    if kind == "float":
        return pd.to_numeric(series, errors="raise").astype("float64")
    if kind == "Int64":
        return pd.to_numeric(series, errors="raise").astype("Int64")
    if kind == "int":
        return pd.to_numeric(series, errors="raise").fillna(0).astype("int64")
    if kind == "bool":
        return series.astype("boolean").fillna(False).astype(bool)
    if kind == "date":
        return pd.to_datetime(series).dt.normalize().astype("datetime64[ns]")
    raise AssertionError(kind)


def empty(name: str) -> pd.DataFrame:
    """An empty frame of contract *name* with the contract's dtypes."""
    return conform(name, pd.DataFrame({c: [] for c in CONTRACTS[name]}))


def conform(name: str, df: pd.DataFrame | None) -> pd.DataFrame:
    """Check *df* against contract *name*; return a copy with exactly the contract's columns.

    ``None`` gives an empty frame. Extra columns are dropped; optional missing columns are
    added as missing (0 for ``int``, False for ``bool``).
    """
    spec = CONTRACTS[name]
    if df is None:
        df = pd.DataFrame({c: [] for c in spec})
    missing = [c for c, (_, req) in spec.items() if req and c not in df.columns]
    if missing:
        raise ContractError(f"{name}: missing required columns {missing}; contract columns {list(spec)}")
    out = {}
    for col, (kind, _) in spec.items():
        series = df[col] if col in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)
        try:
            out[col] = _coerce(series, kind)
        except (ValueError, TypeError) as exc:
            raise ContractError(f"{name}.{col}: cannot read as {kind}: {exc}") from None
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)
