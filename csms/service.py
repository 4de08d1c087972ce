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
from typing import Any

import asyncpg

from . import store
from .events import (
    AuthorizeRequest, Boot, BootResult, Event, Heartbeat, MeterReport, Notification, StartResult,
    StatusReport, TransactionStart, TransactionStop, utcnow,
)
from .group_commit import METER_COLUMNS, GroupCommitter

__all__ = ["ChargerService", "Publish"]

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
            case TransactionStart():
                return await self._start(event, now)
            case TransactionStop():
                return await self._stop(event, now)
            case AuthorizeRequest():
                return await store.id_tag_info(self.pool, event.id_tag, now)
            case Boot():
                await self.committer.run(lambda c: store.record_boot(c, self.cp_id, self.version, event, now))
                self.log.info("boot", extra={"vendor": event.vendor, "model": event.model})
                return BootResult("Accepted", self.heartbeat_interval, now)
            case Notification():
                await self.committer.run(lambda c: store.record_message(c, self.cp_id, event))
                return None
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
            await self.committer.copy_meter_values(rows)

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
            if ev.samples:
                await conn.copy_records_to_table(
                    "meter_values", records=store.meter_rows(self.cp_id, ev.connector_id, sid, tx_id, ev.samples),
                    columns=METER_COLUMNS)
            return sid, tx_id, info

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
                await conn.copy_records_to_table(
                    "meter_values",
                    records=store.meter_rows(self.cp_id, connector, sid, ev.transaction_id, ev.samples),
                    columns=METER_COLUMNS)
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
