"""Serving a supervision platform (we are the server): POST /evcs/v{version}/{interface} on
the API port, with the standard's envelope, encryption, signature and tokens; plus the
operator API for tariffs, platforms and session costs."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from csms.api.auth import create_token
from csms.app import CsmsApp
from csms.pricing import add_tariff_version, assign_tariff
from csms.secretbox import secret_box
from csms.tcec102.codec import Secrets, decode_response, dumps_envelope, encode_request
from csms.tcec102.platforms import add_platform

from .conftest import make_settings
from .tcec_platform import CSMS_OPERATOR_ID, PLATFORM_OPERATOR_ID, SECRETS

CST = timezone(timedelta(hours=8))
SECRET_KEY = "tcec-server-test-key"


class Client:
    def __init__(self, app: CsmsApp) -> None:
        self.base = f"http://127.0.0.1:{app.api_port}"
        self.http = httpx.AsyncClient(base_url=self.base, timeout=10)
        self.token: str | None = None

    async def raw(self, interface: str, body: bytes | dict, token: str | None = None, version: str = "20160701"):
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        content = body if isinstance(body, bytes) else dumps_envelope(body)
        resp = await self.http.post(f"/evcs/v{version}/{interface}", content=content, headers=headers)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
        return resp.json()

    async def call(self, interface: str, payload: dict, *, secrets: Secrets = SECRETS,
                   operator_id: str = PLATFORM_OPERATOR_ID, token: str | None = "auto"):
        if token == "auto":
            token = self.token
        envelope = encode_request(operator_id, payload, secrets)
        body = await self.raw(interface, envelope, token)
        return body, decode_response(body, secrets) if body["Sig"] else None

    async def login(self) -> str:
        _, resp = await self.call("query_token", {"OperatorID": PLATFORM_OPERATOR_ID,
                                                  "OperatorSecret": SECRETS.operator_secret}, token=None)
        assert resp.ret == 0 and resp.payload["SuccStat"] == 0
        self.token = resp.payload["AccessToken"]
        return self.token


@pytest.fixture
async def served(db_url):
    app = CsmsApp(make_settings(secret_key=SECRET_KEY, tcec_token_ttl=600, tcec_reconcile_interval=60), db_url)
    await app.start()
    pool = app.pool
    async with pool.acquire() as conn:
        await add_platform(conn, secret_box(app.settings), name="shanxi", operator_id=PLATFORM_OPERATOR_ID,
                           our_operator_id=CSMS_OPERATOR_ID, base_url="http://127.0.0.1:9", secrets=SECRETS,
                           service_tel="0353-12345")
        await conn.execute(
            """INSERT INTO stations (station_id, name, county, address, lon, lat, access, site_type, parking_spaces)
               VALUES ('YQ0001', '阳泉桃北站', '140302', '城区桃北西街1号', 113.58, 37.86, 'public', 'public_parking', 8),
                      ('YQ0002', '盂县公交场站', '140322', '盂县秀水镇', 113.41, 38.09, 'dedicated', 'depot_bus', 20),
                      ('YQ0003', '无坐标站', 'gaoxin', NULL, NULL, NULL, 'public', 'other', NULL)""")
        # A demo station (synthetic) with a pile: never published.
        await conn.execute(
            """INSERT INTO stations (station_id, name, county, address, lon, lat, access, site_type, synthetic)
               VALUES ('DEMO-S9', '演示站', '140302', 'x', 113.58, 37.86, 'public', 'public_parking', true)""")
        await conn.execute(
            """INSERT INTO piles (pile_id, station_id, power_kw, current_type, connector_count, commissioned_on,
                                  synthetic) VALUES ('DEMO-P9', 'DEMO-S9', 7, 'AC', 1, '2024-01-01', true)""")
        await conn.execute(
            """INSERT INTO piles (pile_id, station_id, power_kw, current_type, connector_count, commissioned_on,
                                  charge_point_id)
               VALUES ('YQ0001P01', 'YQ0001', 120, 'DC', 2, '2024-01-01', 'CP1'),
                      ('YQ0001P02', 'YQ0001', 7, 'AC', 1, '2024-01-01', NULL),
                      ('YQ0002P01', 'YQ0002', 60, 'DC', 1, '2024-01-01', 'CP2')""")
        await conn.execute(
            """INSERT INTO charge_points (id, security_profile, lease_expires_at) VALUES
               ('CP1', 0, now() + interval '1 hour'), ('CP2', 0, NULL)""")
        await conn.execute(
            """INSERT INTO connectors (charge_point_id, connector_id, status, status_at) VALUES
               ('CP1', 1, 'Charging', now()), ('CP1', 2, 'Available', now()), ('CP2', 1, 'Available', now())""")
        await add_tariff_version(conn, "default", date(2024, 1, 1), [
            ("00:00", "0.3100", "0.4000"), ("08:00", "0.6200", "0.6000"), ("18:00", "0.9300", "0.8000")])
        await assign_tariff(conn, "default", None, datetime(2024, 1, 1, tzinfo=CST))
    client = Client(app)
    try:
        yield app, client
    finally:
        await client.http.aclose()
        await app.stop()


async def test_token_and_pull_interfaces(served):
    app, client = served
    token = await client.login()
    assert len(token) >= 40
    assert await app.pool.fetchval("SELECT count(*) FROM tcec_tokens") == 1
    assert await app.pool.fetchval("SELECT token_hash <> $1 FROM tcec_tokens", token)  # only a hash is kept
    _, resp = await client.call("query_token", {"OperatorID": PLATFORM_OPERATOR_ID, "OperatorSecret": "wrong"},
                                token=None)
    assert resp.ret == 0 and resp.payload["SuccStat"] == 1 and resp.payload["FailReason"] == 2

    # Stations, paged; the one without coordinates is not published.
    _, resp = await client.call("query_stations_info", {"PageNo": 1, "PageSize": 1})
    assert resp.ret == 0
    page = resp.payload
    assert (page["PageNo"], page["PageCount"], page["ItemSize"]) == (1, 2, 2)
    (station,) = page["StationInfos"]
    assert station["StationID"] == "YQ0001" and station["OperatorID"] == CSMS_OPERATOR_ID
    assert station["AreaCode"] == "140302" and station["StationType"] == 1 and station["ServiceTel"] == "0353-12345"
    assert abs(station["StationLng"] - 113.58) < 0.02 and station["StationLng"] != 113.58  # GCJ-02
    eq = {e["EquipmentID"]: e for e in station["EquipmentInfos"]}
    assert eq["YQ0001P01"]["EquipmentType"] == 1 and eq["YQ0001P02"]["EquipmentType"] == 2
    assert [c["ConnectorID"] for c in eq["YQ0001P01"]["ConnectorInfos"]] == ["YQ0001P01_1", "YQ0001P01_2"]
    _, resp = await client.call("query_stations_info", {"PageNo": 2, "PageSize": 1})
    assert resp.payload["StationInfos"][0]["StationType"] == 100  # 公交(专用)
    # LastQueryTime: only stations changed since.
    next_second = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=1)
    await asyncio.sleep((next_second - datetime.now(CST)).total_seconds() + 0.01)
    since = next_second.strftime("%Y-%m-%d %H:%M:%S")
    await app.pool.execute("UPDATE stations SET parking_spaces = 9 WHERE station_id = 'YQ0002'")
    _, resp = await client.call("query_stations_info", {"LastQueryTime": since})
    assert [s["StationID"] for s in resp.payload["StationInfos"]] == ["YQ0002"]

    # Status: CP1 online (Charging, Available), the AC pile has no charger (0), CP2 offline (0).
    _, resp = await client.call("query_station_status", {"StationIDs": ["YQ0001", "YQ0002", "NOPE", "DEMO-S9"]})
    infos = {s["StationID"]: {c["ConnectorID"]: c["Status"] for c in s["ConnectorStatusInfos"]}
             for s in resp.payload["StationStatusInfos"]}
    assert infos == {"YQ0001": {"YQ0001P01_1": 3, "YQ0001P01_2": 1, "YQ0001P02_1": 0}, "YQ0002": {"YQ0002P01_1": 0}}

    # Statistics over a date range (sessions ended in it).
    await app.pool.execute(
        """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at, stopped_at,
               energy_wh) VALUES
           ('CP1', 'a', '1.6', 1, '2024-05-01 09:00+08', '2024-05-01 10:00+08', 12340),
           ('CP1', 'b', '1.6', 2, '2024-05-02 09:00+08', '2024-05-02 10:00+08', 5000),
           ('CP1', 'c', '1.6', 1, '2024-05-03 09:00+08', '2024-05-03 10:00+08', 99999)""")
    _, resp = await client.call("query_station_stats",
                                {"StationID": "YQ0001", "StartTime": "2024-05-01", "EndTime": "2024-05-02"})
    stats = resp.payload["StationStats"]
    assert stats["StationElectricity"] == 17.3
    pile = next(e for e in stats["EquipmentStatsInfos"] if e["EquipmentID"] == "YQ0001P01")
    assert pile["EquipmentElectricity"] == 17.3
    assert {c["ConnectorID"]: c["ConnectorElectricity"] for c in pile["ConnectorStatsInfos"]} == {
        "YQ0001P01_1": 12.3, "YQ0001P01_2": 5.0}

    # The business policy is the tariff in force.
    _, resp = await client.call("query_equip_business_policy", {"EquipBizSeq": "1", "ConnectorID": "YQ0001P01_1"})
    assert resp.payload["SuccStat"] == 0 and resp.payload["SumPeriod"] == 3
    assert resp.payload["PolicyInfos"][1] == {"StartTime": "080000", "ElecPrice": 0.62, "SevicePrice": 0.6}
    _, resp = await client.call("query_equip_business_policy", {"EquipBizSeq": "2", "ConnectorID": "NOPE_1"})
    assert resp.payload["SuccStat"] == 1 and resp.payload["FailReason"] == 1


async def test_errors_have_the_standards_ret_codes(served):
    app, client = served
    await client.login()
    good = encode_request(PLATFORM_OPERATOR_ID, {"StationIDs": ["YQ0001"]}, SECRETS)

    # 4001: wrong signature, unknown operator, undecryptable data -- one unsigned answer for all.
    answers = []
    answers.append(await client.raw("query_station_status", {**good, "Sig": "0" * 32}, client.token))
    answers.append(await client.raw("query_station_status",
                                    encode_request("MA0UNKNOWN", {"StationIDs": ["YQ0001"]}, SECRETS), client.token))
    wrong_key = Secrets(SECRETS.operator_secret, "ffffffffffffffff", SECRETS.data_secret_iv, SECRETS.sig_secret)
    answers.append(await client.raw("query_station_status",
                                    encode_request(PLATFORM_OPERATOR_ID, {"StationIDs": ["YQ0001"], "x": "padding"},
                                                   wrong_key), client.token))
    wrong_sig_key = Secrets(SECRETS.operator_secret, SECRETS.data_secret, SECRETS.data_secret_iv, "not-the-key")
    answers.append(await client.raw("query_token", encode_request(
        PLATFORM_OPERATOR_ID, {"OperatorID": PLATFORM_OPERATOR_ID, "OperatorSecret": SECRETS.operator_secret},
        wrong_sig_key)))
    for a in answers:
        assert a == {"Ret": 4001, "Msg": answers[0]["Msg"], "Data": "", "Sig": ""}

    # 4003: malformed envelopes.
    for body in (b"not json", b"[]", {k: v for k, v in good.items() if k != "Seq"}, {**good, "Data": "%%%"},
                 {**good, "TimeStamp": "20161399000000"}, {**good, "Sig": "xyz"}):
        answer = await client.raw("query_station_status", body, client.token)
        assert answer["Ret"] == 4003 and answer["Sig"] == ""

    # 4002: no token, an unknown one, an expired one, another platform's.
    for token in (None, "forged-token"):
        answer = await client.raw("query_station_status", good, token)
        assert answer["Ret"] == 4002 and decode_response(answer, SECRETS).ret == 4002  # signed for the caller
    await app.pool.execute("UPDATE tcec_tokens SET expires_at = now() - interval '1 second'")
    assert (await client.raw("query_station_status", good, client.token))["Ret"] == 4002
    other = Secrets("other-op-secret", "1111111111111111", "2222222222222222", "other-sig")
    async with app.pool.acquire() as conn:
        await add_platform(conn, secret_box(app.settings), name="city", operator_id="MA0CITY01",
                           our_operator_id=CSMS_OPERATOR_ID, base_url="http://127.0.0.1:9", secrets=other)
    await client.login()
    await asyncio.sleep(1.1)  # an unknown OperatorID reloads the server's platform cache at most once a second
    _, resp = await client.call("query_token", {"OperatorID": "MA0CITY01", "OperatorSecret": "other-op-secret"},
                                secrets=other, operator_id="MA0CITY01", token=None)
    city_token = resp.payload["AccessToken"]
    _, resp = await client.call("query_station_status", {"StationIDs": ["YQ0001"]}, token=city_token)
    assert resp.ret == 4002

    # 4004: bad business parameters (signed).
    for interface, payload in (
            ("query_station_status", {"StationIDs": "YQ0001"}),
            ("query_station_status", {"StationIDs": [f"S{i}" for i in range(51)]}),
            ("query_stations_info", {"PageNo": 0}),
            ("query_stations_info", {"PageNo": True}),
            ("query_stations_info", {"LastQueryTime": "yesterday"}),
            ("query_station_stats", {"StationID": "NOPE", "StartTime": "2024-05-01", "EndTime": "2024-05-02"}),
            ("query_station_stats", {"StationID": "YQ0001", "StartTime": "2024-05-03", "EndTime": "2024-05-02"}),
            ("query_nonexistent", {})):
        _, resp = await client.call(interface, payload)
        assert resp is not None and resp.ret == 4004, (interface, payload)
    # The standard's own example Data (trailing comma, so not JSON) → 4004 once authenticated.
    from csms.tcec102.codec import encrypt_data, request_sig

    data = encrypt_data(b'{"total":1,}', SECRETS)
    body = {"OperatorID": PLATFORM_OPERATOR_ID, "Data": data, "TimeStamp": "20160729142400", "Seq": "0001",
            "Sig": request_sig(SECRETS, PLATFORM_OPERATOR_ID, data, "20160729142400", "0001")}
    assert (await client.raw("query_station_status", body, client.token))["Ret"] == 4004


async def test_operator_api_for_tariffs_platforms_and_costs(served):
    app, _ = served
    _, admin = await create_token(app.pool, "admin", "admin")
    _, bureau = await create_token(app.pool, "bureau", "bureau")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}/api/v1", timeout=10) as http:
        h = {"Authorization": f"Bearer {admin}"}
        r = await http.post("/tariffs", headers=h, json={"name": "夜间优惠", "valid_from": "2025-01-01", "periods": [
            {"start": "00:00", "elec_price": "0.3000", "service_price": "0.3000"},
            {"start": "07:00", "elec_price": "0.6000", "service_price": "0.6000"}]})
        assert r.status_code == 201, r.text
        r = await http.post("/tariffs", headers=h, json={"name": "夜间优惠", "valid_from": "2025-01-01", "periods": [
            {"start": "00:00", "elec_price": "0.3", "service_price": "0.3"}]})
        assert r.status_code == 409
        r = await http.post("/tariffs", headers=h, json={"name": "bad", "valid_from": "2025-01-01", "periods": [
            {"start": "01:00", "elec_price": "0.30001", "service_price": "0.3"}]})
        assert r.status_code == 422
        r = await http.post("/tariffs/夜间优惠/assignments", headers=h, json={"station_id": "YQ0001"})
        assert r.status_code == 201
        r = await http.get("/tariffs", headers=h)
        names = {t["name"]: t for t in r.json()["items"]}
        assert names["夜间优惠"]["stations"] == ["YQ0001"] and names["default"]["default"] is True
        assert (await http.get("/tariffs", headers={"Authorization": f"Bearer {bureau}"})).status_code == 403

        r = await http.post("/platforms", headers=h, json={
            "name": "city", "operator_id": "MA0CITY01", "our_operator_id": CSMS_OPERATOR_ID,
            "base_url": "http://127.0.0.1:9", "operator_secret": "op-secret-1", "data_secret": "1234567890abcdef",
            "data_secret_iv": "abcdef1234567890", "sig_secret": "sig-secret-1",
            "interfaces": ["notification_stationStatus"]})
        assert r.status_code == 201, r.text
        r = await http.get("/platforms", headers=h)
        listed = r.json()["items"]
        assert {p["name"] for p in listed} == {"shanxi", "city"}
        assert "sig-secret-1" not in r.text and "secrets" not in listed[0]
        raw = await app.pool.fetchval("SELECT secrets FROM tcec_platforms WHERE name='city'")
        assert b"sig-secret-1" not in raw and b"op-secret-1" not in raw  # encrypted at rest
        r = await http.get("/platforms/status", headers=h)
        status = {p["name"]: p for p in r.json()["items"]}
        assert status["city"]["backlog"] == 0 and status["city"]["last_success_at"] is None
        assert status["shanxi"]["state"] in ("ok", "backlog") and status["shanxi"]["halted_at"] is None
        assert (await http.delete("/platforms/city", headers=h)).status_code == 204
        assert (await http.delete("/platforms/city", headers=h)).status_code == 404

        sid = await app.pool.fetchval(
            """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, started_at,
                   stopped_at, meter_start_wh, meter_stop_wh, energy_wh)
               VALUES ('CP1', 'z', '1.6', 1, '2024-05-01 07:30+08', '2024-05-01 08:30+08', 0, 10000, 10000)
               RETURNING id""")
        from csms.pricing import on_session_stopped

        async with app.pool.acquire() as conn:
            await on_session_stopped(conn, sid)
        r = await http.get(f"/sessions/{sid}/cost", headers=h)
        cost = r.json()
        # 07:30–08:30 at the default tariff (station YQ0001's own starts in 2025): 5 kWh each side of 08:00.
        assert cost["tariff"] == "default" and cost["total_power"] == "10.000"
        assert [d["DetailPower"] for d in cost["details"]] == [5.0, 5.0]
        assert cost["total_money"] == "9.65"
