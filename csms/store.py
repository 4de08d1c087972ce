"""SQL for the charger-facing write path.

Each function takes a connection that is already inside a transaction (the
group committer's) and does one domain write. They are idempotent where OCPP
requires it: a repeated StartTransaction returns the first one's session, a
repeated StopTransaction changes nothing, and an older status never replaces a
newer one.
"""

from __future__ import annotations

import math
from datetime import datetime
import asyncpg

from .events import (
    Boot, IdTagInfo, Notification, Sample, StatusReport, TransactionStart, TransactionStop,
)

__all__ = [
    "record_boot", "record_status", "start_transaction", "stop_transaction", "meter_rows",
    "record_message", "id_tag_info", "find_session",
]


def is_fault(status: str, error_code: str) -> bool:
    """A connector report that opens a fault: status Faulted or any error code but NoError."""
    return status == "Faulted" or (error_code or "NoError") != "NoError"


async def record_boot(conn: asyncpg.Connection, cp_id: str, version: str, boot: Boot, now: datetime) -> None:
    await conn.execute(
        """UPDATE charge_points SET vendor=$2, model=$3, serial_number=$4, charge_box_serial_number=$5,
               firmware_version=$6, iccid=$7, imsi=$8, meter_type=$9, meter_serial_number=$10,
               boot_reason=$11, ocpp_version=$12, boot_at=$13, last_seen=$13, updated_at=now()
           WHERE id=$1""",
        cp_id, boot.vendor, boot.model, boot.serial_number, boot.charge_box_serial_number,
        boot.firmware_version, boot.iccid, boot.imsi, boot.meter_type, boot.meter_serial_number,
        boot.reason, version, now,
    )


async def record_status(conn: asyncpg.Connection, cp_id: str, s: StatusReport, now: datetime) -> bool:
    """Store a status report; return True when it became the connector's current status.

    A report older than the stored one (a late message from the charger's
    offline queue) is kept in the history but does not replace the current
    status; if it was a fault, the fault is recorded as already closed.
    """
    at = s.timestamp or now
    await conn.execute(
        """INSERT INTO status_history (charge_point_id, connector_id, evse_id, status, error_code, info,
               vendor_id, vendor_error_code, status_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)""",
        cp_id, s.connector_id, s.evse_id, s.status, s.error_code, s.info, s.vendor_id,
        s.vendor_error_code, at,
    )
    applied = await conn.fetchval(
        """INSERT INTO connectors AS c (charge_point_id, connector_id, evse_id, status, error_code, info,
               vendor_id, vendor_error_code, status_at, updated_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9, now())
           ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET
               evse_id=COALESCE(EXCLUDED.evse_id, c.evse_id), status=EXCLUDED.status,
               error_code=EXCLUDED.error_code, info=EXCLUDED.info, vendor_id=EXCLUDED.vendor_id,
               vendor_error_code=EXCLUDED.vendor_error_code, status_at=EXCLUDED.status_at, updated_at=now()
           WHERE c.status_at <= EXCLUDED.status_at
           RETURNING true""",
        cp_id, s.connector_id, s.evse_id, s.status, s.error_code, s.info, s.vendor_id,
        s.vendor_error_code, at,
    )
    faulty = is_fault(s.status, s.error_code)
    if applied:
        if faulty:
            await conn.execute(
                """UPDATE faults SET closed_at=$4 WHERE charge_point_id=$1 AND connector_id=$2
                   AND source='status' AND closed_at IS NULL AND error_code<>$3""",
                cp_id, s.connector_id, s.error_code, at)
            await conn.execute(
                """INSERT INTO faults (charge_point_id, connector_id, source, error_code, vendor_id,
                       vendor_error_code, info, opened_at)
                   VALUES ($1,$2,'status',$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING""",
                cp_id, s.connector_id, s.error_code, s.vendor_id, s.vendor_error_code, s.info, at)
        else:
            await conn.execute(
                """UPDATE faults SET closed_at=$3 WHERE charge_point_id=$1 AND connector_id=$2
                   AND source='status' AND closed_at IS NULL AND opened_at <= $3""",
                cp_id, s.connector_id, at)
    elif faulty:
        closed = await conn.fetchval(
            """SELECT min(status_at) FROM status_history WHERE charge_point_id=$1 AND connector_id=$2
               AND status_at > $3 AND status <> 'Faulted' AND error_code = 'NoError'""",
            cp_id, s.connector_id, at)
        await conn.execute(
            """INSERT INTO faults (charge_point_id, connector_id, source, error_code, vendor_id,
                   vendor_error_code, info, opened_at, closed_at)
               VALUES ($1,$2,'status',$3,$4,$5,$6,$7,$8)""",
            cp_id, s.connector_id, s.error_code, s.vendor_id, s.vendor_error_code, s.info, at,
            closed or at)
    return bool(applied)


async def id_tag_info(conn: asyncpg.Connection | asyncpg.Pool, id_tag: str | None, now: datetime,
                      exclude_session: int | None = None) -> IdTagInfo:
    """The authorization status of *id_tag*: Accepted, Blocked, Expired, Invalid or ConcurrentTx."""
    if not id_tag:
        return IdTagInfo("Invalid")
    row = await conn.fetchrow(
        """SELECT t.status, t.expiry_date, t.parent_id_tag, t.max_active_transactions,
                  (SELECT count(*) FROM sessions s WHERE s.id_tag = t.id_tag AND s.stopped_at IS NULL
                     AND s.started_at IS NOT NULL AND s.id IS DISTINCT FROM $2) AS active
           FROM id_tags t WHERE t.id_tag = $1""", id_tag, exclude_session)
    if row is None:
        return IdTagInfo("Invalid")
    expiry = row["expiry_date"]
    status = row["status"]
    if status == "Accepted" and expiry is not None and expiry <= now:
        status = "Expired"
    if status == "Accepted" and row["active"] >= row["max_active_transactions"]:
        status = "ConcurrentTx"
    return IdTagInfo(status, expiry, row["parent_id_tag"])


async def start_transaction(conn: asyncpg.Connection, cp_id: str, version: str, tx: TransactionStart,
                            now: datetime) -> tuple[int, str, IdTagInfo]:
    """Open a session for a 1.6 StartTransaction; return (session id, transaction id, id tag info).

    A StartTransaction repeated after a reconnect (same charger, connector, id
    tag, timestamp and meterStart) returns the first one's session unchanged.
    """
    existing = await conn.fetchrow(
        """SELECT id, transaction_id, id_tag_status FROM sessions WHERE charge_point_id=$1
           AND connector_id=$2 AND id_tag=$3 AND started_at=$4 AND meter_start_wh=$5
           AND ocpp_version='1.6'""",
        cp_id, tx.connector_id, tx.id_tag, tx.timestamp, tx.meter_start_wh)
    if existing is not None:
        info = await id_tag_info(conn, tx.id_tag, now, existing["id"])
        if existing["id_tag_status"] != "ConcurrentTx" and info.status == "ConcurrentTx":
            info.status = existing["id_tag_status"]
        return existing["id"], existing["transaction_id"], info
    info = await id_tag_info(conn, tx.id_tag, now)
    row = await conn.fetchrow(
        """WITH v AS (SELECT nextval('sessions_id_seq') AS id)
           INSERT INTO sessions (id, transaction_id, charge_point_id, ocpp_version, connector_id, evse_id,
               id_tag, id_tag_status, reservation_id, started_at, meter_start_wh)
           SELECT v.id, v.id::text, $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM v
           ON CONFLICT (charge_point_id, connector_id, id_tag, started_at, meter_start_wh)
               WHERE ocpp_version = '1.6' DO UPDATE SET updated_at = sessions.updated_at
           RETURNING id, transaction_id""",
        cp_id, version, tx.connector_id, tx.evse_id, tx.id_tag, info.status, tx.reservation_id,
        tx.timestamp, tx.meter_start_wh)
    return row["id"], row["transaction_id"], info


async def stop_transaction(conn: asyncpg.Connection, cp_id: str, version: str, tx: TransactionStop
                           ) -> tuple[int, bool]:
    """Close a session; return (session id, changed).

    A repeated stop changes nothing. A stop for a transaction never seen started
    is recorded as a session with ``anomaly = 'start_missing'``.
    """
    row = await conn.fetchrow(
        """UPDATE sessions SET stopped_at=$3, meter_stop_wh=$4,
               energy_wh = CASE WHEN meter_start_wh IS NOT NULL AND $4::float8 >= meter_start_wh
                                THEN $4::float8 - meter_start_wh END,
               anomaly = CASE WHEN meter_start_wh IS NOT NULL AND $4::float8 < meter_start_wh
                              THEN 'meter_decreased' ELSE anomaly END,
               stop_reason=$5, stop_id_tag=$6, updated_at=now()
           WHERE charge_point_id=$1 AND transaction_id=$2 AND stopped_at IS NULL
           RETURNING id""",
        cp_id, tx.transaction_id, tx.timestamp, tx.meter_stop_wh, tx.reason, tx.id_tag)
    if row is not None:
        return row["id"], True
    existing = await conn.fetchval(
        "SELECT id FROM sessions WHERE charge_point_id=$1 AND transaction_id=$2", cp_id, tx.transaction_id)
    if existing is not None:
        return existing, False
    session_id = await conn.fetchval(
        """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, evse_id,
               id_tag, stopped_at, meter_stop_wh, stop_reason, stop_id_tag, anomaly)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$6,'start_missing') RETURNING id""",
        cp_id, tx.transaction_id, version, tx.connector_id, tx.evse_id, tx.id_tag, tx.timestamp,
        tx.meter_stop_wh, tx.reason)
    return session_id, True


async def find_session(conn: asyncpg.Connection | asyncpg.Pool, cp_id: str, transaction_id: str
                       ) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM sessions WHERE charge_point_id=$1 AND transaction_id=$2", cp_id, transaction_id)


def meter_rows(cp_id: str, connector_id: int, session_id: int | None, transaction_id: str | None,
               samples: list[Sample]) -> list[tuple]:
    """Rows for :meth:`GroupCommitter.copy_meter_values` (NaN values are kept as raw text only)."""
    return [
        (cp_id, connector_id, session_id, transaction_id, s.timestamp, s.measurand, s.phase, s.unit,
         s.context, s.location, None if math.isnan(s.value) else s.value, s.raw)
        for s in samples
    ]


async def record_message(conn: asyncpg.Connection, cp_id: str, n: Notification) -> None:
    await conn.execute(
        "INSERT INTO charger_messages (charge_point_id, action, payload, charger_time) VALUES ($1,$2,$3,$4)",
        cp_id, n.action, n.payload, n.timestamp)
