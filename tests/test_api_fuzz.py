"""Fuzz the HTTP API from its own OpenAPI document (schemathesis + hypothesis), against the real server.

Every operation gets valid (positive) and invalid (negative) requests. No
response may be a 5xx (a 502/504 only as a charger's documented answer), every
response must conform to the documented status codes and schemas, and a
refused request must not have stored anything. Commands are sent to a live
1.6 simulated charger, so valid ones really reach it. Examples are bounded and
derandomised to keep CI fast and repeatable.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

import requests  # noqa: E402 - schemathesis brings it
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)
from schemathesis.generation import GenerationMode  # noqa: E402

from csms.api import (  # noqa: E402
    chargers, commands, events, faults, idtags, profiles, reservations, sessions, tokens,
)
from csms.api.auth import create_token  # noqa: E402

from .api_helpers import ApiEnv, Online16, start_api_env, stop_api_env  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 12        # per operation and generation mode, for csms.api's own operations
MAX_EXAMPLES_OTHER = 4   # operations other packages mount on the same app (their own tests go deeper)
MUTATING = {"POST", "PATCH", "PUT", "DELETE"}
#: The operations of csms.api itself (method, path).
OWN_OPERATIONS = {("GET", "/api/v1/health")} | {
    (method, "/api/v1" + route.path)
    for module in (chargers, sessions, faults, idtags, commands, tokens, events, reservations, profiles)
    for route in module.router.routes for method in route.methods}


def run_fuzz(spec: dict, base_url: str, token: str, snapshot, charger_id: str) -> tuple[list[str], dict[str, int]]:
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    stats: dict[str, int] = {}
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]

    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith("/events"):  # an endless stream: tested in test_api_events
            continue
        is_command = "/commands/" in op.path
        # documented statuses and schemas are checked for this package's operations; every operation
        # (other packages mount theirs on the same app) must avoid 5xx and partial writes
        conformance = (op.method.upper(), op.path) in OWN_OPERATIONS
        variants: list[dict[str, Any]] = [{"generation_mode": GenerationMode.POSITIVE},
                                          {"generation_mode": GenerationMode.NEGATIVE}]
        if is_command:  # valid commands to the live charger
            variants.append({"generation_mode": GenerationMode.POSITIVE, "path_parameters": {"cp_id": charger_id}})
        for variant in variants:
            try:
                strategy = op.as_strategy(**variant)
            except Exception as exc:  # noqa: BLE001 - e.g. nothing negative to generate
                stats[f"no strategy: {type(exc).__name__}"] = stats.get(f"no strategy: {type(exc).__name__}", 0) + 1
                continue

            @given(case=strategy)
            @settings(max_examples=MAX_EXAMPLES if conformance else MAX_EXAMPLES_OTHER, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def check(case) -> None:
                mutating = case.method.upper() in MUTATING
                before = snapshot() if mutating else None
                try:
                    response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
                except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, UnicodeError,
                        ValueError):
                    stats["unsendable"] = stats.get("unsendable", 0) + 1
                    return
                code = response.status_code
                stats[str(code)] = stats.get(str(code), 0) + 1
                label = f"{case.method} {case.formatted_path} -> {code}"
                if case.query:
                    label += f" query={case.query!r:.300}"
                if code >= 500 and not (is_command and code in (502, 504)):
                    failures.append(f"{label}: {response.text[:300]} body={case.body!r:.300}")
                if conformance:
                    try:
                        case.validate_response(response, checks=checks)
                    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported together
                        failures.append(f"{label}: {str(exc)[:400]}")
                if mutating and code >= 400:
                    after = snapshot()
                    if is_command and code in (409, 502, 504):  # commands that were tried are recorded
                        before.pop("command_log"), after.pop("command_log")
                    if after != before:
                        failures.append(f"{label}: refused but stored something {before} -> {after} "
                                        f"body={case.body!r:.300}")

            try:
                check()
            except Unsatisfiable:  # e.g. no invalid request exists for an operation without inputs
                stats["unsatisfiable"] = stats.get("unsatisfiable", 0) + 1
    return failures, stats


async def test_fuzz_the_api_from_its_openapi_schema(db_url: str):
    env: ApiEnv = await start_api_env(db_url, command_timeout=5)
    loop = asyncio.get_running_loop()
    try:
        # a token whose id random path parameters will not hit (DELETE /tokens/{id} is fuzzed too)
        await env.pool.execute("SELECT setval('api_tokens_id_seq', 1000000000000)")
        _, token = await create_token(env.pool, "fuzzer", "admin")
        await env.register("FUZZ16")
        await env.register("OFFLINE1")
        spec = (await env.client.get("/openapi.json")).json()

        # row counts of every table (partitions counted through their parent), in one query
        tables = await env.pool.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               ORDER BY 1""")
        count_sql = " UNION ALL ".join(f"SELECT '{t['relname']}', count(*) FROM \"{t['relname']}\""
                                       for t in tables)

        async def counts() -> dict[str, int]:
            return {r[0]: r[1] for r in await env.pool.fetch(count_sql)}

        def snapshot() -> dict[str, int]:
            return asyncio.run_coroutine_threadsafe(counts(), loop).result(30)

        started = time.monotonic()
        async with Online16(env, "FUZZ16") as cp:
            failures, stats = await asyncio.to_thread(run_fuzz, spec, env.base_url, token, snapshot, "FUZZ16")
            assert cp.received, "no valid command reached the charger"
        took = time.monotonic() - started
        print(f"fuzz: {sum(v for k, v in stats.items() if k.isdigit())} requests in {took:.1f} s: {stats}")
        assert not failures, "\n".join(failures[:30])
        assert (await env.client.get("/api/v1/health")).status_code == 200
        assert await env.pool.fetchval("SELECT count(*) FROM command_log WHERE outcome='answered'") > 0
        assert await env.pool.fetchval("SELECT count(*) FROM command_log WHERE outcome='pending'") == 0
    finally:
        await stop_api_env(env)


async def test_every_operation_requires_a_token(api_spec_env):
    env, spec = api_spec_env
    open_paths = {"/api/v1/health"}
    for path, methods in spec["paths"].items():
        if not path.startswith("/api/v1/"):  # e.g. T/CEC 102 interfaces with their own authentication
            continue
        for method in methods:
            url = path.replace("{cp_id}", "CP1").replace("{session_id}", "1").replace("{fault_id}", "1") \
                .replace("{id_tag}", "T1").replace("{token_id}", "1").replace("{command_id}", "1") \
                .replace("{reservation_id}", "1").replace("{profile_id}", "1")
            r = await env.client.request(method.upper(), url, json={})
            if path in open_paths:
                assert r.status_code == 200
            else:
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.json()["error"]["code"] == "unauthorized"


@pytest.fixture
async def api_spec_env(db_url: str):
    env = await start_api_env(db_url)
    try:
        yield env, (await env.client.get("/openapi.json")).json()
    finally:
        await stop_api_env(env)
