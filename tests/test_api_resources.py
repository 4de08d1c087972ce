"""REST resources: charge points, connectors, status history, sessions, faults, id tags — paging, filters, errors."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from csms.simulator import SimulatorConfig

from .api_helpers import ApiEnv, Online16, api  # noqa: F401 - fixture
from .conftest import wait_for


# ----------------------------------------------------------------------------- charge points
async def stations(api: ApiEnv, *ids: str) -> None:
    """Stations to assign chargers to. The registry owns the real table (0003) and its many required
    columns; only ``station_id`` matters to the API, so this test database gets a minimal one."""
    await api.pool.execute("DROP TABLE IF EXISTS stations CASCADE")
    await api.pool.execute("CREATE TABLE stations (station_id text PRIMARY KEY)")
    await api.pool.executemany("INSERT INTO stations (station_id) VALUES ($1)", [(i,) for i in ids])


async def test_register_update_remove_charger(api: ApiEnv):
    r = await api.post("/chargers", {"id": "CP-1", "password": "correct horse", "station_id": None})
    assert r.status_code == 201, r.text
    cp = r.json()
    assert cp["id"] == "CP-1" and cp["security_profile"] == 1 and cp["has_password"] is True
    assert cp["online"] is False and cp["connectors"] == [] and "password" not in cp
    assert r.headers["location"] == "/api/v1/chargers/CP-1"
    assert (await api.post("/chargers", {"id": "CP-1"})).status_code == 409

    before = await api.counts()
    for body in ({"id": ""}, {"id": "a/b"}, {"id": "x" * 65}, {"id": "CP 2"}, {"id": ".."}, {"id": "CP2", "x": 1},
                 {"id": "CP2", "security_profile": 4}, {"id": "CP2", "password": "short"}, {"id": "CP\u00002"},
                 {"id": "CP2", "station_id": "nowhere"}, [], "CP2"):
        r = await api.post("/chargers", body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    assert await api.counts() == before

    # set password / profile, assign to a station (the registry's stations table)
    await stations(api, "ST1")
    r = await api.patch("/chargers/CP-1", {"station_id": "ST1", "security_profile": 2})
    assert r.status_code == 200, r.text
    assert r.json()["station_id"] == "ST1" and r.json()["security_profile"] == 2
    assert (await api.patch("/chargers/CP-1", {"station_id": "ST9"})).status_code == 422
    r = await api.patch("/chargers/CP-1", {"password": None})
    assert r.json()["has_password"] is False and r.json()["station_id"] == "ST1"
    r = await api.patch("/chargers/CP-1", {"station_id": None, "password": "new password 1", "security_profile": 1})
    assert r.json()["station_id"] is None and r.json()["has_password"] is True
    assert r.json()["security_profile"] == 1
    assert (await api.patch("/chargers/NOPE", {"security_profile": 1})).status_code == 404
    assert (await api.patch("/chargers/CP-1", {"security_profile": "high"})).status_code == 422

    # the new password works for the charger
    from csms.simulator import connect

    ws = await connect(api.ocpp_url, "CP-1", "1.6", password="new password 1")
    await ws.close()

    assert (await api.delete("/chargers/CP-1")).status_code == 204
    assert (await api.get("/chargers/CP-1")).status_code == 404
    assert (await api.delete("/chargers/CP-1")).status_code == 404
    r = await api.get("/chargers/NOPE")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_charger_list_paging_and_filters(api: ApiEnv):
    await stations(api, "A", "B")
    for i in range(12):
        await api.register(f"CP{i:02d}", station_id="A" if i < 5 else "B")
    r = await api.get("/chargers", params={"limit": 5})
    page = r.json()
    assert page["total"] == 12 and page["limit"] == 5 and [c["id"] for c in page["items"]] == [
        f"CP{i:02d}" for i in range(5)]
    page = (await api.get("/chargers", params={"limit": 5, "offset": 10})).json()
    assert [c["id"] for c in page["items"]] == ["CP10", "CP11"] and page["total"] == 12
    page = (await api.get("/chargers", params={"offset": 50})).json()
    assert page["items"] == [] and page["total"] == 12
    assert (await api.get("/chargers", params={"station": "A"})).json()["total"] == 5
    assert (await api.get("/chargers", params={"q": "p1"})).json()["total"] == 2
    async with Online16(api, "CP03") as cp:
        await cp.status(1, "Charging")
        online = (await api.get("/chargers", params={"online": "true"})).json()
        assert [c["id"] for c in online["items"]] == ["CP03"]
        c = online["items"][0]
        assert c["ocpp_version"] == "1.6" and c["vendor"] == "CSMS-Sim" and c["node_id"] == api.app.settings.node_id
        assert c["connectors"][0]["status"] == "Charging" and c["last_seen"]
        assert (await api.get("/chargers", params={"online": "false"})).json()["total"] == 11
        assert (await api.get("/chargers", params={"status": "Charging"})).json()["total"] == 1
        assert (await api.get("/chargers", params={"version": "1.6", "station": "A"})).json()["total"] == 1
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"online": "maybe"}, {"version": "3.0"}):
        r = await api.get("/chargers", params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["details"][0]["loc"][0] == "query"


async def test_live_state_connectors_and_status_history(api: ApiEnv):
    await api.register("CP1")
    t0 = datetime.now(timezone.utc)
    async with Online16(api, "CP1") as cp:
        for connector, status in [(0, "Available"), (1, "Available"), (2, "Available"), (1, "Preparing"),
                                  (1, "Charging"), (2, "Faulted")]:
            await cp.status(connector, status, "GroundFailure" if status == "Faulted" else "NoError")
        state = (await api.get("/chargers/CP1")).json()
        assert state["online"] is True and state["ocpp_version"] == "1.6"
        assert state["connected_since"] and state["firmware_version"] == "1.0.0"
        assert [(c["connector_id"], c["status"]) for c in state["connectors"]] == [
            (0, "Available"), (1, "Charging"), (2, "Faulted")]
        assert state["connectors"][2]["error_code"] == "GroundFailure"

        conns = (await api.get("/chargers/CP1/connectors")).json()
        assert conns["total"] == 3 and conns["items"][1]["charge_point_id"] == "CP1"
        glob = (await api.get("/connectors", params={"status": "Faulted"})).json()
        assert [(c["charge_point_id"], c["connector_id"]) for c in glob["items"]] == [("CP1", 2)]

        hist = (await api.get("/chargers/CP1/status-history", params={"connector": 1})).json()
        assert [h["status"] for h in hist["items"]] == ["Charging", "Preparing", "Available"]
        hist = (await api.get("/status-history", params={"charger": "CP1", "status": "Available",
                                                         "since": t0.isoformat(), "limit": 2})).json()
        assert hist["total"] == 3 and len(hist["items"]) == 2
        future = (t0 + timedelta(hours=1)).isoformat()
        assert (await api.get("/status-history", params={"since": future})).json()["total"] == 0
        assert (await api.get("/status-history", params={"until": t0.isoformat()})).json()["total"] == 0
        assert (await api.get("/status-history", params={"since": "not a time"})).status_code == 422
        assert (await api.get("/status-history", params={"since": "0001-01-01T00:00:00+05:00"})).status_code == 422
        assert (await api.get("/chargers/NOPE/connectors")).status_code == 404
        assert (await api.get("/chargers/NOPE/status-history")).status_code == 404
    await wait_for(lambda: "CP1" not in api.app.gateway.connections)
    state = (await api.get("/chargers/CP1")).json()
    assert state["online"] is False and state["node_id"] is None and state["last_seen"]
    conns = (await api.get("/chargers/CP1/connections")).json()
    assert conns["total"] == 1 and conns["items"][0]["disconnected_at"] is not None


# ----------------------------------------------------------------------------- sessions, faults
async def test_sessions_with_meter_values(api: ApiEnv):
    await api.register("CP1")
    await api.register("CP2")
    assert (await api.post("/id-tags", {"id_tag": "SIMTAG"})).status_code == 201
    t0 = datetime.now(timezone.utc) - timedelta(seconds=1)
    async with Online16(api, "CP1") as cp1, Online16(api, "CP2") as cp2:
        done = await cp1.charge(1, samples=3, interval=0.01)
        await cp2.charge(1, samples=1, interval=0.01)
        # an open one
        await cp2.call(__import__("ocpp.v16.call", fromlist=["StartTransaction"]).StartTransaction(
            connector_id=2, id_tag="SIMTAG", meter_start=5, timestamp=datetime.now(timezone.utc).isoformat()))
    page = (await api.get("/sessions")).json()
    assert page["total"] == 3
    assert (await api.get("/sessions", params={"charger": "CP1"})).json()["total"] == 1
    assert (await api.get("/sessions", params={"status": "open"})).json()["items"][0]["charge_point_id"] == "CP2"
    assert (await api.get("/sessions", params={"status": "closed", "charger": "CP2"})).json()["total"] == 1
    assert (await api.get("/sessions", params={"connector": 2})).json()["total"] == 1
    assert (await api.get("/sessions", params={"id_tag": "SIMTAG", "since": t0.isoformat()})).json()["total"] == 3
    assert (await api.get("/sessions", params={"until": t0.isoformat()})).json()["total"] == 0
    assert (await api.get("/sessions", params={"status": "paused"})).status_code == 422
    s = next(s for s in page["items"] if s["charge_point_id"] == "CP1")
    assert s["energy_wh"] == done["energy_wh"] and s["status"] == "closed"
    assert s["transaction_id"] == str(done["transaction_id"])
    detail = (await api.get(f"/sessions/{s['id']}")).json()
    assert detail["meter"]["samples"] == 6 and detail["meter"]["last_energy_wh"] == done["meter_stop"]
    assert detail["meter"]["last_power_w"] == SimulatorConfig(url="", ids=[]).power_w
    mv = (await api.get(f"/sessions/{s['id']}/meter-values", params={"limit": 4})).json()
    assert mv["total"] == 6 and len(mv["items"]) == 4
    energy = (await api.get(f"/sessions/{s['id']}/meter-values",
                            params={"measurand": "Energy.Active.Import.Register"})).json()
    assert [m["value"] for m in energy["items"]] == sorted(m["value"] for m in energy["items"])
    assert energy["total"] == 3
    assert (await api.get("/sessions/999999")).status_code == 404
    assert (await api.get("/sessions/999999/meter-values")).status_code == 404
    assert (await api.get("/sessions/abc")).status_code == 422
    assert (await api.get(f"/sessions/{2 ** 70}")).status_code == 422


async def test_faults_open_and_closed(api: ApiEnv):
    await api.register("CP1")
    async with Online16(api, "CP1") as cp:
        await cp.status(1, "Faulted", "GroundFailure", vendor_error_code="E42")
        await cp.status(2, "Faulted", "OverVoltage")
        await cp.status(1, "Available")
    page = (await api.get("/faults")).json()
    assert page["total"] == 2
    assert [(f["connector_id"], f["status"]) for f in
            (await api.get("/faults", params={"status": "open"})).json()["items"]] == [(2, "open")]
    closed = (await api.get("/faults", params={"status": "closed", "charger": "CP1"})).json()["items"]
    assert closed[0]["error_code"] == "GroundFailure" and closed[0]["vendor_error_code"] == "E42"
    assert (await api.get("/faults", params={"error_code": "OverVoltage", "connector": 2})).json()["total"] == 1
    fid = (await api.get("/faults", params={"status": "open"})).json()["items"][0]["id"]
    r = await api.post(f"/faults/{fid}/close")
    assert r.status_code == 200 and r.json()["status"] == "closed" and "test-operator" in r.json()["info"]
    assert (await api.post(f"/faults/{fid}/close")).json()["status"] == "closed"  # idempotent
    assert (await api.get(f"/faults/{fid}")).json()["closed_at"]
    assert (await api.get("/faults", params={"status": "open"})).json()["total"] == 0
    assert (await api.get("/faults/424242")).status_code == 404
    assert (await api.post("/faults/424242/close")).status_code == 404


# ----------------------------------------------------------------------------- id tags
async def test_id_tag_crud(api: ApiEnv):
    r = await api.post("/id-tags", {"id_tag": "CARD-1", "expiry_date": "2031-01-01T00:00:00+08:00",
                                    "note": "blue card"})
    assert r.status_code == 201, r.text
    tag = r.json()
    assert tag["status"] == "Accepted" and tag["expiry_date"].startswith("2030-12-31T16:00:00")
    assert tag["active_sessions"] == 0 and tag["max_active_transactions"] == 1
    assert (await api.post("/id-tags", {"id_tag": "CARD-1"})).status_code == 409
    r = await api.patch("/id-tags/CARD-1", {"status": "Blocked", "expiry_date": None})
    assert r.json()["status"] == "Blocked" and r.json()["expiry_date"] is None and r.json()["note"] == "blue card"
    assert (await api.get("/id-tags/CARD-1")).json()["status"] == "Blocked"
    assert (await api.patch("/id-tags/NOPE", {"status": "Blocked"})).status_code == 404
    before = await api.counts()
    for body in ({"id_tag": ""}, {"id_tag": "x" * 37}, {"id_tag": "has space"}, {"id_tag": "T", "status": "Maybe"},
                 {"id_tag": "T", "max_active_transactions": -1}, {"id_tag": "T", "expiry_date": "soon"},
                 {"id_tag": "T", "owner": "me"}):
        assert (await api.post("/id-tags", body)).status_code == 422, body
    assert (await api.patch("/id-tags/CARD-1", {"status": "Gone"})).status_code == 422
    assert await api.counts() == before
    assert (await api.get("/id-tags/CARD-1")).json()["status"] == "Blocked"
    assert (await api.delete("/id-tags/CARD-1")).status_code == 204
    assert (await api.get("/id-tags/CARD-1")).status_code == 404
    assert (await api.delete("/id-tags/CARD-1")).status_code == 404


async def test_id_tag_bulk_import_all_or_nothing(api: ApiEnv):
    items = [{"id_tag": f"T{i:03d}", "status": "Accepted" if i % 3 else "Blocked"} for i in range(250)]
    r = await api.post("/id-tags/import", {"items": items})
    assert r.status_code == 200 and r.json() == {"created": 250, "updated": 0}
    r = await api.post("/id-tags/import", {"items": [{"id_tag": "T000", "status": "Accepted"},
                                                     {"id_tag": "NEW1", "parent_id_tag": "T000"}]})
    assert r.json() == {"created": 1, "updated": 1}
    assert (await api.get("/id-tags/T000")).json()["status"] == "Accepted"
    # create mode with an existing tag: 409, nothing stored
    r = await api.post("/id-tags/import", {"mode": "create", "items": [{"id_tag": "NEW2"}, {"id_tag": "T001"}]})
    assert r.status_code == 409 and r.json()["error"]["details"] == ["T001"]
    assert (await api.get("/id-tags/NEW2")).status_code == 404
    # duplicates or one bad row: 422, nothing stored
    before = await api.counts()
    r = await api.post("/id-tags/import", {"items": [{"id_tag": "NEW3"}, {"id_tag": "NEW3"}]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "items", "1", "id_tag"]
    r = await api.post("/id-tags/import", {"items": [{"id_tag": "NEW4"}, {"id_tag": "bad tag"}]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"][:3] == ["body", "items", "1"]
    assert (await api.post("/id-tags/import", {"items": []})).status_code == 422
    assert await api.counts() == before
    # listing: paging and filters
    page = (await api.get("/id-tags", params={"status": "Blocked", "limit": 10})).json()
    assert page["total"] == 83 and len(page["items"]) == 10
    assert (await api.get("/id-tags", params={"q": "t24"})).json()["total"] == 10
    assert (await api.get("/id-tags", params={"parent": "T000"})).json()["items"][0]["id_tag"] == "NEW1"
    assert (await api.get("/id-tags", params={"expired": "false"})).json()["total"] == 251


async def test_oversized_bodies_are_refused(api: ApiEnv):
    huge = {"items": [{"id_tag": f"T{i}", "note": "x" * 400} for i in range(6000)]}  # ~2.6 MB
    r = await api.post("/id-tags/import", huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(40):
            yield b"x" * 100_000
            await asyncio.sleep(0)

    r = await api.client.post("/api/v1/id-tags", content=chunks(),
                              headers={**api.auth(), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert await api.pool.fetchval("SELECT count(*) FROM id_tags") == 0
