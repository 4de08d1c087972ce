"""Two real `csms serve` nodes behind a real nginx (Debian's, with the shipped deploy/nginx config).

A charger connects through nginx and charges; SIGTERM to its node mid-session closes it with 1001,
it reconnects through nginx to the other node, and the session completes with the right energy.
The stopped node, started again, takes chargers back by itself. TLS (wss://) terminates at nginx;
the client-certificate headers nginx passes cannot be forged by a client.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from csms.config import Settings
from csms.passwords import hash_password
from csms.proxy_auth import verified_client_cert
from csms.simulator import connect, now_iso

from .conftest import RawClient
from .deploy_helpers import Node, make_pki, render_nginx, require_tool

pytestmark = pytest.mark.slow

BOOT = {"chargePointVendor": "Sim", "chargePointModel": "AC7"}


class Raw(RawClient):
    """A minimal OCPP 1.6 charger: ``call`` returns the CALLRESULT payload."""

    timeout = 10.0

    async def call(self, action: str, payload: dict) -> dict:
        return await self.ok(action, payload)

    async def meter(self, tx: int, wh: int) -> None:
        await self.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
            {"timestamp": now_iso(), "sampledValue": [
                {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})


async def connect_forged(url: str, cp_id: str, forged: dict[str, str], password: str | None = None, **kw):
    headers = dict(forged)
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{cp_id}:{password}".encode()).decode()
    return await websockets.connect(f"{url}/{cp_id}", subprotocols=["ocpp1.6"], additional_headers=headers,
                                    open_timeout=10, **kw)


async def reconnect(url: str, cp_id: str, password: str, timeout: float = 15, **kw):
    """A charger's reconnect loop: retry the handshake until a node behind nginx takes it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(url, cp_id, password=password, **kw)
        except (OSError, websockets.InvalidStatus, websockets.InvalidHandshake, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def holder(conn: asyncpg.Connection, cp_id: str) -> str | None:
    return await conn.fetchval("SELECT node_id FROM charge_points WHERE id=$1 AND lease_expires_at > now()", cp_id)


async def test_failover_through_nginx(db_url, conn, tmp_path: Path):
    nginx_bin = require_tool("nginx", "/usr/sbin/nginx")
    pki = make_pki(tmp_path / "tls", "CP-TLS")
    await conn.execute("INSERT INTO charge_points (id, password_hash, security_profile) VALUES ($1, $2, 1), "
                       "($3, $4, 1)", "CP-NG", hash_password("pw-ng-123"), "CP-WSS", hash_password("pw-wss-123"))
    await conn.execute("INSERT INTO id_tags (id_tag) VALUES ('TAG-NG')")

    nodes = {name: Node(name, db_url, tmp_path / "logs") for name in ("node-a", "node-b")}
    nginx = render_nginx(tmp_path / "nginx", nginx_bin, pki, [n.ocpp_port for n in nodes.values()],
                         [n.api_port for n in nodes.values()])
    try:
        await asyncio.gather(*(n.start() for n in nodes.values()))
        await asyncio.gather(*(n.wait_ready() for n in nodes.values()), nginx.start())

        # ---- a session starts through nginx (ws://, security profile 1: Basic auth passes through)
        ws = await connect(nginx.ws_url, "CP-NG", password="pw-ng-123")
        cp = Raw(ws)
        assert (await cp.call("BootNotification", BOOT))["status"] == "Accepted"
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
        assert (await cp.call("Authorize", {"idTag": "TAG-NG"}))["idTagInfo"]["status"] == "Accepted"
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "TAG-NG", "meterStart": 1000,
                                                     "timestamp": now_iso()})
        tx = started["transactionId"]
        await cp.meter(tx, 1500)
        first = await holder(conn, "CP-NG")
        assert first in nodes
        other = next(n for n in nodes if n != first)

        # ---- SIGTERM its node mid-session: 1001, a clean exit in time, its leases released
        stopping = asyncio.create_task(nodes[first].terminate())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 15)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        code, seconds = await stopping
        assert code == 0, nodes[first].log
        assert seconds < 10
        assert await conn.fetchval("SELECT count(*) FROM charge_points WHERE node_id=$1", first) == 0
        assert await conn.fetchval("SELECT close_code FROM charger_connections WHERE node_id=$1", first) == 1001

        # ---- the charger reconnects through nginx and lands on the other node; the session goes on
        ws = await reconnect(nginx.ws_url, "CP-NG", "pw-ng-123")
        cp = Raw(ws)
        await cp.meter(tx, 2500)
        assert await holder(conn, "CP-NG") == other
        stop = await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 5000, "timestamp": now_iso(),
                                                 "idTag": "TAG-NG", "reason": "EVDisconnected"})
        assert stop["idTagInfo"]["status"] == "Accepted"
        session = await conn.fetchrow("SELECT * FROM sessions WHERE charge_point_id='CP-NG'")
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 1
        assert session["transaction_id"] == str(tx) and session["stopped_at"] is not None
        assert (session["meter_start_wh"], session["meter_stop_wh"], session["energy_wh"]) == (1000, 5000, 4000)
        assert [r["value"] for r in await conn.fetch(
            "SELECT value FROM meter_values WHERE session_id=$1 AND measurand='Energy.Active.Import.Register' "
            "ORDER BY sampled_at", session["id"])] == [1500, 2500]

        # ---- health and metrics through nginx (https), answered by the node still running
        async with httpx.AsyncClient(base_url=nginx.https_url, verify=pki.client_context(), timeout=10) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["node_id"] == other
            scraped = await client.get("/metrics")
            assert scraped.status_code == 200
            families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
            connected = {s.labels["version"]: s.value for s in families["csms_connected_chargers"].samples}
            assert connected["1.6"] == 1
            assert any(s.labels.get("action") == "StopTransaction" for s in families["csms_ocpp_messages"].samples)
            redirect = await client.get(f"http://127.0.0.1:{nginx.http_port}/api/v1/health")
            assert redirect.status_code == 301 and redirect.headers["location"].startswith("https://")

        # ---- wss://: TLS ends at nginx, Basic auth reaches the node
        tls_ws = await connect(nginx.wss_url, "CP-WSS", password="pw-wss-123", ssl=pki.client_context())
        assert (await Raw(tls_ws).call("BootNotification", BOOT))["status"] == "Accepted"
        await tls_ws.close()

        # ---- the stopped node comes back by itself (same node id) and takes chargers back
        restarted = nodes[first]
        await restarted.start()
        await restarted.wait_ready()
        stopping = asyncio.create_task(nodes[other].terminate())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 15)
        assert closed.value.rcvd.code == 1001
        assert (await stopping)[0] == 0
        ws = await reconnect(nginx.ws_url, "CP-NG", "pw-ng-123")
        await Raw(ws).call("Heartbeat", {})
        assert await holder(conn, "CP-NG") == first
        await ws.close()
    finally:
        await nginx.stop()
        for node in nodes.values():
            await node.kill()


async def test_security_profiles_2_and_3_behind_nginx(db_url, conn, tmp_path: Path):
    """TLS terminated by nginx: the node believes nginx (CSMS_TRUSTED_PROXIES) about TLS and the certificate."""
    nginx_bin = require_tool("nginx", "/usr/sbin/nginx")
    pki = make_pki(tmp_path / "tls", "CP-P3")
    await conn.execute("INSERT INTO charge_points (id, password_hash, security_profile) VALUES ($1, $2, 2), "
                       "('CP-P3', NULL, 3)", "CP-P2", hash_password("pw-p2-1234"))
    node = Node("node-tls", db_url, tmp_path / "logs")
    nginx = render_nginx(tmp_path / "nginx", nginx_bin, pki, [node.ocpp_port] * 2, [node.api_port] * 2)
    forged = {"X-Client-Cert-Verify": "SUCCESS", "X-Client-Cert-Subject": "CN=CP-P3", "X-Forwarded-Proto": "https"}
    try:
        await node.start()
        await asyncio.gather(node.wait_ready(), nginx.start())
        # profile 2: wss:// with its password; plain ws:// refused even with forged headers
        ws = await connect(nginx.wss_url, "CP-P2", password="pw-p2-1234", ssl=pki.client_context())
        assert (await Raw(ws).call("BootNotification", BOOT))["status"] == "Accepted"
        await ws.close()
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect_forged(nginx.ws_url, "CP-P2", forged, password="pw-p2-1234")
        assert refused.value.response.status_code == 403
        # profile 3: the certificate nginx verified; none, or forged headers, refused
        ws = await connect(nginx.wss_url, "CP-P3", ssl=pki.client_context(with_cert=True))
        assert (await Raw(ws).call("BootNotification", BOOT))["status"] == "Accepted"
        await ws.close()
        for url, ctx in ((nginx.wss_url, pki.client_context()), (nginx.ws_url, None)):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await connect_forged(url, "CP-P3", forged, **({"ssl": ctx} if ctx else {}))
            assert refused.value.response.status_code == 403
    finally:
        await nginx.stop()
        await node.kill()


async def _echo_upstream(seen: list[dict[str, list[str]]]):
    """A stand-in node that records the request headers nginx sends it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        headers: dict[str, list[str]] = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.setdefault(k.strip().lower(), []).append(v.strip())
        seen.append(headers)
        body = b"ok"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_client_certificate_headers_cannot_be_forged(tmp_path: Path):
    nginx_bin = require_tool("nginx", "/usr/sbin/nginx")
    pki = make_pki(tmp_path / "tls", "CP-TLS")
    seen: list[dict[str, list[str]]] = []
    upstream = await _echo_upstream(seen)
    port = upstream.sockets[0].getsockname()[1]
    nginx = render_nginx(tmp_path / "nginx", nginx_bin, pki, [port, port], [port, port])
    forged = {"X-Client-Cert-Verify": "SUCCESS", "X-Client-Cert-Subject": "CN=EVIL"}
    trusting = Settings(trusted_proxies="127.0.0.1")
    untrusting = Settings(trusted_proxies="10.9.9.9")
    try:
        await nginx.start()

        async def get(url: str, ctx=None) -> dict[str, list[str]]:
            seen.clear()
            async with httpx.AsyncClient(verify=ctx or pki.client_context(), timeout=10) as client:
                r = await client.get(url, headers=forged)
            assert r.status_code == 200, r.text
            return seen[0]

        # profile 3: a certificate from the charger CA; the forged values are replaced by nginx's
        got = await get(f"{nginx.https_url}/ocpp/CP-TLS", pki.client_context(with_cert=True))
        assert got["x-client-cert-verify"] == ["SUCCESS"]
        assert len(got["x-client-cert-subject"]) == 1 and "CN=CP-TLS" in got["x-client-cert-subject"][0]
        cert = verified_client_cert("127.0.0.1", got, trusting)
        assert cert is not None and cert.common_name == "CP-TLS" and cert.matches("CP-TLS")
        assert verified_client_cert("127.0.0.1", got, untrusting) is None  # nginx's address not configured

        # profile 2 (no certificate) and plain ws:// — nothing the node would believe
        got = await get(f"{nginx.https_url}/ocpp/CP-TLS")
        assert got["x-client-cert-verify"] == ["NONE"] and "x-client-cert-subject" not in got
        assert verified_client_cert("127.0.0.1", got, trusting) is None
        got = await get(f"http://127.0.0.1:{nginx.http_port}/ocpp/CP-TLS")
        assert "x-client-cert-verify" not in got and "x-client-cert-subject" not in got
        got = await get(f"{nginx.https_url}/api/v1/health", pki.client_context(with_cert=True))
        assert "x-client-cert-verify" not in got and "x-client-cert-subject" not in got

        # the websocket headers nginx must pass for OCPP
        seen.clear()
        with pytest.raises(websockets.InvalidStatus):  # the stand-in does not speak websocket
            await websockets.connect(f"{nginx.ws_url}/CP-X", subprotocols=["ocpp1.6"], open_timeout=5)
        assert seen[0]["upgrade"] == ["websocket"] and seen[0]["connection"] == ["upgrade"]
        assert seen[0]["sec-websocket-protocol"] == ["ocpp1.6"] and seen[0]["x-forwarded-for"] == ["127.0.0.1"]

        # a certificate from another CA never reaches a node
        seen.clear()
        async with httpx.AsyncClient(verify=pki.client_context(with_cert="rogue"), timeout=10) as client:
            r = await client.get(f"{nginx.https_url}/ocpp/CP-TLS")
        assert r.status_code == 400 and not seen
    finally:
        await nginx.stop()
        upstream.close()
