"""Multi-node command routing over PostgreSQL LISTEN/NOTIFY.

Several nodes share one database; a charger is connected to one of them, and
``charge_points.node_id`` with ``lease_expires_at`` (kept fresh by the
gateway) says which. :meth:`Router.call` sends a CSMS→charger call from any
node:

* the charger is connected here → :meth:`Gateway.call <csms.gateway.Gateway.call>`;
* it is connected to node B (lease valid) → a ``call`` message is NOTIFYed on
  B's channel; B acknowledges at once, sends ``alive`` every few seconds while
  the charger is being asked (calls to one charger are queued), and finally
  the ``result``, all on this node's channel;
* otherwise → :class:`~csms.gateway.ChargerOffline`.

No acknowledgement within ``ack_timeout`` means B is gone (its lease will
expire by itself) → ChargerOffline; silence after the acknowledgement →
:class:`~csms.gateway.CommandTimeout`. Messages larger than a NOTIFY payload
may be (8000 bytes) go through the ``routing_messages`` table, and only their
id is notified.

The router owns the node's one listening connection, which also receives the
other nodes' live events for the :class:`~csms.eventbus.EventBus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from . import validation
from .eventbus import CHANNEL as EVENTS_CHANNEL
from .eventbus import EventBus
from .gateway import ChargerOffline, CommandRejected, CommandTimeout, Gateway

__all__ = ["Router", "Location", "UnknownCharger", "node_channel"]

log = logging.getLogger("csms.routing")

_NOTIFY_LIMIT = 7900


class UnknownCharger(LookupError):
    """No charge point with this id is registered."""


@dataclass(frozen=True, slots=True)
class Location:
    charge_point_id: str
    online: bool
    node_id: str | None       # the node holding the connection (None when offline)
    version: str | None       # the OCPP version of the (last) connection
    local: bool               # held by this node


def node_channel(node_id: str) -> str:
    """The NOTIFY channel a node listens on for routed calls (a valid, short identifier)."""
    return "csms_rpc_" + hashlib.sha1(node_id.encode()).hexdigest()[:24]


class Router:
    def __init__(self, node_id: str, dsn: str, pool: asyncpg.Pool, gateway: Gateway, bus: EventBus | None = None,
                 *, ack_timeout: float = 5.0, keepalive: float = 2.0, silence_timeout: float = 10.0) -> None:
        self.node_id = node_id
        self.channel = node_channel(node_id)
        self.dsn = dsn
        self.pool = pool
        self.gateway = gateway
        self.bus = bus
        self.ack_timeout = ack_timeout
        self.keepalive = keepalive
        self.silence_timeout = silence_timeout
        self._listener: asyncpg.Connection | None = None
        self._waiting: dict[str, asyncio.Queue] = {}
        self._tasks: set[asyncio.Task] = set()
        self._closing = False
        self._reconnect: asyncio.Task | None = None
        self._janitor: asyncio.Task | None = None
        self.listening = asyncio.Event()

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self._listen()
        if self.bus is not None:
            self.bus.start_forwarding(self._notify_events)
        self._janitor = asyncio.create_task(self._clean_messages(), name="routing-janitor")

    async def stop(self) -> None:
        self._closing = True
        if self.bus is not None:
            await self.bus.stop_forwarding()
        for task in [self._reconnect, self._janitor, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._reconnect, self._janitor, *self._tasks] if t is not None),
                             return_exceptions=True)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), 5)
        for q in self._waiting.values():
            q.put_nowait({"t": "result", "ok": False, "error": "offline", "message": "node shutting down"})

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        await conn.add_listener(self.channel, self._on_rpc)
        await conn.add_listener(EVENTS_CHANNEL, self._on_event)
        conn.add_termination_listener(self._on_lost)
        self._listener = conn
        self.listening.set()

    def _on_lost(self, conn: asyncpg.Connection) -> None:
        self.listening.clear()
        if self._closing:
            return
        log.warning("lost the LISTEN connection; reconnecting")
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.create_task(self._relisten(), name="routing-relisten")

    async def _relisten(self) -> None:
        delay = 0.5
        while not self._closing:
            try:
                await self._listen()
                log.info("LISTEN connection restored")
                return
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN reconnect failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _clean_messages(self) -> None:
        while True:
            await asyncio.sleep(300)
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await self.pool.execute(
                    "DELETE FROM routing_messages WHERE created_at < now() - interval '10 minutes'")

    # ---------------------------------------------------------------- sending
    async def _send(self, channel: str, message: dict[str, Any]) -> None:
        body = orjson.dumps(message, default=str).decode()
        if len(body.encode()) > _NOTIFY_LIMIT:
            ref = uuid.uuid4()
            await self.pool.execute(
                "WITH m AS (INSERT INTO routing_messages (id, body) VALUES ($1, $2)) SELECT pg_notify($3, $4)",
                ref, message, channel, orjson.dumps({"t": "ref", "ref": str(ref)}).decode())
        else:
            await self.pool.execute("SELECT pg_notify($1, $2)", channel, body)

    async def _notify_events(self, batch: list[bytes]) -> None:
        await self.pool.execute("SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x", EVENTS_CHANNEL,
                                [b.decode() for b in batch])

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- receiving
    def _on_event(self, conn, pid, channel, payload: str) -> None:
        if self.bus is not None:
            self.bus.deliver_remote(payload)

    def _on_rpc(self, conn, pid, channel, payload: str) -> None:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("unreadable routing message")
            return
        self._spawn(self._dispatch(message))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("t") == "ref":
            try:
                message = await self.pool.fetchval("DELETE FROM routing_messages WHERE id=$1 RETURNING body",
                                                   uuid.UUID(message["ref"]))
            except (asyncpg.PostgresError, OSError, ValueError, KeyError) as exc:
                log.warning("could not read a routed message: %s", exc)
                return
            if not isinstance(message, dict):
                return
        kind = message.get("t")
        if kind == "call":
            if not all(isinstance(message.get(k), t) for k, t in (
                    ("cp", str), ("action", str), ("payload", dict), ("timeout", (int, float)))):
                log.warning("malformed routed call ignored")
                return
            await self._serve_call(message)
        elif kind == "close":
            conn = self.gateway.connections.get(message.get("cp", ""))
            if conn is not None:
                await conn.ws.close(1000, "charge point removed")
        elif kind in ("ack", "alive", "result"):
            q = self._waiting.get(message.get("id", ""))
            if q is not None:
                q.put_nowait(message)

    async def _serve_call(self, m: dict[str, Any]) -> None:
        rid, reply = m.get("id"), m.get("reply")
        if not isinstance(rid, str) or not isinstance(reply, str):
            return
        try:
            await self._send(reply, {"t": "ack", "id": rid})
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not acknowledge a routed call: %s", exc)
            return
        call = asyncio.create_task(self.gateway.call(m["cp"], m["action"], m["payload"], float(m["timeout"])))
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=self.keepalive)
                if done:
                    break
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    await self._send(reply, {"t": "alive", "id": rid})
            result: dict[str, Any] = {"t": "result", "id": rid, "ok": True, "payload": call.result()}
        except asyncio.CancelledError:
            call.cancel()
            raise
        except ChargerOffline:
            result = {"t": "result", "id": rid, "ok": False, "error": "offline",
                      "message": f"{m['cp']} is not connected to node {self.node_id}"}
        except CommandTimeout as exc:
            result = {"t": "result", "id": rid, "ok": False, "error": "timeout", "message": str(exc)}
        except CommandRejected as exc:
            result = {"t": "result", "id": rid, "ok": False, "error": "call_error", "code": exc.code,
                      "description": exc.description, "details": exc.details}
        except validation.ValidationFailed as exc:
            result = {"t": "result", "id": rid, "ok": False, "error": "invalid", "message": exc.description}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, never lost
            log.exception("routed call failed")
            result = {"t": "result", "id": rid, "ok": False, "error": "failed", "message": repr(exc)}
        try:
            await self._send(reply, result)
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("could not return a routed call's result: %s", exc)

    # ---------------------------------------------------------------- API
    async def locate(self, cp_id: str) -> Location:
        """Where charger *cp_id* is connected; raises :class:`UnknownCharger`."""
        row = await self.pool.fetchrow(
            """SELECT node_id, ocpp_version, (lease_expires_at IS NOT NULL AND lease_expires_at > now()) AS online
               FROM charge_points WHERE id=$1""", cp_id)
        if row is None:
            raise UnknownCharger(cp_id)
        local = self.gateway.connections.get(cp_id)
        db_node, online = row["node_id"], row["online"]
        if local is not None and (not online or db_node in (None, self.node_id)):
            return Location(cp_id, True, self.node_id, local.version, True)
        if online and db_node and db_node != self.node_id:
            return Location(cp_id, True, db_node, row["ocpp_version"], False)
        if local is not None:
            return Location(cp_id, True, self.node_id, local.version, True)
        return Location(cp_id, False, None, row["ocpp_version"], False)

    async def call(self, where: Location | str, action: str, payload: dict[str, Any], timeout: float
                   ) -> dict[str, Any]:
        """Send a call to a charger wherever it is connected; return its CALLRESULT payload.

        Raises ChargerOffline, CommandTimeout or CommandRejected like
        :meth:`Gateway.call <csms.gateway.Gateway.call>`.
        """
        loc = where if isinstance(where, Location) else await self.locate(where)
        if not loc.online or loc.node_id is None:
            raise ChargerOffline(loc.charge_point_id)
        if loc.local:
            return await self.gateway.call(loc.charge_point_id, action, payload, timeout)
        return await self._remote(loc, action, payload, timeout)

    async def _remote(self, loc: Location, action: str, payload: dict[str, Any], timeout: float
                      ) -> dict[str, Any]:
        rid = uuid.uuid4().hex
        q: asyncio.Queue = asyncio.Queue()
        self._waiting[rid] = q
        node = loc.node_id or ""
        try:
            await self._send(node_channel(node), {"t": "call", "id": rid, "reply": self.channel,
                                                  "from": self.node_id, "cp": loc.charge_point_id,
                                                  "action": action, "payload": payload, "timeout": timeout})
            try:
                msg = await asyncio.wait_for(q.get(), self.ack_timeout)
            except asyncio.TimeoutError:
                raise ChargerOffline(f"node {node} holding {loc.charge_point_id} does not respond") from None
            while msg.get("t") != "result":
                try:
                    msg = await asyncio.wait_for(q.get(), max(self.silence_timeout, self.keepalive * 3))
                except asyncio.TimeoutError:
                    raise CommandTimeout(f"node {node} stopped answering while asking "
                                         f"{loc.charge_point_id} for {action}") from None
        finally:
            self._waiting.pop(rid, None)
        if msg.get("ok"):
            return msg.get("payload") or {}
        error = msg.get("error")
        if error == "offline":
            raise ChargerOffline(msg.get("message") or loc.charge_point_id)
        if error == "timeout":
            raise CommandTimeout(msg.get("message") or f"{loc.charge_point_id} did not answer {action}")
        if error == "call_error":
            raise CommandRejected(str(msg.get("code")), str(msg.get("description") or ""),
                                  msg.get("details") or {})
        if error == "invalid":
            raise validation.ValidationFailed(validation.ErrorKind.PROPERTY_CONSTRAINT,
                                              str(msg.get("message")), "-")
        raise RuntimeError(f"node {node} failed the call: {msg.get('message')}")

    async def disconnect(self, loc: Location) -> None:
        """Close a charger's connection wherever it is (used when it is unregistered)."""
        conn = self.gateway.connections.get(loc.charge_point_id)
        if conn is not None:
            await conn.ws.close(1000, "charge point removed")
        elif loc.online and loc.node_id and loc.node_id != self.node_id:
            await self._send(node_channel(loc.node_id), {"t": "close", "cp": loc.charge_point_id})
