"""Charging sessions and their meter values."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from .auth import ApiRoute, require
from .common import CP_ID_MAX, ID_MAX, Page, Paging, Timestamp, Where, app_of, fetch_page, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

router = APIRouter(tags=["sessions"], route_class=ApiRoute, dependencies=[Depends(require("operator"))],
                   responses=ERROR_RESPONSES)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No such session"}}
SessionId = Annotated[int, Path(ge=1, le=ID_MAX)]


class Session(BaseModel):
    id: int
    charge_point_id: str
    transaction_id: str
    ocpp_version: str
    connector_id: int | None = None
    evse_id: int | None = None
    id_tag: str | None = None
    id_tag_status: str | None = None
    reservation_id: int | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    energy_wh: float | None = None
    stop_reason: str | None = None
    stop_id_tag: str | None = None
    charging_state: str | None = None
    anomaly: str | None = None
    status: Literal["open", "closed"]


class MeterSummary(BaseModel):
    samples: int
    first_at: datetime | None = None
    last_at: datetime | None = None
    last_energy_wh: float | None = None
    last_power_w: float | None = None


class SessionDetail(Session):
    meter: MeterSummary


class MeterValue(BaseModel):
    sampled_at: datetime
    connector_id: int
    measurand: str
    phase: str | None = None
    unit: str | None = None
    context: str | None = None
    location: str | None = None
    value: float | None = None
    raw_value: str | None = None


SESSION_SELECT = """
SELECT s.id, s.charge_point_id, s.transaction_id, s.ocpp_version, s.connector_id, s.evse_id, s.id_tag,
       s.id_tag_status, s.reservation_id, s.started_at, s.stopped_at, s.meter_start_wh, s.meter_stop_wh,
       s.energy_wh, s.stop_reason, s.stop_id_tag, s.charging_state, s.anomaly,
       CASE WHEN s.stopped_at IS NULL THEN 'open' ELSE 'closed' END AS status,
       coalesce(s.started_at, s.stopped_at) AS _at
FROM sessions s"""


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("_at", None)
    return row


SESSION_ORDER = "_at DESC NULLS LAST, id DESC"


def session_filter(charger: str | None, station: str | None, connector: int | None, id_tag: str | None,
                   status: str | None, since: Any, until: Any) -> Where:
    """The filters of ``GET /sessions`` (and of its CSV export) over :data:`SESSION_SELECT`."""
    w = Where()
    w.add_if(charger, "s.charge_point_id = {}")
    w.add_station(station, "s.charge_point_id")
    w.add_if(connector, "s.connector_id = {}")
    w.add_if(id_tag, "s.id_tag = {}")
    if status == "open":
        w.add("s.stopped_at IS NULL")
    elif status == "closed":
        w.add("s.stopped_at IS NOT NULL")
    w.add_if(since, "coalesce(s.started_at, s.stopped_at) >= {}")
    w.add_if(until, "coalesce(s.started_at, s.stopped_at) < {}")
    return w


@router.get("/sessions", response_model=Page[Session], summary="Charging sessions (newest first)")
async def list_sessions(
    request: Request, page: Paging = Depends(paging),
    charger: str | None = Query(None, max_length=CP_ID_MAX), station: str | None = Query(None, max_length=64),
    connector: int | None = Query(None, ge=0, le=2_147_483_647),
    id_tag: str | None = Query(None, max_length=255),
    status: Literal["open", "closed"] | None = Query(None, description="open = still charging"),
    since: Timestamp | None = Query(None, description="Started at or after"),
    until: Timestamp | None = Query(None, description="Started before"),
) -> Any:
    w = session_filter(charger, station, connector, id_tag, status, since, until)
    result = await fetch_page(app_of(request).pool, SESSION_SELECT, w, SESSION_ORDER, page)
    result["items"] = [_clean(r) for r in result["items"]]
    return result


@router.get("/sessions/{session_id}", response_model=SessionDetail, responses=NOT_FOUND,
            summary="A session with a summary of its meter values")
async def get_session(request: Request, session_id: SessionId) -> Any:
    pool = app_of(request).pool
    row = await pool.fetchrow(f"{SESSION_SELECT} WHERE s.id = $1", session_id)
    if row is None:
        raise ApiError(404, f"no session {session_id}")
    meter = await pool.fetchrow(
        """SELECT count(*) AS samples, min(sampled_at) AS first_at, max(sampled_at) AS last_at,
                  (SELECT value FROM meter_values WHERE session_id=$1 AND measurand='Energy.Active.Import.Register'
                     AND phase IS NULL ORDER BY sampled_at DESC LIMIT 1) AS last_energy_wh,
                  (SELECT value FROM meter_values WHERE session_id=$1 AND measurand='Power.Active.Import'
                     AND phase IS NULL ORDER BY sampled_at DESC LIMIT 1) AS last_power_w
           FROM meter_values WHERE session_id=$1""", session_id)
    return {**_clean(dict(row)), "meter": dict(meter)}


@router.get("/sessions/{session_id}/meter-values", response_model=Page[MeterValue], responses=NOT_FOUND,
            summary="A session's meter values (oldest first)")
async def session_meter_values(
    request: Request, session_id: SessionId, page: Paging = Depends(paging),
    measurand: str | None = Query(None, max_length=100, description="e.g. Energy.Active.Import.Register"),
    since: Timestamp | None = Query(None), until: Timestamp | None = Query(None),
) -> Any:
    pool = app_of(request).pool
    if not await pool.fetchval("SELECT EXISTS (SELECT 1 FROM sessions WHERE id=$1)", session_id):
        raise ApiError(404, f"no session {session_id}")
    w = Where().add("session_id = {}", session_id)
    w.add_if(measurand, "measurand = {}")
    w.add_if(since, "sampled_at >= {}")
    w.add_if(until, "sampled_at < {}")
    return await fetch_page(
        pool, """SELECT sampled_at, connector_id, measurand, phase, unit, context, location, value, raw_value
                 FROM meter_values""", w, "sampled_at, measurand, phase NULLS FIRST", page)
