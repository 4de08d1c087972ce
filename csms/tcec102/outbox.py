"""The durable outbox: notifications for platforms, written in the caller's transaction.

Every function here takes a connection that is already inside the transaction of the event
causing the notification (a status change, a session end, a registry change), so the
notification exists if and only if the event was committed. One row is written per platform
that takes the interface (``tcec_platforms.interfaces``), under an ordering key:

* ``c:{ConnectorID}`` for status, charge-status and charge-order notifications of a connector
  (delivered in order per connector),
* ``s:{StationID}`` for station information.

Within a key, rows get consecutive ``seq`` numbers from ``tcec_outbox_keys``; the upsert that
hands out a number also locks the key until commit, so a key's rows commit in ``seq`` order
and :mod:`csms.tcec102.sender` can deliver them in that order. A ``NOTIFY tcec_outbox`` (sent
at commit) wakes the sender.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from . import objects
from .codec import dumps_data
from .registry import connector_ref, equipment_for_charger, station_infos

__all__ = [
    "enqueue_status", "enqueue_charge_order", "enqueue_station_info", "enqueue_equip_charge_status",
    "reconcile_status", "push", "CHANNEL",
]

log = logging.getLogger("csms.tcec102.outbox")

CHANNEL = "tcec_outbox"
_EXTRA_STOP_REASONS = {"ResetCommand": 3, "CostLimitReached": 1, "LimitReached": 1}
_TIME_FMT = "%Y-%m-%d %H:%M:%S"


async def push(conn: asyncpg.Connection, platform_id: int, interface: str, order_key: str,
               payload: dict[str, Any], *, session_id: int | None = None,
               start_charge_seq: str | None = None) -> int:
    """Append one notification to *platform_id*'s outbox; return its id."""
    row_id = await conn.fetchval(
        """WITH k AS (
               INSERT INTO tcec_outbox_keys AS k (platform_id, order_key, last_seq) VALUES ($1, $2, 1)
               ON CONFLICT (platform_id, order_key) DO UPDATE SET last_seq = k.last_seq + 1
               RETURNING last_seq)
           INSERT INTO tcec_outbox (platform_id, interface, order_key, seq, payload, session_id, start_charge_seq)
           SELECT $1, $3, $2, k.last_seq, $4, $5, $6 FROM k RETURNING id""",
        platform_id, order_key, interface, dumps_data(payload).decode("utf-8"), session_id, start_charge_seq)
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(platform_id))
    return row_id


async def _platforms(conn, interface: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, our_operator_id, service_tel FROM tcec_platforms WHERE enabled AND $1 = ANY(interfaces)",
        interface)


# --------------------------------------------------------------------------- status
def _status_code(ocpp_status: str | None, online: bool) -> int | None:
    try:
        return objects.connector_status(ocpp_status, online=online)
    except ValueError:
        return None


async def _status_payloads(conn, cp_id: str, connector_id: int, code: int, platform_ids: list[int]) -> None:
    cid = connector_ref(await equipment_for_charger(conn, cp_id), connector_id)
    if cid is None:
        log.warning("connector id too long for T/CEC 102; status not sent",
                    extra={"charge_point_id": cp_id, "connector_id": connector_id})
        return
    payload = {"ConnectorStatusInfo": {"ConnectorID": cid, "Status": code}}
    for pid in platform_ids:
        await push(conn, pid, "notification_stationStatus", f"c:{cid}", payload)


async def enqueue_status(conn: asyncpg.Connection, cp_id: str, connector_id: int, ocpp_status: str | None,
                         at: datetime, online: bool = True) -> None:
    """A connector's current status changed: queue ``notification_stationStatus``.

    Deduplicated per platform on the T/CEC status (the platform only sees that: Preparing →
    SuspendedEV, both 2, sends nothing). Connector 0 (the charger itself) is not a T/CEC
    connector and is skipped.
    """
    if connector_id is None or connector_id <= 0:
        return
    code = _status_code(ocpp_status, online)
    if code is None:
        return
    try:
        async with conn.transaction():  # a savepoint: a failure here never fails the status report
            await _enqueue_status(conn, cp_id, connector_id, code, at)
    except Exception:  # noqa: BLE001 - logged; the reconciler queues the status later
        log.exception("queueing a T/CEC status notification failed",
                      extra={"charge_point_id": cp_id, "connector_id": connector_id})


async def _enqueue_status(conn, cp_id: str, connector_id: int, code: int, at: datetime) -> None:
    rows = await conn.fetch(
        """WITH p AS (SELECT id FROM tcec_platforms
                      WHERE enabled AND 'notification_stationStatus' = ANY(interfaces)
                        -- demo chargers (on synthetic piles) are never reported
                        AND NOT EXISTS (SELECT 1 FROM piles WHERE charge_point_id = $1 AND synthetic))
           INSERT INTO tcec_connector_pushed AS t (platform_id, charge_point_id, connector_id, status, at)
           SELECT p.id, $1, $2, $3, $4 FROM p
           ON CONFLICT (platform_id, charge_point_id, connector_id) DO UPDATE
               SET status = EXCLUDED.status, at = EXCLUDED.at WHERE t.status <> EXCLUDED.status
           RETURNING platform_id""", cp_id, connector_id, code, at)
    if rows:
        await _status_payloads(conn, cp_id, connector_id, code, [r["platform_id"] for r in rows])


def _desired_status_sql() -> str:
    cases = " ".join(f"WHEN '{k}' THEN {int(v)}" for k, v in objects.CONNECTOR_STATUS_MAP.items())
    return f"""CASE WHEN NOT (cp.lease_expires_at IS NOT NULL AND cp.lease_expires_at > now()) THEN 0
                    ELSE CASE c.status {cases} ELSE NULL END END"""


_RECONCILE_SQL = f"""
SELECT p.id AS platform_id, c.charge_point_id, c.connector_id, d.status AS desired, t.status AS pushed
FROM tcec_platforms p
CROSS JOIN connectors c
JOIN charge_points cp ON cp.id = c.charge_point_id
CROSS JOIN LATERAL (SELECT {_desired_status_sql()} AS status) d
LEFT JOIN tcec_connector_pushed t
       ON t.platform_id = p.id AND t.charge_point_id = c.charge_point_id AND t.connector_id = c.connector_id
WHERE p.enabled AND 'notification_stationStatus' = ANY(p.interfaces) AND c.connector_id > 0
  AND d.status IS NOT NULL AND t.status IS DISTINCT FROM d.status
  AND NOT EXISTS (SELECT 1 FROM piles pl WHERE pl.charge_point_id = c.charge_point_id AND pl.synthetic)
ORDER BY c.charge_point_id, c.connector_id, p.id
LIMIT $1
"""


async def reconcile_status(conn: asyncpg.Connection, limit: int = 5000) -> int:
    """Queue status notifications for connectors whose T/CEC status differs from the last one
    queued: chargers that went offline (0) or came back, and platforms that were just added.

    Compare-and-set against ``tcec_connector_pushed`` so that a concurrent
    :func:`enqueue_status` (newer) is never overtaken by this (possibly older) view.
    """
    rows = await conn.fetch(_RECONCILE_SQL, limit)
    queued = 0
    for r in rows:
        if r["pushed"] is None:
            ok = await conn.fetchval(
                """INSERT INTO tcec_connector_pushed (platform_id, charge_point_id, connector_id, status, at)
                   VALUES ($1,$2,$3,$4, now()) ON CONFLICT DO NOTHING RETURNING true""",
                r["platform_id"], r["charge_point_id"], r["connector_id"], r["desired"])
        else:
            ok = await conn.fetchval(
                """UPDATE tcec_connector_pushed SET status=$4, at=now()
                   WHERE platform_id=$1 AND charge_point_id=$2 AND connector_id=$3 AND status=$5 RETURNING true""",
                r["platform_id"], r["charge_point_id"], r["connector_id"], r["desired"], r["pushed"])
        if ok:
            await _status_payloads(conn, r["charge_point_id"], r["connector_id"], r["desired"], [r["platform_id"]])
            queued += 1
    return queued


# --------------------------------------------------------------------------- charge orders
def _stop_reason(reason: str | None) -> int:
    if reason in _EXTRA_STOP_REASONS:
        return _EXTRA_STOP_REASONS[reason]
    return objects.stop_reason(reason, default=int(objects.StopReason.CHARGER_FAULT))


async def enqueue_charge_order(conn: asyncpg.Connection, session_id: int, *, cost, session) -> None:
    """A session ended and was priced: queue ``notification_charge_order_info`` per platform.

    ``StartChargeSeq`` = the platform's view of our OperatorID + the session id as 18 digits,
    recorded in ``tcec_charge_orders`` (one per platform and session, never renumbered).
    """
    platforms = await _platforms(conn, "notification_charge_order_info")
    if not platforms:
        return
    cid = connector_ref(await equipment_for_charger(conn, session["charge_point_id"]),
                        session["connector_id"] or 1)
    if cid is None:
        log.warning("connector id too long for T/CEC 102; charge order not sent", extra={"session_id": session_id})
        return
    for p in platforms:
        seq = objects.start_charge_seq(p["our_operator_id"], session_id)
        existing = await conn.fetchval(
            "SELECT start_charge_seq FROM tcec_charge_orders WHERE platform_id=$1 AND session_id=$2",
            p["id"], session_id)
        if existing is not None:
            continue  # already sent for this session
        try:
            payload = objects.charge_order(start_charge_seq=seq, connector_id=cid, cost=cost,
                                           stop_reason=_stop_reason(session["stop_reason"]))
        except ValueError as exc:
            log.error("charge order not built: %s", exc, extra={"session_id": session_id})
            return
        oid = await push(conn, p["id"], "notification_charge_order_info", f"c:{cid}", payload,
                         session_id=session_id, start_charge_seq=seq)
        await conn.execute(
            "INSERT INTO tcec_charge_orders (platform_id, session_id, start_charge_seq, outbox_id) VALUES ($1,$2,$3,$4)",
            p["id"], session_id, seq, oid)


# --------------------------------------------------------------------------- charge status
async def enqueue_equip_charge_status(conn: asyncpg.Connection, session_id: int, now: datetime) -> bool:
    """Queue ``notification_equip_charge_status`` for a running session (priced so far)."""
    from ..pricing import running_cost

    platforms = await _platforms(conn, "notification_equip_charge_status")
    if not platforms:
        return False
    cost, session = await running_cost(conn, session_id, now)
    if session is None or cost is None:
        return False
    cid = connector_ref(await equipment_for_charger(conn, session["charge_point_id"]), session["connector_id"] or 1)
    if cid is None:
        return False
    status = await conn.fetchrow(
        """SELECT c.status, (cp.lease_expires_at IS NOT NULL AND cp.lease_expires_at > now()) AS online
           FROM connectors c JOIN charge_points cp ON cp.id = c.charge_point_id
           WHERE c.charge_point_id=$1 AND c.connector_id=$2""", session["charge_point_id"], session["connector_id"])
    code = _status_code(status["status"], status["online"]) if status else 3
    soc = await conn.fetchval(
        """SELECT value FROM meter_values WHERE session_id=$1 AND measurand='SoC' AND value IS NOT NULL
           ORDER BY sampled_at DESC LIMIT 1""", session_id)
    for p in platforms:
        payload = {
            "StartChargeSeq": objects.start_charge_seq(p["our_operator_id"], session_id),
            "StartChargeSeqStat": 2,
            "ConnectorID": cid,
            "ConnectorStatus": code if code is not None else 3,
            "CurrentA": 0, "VoltageA": 0,
            "Soc": float(soc) if soc is not None else 0,
            "StartTime": cost.started_at.strftime(_TIME_FMT),
            "EndTime": cost.stopped_at.strftime(_TIME_FMT),
            "TotalPower": float(cost.total_power),
            "ElecMoney": float(cost.total_elec_money),
            "SeviceMoney": float(cost.total_service_money),
            "TotalMoney": float(cost.total_money),
            "SumPeriod": len(cost.details),
            "ChargeDetails": [objects.charge_detail(d) for d in cost.details],
        }
        await push(conn, p["id"], "notification_equip_charge_status", f"c:{cid}", payload, session_id=session_id)
    return True


# --------------------------------------------------------------------------- station info
async def enqueue_station_info(conn: asyncpg.Connection, station_id: str,
                               platform_ids: list[int] | None = None) -> int:
    """Queue ``notification_stationInfo`` of *station_id* (its current registry data) for every
    platform that takes it (or those in *platform_ids*); return how many were queued."""
    platforms = [p for p in await _platforms(conn, "notification_stationInfo")
                 if platform_ids is None or p["id"] in platform_ids]
    queued = 0
    for p in platforms:
        infos, _, versions = await station_infos(conn, p["our_operator_id"], p["service_tel"],
                                                 station_ids=[station_id])
        version = versions.get(station_id) or int(await conn.fetchval(
            "SELECT coalesce((SELECT version FROM tcec_station_changes WHERE station_id=$1), 0)", station_id))
        await conn.execute(
            """INSERT INTO tcec_station_pushed (platform_id, station_id, version) VALUES ($1,$2,$3)
               ON CONFLICT (platform_id, station_id) DO UPDATE SET version = EXCLUDED.version""",
            p["id"], station_id, version)
        if infos:
            await push(conn, p["id"], "notification_stationInfo", f"s:{station_id}", {"StationInfo": infos[0]})
            queued += 1
    return queued


async def reconcile_stations(conn: asyncpg.Connection, limit: int = 200) -> int:
    """Queue station information that a platform has not received in its current version
    (registry changes, and every station for a newly added platform)."""
    rows = await conn.fetch(
        """SELECT p.id AS platform_id, s.station_id
           FROM tcec_platforms p CROSS JOIN stations s
           LEFT JOIN tcec_station_changes c ON c.station_id = s.station_id
           LEFT JOIN tcec_station_pushed t ON t.platform_id = p.id AND t.station_id = s.station_id
           WHERE p.enabled AND 'notification_stationInfo' = ANY(p.interfaces)
             AND (t.version IS NULL OR t.version < coalesce(c.version, 0))
           ORDER BY s.station_id LIMIT $1""", limit)
    queued = 0
    for r in rows:
        queued += await enqueue_station_info(conn, r["station_id"], [r["platform_id"]])
    return queued


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
