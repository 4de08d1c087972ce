"""Shared fixtures: real PostgreSQL databases and a real CSMS on real sockets.

The server used is ``CSMS_TEST_DATABASE_URL`` if set, else PostgreSQL at
127.0.0.1:5432 (user postgres) if it answers, else the embedded server. A
template database is migrated once per run; every test that asks for a
database gets a fresh copy of it, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from csms import db
from csms.app import CsmsApp
from csms.config import Settings


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server (its maintenance database) that tests may create databases on."""
    url = os.environ.get("CSMS_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _answers("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    from csms.embedded_pg import EmbeddedPostgres

    data = Path(tempfile.mkdtemp(prefix="csms-test-pg-", dir="/tmp"))
    data.chmod(0o755)
    server = EmbeddedPostgres(data / "pg")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def template_db(pg_server_url: str) -> AsyncIterator[str]:
    name = f"csms_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await db.upgrade(_with_db(pg_server_url, name))
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, template: str | None = None, prefix: str = "csms_t_"
                         ) -> AsyncIterator[str]:
    """A database of its own (a copy of *template*, else empty), dropped afterwards; yields its URL."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        yield _with_db(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def db_url(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, fully migrated database of its own for one test."""
    async with fresh_database(pg_server_url, template_db) as url:
        yield url


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(db_url)
    try:
        yield c
    finally:
        await c.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningCsms:
    app: CsmsApp
    db_url: str

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.app.gateway.ports[0]}/ocpp"

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app.pool

    async def register(self, cp_id: str, password: str | None = None, profile: int | None = None) -> None:
        from csms.passwords import hash_password

        await self.pool.execute(
            "INSERT INTO charge_points (id, password_hash, security_profile) VALUES ($1,$2,$3)",
            cp_id, hash_password(password) if password else None,
            profile if profile is not None else (1 if password else 0))

    async def add_tag(self, tag: str, status: str = "Accepted", expiry=None) -> None:
        await self.pool.execute("INSERT INTO id_tags (id_tag, status, expiry_date) VALUES ($1,$2,$3)",
                                tag, status, expiry)


def make_settings(**overrides) -> Settings:
    base = dict(ocpp_host="127.0.0.1", ocpp_port=0, api_port=0, heartbeat_interval=60, lease_seconds=30,
                node_id=f"test-{uuid.uuid4().hex[:6]}", db_pool_size=5,
                maintenance_interval=0)  # no retention runs under a test's data (tests opt in)
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
async def csms(db_url: str) -> AsyncIterator[RunningCsms]:
    """A CSMS serving OCPP on a free port of 127.0.0.1, on its own database."""
    app = CsmsApp(make_settings(), db_url)
    await app.start()
    try:
        yield RunningCsms(app, db_url)
    finally:
        await app.stop()


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    """Poll an async or sync predicate until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


class RawClient:
    """A bare OCPP-J client, for sending what a well-behaved charger library never would."""

    timeout = 5.0

    def __init__(self, ws):
        self.ws = ws
        self.n = 0

    async def call(self, action: str, payload: dict) -> list:
        """Send a CALL; return the reply frame (CALLRESULT or CALLERROR)."""
        self.n += 1
        return await self.send_raw(json.dumps([2, f"m{self.n}", action, payload]))

    async def ok(self, action: str, payload: dict) -> dict:
        """Send a CALL that must succeed; return the CALLRESULT payload."""
        reply = await RawClient.call(self, action, payload)
        assert reply[0] == 3, reply
        return reply[2]

    async def send_raw(self, text: str) -> list:
        await self.ws.send(text)
        return json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout))
