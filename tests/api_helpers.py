"""Shared pieces of the HTTP API tests: a running CSMS with tokens for every role, and charger helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from csms.api.auth import create_token
from csms.app import CsmsApp
from csms.simulator import Charger16, connect

from .conftest import make_settings


@dataclass
class ApiEnv:
    app: CsmsApp
    db_url: str
    client: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def pool(self):
        return self.app.pool

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.app.gateway.ports[0]}/ocpp"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.app.api_port}"

    def auth(self, role: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def get(self, path: str, role: str = "operator", **kw) -> httpx.Response:
        return await self.client.get("/api/v1" + path, headers=self.auth(role), **kw)

    async def post(self, path: str, json: Any = None, role: str = "operator", **kw) -> httpx.Response:
        return await self.client.post("/api/v1" + path, json=json, headers=self.auth(role), **kw)

    async def patch(self, path: str, json: Any = None, role: str = "operator", **kw) -> httpx.Response:
        return await self.client.patch("/api/v1" + path, json=json, headers=self.auth(role), **kw)

    async def delete(self, path: str, role: str = "operator", **kw) -> httpx.Response:
        return await self.client.delete("/api/v1" + path, headers=self.auth(role), **kw)

    async def register(self, cp_id: str, **body: Any) -> dict[str, Any]:
        r = await self.post("/chargers", {"id": cp_id, **body})
        assert r.status_code == 201, r.text
        return r.json()

    async def command(self, cp_id: str, name: str, body: Any = None, **kw) -> httpx.Response:
        return await self.post(f"/chargers/{cp_id}/commands/{name}", body, **kw)

    async def counts(self) -> dict[str, int]:
        """Row counts of every table the API writes, to check that a refused request stored nothing."""
        out = {}
        for table in ("charge_points", "id_tags", "api_tokens", "command_log"):
            out[table] = await self.pool.fetchval(f"SELECT count(*) FROM {table}")
        return out


async def start_api_env(db_url: str, **settings: Any) -> ApiEnv:
    base = dict(api_host="127.0.0.1", command_timeout=5, event_queue_size=100)
    base.update(settings)
    app = CsmsApp(make_settings(**base), db_url)
    await app.start()
    env = ApiEnv(app, db_url, httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}", timeout=30))
    for role in ("admin", "operator", "bureau"):
        _, token = await create_token(app.pool, f"test-{role}", role)
        env.tokens[role] = token
    return env


async def stop_api_env(env: ApiEnv) -> None:
    await env.client.aclose()
    await env.app.stop()


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[ApiEnv]:
    """A CSMS with its HTTP API on free ports of 127.0.0.1, and an admin, operator and bureau token."""
    env = await start_api_env(db_url)
    try:
        yield env
    finally:
        await stop_api_env(env)


class Online16:
    """``async with Online16(env, "CP1") as cp:`` — a connected, booted 1.6 charger answering commands."""

    def __init__(self, env: ApiEnv, cp_id: str, boot: bool = True, url: str | None = None):
        self.env, self.cp_id, self.boot, self.url = env, cp_id, boot, url

    async def __aenter__(self) -> Charger16:
        self.ws = await connect(self.url or self.env.ocpp_url, self.cp_id, "1.6")
        self.cp = Charger16(self.cp_id, self.ws)
        self.task = asyncio.create_task(self.cp.start())
        if self.boot:
            await self.cp.boot()
        return self.cp

    async def __aexit__(self, *exc: Any) -> None:
        self.task.cancel()
        await self.ws.close()


class RawCharger:
    """A bare OCPP-J 1.6 client whose answers to CSMS calls the test controls."""

    def __init__(self, ws):
        self.ws = ws
        self.calls: asyncio.Queue[list] = asyncio.Queue()
        self.results: dict[str, asyncio.Future] = {}
        self.n = 0
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if frame[0] == 2:
                await self.calls.put(frame)
            else:
                fut = self.results.pop(frame[1], None)
                if fut is not None and not fut.done():
                    fut.set_result(frame)

    async def call(self, action: str, payload: dict) -> list:
        self.n += 1
        uid = f"c{self.n}"
        fut = asyncio.get_running_loop().create_future()
        self.results[uid] = fut
        await self.ws.send(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(fut, 5)

    async def answer(self, frame: list, payload: dict) -> None:
        await self.ws.send(json.dumps([3, frame[1], payload]))

    async def error(self, frame: list, code: str, description: str = "") -> None:
        await self.ws.send(json.dumps([4, frame[1], code, description, {}]))

    async def close(self) -> None:
        self._task.cancel()
        await self.ws.close()


async def raw_charger(env: ApiEnv, cp_id: str, version: str = "1.6") -> RawCharger:
    return RawCharger(await connect(env.ocpp_url, cp_id, version))


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse a text/event-stream response into ``{"event": kind, "data": {...}}`` records."""
    kind, data = None, []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield {"event": kind, "data": json.loads("\n".join(data))}
            kind, data = None, []
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
