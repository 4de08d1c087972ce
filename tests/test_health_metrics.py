"""/healthz, /readyz and /metrics on a real node: real chargers, real PostgreSQL, a real database outage."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from csms.app import CsmsApp
from csms.gateway import CommandTimeout
from csms.simulator import connect

from .conftest import RawClient as Raw
from .conftest import make_settings, wait_for


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}``."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict:
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


async def test_metrics_scraped_and_parsed(csms):
    await csms.register("MET-1")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{csms.app.api_port}", timeout=10) as client:
        before = await scrape(client)
        assert value(before, "csms_connected_chargers", version="1.6") == 0
        ws = await connect(csms.ocpp_url, "MET-1")
        raw = Raw(ws)
        try:
            boot = await raw.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
            assert boot[0] == 3
            bad = await raw.call("Heartbeat", {"unexpected": 1})
            assert bad[0] == 4
            unknown = await raw.call("MakeCoffee", {})
            assert unknown[0] == 4 and unknown[2] == "NotImplemented"
            await ws.send("not json")
            frame_error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert frame_error[0] == 4

            # a command the charger answers, and one it does not
            async def answer_one():
                msg = json.loads(await ws.recv())
                await ws.send(json.dumps([3, msg[1], {"status": "Accepted"}]))

            answering = asyncio.create_task(answer_one())
            await csms.app.gateway.call("MET-1", "ChangeAvailability", {"connectorId": 0, "type": "Operative"})
            await answering
            with pytest.raises(CommandTimeout):
                await csms.app.gateway.call("MET-1", "ClearCache", {}, timeout=0.2)
            await ws.recv()  # the unanswered ClearCache

            after = await scrape(client)
        finally:
            await ws.close()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "csms_connected_chargers", version="1.6") == 1
    assert value(after, "csms_connected_chargers", version="2.0.1") == 0
    assert delta("csms_ocpp_messages_total", version="1.6", action="BootNotification", result="CallResult") == 1
    assert delta("csms_ocpp_messages_total", version="1.6", action="Heartbeat", result="FormationViolation") == 1
    # an action without a schema is not a label value of its own
    assert delta("csms_ocpp_messages_total", version="1.6", action="other", result="NotImplemented") == 1
    assert delta("csms_ocpp_callerrors_sent_total", version="1.6", code="NotImplemented") == 1
    assert sum(v for (n, labels), v in after.items() if n == "csms_ocpp_callerrors_sent_total") - sum(
        v for (n, labels), v in before.items() if n == "csms_ocpp_callerrors_sent_total") == 3
    assert delta("csms_group_commit_batch_size_count") >= 1
    assert delta("csms_group_commit_seconds_count") >= 1
    assert delta("csms_command_seconds_count", action="ChangeAvailability", outcome="answered") == 1
    assert delta("csms_command_seconds_count", action="ClearCache", outcome="timeout") == 1
    assert delta("csms_command_timeouts_total", action="ClearCache") == 1
    assert value(after, "csms_db_pool_max_connections") == 5
    assert value(after, "csms_db_pool_connections", state="idle") + value(
        after, "csms_db_pool_connections", state="in_use") >= 1
    assert ("csms_group_commit_queue", ()) in after
    assert value(after, "csms_outbox_scrape_ok") == 1
    assert value(after, "csms_ready") == 1


async def test_outbox_backlog_per_platform(csms):
    await csms.pool.execute(
        """CREATE TABLE zz_test_outbox (id serial, platform text, created_at timestamptz, delivered_at timestamptz);
           INSERT INTO zz_test_outbox (platform, created_at, delivered_at) VALUES
             ('province', now() - interval '120 seconds', NULL),
             ('province', now() - interval '30 seconds', NULL),
             ('province', now() - interval '1 hour', now()),
             ('city', now() - interval '5 seconds', NULL)""")
    # the T/CEC 102 outbox (platforms disabled, so that nothing tries to deliver)
    await csms.pool.execute(
        """INSERT INTO tcec_platforms (id, name, operator_id, our_operator_id, base_url, interfaces, secrets, enabled)
           VALUES (71, 'shanxi', 'SX0000001', 'MA0000001', 'http://127.0.0.1:9/', '{}', '\\x00', false),
                  (72, 'idle', 'ID0000001', 'MA0000001', 'http://127.0.0.1:9/', '{}', '\\x00', false);
           INSERT INTO tcec_outbox (platform_id, interface, order_key, seq, payload, state, created_at) VALUES
             (71, 'notification_stationStatus', 'k', 1, '{}', 'delivered', now() - interval '2 hours'),
             (71, 'notification_stationStatus', 'k', 2, '{}', 'pending', now() - interval '600 seconds'),
             (71, 'notification_stationStatus', 'k', 3, '{}', 'pending', now())""")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{csms.app.api_port}", timeout=10) as client:
        samples = await scrape(client)
    assert value(samples, "csms_outbox_backlog", platform="shanxi") == 2
    assert 599 <= value(samples, "csms_outbox_oldest_age_seconds", platform="shanxi") < 700
    assert ("csms_outbox_backlog", (("platform", "idle"),)) in samples  # 0, but reported
    assert value(samples, "csms_outbox_backlog", platform="province") == 2
    assert value(samples, "csms_outbox_backlog", platform="city") == 1
    assert 119 <= value(samples, "csms_outbox_oldest_age_seconds", platform="province") < 200
    assert value(samples, "csms_outbox_scrape_ok") == 1


async def test_healthz_and_readyz(csms):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{csms.app.api_port}", timeout=10) as client:
        r = await client.get("/healthz")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["gateway"]["ok"] and r.json()["checks"]["database"]["ok"]
        # a migration missing from the database: not ready, and the reason says which
        last = await csms.pool.fetchval("SELECT max(version) FROM schema_migrations")
        await csms.pool.execute("DELETE FROM schema_migrations WHERE version=$1", last)
        r = await client.get("/readyz")
        assert r.status_code == 503 and last in r.json()["checks"]["database"]["error"]
        await csms.pool.execute("INSERT INTO schema_migrations (version) VALUES ($1)", last)
        assert (await client.get("/readyz")).status_code == 200


async def test_health_served_without_the_api(db_url):
    app = CsmsApp(make_settings(api_enabled=False), db_url)
    await app.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}", timeout=10) as client:
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/api/v1/health")).status_code == 404
            assert "csms_connected_chargers" in (await client.get("/metrics")).text
    finally:
        await app.stop()


@pytest.mark.slow
async def test_readyz_follows_the_database_down_and_back():
    """A real PostgreSQL of its own (the embedded one) is stopped and started under a running node."""
    from csms.embedded_pg import EmbeddedPostgres, ensure_database

    data = Path(tempfile.mkdtemp(prefix="csms-readyz-", dir="/tmp"))
    data.chmod(0o755)
    server = EmbeddedPostgres(data / "pg")
    loop = asyncio.get_running_loop()
    url = ensure_database(await loop.run_in_executor(None, server.start), "csms")
    app = CsmsApp(make_settings(lease_seconds=6), url)
    try:
        await app.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}", timeout=10) as client:
            async def status() -> int:
                return (await client.get("/readyz")).status_code

            assert await status() == 200
            await loop.run_in_executor(None, server.stop)
            await wait_for(lambda: _is(status(), 503), timeout=10)
            body = (await client.get("/readyz")).json()
            assert not body["checks"]["database"]["ok"] and body["checks"]["gateway"]["ok"]
            assert (await client.get("/healthz")).status_code == 200  # alive all the same
            metrics = (await client.get("/metrics"))
            assert metrics.status_code == 200 and "csms_outbox_scrape_ok 0.0" in metrics.text
            await loop.run_in_executor(None, server.start)
            await wait_for(lambda: _is(status(), 200), timeout=15)
    finally:
        await app.stop()
        await loop.run_in_executor(None, server.stop)


async def _is(awaitable, expected) -> bool:
    return await awaitable == expected


async def test_graceful_stop_closes_chargers_with_1001_and_releases_leases(db_url, conn):
    app = CsmsApp(make_settings(), db_url)
    await app.start()
    try:
        await conn.execute("INSERT INTO charge_points (id, security_profile) VALUES ('BYE-1', 0)")
        ws = await connect(f"ws://127.0.0.1:{app.gateway.ports[0]}/ocpp", "BYE-1")
        await Raw(ws).call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        node = app.settings.node_id
        assert await conn.fetchval("SELECT node_id FROM charge_points WHERE id='BYE-1'") == node
    finally:
        await app.stop()
    assert app.stopping
    with pytest.raises(websockets.ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert await conn.fetchval("SELECT count(*) FROM charge_points WHERE node_id=$1", node) == 0
    assert await conn.fetchval("SELECT close_code FROM charger_connections WHERE charge_point_id='BYE-1'") == 1001


async def test_shutdown_deadline():
    """A stop that hangs is cut off at CSMS_SHUTDOWN_TIMEOUT and the process can exit."""
    import time

    from csms import lifecycle

    class Stuck:
        pool = None

        async def stop(self):
            await asyncio.sleep(3600)

    started = time.monotonic()
    assert await lifecycle.stop_within(Stuck(), 0.2) is False
    assert time.monotonic() - started < 2
