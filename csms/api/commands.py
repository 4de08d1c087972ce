"""CSMS→charger commands: one endpoint per command, and the audit log of every command sent.

``POST /chargers/{cp_id}/commands/{command}`` maps the typed request to the
charger's OCPP version (:mod:`csms.commands`), records it in ``command_log``
*before* sending, routes it to whichever node holds the charger's connection
(:mod:`csms.routing`), waits for the answer, completes the log row and
returns the charger's answer in ``response``. Commands to one charger are
queued by the gateway, never failed for being concurrent.

Outcomes: 200 answered; 409 charger offline; 504 no answer in time (the
timeout defaults to the ``command_timeout`` setting); 502 the charger
answered with a CALLERROR; 422 the command is invalid for the charger's
OCPP version (nothing is sent or recorded).
"""

# No ``from __future__ import annotations`` here: the endpoints are made in a loop and FastAPI must
# see the body model classes themselves in their signatures.

import asyncio
import logging
import time
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel

from .. import commands as cmds
from .. import validation
from ..gateway import ChargerOffline, CommandRejected, CommandTimeout
from ..routing import Location, UnknownCharger
from .auth import ApiRoute, Principal, require
from .common import CP_ID_MAX, ID_MAX, Page, Paging, Timestamp, Where, app_of, fetch_page, paging
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

log = logging.getLogger("csms.api.commands")

router = APIRouter(tags=["commands"], route_class=ApiRoute, dependencies=[Depends(require("operator"))],
                   responses=ERROR_RESPONSES)

Outcome = Literal["pending", "answered", "call_error", "timeout", "offline", "failed"]


class CommandResult(BaseModel):
    command_id: int
    charge_point_id: str
    command: str
    action: str
    ocpp_version: str
    node_id: Optional[str] = None
    outcome: Outcome
    response: dict[str, Any]
    duration_ms: float


class CommandRecord(BaseModel):
    id: int
    charge_point_id: str
    command: str
    action: Optional[str] = None
    ocpp_version: Optional[str] = None
    request: Any = None
    payload: Any = None
    response: Any = None
    outcome: Outcome
    error: Optional[str] = None
    token_name: Optional[str] = None
    api_node_id: str
    charger_node_id: Optional[str] = None
    requested_at: datetime
    finished_at: Optional[datetime] = None
    duration_ms: Optional[float] = None


COMMAND_RESPONSES = {
    404: {"model": ErrorBody, "description": "No such charge point"},
    409: {"model": ErrorBody, "description": "The charger is offline (the command is recorded as such)"},
    502: {"model": ErrorBody, "description": "The charger answered with a CALLERROR"},
    504: {"model": ErrorBody, "description": "The charger did not answer in time (recorded as timed out)"},
}

ChargerId = Annotated[str, Path(min_length=1, max_length=CP_ID_MAX, description="Charge point id")]
TimeoutParam = Annotated[Optional[float], Query(gt=0, le=600, description="Seconds to wait for the charger's "
                                                                          "answer (default: command_timeout)")]


async def _local_list(pool) -> list[cmds.LocalListEntry]:
    rows = await pool.fetch("SELECT id_tag, status, expiry_date, parent_id_tag FROM id_tags ORDER BY id_tag")
    return [cmds.LocalListEntry(id_tag=r["id_tag"], status=r["status"], expiry=r["expiry_date"],
                                parent_id_tag=r["parent_id_tag"]) for r in rows]


async def execute(request: Request, principal: Principal, cp_id: str, command: cmds.Command,
                  timeout: Optional[float]) -> dict[str, Any]:
    """Validate, record, send and complete one command (the body of every command endpoint)."""
    app = app_of(request)
    pool = app.pool
    wait = timeout or app.settings.command_timeout
    try:
        loc: Location = await app.router.locate(cp_id)
    except UnknownCharger:
        raise ApiError(404, f"no charge point {cp_id!r}") from None
    request_json = command.model_dump(mode="json", exclude_unset=True)
    to_send = command
    if isinstance(command, cmds.SendLocalList) and command.from_database:
        to_send = command.model_copy(update={"entries": await _local_list(pool), "from_database": False})
    call: Optional[cmds.OcppCall] = None
    if loc.version is not None:
        try:
            call = cmds.build(to_send, loc.version)
        except cmds.CommandError as exc:
            raise ApiError(422, str(exc), exc.code) from None
    started = time.perf_counter()
    command_id = await pool.fetchval(
        """INSERT INTO command_log (charge_point_id, command, action, ocpp_version, request, payload, token_id,
               token_name, api_node_id, charger_node_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING id""",
        cp_id, command.name, call and call.action, loc.version, request_json, call and call.payload,
        principal.token_id, principal.name, app.settings.node_id, loc.node_id)

    outcome, response, error, status, code = "failed", None, None, 500, "internal_error"
    try:
        if call is None or not loc.online:
            raise ChargerOffline(cp_id)
        response = await app.router.call(loc, call.action, call.payload, wait)
        outcome, status = "answered", 200
    except ChargerOffline as exc:
        outcome, status, code = "offline", 409, "charger_offline"
        detail = str(exc)
        error = (f"charge point {cp_id!r} is offline (not connected to any node)" if detail == cp_id
                 else f"charge point {cp_id!r} is offline: {detail}")
    except CommandTimeout as exc:
        outcome, status, code, error = "timeout", 504, "charger_timeout", str(exc)
    except CommandRejected as exc:
        outcome, status, code = "call_error", 502, "charger_error"
        error = f"the charger answered {call.action if call else ''} with {exc.code}: {exc.description}".strip()
        response = {"errorCode": exc.code, "errorDescription": exc.description, "errorDetails": exc.details}
    except validation.ValidationFailed as exc:
        outcome, status, code, error = "failed", 422, "validation_error", exc.description
    except asyncio.CancelledError:
        error = "cancelled (node shutting down)"
        await asyncio.shield(_finish(pool, command_id, "failed", None, error, started))
        raise
    except Exception as exc:  # noqa: BLE001 - recorded, never silently dropped
        log.exception("command failed", extra={"charge_point_id": cp_id, "command": command.name})
        error = f"internal error: {type(exc).__name__}"
    duration_ms = await asyncio.shield(_finish(pool, command_id, outcome, response, error, started))
    app.bus.publish("command", {"charge_point_id": cp_id, "command_id": command_id, "command": command.name,
                                "action": call.action if call else None, "outcome": outcome,
                                "token_name": principal.name, "duration_ms": duration_ms})
    if status != 200:
        raise ApiError(status, error or outcome, code, [{"command_id": command_id, "outcome": outcome,
                                                         **({"response": response} if response else {})}])
    assert call is not None and loc.version is not None
    return {"command_id": command_id, "charge_point_id": cp_id, "command": command.name, "action": call.action,
            "ocpp_version": loc.version, "node_id": loc.node_id, "outcome": outcome, "response": response or {},
            "duration_ms": duration_ms}


async def _finish(pool, command_id: int, outcome: str, response: Any, error: Optional[str],
                  started: float) -> float:
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    try:
        await pool.execute(
            """UPDATE command_log SET outcome=$2, response=$3, error=$4, finished_at=now(), duration_ms=$5
               WHERE id=$1""", command_id, outcome, response, error, duration_ms)
    except Exception as exc:  # noqa: BLE001 - the row stays 'pending', which says as much
        log.error("could not complete command log row %s: %s", command_id, exc)
    return duration_ms


def _endpoint(cls: type[cmds.Command]):
    optional_body = all(not f.is_required() for f in cls.model_fields.values())

    if optional_body:
        async def endpoint(request: Request, cp_id: ChargerId, timeout: TimeoutParam = None,
                           body: Optional[cls] = Body(None),  # type: ignore[valid-type]
                           principal: Principal = Depends(require("operator"))) -> Any:
            return await execute(request, principal, cp_id, body or cls(), timeout)
    else:
        async def endpoint(request: Request, cp_id: ChargerId, body: cls,  # type: ignore[valid-type]
                           timeout: TimeoutParam = None,
                           principal: Principal = Depends(require("operator"))) -> Any:
            return await execute(request, principal, cp_id, body, timeout)

    endpoint.__name__ = "command_" + cls.name.replace("-", "_")
    endpoint.__doc__ = (cls.__doc__ or "") + f"\n\n{cls.summary}. The charger's answer is in `response`."
    return endpoint


for _cls in cmds.COMMANDS.values():
    router.add_api_route(
        f"/chargers/{{cp_id}}/commands/{_cls.name}", _endpoint(_cls), methods=["POST"],
        response_model=CommandResult, summary=_cls.summary, responses=COMMAND_RESPONSES,
        operation_id="command_" + _cls.name.replace("-", "_"))


# --------------------------------------------------------------------- audit log
COMMAND_SELECT = """SELECT id, charge_point_id, command, action, ocpp_version, request, payload, response, outcome,
                           error, token_name, api_node_id, charger_node_id, requested_at, finished_at, duration_ms
                    FROM command_log"""


@router.get("/commands", response_model=Page[CommandRecord], summary="Command history (newest first)")
async def list_commands(
    request: Request, page: Paging = Depends(paging),
    charger: Optional[str] = Query(None, max_length=CP_ID_MAX),
    station: Optional[str] = Query(None, max_length=64),
    command: Optional[str] = Query(None, max_length=50, description="e.g. reset"),
    outcome: Optional[Outcome] = Query(None),
    token: Optional[str] = Query(None, max_length=100, description="Token name"),
    since: Optional[Timestamp] = Query(None, description="Requested at or after"),
    until: Optional[Timestamp] = Query(None, description="Requested before"),
) -> Any:
    w = Where()
    w.add_if(charger, "charge_point_id = {}")
    w.add_station(station)
    w.add_if(command, "command = {}")
    w.add_if(outcome, "outcome = {}")
    w.add_if(token, "token_name = {}")
    w.add_if(since, "requested_at >= {}")
    w.add_if(until, "requested_at < {}")
    return await fetch_page(app_of(request).pool, COMMAND_SELECT, w, "requested_at DESC, id DESC", page)


@router.get("/commands/{command_id}", response_model=CommandRecord, summary="One command",
            responses={404: {"model": ErrorBody, "description": "No such command"}})
async def get_command(request: Request, command_id: Annotated[int, Path(ge=1, le=ID_MAX)]) -> Any:
    row = await app_of(request).pool.fetchrow(f"{COMMAND_SELECT} WHERE id = $1", command_id)
    if row is None:
        raise ApiError(404, f"no command {command_id}")
    return dict(row)
