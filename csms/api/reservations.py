"""Reservations as a resource (SteVe's Reservations page).

``POST /reservations`` allocates the OCPP reservationId, stores the reservation
(status ``Requested``), sends ReserveNow through the command machinery
(:func:`csms.api.commands.execute`: version mapping, audit log, routing to the
charger's node) and stores the charger's answer as the status.
``DELETE /reservations/{id}`` sends CancelReservation; the reservation becomes
``Cancelled`` when the charger accepts. Chargers report use and expiry
themselves (a 1.6 StartTransaction with reservationId → ``Used``, a 2.x
ReservationStatusUpdate → ``Expired``/``Removed``): see
:func:`csms.store.reservation_used` and :func:`csms.store.reservation_status_update`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import commands as cmds
from ..routing import UnknownCharger
from .auth import ApiRoute, Principal, require
from .commands import execute
from .common import CP_ID_MAX, Page, Paging, Where, app_of, fetch_page, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

router = APIRouter(tags=["reservations"], route_class=ApiRoute, dependencies=[Depends(require("operator"))],
                   responses=ERROR_RESPONSES)

Status = Literal["Requested", "Accepted", "Rejected", "Faulted", "Occupied", "Unavailable", "Cancelled", "Used",
                 "Expired", "Removed"]
ANSWERS = ("Accepted", "Rejected", "Faulted", "Occupied", "Unavailable")
INT32_MAX = 2_147_483_647

NOT_FOUND = {404: {"model": ErrorBody, "description": "No such reservation"}}
CHARGER_RESPONSES = {
    404: {"model": ErrorBody, "description": "No such charge point"},
    409: {"model": ErrorBody, "description": "The charger is offline (nothing is stored)"},
    502: {"model": ErrorBody, "description": "The charger answered with a CALLERROR"},
    504: {"model": ErrorBody, "description": "The charger did not answer in time"},
}
ReservationId = Annotated[int, Path(ge=1, le=INT32_MAX, description="The reservation (= OCPP reservationId)")]


class ReservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    charge_point_id: str = Field(min_length=1, max_length=CP_ID_MAX)
    connector_id: cmds.Int32 = Field(0, description="1.6 connector (0 = any); 2.x EVSE unless evse_id")
    evse_id: Optional[cmds.PositiveInt32] = Field(None, description="2.x EVSE")
    id_tag: cmds.IdTag
    expiry_date: cmds.Timestamp = Field(description="When the reservation ends (in the future)")

    @field_validator("expiry_date")
    @classmethod
    def _future(cls, v: datetime) -> datetime:
        if v <= datetime.now(timezone.utc):
            raise ValueError("expiry_date must be in the future")
        return v


class Reservation(BaseModel):
    id: int
    charge_point_id: str
    connector_id: int
    evse_id: Optional[int] = None
    id_tag: str
    expiry_date: datetime
    status: Status
    active: bool
    created_by: Optional[str] = None
    command_id: Optional[int] = None
    cancel_command_id: Optional[int] = None
    session_id: Optional[int] = None
    created_at: datetime
    updated_at: datetime


SELECT = """SELECT id, charge_point_id, connector_id, evse_id, id_tag, expiry_date, status,
                   (status = 'Accepted' AND expiry_date > now()) AS active, created_by, command_id,
                   cancel_command_id, session_id, created_at, updated_at
            FROM reservations"""


async def locate_online(request: Request, cp_id: str):
    """The charger's location; 404 unknown, 409 offline — checked before anything is stored."""
    try:
        loc = await app_of(request).router.locate(cp_id)
    except UnknownCharger:
        raise ApiError(404, f"no charge point {cp_id!r}") from None
    if not loc.online or loc.version is None:
        raise ApiError(409, f"charge point {cp_id!r} is offline (not connected to any node)", "charger_offline")
    return loc


def build_or_422(command: cmds.Command, version: str) -> None:
    """Refuse (422, nothing stored) a command the charger's OCPP version cannot carry."""
    try:
        cmds.build(command, version)
    except cmds.CommandError as exc:
        raise ApiError(422, str(exc), exc.code) from None


def command_id_of(exc: ApiError) -> Optional[int]:
    for d in exc.details or ():
        if isinstance(d, dict) and d.get("command_id"):
            return d["command_id"]
    return None


async def _get(db, reservation_id: int) -> dict[str, Any]:
    row = await db.fetchrow(f"{SELECT} WHERE id = $1", reservation_id)
    if row is None:
        raise ApiError(404, f"no reservation {reservation_id}")
    return dict(row)


@router.get("/reservations", response_model=Page[Reservation], summary="Reservations (newest first)")
async def list_reservations(
    request: Request, page: Paging = Depends(paging),
    charger: Optional[str] = Query(None, max_length=CP_ID_MAX),
    status: Optional[Status] = Query(None),
    active: Optional[bool] = Query(None, description="Accepted and not expired (true) / the others (false)"),
    id_tag: Optional[str] = Query(None, max_length=36),
) -> Any:
    w = Where()
    w.add_if(charger, "charge_point_id = {}")
    w.add_if(status, "status = {}")
    w.add_if(id_tag, "id_tag = {}")
    w.add_if(active, "(status = 'Accepted' AND expiry_date > now()) = {}")
    return await fetch_page(app_of(request).pool, SELECT, w, "created_at DESC, id DESC", page)


@router.post("/reservations", response_model=Reservation, status_code=201,
             summary="Reserve a connector (sends ReserveNow; the charger's answer is the status)",
             responses={**CHARGER_RESPONSES,
                        422: {"model": ErrorBody, "description": "Invalid request, or not valid for the charger's "
                                                                 "OCPP version (nothing is stored)"}})
async def create_reservation(request: Request, body: ReservationIn,
                             principal: Principal = Depends(require("operator"))) -> Any:
    pool = app_of(request).pool
    loc = await locate_online(request, body.charge_point_id)
    reservation_id = await pool.fetchval("SELECT nextval('reservations_id_seq')::int")
    command = cmds.ReserveNow(reservation_id=reservation_id, id_tag=body.id_tag, expiry=body.expiry_date,
                              connector_id=body.connector_id, evse_id=body.evse_id)
    build_or_422(command, loc.version)
    await pool.execute(
        """INSERT INTO reservations (id, charge_point_id, connector_id, evse_id, id_tag, expiry_date, created_by)
           VALUES ($1,$2,$3,$4,$5,$6,$7)""",
        reservation_id, body.charge_point_id, body.connector_id, body.evse_id, body.id_tag, body.expiry_date,
        principal.name)
    try:
        result = await execute(request, principal, body.charge_point_id, command, None)
    except ApiError as exc:
        command_id = command_id_of(exc)
        if exc.status in (404, 409, 422):  # never reached the charger: no reservation
            await pool.execute("DELETE FROM reservations WHERE id=$1", reservation_id)
        else:  # 502 refused with a CALLERROR; 504 unknown (stays Requested)
            await pool.execute(
                """UPDATE reservations SET command_id=$2, updated_at=now(),
                       status = CASE WHEN $3 THEN 'Rejected' ELSE status END WHERE id=$1""",
                reservation_id, command_id, exc.status == 502)
            exc.details = [*(exc.details or []), {"reservation_id": reservation_id}]
        raise
    answer = result["response"].get("status")
    status = answer if answer in ANSWERS else "Rejected"
    await pool.execute("UPDATE reservations SET status=$2, command_id=$3, updated_at=now() WHERE id=$1",
                       reservation_id, status, result["command_id"])
    return await _get(pool, reservation_id)


@router.get("/reservations/{reservation_id}", response_model=Reservation, responses=NOT_FOUND,
            summary="One reservation")
async def get_reservation(request: Request, reservation_id: ReservationId) -> Any:
    return await _get(app_of(request).pool, reservation_id)


@router.delete("/reservations/{reservation_id}", response_model=Reservation,
               summary="Cancel a reservation (sends CancelReservation)",
               responses={**CHARGER_RESPONSES,
                          404: {"model": ErrorBody, "description": "No such reservation (or charge point)"},
                          409: {"model": ErrorBody, "description": "The reservation is not active (only Accepted "
                                                                   "ones can be cancelled), the charger refused, "
                                                                   "or the charger is offline"}})
async def cancel_reservation(request: Request, reservation_id: ReservationId,
                             principal: Principal = Depends(require("operator"))) -> Any:
    pool = app_of(request).pool
    r = await _get(pool, reservation_id)
    if r["status"] != "Accepted":
        raise ApiError(409, f"reservation {reservation_id} is {r['status']}, not Accepted: nothing to cancel",
                       "conflict")
    loc = await locate_online(request, r["charge_point_id"])
    command = cmds.CancelReservation(reservation_id=reservation_id)
    build_or_422(command, loc.version)
    result = await execute(request, principal, r["charge_point_id"], command, None)
    answer = result["response"].get("status")
    if answer != "Accepted":
        await pool.execute("UPDATE reservations SET cancel_command_id=$2, updated_at=now() WHERE id=$1",
                           reservation_id, result["command_id"])
        raise ApiError(409, f"the charger answered CancelReservation with {answer!r}", "cancel_rejected",
                       [{"command_id": result["command_id"], "response": result["response"]}])
    await pool.execute(
        """UPDATE reservations SET status='Cancelled', cancel_command_id=$2, updated_at=now()
           WHERE id=$1 AND status='Accepted'""", reservation_id, result["command_id"])
    return await _get(pool, reservation_id)
