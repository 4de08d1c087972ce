"""The database side of the reports: SQL that produces exactly the frames of :mod:`reporting.contracts`.

Large data stays in PostgreSQL: the registry tables are small (thousands of rows) and are read
whole; OCPP data (sessions, status history, connections, faults) is aggregated in SQL per pile
and calendar month, so only ``piles × months`` rows reach pandas.

* Reference places (every township, village and community of the geography) come from the
  shipped reference files; ``places`` rows of those kinds add coordinates etc. Division fields
  (name, planning unit, township) always follow the geography, so a change of the 高新区
  mapping applies to stored rows too. Stations' planning units are re-derived from their
  township/village codes the same way (with a note when that changes a stored unit).
* Months are calendar months in Asia/Shanghai (UTC+8); a pile's service window runs from
  00:00 of ``commissioned_on`` to 00:00 of ``decommissioned_on`` (local), like
  :mod:`reporting.operations`.

Per pile and month (``pile_months`` contract), for piles with ``charge_point_id``:

* ``sessions``, ``energy_kwh``: sessions *started* in the month; energy = ``energy_wh``, else
  the meter difference; negative values count 0.
* ``charging_seconds``: the union over the charger's connectors of session intervals
  [started_at, stopped_at) within the month and the service window. A session still open
  counts up to now; any session counts for at most :data:`MAX_SESSION_DAYS` days.
* ``offline_seconds``: time in the service window (up to now) without a connection
  (``charger_connections``; a connection without ``disconnected_at`` lasts while the charger's
  lease is valid, else until ``last_seen``).
* ``unavailable_seconds``: time connected while the whole charge point is Faulted or
  Unavailable — connector 0 in such a state, or every connector (> 0) of ``connectors`` in one.
  Disjoint from offline time, so availability = 1 − (unavailable + offline) ÷ in service.
* ``faults``/``repaired_faults``/``repair_seconds``: faults (not security events) opened /
  closed in the month, and the open→close time of those closed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import asyncpg
import pandas as pd

from .contracts import CONTRACTS, conform
from .geography import Geography
from .metrics import Note, RegistryData, _examples
from .vocabulary import DIVISION_PLACE_KINDS

__all__ = ["TZ", "LOCAL", "MAX_SESSION_DAYS", "Loaded", "load_registry", "load_pile_months", "month_bounds",
           "today_local", "registry_counts"]

TZ = "Asia/Shanghai"
LOCAL = ZoneInfo(TZ)
MAX_SESSION_DAYS = 7
DOWN_STATUSES = ("Faulted", "Unavailable")


def today_local() -> dt.date:
    """Today's date in Asia/Shanghai (the reports' calendar)."""
    return dt.datetime.now(LOCAL).date()


def _local_midnight(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=LOCAL)


def month_bounds(start: dt.date, end: dt.date, as_of: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[first day of *start*'s month, first day after *end*'s month) in local time, cut at *as_of* + 1 day."""
    lo = _local_midnight(start.replace(day=1))
    nxt = (end.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    hi = _local_midnight(nxt)
    if as_of is not None:
        hi = min(hi, _local_midnight(as_of + dt.timedelta(days=1)))
    return lo, max(lo, hi)


async def _frame(conn: asyncpg.Connection, sql: str, *args, columns: list[str]) -> pd.DataFrame:
    rows = await conn.fetch(sql, *args)
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def _cols(name: str) -> list[str]:
    return list(CONTRACTS[name])


@dataclass
class Loaded:
    """The registry frames (:class:`RegistryData`) plus the notes the loading itself produced."""

    data: RegistryData
    notes: list[Note] = field(default_factory=list)
    synthetic: int = 0


async def load_registry(conn: asyncpg.Connection, geography: Geography, *, ops: tuple[dt.date, dt.date] | None = None,
                        as_of: dt.date | None = None) -> Loaded:
    """Read the registry (and, with ``ops=(start, end)``, the OCPP aggregates of those months).

    ``as_of`` cuts the OCPP aggregates at the end of that day.
    """
    notes: list[Note] = []
    stations = await _frame(conn, f"SELECT {', '.join(_cols('stations'))} FROM stations ORDER BY station_id",
                            columns=_cols("stations"))
    piles = await _frame(conn, f"SELECT {', '.join(_cols('piles'))} FROM piles ORDER BY pile_id",
                         columns=_cols("piles"))
    db_places = await _frame(conn, f"SELECT {', '.join(_cols('places'))} FROM places ORDER BY code",
                             columns=_cols("places"))
    vehicles = await _frame(conn, "SELECT county, year::int, ev_count FROM ev_counts ORDER BY county, year",
                            columns=_cols("vehicles"))
    fleets = await _frame(conn, "SELECT county, year::int, fleet_type, vehicle_count FROM fleet_counts "
                                "ORDER BY county, year, fleet_type", columns=_cols("fleets"))
    synthetic = await conn.fetchval(
        "SELECT (SELECT count(*) FROM stations WHERE synthetic) + (SELECT count(*) FROM places WHERE synthetic)"
        " + (SELECT count(*) FROM ev_counts WHERE synthetic)")
    if synthetic:
        notes.append(Note("synthetic_data", "报告含演示（合成）数据，不是真实登记数据",
                          "the report includes synthetic demo data (csms demo seed), not a real registry",
                          int(synthetic), severity="warning"))

    stations = _remap_station_units(stations, geography, notes)
    places = _merge_places(db_places, geography, notes)
    pile_months = None
    if ops is not None:
        pile_months = await load_pile_months(conn, ops[0], ops[1], as_of)
    data = RegistryData.build(stations, piles, places, vehicles, fleets, pile_months)
    return Loaded(data, notes, int(synthetic or 0))


def _remap_station_units(stations: pd.DataFrame, geo: Geography, notes: list[Note]) -> pd.DataFrame:
    if stations.empty:
        return stations
    st = stations.copy()
    by_village = st["village_code"].map(lambda c: (geo.village_info(c) or (None, None))[1] if c else None)
    by_township = st["township_code"].map(lambda c: geo.township_unit(c) if c else None)
    derived = by_village.where(by_village.notna(), by_township)
    changed = derived.notna() & (derived != st["county"])
    if changed.any():
        notes.append(Note("station_unit_remapped", "按当前区划映射（如高新区）调整了充电站所属县（区）",
                          "stations' planning units follow the current division mapping (e.g. 高新区)",
                          int(changed.sum()), _examples(st.loc[changed, "station_id"]), severity="info"))
        st.loc[changed, "county"] = derived[changed]
    return st


def _merge_places(db: pd.DataFrame, geo: Geography, notes: list[Note]) -> pd.DataFrame:
    ref = geo.reference_places().set_index("code")
    if db.empty:
        return ref.reset_index()
    div = db[db["kind"].isin(DIVISION_PLACE_KINDS)]
    known = div[div["code"].isin(ref.index)]
    unknown = div[~div["code"].isin(ref.index)]
    if len(unknown):
        notes.append(Note("place_unknown_division", "场所表中的乡镇/村代码不在区划参考数据中，未计入",
                          "township/village places whose code is not in the reference divisions are left out",
                          len(unknown), _examples(unknown["code"])))
    wrong_kind = known[known["kind"].to_numpy() != ref.loc[known["code"], "kind"].to_numpy()]
    if len(wrong_kind):
        notes.append(Note("place_kind_differs", "场所类别与区划参考数据不一致，以参考数据为准",
                          "place kind differs from the reference divisions; the reference is used",
                          len(wrong_kind), _examples(wrong_kind["code"]), severity="info"))
    if len(known):
        k = known.set_index("code")
        for col in ("lon", "lat", "a_level", "provincial_resort", "parking_spaces"):
            ref[col] = ref[col].astype(object)
            ref.loc[k.index, col] = k[col].astype(object).to_numpy()
    other = db[~db["kind"].isin(DIVISION_PLACE_KINDS)]
    out = pd.concat([ref.reset_index(), other], ignore_index=True)
    out["a_level"] = pd.to_numeric(out["a_level"]).astype("Int64")
    out["parking_spaces"] = pd.to_numeric(out["parking_spaces"]).astype("Int64")
    out["provincial_resort"] = out["provincial_resort"].fillna(False).astype(bool)
    out["lon"] = pd.to_numeric(out["lon"]).astype(float)
    out["lat"] = pd.to_numeric(out["lat"]).astype(float)
    return out


# --- OCPP aggregates per pile and month ---------------------------------------------------------

_MONTH = f"date_trunc('month', {{}} AT TIME ZONE '{TZ}')::date"
_DOWN = "(" + ", ".join(f"'{s}'" for s in DOWN_STATUSES) + ")"

PILE_MONTHS_SQL = f"""
WITH p AS (
    SELECT pile_id, charge_point_id,
           greatest($1::timestamptz, commissioned_on::timestamp AT TIME ZONE '{TZ}') AS s_lo,
           least($2::timestamptz, coalesce(decommissioned_on::timestamp AT TIME ZONE '{TZ}', $2::timestamptz)) AS s_hi
    FROM piles WHERE charge_point_id IS NOT NULL
),
months AS (
    SELECT m::date AS month, m AT TIME ZONE '{TZ}' AS m_lo, (m + interval '1 month') AT TIME ZONE '{TZ}' AS m_hi
    FROM generate_series(date_trunc('month', $1::timestamptz AT TIME ZONE '{TZ}'),
                         ($2::timestamptz AT TIME ZONE '{TZ}') - interval '1 microsecond', interval '1 month') AS m
),
sess AS (
    SELECT p.pile_id, s.started_at AS s,
           least(coalesce(s.stopped_at, least($2::timestamptz, now())),
                 s.started_at + interval '{MAX_SESSION_DAYS} days') AS e,
           greatest(coalesce(s.energy_wh, s.meter_stop_wh - s.meter_start_wh, 0),
                    0) / 1000.0 AS kwh
    FROM sessions s JOIN p ON p.charge_point_id = s.charge_point_id
    WHERE s.started_at >= $1::timestamptz - interval '{MAX_SESSION_DAYS} days' AND s.started_at < $2::timestamptz
),
s_counts AS (
    SELECT pile_id, {_MONTH.format('s')} AS month, count(*) AS sessions, sum(kwh) AS energy_kwh
    FROM sess WHERE s >= $1::timestamptz GROUP BY 1, 2
),
ordered AS (
    SELECT pile_id, s, e,
           max(e) OVER (PARTITION BY pile_id ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e
    FROM sess WHERE e > s
),
grouped AS (
    SELECT pile_id, s, e,
           count(*) FILTER (WHERE prev_e IS NULL OR prev_e < s)
               OVER (PARTITION BY pile_id ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS g
    FROM ordered
),
islands AS (SELECT pile_id, min(s) AS s, max(e) AS e FROM grouped GROUP BY pile_id, g),
charging AS (
    SELECT i.pile_id, m.month,
           sum(extract(epoch FROM least(i.e, m.m_hi, p.s_hi) - greatest(i.s, m.m_lo, p.s_lo))) AS seconds
    FROM islands i JOIN p USING (pile_id) JOIN months m ON i.s < m.m_hi AND i.e > m.m_lo
    WHERE least(i.e, m.m_hi, p.s_hi) > greatest(i.s, m.m_lo, p.s_lo)
    GROUP BY 1, 2
),
ncon AS (
    SELECT p.charge_point_id, greatest(count(c.connector_id) FILTER (WHERE c.connector_id > 0), 1) AS n
    FROM p LEFT JOIN connectors c ON c.charge_point_id = p.charge_point_id GROUP BY 1
),
st AS (
    SELECT h.charge_point_id, h.connector_id, h.status_at AS t, h.id AS ord, h.status IN {_DOWN} AS down
    FROM status_history h JOIN p ON p.charge_point_id = h.charge_point_id
    WHERE h.status_at >= $1::timestamptz AND h.status_at < least($2::timestamptz, now())
    UNION ALL
    SELECT c.charge_point_id, c.connector_id, $1::timestamptz, 0, l.status IN {_DOWN}
    FROM connectors c JOIN p ON p.charge_point_id = c.charge_point_id
    CROSS JOIN LATERAL (SELECT h.status FROM status_history h
                        WHERE h.charge_point_id = c.charge_point_id AND h.connector_id = c.connector_id
                          AND h.status_at < $1::timestamptz
                        ORDER BY h.status_at DESC LIMIT 1) l
),
st_delta AS (
    SELECT st.charge_point_id, st.t,
           (st.down::int - coalesce(lag(st.down::int) OVER (PARTITION BY st.charge_point_id, st.connector_id
                                                           ORDER BY st.t, st.ord), 0))
           * CASE WHEN st.connector_id = 0 THEN n.n ELSE 1 END AS d_down
    FROM st JOIN ncon n USING (charge_point_id)
),
cn AS (
    SELECT x.charge_point_id, greatest(x.connected_at, $1::timestamptz) AS a,
           least(coalesce(x.disconnected_at,
                          CASE WHEN cp.lease_expires_at > now() THEN now()
                               ELSE greatest(x.connected_at, coalesce(cp.last_seen, x.connected_at)) END),
                 least($2::timestamptz, now())) AS b
    FROM charger_connections x JOIN p ON p.charge_point_id = x.charge_point_id
    LEFT JOIN charge_points cp ON cp.id = x.charge_point_id
    WHERE x.connected_at < least($2::timestamptz, now())
      AND (x.disconnected_at IS NULL OR x.disconnected_at > $1::timestamptz)
),
ev AS (
    SELECT charge_point_id, t, d_down, 0 AS d_conn FROM st_delta
    UNION ALL SELECT charge_point_id, a, 0, 1 FROM cn WHERE b > a
    UNION ALL SELECT charge_point_id, b, 0, -1 FROM cn WHERE b > a
    UNION ALL SELECT charge_point_id, $1::timestamptz, 0, 0 FROM p
),
ev_t AS (SELECT charge_point_id, t, sum(d_down) AS d_down, sum(d_conn) AS d_conn FROM ev GROUP BY 1, 2),
seg AS (
    SELECT charge_point_id, t AS s,
           coalesce(lead(t) OVER (PARTITION BY charge_point_id ORDER BY t), least($2::timestamptz, now())) AS e,
           sum(d_down) OVER (PARTITION BY charge_point_id ORDER BY t ROWS UNBOUNDED PRECEDING) AS down_level,
           sum(d_conn) OVER (PARTITION BY charge_point_id ORDER BY t ROWS UNBOUNDED PRECEDING) AS conn_level
    FROM ev_t
),
avail AS (
    SELECT p.pile_id, m.month,
           sum(CASE WHEN seg.conn_level > 0 AND seg.down_level >= n.n THEN o.ov ELSE 0 END) AS unavailable_seconds,
           sum(CASE WHEN seg.conn_level <= 0 THEN o.ov ELSE 0 END) AS offline_seconds
    FROM seg JOIN p USING (charge_point_id) JOIN ncon n USING (charge_point_id)
    JOIN months m ON seg.s < m.m_hi AND seg.e > m.m_lo
    CROSS JOIN LATERAL (SELECT greatest(0, extract(epoch FROM least(seg.e, m.m_hi, p.s_hi)
                                                      - greatest(seg.s, m.m_lo, p.s_lo))) AS ov) o
    GROUP BY 1, 2
),
f_open AS (
    SELECT p.pile_id, {_MONTH.format('f.opened_at')} AS month, count(*) AS n
    FROM faults f JOIN p ON p.charge_point_id = f.charge_point_id
    WHERE f.source <> 'security' AND f.opened_at >= $1::timestamptz AND f.opened_at < $2::timestamptz
    GROUP BY 1, 2
),
f_close AS (
    SELECT p.pile_id, {_MONTH.format('f.closed_at')} AS month, count(*) AS n,
           sum(extract(epoch FROM f.closed_at - f.opened_at)) AS seconds
    FROM faults f JOIN p ON p.charge_point_id = f.charge_point_id
    WHERE f.source <> 'security' AND f.closed_at >= $1::timestamptz AND f.closed_at < $2::timestamptz
    GROUP BY 1, 2
)
SELECT pile_id, month, sum(sessions)::bigint, sum(energy_kwh)::float8, sum(charging)::float8,
       sum(unavailable)::float8, sum(offline)::float8, sum(faults)::bigint, sum(repaired)::bigint,
       sum(repair)::float8
FROM (
    SELECT pile_id, month, sessions, energy_kwh, 0 AS charging, 0 AS unavailable, 0 AS offline, 0 AS faults,
           0 AS repaired, 0 AS repair FROM s_counts
    UNION ALL SELECT pile_id, month, 0, 0, seconds, 0, 0, 0, 0, 0 FROM charging
    UNION ALL SELECT pile_id, month, 0, 0, 0, unavailable_seconds, offline_seconds, 0, 0, 0 FROM avail
    UNION ALL SELECT pile_id, month, 0, 0, 0, 0, 0, n, 0, 0 FROM f_open
    UNION ALL SELECT pile_id, month, 0, 0, 0, 0, 0, 0, n, seconds FROM f_close
) u
GROUP BY 1, 2 ORDER BY 1, 2
"""


async def load_pile_months(conn: asyncpg.Connection, start: dt.date, end: dt.date,
                           as_of: dt.date | None = None) -> pd.DataFrame:
    """The ``pile_months`` frame for the months from *start* to *end* (cut at the end of *as_of*)."""
    lo, hi = month_bounds(start, end, as_of)
    async with conn.transaction():
        # The planner's estimates for the window functions are high enough to trigger JIT, whose
        # compilation (~2 s) costs more than the whole query; the query runs in well under that.
        await conn.execute("SET LOCAL jit = off")
        df = await _frame(conn, PILE_MONTHS_SQL, lo, hi, columns=_cols("pile_months"))
    return conform("pile_months", df)


async def registry_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Row counts of the registry tables (and how many are synthetic)."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM stations) AS stations, (SELECT count(*) FROM piles) AS piles,
                  (SELECT count(*) FROM places) AS places, (SELECT count(*) FROM ev_counts) AS ev_counts,
                  (SELECT count(*) FROM fleet_counts) AS fleet_counts,
                  (SELECT count(*) FROM stations WHERE synthetic) AS synthetic_stations,
                  (SELECT count(*) FROM piles WHERE charge_point_id IS NOT NULL) AS piles_with_ocpp""")
    return {k: int(v) for k, v in dict(row).items()}
