"""Tariffs in the database and session pricing at session end (1.6 and 2.x), and the CLI."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from csms.events import Sample, TransactionStart, TransactionStop
from csms.pricing import (
    TariffExists, add_tariff_version, assign_tariff, on_session_stopped, price_stored_session, tariff_in_force,
)
from csms.service import _apply_transaction_events

from .test_cli import run

CST = timezone(timedelta(hours=8))
FLAT_A = [("00:00", "1.0000", "0.5000")]
B_V1 = [("00:00", "0.3000", "0.2000"), ("12:00", "0.9000", "0.8000")]
B_V2 = [("00:00", "0.4000", "0.2000"), ("12:00", "1.0000", "0.8000")]


async def _session(conn, cp_id, start, stop, meter_start, meter_stop, tx):
    return await conn.fetchval(
        """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at, stopped_at,
               meter_start_wh, meter_stop_wh, energy_wh, stop_reason)
           VALUES ($1, $2, '1.6', 1, $3, $4, $5::float8, $6::float8, $6::float8 - $5::float8, 'Local') RETURNING id""",
        cp_id, tx, start, stop, meter_start, meter_stop)


async def test_tariff_history_and_assignment_history(conn):
    await conn.execute("INSERT INTO charge_points (id, security_profile, station_id) VALUES ('CP-S', 0, 'S1'), "
                       "('CP-X', 0, NULL)")
    await add_tariff_version(conn, "A", date(2024, 1, 1), FLAT_A)
    await add_tariff_version(conn, "B", date(2024, 1, 1), B_V1)
    await add_tariff_version(conn, "B", date(2024, 7, 1), B_V2)
    with pytest.raises(TariffExists):
        await add_tariff_version(conn, "B", date(2024, 7, 1), B_V1)
    await assign_tariff(conn, "A", None, datetime(2024, 1, 1, tzinfo=CST))
    await assign_tariff(conn, "B", "S1", datetime(2024, 6, 1, tzinfo=CST))

    assert (await tariff_in_force(conn, "S1", datetime(2024, 5, 31, 23, tzinfo=CST))).name == "A"
    ref = await tariff_in_force(conn, "S1", datetime(2024, 6, 15, 9, tzinfo=CST))
    assert ref.name == "B" and ref.tariff.valid_from == date(2024, 1, 1)
    ref = await tariff_in_force(conn, "S1", datetime(2024, 7, 2, 9, tzinfo=CST))
    assert ref.tariff.valid_from == date(2024, 7, 1)
    assert (await tariff_in_force(conn, None, datetime(2024, 7, 2, tzinfo=CST))).name == "A"
    assert await tariff_in_force(conn, "S1", datetime(2023, 12, 1, tzinfo=CST)) is None

    # Sessions are priced with what was in force when they ran, whatever was added later.
    s1 = await _session(conn, "CP-S", datetime(2024, 6, 15, 11, 30, tzinfo=CST),
                        datetime(2024, 6, 15, 12, 30, tzinfo=CST), 0, 10000, "a")
    await conn.execute(
        """INSERT INTO meter_values (charge_point_id, connector_id, session_id, sampled_at, measurand, unit, value)
           VALUES ('CP-S', 1, $1, $2, 'Energy.Active.Import.Register', 'Wh', 2000),
                  ('CP-S', 1, $1, $3, 'Energy.Active.Import.Register', 'Wh', 1500),   -- decreasing: ignored
                  ('CP-S', 1, $1, $4, 'Energy.Active.Import.Register', 'Wh', 8000)""",
        s1, datetime(2024, 6, 15, 11, 40, tzinfo=CST), datetime(2024, 6, 15, 11, 45, tzinfo=CST),
        datetime(2024, 6, 15, 12, 20, tzinfo=CST))
    cost, _ = await price_stored_session(conn, s1)
    # 12:00 lies between 11:40 (2000 Wh) and 12:20 (8000 Wh): 5000 Wh.
    assert [(d.power, d.elec_money, d.service_money) for d in cost.details] == [
        (D("5.000"), D("1.50"), D("1.00")), (D("5.000"), D("4.50"), D("4.00"))]
    row = await conn.fetchrow("SELECT * FROM session_costs WHERE session_id=$1", s1)
    assert (row["total_power"], row["total_money"], row["error"]) == (D("10.000"), D("11.00"), None)
    details = json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
    assert details[1]["DetailStartTime"] == "2024-06-15 12:00:00" and details[1]["ElecPrice"] == 0.9

    s2 = await _session(conn, "CP-S", datetime(2024, 7, 2, 11, 0, tzinfo=CST),
                        datetime(2024, 7, 2, 13, 0, tzinfo=CST), 0, 4000, "b")
    cost, _ = await price_stored_session(conn, s2)  # no samples in between: linear from start to stop
    assert [d.elec_price for d in cost.details] == [D("0.4000"), D("1.0000")]
    assert cost.total_money == D("0.80") + D("0.40") + D("2.00") + D("1.60")

    # A charger outside any station gets the default; no tariff at all is flagged and priced at 0.
    s3 = await _session(conn, "CP-X", datetime(2024, 7, 2, 11, 0, tzinfo=CST),
                        datetime(2024, 7, 2, 11, 30, tzinfo=CST), 100, 1100, "c")
    assert (await price_stored_session(conn, s3))[0].total_money == D("1.50")
    s4 = await _session(conn, "CP-X", datetime(2023, 7, 2, 11, 0, tzinfo=CST),
                        datetime(2023, 7, 2, 11, 30, tzinfo=CST), 100, 1100, "d")
    cost, _ = await price_stored_session(conn, s4)
    assert cost.total_money == 0 and cost.total_power == D("1.000")
    assert "no tariff" in await conn.fetchval("SELECT error FROM session_costs WHERE session_id=$1", s4)


async def test_2x_session_is_priced_in_the_transaction_that_ends_it(conn):
    await conn.execute("INSERT INTO charge_points (id, security_profile) VALUES ('CP2X', 0)")
    await add_tariff_version(conn, "A", date(2024, 1, 1), FLAT_A)
    await assign_tariff(conn, "A", None, datetime(2024, 1, 1, tzinfo=CST))
    t0 = datetime(2024, 8, 1, 2, 0, tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    started = TransactionStart(connector_id=1, id_tag=None, timestamp=t0, meter_start_wh=None, evse_id=1,
                               transaction_id="T-1", seq_no=0, trigger_reason="CablePluggedIn",
                               samples=[Sample(t0, 5000.0, context="Transaction.Begin")])
    ended = TransactionStop(transaction_id="T-1", timestamp=t0 + timedelta(hours=1), meter_stop_wh=None,
                            reason="EVDisconnected", connector_id=1, evse_id=1, seq_no=1, trigger_reason="EVDeparted",
                            samples=[Sample(t0 + timedelta(hours=1), 12500.0, context="Transaction.End")])
    async with conn.transaction():
        await _apply_transaction_events(conn, [("CP2X", "2.0.1", started, now)])
    async with conn.transaction():
        await _apply_transaction_events(conn, [("CP2X", "2.0.1", ended, now)])
    row = await conn.fetchrow(
        "SELECT c.* FROM session_costs c JOIN sessions s ON s.id = c.session_id WHERE s.transaction_id='T-1'")
    assert row is not None and row["total_power"] == D("7.500") and row["total_money"] == D("11.25")


async def test_cli_tariffs_platforms_and_session_costs(db_url, conn, tmp_path):
    env = {"CSMS_SECRET_KEY": "cli-test-key", "CSMS_DATA_DIR": str(tmp_path)}
    code, out, err = await run(db_url, "tariffs", "add", "峰谷", "--valid-from", "2024-01-01",
                               "--period", "00:00=0.3100/0.4000", "--period", "08:00=0.6200/0.6000", env=env)
    assert code == 0, err
    code, _, err = await run(db_url, "tariffs", "add", "bad", "--valid-from", "2024-01-01",
                             "--period", "08:00=0.62/0.60", env=env)
    assert code == 2 and "00:00" in err
    code, out, err = await run(db_url, "tariffs", "assign", "峰谷", "--default", "--valid-from", "2024-01-01", env=env)
    assert code == 0, err
    code, out, _ = await run(db_url, "tariffs", "list", env=env)
    assert "峰谷" in out and "0.6200" in out and "(default)" in out

    code, out, err = await run(db_url, "platform", "add", "shanxi", "--operator-id", "MA0SXJG01",
                               "--our-operator-id", "MA0YQCS01", "--base-url", "http://127.0.0.1:9",
                               "--interface", "notification_stationStatus",
                               env={**env, "CSMS_PLATFORM_OPERATOR_SECRET": "op-secret",
                                    "CSMS_PLATFORM_DATA_SECRET": "1234567890abcdef",
                                    "CSMS_PLATFORM_DATA_SECRET_IV": "abcdef1234567890",
                                    "CSMS_PLATFORM_SIG_SECRET": "sig-secret-xyz"})
    assert code == 0 and "added platform shanxi" in out, err
    code, out, _ = await run(db_url, "platform", "list", env=env)
    assert "MA0SXJG01" in out and "sig-secret-xyz" not in out and "op-secret" not in out
    code, out, _ = await run(db_url, "platform", "status", "--json", env=env)
    (status,) = [json.loads(line) for line in out.splitlines()]
    assert status["name"] == "shanxi" and status["backlog"] == 0 and status["state"] == "ok"
    code, _, err = await run(db_url, "platform", "add", "x", "--operator-id", "X", "--our-operator-id", "short",
                             "--base-url", "http://127.0.0.1:9", env={**env, "CSMS_PLATFORM_OPERATOR_SECRET": "a",
                             "CSMS_PLATFORM_DATA_SECRET": "1234567890abcdef",
                             "CSMS_PLATFORM_DATA_SECRET_IV": "abcdef1234567890", "CSMS_PLATFORM_SIG_SECRET": "s"})
    assert code == 2 and "our_operator_id" in err

    await conn.execute("INSERT INTO charge_points (id, security_profile) VALUES ('CP1', 0)")
    sid = await _session(conn, "CP1", datetime(2024, 5, 1, 7, 30, tzinfo=CST), datetime(2024, 5, 1, 8, 30, tzinfo=CST),
                         0, 10000, "t1")
    await on_session_stopped(conn, sid)
    code, out, _ = await run(db_url, "sessions", "list", "--json", env=env)
    (session,) = [json.loads(line) for line in out.splitlines()]
    assert (session["kwh"], session["elec_yuan"], session["service_yuan"], session["total_yuan"]) == (
        "10.000", "4.65", "5.00", "9.65")
    code, out, _ = await run(db_url, "sessions", "list", env=env)
    assert "total_yuan" in out and "9.65" in out

    code, out, _ = await run(db_url, "platform", "remove", "shanxi", env=env)
    assert code == 0 and await conn.fetchval("SELECT count(*) FROM tcec_platforms") == 0
