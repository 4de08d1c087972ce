"""The OCPP-J websocket gateway: the thin asyncio layer around the sans-I/O parts.

Chargers connect at ``ws://HOST:PORT/ocpp/{charge_point_id}`` and, when TLS is
configured, ``wss://HOST:TLS_PORT/ocpp/{charge_point_id}``. The handshake checks
the subprotocol (the highest common OCPP version of 2.1, 2.0.1, 1.6; none in
common → 400), registration (unknown id → 404), the transport the charger's
security profile demands (profile 2/3 on plain ws, profile 3 without a client
certificate, or a certificate whose CN is not the id → 403; an untrusted or
expired certificate fails the TLS handshake itself) and the password (HTTP
Basic, profiles 1 and 2 → 401 when wrong or missing). A second connection with
the same id replaces the first.

Each frame is parsed by :mod:`csms.ocppj`, validated by :mod:`csms.validation`,
decoded by the version module, applied by :class:`csms.service.ChargerService`,
and answered; any failure becomes the CALLERROR the OCPP-J spec names, logged,
and never affects another charger.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import asyncpg
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import metrics, ocppj, proxy_auth, validation
from .config import Settings
from .events import utcnow
from .group_commit import GroupCommitter
from .logs import charger_logger
from .passwords import PasswordVerifier
from .service import ChargerService, Publish
from .versions import SUBPROTOCOLS, codec_for, negotiate

__all__ = ["Gateway", "ChargerOffline", "CommandTimeout", "CommandRejected"]

log = logging.getLogger("csms.gateway")

PATH_PREFIX = "/ocpp/"


class ChargerOffline(Exception):
    """The charger is not connected to this node."""


class CommandTimeout(Exception):
    """The charger did not answer a CSMS-initiated call in time."""


class CommandRejected(Exception):
    """The charger answered a CSMS-initiated call with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any]) -> None:
        super().__init__(f"{code}: {description}")
        self.code, self.description, self.details = code, description, details


@dataclass
class Connection:
    """A live charger connection on this node."""

    cp_id: str
    version: str
    ws: ServerConnection
    service: ChargerService
    log: logging.LoggerAdapter
    connected_at: Any
    connection_row: int = 0
    pending: dict[str, asyncio.Future] = field(default_factory=dict)
    call_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Gateway:
    """Owns the websocket server(s), live connections, leases and CSMS-initiated calls."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, committer: GroupCommitter,
                 publish: Publish | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.committer = committer
        self.publish = publish
        self.node_id = settings.node_id
        self.connections: dict[str, Connection] = {}
        self._verifier = PasswordVerifier()
        self._servers: list[Server] = []
        self._lease_task: asyncio.Task | None = None
        # Graceful shutdown: once draining, new CALLs are left unanswered (the charger resends
        # them to the node it reconnects to) while CALLs already being handled finish.
        self._draining = False
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.ports: list[int] = []       # ws:// ports
        self.tls_ports: list[int] = []   # wss:// ports

    # ---------------------------------------------------------------- lifecycle
    async def start(self, host: str | None = None, port: int | None = None) -> None:
        """Serve ws:// (and wss:// too when ``tls_port`` is configured)."""
        server = await self._serve(host or self.settings.ocpp_host,
                                   self.settings.ocpp_port if port is None else port, None)
        self.ports.extend(s.getsockname()[1] for s in server.sockets)
        if self.settings.tls_port is not None and not self.tls_ports:
            await self.start_tls()

    async def start_tls(self, host: str | None = None, port: int | None = None,
                        context: ssl.SSLContext | None = None) -> None:
        """Serve wss:// (security profiles 2 and 3) with *context* or one built from the settings."""
        ctx = context or server_ssl_context(self.settings)
        server = await self._serve(host or self.settings.ocpp_host,
                                   (self.settings.tls_port or 0) if port is None else port, ctx)
        self.tls_ports.extend(s.getsockname()[1] for s in server.sockets)

    async def _serve(self, host: str, port: int, context: ssl.SSLContext | None) -> Server:
        server = await serve(
            self._handle, host, port, ssl=context,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            subprotocols=list(SUBPROTOCOLS),
            max_size=self.settings.max_frame_bytes,
            max_queue=4,
            compression=None,
            ping_interval=None,
            server_header="csms",
        )
        self._servers.append(server)
        if self._lease_task is None:
            self._lease_task = asyncio.create_task(self._refresh_leases(), name="lease-refresh")
        return server

    async def stop(self, close_code: int = 1001) -> None:
        """Stop accepting, close every charger with *close_code* and release this node's leases."""
        for server in self._servers:
            server.close(close_connections=False)
        self._draining = True
        try:
            # Answer what is being handled (its data is committing) before closing.
            await asyncio.wait_for(self._idle.wait(), timeout=10)
        except asyncio.TimeoutError:
            log.warning("shutdown: %d charger messages still in flight", self._inflight)
        await asyncio.gather(*(c.ws.close(close_code, "server shutting down")
                               for c in list(self.connections.values())), return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        if self._lease_task:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
            self._lease_task = None
        try:
            await self.pool.execute(
                "UPDATE charge_points SET node_id=NULL, lease_expires_at=NULL WHERE node_id=$1", self.node_id)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not release leases: %s", exc)

    # ---------------------------------------------------------------- handshake
    @staticmethod
    def _select_subprotocol(connection: ServerConnection, offered: list[str]) -> str | None:
        return negotiate(offered)

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if not path.startswith(PATH_PREFIX) or len(path) <= len(PATH_PREFIX):
            return connection.respond(HTTPStatus.NOT_FOUND, "expected /ocpp/{charge_point_id}\n")
        cp_id = unquote(path[len(PATH_PREFIX):]).strip("/")
        if not cp_id or "/" in cp_id or len(cp_id) > 64:
            return connection.respond(HTTPStatus.NOT_FOUND, "invalid charge point id\n")
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        if negotiate(offered) is None:
            log.warning("handshake refused: no common subprotocol",
                        extra={"charge_point_id": cp_id, "offered": offered})
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                f"no supported OCPP subprotocol offered; supported: {', '.join(SUBPROTOCOLS)}\n")
        try:
            row = await self.pool.fetchrow(
                "SELECT password_hash, security_profile FROM charge_points WHERE id=$1", cp_id)
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("handshake failed: database unavailable: %s", exc, extra={"charge_point_id": cp_id})
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "database unavailable, retry later\n")
        if row is None:
            log.warning("handshake refused: unknown charger", extra={"charge_point_id": cp_id})
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charge point\n")
        refusal = self._check_transport(connection, cp_id, row["security_profile"], bool(row["password_hash"]))
        if refusal is not None:
            status, reason = refusal
            log.warning("handshake refused: %s", reason,
                        extra={"charge_point_id": cp_id, "security_profile": row["security_profile"]})
            response = connection.respond(status, reason + "\n")
            if status == HTTPStatus.UNAUTHORIZED:
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            return response
        if row["password_hash"] and row["security_profile"] != 3:
            password = self._basic_password(request.headers, cp_id)
            if password is None or not await self._verifier.verify(password, row["password_hash"]):
                log.warning("handshake refused: bad credentials", extra={"charge_point_id": cp_id})
                response = connection.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
                return response
        connection.cp_id = cp_id  # type: ignore[attr-defined]
        return None

    def _check_transport(self, connection: ServerConnection, cp_id: str, profile: int, has_password: bool
                         ) -> tuple[HTTPStatus, str] | None:
        """Security profiles 2 and 3: TLS required; profile 3 needs a client certificate for *cp_id*.

        Certificates from an untrusted CA or expired ones never get here: the TLS handshake
        fails first. A client certificate, when one is presented, must always name *cp_id*.
        Behind a TLS-terminating proxy listed in ``CSMS_TRUSTED_PROXIES``, the proxy's
        headers say whether the charger used TLS and which certificate it verified; from
        any other peer those headers are ignored.
        """
        ssl_object = connection.transport.get_extra_info("ssl_object")
        tls, cn = ssl_object is not None, _certificate_cn(ssl_object)
        if not tls:
            proxied = proxy_auth.proxied_transport(proxy_auth.peer_host(connection.remote_address),
                                                   connection.request.headers, self.settings)
            if proxied is not None:
                tls, cn = proxied.tls, proxied.common_name
        if cn is not None and cn != cp_id:
            return HTTPStatus.FORBIDDEN, "client certificate is not for this charge point"
        if profile >= 2 and not tls:
            return HTTPStatus.FORBIDDEN, f"security profile {profile} requires TLS (wss://)"
        if profile == 3 and cn is None:
            return HTTPStatus.FORBIDDEN, "security profile 3 requires a client certificate"
        if profile == 2 and not has_password:
            return HTTPStatus.UNAUTHORIZED, "security profile 2 requires a password; none is registered"
        return None

    @staticmethod
    def _basic_password(headers: Headers, cp_id: str) -> str | None:
        value = headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password if sep and user == cp_id else None

    # ---------------------------------------------------------------- connection
    async def _handle(self, ws: ServerConnection) -> None:
        cp_id: str = ws.cp_id  # type: ignore[attr-defined]
        version = SUBPROTOCOLS[ws.subprotocol]
        clog = charger_logger(cp_id, ocpp=version)
        now = utcnow()
        service = ChargerService(cp_id, version, self.pool, self.committer, self.settings.heartbeat_interval,
                                 clog, self.publish)
        conn = Connection(cp_id, version, ws, service, clog, now)
        old = self.connections.get(cp_id)
        self.connections[cp_id] = conn
        if old is not None:
            clog.info("replacing previous connection")
            await old.ws.close(1000, "replaced by a new connection")
        try:
            conn.connection_row = await self.pool.fetchval(
                """WITH cp AS (UPDATE charge_points SET node_id=$2, lease_expires_at=$3, connected_since=$4,
                       last_seen=$4, ocpp_version=$5 WHERE id=$1)
                   INSERT INTO charger_connections (charge_point_id, node_id, ocpp_version, remote_address,
                       connected_at) VALUES ($1,$2,$5,$6,$4) RETURNING id""",
                cp_id, self.node_id, now + timedelta(seconds=self.settings.lease_seconds), now, version,
                _peer(ws))
        except (asyncpg.PostgresError, OSError) as exc:
            clog.error("could not record connection: %s", exc)
        clog.info("connected", extra={"remote": _peer(ws)})
        if self.publish:
            self.publish("charger_connected", {"charge_point_id": cp_id, "ocpp_version": version})
        try:
            await self._receive_loop(conn)
        finally:
            await self._disconnected(conn)

    async def _receive_loop(self, conn: Connection) -> None:
        codec = codec_for(conn.version)
        ws = conn.ws
        try:
            async for data in ws:
                reply = await self._on_frame(conn, codec, data)
                if reply is not None:
                    await ws.send(reply)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            if rcvd is None or rcvd.code not in (1000, 1001):
                conn.log.info("connection closed", extra={"code": rcvd.code if rcvd else None,
                                                          "sent_code": exc.sent.code if exc.sent else None})

    async def _on_frame(self, conn: Connection, codec, data: str | bytes) -> str | None:
        version = conn.version
        try:
            msg = ocppj.parse(data, version)
        except ocppj.FrameError as exc:
            conn.log.warning("bad frame: %s", exc.description, extra={"error": exc.kind.value})
            if exc.unique_id is None:
                return None
            return metrics.ocpp_reply(version, None, ocppj.encode(ocppj.CallError(
                exc.unique_id, ocppj.error_code(exc.kind, version), exc.description, exc.details)))
        if isinstance(msg, ocppj.Call):
            return metrics.ocpp_reply(version, msg.action, await self._on_call(conn, codec, msg))
        if isinstance(msg, ocppj.Send):
            conn.log.info("SEND ignored", extra={"action": msg.action})
            return None
        future = conn.pending.pop(msg.unique_id, None)
        if future is None:
            conn.log.warning("response for an unknown message id", extra={"unique_id": msg.unique_id})
        elif not future.done():
            future.set_result(msg)
        return None

    async def _on_call(self, conn: Connection, codec, call: ocppj.Call) -> str | None:
        if self._draining:
            return None
        self._inflight += 1
        self._idle.clear()
        try:
            return await self._handle_call(conn, codec, call)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def _handle_call(self, conn: Connection, codec, call: ocppj.Call) -> str:
        version = conn.version
        action = call.action
        try:
            if action not in codec.ACTIONS:
                kind = (ocppj.ErrorKind.NOT_SUPPORTED if validation.has_schema(version, action)
                        else ocppj.ErrorKind.NOT_IMPLEMENTED)
                raise ocppj.FrameError(kind, f"action {action!r} is not handled by this CSMS", call.unique_id)
            validation.validate(version, action, call.payload, call.unique_id)
            try:
                event = codec.decode(action, call.payload)
            except (ValueError, KeyError, TypeError) as exc:
                raise ocppj.FrameError(ocppj.ErrorKind.TYPE_CONSTRAINT, f"invalid value: {exc}",
                                       call.unique_id) from None
            outcome = await conn.service.handle(event)
            return ocppj.encode(ocppj.CallResult(call.unique_id, codec.encode(action, outcome)))
        except ocppj.FrameError as exc:
            conn.log.warning("CALLERROR sent: %s", exc.description,
                             extra={"action": action, "error": exc.kind.value})
            return ocppj.encode(ocppj.CallError(call.unique_id, ocppj.error_code(exc.kind, version),
                                                exc.description, exc.details))
        except Exception as exc:  # noqa: BLE001 - the charger gets InternalError and retries
            conn.log.exception("handler failed", extra={"action": action})
            return ocppj.encode(ocppj.CallError(
                call.unique_id, ocppj.error_code(ocppj.ErrorKind.INTERNAL, version),
                f"internal error: {type(exc).__name__}", {}))

    async def _disconnected(self, conn: Connection) -> None:
        for fut in conn.pending.values():
            if not fut.done():
                fut.set_exception(ChargerOffline(conn.cp_id))
        current = self.connections.get(conn.cp_id) is conn
        if current:
            del self.connections[conn.cp_id]
        try:
            async with self.pool.acquire() as db:
                await db.execute(
                    "UPDATE charger_connections SET disconnected_at=now(), close_code=$2 WHERE id=$1",
                    conn.connection_row, conn.ws.close_code)
                if current:
                    await db.execute(
                        # connected_since: a reconnect that already took the lease keeps it.
                        """UPDATE charge_points SET node_id=NULL, lease_expires_at=NULL, last_seen=$3
                           WHERE id=$1 AND node_id=$2 AND connected_since=$4""",
                        conn.cp_id, self.node_id, conn.service.last_seen, conn.connected_at)
        except (asyncpg.PostgresError, OSError) as exc:
            conn.log.warning("could not record disconnect: %s", exc)
        conn.log.info("disconnected", extra={"code": conn.ws.close_code})
        if current and self.publish:
            self.publish("charger_disconnected", {"charge_point_id": conn.cp_id})

    async def _refresh_leases(self) -> None:
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            conns = list(self.connections.values())
            if not conns:
                continue
            try:
                await self.pool.execute(
                    """UPDATE charge_points cp SET lease_expires_at = now() + make_interval(secs => $3),
                           last_seen = GREATEST(cp.last_seen, v.seen), node_id = $4
                       FROM unnest($1::text[], $2::timestamptz[]) AS v(id, seen) WHERE cp.id = v.id""",
                    [c.cp_id for c in conns], [c.service.last_seen for c in conns],
                    float(self.settings.lease_seconds), self.node_id)
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("lease refresh failed: %s", exc)

    # ---------------------------------------------------------------- CSMS → charger
    @metrics.timed_command
    async def call(self, cp_id: str, action: str, payload: dict[str, Any], timeout: float = 30.0
                   ) -> dict[str, Any]:
        """Send a CALL to a charger connected to this node and return its CALLRESULT payload.

        Calls to one charger are queued: OCPP allows one outstanding CSMS call per
        connection. Raises :class:`ChargerOffline`, :class:`CommandTimeout` or
        :class:`CommandRejected`.
        """
        conn = self.connections.get(cp_id)
        if conn is None:
            raise ChargerOffline(cp_id)
        validation.validate(conn.version, action, payload, "-")
        async with conn.call_lock:
            unique_id = str(uuid.uuid4())
            future = asyncio.get_running_loop().create_future()
            conn.pending[unique_id] = future
            try:
                await conn.ws.send(ocppj.encode(ocppj.Call(unique_id, action, payload)))
                reply = await asyncio.wait_for(future, timeout)
            except asyncio.TimeoutError:
                raise CommandTimeout(f"{cp_id} did not answer {action} within {timeout:g} s") from None
            except ConnectionClosed:
                raise ChargerOffline(cp_id) from None
            finally:
                conn.pending.pop(unique_id, None)
        if isinstance(reply, ocppj.CallError):
            raise CommandRejected(reply.code, reply.description, reply.details)
        return reply.payload


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ server context from ``tls_cert``/``tls_key``; with ``tls_client_ca``, client
    certificates are requested and verified against it (optional at the TLS level: security
    profile 2 chargers have none, and profile 3 is enforced per charger in the handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    if settings.tls_client_ca is not None:
        ctx.load_verify_locations(cafile=str(settings.tls_client_ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _certificate_cn(ssl_object) -> str | None:
    """The subject CN of the verified peer certificate, or None without one."""
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def _peer(ws: ServerConnection) -> str | None:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except (TypeError, ValueError, IndexError):
        return None
