"""Group commit: many writers, few transactions.

Every charger connection hands its writes to one :class:`GroupCommitter`. A
small number of writer tasks each take *everything queued so far* (up to
``max_batch`` items), run it in one transaction, commit once, and only then
resolve each item's future. Under light load a batch is one item and adds no
delay; under heavy load batches grow by themselves while the previous commit
is in flight, so the cost of a commit is shared by all messages in it. No
timer is involved ("natural batching").

Items are either arbitrary operations (``async def op(conn) -> result``),
rows for the append-only tables (meter values, 2.x transaction events), or
records for a *bulk handler* (``async def handler(conn, records) -> results``),
which is called once per batch with all of its records, after the batch's
operations, so that frequent small writes cost one set-based statement per
batch instead of one round trip each. The rows of all items of a batch go into
one ``INSERT ... SELECT FROM unnest($1::meter_value_row[], ...)`` statement (one
round trip). A batch of nothing but rows, the common case under load, is that
one statement and nothing else: a single statement is atomic by itself, so it
needs no ``BEGIN``/``COMMIT`` round trips.

Each writer keeps its own database connection between batches (a pool
release would cost a reset round trip per batch) and replaces it when it
breaks. If a batch fails, its items are retried one by one in separate
transactions so that one bad item cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

__all__ = ["GroupCommitter", "METER_COLUMNS", "TRANSACTION_EVENT_COLUMNS", "WithMeterRows", "insert_rows"]

log = logging.getLogger("csms.group_commit")

Op = Callable[[asyncpg.Connection], Awaitable[Any]]
BulkHandler = Callable[[asyncpg.Connection, list[Any]], Awaitable[list[Any]]]

#: Fields of a meter-value row, in order: the columns of ``meter_values`` and the fields of
#: the ``meter_value_row`` type (schemas/migrations/0009).
METER_COLUMNS = ("charge_point_id", "connector_id", "session_id", "transaction_id", "sampled_at",
                 "measurand", "phase", "unit", "context", "location", "value", "raw_value")
#: Fields of a transaction-event row, in order: columns of ``transaction_events``, fields of
#: the ``transaction_event_row`` type.
TRANSACTION_EVENT_COLUMNS = ("charge_point_id", "transaction_id", "seq_no", "event_type", "trigger_reason",
                             "event_at", "offline", "evse_id", "connector_id", "charging_state", "samples",
                             "ocpp_version")

_METER_COLUMNS_SQL = ", ".join(METER_COLUMNS)
_EVENT_COLUMNS_SQL = ", ".join(TRANSACTION_EVENT_COLUMNS)
_INSERT_METER_VALUES = (f"INSERT INTO meter_values ({_METER_COLUMNS_SQL}) "
                        f"SELECT {_METER_COLUMNS_SQL} FROM unnest($1::meter_value_row[])")
_INSERT_EVENTS = (f"INSERT INTO transaction_events ({_EVENT_COLUMNS_SQL}) "
                  f"SELECT {_EVENT_COLUMNS_SQL} FROM unnest($1::transaction_event_row[])")
_INSERT_EVENTS_AND_METER_VALUES = (f"WITH events AS ({_INSERT_EVENTS}) "
                                   f"INSERT INTO meter_values ({_METER_COLUMNS_SQL}) "
                                   f"SELECT {_METER_COLUMNS_SQL} FROM unnest($2::meter_value_row[])")


async def insert_rows(conn: asyncpg.Connection, events: Sequence[tuple], rows: Sequence[tuple]) -> None:
    """Insert transaction-event and meter-value rows in one statement (nothing if both are empty)."""
    if events and rows:
        await conn.execute(_INSERT_EVENTS_AND_METER_VALUES, events, rows)
    elif events:
        await conn.execute(_INSERT_EVENTS, events)
    elif rows:
        await conn.execute(_INSERT_METER_VALUES, rows)


@dataclass(slots=True)
class WithMeterRows:
    """What an op may return to have meter-value rows added to its batch's single insert.

    The op's awaitable then resolves to ``result``, after the commit like any other.
    """

    result: Any
    rows: Sequence[tuple] = ()


@dataclass(slots=True)
class _Item:
    op: Op | None
    rows: Sequence[tuple] = ()  # meter values
    future: asyncio.Future = field(default=None)  # type: ignore[assignment]
    handler: BulkHandler | None = None
    record: Any = None
    events: Sequence[tuple] = ()  # transaction events


class GroupCommitter:
    """Batches writes from all connections into shared transactions.

    :param pool: the asyncpg pool to take connections from.
    :param writers: concurrent writer tasks (each holds one connection while committing).
    :param max_batch: the most items one transaction takes.
    """

    def __init__(self, pool: asyncpg.Pool, writers: int = 2, max_batch: int = 1000,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._writers = writers
        self._max_batch = max_batch
        self._tasks: list[asyncio.Task] = []
        self._on_batch = on_batch
        self.batches = 0
        self.items = 0

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._writer(), name=f"group-commit-{i}")
                       for i in range(self._writers)]

    async def stop(self) -> None:
        """Finish everything already submitted, then stop the writers."""
        for _ in self._tasks:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _submit(self, item: _Item) -> asyncio.Future:
        if not self._tasks:
            raise RuntimeError("group committer is not running")
        item.future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(item)
        return item.future

    def run(self, op: Op) -> Awaitable[Any]:
        """Run *op* inside a group transaction; the awaitable resolves after the commit."""
        return self._submit(_Item(op))

    def bulk(self, handler: BulkHandler, record: Any) -> Awaitable[Any]:
        """Add *record* to this batch's call of *handler*; resolves to its result after the commit.

        ``handler(conn, records)`` returns one result per record, in order (a result may be a
        :class:`WithMeterRows`). Handlers run after all operations of the batch.
        """
        return self._submit(_Item(None, (), handler=handler, record=record))

    def insert_meter_values(self, rows: Sequence[tuple]) -> Awaitable[Any]:
        """Insert meter-value rows (in :data:`METER_COLUMNS` order); resolves after the commit."""
        return self._submit(_Item(None, rows))

    def insert_transaction_events(self, events: Sequence[tuple], rows: Sequence[tuple] = ()) -> Awaitable[Any]:
        """Insert 2.x transaction-event rows (:data:`TRANSACTION_EVENT_COLUMNS`) and their meter values.

        A plain insert: an event already stored fails the batch with
        :class:`asyncpg.UniqueViolationError`, and after the one-by-one retry only this item's
        awaitable raises it (a caller that cannot rule out repeats handles that).
        """
        return self._submit(_Item(None, rows, events=events))

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def _writer(self) -> None:
        conn: asyncpg.Connection | None = None
        stopping = False
        try:
            while not stopping:
                item = await self._queue.get()
                if item is None:
                    return
                batch = [item]
                while len(batch) < self._max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    batch.append(nxt)
                try:
                    conn = await self._commit(conn, batch)
                except Exception as exc:  # noqa: BLE001 - a writer must outlive any failure
                    log.exception("group commit writer: unexpected failure")
                    for failed in batch:
                        self._fail(failed, exc)
                    await self._give_back(conn)
                    conn = None
        finally:
            await self._give_back(conn)

    async def _give_back(self, conn: asyncpg.Connection | None) -> None:
        """Return a writer's connection to the pool (which closes it if it is broken)."""
        if conn is None:
            return
        try:
            await self._pool.release(conn)
        except asyncpg.InterfaceError:
            pass  # the pool took it back itself when the server closed it

    @staticmethod
    def _usable(conn: asyncpg.Connection | None) -> bool:
        try:
            return conn is not None and not conn.is_closed()
        except asyncpg.InterfaceError:  # released by the pool when the server closed it
            return False

    async def _commit(self, conn: asyncpg.Connection | None, batch: list[_Item]) -> asyncpg.Connection | None:
        """Apply *batch* on the writer's connection (taken from the pool if it has none or it broke).

        Returns the connection to keep for the next batch.
        """
        started = time.perf_counter()
        try:
            if not self._usable(conn):
                await self._give_back(conn)
                conn = None
                conn = await self._pool.acquire()
            results = await self._apply(conn, batch)
        except Exception as exc:  # noqa: BLE001 - isolate the failing item below
            if not self._usable(conn) or isinstance(
                    exc, (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)):
                await self._give_back(conn)
                conn = None
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return conn
            log.warning("group commit of %d items failed (%s); retrying one by one", len(batch), exc)
            for item in batch:
                conn = await self._commit(conn, [item])
            return conn
        for item, result in zip(batch, results):
            if not item.future.done():
                item.future.set_result(result)
        self.batches += 1
        self.items += len(batch)
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - started)
        return conn

    @staticmethod
    def _fail(item: _Item, exc: Exception) -> None:
        log.error("write failed: %r", exc)
        if not item.future.done():
            item.future.set_exception(exc)

    @staticmethod
    async def _apply(conn: asyncpg.Connection, batch: list[_Item]) -> list[Any]:
        if all(item.op is None and item.handler is None for item in batch):
            # Nothing but rows: one statement, atomic by itself.
            await insert_rows(conn, [e for item in batch for e in item.events],
                              [r for item in batch for r in item.rows])
            return [None] * len(batch)
        results: list[Any] = []
        rows: list[tuple] = []
        events: list[tuple] = []
        bulk: dict[BulkHandler, list[int]] = {}
        async with conn.transaction():
            for i, item in enumerate(batch):
                if item.op is not None:
                    result = await item.op(conn)
                    if isinstance(result, WithMeterRows):
                        rows.extend(result.rows)
                        result = result.result
                    results.append(result)
                else:
                    if item.handler is not None:
                        bulk.setdefault(item.handler, []).append(i)
                    rows.extend(item.rows)
                    events.extend(item.events)
                    results.append(None)
            for handler, indexes in bulk.items():
                outcomes = await handler(conn, [batch[i].record for i in indexes])
                if len(outcomes) != len(indexes):
                    raise RuntimeError(f"bulk handler {handler!r} returned {len(outcomes)} results "
                                       f"for {len(indexes)} records")
                for i, result in zip(indexes, outcomes):
                    if isinstance(result, WithMeterRows):
                        rows.extend(result.rows)
                        result = result.result
                    results[i] = result
            await insert_rows(conn, events, rows)
        return results
