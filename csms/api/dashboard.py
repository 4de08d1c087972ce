"""Read-only views for the web dashboard (:mod:`csms.web`): what the other resources do not give in one call.

* ``GET /dashboard/overview`` — network counters: chargers online/offline, connectors by live
  status, sessions and energy today (Asia/Shanghai), open sessions and faults (operator).
* ``GET /dashboard/map`` — every registry station with coordinates, its pile and charger counts
  and one status for the map's colour (operator).
* ``GET /dashboard/stations/{station_id}`` — a station with its piles and their chargers'
  connectors (operator).
* ``GET /dashboard/operations`` — utilisation, availability, sessions and faults per county and
  month over several months (bureau, operator), computed with :mod:`reporting.operations`.
* ``GET /dashboard/export/sessions.csv`` / ``faults.csv`` — the filtered session or fault list
  as CSV (UTF-8 with BOM, times in UTC+8; cells that a spreadsheet would take for a formula are
  quoted with a leading apostrophe), streamed (operator).

Everything here only reads. Connector counts use the last known status of connectors of
*online* chargers (``connector_id > 0``); connectors of offline chargers are counted apart.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from .auth import ApiRoute, require
from .chargers import CHARGER_SELECT
from .common import CP_ID_MAX, Timestamp, Where, app_of
from .errors import ERROR_RESPONSES, ApiError
from .faults import FAULT_ORDER, FAULT_SELECT, fault_filter
from .sessions import SESSION_ORDER, SESSION_SELECT, session_filter

__all__ = ["router", "LOCAL_TZ", "station_status_sql"]

router = APIRouter(tags=["dashboard"], route_class=ApiRoute, responses=ERROR_RESPONSES)
operator = [Depends(require("operator"))]
readers = [Depends(require("operator", "bureau"))]

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_ONLINE = "(cp.lease_expires_at IS NOT NULL AND cp.lease_expires_at > now())"
#: Connector statuses that mean a vehicle is plugged in / being charged (1.6 and 2.x).
BUSY = ("Charging", "SuspendedEV", "SuspendedEVSE", "Occupied", "Preparing", "Finishing")


def _county_names() -> dict[str, str]:
    try:
        from reporting.reports import default_inputs

        plan, _ = default_inputs()
    except Exception:  # noqa: BLE001 - names are a nicety; the codes still work
        return {}
    names = {u: (plan.unit(u).name if plan.unit(u) else u) for u in plan.unit_codes}
    names[plan.city_code] = plan.city_name
    return names


# --------------------------------------------------------------------- overview
@router.get("/dashboard/overview", dependencies=operator, summary="Network counters for the dashboard")
async def overview(request: Request) -> Any:
    pool = app_of(request).pool
    row = await pool.fetchrow(f"""
        WITH today AS (SELECT (date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai')
                               AT TIME ZONE 'Asia/Shanghai') AS t0)
        SELECT (SELECT count(*) FROM charge_points) AS chargers,
               (SELECT count(*) FROM charge_points cp WHERE {_ONLINE}) AS online,
               (SELECT count(*) FROM sessions, today WHERE started_at >= today.t0) AS sessions_today,
               (SELECT coalesce(sum(energy_wh), 0) FROM sessions, today
                 WHERE stopped_at >= today.t0) AS energy_today_wh,
               (SELECT count(*) FROM sessions WHERE stopped_at IS NULL) AS open_sessions,
               (SELECT count(*) FROM faults WHERE closed_at IS NULL) AS open_faults,
               (SELECT count(*) FROM stations) AS stations,
               (SELECT t0 FROM today) AS day_start""")
    rows = await pool.fetch(f"""
        SELECT CASE WHEN {_ONLINE} THEN c.status ELSE 'Offline' END AS status, count(*) AS n
        FROM connectors c JOIN charge_points cp ON cp.id = c.charge_point_id
        WHERE c.connector_id > 0 GROUP BY 1""")
    by_status = {r["status"]: r["n"] for r in rows}
    busy = sum(by_status.get(s, 0) for s in BUSY)
    return {
        "as_of": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "day_start": row["day_start"].isoformat(),
        "chargers": {"total": row["chargers"], "online": row["online"], "offline": row["chargers"] - row["online"]},
        "connectors": {"total": sum(by_status.values()), "available": by_status.get("Available", 0),
                       "charging": busy, "faulted": by_status.get("Faulted", 0),
                       "unavailable": by_status.get("Unavailable", 0) + by_status.get("Reserved", 0),
                       "offline": by_status.get("Offline", 0), "by_status": by_status},
        "sessions_today": row["sessions_today"], "open_sessions": row["open_sessions"],
        "energy_today_kwh": round(float(row["energy_today_wh"]) / 1000, 3),
        "open_faults": row["open_faults"], "stations": row["stations"],
    }


# --------------------------------------------------------------------- map
def station_status_sql(where: str = "") -> str:
    """Per station: piles in service, chargers, chargers online and one status.

    Status: ``faulted`` (a charger's connector is Faulted, last known), else of the online
    chargers ``charging`` (a connector busy), ``available`` (one Available), ``unavailable``;
    ``offline`` (chargers, none online); ``none`` (no OCPP charger: registry only).
    """
    busy = ", ".join(f"'{s}'" for s in BUSY)
    return f"""
    WITH links AS (
        SELECT station_id, id AS cp_id FROM charge_points WHERE station_id IS NOT NULL
        UNION SELECT station_id, charge_point_id FROM piles WHERE charge_point_id IS NOT NULL),
    cps AS (
        SELECT cp.id, {_ONLINE} AS online,
               coalesce(bool_or(c.status = 'Faulted'), false) AS faulted,
               coalesce(bool_or(c.connector_id > 0 AND c.status IN ({busy})), false) AS busy,
               coalesce(bool_or(c.connector_id > 0 AND c.status = 'Available'), false) AS free
        FROM charge_points cp LEFT JOIN connectors c ON c.charge_point_id = cp.id
        WHERE cp.id IN (SELECT cp_id FROM links) GROUP BY cp.id),
    st AS (
        SELECT l.station_id, count(*) AS chargers, count(*) FILTER (WHERE x.online) AS online,
               bool_or(x.faulted) AS faulted, bool_or(x.online AND x.busy) AS busy,
               bool_or(x.online AND x.free) AS free
        FROM links l JOIN cps x ON x.id = l.cp_id GROUP BY l.station_id),
    pl AS (SELECT station_id, count(*) AS piles FROM piles WHERE decommissioned_on IS NULL GROUP BY station_id)
    SELECT s.station_id, s.name, s.county, s.lon, s.lat, s.access, coalesce(pl.piles, 0) AS piles,
           coalesce(st.chargers, 0) AS chargers, coalesce(st.online, 0) AS online,
           CASE WHEN st.chargers IS NULL THEN 'none' WHEN st.faulted THEN 'faulted'
                WHEN st.busy THEN 'charging' WHEN st.free THEN 'available'
                WHEN st.online > 0 THEN 'unavailable' ELSE 'offline' END AS status
    FROM stations s LEFT JOIN st ON st.station_id = s.station_id LEFT JOIN pl ON pl.station_id = s.station_id
    {where}"""


@router.get("/dashboard/map", dependencies=operator, summary="Stations with coordinates and status, for the map")
async def station_map(request: Request) -> Any:
    rows = await app_of(request).pool.fetch(
        station_status_sql("WHERE s.lon IS NOT NULL") + " ORDER BY s.station_id")
    names = _county_names()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"stations": [dict(r) for r in rows], "counts": counts,
            "counties": [{"code": c, "name": n} for c, n in names.items()]}


@router.get("/dashboard/stations/{station_id}", dependencies=operator,
            summary="A station with its piles, chargers and connectors")
async def station_detail(request: Request,
                         station_id: str = Path(min_length=1, max_length=64)) -> Any:
    pool = app_of(request).pool
    row = await pool.fetchrow(station_status_sql("WHERE s.station_id = $1"), station_id)
    if row is None:
        raise ApiError(404, f"no station {station_id!r}")
    info = await pool.fetchrow(
        """SELECT operator, township_code, village_code, address, site_type, parking_spaces, centralized,
                  place_code FROM stations WHERE station_id = $1""", station_id)
    piles = await pool.fetch(
        """SELECT pile_id, power_kw, current_type, connector_count, commissioned_on, decommissioned_on,
                  charge_point_id FROM piles WHERE station_id = $1 ORDER BY pile_id LIMIT 1000""", station_id)
    chargers = await pool.fetch(
        f"""{CHARGER_SELECT} WHERE cp.station_id = $1
                OR cp.id IN (SELECT charge_point_id FROM piles WHERE station_id = $1)
            ORDER BY cp.id LIMIT 1000""", station_id)
    names = _county_names()
    return {**dict(row), **dict(info), "county_name": names.get(row["county"], row["county"]),
            "piles": [dict(p) for p in piles],
            "chargers": [{k: c[k] for k in ("id", "online", "ocpp_version", "vendor", "model", "connectors",
                                            "last_seen")} for c in chargers]}


# --------------------------------------------------------------------- operations over months
def _month(value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(LOCAL_TZ).date().replace(day=1)
    try:
        return dt.date.fromisoformat(value + "-01")
    except ValueError:
        raise ApiError(422, f"month must be YYYY-MM, not {value!r}") from None


@router.get("/dashboard/operations", dependencies=readers,
            summary="Utilisation, availability, sessions and faults per county and month")
async def operations(
    request: Request,
    months: int = Query(6, ge=1, le=24, description="How many months, ending with `end`"),
    end: str | None = Query(None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="Last month (default: this one)"),
) -> Any:
    from reporting.operations import operations_report
    from reporting.reports import default_inputs, month_end
    from reporting.store import load_registry

    last = _month(end)
    first = last
    for _ in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    today = dt.datetime.now(LOCAL_TZ).date()
    stop = month_end(last)
    cut = min(stop, today)
    if first > today:
        raise ApiError(422, "the months are all in the future")
    plan, geo = default_inputs()
    async with app_of(request).pool.acquire() as conn:
        loaded = await load_registry(conn, geo, ops=(first, stop), as_of=cut)

    def build() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from reporting.reports import records

        table, _, notes = operations_report(loaded.data, first, stop, city_code=plan.city_code,
                                            unit_codes=plan.unit_codes, as_of=cut)
        table = table.assign(month=table["month"].dt.strftime("%Y-%m"))
        return records(table), [n.as_dict() for n in (*loaded.notes, *notes)]

    rows, notes = await asyncio.to_thread(build)
    names = _county_names()
    for r in rows:
        r["county_name"] = names.get(r["county"], r["county"])
    month_list, m = [], first
    while m <= last:
        month_list.append(f"{m:%Y-%m}")
        m = (m + dt.timedelta(days=32)).replace(day=1)
    return {"first": f"{first:%Y-%m}", "last": f"{last:%Y-%m}", "as_of": cut.isoformat(), "months": month_list,
            "counties": [{"code": c, "name": n} for c, n in names.items()], "rows": rows, "notes": notes}


# --------------------------------------------------------------------- CSV export
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL_TZ).isoformat(timespec="seconds")
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # a spreadsheet would run it as a formula
    return value


_CHUNK = 2000


async def _csv_response(request: Request, select: str, where: Where, order: str, columns: list[str],
                        name: str) -> StreamingResponse:
    """Stream the rows as CSV. The query runs (and its first rows are read) before the response
    starts, so that a bad parameter still gets a proper error status instead of a cut-off body."""
    pool = app_of(request).pool
    conn = await pool.acquire()
    tx = conn.transaction()
    try:
        await tx.start()
        cursor = await conn.cursor(f"SELECT * FROM ({select} {where.sql()}) AS q ORDER BY {order}", *where.args)
        first = await cursor.fetch(_CHUNK)
    except BaseException:
        await _release(pool, conn, tx)
        raise

    async def stream() -> AsyncIterator[bytes]:
        try:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(columns)
            yield ("\ufeff" + buf.getvalue()).encode("utf-8") + _csv_chunk(first, columns)
            rows = first
            while len(rows) == _CHUNK:
                rows = await cursor.fetch(_CHUNK)
                yield _csv_chunk(rows, columns)
        finally:
            await _release(pool, conn, tx)

    stamp = dt.datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    return StreamingResponse(stream(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"',
                                      "Cache-Control": "no-store"})


async def _release(pool: Any, conn: Any, tx: Any) -> None:
    try:
        await asyncio.shield(tx.rollback())  # read-only: nothing to keep
    except Exception:  # noqa: BLE001 - the connection is released (and reset) either way
        pass
    await asyncio.shield(pool.release(conn))


def _csv_chunk(rows: list[Any], columns: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for r in rows:
        writer.writerow([_cell(r[c]) for c in columns])
    return buf.getvalue().encode("utf-8")


SESSION_COLUMNS = ["id", "charge_point_id", "connector_id", "transaction_id", "ocpp_version", "id_tag",
                   "id_tag_status", "started_at", "stopped_at", "energy_wh", "meter_start_wh", "meter_stop_wh",
                   "stop_reason", "status", "anomaly"]
FAULT_COLUMNS = ["id", "charge_point_id", "connector_id", "source", "error_code", "vendor_id", "vendor_error_code",
                 "info", "opened_at", "closed_at", "status"]


@router.get("/dashboard/export/sessions.csv", dependencies=operator, response_class=StreamingResponse,
            summary="Sessions as CSV (same filters as GET /sessions)")
async def export_sessions(
    request: Request,
    charger: str | None = Query(None, max_length=CP_ID_MAX), station: str | None = Query(None, max_length=64),
    id_tag: str | None = Query(None, max_length=255),
    status: Literal["open", "closed"] | None = Query(None),
    since: Timestamp | None = Query(None), until: Timestamp | None = Query(None),
) -> StreamingResponse:
    w = session_filter(charger, station, None, id_tag, status, since, until)
    return await _csv_response(request, SESSION_SELECT, w, SESSION_ORDER, SESSION_COLUMNS, "sessions")


@router.get("/dashboard/export/faults.csv", dependencies=operator, response_class=StreamingResponse,
            summary="Faults as CSV (same filters as GET /faults)")
async def export_faults(
    request: Request,
    charger: str | None = Query(None, max_length=CP_ID_MAX), station: str | None = Query(None, max_length=64),
    status: Literal["open", "closed"] | None = Query(None),
    error_code: str | None = Query(None, max_length=50),
    since: Timestamp | None = Query(None), until: Timestamp | None = Query(None),
) -> StreamingResponse:
    w = fault_filter(charger, station, None, status, error_code, since, until)
    return await _csv_response(request, FAULT_SELECT, w, FAULT_ORDER, FAULT_COLUMNS, "faults")
