"""Group commit: many writers, few transactions.

Every charger connection hands its writes to one :class:`GroupCommitter`. A
small number of writer tasks each take *everything queued so far* (up to
``max_batch`` items), run it in one transaction, commit once, and only then
resolve each item's future. Under light load a batch is one item and adds no
delay; under heavy load batches grow by themselves while the previous commit
is in flight, so the cost of a commit is shared by all messages in it. No
timer is involved ("natural batching").

Items are either arbitrary operations (``async def op(conn) -> result``),
meter-value rows, which are gathered from all items of a batch and written
with a single ``COPY``, or records for a *bulk handler*
(``async def handler(conn, records) -> results``), which is called once per
batch with all of its records, after the batch's operations, so that frequent
small writes cost one set-based statement per batch instead of one round trip
each. If a batch fails, its items are retried one by one in separate
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

__all__ = ["GroupCommitter", "METER_COLUMNS", "WithMeterRows"]

log = logging.getLogger("csms.group_commit")

Op = Callable[[asyncpg.Connection], Awaitable[Any]]
BulkHandler = Callable[[asyncpg.Connection, list[Any]], Awaitable[list[Any]]]

METER_COLUMNS = ("charge_point_id", "connector_id", "session_id", "transaction_id", "sampled_at",
                 "measurand", "phase", "unit", "context", "location", "value", "raw_value")


@dataclass(slots=True)
class WithMeterRows:
    """What an op may return to have meter-value rows added to its batch's single COPY.

    The op's awaitable then resolves to ``result``, after the commit like any other.
    """

    result: Any
    rows: Sequence[tuple] = ()


@dataclass(slots=True)
class _Item:
    op: Op | None
    rows: Sequence[tuple] = ()
    future: asyncio.Future = field(default=None)  # type: ignore[assignment]
    handler: BulkHandler | None = None
    record: Any = None


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

    def copy_meter_values(self, rows: Sequence[tuple]) -> Awaitable[Any]:
        """Insert meter-value rows (in :data:`METER_COLUMNS` order); resolves after the commit."""
        return self._submit(_Item(None, rows))

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def _writer(self) -> None:
        stopping = False
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
            await self._commit(batch)

    async def _commit(self, batch: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            async with self._pool.acquire() as conn:
                results = await self._apply(conn, batch)
        except Exception as exc:  # noqa: BLE001 - isolate the failing item below
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            log.warning("group commit of %d items failed (%s); retrying one by one", len(batch), exc)
            for item in batch:
                await self._commit([item])
            return
        for item, result in zip(batch, results):
            if not item.future.done():
                item.future.set_result(result)
        self.batches += 1
        self.items += len(batch)
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - started)

    @staticmethod
    def _fail(item: _Item, exc: Exception) -> None:
        log.error("write failed: %r", exc)
        if not item.future.done():
            item.future.set_exception(exc)

    @staticmethod
    async def _apply(conn: asyncpg.Connection, batch: list[_Item]) -> list[Any]:
        results: list[Any] = []
        rows: list[tuple] = []
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
            if rows:
                await conn.copy_records_to_table("meter_values", records=rows, columns=METER_COLUMNS)
        return results
