"""The charging profiles library (SteVe's Charging Profiles page): CRUD, apply to a charger, clear.

A library profile's id is the chargingProfileId sent to chargers. ``apply``
sends SetChargingProfile through the command machinery
(:func:`csms.api.commands.execute`; the profile is mapped per OCPP version by
:mod:`csms.commands`) and records an assignment with the charger's answer;
``clear`` sends ClearChargingProfile for the profile's id and marks the
charger's assignments cleared when the charger accepts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Optional

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import commands as cmds
from .auth import ApiRoute, Principal, require
from .commands import execute
from .common import CP_ID_MAX, Page, Paging, Where, app_of, fetch_page, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody
from .reservations import CHARGER_RESPONSES, build_or_422, locate_online

router = APIRouter(tags=["charging profiles"], route_class=ApiRoute, dependencies=[Depends(require("operator"))],
                   responses=ERROR_RESPONSES)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No such charging profile"}}
NAME_TAKEN = {409: {"model": ErrorBody, "description": "Another profile has this name"}}
ProfileId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The profile (= OCPP chargingProfileId)")]
Purpose = Literal["TxDefaultProfile", "TxProfile", "ChargePointMaxProfile"]
Limit = Annotated[float, Field(ge=0, le=1_000_000)]


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    startPeriod: cmds.Int32 = Field(description="Seconds from the start of the schedule")
    limit: Limit = Field(description="In the schedule's unit (A or W), ≥ 0")
    numberPhases: Optional[int] = Field(None, ge=1, le=3)


class Schedule(BaseModel):
    """An OCPP ChargingSchedule (field names as in OCPP)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    chargingRateUnit: Literal["A", "W"]
    periods: list[Period] = Field(min_length=1, max_length=1024,
                                  description="Sorted by startPeriod, the first at 0")
    duration: Optional[cmds.Int32] = Field(None, description="Seconds")
    startSchedule: Optional[cmds.Timestamp] = None
    minChargingRate: Optional[Limit] = None

    @model_validator(mode="after")
    def _periods(self) -> "Schedule":
        if self.periods[0].startPeriod != 0:
            raise ValueError("the first period must start at 0")
        for a, b in zip(self.periods, self.periods[1:]):
            if b.startPeriod <= a.startPeriod:
                raise ValueError("periods must be sorted by startPeriod (strictly increasing)")
        return self


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    description: Optional[str] = Field(None, max_length=1000)
    purpose: Purpose
    stack_level: cmds.Int32 = 0
    kind: Literal["Absolute", "Recurring", "Relative"]
    recurrency: Optional[Literal["Daily", "Weekly"]] = Field(None, description="Required for kind Recurring")
    valid_from: Optional[cmds.Timestamp] = None
    valid_to: Optional[cmds.Timestamp] = None
    schedule: Schedule

    @model_validator(mode="after")
    def _consistent(self) -> "ProfileIn":
        if (self.kind == "Recurring") != (self.recurrency is not None):
            raise ValueError("recurrency is required for kind Recurring, and only for it")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class Profile(BaseModel):
    id: int
    name: str
    description: Optional[str] = None
    purpose: Purpose
    stack_level: int
    kind: str
    recurrency: Optional[str] = None
    valid_from: Optional[datetime] = None
    valid_to: Optional[datetime] = None
    schedule: dict[str, Any]
    active_assignments: int
    created_at: datetime
    updated_at: datetime


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    charge_point_id: str = Field(min_length=1, max_length=CP_ID_MAX)
    connector_id: cmds.Int32 = Field(0, description="1.6 connector / 2.x EVSE (0 = the whole charger)")


class ClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    charge_point_id: str = Field(min_length=1, max_length=CP_ID_MAX)
    connector_id: Optional[cmds.Int32] = Field(None, description="1.6 connector / 2.x EVSE; none = wherever "
                                                                 "the profile is installed")


class Assignment(BaseModel):
    id: int
    profile_id: int
    charge_point_id: str
    connector_id: int
    command_id: Optional[int] = None
    status: str
    assigned_at: datetime
    cleared_at: Optional[datetime] = None
    clear_command_id: Optional[int] = None


class ClearResult(BaseModel):
    command_id: int
    status: Optional[str] = Field(None, description="The charger's answer (Accepted / Unknown)")
    cleared: int = Field(description="Assignments marked cleared")


SELECT = """SELECT p.id, p.name, p.description, p.purpose, p.stack_level, p.kind, p.recurrency, p.valid_from,
                   p.valid_to, p.schedule, p.created_at, p.updated_at,
                   (SELECT count(*) FROM charging_profile_assignments a WHERE a.profile_id = p.id
                      AND a.cleared_at IS NULL AND a.status = 'Accepted') AS active_assignments
            FROM charging_profiles p"""
ASSIGNMENT_SELECT = """SELECT id, profile_id, charge_point_id, connector_id, command_id, status, assigned_at,
                              cleared_at, clear_command_id FROM charging_profile_assignments"""
_COLUMNS = ("name", "description", "purpose", "stack_level", "kind", "recurrency", "valid_from", "valid_to",
            "schedule")


def _values(body: ProfileIn) -> list[Any]:
    return [body.schedule.model_dump(mode="json", exclude_none=True) if c == "schedule" else getattr(body, c)
            for c in _COLUMNS]


async def _get(db, profile_id: int) -> dict[str, Any]:
    row = await db.fetchrow(f"{SELECT} WHERE p.id = $1", profile_id)
    if row is None:
        raise ApiError(404, f"no charging profile {profile_id}")
    return dict(row)


def ocpp_profile(row: dict[str, Any]) -> cmds.ChargingProfile:
    """A stored profile in :mod:`csms.commands`' version-neutral form (mapped per version there)."""
    s = row["schedule"]
    return cmds.ChargingProfile(
        id=row["id"], stack_level=row["stack_level"], purpose=row["purpose"], kind=row["kind"],
        recurrency=row["recurrency"], valid_from=row["valid_from"], valid_to=row["valid_to"],
        schedule=cmds.ChargingSchedule(
            unit=s["chargingRateUnit"], duration=s.get("duration"), start=s.get("startSchedule"),
            min_charging_rate=s.get("minChargingRate"),
            periods=[cmds.ChargingSchedulePeriod(start_period=p["startPeriod"], limit=p["limit"],
                                                 number_phases=p.get("numberPhases")) for p in s["periods"]]))


@router.get("/charging-profiles", response_model=Page[Profile], summary="The charging profiles library")
async def list_profiles(request: Request, page: Paging = Depends(paging), purpose: Optional[Purpose] = Query(None),
                        q: Optional[str] = Query(None, max_length=100, description="Name contains this text")
                        ) -> Any:
    w = Where()
    w.add_if(purpose, "p.purpose = {}")
    if q:
        w.add("strpos(lower(p.name), lower({})) > 0", q)
    return await fetch_page(app_of(request).pool, SELECT, w, "name", page)


@router.post("/charging-profiles", response_model=Profile, status_code=201, summary="Add a charging profile",
             responses=NAME_TAKEN)
async def create_profile(request: Request, body: ProfileIn, response: Response) -> Any:
    pool = app_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        profile_id = await conn.fetchval(
            f"""INSERT INTO charging_profiles ({', '.join(_COLUMNS)}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
                ON CONFLICT (name) DO NOTHING RETURNING id""", *_values(body))
        if profile_id is None:
            raise ApiError(409, f"a charging profile named {body.name!r} exists already", "conflict")
        row = await _get(conn, profile_id)
    response.headers["Location"] = f"{request.url.path}/{profile_id}"
    return row


@router.get("/charging-profiles/{profile_id}", response_model=Profile, responses=NOT_FOUND,
            summary="One charging profile")
async def get_profile(request: Request, profile_id: ProfileId) -> Any:
    return await _get(app_of(request).pool, profile_id)


@router.put("/charging-profiles/{profile_id}", response_model=Profile, responses={**NOT_FOUND, **NAME_TAKEN},
            summary="Replace a charging profile (chargers keep what was applied until it is applied again)")
async def replace_profile(request: Request, profile_id: ProfileId, body: ProfileIn) -> Any:
    pool = app_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT true FROM charging_profiles WHERE id=$1 FOR UPDATE", profile_id):
            raise ApiError(404, f"no charging profile {profile_id}")
        if await conn.fetchval("SELECT true FROM charging_profiles WHERE name=$1 AND id<>$2", body.name, profile_id):
            raise ApiError(409, f"a charging profile named {body.name!r} exists already", "conflict")
        sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(_COLUMNS))
        try:
            await conn.execute(f"UPDATE charging_profiles SET {sets}, updated_at = now() WHERE id = $1",
                               profile_id, *_values(body))
        except asyncpg.UniqueViolationError:  # renamed concurrently to the same name
            raise ApiError(409, f"a charging profile named {body.name!r} exists already", "conflict") from None
        return await _get(conn, profile_id)


@router.delete("/charging-profiles/{profile_id}", status_code=204, summary="Delete a charging profile",
               responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The profile is installed on "
                                                                                "chargers (clear it first)"}})
async def delete_profile(request: Request, profile_id: ProfileId) -> Response:
    pool = app_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        row = await _get(conn, profile_id)
        if row["active_assignments"]:
            raise ApiError(409, f"charging profile {profile_id} is installed on {row['active_assignments']} "
                                "charger(s); clear it first", "conflict")
        await conn.execute("DELETE FROM charging_profiles WHERE id=$1", profile_id)
    return Response(status_code=204)


@router.post("/charging-profiles/{profile_id}/apply", response_model=Assignment,
             summary="Send the profile to a charger (SetChargingProfile); the charger's answer is the status",
             responses={**CHARGER_RESPONSES,
                        404: {"model": ErrorBody, "description": "No such charging profile or charge point"}})
async def apply_profile(request: Request, profile_id: ProfileId, body: ApplyIn,
                        principal: Principal = Depends(require("operator"))) -> Any:
    pool = app_of(request).pool
    profile = ocpp_profile(await _get(pool, profile_id))
    command = cmds.SetChargingProfile(connector_id=body.connector_id, profile=profile)
    loc = await locate_online(request, body.charge_point_id)
    build_or_422(command, loc.version)
    result = await execute(request, principal, body.charge_point_id, command, None)
    status = str(result["response"].get("status") or "Unknown")[:50]
    row = await pool.fetchrow(
        """INSERT INTO charging_profile_assignments (profile_id, charge_point_id, connector_id, command_id, status)
            VALUES ($1,$2,$3,$4,$5) RETURNING id""",
        profile_id, body.charge_point_id, body.connector_id, result["command_id"], status)
    return dict(await pool.fetchrow(f"{ASSIGNMENT_SELECT} WHERE id=$1", row["id"]))


@router.post("/charging-profiles/{profile_id}/clear", response_model=ClearResult,
             summary="Remove the profile from a charger (ClearChargingProfile by id)",
             responses={**CHARGER_RESPONSES,
                        404: {"model": ErrorBody, "description": "No such charging profile or charge point"}})
async def clear_profile(request: Request, profile_id: ProfileId, body: ClearIn,
                        principal: Principal = Depends(require("operator"))) -> Any:
    pool = app_of(request).pool
    await _get(pool, profile_id)
    command = cmds.ClearChargingProfile(profile_id=profile_id, connector_id=body.connector_id)
    loc = await locate_online(request, body.charge_point_id)
    build_or_422(command, loc.version)
    result = await execute(request, principal, body.charge_point_id, command, None)
    status = result["response"].get("status")
    cleared = 0
    if status == "Accepted":
        w = Where().add("profile_id = {}", profile_id).add("charge_point_id = {}", body.charge_point_id)
        w.add("cleared_at IS NULL")
        w.add_if(body.connector_id, "connector_id = {}")
        done = await pool.execute(f"UPDATE charging_profile_assignments SET cleared_at = now(), "
                                  f"clear_command_id = {w.arg(result['command_id'])} {w.sql()}", *w.args)
        cleared = int(done.split()[-1])
    return {"command_id": result["command_id"], "status": status, "cleared": cleared}


@router.get("/charging-profiles/{profile_id}/assignments", response_model=Page[Assignment], responses=NOT_FOUND,
            summary="Where the profile was applied (newest first)")
async def list_assignments(request: Request, profile_id: ProfileId, page: Paging = Depends(paging),
                           charger: Optional[str] = Query(None, max_length=CP_ID_MAX),
                           active: Optional[bool] = Query(None, description="Accepted and not cleared (true) / "
                                                                            "the others (false)")) -> Any:
    pool = app_of(request).pool
    await _get(pool, profile_id)
    w = Where().add("profile_id = {}", profile_id)
    w.add_if(charger, "charge_point_id = {}")
    w.add_if(active, "(status = 'Accepted' AND cleared_at IS NULL) = {}")
    return await fetch_page(pool, ASSIGNMENT_SELECT, w, "assigned_at DESC, id DESC", page)
