"""SQL for the charger-facing write path.

Each function takes a connection that is already inside a transaction (the
group committer's) and does one domain write. They are idempotent where OCPP
requires it: a repeated StartTransaction returns the first one's session, a
repeated StopTransaction changes nothing, and an older status never replaces a
newer one.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
import asyncpg

from dataclasses import dataclass, field

from .group_commit import insert_rows
from .tcec102 import outbox as tcec_outbox
from .events import (
    Boot, DeviceEvent, DeviceEventReport, DeviceReport, IdTagInfo, Notification, Sample, SecurityEvent,
    StatusReport, TransactionStart, TransactionStop, TransactionUpdate, energy_readings, session_energy,
)

__all__ = [
    "record_boot", "record_status", "start_transaction", "stop_transaction", "meter_rows",
    "record_message", "id_tag_info", "find_session", "transaction_event", "transaction_events", "TxEventResult",
    "finalize_session", "light_event_row", "record_device_report", "record_device_events", "record_security_event",
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
               vendor_id, vendor_error_code, status_at, evse_connector_id)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)""",
        cp_id, s.connector_id, s.evse_id, s.status, s.error_code, s.info, s.vendor_id,
        s.vendor_error_code, at, s.evse_connector_id,
    )
    applied = await conn.fetchval(
        """INSERT INTO connectors AS c (charge_point_id, connector_id, evse_id, status, error_code, info,
               vendor_id, vendor_error_code, status_at, updated_at, evse_connector_id)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9, now(), $10)
           ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET
               evse_id=COALESCE(EXCLUDED.evse_id, c.evse_id),
               evse_connector_id=COALESCE(EXCLUDED.evse_connector_id, c.evse_connector_id), status=EXCLUDED.status,
               error_code=EXCLUDED.error_code, info=EXCLUDED.info, vendor_id=EXCLUDED.vendor_id,
               vendor_error_code=EXCLUDED.vendor_error_code, status_at=EXCLUDED.status_at, updated_at=now()
           WHERE c.status_at <= EXCLUDED.status_at
           RETURNING true""",
        cp_id, s.connector_id, s.evse_id, s.status, s.error_code, s.info, s.vendor_id,
        s.vendor_error_code, at, s.evse_connector_id,
    )
    faulty = is_fault(s.status, s.error_code)
    if applied:
        if faulty and s.evse_connector_id is not None and s.error_code == "OtherError" and await _merge_2x_fault(
                conn, cp_id, s.connector_id):
            pass
        elif faulty:
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
    if applied:  # the connector's current status changed: T/CEC 102 push
        await tcec_outbox.enqueue_status(conn, cp_id, s.connector_id, s.status, at)
    return bool(applied)


async def _merge_2x_fault(conn: asyncpg.Connection, cp_id: str, connector_id: int) -> bool:
    """A 2.x Faulted status (no error code of its own) joins the incident already open on the connector.

    An open status fault stays as it is; an open problem-event fault becomes the connector's
    status fault (it then closes when the status recovers, like a 1.6 fault). Returns False
    when nothing is open, so that a fault ``OtherError`` is opened.
    """
    return bool(await conn.fetchval(
        """WITH open_status AS (
               SELECT id FROM faults WHERE charge_point_id=$1 AND connector_id=$2 AND source='status'
                   AND closed_at IS NULL LIMIT 1),
           adopted AS (
               UPDATE faults SET source='status' WHERE id = (
                   SELECT id FROM faults WHERE charge_point_id=$1 AND connector_id=$2 AND source='event'
                       AND closed_at IS NULL AND NOT EXISTS (SELECT 1 FROM open_status)
                   ORDER BY opened_at LIMIT 1)
               RETURNING id)
           SELECT EXISTS (SELECT 1 FROM open_status) OR EXISTS (SELECT 1 FROM adopted)""",
        cp_id, connector_id))


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
    await reservation_used(conn, cp_id, tx.reservation_id, row["id"])
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
    """Rows for :meth:`GroupCommitter.insert_meter_values` (NaN values are kept as raw text only)."""
    return [
        (cp_id, connector_id, session_id, transaction_id, s.timestamp, s.measurand, s.phase, s.unit,
         s.context, s.location, None if math.isnan(s.value) else s.value, s.raw)
        for s in samples
    ]


async def record_message(conn: asyncpg.Connection, cp_id: str, n: Notification) -> None:
    await conn.execute(
        "INSERT INTO charger_messages (charge_point_id, action, payload, charger_time) VALUES ($1,$2,$3,$4)",
        cp_id, n.action, n.payload, n.timestamp)
    await reservation_status_update(conn, cp_id, n.action, n.payload)


_INT32_MAX = 2_147_483_647


async def reservation_used(conn: asyncpg.Connection, cp_id: str, reservation_id: Any, session_id: int | None) -> None:
    """A transaction started on an API reservation (1.6 StartTransaction.reservationId): mark it Used."""
    if isinstance(reservation_id, int) and 0 < reservation_id <= _INT32_MAX:
        await conn.execute(
            """UPDATE reservations SET status='Used', session_id=$3, updated_at=now()
               WHERE id=$1 AND charge_point_id=$2 AND status IN ('Accepted', 'Requested')""",
            reservation_id, cp_id, session_id)


async def reservation_status_update(conn: asyncpg.Connection, cp_id: str, action: str, payload: Any) -> None:
    """A 2.x ReservationStatusUpdate {reservationId, reservationUpdateStatus: Expired | Removed}."""
    if action != "ReservationStatusUpdate" or not isinstance(payload, dict):
        return
    rid = payload.get("reservationId")
    status = {"Expired": "Expired", "Removed": "Removed"}.get(payload.get("reservationUpdateStatus"))
    if status and isinstance(rid, int) and not isinstance(rid, bool) and 0 < rid <= _INT32_MAX:
        await conn.execute(
            """UPDATE reservations SET status=$3, updated_at=now()
               WHERE id=$1 AND charge_point_id=$2 AND status IN ('Accepted', 'Requested')""",
            rid, cp_id, status)


# ------------------------------------------------------------------ OCPP 2.0.1 / 2.1

TxEvent = TransactionStart | TransactionUpdate | TransactionStop


@dataclass(slots=True)
class TxEventResult:
    """What applying one 2.x TransactionEvent did."""

    session_id: int | None
    duplicate: bool = False     # (charger, transactionId, seqNo) was already applied: nothing changed
    created: bool = False       # this event created the session
    started: bool = False       # this event was the first Started of the session
    stopped: bool = False       # this event ended the session
    after_end: bool = False     # arrived after the session had ended (recorded, session stays ended)
    seq_gap: int = 0            # seqNos skipped between the highest seen before and this one
    unknown_evse: bool = False
    connector_id: int | None = None
    id_tag_info: IdTagInfo | None = None
    rows: list[tuple] = field(default_factory=list)  # meter rows still to be written (the batch's insert)
    # the session after this event (what the light path needs to know)
    open: bool = False
    evse_id: int | None = None
    charging_state: str | None = None
    number_of_phases: int | None = None
    last_seq_no: int | None = None


def _event_type(ev: TxEvent) -> str:
    if isinstance(ev, TransactionStart):
        return "Started"
    if isinstance(ev, TransactionStop):
        return "Ended"
    return "Updated"


# The session row is a commutative merge of its events, so that any arrival order gives the same
# result: the start is the Started event's time (else the earliest time seen), the first Ended
# wins, the charging state follows the highest seqNo, readings are kept by their timestamps.
# Set-based: one statement applies a whole batch of events, at most one per session.
_TX_EVENTS_SQL = """
WITH input AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
        $7::timestamptz[], $8::bool[], $9::int[], $10::int[], $11::text[], $12::text[], $13::text[], $14::text[],
        $15::int[], $16::int[], $17::int[], $18::int[], $19::text[], $20::timestamptz[], $21::float8[],
        $22::timestamptz[])
    AS t(ord, cp, tx, seq, kind, trig, ts, offline, evse, conn, tok, tok_type, cstate, reason, phases, resv,
         rsid, nsamples, version, start_cand, first_wh, first_at)
), old AS (
    -- max_seq: the highest seqNo received before this one (events of the light path included)
    SELECT s.id, s.charge_point_id, s.transaction_id, s.stopped_at, s.evse_id, s.start_seen, s.id_tag,
           (SELECT max(te.seq_no) FROM transaction_events te
            WHERE te.charge_point_id = s.charge_point_id AND te.transaction_id = s.transaction_id) AS max_seq
    FROM sessions s JOIN input i ON s.charge_point_id = i.cp AND s.transaction_id = i.tx
), ev AS (
    INSERT INTO transaction_events (charge_point_id, transaction_id, seq_no, event_type, trigger_reason,
        event_at, offline, evse_id, connector_id, id_token, id_token_type, charging_state, stopped_reason,
        number_of_phases, reservation_id, remote_start_id, samples, ocpp_version, after_end)
    SELECT i.cp, i.tx, i.seq, i.kind, i.trig, i.ts, i.offline, i.evse, i.conn, i.tok, i.tok_type, i.cstate,
           i.reason, i.phases, i.resv, i.rsid, i.nsamples, i.version,
           (o.stopped_at IS NOT NULL AND i.kind <> 'Ended')
    FROM input i LEFT JOIN old o ON o.charge_point_id = i.cp AND o.transaction_id = i.tx
    ON CONFLICT (charge_point_id, transaction_id, seq_no) DO NOTHING
    RETURNING charge_point_id, transaction_id, seq_no, after_end
), up AS (
    INSERT INTO sessions AS s (charge_point_id, transaction_id, ocpp_version, connector_id, evse_id, id_tag,
        id_token_type, reservation_id, remote_start_id, started_at, stopped_at, stop_reason, stop_id_tag,
        last_seq_no, end_seq_no, charging_state, meter_start_wh, meter_start_at, number_of_phases, start_seen)
    SELECT i.cp, i.tx, i.version, i.conn, i.evse, i.tok, i.tok_type, i.resv, i.rsid, i.start_cand,
           CASE WHEN i.kind = 'Ended' THEN i.ts END, CASE WHEN i.kind = 'Ended' THEN i.reason END,
           CASE WHEN i.kind = 'Ended' THEN i.tok END, GREATEST(i.seq, o.max_seq),
           CASE WHEN i.kind = 'Ended' THEN i.seq END,
           -- the charging state of the newest event only (a late one leaves the current state alone)
           CASE WHEN o.max_seq IS NULL OR i.seq > o.max_seq THEN i.cstate END,
           i.first_wh, i.first_at, i.phases, i.kind = 'Started'
    FROM input i JOIN ev ON ev.charge_point_id = i.cp AND ev.transaction_id = i.tx AND ev.seq_no = i.seq
    LEFT JOIN old o ON o.charge_point_id = i.cp AND o.transaction_id = i.tx
    ON CONFLICT (charge_point_id, transaction_id) DO UPDATE SET
        connector_id = COALESCE(s.connector_id, EXCLUDED.connector_id),
        evse_id = COALESCE(s.evse_id, EXCLUDED.evse_id),
        id_tag = CASE WHEN EXCLUDED.id_tag IS NULL THEN s.id_tag
                      WHEN s.id_tag IS NULL THEN EXCLUDED.id_tag
                      -- a start token replaces one only known from the Ended event
                      WHEN EXCLUDED.stopped_at IS NULL AND s.stopped_at IS NOT NULL
                           AND NOT COALESCE(s.start_seen, true)
                           AND s.id_tag IS NOT DISTINCT FROM s.stop_id_tag THEN EXCLUDED.id_tag
                      ELSE s.id_tag END,
        id_token_type = CASE WHEN s.id_tag IS NULL AND EXCLUDED.id_tag IS NOT NULL THEN EXCLUDED.id_token_type
                             ELSE COALESCE(s.id_token_type, EXCLUDED.id_token_type) END,
        reservation_id = COALESCE(EXCLUDED.reservation_id, s.reservation_id),
        remote_start_id = COALESCE(EXCLUDED.remote_start_id, s.remote_start_id),
        number_of_phases = COALESCE(EXCLUDED.number_of_phases, s.number_of_phases),
        started_at = CASE
            WHEN EXCLUDED.start_seen AND NOT COALESCE(s.start_seen, s.started_at IS NOT NULL) THEN EXCLUDED.started_at
            WHEN EXCLUDED.start_seen THEN LEAST(s.started_at, EXCLUDED.started_at)
            WHEN COALESCE(s.start_seen, s.started_at IS NOT NULL) THEN s.started_at
            ELSE LEAST(s.started_at, EXCLUDED.started_at) END,
        start_seen = COALESCE(s.start_seen, false) OR EXCLUDED.start_seen,
        stopped_at = COALESCE(s.stopped_at, EXCLUDED.stopped_at),
        stop_reason = CASE WHEN s.stopped_at IS NULL THEN EXCLUDED.stop_reason ELSE s.stop_reason END,
        stop_id_tag = CASE WHEN s.stopped_at IS NULL AND EXCLUDED.stopped_at IS NOT NULL
                           THEN EXCLUDED.stop_id_tag ELSE s.stop_id_tag END,
        end_seq_no = CASE WHEN s.stopped_at IS NULL THEN EXCLUDED.end_seq_no ELSE s.end_seq_no END,
        charging_state = CASE WHEN s.stopped_at IS NOT NULL AND EXCLUDED.stopped_at IS NULL THEN s.charging_state
                              ELSE COALESCE(EXCLUDED.charging_state, s.charging_state) END,
        last_seq_no = GREATEST(s.last_seq_no, EXCLUDED.last_seq_no),
        meter_start_wh = CASE WHEN EXCLUDED.meter_start_at IS NOT NULL
                                   AND (s.meter_start_at IS NULL AND s.meter_start_wh IS NULL
                                        OR EXCLUDED.meter_start_at < s.meter_start_at)
                              THEN EXCLUDED.meter_start_wh ELSE s.meter_start_wh END,
        meter_start_at = CASE WHEN EXCLUDED.meter_start_at IS NOT NULL
                                   AND (s.meter_start_at IS NULL AND s.meter_start_wh IS NULL
                                        OR EXCLUDED.meter_start_at < s.meter_start_at)
                              THEN EXCLUDED.meter_start_at ELSE s.meter_start_at END,
        updated_at = now()
    RETURNING s.charge_point_id, s.transaction_id, s.id, s.stopped_at, s.connector_id, s.evse_id, s.id_tag,
              s.id_tag_status, s.charging_state, s.number_of_phases, s.last_seq_no, (s.xmax = 0) AS created
)
SELECT i.ord, ev.seq_no IS NOT NULL AS inserted, ev.after_end,
       o.id AS old_id, o.stopped_at AS old_stopped_at, o.evse_id AS old_evse_id, o.start_seen AS old_start_seen,
       o.max_seq AS old_last_seq_no, o.id_tag AS old_id_tag,
       u.id, u.stopped_at, u.connector_id, u.evse_id, u.id_tag, u.id_tag_status, u.charging_state,
       u.number_of_phases, u.last_seq_no, u.created
FROM input i
LEFT JOIN ev ON ev.charge_point_id = i.cp AND ev.transaction_id = i.tx AND ev.seq_no = i.seq
LEFT JOIN old o ON o.charge_point_id = i.cp AND o.transaction_id = i.tx
LEFT JOIN up u ON u.charge_point_id = i.cp AND u.transaction_id = i.tx
"""

#: (charge point id, OCPP version, event, time received): one record of :func:`transaction_events`.
TxRecord = tuple[str, str, TxEvent, datetime]


async def _token_info(conn: asyncpg.Connection, ev: TxEvent, now: datetime, session_id: int | None
                      ) -> IdTagInfo:
    if ev.id_token_type == "NoAuthorization":
        return IdTagInfo("Accepted")
    return await id_tag_info(conn, ev.id_tag, now, session_id)


def _columns(records: list[tuple[int, TxRecord]]) -> list[list[Any]]:
    cols: list[list[Any]] = [[] for _ in range(22)]
    for ord_, (cp_id, version, ev, _now) in records:
        kind = _event_type(ev)
        first, _last, _ = energy_readings(ev.samples)
        start_candidate = ev.timestamp
        if kind != "Started" and ev.samples:  # without a Started: the earliest time the charger reported
            start_candidate = min(start_candidate, min(s.timestamp for s in ev.samples))
        values = (ord_, cp_id, ev.transaction_id, ev.seq_no, kind, ev.trigger_reason, ev.timestamp, ev.offline,
                  ev.evse_id, ev.connector_id, ev.id_tag, ev.id_token_type, ev.charging_state,
                  ev.reason if isinstance(ev, TransactionStop) else None, ev.number_of_phases, ev.reservation_id,
                  ev.remote_start_id, len(ev.samples), version, start_candidate,
                  first[1] if first else None, first[0] if first else None)
        for col, value in zip(cols, values):
            col.append(value)
    return cols


async def transaction_events(conn: asyncpg.Connection, records: list[TxRecord]) -> list[TxEventResult]:
    """Apply 2.x TransactionEvents to their sessions (created if needed); one result per record.

    Idempotent by (charger, transactionId, seqNo): a repeat changes nothing and returns
    ``duplicate``. Events may come in any order and late (offline): see :data:`_TX_EVENTS_SQL`.
    An Ended event, and any event for a session that already ended, writes its samples at
    once and recomputes the session's meter readings and energy (:func:`finalize_session`);
    other events leave their samples in ``rows`` for the batch's insert. This is the bulk
    handler of :meth:`GroupCommitter.bulk`: a batch costs one statement per round, a round
    taking at most one event per session.
    """
    results: list[TxEventResult | None] = [None] * len(records)
    pending = list(range(len(records)))
    while pending:
        seen: set[tuple[str, str]] = set()
        this_round: list[tuple[int, TxRecord]] = []
        later: list[int] = []
        for i in pending:
            key = (records[i][0], records[i][2].transaction_id)
            if key in seen:
                later.append(i)
            else:
                seen.add(key)
                this_round.append((i, records[i]))
        for row in await conn.fetch(_TX_EVENTS_SQL, *_columns(this_round)):
            results[row["ord"]] = await _after_event(conn, records[row["ord"]], row)
        pending = later
    return results  # type: ignore[return-value]


async def transaction_event(conn: asyncpg.Connection, cp_id: str, version: str, ev: TxEvent, now: datetime
                            ) -> TxEventResult:
    """Apply one 2.x TransactionEvent (see :func:`transaction_events`)."""
    return (await transaction_events(conn, [(cp_id, version, ev, now)]))[0]


def light_event_row(cp_id: str, version: str, ev: TransactionUpdate, connector_id: int) -> tuple:
    """The ``transaction_events`` row (:data:`TRANSACTION_EVENT_COLUMNS`) of a plain Updated event.

    For the service's light path: a TransactionEvent(Updated) of a session this connection saw
    open, with a seqNo above every one seen, that carries no token and no new EVSE, charging
    state or phase count. Recording the event (for idempotency and the audit trail) and its
    samples is then all there is to do, and both go into the batch's single insert; the primary key
    (charger, transactionId, seqNo) refuses a repeat the connection could not know of.
    """
    return (cp_id, ev.transaction_id, ev.seq_no, "Updated", ev.trigger_reason, ev.timestamp, ev.offline,
            ev.evse_id, connector_id, ev.charging_state, len(ev.samples), version)


async def _after_event(conn: asyncpg.Connection, record: TxRecord, row: asyncpg.Record) -> TxEventResult:
    """What is left after the set-based statement; nothing but bookkeeping in the common case."""
    cp_id, _version, ev, now = record
    kind = _event_type(ev)
    if not row["inserted"]:
        info = await _token_info(conn, ev, now, row["old_id"]) if ev.id_tag else None
        return TxEventResult(row["old_id"], duplicate=True, id_tag_info=info)
    sid = row["id"]
    if ev.reservation_id is not None:  # a transaction started on an API reservation
        await reservation_used(conn, cp_id, ev.reservation_id, sid)
    old_last = row["old_last_seq_no"]
    result = TxEventResult(
        sid, created=row["created"], connector_id=row["connector_id"], after_end=bool(row["after_end"]),
        started=kind == "Started" and not row["old_start_seen"],
        stopped=kind == "Ended" and row["old_stopped_at"] is None,
        seq_gap=max(0, ev.seq_no - old_last - 1) if old_last is not None and ev.seq_no is not None else 0,
        open=row["stopped_at"] is None, evse_id=row["evse_id"], charging_state=row["charging_state"],
        number_of_phases=row["number_of_phases"], last_seq_no=row["last_seq_no"],
    )
    if ev.evse_id is not None and (row["created"] or row["old_evse_id"] is None):
        if await _unknown_evse(conn, cp_id, ev.evse_id):
            result.unknown_evse = True
            await conn.execute("UPDATE sessions SET anomaly='unknown_evse' WHERE id=$1 AND anomaly IS NULL", sid)
    if ev.id_tag:
        result.id_tag_info = await _token_info(conn, ev, now, sid)
        if row["id_tag"] == ev.id_tag and (row["id_tag_status"] is None or row["old_id_tag"] != ev.id_tag):
            await conn.execute("UPDATE sessions SET id_tag_status=$2 WHERE id=$1", sid, result.id_tag_info.status)
    rows = meter_rows(cp_id, row["connector_id"] or 0, sid, ev.transaction_id, ev.samples)
    if row["stopped_at"] is not None:
        await insert_rows(conn, (), rows)
        await finalize_session(conn, sid)
    else:
        result.rows = rows
    return result


async def _unknown_evse(conn: asyncpg.Connection, cp_id: str, evse_id: int) -> bool:
    """EVSE 0 never has transactions; another EVSE is unknown when the charger reported its EVSEs
    (StatusNotification, NotifyReport) and this one was not among them."""
    if evse_id <= 0:
        return True
    row = await conn.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM connectors WHERE charge_point_id=$1 AND evse_id=$2)
                  OR EXISTS (SELECT 1 FROM device_variables WHERE charge_point_id=$1 AND evse_id=$2) AS known,
                  EXISTS (SELECT 1 FROM connectors WHERE charge_point_id=$1 AND evse_id > 0)
                  OR EXISTS (SELECT 1 FROM device_variables WHERE charge_point_id=$1 AND evse_id > 0) AS reported""",
        cp_id, evse_id)
    return bool(row["reported"] and not row["known"])


_READINGS_SQL = """
SELECT b.sampled_at AS start_at, b.value AS start_wh, b.context AS start_ctx,
       e.sampled_at AS stop_at, e.value AS stop_wh, e.context AS stop_ctx, i.total AS interval_wh
FROM sessions s
LEFT JOIN LATERAL (
    SELECT sampled_at, value, context FROM meter_values m
    WHERE m.session_id = s.id AND m.sampled_at BETWEEN $2 AND $3 AND m.measurand = 'Energy.Active.Import.Register'
      AND m.phase IS NULL AND m.value IS NOT NULL AND m.context IS DISTINCT FROM 'Transaction.End'
    ORDER BY (m.context = 'Transaction.Begin') DESC NULLS LAST, m.sampled_at LIMIT 1) b ON true
LEFT JOIN LATERAL (
    SELECT sampled_at, value, context FROM meter_values m
    WHERE m.session_id = s.id AND m.sampled_at BETWEEN $2 AND $3 AND m.measurand = 'Energy.Active.Import.Register'
      AND m.phase IS NULL AND m.value IS NOT NULL AND m.context IS DISTINCT FROM 'Transaction.Begin'
      AND (m.context = 'Transaction.End' OR m.sampled_at <= s.stopped_at)
    ORDER BY (m.context = 'Transaction.End') DESC NULLS LAST, m.sampled_at DESC LIMIT 1) e ON true
LEFT JOIN LATERAL (
    SELECT sum(v) AS total FROM (
        SELECT DISTINCT ON (m.sampled_at) m.value AS v FROM meter_values m
        WHERE m.session_id = s.id AND m.sampled_at BETWEEN $2 AND $3
          AND m.measurand = 'Energy.Active.Import.Interval' AND m.phase IS NULL AND m.value IS NOT NULL
        ORDER BY m.sampled_at) x) i ON true
WHERE s.id = $1
"""


async def finalize_session(conn: asyncpg.Connection, session_id: int) -> None:
    """Set an ended 2.x session's meter start/stop and energy from all its samples.

    Energy is the difference of the first and last ``Energy.Active.Import.Register``
    readings, else the sum of ``Energy.Active.Import.Interval`` values (see
    :func:`csms.events.session_energy`).
    """
    span = await conn.fetchrow("SELECT started_at, stopped_at FROM sessions WHERE id=$1", session_id)
    if span is None or span["stopped_at"] is None:
        return
    lo = (span["started_at"] or span["stopped_at"]) - timedelta(days=2)
    hi = max(span["stopped_at"], span["started_at"] or span["stopped_at"]) + timedelta(days=1)
    r = await conn.fetchrow(_READINGS_SQL, session_id, lo, hi)
    start = (r["start_at"], r["start_wh"], r["start_ctx"]) if r["start_at"] is not None else None
    stop = (r["stop_at"], r["stop_wh"], r["stop_ctx"]) if r["stop_at"] is not None else None
    energy, anomaly = session_energy(start, stop, r["interval_wh"])
    await conn.execute(
        """UPDATE sessions SET meter_start_wh = COALESCE($2, meter_start_wh),
               meter_start_at = COALESCE($3, meter_start_at), meter_stop_wh = $4, energy_wh = $5,
               anomaly = CASE WHEN $6::text IS NOT NULL AND anomaly IS NULL THEN $6
                              WHEN $6::text IS NULL AND anomaly = 'meter_decreased' THEN NULL
                              ELSE anomaly END,
               updated_at = now()
           WHERE id = $1""",
        session_id, start[1] if start else None, start[0] if start else None, stop[1] if stop else None,
        energy, anomaly)


def _component_key(name: str, instance: str | None) -> str:
    return f"{name}({instance})" if instance else name


async def record_device_report(conn: asyncpg.Connection, cp_id: str, rep: DeviceReport) -> int:
    """Upsert the reported device-model variables; return how many attribute rows were written."""
    rows: dict[tuple, tuple] = {}
    for v in rep.variables:
        key = (v.component, v.component_instance or "", -1 if v.evse_id is None else v.evse_id,
               -1 if v.evse_connector_id is None else v.evse_connector_id, v.variable, v.variable_instance or "",
               v.attribute_type or "Actual")
        rows[key] = (cp_id, *key, v.value, v.mutability, v.persistent, v.constant, v.data_type, v.unit,
                     v.min_limit, v.max_limit, v.values_list, v.supports_monitoring, rep.request_id,
                     rep.generated_at)
    if rows:
        await conn.executemany(
            """INSERT INTO device_variables AS d (charge_point_id, component, component_instance, evse_id,
                   evse_connector_id, variable, variable_instance, attribute_type, value, mutability, persistent,
                   constant, data_type, unit, min_limit, max_limit, values_list, supports_monitoring, request_id,
                   reported_at)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)
               ON CONFLICT (charge_point_id, component, component_instance, evse_id, evse_connector_id, variable,
                            variable_instance, attribute_type) DO UPDATE SET
                   value = EXCLUDED.value, mutability = EXCLUDED.mutability, persistent = EXCLUDED.persistent,
                   constant = EXCLUDED.constant,
                   data_type = COALESCE(EXCLUDED.data_type, d.data_type), unit = COALESCE(EXCLUDED.unit, d.unit),
                   min_limit = COALESCE(EXCLUDED.min_limit, d.min_limit),
                   max_limit = COALESCE(EXCLUDED.max_limit, d.max_limit),
                   values_list = COALESCE(EXCLUDED.values_list, d.values_list),
                   supports_monitoring = COALESCE(EXCLUDED.supports_monitoring, d.supports_monitoring),
                   request_id = EXCLUDED.request_id, reported_at = EXCLUDED.reported_at, updated_at = now()
               WHERE d.reported_at <= EXCLUDED.reported_at""",
            list(rows.values()))
    return len(rows)


async def record_device_events(conn: asyncpg.Connection, cp_id: str, rep: DeviceEventReport
                               ) -> list[tuple[DeviceEvent, bool]]:
    """Store NotifyEvent data; open/close faults for problem events.

    Returns (event, opened) for every problem event that opened (True) or closed (False) a
    fault. A repeated event (same eventId and timestamp) changes nothing.
    """
    changes: list[tuple[DeviceEvent, bool]] = []
    for e in rep.events:
        inserted = await conn.fetchval(
            """INSERT INTO device_events (charge_point_id, event_id, event_at, generated_at, trigger,
                   notification_type, component, component_instance, evse_id, evse_connector_id, connector_id,
                   variable, variable_instance, actual_value, cause, tech_code, tech_info, cleared, transaction_id,
                   monitoring_id, severity, problem)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)
               ON CONFLICT (charge_point_id, event_id, event_at) DO NOTHING RETURNING true""",
            cp_id, e.event_id, e.timestamp, rep.generated_at, e.trigger, e.notification_type, e.component,
            e.component_instance, e.evse_id, e.evse_connector_id, e.connector_id, e.variable, e.variable_instance,
            e.actual_value, e.cause, e.tech_code, e.tech_info, e.cleared, e.transaction_id, e.monitoring_id,
            e.severity, e.problem)
        if not inserted or e.problem is None:
            continue
        component = _component_key(e.component, e.component_instance)
        variable = _component_key(e.variable, e.variable_instance)
        if e.problem:
            info = f"{component}.{variable}" + (f": {e.tech_info}" if e.tech_info else "")
            # The first problem reported for a connector that a Faulted status already opened a
            # fault for gives that fault its details: one incident, one fault, as in 1.6.
            enriched = await conn.fetchval(
                """UPDATE faults SET error_code=$3, vendor_error_code=$4, info=$5, component=$6, variable=$7
                   WHERE id = (SELECT id FROM faults WHERE charge_point_id=$1 AND connector_id=$2
                                   AND source='status' AND closed_at IS NULL AND component IS NULL
                                   AND error_code='OtherError' LIMIT 1)
                   RETURNING true""",
                cp_id, e.connector_id, e.error_code or "OtherError", e.tech_code, info, component, variable)
            if enriched:
                changes.append((e, True))
                continue
            opened = await conn.fetchval(
                """INSERT INTO faults (charge_point_id, connector_id, source, error_code, vendor_error_code, info,
                       opened_at, component, variable)
                   VALUES ($1,$2,'event',$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING RETURNING true""",
                cp_id, e.connector_id, e.error_code or "OtherError", e.tech_code, info, e.timestamp, component,
                variable)
            if opened:
                changes.append((e, True))
        else:
            closed = await conn.execute(
                """UPDATE faults SET closed_at = $6 WHERE charge_point_id=$1 AND connector_id=$2 AND source='event'
                       AND component=$3 AND variable=$4 AND error_code=$5 AND closed_at IS NULL""",
                cp_id, e.connector_id, component, variable, e.error_code or "OtherError", e.timestamp)
            if closed != "UPDATE 0":
                changes.append((e, False))
    return changes


async def record_security_event(conn: asyncpg.Connection, cp_id: str, ev: SecurityEvent) -> bool:
    """Keep a security event as it came; open a ``security`` fault for an alarming one.

    Returns True when an alarm was opened (an open alarm of the same type absorbs repeats).
    """
    await conn.execute(
        "INSERT INTO charger_messages (charge_point_id, action, payload, charger_time) VALUES ($1,$2,$3,$4)",
        cp_id, "SecurityEventNotification", ev.payload or {"type": ev.type}, ev.timestamp)
    if not ev.alarm:
        return False
    return bool(await conn.fetchval(
        """INSERT INTO faults (charge_point_id, connector_id, source, error_code, info, opened_at)
           VALUES ($1, 0, 'security', $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
        cp_id, ev.type, ev.tech_info, ev.timestamp))
