"""Our registry and live state as T/CEC 102 objects (database reads).

Identifiers
    * ``StationID`` = ``stations.station_id`` (stations with ids longer than 20 characters,
      or without coordinates, are not published: the standard makes both mandatory).
    * ``EquipmentID`` = the registry pile's ``pile_id``; a charger assigned to a station
      (``charge_points.station_id``) that has no pile record is published with its OCPP id.
      Ids longer than 23 characters are not published.
    * ``ConnectorID`` = ``EquipmentID + "_" + n`` for connector ``n`` (1-based; the OCPP
      connector id, or for 2.x the shared connector identity of :mod:`csms.versions.v2x`).
      At most 26 characters.

Defaults for what the registry does not hold (documented in the README): StationType from
``access``/``site_type``, Construction from ``site_type``, AreaCode = the planning unit's
code when it is a 6-digit GB/T 2260 code else 140300 (阳泉市), StationStatus 50, AC piles as
交流插头 (模式3 连接方式C, ConnectorType 3), DC piles as 直流枪头 (4), national standard
GB/T 20234-2015, nominal voltages AC 220 V single-phase (≤ 7.4 kW) or 380 V three-phase,
DC 200–750 V.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from . import objects
from .codec import SHANGHAI

__all__ = [
    "connector_ref", "split_connector_ref", "equipment_for_charger", "station_infos", "station_status_infos",
    "station_stats", "station_for_connector", "CITY_AREA_CODE",
]

CITY_AREA_CODE = "140300"

_STATION_TYPE_DEDICATED = {"depot_bus": 100, "depot_sanitation": 101, "depot_logistics": 102, "depot_taxi": 103}
_CONSTRUCTION = {
    "residential": 1, "institution": 2, "township_office": 2, "depot_bus": 3, "depot_taxi": 3,
    "depot_sanitation": 3, "depot_logistics": 3, "commercial_parking": 9, "transport_hub": 6, "park_and_ride": 6,
    "highway_service_area": 11, "road_service_area": 11, "road_parking": 10,
}


def connector_ref(equipment_id: str, n: int) -> str | None:
    """T/CEC ``ConnectorID`` of connector *n* of *equipment_id*, or None if it would be too long."""
    cid = f"{equipment_id}_{int(n)}"
    return cid if len(cid) <= 26 and len(equipment_id) <= 23 else None


def split_connector_ref(connector_id: str) -> tuple[str, int] | None:
    eq, sep, n = connector_id.rpartition("_")
    if not sep or not eq or not n.isdigit():
        return None
    return eq, int(n)


async def equipment_for_charger(conn, cp_id: str) -> str:
    """``EquipmentID`` of OCPP charger *cp_id* (its pile id, else the charger id)."""
    pile = await conn.fetchval("SELECT pile_id FROM piles WHERE charge_point_id = $1 LIMIT 1", cp_id)
    return pile or cp_id


def _station_type(access: str, site_type: str) -> int:
    if access == "public":
        return 1
    if access == "private":
        return 50
    return _STATION_TYPE_DEDICATED.get(site_type, 255)


def _area_code(county: str | None) -> str:
    return county if county and len(county) == 6 and county.isdigit() else CITY_AREA_CODE


def _cut(text: str | None, n: int, fallback: str) -> str:
    text = (text or "").strip() or fallback
    return text[:n]


def _connector_info(cid: str, current_type: str, power_kw: float) -> dict[str, Any]:
    if current_type == "DC":
        upper, lower, volts, ctype = 750, 200, 500.0, 4
        current = power_kw * 1000 / volts
    elif power_kw <= 7.4:
        upper, lower, ctype = 250, 187, 3
        current = power_kw * 1000 / 220
    else:
        upper, lower, ctype = 440, 342, 3
        current = power_kw * 1000 / (380 * math.sqrt(3))
    return objects.connector_info(connector_id=cid, connector_type=ctype, voltage_upper_limits=upper,
                                  voltage_lower_limits=lower, current=max(1, round(current)),
                                  power_kw=power_kw, national_standard=2)


_EQUIPMENT_SQL = """
SELECT p.station_id, p.pile_id AS equipment_id, p.charge_point_id, p.power_kw, p.current_type,
       p.connector_count::int AS connector_count
FROM piles p
WHERE p.station_id = ANY($1::text[]) AND (p.decommissioned_on IS NULL OR p.decommissioned_on > $2)
UNION ALL
SELECT cp.station_id, cp.id, cp.id, NULL, NULL,
       greatest(1, (SELECT count(*) FROM connectors c WHERE c.charge_point_id = cp.id AND c.connector_id > 0))::int
FROM charge_points cp
WHERE cp.station_id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM piles p WHERE p.charge_point_id = cp.id)
ORDER BY 1, 2
"""


async def _equipment(conn, station_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    today = datetime.now(SHANGHAI).date()
    out: dict[str, list] = defaultdict(list)
    for r in await conn.fetch(_EQUIPMENT_SQL, station_ids, today):
        if len(r["equipment_id"]) <= 23:
            out[r["station_id"]].append(r)
    return out


# Synthetic (demo) stations are never published to a supervision platform.
_STATIONS_WHERE = """NOT s.synthetic AND length(s.station_id) <= 20 AND s.lon IS NOT NULL AND s.lat IS NOT NULL
  AND ($1::text[] IS NULL OR s.station_id = ANY($1::text[]))
  AND ($2::timestamptz IS NULL OR s.updated_at >= $2 OR c.changed_at >= $2
       OR EXISTS (SELECT 1 FROM piles p WHERE p.station_id = s.station_id AND p.updated_at >= $2))"""


async def station_infos(conn, our_operator_id: str, service_tel: str, *, station_ids: list[str] | None = None,
                        changed_since: datetime | None = None, offset: int = 0, limit: int | None = None
                        ) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """StationInfo objects (ordered by StationID), the total matching, and each station's change version.

    Stations without any publishable equipment are left out (EquipmentInfos is mandatory).
    """
    where = f"""FROM stations s LEFT JOIN tcec_station_changes c ON c.station_id = s.station_id
            WHERE {_STATIONS_WHERE}
              AND (EXISTS (SELECT 1 FROM piles p WHERE p.station_id = s.station_id AND length(p.pile_id) <= 23)
                   OR EXISTS (SELECT 1 FROM charge_points cp WHERE cp.station_id = s.station_id))"""
    rows = await conn.fetch(
        f"SELECT s.*, coalesce(c.version, 0) AS tcec_version {where} ORDER BY s.station_id OFFSET $3 LIMIT $4",
        station_ids, changed_since, offset, limit)
    total = await conn.fetchval(f"SELECT count(*) {where}", station_ids, changed_since)
    equipment = await _equipment(conn, [r["station_id"] for r in rows])
    infos, versions = [], {}
    for r in rows:
        eq_infos = []
        for e in equipment.get(r["station_id"], []):
            power = float(e["power_kw"]) if e["power_kw"] is not None else 7.0
            current_type = e["current_type"] or "AC"
            conns = [_connector_info(cid, current_type, power) for n in range(1, e["connector_count"] + 1)
                     if (cid := connector_ref(e["equipment_id"], n))]
            if not conns:
                continue
            eq_infos.append(objects.equipment_info(
                equipment_id=e["equipment_id"], equipment_type=1 if current_type == "DC" else 2,
                power_kw=power, connector_infos=conns, lng=r["lon"], lat=r["lat"]))
        if not eq_infos:
            continue
        infos.append(objects.station_info(
            station_id=r["station_id"], operator_id=our_operator_id, equipment_owner_id=our_operator_id,
            station_name=_cut(r["name"], 50, r["station_id"]), area_code=_area_code(r["county"]),
            address=_cut(r["address"], 50, "阳泉市"), service_tel=_cut(service_tel, 30, "-"),
            station_type=_station_type(r["access"], r["site_type"]), station_status=50,
            park_nums=int(r["parking_spaces"] or 0), lng=float(r["lon"]), lat=float(r["lat"]),
            construction=_CONSTRUCTION.get(r["site_type"], 255), equipment_infos=eq_infos))
        versions[r["station_id"]] = int(r["tcec_version"])
    return infos, int(total), versions


async def station_status_infos(conn, station_ids: list[str]) -> list[dict[str, Any]]:
    """StationStatusInfo per known station, in the order asked; status 0 for offline chargers."""
    equipment = await _equipment(conn, station_ids)
    cps = {e["charge_point_id"] for eqs in equipment.values() for e in eqs if e["charge_point_id"]}
    live = await conn.fetch(
        """SELECT c.charge_point_id, c.connector_id, c.status,
                  (cp.lease_expires_at IS NOT NULL AND cp.lease_expires_at > now()) AS online
           FROM connectors c JOIN charge_points cp ON cp.id = c.charge_point_id
           WHERE c.charge_point_id = ANY($1::text[]) AND c.connector_id > 0""", list(cps))
    state = {(r["charge_point_id"], r["connector_id"]): (r["status"], r["online"]) for r in live}
    known = {r["station_id"] for r in await conn.fetch(
        "SELECT station_id FROM stations WHERE station_id = ANY($1::text[]) AND NOT synthetic", station_ids)}
    out = []
    for sid in dict.fromkeys(station_ids):
        if sid not in known or len(sid) > 20:
            continue
        infos = []
        for e in equipment.get(sid, []):
            for n in range(1, e["connector_count"] + 1):
                cid = connector_ref(e["equipment_id"], n)
                if cid is None:
                    continue
                status, online = state.get((e["charge_point_id"], n), (None, False))
                try:
                    infos.append(objects.connector_status_info(cid, status, online=bool(online)))
                except ValueError:
                    infos.append(objects.connector_status_info(cid, None))
        out.append(objects.station_status_info(sid, infos))
    return out


def _kwh(wh: float | None) -> float:
    return objects._round_float((wh or 0) / 1000.0, 1)


async def station_stats(conn, station_id: str, start: date, end: date) -> dict[str, Any] | None:
    """StationStatsInfo: energy (kWh, 1 dp) of sessions that ended between *start* and *end*
    (local dates, inclusive), per station, pile and connector. None for an unknown station."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM stations WHERE station_id=$1 AND NOT synthetic)",
                               station_id):
        return None
    lo = datetime.combine(start, datetime.min.time(), tzinfo=SHANGHAI)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
    equipment = (await _equipment(conn, [station_id])).get(station_id, [])
    cps = [e["charge_point_id"] for e in equipment if e["charge_point_id"]]
    rows = await conn.fetch(
        """SELECT charge_point_id, connector_id, sum(energy_wh) AS wh FROM sessions
           WHERE charge_point_id = ANY($1::text[]) AND stopped_at >= $2 AND stopped_at < $3
             AND energy_wh IS NOT NULL
           GROUP BY charge_point_id, connector_id""", cps, lo, hi)
    energy = {(r["charge_point_id"], r["connector_id"]): float(r["wh"] or 0) for r in rows}
    eq_stats, station_wh = [], 0.0
    for e in equipment:
        conn_stats, eq_wh = [], 0.0
        for n in range(1, e["connector_count"] + 1):
            cid = connector_ref(e["equipment_id"], n)
            wh = energy.get((e["charge_point_id"], n), 0.0)
            eq_wh += wh
            if cid:
                conn_stats.append({"ConnectorID": cid, "ConnectorElectricity": _kwh(wh)})
        station_wh += eq_wh
        eq_stats.append({"EquipmentID": e["equipment_id"], "EquipmentElectricity": _kwh(eq_wh),
                         "ConnectorStatsInfos": conn_stats})
    return {"StationID": station_id, "StartTime": start.strftime("%Y-%m-%d"), "EndTime": end.strftime("%Y-%m-%d"),
            "StationElectricity": _kwh(station_wh), "EquipmentStatsInfos": eq_stats}


async def station_for_connector(conn, connector_id: str) -> tuple[str | None, bool]:
    """(station id, connector known) for a T/CEC ConnectorID."""
    parts = split_connector_ref(connector_id)
    if parts is None:
        return None, False
    eq, n = parts
    row = await conn.fetchrow(
        """SELECT station_id, connector_count::int AS n FROM piles WHERE pile_id = $1
           UNION ALL SELECT station_id, 99 FROM charge_points WHERE id = $1
                     AND NOT EXISTS (SELECT 1 FROM piles WHERE charge_point_id = $1)
           LIMIT 1""", eq)
    if row is None or not 1 <= n <= row["n"]:
        return None, False
    return row["station_id"], True
