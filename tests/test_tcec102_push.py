"""Pushing to a supervision platform (we are the client): the durable outbox end to end.

The platform is :mod:`tests.tcec_platform` on a real socket. Long outages are simulated with a
short retry cap (``tcec_retry_cap``): the outbox mechanism does not depend on how long the
platform is away (see :mod:`csms.tcec102.sender`), only the backoff delays do.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from ocpp.v16 import call

from csms import store
from csms.app import CsmsApp
from csms.events import StatusReport
from csms.pricing import add_tariff_version, assign_tariff, on_session_stopped
from csms.secretbox import secret_box
from csms.simulator import Charger16, connect
from csms.tcec102.platforms import add_platform, platform_status

from .conftest import make_settings, wait_for
from .tcec_platform import CSMS_OPERATOR_ID, PLATFORM_OPERATOR_ID, SECRETS, TestPlatform

SECRET_KEY = "tcec-test-secret-key"
FAST = dict(secret_key=SECRET_KEY, tcec_retry_base=0.05, tcec_retry_cap=0.3, tcec_reconcile_interval=0.3)
CST = timezone(timedelta(hours=8))


async def register_platform(pool, settings, platform: TestPlatform, interfaces=None, name="shanxi"):
    async with pool.acquire() as conn:
        await add_platform(conn, secret_box(settings), name=name, operator_id=PLATFORM_OPERATOR_ID,
                           our_operator_id=CSMS_OPERATOR_ID, base_url=platform.base_url, secrets=SECRETS,
                           interfaces=interfaces, service_tel="0353-12345")


@pytest.fixture
async def platform():
    p = await TestPlatform().start()
    try:
        yield p
    finally:
        await p.down()


async def start_csms(db_url, **overrides):
    app = CsmsApp(make_settings(**{**FAST, **overrides}), db_url)
    await app.start()
    return app


@pytest.fixture
async def app(db_url):
    app = await start_csms(db_url, api_enabled=False)
    try:
        yield app
    finally:
        await app.stop()


async def status(app, cp_id, connector, ocpp_status, at):
    return await app.committer.run(
        lambda c: store.record_status(c, cp_id, StatusReport(connector, ocpp_status, at), at))


async def online_charger(pool, cp_id):
    await pool.execute(
        """INSERT INTO charge_points (id, security_profile, lease_expires_at, node_id)
           VALUES ($1, 0, now() + interval '1 hour', 'elsewhere')""", cp_id)


async def backlog(pool):
    return await pool.fetchval("SELECT count(*) FROM tcec_outbox WHERE state='pending'")


# ------------------------------------------------------------------------------------------ status
async def test_status_change_reaches_platform_within_5s(app, platform):
    await register_platform(app.pool, app.settings, platform)
    await app.pool.execute("INSERT INTO charge_points (id, security_profile) VALUES ('CP1', 0)")
    ws = await connect(f"ws://127.0.0.1:{app.gateway.ports[0]}/ocpp", "CP1", "1.6")
    cp = Charger16("CP1", ws)
    task = asyncio.create_task(cp.start())
    try:
        await cp.call(call.BootNotification(charge_point_vendor="V", charge_point_model="M"))
        started = asyncio.get_running_loop().time()
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        got = await wait_for(lambda: [r for r in platform.of("notification_stationStatus")
                                      if r.payload["ConnectorStatusInfo"] == {"ConnectorID": "CP1_1", "Status": 1}],
                             timeout=5)
        assert asyncio.get_running_loop().time() - started < 5
        assert got[0].operator_id == CSMS_OPERATOR_ID
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        await wait_for(lambda: any(r.payload["ConnectorStatusInfo"]["Status"] == 3
                                   for r in platform.of("notification_stationStatus")), timeout=5)
        # Preparing -> SuspendedEV are both "2": the platform only sees a change once.
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="SuspendedEV"))
        await wait_for(lambda: any(r.payload["ConnectorStatusInfo"]["Status"] == 2
                                   for r in platform.of("notification_stationStatus")), timeout=5)
    finally:
        task.cancel()
        await ws.close()
    # The charger went offline: status 0 ("离网") follows from the reconciler.
    await wait_for(lambda: platform.of("notification_stationStatus")[-1].payload["ConnectorStatusInfo"]["Status"] == 0,
                   timeout=5)
    statuses = [r.payload["ConnectorStatusInfo"]["Status"] for r in platform.of("notification_stationStatus")]
    assert statuses == [1, 3, 2, 0]
    assert platform.duplicates == [] and platform.token_requests == 1


async def test_demo_chargers_are_never_reported(app, platform):
    """Synthetic (demo) stations and the chargers on their piles stay out of every push."""
    await register_platform(app.pool, app.settings, platform)
    await app.pool.execute(
        """INSERT INTO stations (station_id, name, county, address, lon, lat, access, site_type, synthetic)
           VALUES ('DEMO-S1', '演示站', '140302', 'x', 113.58, 37.86, 'public', 'public_parking', true)""")
    await app.pool.execute(
        """INSERT INTO piles (pile_id, station_id, power_kw, current_type, connector_count, commissioned_on,
                              charge_point_id, synthetic)
           VALUES ('DEMO-P1', 'DEMO-S1', 7, 'AC', 1, '2024-01-01', 'DEMO-CP1', true)""")
    await online_charger(app.pool, "DEMO-CP1")
    await online_charger(app.pool, "REAL1")
    now = datetime.now(timezone.utc)
    await status(app, "DEMO-CP1", 1, "Charging", now)
    await status(app, "REAL1", 1, "Charging", now)
    await wait_for(lambda: platform.of("notification_stationStatus"), timeout=10)
    await asyncio.sleep(1.0)  # several reconcile rounds
    pushed = {r.payload["ConnectorStatusInfo"]["ConnectorID"] for r in platform.of("notification_stationStatus")}
    assert pushed == {"REAL1_1"}
    assert platform.of("notification_stationInfo") == []


# ------------------------------------------------------------------------------------------ charge order
async def test_charge_order_priced_across_peak_valley_boundary(app, platform):
    await register_platform(app.pool, app.settings, platform)
    async with app.pool.acquire() as conn:
        await add_tariff_version(conn, "阳泉分时", date(2024, 1, 1), [
            ("00:00", "0.3100", "0.4000"), ("08:00", "0.6200", "0.6000"),
            ("18:00", "0.9300", "0.8000"), ("23:00", "0.3100", "0.4000")])
        await assign_tariff(conn, "阳泉分时", None, datetime(2024, 1, 1, tzinfo=CST))
    await app.pool.execute("INSERT INTO charge_points (id, security_profile) VALUES ('CP1', 0)")
    await app.pool.execute("INSERT INTO id_tags (id_tag) VALUES ('TAG')")
    ws = await connect(f"ws://127.0.0.1:{app.gateway.ports[0]}/ocpp", "CP1", "1.6")
    cp = Charger16("CP1", ws)
    task = asyncio.create_task(cp.start())
    try:
        # 22:30–23:30 Beijing time; the valley starts at 23:00.
        start = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG", meter_start=10000,
                                                    timestamp="2024-03-01T14:30:00Z"))
        tx = start.transaction_id
        seq = f"{CSMS_OPERATOR_ID}{int(tx):018d}"
        platform.dispute.add(seq)
        await cp.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
            {"timestamp": "2024-03-01T14:50:00Z", "sampledValue": [{"value": "16000"}]},
            {"timestamp": "2024-03-01T15:10:00Z", "sampledValue": [{"value": "22300"}]}]))
        await cp.call(call.StopTransaction(meter_stop=27345, timestamp="2024-03-01T15:30:00Z", transaction_id=tx,
                                           reason="EVDisconnected"))
    finally:
        task.cancel()
        await ws.close()
    orders = await wait_for(lambda: platform.of("notification_charge_order_info"), timeout=5)
    order = orders[0].payload
    # By hand: the register at 23:00 is interpolated between 22:50 (16000 Wh) and 23:10 (22300 Wh):
    # 19150 Wh. Peak part 9.150 kWh × 0.93 = 8.5095 → 8.51, × 0.80 = 7.32; valley part
    # 27.345 − 19.150 = 8.195 kWh × 0.31 = 2.54045 → 2.54, × 0.40 = 3.278 → 3.28.
    assert order["StartChargeSeq"] == seq and len(seq) == 27
    assert order["ConnectorID"] == "CP1_1"
    assert (order["StartTime"], order["EndTime"]) == ("2024-03-01 22:30:00", "2024-03-01 23:30:00")
    assert order["StopReason"] == 4 and order["SumPeriod"] == 2
    assert order["ChargeDetails"] == [
        {"DetailStartTime": "2024-03-01 22:30:00", "DetailEndTime": "2024-03-01 23:00:00", "ElecPrice": 0.93,
         "SevicePrice": 0.8, "DetailPower": 9.15, "DetailElecMoney": 8.51, "DetailSeviceMoney": 7.32},
        {"DetailStartTime": "2024-03-01 23:00:00", "DetailEndTime": "2024-03-01 23:30:00", "ElecPrice": 0.31,
         "SevicePrice": 0.4, "DetailPower": 8.195, "DetailElecMoney": 2.54, "DetailSeviceMoney": 3.28}]
    assert (order["TotalPower"], order["TotalElecMoney"], order["TotalSeviceMoney"], order["TotalMoney"]) == (
        17.345, 11.05, 10.6, 21.65)
    # Stored with the session, and the platform's dispute is flagged for the operator.
    cost = await app.pool.fetchrow("SELECT * FROM session_costs WHERE session_id=$1", int(tx))
    assert str(cost["total_money"]) == "21.65" and cost["error"] is None
    await wait_for(lambda: app.pool.fetchval(
        "SELECT confirm_result FROM tcec_charge_orders WHERE session_id=$1", int(tx)), timeout=5)
    (st,) = await platform_status(app.pool)
    assert st["disputed"] == 1 and st["backlog"] == 0


# ------------------------------------------------------------------------------------------ outage
async def test_platform_down_then_up_delivers_everything_in_order_once(app, platform):
    await register_platform(app.pool, app.settings, platform,
                            interfaces=["notification_stationStatus", "notification_charge_order_info"])
    await platform.down()
    for cp_id in ("CP-A", "CP-B"):
        await online_charger(app.pool, cp_id)
    cycle = ["Available", "Preparing", "Charging", "Finishing"]
    expected = defaultdict(list)
    t0 = datetime.now(timezone.utc)
    for i in range(12):
        for cp_id in ("CP-A", "CP-B"):
            for n in (1, 2):
                s = cycle[(i + n) % 4]
                await status(app, cp_id, n, s, t0 + timedelta(seconds=i))
                expected[f"{cp_id}_{n}"].append({"Available": 1, "Preparing": 2, "Charging": 3, "Finishing": 2}[s])
    # A session ends during the outage too.
    sid = await app.pool.fetchval(
        """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at, stopped_at,
               meter_start_wh, meter_stop_wh, energy_wh, stop_reason)
           VALUES ('CP-A', 'tx-1', '1.6', 1, now() - interval '1 hour', now(), 0, 5000, 5000, 'Local') RETURNING id""")
    await app.committer.run(lambda c: on_session_stopped(c, sid))
    total = await backlog(app.pool)
    assert total == 12 * 4 + 1
    # The outage goes on through many backoff rounds: nothing is lost, errors are visible.
    await asyncio.sleep(1.5)
    (st,) = await platform_status(app.pool)
    assert st["backlog"] == total and st["oldest_age_s"] >= 1 and "network" in st["last_error"]
    await platform.up()
    await wait_for(lambda: _zero(app.pool), timeout=15)
    got = defaultdict(list)
    for r in platform.of("notification_stationStatus"):
        info = r.payload["ConnectorStatusInfo"]
        got[info["ConnectorID"]].append(info["Status"])
    assert dict(got) == dict(expected)
    assert len(platform.of("notification_charge_order_info")) == 1
    assert platform.duplicates == []
    assert len(platform.received) == total
    # The charge order came after the connector's earlier statuses (one ordering key per connector).
    order_at = next(i for i, r in enumerate(platform.received) if r.interface == "notification_charge_order_info")
    last_status_at = max(i for i, r in enumerate(platform.received) if r.interface == "notification_stationStatus"
                         and r.payload["ConnectorStatusInfo"]["ConnectorID"] == "CP-A_1")
    assert order_at > last_status_at


async def _zero(pool) -> bool:
    return await backlog(pool) == 0


async def test_busy_500_and_expired_token_are_retried(app, platform):
    await register_platform(app.pool, app.settings, platform, interfaces=["notification_stationStatus"])
    await online_charger(app.pool, "CP1")
    t0 = datetime.now(timezone.utc)
    await status(app, "CP1", 1, "Available", t0)
    await wait_for(lambda: len(platform.received) == 1, timeout=5)
    platform.mode = "busy"
    await status(app, "CP1", 1, "Charging", t0 + timedelta(seconds=1))
    await asyncio.sleep(0.6)
    platform.mode = "error500"
    await status(app, "CP1", 1, "Finishing", t0 + timedelta(seconds=2))
    await asyncio.sleep(0.6)
    assert len(platform.received) == 1 and await backlog(app.pool) == 2
    attempts = await app.pool.fetchval("SELECT max(attempts) FROM tcec_outbox WHERE state='pending'")
    assert attempts >= 2
    platform.expire_tokens()
    platform.mode = "ok"
    await status(app, "CP1", 1, "Available", t0 + timedelta(seconds=3))
    await wait_for(lambda: _zero(app.pool), timeout=10)
    assert [r.payload["ConnectorStatusInfo"]["Status"] for r in platform.received] == [1, 3, 2, 1]
    assert platform.token_requests >= 2 and ("notification_stationStatus", 4002) in platform.refused
    assert platform.duplicates == []


async def test_rejection_flags_one_message_and_bad_signature_halts(app, platform):
    await register_platform(app.pool, app.settings, platform, interfaces=["notification_stationStatus"])
    await online_charger(app.pool, "CP1")
    t0 = datetime.now(timezone.utc)
    platform.mode = "reject"
    await status(app, "CP1", 1, "Available", t0)
    await wait_for(lambda: app.pool.fetchval("SELECT count(*) FROM tcec_outbox WHERE state='rejected'"), timeout=5)
    platform.mode = "ok"
    await status(app, "CP1", 1, "Charging", t0 + timedelta(seconds=1))
    await wait_for(lambda: len(platform.received) == 1, timeout=5)
    (st,) = await platform_status(app.pool)
    assert st["rejected"] == 1 and "rejected" in st["last_error"]
    # The platform's keys no longer match ours: Ret 4001 halts delivery, nothing is dropped.
    good = platform.secrets
    platform.secrets = type(good)(good.operator_secret, good.data_secret, good.data_secret_iv, "another-sig-key")
    platform.expire_tokens()
    await status(app, "CP1", 1, "Finishing", t0 + timedelta(seconds=2))
    await wait_for(lambda: app.pool.fetchval("SELECT halted_at IS NOT NULL FROM tcec_platforms"), timeout=5)
    (st,) = await platform_status(app.pool)
    assert st["state"] == "halted" and st["backlog"] == 1
    platform.secrets = good
    await app.pool.execute("UPDATE tcec_platforms SET halted_at = NULL")  # `csms platform resume`
    await wait_for(lambda: _zero(app.pool), timeout=5)
    assert [r.payload["ConnectorStatusInfo"]["Status"] for r in platform.received] == [3, 2]


async def test_station_info_and_charge_status_pushes(db_url, platform):
    app = await start_csms(db_url, api_enabled=False, tcec_charge_status_interval=0.5)
    try:
        await register_platform(app.pool, app.settings, platform,
                                interfaces=["notification_stationInfo", "notification_equip_charge_status"])
        await app.pool.execute(
            """INSERT INTO stations (station_id, name, county, address, lon, lat, access, site_type, parking_spaces)
               VALUES ('YQ0001', '阳泉站', '140302', '城区桃北西街1号', 113.58, 37.86, 'public', 'public_parking', 8)""")
        await app.pool.execute(
            """INSERT INTO piles (pile_id, station_id, power_kw, current_type, connector_count, commissioned_on,
                                  charge_point_id)
               VALUES ('YQ0001P01', 'YQ0001', 60, 'DC', 2, '2024-01-01', 'CP1')""")
        # Registry changes have no latency requirement (unlike status changes): allow for a loaded machine.
        first = await wait_for(lambda: platform.of("notification_stationInfo"), timeout=15)
        info = first[0].payload["StationInfo"]
        assert info["StationID"] == "YQ0001" and info["OperatorID"] == CSMS_OPERATOR_ID
        assert [c["ConnectorID"] for c in info["EquipmentInfos"][0]["ConnectorInfos"]] == ["YQ0001P01_1", "YQ0001P01_2"]
        await app.pool.execute("UPDATE stations SET name='阳泉桃北站' WHERE station_id='YQ0001'")
        await wait_for(lambda: len(platform.of("notification_stationInfo")) == 2, timeout=15)
        assert platform.of("notification_stationInfo")[1].payload["StationInfo"]["StationName"] == "阳泉桃北站"
        # A running session gets periodic charge-status pushes.
        await online_charger(app.pool, "CP1")
        await app.pool.execute(
            """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at,
                   meter_start_wh) VALUES ('CP1', 'tx', '1.6', 2, now() - interval '10 seconds', 1000)""")
        pushes = await wait_for(lambda: len(platform.of("notification_equip_charge_status")) >= 2 and
                                platform.of("notification_equip_charge_status"), timeout=15)
        assert pushes[0].payload["ConnectorID"] == "YQ0001P01_2" and pushes[0].payload["StartChargeSeqStat"] == 2
        assert len(platform.of("notification_stationInfo")) == 2
    finally:
        await app.stop()


# ------------------------------------------------------------------------------------------ SIGKILL
CSMS_BIN = str(Path(sys.executable).parent / "csms")


async def _serve(db_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env.update(CSMS_DATABASE_URL=db_url, CSMS_OCPP_PORT="0", CSMS_API_PORT="0", CSMS_OCPP_HOST="127.0.0.1",
               CSMS_API_HOST="127.0.0.1", CSMS_SECRET_KEY=SECRET_KEY, CSMS_TCEC_RETRY_BASE="0.05",
               CSMS_TCEC_RETRY_CAP="0.3", CSMS_TCEC_RECONCILE_INTERVAL="0.3", CSMS_DATA_DIR=str(tmp_path),
               CSMS_LOG_LEVEL="WARNING")
    return await asyncio.create_subprocess_exec(CSMS_BIN, "serve", env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)


async def test_sigkill_mid_backlog_loses_nothing_and_duplicates_no_order(db_url, conn, platform, tmp_path):
    from csms import db

    await db.upgrade(conn)
    settings = make_settings(**FAST)
    await add_platform(conn, secret_box(settings), name="shanxi", operator_id=PLATFORM_OPERATOR_ID,
                       our_operator_id=CSMS_OPERATOR_ID, base_url=platform.base_url, secrets=SECRETS,
                       interfaces=["notification_stationStatus", "notification_charge_order_info"])
    await conn.execute("INSERT INTO charge_points (id, security_profile) VALUES ('CP1', 0), ('CP2', 0)")
    # A backlog: 60 finished sessions on 4 connectors, each with its charge order.
    sessions = []
    async with conn.transaction():
        for i in range(60):
            cp_id, n = ("CP1", "CP2")[i % 2], 1 + (i // 2) % 2
            sid = await conn.fetchval(
                """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at,
                       stopped_at, meter_start_wh, meter_stop_wh, energy_wh, stop_reason)
                   VALUES ($1, $2, '1.6', $3, now() - interval '2 hours', now() - interval '1 hour', 0, $4, $4,
                           'Remote') RETURNING id""", cp_id, f"tx-{i}", n, 1000 + i)
            await on_session_stopped(conn, sid)
            sessions.append(sid)
    total = await conn.fetchval("SELECT count(*) FROM tcec_outbox")
    assert total == 60
    platform.delay = 0.05  # a slow platform, so that the kill lands mid-backlog
    proc = await _serve(db_url, tmp_path)
    try:
        await wait_for(lambda: len(platform.received) >= 15, timeout=30)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        pending = await conn.fetchval("SELECT count(*) FROM tcec_outbox WHERE state='pending'")
        assert 0 < pending < total
        platform.delay = 0.0
        proc = await _serve(db_url, tmp_path)
        await wait_for(lambda: conn.fetchval("SELECT count(*) = 0 FROM tcec_outbox WHERE state='pending'"),
                       timeout=30)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
    orders = [r.payload for r in platform.of("notification_charge_order_info")]
    seqs = [o["StartChargeSeq"] for o in orders]
    assert len(seqs) == len(set(seqs)) == 60  # no loss, no order number twice
    assert set(seqs) == {f"{CSMS_OPERATOR_ID}{sid:018d}" for sid in sessions}
    # A message the platform may have got just before the kill is resent unchanged (same
    # TimeStamp/Seq and order number), so the platform could recognise it.
    for dup in platform.duplicates:
        first = next(r for r in platform.received if (r.timestamp, r.seq) == (dup.timestamp, dup.seq))
        assert first.payload == dup.payload
    assert len(platform.duplicates) <= 8
    # Per connector, the orders arrived in the order they were queued.
    rows = await conn.fetch("SELECT order_key, seq, start_charge_seq FROM tcec_outbox ORDER BY order_key, seq")
    queued = defaultdict(list)
    for r in rows:
        queued[r["order_key"]].append(r["start_charge_seq"])
    arrived = defaultdict(list)
    for o in orders:
        arrived["c:" + o["ConnectorID"]].append(o["StartChargeSeq"])
    assert dict(arrived) == dict(queued)
