"""Operator API for tariffs, session costs and supervision platforms (under ``/api/v1``),
and the mounting of the T/CEC 102 server routes (``/evcs/...``, no bearer token of ours:
the standard's own token and signature apply).

* ``GET/POST /tariffs``, ``POST /tariffs/{name}/assignments`` -- operator (and admin);
* ``GET /sessions/{id}/cost`` -- operator;
* ``GET /platforms/status``, ``GET /platforms/disputes`` -- operator;
* ``GET/POST /platforms``, ``DELETE /platforms/{name}``, ``POST /platforms/{name}/resume``,
  ``POST /platforms/{name}/retry`` -- admin (secrets are write-only, never returned).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from ..api.auth import ApiRoute, Principal, require
from ..api.errors import ERROR_RESPONSES, ApiError
from ..pricing import TariffExists, UnknownTariff, add_tariff_version, assign_tariff, list_tariffs
from ..secretbox import secret_box
from ..tariffs import TariffError
from . import platforms as plat
from .codec import Secrets
from .server import router as evcs_router

__all__ = ["router", "install"]

router = APIRouter(route_class=ApiRoute, responses=ERROR_RESPONSES)
operator = [Depends(require("operator"))]
admin = [Depends(require("admin"))]


def install(api: FastAPI, v1: APIRouter) -> None:
    """Add these routes to the API's ``/api/v1`` router and the ``/evcs`` server at the root."""
    v1.include_router(router)
    api.include_router(evcs_router)


# --------------------------------------------------------------------------- tariffs
class PeriodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(description="Local start time HH:MM or HH:MM:SS", examples=["08:00"])
    elec_price: str = Field(description="Electricity price, yuan/kWh, ≤ 4 decimals", examples=["0.6200"])
    service_price: str = Field(description="Service fee, yuan/kWh, ≤ 4 decimals", examples=["0.6000"])


class TariffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    valid_from: date
    periods: list[PeriodIn] = Field(min_length=1, max_length=48)


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    station_id: str | None = Field(None, max_length=64, description="None = the operator's default tariff")
    valid_from: datetime | None = Field(None, description="Default: now")


@router.get("/tariffs", tags=["tariffs"], dependencies=operator, summary="Tariffs, versions, assignments")
async def get_tariffs(request: Request) -> Any:
    return {"items": await list_tariffs(request.app.state.csms.pool)}


@router.post("/tariffs", tags=["tariffs"], status_code=201, summary="Add a tariff or a new version of one")
async def post_tariff(request: Request, body: TariffIn,
                      who: Annotated[Principal, Depends(require("operator"))]) -> Any:
    async with request.app.state.csms.pool.acquire() as conn:
        try:
            return await add_tariff_version(conn, body.name, body.valid_from,
                                            [(p.start, p.elec_price, p.service_price) for p in body.periods],
                                            created_by=who.name)
        except TariffExists as exc:
            raise ApiError(409, str(exc)) from None
        except TariffError as exc:
            raise ApiError(422, str(exc), "validation_error") from None


@router.post("/tariffs/{name}/assignments", tags=["tariffs"], status_code=201,
             summary="Use a tariff for a station (or as the default) from a time on")
async def post_assignment(request: Request, name: Annotated[str, Path(max_length=100)], body: AssignmentIn,
                          who: Annotated[Principal, Depends(require("operator"))]) -> Any:
    async with request.app.state.csms.pool.acquire() as conn:
        try:
            return await assign_tariff(conn, name, body.station_id, body.valid_from, created_by=who.name)
        except UnknownTariff as exc:
            raise ApiError(404, str(exc)) from None


@router.get("/sessions/{session_id}/cost", tags=["sessions"], dependencies=operator,
            summary="A session's cost: totals and T/CEC ChargeDetails per tariff period")
async def get_session_cost(request: Request, session_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Any:
    row = await request.app.state.csms.pool.fetchrow(
        """SELECT c.session_id, t.name AS tariff, v.valid_from AS tariff_valid_from, c.station_id,
                  c.total_power, c.total_elec_money, c.total_service_money, c.total_money, c.details::text AS details,
                  c.error, c.priced_at
           FROM session_costs c LEFT JOIN tariffs t ON t.id = c.tariff_id
           LEFT JOIN tariff_versions v ON v.id = c.tariff_version_id WHERE c.session_id = $1""", session_id)
    if row is None:
        raise ApiError(404, f"session {session_id} has no cost (not ended, or unknown)")
    import json

    out = dict(row)
    out["details"] = json.loads(out["details"])
    for k in ("total_power", "total_elec_money", "total_service_money", "total_money"):
        out[k] = str(out[k]) if out[k] is not None else None
    orders = await request.app.state.csms.pool.fetch(
        """SELECT p.name AS platform, o.start_charge_seq, o.confirm_result, o.confirmed_at
           FROM tcec_charge_orders o JOIN tcec_platforms p ON p.id = o.platform_id WHERE o.session_id=$1""",
        session_id)
    out["charge_orders"] = [dict(o) for o in orders]
    return out


# --------------------------------------------------------------------------- platforms
class PlatformIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    operator_id: str = Field(min_length=1, max_length=32, description="The platform's OperatorID")
    our_operator_id: str = Field(pattern=r"^[A-Za-z0-9]{9}$", description="Our OperatorID towards it")
    base_url: str = Field(max_length=500)
    version: str = "20160701"
    interfaces: list[str] | None = None
    service_tel: str = Field("", max_length=30)
    operator_secret: str = Field(min_length=1, max_length=200)
    data_secret: str = Field(min_length=16, max_length=16)
    data_secret_iv: str = Field(min_length=16, max_length=16)
    sig_secret: str = Field(min_length=1, max_length=200)
    replace: bool = False


@router.get("/platforms/status", tags=["platforms"], dependencies=operator,
            summary="Per platform: backlog, oldest undelivered age, last success, last error")
async def get_platform_status(request: Request) -> Any:
    return {"items": await plat.platform_status(request.app.state.csms.pool)}


@router.get("/platforms/disputes", tags=["platforms"], dependencies=operator,
            summary="Charge orders a platform disputed (ConfirmResult 1)")
async def get_disputes(request: Request) -> Any:
    return {"items": await plat.disputed_orders(request.app.state.csms.pool)}


@router.get("/platforms", tags=["platforms"], dependencies=admin, summary="Configured platforms (no secrets)")
async def get_platforms(request: Request) -> Any:
    return {"items": await plat.list_platforms(request.app.state.csms.pool)}


@router.post("/platforms", tags=["platforms"], dependencies=admin, status_code=201,
             summary="Add (or with replace=true update) a platform")
async def post_platform(request: Request, body: PlatformIn) -> Any:
    app = request.app.state.csms
    try:
        secrets = Secrets(body.operator_secret, body.data_secret, body.data_secret_iv, body.sig_secret)
        async with app.pool.acquire() as conn:
            out = await plat.add_platform(
                conn, secret_box(app.settings), name=body.name, operator_id=body.operator_id,
                our_operator_id=body.our_operator_id, base_url=body.base_url, secrets=secrets,
                version=body.version, interfaces=body.interfaces, service_tel=body.service_tel,
                replace=body.replace)
    except plat.PlatformExists as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, str(exc), "validation_error") from None
    cache = getattr(request.app.state, "tcec_platforms", None)
    if cache is not None:
        cache.invalidate()
    return out


@router.delete("/platforms/{name}", tags=["platforms"], dependencies=admin, status_code=204)
async def delete_platform(request: Request, name: Annotated[str, Path(max_length=64)]) -> None:
    if not await plat.remove_platform(request.app.state.csms.pool, name):
        raise ApiError(404, f"no platform {name!r}")


@router.post("/platforms/{name}/resume", tags=["platforms"], dependencies=admin,
             summary="Resume delivery after a halt (Ret 4001)")
async def resume(request: Request, name: Annotated[str, Path(max_length=64)]) -> Any:
    if not await plat.resume_platform(request.app.state.csms.pool, name):
        raise ApiError(404, f"no platform {name!r}")
    return {"resumed": name}


@router.post("/platforms/{name}/retry", tags=["platforms"], dependencies=admin,
             summary="Requeue notifications the platform rejected (Ret 4003/4004)")
async def retry(request: Request, name: Annotated[str, Path(max_length=64)]) -> Any:
    return {"requeued": await plat.retry_rejected(request.app.state.csms.pool, name)}
