"""Bearer tokens and roles: 401/403 with JSON bodies, token lifecycle over the API and the CLI, no token in logs."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys

from .api_helpers import ApiEnv, api  # noqa: F401 - fixture


async def test_no_or_bad_token_is_401_with_json(api: ApiEnv):
    c = api.client
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Bearer csms_not-a-real-token"}, {"Authorization": "Bearer " + "x" * 5000}):
        r = await c.get("/api/v1/chargers", headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "unauthorized" and r.json()["error"]["message"]
        assert r.headers["www-authenticate"].startswith("Bearer")
    # authentication comes before the body is even looked at
    r = await c.post("/api/v1/chargers", content=b"{broken")
    assert r.status_code == 401
    r = await c.post("/api/v1/chargers/X/commands/reset", json={"type": "nonsense"})
    assert r.status_code == 401
    # health and the OpenAPI document need no token
    assert (await c.get("/api/v1/health")).json()["status"] == "ok"
    spec = (await c.get("/openapi.json")).json()
    assert "/api/v1/chargers/{cp_id}/commands/reset" in spec["paths"]
    assert (await c.get("/docs")).status_code == 200


async def test_roles(api: ApiEnv):
    async def status(method: str, path: str, role: str, body=None) -> int:
        return (await api.client.request(method, "/api/v1" + path, json=body, headers=api.auth(role))).status_code

    # operator: chargers, sessions, faults, id tags, commands — not tokens
    for path in ("/chargers", "/sessions", "/faults", "/id-tags", "/commands", "/connectors", "/status-history"):
        assert await status("GET", path, "operator") == 200, path
        assert await status("GET", path, "admin") == 200, path
        assert await status("GET", path, "bureau") == 403, path
    assert await status("GET", "/tokens", "operator") == 403
    assert await status("POST", "/tokens", "operator", {"name": "x", "role": "admin"}) == 403
    assert await status("POST", "/id-tags", "bureau", {"id_tag": "T"}) == 403
    r = await api.get("/chargers", role="bureau")
    assert r.json()["error"] == {"code": "forbidden", "message": r.json()["error"]["message"]}
    assert "bureau" in r.json()["error"]["message"]
    for role in ("admin", "operator", "bureau"):
        me = (await api.get("/me", role=role)).json()
        assert me["role"] == role and me["name"] == f"test-{role}"
    assert await api.pool.fetchval("SELECT count(*) FROM id_tags") == 0


async def test_token_lifecycle_over_the_api(api: ApiEnv):
    r = await api.post("/tokens", {"name": "alice", "role": "operator"}, role="admin")
    assert r.status_code == 201, r.text
    new = r.json()
    token = new["token"]
    assert token.startswith("csms_") and new["prefix"] == token[:11] and new["created_by"] == "test-admin"
    # stored hashed: neither the token nor anything containing it is in the table
    stored = await api.pool.fetch("SELECT * FROM api_tokens")
    assert token not in repr([dict(r) for r in stored])
    # usable, then listed without the token, then revoked → 401
    r = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["name"] == "alice"
    listed = (await api.get("/tokens", role="admin")).json()
    assert listed["total"] == 4 and all("token" not in t for t in listed["items"])
    alice = next(t for t in listed["items"] if t["name"] == "alice")
    assert alice["last_used_at"] is not None
    assert (await api.post("/tokens", {"name": "alice", "role": "admin"}, role="admin")).status_code == 409
    assert (await api.delete(f"/tokens/{new['id']}", role="admin")).status_code == 204
    assert (await api.delete(f"/tokens/{new['id']}", role="admin")).status_code == 404
    r = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    listed = (await api.get("/tokens", role="admin", params={"include_revoked": "true"})).json()
    assert any(t["name"] == "alice" and t["revoked_at"] for t in listed["items"])
    # invalid requests change nothing
    before = await api.counts()
    for body in ({"name": "", "role": "admin"}, {"name": "x", "role": "root"}, {"name": "x"},
                 {"name": "x\n", "role": "admin"}, {"name": "x", "role": "admin", "token": "mine"}):
        assert (await api.post("/tokens", body, role="admin")).status_code == 422, body
    assert await api.counts() == before


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CSMS_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "csms.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


async def test_cli_tokens_create_list_revoke(api: ApiEnv):
    out = await asyncio.to_thread(_cli, api.db_url, "tokens", "create", "--role", "operator", "--name", "ops-bot")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("csms_")
    r = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.json() == {"token_id": r.json()["token_id"], "name": "ops-bot", "role": "operator"}
    listed = await asyncio.to_thread(_cli, api.db_url, "tokens", "list")
    assert "ops-bot" in listed.stdout and token not in listed.stdout and token[:11] in listed.stdout
    bad = await asyncio.to_thread(_cli, api.db_url, "tokens", "create", "--role", "root", "--name", "x")
    assert bad.returncode == 2 and "role" in bad.stderr
    dup = await asyncio.to_thread(_cli, api.db_url, "tokens", "create", "--role", "admin", "--name", "ops-bot")
    assert dup.returncode == 1 and "exists" in dup.stderr
    revoked = await asyncio.to_thread(_cli, api.db_url, "tokens", "revoke", "ops-bot")
    assert revoked.returncode == 0, revoked.stderr
    r = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    again = await asyncio.to_thread(_cli, api.db_url, "tokens", "revoke", "ops-bot")
    assert again.returncode == 1


async def test_tokens_are_never_logged(api: ApiEnv, caplog):
    caplog.set_level(logging.DEBUG)
    await api.get("/chargers")
    await api.post("/chargers", {"id": "CP1"}, role="operator")
    await api.client.get("/api/v1/chargers", headers={"Authorization": "Bearer csms_wrong-token-value"})
    await api.client.get("/api/v1/chargers?access_token=" + api.tokens["admin"])
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # not the client
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server_side)
    assert "csms.api.access" in {r.name for r in caplog.records}
    for token in (*api.tokens.values(), "csms_wrong-token-value"):
        assert token not in text
    access = [r for r in caplog.records if r.name == "csms.api.access"]
    assert any(getattr(r, "token_name", None) == "test-operator" for r in access)
