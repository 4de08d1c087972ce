"""Faults: opened by error codes, Faulted statuses and charger problem events; closed on recovery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from .auth import ApiRoute, Principal, require
from .common import CP_ID_MAX, ID_MAX, Page, Paging, Timestamp, Where, app_of, fetch_page, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

router = APIRouter(tags=["faults"], route_class=ApiRoute, dependencies=[Depends(require("operator"))],
                   responses=ERROR_RESPONSES)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No such fault"}}
FaultId = Annotated[int, Path(ge=1, le=ID_MAX)]


class Fault(BaseModel):
    id: int
    charge_point_id: str
    connector_id: int
    source: str
    error_code: str
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    info: str | None = None
    opened_at: datetime
    closed_at: datetime | None = None
    status: Literal["open", "closed"]


FAULT_SELECT = """SELECT id, charge_point_id, connector_id, source, error_code, vendor_id, vendor_error_code, info,
                         opened_at, closed_at,
                         CASE WHEN closed_at IS NULL THEN 'open' ELSE 'closed' END AS status FROM faults"""


FAULT_ORDER = "opened_at DESC, id DESC"


def fault_filter(charger: str | None, station: str | None, connector: int | None, status: str | None,
                 error_code: str | None, since: Any, until: Any) -> Where:
    """The filters of ``GET /faults`` (and of its CSV export) over :data:`FAULT_SELECT`."""
    w = Where()
    w.add_if(charger, "charge_point_id = {}")
    w.add_station(station)
    w.add_if(connector, "connector_id = {}")
    if status == "open":
        w.add("closed_at IS NULL")
    elif status == "closed":
        w.add("closed_at IS NOT NULL")
    w.add_if(error_code, "error_code = {}")
    w.add_if(since, "opened_at >= {}")
    w.add_if(until, "opened_at < {}")
    return w


@router.get("/faults", response_model=Page[Fault], summary="Faults (newest first)")
async def list_faults(
    request: Request, page: Paging = Depends(paging),
    charger: str | None = Query(None, max_length=CP_ID_MAX), station: str | None = Query(None, max_length=64),
    connector: int | None = Query(None, ge=0, le=2_147_483_647),
    status: Literal["open", "closed"] | None = Query(None),
    error_code: str | None = Query(None, max_length=50),
    since: Timestamp | None = Query(None, description="Opened at or after"),
    until: Timestamp | None = Query(None, description="Opened before"),
) -> Any:
    w = fault_filter(charger, station, connector, status, error_code, since, until)
    return await fetch_page(app_of(request).pool, FAULT_SELECT, w, FAULT_ORDER, page)


@router.get("/faults/{fault_id}", response_model=Fault, responses=NOT_FOUND, summary="One fault")
async def get_fault(request: Request, fault_id: FaultId) -> Any:
    row = await app_of(request).pool.fetchrow(f"{FAULT_SELECT} WHERE id = $1", fault_id)
    if row is None:
        raise ApiError(404, f"no fault {fault_id}")
    return dict(row)


@router.post("/faults/{fault_id}/close", response_model=Fault, responses=NOT_FOUND,
             summary="Close a fault by hand (e.g. repaired while the charger was offline); idempotent")
async def close_fault(request: Request, fault_id: FaultId,
                      principal: Principal = Depends(require("operator"))) -> Any:
    pool = app_of(request).pool
    row = await pool.fetchrow(
        f"""WITH u AS (UPDATE faults SET closed_at = now(),
                           info = left(coalesce(info || ' ', '') || '[closed by ' || $2 || ']', 500)
                       WHERE id = $1 AND closed_at IS NULL RETURNING id)
            {FAULT_SELECT} WHERE id = $1""", fault_id, principal.name)
    if row is None:
        raise ApiError(404, f"no fault {fault_id}")
    if row["status"] == "open":  # the CTE's update is not visible to the outer select
        row = await pool.fetchrow(f"{FAULT_SELECT} WHERE id = $1", fault_id)
    return dict(row)
