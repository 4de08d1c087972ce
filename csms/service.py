"""The charger-facing application logic: domain events in, decisions out.

A :class:`ChargerService` exists per connected charger. It knows nothing of
websockets or OCPP payloads: the gateway decodes a CALL into a
:mod:`csms.events` event, awaits :meth:`ChargerService.handle`, and encodes the
outcome. Writes go through the :class:`~csms.group_commit.GroupCommitter`, so
an outcome is returned only after its data is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from . import pricing, store
from .events import (
    AuthorizeRequest, Boot, BootResult, DeviceEventReport, DeviceReport, Event, Heartbeat, IdTagInfo,
    MeterReport, Notification, SecurityEvent, StartResult, StatusReport, TransactionStart, TransactionStop,
    TransactionUpdate, utcnow,
)
from .group_commit import GroupCommitter, WithMeterRows, insert_rows

__all__ = ["ChargerService", "Publish"]


async def _apply_transaction_events(conn: asyncpg.Connection, records: list[store.TxRecord]) -> list[Any]:
    """Bulk handler: all 2.x TransactionEvents of a group commit in one set-based write."""
    results = await store.transaction_events(conn, records)
    await pricing.after_transaction_events(conn, results)  # price ended sessions, queue T/CEC charge orders
    return [WithMeterRows(r, r.rows) if r.rows else r for r in results]


@dataclass(slots=True)
class _OpenTx:
    """What this connection knows of a 2.x session it saw open (decides the light path)."""

    session_id: int
    connector_id: int
    evse_id: int | None
    charging_state: str | None
    number_of_phases: int | None
    last_seq_no: int

#: A sink for live domain events (status changes, sessions, faults): ``publish(kind, data)``.
Publish = Callable[[str, dict[str, Any]], None]


class ChargerService:
    def __init__(self, cp_id: str, version: str, pool: asyncpg.Pool, committer: GroupCommitter,
                 heartbeat_interval: int, log: logging.LoggerAdapter,
                 publish: Publish | None = None) -> None:
        self.cp_id = cp_id
        self.version = version
        self.pool = pool
        self.committer = committer
        self.heartbeat_interval = heartbeat_interval
        self.log = log
        self.publish = publish or (lambda kind, data: None)
        self.last_seen = utcnow()
        self._sessions: dict[str, int] = {}  # transaction id -> session id
        self._open: dict[str, _OpenTx] = {}  # 2.x transaction id -> its open session

    async def handle(self, event: Event) -> Any:
        """Apply *event*; return what the version codec needs to build the CALLRESULT."""
        now = utcnow()
        self.last_seen = now
        match event:
            case MeterReport():
                return await self._meter_values(event)
            case Heartbeat():
                return now
            case StatusReport():
                return await self._status(event, now)
            case TransactionUpdate():
                return await self._tx_event(event, now)
            case TransactionStart() if event.transaction_id is not None:  # 2.x TransactionEvent(Started)
                return await self._tx_event(event, now)
            case TransactionStop() if event.seq_no is not None:  # 2.x TransactionEvent(Ended)
                return await self._tx_event(event, now)
            case TransactionStart():
                return await self._start(event, now)
            case TransactionStop():
                return await self._stop(event, now)
            case AuthorizeRequest():
                if event.token_type == "NoAuthorization":
                    return IdTagInfo("Accepted")
                return await store.id_tag_info(self.pool, event.id_tag, now)
            case Boot():
                await self.committer.run(lambda c: store.record_boot(c, self.cp_id, self.version, event, now))
                self.log.info("boot", extra={"vendor": event.vendor, "model": event.model})
                return BootResult("Accepted", self.heartbeat_interval, now)
            case Notification():
                await self.committer.run(lambda c: store.record_message(c, self.cp_id, event))
                return None
            case DeviceEventReport():
                return await self._device_events(event)
            case DeviceReport():
                n = await self.committer.run(lambda c: store.record_device_report(c, self.cp_id, event))
                self.log.info("device model reported", extra={"request_id": event.request_id, "variables": n,
                                                              "tbc": event.tbc})
                return None
            case SecurityEvent():
                return await self._security_event(event)
        raise TypeError(f"unhandled event {event!r}")

    async def _session_id(self, transaction_id: str | None) -> int | None:
        if transaction_id is None:
            return None
        sid = self._sessions.get(transaction_id)
        if sid is None:
            sid = await store.find_session(self.pool, self.cp_id, transaction_id)
            if sid is not None:
                self._sessions[transaction_id] = sid
        return sid

    async def _meter_values(self, ev: MeterReport) -> None:
        sid = await self._session_id(ev.transaction_id)
        rows = store.meter_rows(self.cp_id, ev.connector_id, sid, ev.transaction_id, ev.samples)
        if rows:
            await self.committer.insert_meter_values(rows)

    async def _status(self, ev: StatusReport, now) -> None:
        applied = await self.committer.run(lambda c: store.record_status(c, self.cp_id, ev, now))
        if applied:
            self.publish("status", {"charge_point_id": self.cp_id, "connector_id": ev.connector_id,
                                    "status": ev.status, "error_code": ev.error_code,
                                    "at": (ev.timestamp or now).isoformat()})
            if store.is_fault(ev.status, ev.error_code):
                self.log.warning("fault", extra={"connector_id": ev.connector_id, "error_code": ev.error_code})

    async def _start(self, ev: TransactionStart, now) -> StartResult:
        async def op(conn):
            sid, tx_id, info = await store.start_transaction(conn, self.cp_id, self.version, ev, now)
            # Samples go into the batch's single insert.
            return WithMeterRows((sid, tx_id, info),
                                 store.meter_rows(self.cp_id, ev.connector_id, sid, tx_id, ev.samples))

        sid, tx_id, info = await self.committer.run(op)
        self._sessions[tx_id] = sid
        self.log.info("transaction started", extra={"transaction_id": tx_id, "connector_id": ev.connector_id,
                                                    "id_tag_status": info.status})
        self.publish("session_started", {"charge_point_id": self.cp_id, "session_id": sid,
                                         "transaction_id": tx_id, "connector_id": ev.connector_id})
        return StartResult(tx_id, info)

    async def _stop(self, ev: TransactionStop, now):
        async def op(conn):
            sid, changed = await store.stop_transaction(conn, self.cp_id, self.version, ev)
            if changed and ev.samples:
                connector = ev.connector_id if ev.connector_id is not None else await conn.fetchval(
                    "SELECT connector_id FROM sessions WHERE id=$1", sid) or 0
                await insert_rows(conn, (), store.meter_rows(self.cp_id, connector, sid, ev.transaction_id,
                                                             ev.samples))
            if changed:  # price it (from the meter values written just above), queue the T/CEC charge order
                await pricing.on_session_stopped(conn, sid)
            return sid, changed

        sid, changed = await self.committer.run(op)
        if changed:
            self.log.info("transaction stopped", extra={"transaction_id": ev.transaction_id,
                                                        "reason": ev.reason})
            self.publish("session_stopped", {"charge_point_id": self.cp_id, "session_id": sid,
                                             "transaction_id": ev.transaction_id})
        self._sessions.pop(ev.transaction_id, None)
        if ev.id_tag:
            return await store.id_tag_info(self.pool, ev.id_tag, now)
        return None

    # ------------------------------------------------------------ OCPP 2.0.1 / 2.1
    async def _tx_event(self, ev: TransactionStart | TransactionUpdate | TransactionStop, now
                        ) -> IdTagInfo | None:
        """A 2.x TransactionEvent: idempotent by (charger, transactionId, seqNo), any arrival order."""

        tx_id = ev.transaction_id
        known = self._open.get(tx_id)
        light = (known is not None and isinstance(ev, TransactionUpdate) and ev.seq_no is not None
                 and ev.seq_no > known.last_seq_no and ev.id_tag is None and ev.reservation_id is None
                 and ev.remote_start_id is None and ev.evse_id in (None, known.evse_id)
                 and ev.charging_state in (None, known.charging_state)
                 and ev.number_of_phases in (None, known.number_of_phases))
        if light:
            assert known is not None
            event_row = store.light_event_row(self.cp_id, self.version, ev, known.connector_id)
            rows = store.meter_rows(self.cp_id, known.connector_id, known.session_id, tx_id, ev.samples)
            try:
                await self.committer.insert_transaction_events((event_row,), rows)
            except asyncpg.UniqueViolationError:
                # Stored already, through another connection of this charger whose last writes
                # committed after this one looked: the full path below tells the repeat.
                self._open.pop(tx_id, None)
            else:
                if ev.seq_no > known.last_seq_no + 1:
                    self.log.warning("transaction event seqNo gap", extra={
                        "transaction_id": tx_id, "seq_no": ev.seq_no, "missing": ev.seq_no - known.last_seq_no - 1})
                known.last_seq_no = ev.seq_no
                return None
        res = await self.committer.bulk(_apply_transaction_events, (self.cp_id, self.version, ev, now))
        extra = {"transaction_id": tx_id, "seq_no": ev.seq_no}
        if res.duplicate:
            self.log.info("duplicate transaction event ignored", extra=extra)
            return res.id_tag_info
        if res.session_id is not None:
            self._sessions[tx_id] = res.session_id
            if res.open and res.last_seq_no is not None:
                self._open[tx_id] = _OpenTx(res.session_id, res.connector_id or 0, res.evse_id, res.charging_state,
                                            res.number_of_phases, res.last_seq_no)
            else:
                self._open.pop(tx_id, None)
        if res.seq_gap:
            self.log.warning("transaction event seqNo gap", extra={**extra, "missing": res.seq_gap})
        if res.unknown_evse:
            self.log.warning("transaction on an unknown EVSE", extra={**extra, "evse_id": ev.evse_id})
        if res.after_end:
            self.log.info("transaction event after the end recorded", extra=extra)
        if res.started:
            self.log.info("transaction started", extra={**extra, "connector_id": res.connector_id,
                                                        "id_tag_status": res.id_tag_info.status
                                                        if res.id_tag_info else None})
        if res.created and not res.stopped:  # once per session, whichever event came first
            self.publish("session_started", {"charge_point_id": self.cp_id, "session_id": res.session_id,
                                             "transaction_id": tx_id, "connector_id": res.connector_id})
        if res.stopped:
            reason = ev.reason if isinstance(ev, TransactionStop) else None
            self.log.info("transaction stopped", extra={**extra, "reason": reason, "offline": ev.offline})
            self.publish("session_stopped", {"charge_point_id": self.cp_id, "session_id": res.session_id,
                                             "transaction_id": tx_id})
            self._sessions.pop(tx_id, None)
        if len(self._open) > 64:  # a charger has a few EVSEs: forget sessions it never ended
            for stale in list(self._open)[:-16]:
                del self._open[stale]
        return res.id_tag_info

    async def _device_events(self, ev: DeviceEventReport) -> None:
        changes = await self.committer.run(lambda c: store.record_device_events(c, self.cp_id, ev))
        for e, opened in changes:
            data = {"charge_point_id": self.cp_id, "connector_id": e.connector_id, "error_code": e.error_code,
                    "component": e.component, "variable": e.variable, "at": e.timestamp.isoformat()}
            if opened:
                self.log.warning("fault", extra={"connector_id": e.connector_id, "error_code": e.error_code,
                                                 "component": e.component, "variable": e.variable})
                self.publish("fault_opened", data)
            else:
                self.log.info("fault cleared", extra={"connector_id": e.connector_id, "component": e.component,
                                                      "variable": e.variable})
                self.publish("fault_closed", data)
        return None

    async def _security_event(self, ev: SecurityEvent) -> None:
        opened = await self.committer.run(lambda c: store.record_security_event(c, self.cp_id, ev))
        if ev.alarm:
            self.log.warning("security alarm", extra={"type": ev.type, "tech_info": ev.tech_info, "new": opened})
            if opened:
                self.publish("security_alarm", {"charge_point_id": self.cp_id, "type": ev.type,
                                                "at": ev.timestamp.isoformat()})
        else:
            self.log.info("security event", extra={"type": ev.type})
        return None
