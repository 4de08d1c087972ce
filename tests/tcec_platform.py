"""A supervision platform written from T/CEC 102 for the tests (an ASGI app on a real socket).

It implements the platform side of the push interfaces: ``query_token`` and the
``notification_*`` interfaces. Every request's envelope, signature and (except for
``query_token``) bearer token are checked exactly as the standard says, with the codec used
from the *other* side (the platform decrypts what the CSMS encrypted).

It records what it receives (``received``: first receipts in arrival order; ``duplicates``:
messages received again with the same OperatorID/TimeStamp/Seq, which it acknowledges
again without recording, as a real platform deduplicating would), and can be told to fail:

* ``await down()`` / ``await up()``: stop / resume listening on the same port (connection refused);
* ``mode = "busy"`` (Ret -1), ``"error500"`` (HTTP 500 with Ret 500), ``"reject"`` (Ret 4004);
* ``expire_tokens()``: every token issued so far becomes invalid (Ret 4002 until a new one);
* ``delay``: seconds to wait before answering (a slow platform);
* ``dispute``: StartChargeSeqs answered with ConfirmResult 1.
"""

from __future__ import annotations

import asyncio
import json
import secrets as pysecrets
import socket
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from csms.tcec102.codec import (
    CONTENT_TYPE, PlatformError, Ret, Secrets, dumps_envelope, encode_response, error_response, open_request,
)

__all__ = ["TestPlatform", "Received", "SECRETS", "PLATFORM_OPERATOR_ID", "CSMS_OPERATOR_ID"]

PLATFORM_OPERATOR_ID = "MA0SXJG01"      # the platform's OperatorID
CSMS_OPERATOR_ID = "MA0YQCS01"          # ours, as the platform knows us
SECRETS = Secrets("opsecret-123456", "abcdef0123456789", "0123456789abcdef", "sigsecret-987654")


@dataclass
class Received:
    interface: str
    operator_id: str
    timestamp: str
    seq: str
    payload: dict[str, Any]


@dataclass
class TestPlatform:
    __test__ = False  # not a pytest class

    secrets: Secrets = SECRETS
    csms_operator_id: str = CSMS_OPERATOR_ID
    token_ttl: int = 3600
    mode: str = "ok"
    delay: float = 0.0
    dispute: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    duplicates: list[Received] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    port: int = 0
    _seen: dict[tuple[str, str, str], Received] = field(default_factory=dict)
    _server: Any = None
    _task: Any = None

    # ------------------------------------------------------------------ socket
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "TestPlatform":
        await self.up()
        return self

    async def up(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False, interface="asgi3")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(200):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("test platform did not start")

    async def down(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
            self._server = None

    stop = down

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def of(self, interface: str) -> list[Received]:
        return [r for r in self.received if r.interface == interface]

    # ------------------------------------------------------------------ ASGI
    async def app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, envelope = await self._handle(scope, body)
        raw = dumps_envelope(envelope)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})

    async def _handle(self, scope, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.delay:
            await asyncio.sleep(self.delay)
        path = scope["path"]
        prefix = "/evcs/v20160701/"
        if scope["method"] != "POST" or not path.startswith(prefix):
            return 404, error_response(PlatformError(Ret.PARAM_ERROR, "no such interface"))
        interface = path[len(prefix):]
        try:
            req = open_request(body, lambda op: self.secrets if op == self.csms_operator_id else None)
        except PlatformError as exc:
            self.refused.append((interface, exc.ret))
            return 200, error_response(exc)
        if interface == "query_token":
            self.token_requests += 1
            data = req.payload
            if data.get("OperatorID") != self.csms_operator_id or data.get("OperatorSecret") != self.secrets.operator_secret:
                return 200, encode_response(0, "", {"OperatorID": data.get("OperatorID"), "SuccStat": 1,
                                                    "AccessToken": "", "TokenAvailableTime": 0, "FailReason": 2},
                                            self.secrets)
            token = pysecrets.token_hex(16)
            self.tokens.add(token)
            return 200, encode_response(0, "", {"OperatorID": self.csms_operator_id, "SuccStat": 0,
                                                "AccessToken": token, "TokenAvailableTime": self.token_ttl,
                                                "FailReason": 0}, self.secrets)
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            self.refused.append((interface, 4002))
            return 200, encode_response(Ret.TOKEN_ERROR, "token invalid", None, self.secrets)
        if self.mode == "busy":
            return 200, encode_response(Ret.BUSY, "busy", None, self.secrets)
        if self.mode == "error500":
            return 500, encode_response(Ret.SYSTEM_ERROR, "system error", None, self.secrets)
        if self.mode == "reject":
            return 200, encode_response(Ret.BUSINESS_ERROR, "bad business parameters", None, self.secrets)
        if not interface.startswith("notification_"):
            return 200, encode_response(Ret.BUSINESS_ERROR, "unknown interface", None, self.secrets)
        rec = Received(interface, req.operator_id, req.timestamp, req.seq, req.payload)
        key = (req.operator_id, req.timestamp, req.seq)
        first = self._seen.get(key)
        if first is None:
            self._seen[key] = rec
            self.received.append(rec)
        else:
            self.duplicates.append(rec)
        return 200, encode_response(0, "", self._answer(interface, req.payload), self.secrets)

    def _answer(self, interface: str, payload: dict[str, Any]) -> dict[str, Any]:
        if interface == "notification_charge_order_info":
            seq = payload.get("StartChargeSeq")
            return {"StartChargeSeq": seq, "ConnectorID": payload.get("ConnectorID"),
                    "ConfirmResult": 1 if seq in self.dispute else 0}
        if interface == "notification_equip_charge_status":
            return {"StartChargeSeq": payload.get("StartChargeSeq"), "SuccStat": 0}
        return {"Status": 0}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
