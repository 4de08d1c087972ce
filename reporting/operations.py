"""Operations metrics per unit and month from OCPP aggregates (``pile_months``).

The database aggregates sessions, status intervals and faults in SQL per pile and month (see
the ``pile_months`` contract in :mod:`reporting.contracts`); this module shapes them:

* ``in_service_seconds`` of a pile in a month = the days it counts (commissioned on or before,
  not yet decommissioned; see :mod:`reporting.metrics`) within the month, up to the as-of date,
  × 86 400;
* utilisation = charging_seconds ÷ in_service_seconds (share of time charging);
* availability = 1 − (unavailable_seconds + offline_seconds) ÷ in_service_seconds, clipped to
  [0, 1] (time not Faulted/Unavailable/offline);
* MTTR (hours) = repair_seconds ÷ repaired_faults ÷ 3600.

Only piles with an OCPP ``charge_point_id`` report; registry piles without one are counted in
``piles_in_service`` but not in the OCPP figures. Unit figures are time-weighted sums; the mean
of per-pile availabilities is given too.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import numpy as np
import pandas as pd

from .metrics import Note, RegistryData, _examples

__all__ = ["OPERATIONS_HEADERS", "operations_report"]

#: Chinese (English) report headers of the unit × month table.
OPERATIONS_HEADERS = {
    "county": "县（区） unit", "month": "月份 month", "piles_in_service": "在运充电桩 piles in service",
    "piles_reporting": "接入平台充电桩 piles reporting (OCPP)", "sessions": "充电次数 sessions",
    "energy_kwh": "充电量（kWh） energy", "utilisation": "时间利用率 utilisation",
    "availability": "可用率 availability", "availability_mean_pile": "单桩平均可用率 mean pile availability",
    "faults": "故障次数 faults", "repaired_faults": "修复次数 repaired faults", "mttr_hours": "平均修复时间（小时） MTTR (h)",
}
_SUMS = ["sessions", "energy_kwh", "charging_seconds", "unavailable_seconds", "offline_seconds", "faults",
         "repaired_faults", "repair_seconds"]


def _months(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start).to_period("M").to_timestamp(),
                         pd.Timestamp(end).to_period("M").to_timestamp(), freq="MS")


def operations_report(data: RegistryData, start: dt.date, end: dt.date, *, city_code: str,
                      unit_codes: Iterable[str] = (), as_of: dt.date | None = None,
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[Note]]:
    """Operations per unit and month (plus city rows) for the months from *start* to *end*.

    Returns ``(by_unit_month, by_pile_month, notes)``. ``by_unit_month`` has the columns of
    :data:`OPERATIONS_HEADERS`; ``by_pile_month``: pile_id, station_id, county, month,
    in_service_seconds, the pile_months sums, utilisation, availability. Time after *as_of*
    (default: *end*'s month end) does not count.
    """
    notes: list[Note] = []
    months = _months(start, end)
    limit = pd.Timestamp(as_of) + pd.Timedelta(days=1) if as_of else months[-1] + pd.offsets.MonthBegin(1)
    piles = data.piles.merge(data.stations[["station_id", "county"]], on="station_id", how="inner")
    piles = piles[piles["commissioned_on"].notna()]

    grid = piles[["pile_id", "station_id", "county", "charge_point_id", "commissioned_on", "decommissioned_on"]] \
        .merge(pd.DataFrame({"month": months}), how="cross")
    m_end = (grid["month"] + pd.offsets.MonthBegin(1)).clip(upper=limit)
    lo = grid["commissioned_on"].where(grid["commissioned_on"] > grid["month"], grid["month"])
    hi = grid["decommissioned_on"].fillna(m_end).clip(upper=m_end)
    grid["in_service_seconds"] = ((hi - lo).dt.days.clip(lower=0) * 86400).astype(float)
    grid["reporting"] = grid["charge_point_id"].notna()

    pm = data.pile_months[data.pile_months["month"].isin(months)]
    unknown = pm[~pm["pile_id"].isin(piles["pile_id"])]
    if len(unknown):
        notes.append(Note("ops_unknown_pile", "OCPP数据的充电桩不在登记系统中，未计入",
                          "OCPP data for piles not in the registry left out", len(unknown),
                          _examples(unknown["pile_id"].unique())))
    by_pile = grid.merge(pm, on=["pile_id", "month"], how="left", indicator=True)
    missing = by_pile[(by_pile["_merge"] == "left_only") & by_pile["reporting"] & (by_pile["in_service_seconds"] > 0)]
    if len(missing):
        notes.append(Note("ops_missing_month", "接入平台的充电桩某月无OCPP数据，按零活动计",
                          "connected piles without OCPP data in a month are taken as zero activity", len(missing),
                          _examples(missing["pile_id"].unique()), severity="info"))
    outside = by_pile[(by_pile["_merge"] == "both") & (by_pile["in_service_seconds"] == 0)
                      & (by_pile["sessions"] > 0)]
    if len(outside):
        notes.append(Note("ops_outside_service", "充电桩在投运期外有充电记录",
                          "sessions recorded outside a pile's service period", len(outside),
                          _examples(outside["pile_id"].unique())))
    by_pile = by_pile.drop(columns="_merge")
    by_pile[_SUMS] = by_pile[_SUMS].fillna(0)
    t = by_pile["in_service_seconds"].replace(0, np.nan)
    by_pile["utilisation"] = by_pile["charging_seconds"] / t
    by_pile["availability"] = (1 - (by_pile["unavailable_seconds"] + by_pile["offline_seconds"]) / t).clip(0, 1)
    no_unit = piles[~piles["county"].isin(list(unit_codes))] if unit_codes else piles.iloc[0:0]
    if len(no_unit):
        notes.append(Note("ops_pile_without_county", "充电桩无有效县（区），只计入全市",
                          "piles without a valid unit count for the city only", len(no_unit),
                          _examples(no_unit["pile_id"])))

    def aggregate(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        active = df[df["in_service_seconds"] > 0]
        rep = df[df["reporting"]]
        a = active.groupby(keys).size().rename("piles_in_service")
        r = rep[rep["in_service_seconds"] > 0].groupby(keys).agg(
            piles_reporting=("pile_id", "size"), time=("in_service_seconds", "sum"),
            availability_mean_pile=("availability", "mean"))
        s = rep.groupby(keys)[_SUMS].sum()
        out = pd.concat([a, r, s], axis=1).fillna({"piles_in_service": 0, "piles_reporting": 0, "time": 0})
        out = out.fillna({c: 0 for c in _SUMS})
        time = out["time"].replace(0, np.nan)
        out["utilisation"] = out["charging_seconds"] / time
        out["availability"] = (1 - (out["unavailable_seconds"] + out["offline_seconds"]) / time).clip(0, 1)
        out["mttr_hours"] = out["repair_seconds"] / out["repaired_faults"].replace(0, np.nan) / 3600
        return out.reset_index()

    units = aggregate(by_pile[by_pile["county"].isin(list(unit_codes))] if unit_codes else by_pile,
                      ["county", "month"])
    city = aggregate(by_pile, ["month"]).assign(county=city_code)
    table = pd.concat([city, units], ignore_index=True)
    for c in ("piles_in_service", "piles_reporting", "sessions", "faults", "repaired_faults"):
        table[c] = table[c].astype("int64")
    cols = list(OPERATIONS_HEADERS)
    pile_cols = ["pile_id", "station_id", "county", "month", "in_service_seconds", *_SUMS, "utilisation",
                 "availability"]
    return table[cols], by_pile[by_pile["reporting"]][pile_cols].reset_index(drop=True), notes
