"""Charge points: registration, settings, station assignment, live state, connectors and status history."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..passwords import hash_password
from ..routing import UnknownCharger
from .auth import ApiRoute, require
from .common import CP_ID_MAX, Page, Paging, Timestamp, Where, app_of, fetch_page, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

router = APIRouter(tags=["chargers"], route_class=ApiRoute, dependencies=[Depends(require("operator"))],
                   responses=ERROR_RESPONSES)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No such charge point"}}

#: Charge point ids the API registers: OCPP 2.0.1 identifierString characters, 1-64 of them.
CP_ID_PATTERN = r"^[A-Za-z0-9*_=:+|@.\-]{1,64}$"

ChargerId = Annotated[str, Path(min_length=1, max_length=CP_ID_MAX, description="Charge point id")]
StationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


class Connector(BaseModel):
    connector_id: int
    evse_id: int | None = None
    status: str
    error_code: str
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    status_at: datetime
    updated_at: datetime


class ConnectorState(Connector):
    charge_point_id: str


class Charger(BaseModel):
    id: str
    station_id: str | None = None
    security_profile: int
    has_password: bool
    registration_status: str
    ocpp_version: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None
    boot_reason: str | None = None
    boot_at: datetime | None = None
    registered_at: datetime
    updated_at: datetime
    online: bool = Field(description="Connected to a node whose lease is current")
    node_id: str | None = Field(None, description="The node holding the connection (when online)")
    connected_since: datetime | None = None
    last_seen: datetime | None = None
    connectors: list[Connector]


class ChargerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CP_ID_PATTERN, description="The id the charger uses in its URL")
    password: str | None = Field(None, min_length=8, max_length=128, description="HTTP Basic password "
                                                                                 "(security profiles 1 and 2)")
    security_profile: int | None = Field(None, ge=0, le=3, description="0 none, 1 Basic, 2 TLS+Basic, 3 mutual "
                                                                       "TLS; default 1 with a password, else 0")
    station_id: StationId | None = None

    @field_validator("id")
    @classmethod
    def _not_dots(cls, value: str) -> str:
        if set(value) == {"."}:
            raise ValueError("an id of dots only is not usable in URLs")
        return value


class ChargerUpdate(BaseModel):
    """Only the fields given are changed; ``null`` clears the password or the station."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(None, min_length=8, max_length=128)
    security_profile: int | None = Field(None, ge=0, le=3)
    station_id: StationId | None = None


class StatusEntry(BaseModel):
    id: int
    charge_point_id: str
    connector_id: int
    evse_id: int | None = None
    status: str
    error_code: str
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    status_at: datetime
    received_at: datetime


class ConnectionEntry(BaseModel):
    id: int
    node_id: str
    ocpp_version: str
    remote_address: str | None = None
    connected_at: datetime
    disconnected_at: datetime | None = None
    close_code: int | None = None


_ONLINE = "(cp.lease_expires_at IS NOT NULL AND cp.lease_expires_at > now())"

CHARGER_SELECT = f"""
SELECT cp.id, cp.station_id, cp.security_profile, cp.password_hash IS NOT NULL AS has_password,
       cp.registration_status, cp.ocpp_version, cp.vendor, cp.model, cp.serial_number,
       cp.charge_box_serial_number, cp.firmware_version, cp.iccid, cp.imsi, cp.meter_type,
       cp.meter_serial_number, cp.boot_reason, cp.boot_at, cp.registered_at, cp.updated_at,
       {_ONLINE} AS online, CASE WHEN {_ONLINE} THEN cp.node_id END AS node_id,
       cp.connected_since, cp.last_seen,
       COALESCE((SELECT json_agg(json_build_object(
                    'connector_id', c.connector_id, 'evse_id', c.evse_id, 'status', c.status,
                    'error_code', c.error_code, 'info', c.info, 'vendor_id', c.vendor_id,
                    'vendor_error_code', c.vendor_error_code, 'status_at', c.status_at,
                    'updated_at', c.updated_at) ORDER BY c.connector_id)
                 FROM connectors c WHERE c.charge_point_id = cp.id), '[]'::json) AS connectors
FROM charge_points cp"""


async def charger_row(db: asyncpg.Pool | asyncpg.Connection, cp_id: str) -> dict[str, Any]:
    row = await db.fetchrow(f"{CHARGER_SELECT} WHERE cp.id = $1", cp_id)
    if row is None:
        raise ApiError(404, f"no charge point {cp_id!r}")
    return dict(row)


async def require_charger(db: asyncpg.Pool | asyncpg.Connection, cp_id: str) -> None:
    if not await db.fetchval("SELECT EXISTS (SELECT 1 FROM charge_points WHERE id=$1)", cp_id):
        raise ApiError(404, f"no charge point {cp_id!r}")


async def check_station(db: asyncpg.Pool | asyncpg.Connection, station_id: str | None) -> None:
    """With the registry's stations table present, a station must exist there."""
    if station_id is None:
        return
    if await db.fetchval("SELECT to_regclass('stations') IS NOT NULL"):
        if not await db.fetchval("SELECT EXISTS (SELECT 1 FROM stations WHERE station_id = $1)", station_id):
            raise ApiError(422, f"no station {station_id!r}", "validation_error",
                           [{"loc": ["body", "station_id"], "message": "unknown station", "type": "not_found"}])


async def _hash(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, hash_password, password)


# --------------------------------------------------------------------- charge points
@router.get("/chargers", response_model=Page[Charger], summary="List charge points")
async def list_chargers(
    request: Request,
    page: Paging = Depends(paging),
    station: str | None = Query(None, max_length=64, description="Only chargers of this station"),
    online: bool | None = Query(None, description="Only online (true) or offline (false) chargers"),
    version: Literal["1.6", "2.0.1", "2.1"] | None = Query(None, description="OCPP version"),
    status: str | None = Query(None, max_length=30, description="Only chargers with a connector in this status"),
    q: str | None = Query(None, max_length=64, description="Id contains this text"),
) -> Any:
    w = Where()
    w.add_if(station, "cp.station_id = {}")
    if online is not None:
        w.add(f"{_ONLINE} = {{}}", online)
    w.add_if(version, "cp.ocpp_version = {}")
    w.add_if(status, "EXISTS (SELECT 1 FROM connectors c WHERE c.charge_point_id = cp.id AND c.status = {})")
    if q:
        w.add("strpos(lower(cp.id), lower({})) > 0", q)
    return await fetch_page(app_of(request).pool, CHARGER_SELECT, w, "id", page)


@router.post("/chargers", response_model=Charger, status_code=201, summary="Register a charge point",
             responses={409: {"model": ErrorBody, "description": "The id is registered already"}})
async def create_charger(request: Request, body: ChargerCreate, response: Response) -> Any:
    pool = app_of(request).pool
    await check_station(pool, body.station_id)
    hashed = await _hash(body.password) if body.password else None
    profile = body.security_profile if body.security_profile is not None else (1 if body.password else 0)
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetchval(
            """INSERT INTO charge_points (id, password_hash, security_profile, station_id) VALUES ($1,$2,$3,$4)
               ON CONFLICT (id) DO NOTHING RETURNING true""", body.id, hashed, profile, body.station_id)
        if not created:
            raise ApiError(409, f"charge point {body.id!r} is registered already", "conflict")
        row = await charger_row(conn, body.id)
    response.headers["Location"] = f"{request.url.path}/{body.id}"
    return row


@router.get("/chargers/{cp_id}", response_model=Charger, summary="A charge point with its live state",
            responses=NOT_FOUND)
async def get_charger(request: Request, cp_id: ChargerId) -> Any:
    return await charger_row(app_of(request).pool, cp_id)


@router.patch("/chargers/{cp_id}", response_model=Charger, responses=NOT_FOUND,
              summary="Change password, security profile or station")
async def update_charger(request: Request, cp_id: ChargerId, body: ChargerUpdate) -> Any:
    pool = app_of(request).pool
    fields = body.model_fields_set
    if "station_id" in fields:
        await check_station(pool, body.station_id)
    hashed = await _hash(body.password) if body.password else None
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow("SELECT security_profile FROM charge_points WHERE id=$1 FOR UPDATE", cp_id)
        if current is None:
            raise ApiError(404, f"no charge point {cp_id!r}")
        w = Where()
        sets = ["updated_at = now()"]
        if "password" in fields:
            sets.append(f"password_hash = {w.arg(hashed)}")
        if "security_profile" in fields and body.security_profile is not None:
            sets.append(f"security_profile = {w.arg(body.security_profile)}")
        elif "password" in fields and hashed and current["security_profile"] == 0:
            sets.append("security_profile = 1")
        if "station_id" in fields:
            sets.append(f"station_id = {w.arg(body.station_id)}")
        await conn.execute(f"UPDATE charge_points SET {', '.join(sets)} WHERE id = {w.arg(cp_id)}", *w.args)
        return await charger_row(conn, cp_id)


@router.delete("/chargers/{cp_id}", status_code=204, responses=NOT_FOUND,
               summary="Unregister a charge point (its sessions and history are kept; it is disconnected)")
async def delete_charger(request: Request, cp_id: ChargerId) -> Response:
    app = app_of(request)
    try:
        loc = await app.router.locate(cp_id)
    except UnknownCharger:
        raise ApiError(404, f"no charge point {cp_id!r}") from None
    if await app.pool.execute("DELETE FROM charge_points WHERE id=$1", cp_id) == "DELETE 0":
        raise ApiError(404, f"no charge point {cp_id!r}")
    try:
        await app.router.disconnect(loc)
    except (asyncpg.PostgresError, OSError):
        pass  # the charger is refused at its next connection anyway
    return Response(status_code=204)


@router.get("/chargers/{cp_id}/connections", response_model=Page[ConnectionEntry], responses=NOT_FOUND,
            summary="A charge point's connection history (newest first)")
async def list_connections(request: Request, cp_id: ChargerId, page: Paging = Depends(paging),
                           since: Timestamp | None = Query(None), until: Timestamp | None = Query(None)) -> Any:
    pool = app_of(request).pool
    await require_charger(pool, cp_id)
    w = Where().add("charge_point_id = {}", cp_id).add_if(since, "connected_at >= {}").add_if(
        until, "connected_at < {}")
    return await fetch_page(pool, """SELECT id, node_id, ocpp_version, remote_address, connected_at,
                                             disconnected_at, close_code FROM charger_connections""",
                            w, "connected_at DESC, id DESC", page)


# --------------------------------------------------------------------- connectors
CONNECTOR_SELECT = """SELECT c.charge_point_id, c.connector_id, c.evse_id, c.status, c.error_code, c.info,
                             c.vendor_id, c.vendor_error_code, c.status_at, c.updated_at FROM connectors c"""


def _connector_where(charger: str | None, station: str | None, connector: int | None,
                     status: str | None) -> Where:
    w = Where()
    w.add_if(charger, "c.charge_point_id = {}")
    w.add_station(station, "c.charge_point_id")
    w.add_if(connector, "c.connector_id = {}")
    w.add_if(status, "c.status = {}")
    return w


@router.get("/connectors", response_model=Page[ConnectorState], tags=["connectors"],
            summary="Current connector states")
async def list_connectors(
    request: Request, page: Paging = Depends(paging),
    charger: str | None = Query(None, max_length=CP_ID_MAX), station: str | None = Query(None, max_length=64),
    connector: int | None = Query(None, ge=0, le=2_147_483_647),
    status: str | None = Query(None, max_length=30, description="e.g. Available, Charging, Faulted"),
) -> Any:
    return await fetch_page(app_of(request).pool, CONNECTOR_SELECT,
                            _connector_where(charger, station, connector, status),
                            "charge_point_id, connector_id", page)


@router.get("/chargers/{cp_id}/connectors", response_model=Page[ConnectorState], tags=["connectors"],
            responses=NOT_FOUND, summary="A charge point's connectors")
async def charger_connectors(request: Request, cp_id: ChargerId, page: Paging = Depends(paging)) -> Any:
    pool = app_of(request).pool
    await require_charger(pool, cp_id)
    return await fetch_page(pool, CONNECTOR_SELECT, _connector_where(cp_id, None, None, None),
                            "connector_id", page)


async def _status_history(request: Request, page: Paging, charger: str | None, station: str | None,
                          connector: int | None, status: str | None, since: datetime | None,
                          until: datetime | None) -> dict[str, Any]:
    w = Where()
    w.add_if(charger, "charge_point_id = {}")
    w.add_station(station)
    w.add_if(connector, "connector_id = {}")
    w.add_if(status, "status = {}")
    w.add_if(since, "status_at >= {}")
    w.add_if(until, "status_at < {}")
    return await fetch_page(
        app_of(request).pool,
        """SELECT id, charge_point_id, connector_id, evse_id, status, error_code, info, vendor_id,
                  vendor_error_code, status_at, received_at FROM status_history""",
        w, "status_at DESC, id DESC", page)


@router.get("/status-history", response_model=Page[StatusEntry], tags=["connectors"],
            summary="Connector status history (newest first)")
async def status_history(
    request: Request, page: Paging = Depends(paging),
    charger: str | None = Query(None, max_length=CP_ID_MAX), station: str | None = Query(None, max_length=64),
    connector: int | None = Query(None, ge=0, le=2_147_483_647), status: str | None = Query(None, max_length=30),
    since: Timestamp | None = Query(None, description="Reported at or after"),
    until: Timestamp | None = Query(None, description="Reported before"),
) -> Any:
    return await _status_history(request, page, charger, station, connector, status, since, until)


@router.get("/chargers/{cp_id}/status-history", response_model=Page[StatusEntry], tags=["connectors"],
            responses=NOT_FOUND, summary="A charge point's connector status history (newest first)")
async def charger_status_history(
    request: Request, cp_id: ChargerId, page: Paging = Depends(paging),
    connector: int | None = Query(None, ge=0, le=2_147_483_647), status: str | None = Query(None, max_length=30),
    since: Timestamp | None = Query(None), until: Timestamp | None = Query(None),
) -> Any:
    await require_charger(app_of(request).pool, cp_id)
    return await _status_history(request, page, cp_id, None, connector, status, since, until)
