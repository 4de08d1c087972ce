"""Our T/CEC 102 server: ``POST /evcs/v{version}/{interface}`` on the API port.

Interfaces: ``query_token``, ``query_stations_info``, ``query_station_status``,
``query_station_stats``, ``query_equip_business_policy``.

Checks, in this order (the first failure answers; every answer is HTTP 200 with the
standard's envelope ``{Ret, Msg, Data, Sig}``):

1. ``4003`` the envelope is not JSON or a field is missing/malformed (no secret involved);
2. ``4001`` unknown ``OperatorID``, wrong ``Sig``, or ``Data`` that does not decrypt -- one
   message for all three, unsigned, so nothing tells which part (or whether the operator)
   was wrong;
3. ``4002`` (not for ``query_token``) no bearer token, or one that is unknown, expired or
   issued to another platform;
4. ``4004`` business parameters: ``Data`` not a JSON object, wrong types or values, unknown
   interface or one not enabled for this platform.

Answers after step 2 are signed and encrypted with the caller's secrets. Tokens are random
256-bit strings; only their SHA-256 is stored (``tcec_tokens``), valid ``tcec_token_ttl``
seconds (at most 7 days). Replay protection on ``TimeStamp``/``Seq`` is not enforced: the
pull interfaces are read-only and ``query_token`` needs the OperatorSecret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets as pysecrets
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..pricing import tariff_in_force
from ..secretbox import secret_box
from . import objects, registry
from .codec import (
    CONTENT_TYPE, SHANGHAI, PlatformError, Ret, dumps_envelope, encode_response, error_response, open_request,
)
from .platforms import Platform, PlatformCache

__all__ = ["router", "handle"]

log = logging.getLogger("csms.tcec102.server")

router = APIRouter(tags=["T/CEC 102"])


def _reply(envelope: dict[str, Any]) -> Response:
    return Response(dumps_envelope(envelope), status_code=200, media_type=CONTENT_TYPE)


def _state(request: Request):
    """(csms app, platform cache), the cache kept on the FastAPI app."""
    app = request.app.state.csms
    cache = getattr(request.app.state, "tcec_platforms", None)
    if cache is None:
        cache = PlatformCache(app.pool, secret_box(app.settings))
        request.app.state.tcec_platforms = cache
    return app, cache


@router.post("/evcs/v{version}/{interface}", include_in_schema=True,
             summary="T/CEC 102 interface (the standard's encrypted, signed envelope)")
async def evcs(request: Request, version: str, interface: str) -> Response:
    app, cache = _state(request)
    body = await request.body()
    return _reply(await handle(app, cache, interface, body, request.headers.get("authorization")))


async def handle(app, cache: PlatformCache, interface: str, body: bytes, authorization: str | None
                 ) -> dict[str, Any]:
    platform: Platform | None = None
    try:
        operator_id = _peek_operator(body)
        if operator_id is not None:
            platform = await cache.by_operator(operator_id)
        req = open_request(body, lambda op: platform.secrets if platform is not None and op == platform.operator_id
                           else None)
    except PlatformError as exc:
        log.info("T/CEC request refused", extra={"interface": interface[:64], "ret": exc.ret})
        return error_response(exc)
    except Exception:  # noqa: BLE001 - e.g. the database, or a secret key that does not open the secrets
        log.exception("T/CEC request failed before authentication", extra={"interface": interface[:64]})
        return error_response(PlatformError(Ret.SYSTEM_ERROR, "system error"))
    assert platform is not None
    try:
        handler = _HANDLERS.get(interface)
        if handler is None:
            raise PlatformError(Ret.BUSINESS_ERROR, "unknown interface")
        if interface != "query_token":
            await _check_token(app.pool, platform, authorization)
            if interface not in platform.interfaces:
                raise PlatformError(Ret.BUSINESS_ERROR, "interface not enabled for this operator")
        payload = await handler(app, platform, req.payload)
        return encode_response(Ret.OK, "", payload, platform.secrets)
    except PlatformError as exc:
        log.info("T/CEC request refused", extra={"interface": interface, "ret": exc.ret,
                                                  "platform": platform.name})
        return encode_response(exc.ret, exc.msg, None, platform.secrets)
    except Exception:  # noqa: BLE001
        log.exception("T/CEC request failed", extra={"interface": interface, "platform": platform.name})
        return encode_response(Ret.SYSTEM_ERROR, "system error", None, platform.secrets)


def _peek_operator(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    op = value.get("OperatorID") if isinstance(value, dict) else None
    return op if isinstance(op, str) and 0 < len(op) <= 32 else None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def _check_token(pool, platform: Platform, authorization: str | None) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise PlatformError(Ret.TOKEN_ERROR, "invalid token")
    ok = await pool.fetchval(
        "SELECT true FROM tcec_tokens WHERE token_hash=$1 AND platform_id=$2 AND expires_at > now()",
        _hash(token), platform.id)
    if not ok:
        raise PlatformError(Ret.TOKEN_ERROR, "invalid token")


# --------------------------------------------------------------------------- field helpers
def _bad(msg: str) -> PlatformError:
    return PlatformError(Ret.BUSINESS_ERROR, msg)


def _int(data: dict, name: str, default: int | None = None, lo: int = 1, hi: int = 10**9) -> int:
    value = data.get(name, default)
    if value is None:
        raise _bad(f"missing {name}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float)
                                                                        and not value.is_integer()):
        raise _bad(f"{name} must be an integer")
    if not lo <= value <= hi:
        raise _bad(f"{name} must be between {lo} and {hi}")
    return int(value)


def _str(data: dict, name: str, max_len: int, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"missing {name}")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise _bad(f"{name} must be a string of at most {max_len} characters")
    return value


def _date(data: dict, name: str) -> date:
    value = _str(data, name, 10)
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise _bad(f"{name} must be yyyy-MM-dd") from None


# --------------------------------------------------------------------------- interfaces
async def _query_token(app, platform: Platform, data: dict) -> dict[str, Any]:
    op = data.get("OperatorID")
    secret = data.get("OperatorSecret")
    if not isinstance(op, str) or not isinstance(secret, str):
        raise _bad("OperatorID and OperatorSecret are required")
    fail = {"OperatorID": op, "SuccStat": 1, "AccessToken": "", "TokenAvailableTime": 0}
    if op != platform.operator_id:
        return {**fail, "FailReason": 1}
    if not hmac.compare_digest(secret.encode("utf-8", "surrogatepass"),
                               platform.secrets.operator_secret.encode("utf-8")):
        return {**fail, "FailReason": 2}
    ttl = int(app.settings.tcec_token_ttl)
    token = pysecrets.token_urlsafe(32)
    await app.pool.execute(
        "INSERT INTO tcec_tokens (token_hash, platform_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
        _hash(token), platform.id, float(ttl))
    log.info("T/CEC token issued", extra={"platform": platform.name, "ttl_s": ttl})
    return {"OperatorID": op, "SuccStat": 0, "AccessToken": token, "TokenAvailableTime": ttl, "FailReason": 0}


async def _query_stations_info(app, platform: Platform, data: dict) -> dict[str, Any]:
    page_no = _int(data, "PageNo", 1)
    page_size = _int(data, "PageSize", 10, hi=1000)
    since = None
    last = _str(data, "LastQueryTime", 19, required=False)
    if last is not None:
        try:
            since = datetime.strptime(last, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
        except ValueError:
            raise _bad("LastQueryTime must be yyyy-MM-dd HH:mm:ss") from None
    infos, total, _ = await registry.station_infos(
        app.pool, platform.our_operator_id, platform.service_tel, changed_since=since,
        offset=(page_no - 1) * page_size, limit=page_size)
    return {"PageNo": page_no, "PageCount": max(1, math.ceil(total / page_size)) if total else 0,
            "ItemSize": total, "StationInfos": infos}


async def _query_station_status(app, platform: Platform, data: dict) -> dict[str, Any]:
    ids = data.get("StationIDs")
    if not isinstance(ids, list) or not ids or len(ids) > 50 or not all(
            isinstance(i, str) and 0 < len(i) <= 20 for i in ids):
        raise _bad("StationIDs must be a list of 1 to 50 station ids")
    return {"StationStatusInfos": await registry.station_status_infos(app.pool, ids)}


async def _query_station_stats(app, platform: Platform, data: dict) -> dict[str, Any]:
    sid = _str(data, "StationID", 20)
    start, end = _date(data, "StartTime"), _date(data, "EndTime")
    if end < start or (end - start) > timedelta(days=366):
        raise _bad("EndTime must be on or after StartTime, at most a year later")
    stats = await registry.station_stats(app.pool, sid, start, end)
    if stats is None:
        raise _bad("unknown StationID")
    return {"StationStats": stats}


async def _query_equip_business_policy(app, platform: Platform, data: dict) -> dict[str, Any]:
    seq = _str(data, "EquipBizSeq", 27)
    cid = _str(data, "ConnectorID", 26)
    out = {"EquipBizSeq": seq, "ConnectorID": cid}
    station, known = await registry.station_for_connector(app.pool, cid)
    if not known:
        return {**out, "SuccStat": 1, "FailReason": 1, "SumPeriod": 0, "PolicyInfos": []}
    ref = await tariff_in_force(app.pool, station, datetime.now(SHANGHAI))
    if ref is None:
        return {**out, "SuccStat": 1, "FailReason": 2, "SumPeriod": 0, "PolicyInfos": []}
    policies = objects.policy_infos(ref.tariff)
    return {**out, "SuccStat": 0, "FailReason": 0, "SumPeriod": len(policies), "PolicyInfos": policies}


_HANDLERS = {
    "query_token": _query_token,
    "query_stations_info": _query_stations_info,
    "query_station_status": _query_station_status,
    "query_station_stats": _query_station_stats,
    "query_equip_business_policy": _query_equip_business_policy,
}
