"""Live events: in-process publish/subscribe, fanned out to the other nodes over PostgreSQL NOTIFY.

:meth:`EventBus.publish` is what the gateway's ``publish`` callback calls. It
never blocks and never awaits: every subscriber has a bounded queue, and when
a subscriber is too slow its queue fills up and further events are counted as
dropped; the subscriber then receives one ``{"kind": "dropped", "count": n}``
marker in their place, at the point where the gap is. The gateway can
therefore never be slowed by an SSE client.

Events published on this node are also queued (bounded as well) for a
forwarder task that sends them with ``pg_notify`` on :data:`CHANNEL`; every
node listens on that channel (see :mod:`csms.routing`, which owns the listening
connection) and republishes other nodes' events locally, so an SSE client on
node A sees the status changes of chargers connected to node B.

A ``status`` event that reports a fault (status Faulted or an error code) is
followed by a ``fault`` event.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import orjson

__all__ = ["EventBus", "Subscription", "Event", "CHANNEL", "KINDS"]

log = logging.getLogger("csms.eventbus")

#: The NOTIFY channel carrying events between nodes.
CHANNEL = "csms_events"

#: Event kinds: the gateway's and service's (status, sessions, connections, 2.x device faults and
#: security alarms), ``fault`` (derived here from a status that reports a fault), ``command`` (a
#: command's outcome, from the API) and ``dropped`` (the marker).
KINDS = frozenset({"status", "fault", "fault_opened", "fault_closed", "security_alarm", "session_started",
                   "session_stopped", "charger_connected", "charger_disconnected", "command", "dropped"})

#: What the bureau role sees: charger state, sessions and faults; not commands or security alarms.
BUREAU_KINDS = frozenset({"status", "fault", "fault_opened", "fault_closed", "session_started",
                          "session_stopped", "charger_connected", "charger_disconnected", "dropped"})

_NOTIFY_LIMIT = 7900  # bytes; PostgreSQL's NOTIFY payload limit is 8000

Event = dict[str, Any]


def _is_fault(data: dict[str, Any]) -> bool:
    return data.get("status") == "Faulted" or (data.get("error_code") or "NoError") != "NoError"


class Subscription:
    """One consumer's bounded queue. Iterate it (async) or call :meth:`get`."""

    def __init__(self, bus: EventBus, maxsize: int, accept: Callable[[Event], bool] | None) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self._accept = accept
        self.dropped = 0          # events dropped since the last marker
        self.dropped_total = 0
        self.closed = False

    def _offer(self, event: Event) -> None:
        if self.closed or (self._accept is not None and not self._accept(event)):
            return
        q = self._queue
        if self.dropped:
            if q.full():
                self.dropped += 1
                self.dropped_total += 1
                return
            q.put_nowait(self._marker())
        if q.full():
            self.dropped += 1
            self.dropped_total += 1
            return
        q.put_nowait(event)

    def _marker(self) -> Event:
        n, self.dropped = self.dropped, 0
        return {"kind": "dropped", "count": n, "at": datetime.now(timezone.utc).isoformat(),
                "node_id": self._bus.node_id, "id": self._bus._next_id()}

    async def get(self) -> Event | None:
        """The next event, a ``dropped`` marker, or None once the subscription is closed."""
        if self.dropped and self._queue.empty():
            return self._marker()
        if self.closed and self._queue.empty():
            return None
        event = await self._queue.get()
        return event

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._subs.discard(self)
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                pass  # get() sees ``closed`` once the queue is drained

    def __aiter__(self):
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EventBus:
    """Publish/subscribe for live events on one node, plus fan-out to the other nodes."""

    def __init__(self, node_id: str, queue_size: int = 1000, forward_queue_size: int = 10_000) -> None:
        self.node_id = node_id
        self.queue_size = queue_size
        self._subs: set[Subscription] = set()
        self._ids = itertools.count(1)
        self._forward: asyncio.Queue[bytes] | None = None
        self._forward_size = forward_queue_size
        self._forwarder: asyncio.Task | None = None
        self.forward_dropped = 0
        self.published = 0

    def _next_id(self) -> int:
        return next(self._ids)

    # ---------------------------------------------------------------- publish
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Deliver an event to every local subscriber and queue it for the other nodes. Never blocks."""
        event = self._make(kind, data, self.node_id)
        self._deliver(event)
        self._queue_forward(event)
        if kind == "status" and _is_fault(data):
            fault = self._make("fault", data, self.node_id)
            self._deliver(fault)
            self._queue_forward(fault)

    def _make(self, kind: str, data: dict[str, Any], node_id: str) -> Event:
        event = {k: v for k, v in data.items() if k not in ("kind", "id", "node_id")}
        event["kind"] = kind
        event.setdefault("at", datetime.now(timezone.utc).isoformat())
        event["node_id"] = node_id
        event["id"] = self._next_id()
        return event

    def _deliver(self, event: Event) -> None:
        self.published += 1
        for sub in tuple(self._subs):
            sub._offer(event)

    def deliver_remote(self, payload: str | bytes) -> None:
        """An event NOTIFYed by another node: deliver it locally (not forwarded again)."""
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("unreadable event notification")
            return
        if not isinstance(event, dict) or event.get("node_id") == self.node_id:
            return
        event["id"] = self._next_id()
        self._deliver(event)

    # ---------------------------------------------------------------- subscribe
    def subscribe(self, accept: Callable[[Event], bool] | None = None, maxsize: int | None = None
                  ) -> Subscription:
        """A new subscription; *accept* filters events (called synchronously, keep it cheap)."""
        sub = Subscription(self, maxsize or self.queue_size, accept)
        self._subs.add(sub)
        return sub

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def close(self) -> None:
        """End every subscription (their iterators stop)."""
        for sub in tuple(self._subs):
            sub.close()

    # ---------------------------------------------------------------- node-to-node
    def _queue_forward(self, event: Event) -> None:
        if self._forward is None:
            return
        body = orjson.dumps({k: v for k, v in event.items() if k != "id"}, default=str)
        if len(body) > _NOTIFY_LIMIT:
            log.warning("event too large to forward to other nodes", extra={"kind": event.get("kind")})
            return
        try:
            self._forward.put_nowait(body)
        except asyncio.QueueFull:
            self.forward_dropped += 1

    def start_forwarding(self, send: Callable[[list[bytes]], Any]) -> None:
        """Forward local events with ``await send(batch)`` (a list of JSON bodies) from a background task."""
        self._forward = asyncio.Queue(self._forward_size)
        self._forwarder = asyncio.create_task(self._forward_loop(send), name="event-forwarder")

    async def _forward_loop(self, send: Callable[[list[bytes]], Any]) -> None:
        assert self._forward is not None
        while True:
            batch = [await self._forward.get()]
            while len(batch) < 200:
                try:
                    batch.append(self._forward.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                await send(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be briefly unavailable
                self.forward_dropped += len(batch)
                log.warning("could not forward %d events to other nodes: %s", len(batch), exc)
                await asyncio.sleep(0.5)

    async def stop_forwarding(self) -> None:
        if self._forwarder is not None:
            self._forwarder.cancel()
            await asyncio.gather(self._forwarder, return_exceptions=True)
            self._forwarder = None
        self._forward = None


def role_filter(role: str, kinds: Iterable[str] | None = None, charger: str | None = None
                ) -> Callable[[Event], bool]:
    """The events a caller with *role* may see, optionally narrowed to *kinds* and one *charger*.

    admin and operator see everything; bureau sees charger state, sessions and
    faults but not command results or security alarms.
    """
    allowed: set[str] | None = None if role in ("admin", "operator") else set(BUREAU_KINDS)
    if kinds:
        wanted = set(kinds) | {"dropped"}
        allowed = wanted if allowed is None else allowed & wanted

    def accept(event: Event) -> bool:
        if allowed is not None and event.get("kind") not in allowed:
            return False
        return charger is None or event.get("charge_point_id") == charger

    return accept
