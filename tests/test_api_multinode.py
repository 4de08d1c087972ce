"""Two real ``csms serve`` processes on one database: a charger on node B, API requests on node A.

Requests travel A → B and answers B → A over PostgreSQL LISTEN/NOTIFY; live
events too. Killing node B (SIGKILL, nothing released by hand) lets its lease
expire, and the charger shows offline on A.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import asyncpg
import httpx
import pytest

from csms.api.auth import create_token
from csms.routing import node_channel

from .api_helpers import Online16, sse_events
from .conftest import free_port, wait_for

pytestmark = pytest.mark.slow


class Node:
    def __init__(self, name: str, db_url: str, lease_seconds: int = 3) -> None:
        self.name = name
        self.ocpp_port, self.api_port = free_port(), free_port()
        self.env = {**os.environ, "CSMS_DATABASE_URL": db_url, "CSMS_NODE_ID": name,
                    "CSMS_OCPP_HOST": "127.0.0.1", "CSMS_OCPP_PORT": str(self.ocpp_port),
                    "CSMS_API_HOST": "127.0.0.1", "CSMS_API_PORT": str(self.api_port),
                    "CSMS_LEASE_SECONDS": str(lease_seconds), "CSMS_LOG_LEVEL": "WARNING",
                    "CSMS_DB_POOL_SIZE": "4", "CSMS_MAINTENANCE_INTERVAL": "0"}
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout = b""

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms.cli", "serve", env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def ready(self) -> None:
        assert self.proc is not None
        lines = []
        while len(lines) < 2:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            if not line:
                err = await self.proc.stderr.read()
                raise AssertionError(f"node {self.name} exited: {err.decode()[-2000:]}")
            lines.append(line.decode())
        assert f"OCPP ws://127.0.0.1:{self.ocpp_port}/ocpp" in lines[0]
        assert f"HTTP API http://127.0.0.1:{self.api_port}/api/v1" in lines[1]

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), 20)
        except asyncio.TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


async def test_command_on_node_a_for_a_charger_on_node_b(db_url: str):
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    _, token = await create_token(pool, "multi-node-operator", "operator")
    await pool.execute("INSERT INTO charge_points (id, security_profile) VALUES ('CPB', 0), ('CPX', 0)")
    headers = {"Authorization": f"Bearer {token}"}
    a, b = Node("node-a", db_url), Node("node-b", db_url)
    await asyncio.gather(a.start(), b.start())
    try:
        await asyncio.gather(a.ready(), b.ready())
        client_a = httpx.AsyncClient(base_url=a.api_url + "/api/v1", headers=headers, timeout=30)
        client_b = httpx.AsyncClient(base_url=b.api_url + "/api/v1", headers=headers, timeout=30)
        async with client_a, client_b, client_a.stream("GET", "/events", params={"charger": "CPB"}) as stream:
            assert stream.status_code == 200
            events = sse_events(stream)
            async with Online16(None, "CPB", url=b.ocpp_url) as cp:  # type: ignore[arg-type]
                await cp.status(1, "Available")

                async def online_on_a():
                    r = await client_a.get("/chargers/CPB")
                    return r.json()["online"] and r.json()["node_id"] == "node-b" and r.json()

                state = await wait_for(online_on_a, 10)
                assert state["connectors"][0]["status"] == "Available"

                # node A's SSE client sees the status change of the charger on node B
                async def status_event():
                    async for ev in events:
                        if ev["event"] == "status":
                            return ev["data"]

                status = await asyncio.wait_for(status_event(), 10)
                assert status["charge_point_id"] == "CPB" and status["node_id"] == "node-b"

                # the command: API on A, charger on B
                r = await client_a.post("/chargers/CPB/commands/reset", json={"type": "hard"})
                assert r.status_code == 200, r.text
                assert r.json()["response"] == {"status": "Accepted"} and r.json()["node_id"] == "node-b"
                assert cp.received[-1] == ("Reset", {"type": "Hard"})
                row = await pool.fetchrow("SELECT * FROM command_log WHERE id=$1", r.json()["command_id"])
                assert row["api_node_id"] == "node-a" and row["charger_node_id"] == "node-b"
                assert row["outcome"] == "answered" and row["token_name"] == "multi-node-operator"

                # larger than a NOTIFY payload: goes through the routing_messages table
                entries = [{"id_tag": f"TAG{i:05d}", "status": "Accepted"} for i in range(400)]
                r = await client_a.post("/chargers/CPB/commands/send-local-list",
                                        json={"list_version": 7, "entries": entries})
                assert r.status_code == 200, r.text
                assert len(cp.received[-1][1]["local_authorization_list"]) == 400
                assert await pool.fetchval("SELECT count(*) FROM routing_messages") == 0

                # commands from both nodes at once are queued at the charger's node, none fails
                results = await asyncio.gather(
                    *(client_a.post("/chargers/CPB/commands/change-configuration",
                                    json={"key": f"A{i}", "value": "1"}) for i in range(4)),
                    *(client_b.post("/chargers/CPB/commands/change-configuration",
                                    json={"key": f"B{i}", "value": "1"}) for i in range(4)))
                assert [r.status_code for r in results] == [200] * 8
                assert {k for k in cp.configuration if k[0] in "AB"} == {f"{n}{i}" for n in "AB" for i in range(4)}

                # offline chargers answer 409 from either node
                r = await client_a.post("/chargers/CPX/commands/reset", json={"type": "soft"})
                assert r.status_code == 409

                # node B dies: nothing is released by hand, the lease expires
                assert await b.stop(signal.SIGKILL) == -signal.SIGKILL

                async def offline_on_a():
                    r = await client_a.get("/chargers/CPB")
                    return not r.json()["online"] and r.json()

                state = await wait_for(offline_on_a, 15, interval=0.25)
                assert state["node_id"] is None
                r = await client_a.post("/chargers/CPB/commands/reset", json={"type": "soft"})
                assert r.status_code == 409 and r.json()["error"]["code"] == "charger_offline"
        outcomes = await pool.fetch("SELECT outcome, api_node_id, count(*) FROM command_log GROUP BY 1, 2 ORDER BY 1, 2")
        assert [tuple(r) for r in outcomes] == [("answered", "node-a", 6), ("answered", "node-b", 4),
                                                ("offline", "node-a", 2)]
    finally:
        code_a = await a.stop()
        await b.stop(signal.SIGKILL)
        await pool.close()
    assert code_a == 0


async def test_a_node_that_stops_answering_is_treated_as_offline(db_url: str):
    """A lease still valid but its node gone: no acknowledgement → 409, quickly, and recorded."""
    from .api_helpers import start_api_env, stop_api_env

    env = await start_api_env(db_url)
    try:
        env.app.router.ack_timeout = 0.5
        await env.register("GHOST")
        await env.pool.execute("UPDATE charge_points SET node_id='dead-node', ocpp_version='1.6', "
                               "lease_expires_at=now() + interval '1 minute' WHERE id='GHOST'")
        assert node_channel("dead-node") != env.app.router.channel
        r = await env.command("GHOST", "reset", {"type": "soft"})
        assert r.status_code == 409, r.text
        assert "dead-node" in r.json()["error"]["message"]
        row = await env.pool.fetchrow("SELECT * FROM command_log")
        assert row["outcome"] == "offline" and row["charger_node_id"] == "dead-node"
    finally:
        await stop_api_env(env)
