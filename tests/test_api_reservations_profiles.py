"""Reservations and the charging profiles library over the HTTP API, against real simulated chargers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from ocpp.v16 import call as call16

from csms.simulator import connect, now_iso
from csms.simulator_v2x import charger_class

from .api_helpers import ApiEnv, Online16, api  # noqa: F401 - fixture


def future(hours: float = 1) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


async def counts(env: ApiEnv) -> dict[str, int]:
    out = await env.counts()
    for table in ("reservations", "charging_profiles", "charging_profile_assignments"):
        out[table] = await env.pool.fetchval(f"SELECT count(*) FROM {table}")
    return out


class Online2x:
    def __init__(self, env: ApiEnv, cp_id: str, version: str = "2.0.1"):
        self.env, self.cp_id, self.version = env, cp_id, version

    async def __aenter__(self):
        self.ws = await connect(self.env.ocpp_url, self.cp_id, self.version)
        self.cp = charger_class(self.version)(self.cp_id, self.ws)
        self.task = asyncio.create_task(self.cp.start())
        await self.cp.boot()
        return self.cp

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await self.ws.close()


# --------------------------------------------------------------------- reservations
async def test_reservation_on_a_16_charger(api: ApiEnv):
    await api.register("CP16")
    await api.register("OFF1")
    async with Online16(api, "CP16") as cp:
        expiry = future()
        r = await api.post("/reservations", {"charge_point_id": "CP16", "connector_id": 1, "id_tag": "TAG1",
                                             "expiry_date": expiry})
        assert r.status_code == 201, r.text
        res = r.json()
        rid = res["id"]
        assert res["status"] == "Accepted" and res["active"] and res["created_by"] == "test-operator"
        assert res["connector_id"] == 1 and res["id_tag"] == "TAG1"
        action, payload = cp.received[-1]
        assert action == "ReserveNow"
        assert payload["reservation_id"] == rid and payload["connector_id"] == 1 and payload["id_tag"] == "TAG1"
        log = await api.pool.fetchrow("SELECT * FROM command_log WHERE id=$1", res["command_id"])
        assert log["command"] == "reserve-now" and log["outcome"] == "answered"
        assert log["payload"]["reservationId"] == rid and log["response"] == {"status": "Accepted"}

        # a second one, cancelled
        r = await api.post("/reservations", {"charge_point_id": "CP16", "connector_id": 2, "id_tag": "TAG2",
                                             "expiry_date": future(2)})
        rid2 = r.json()["id"]
        assert rid2 != rid
        r = await api.delete(f"/reservations/{rid2}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "Cancelled" and not r.json()["active"] and r.json()["cancel_command_id"]
        assert cp.received[-1] == ("CancelReservation", {"reservation_id": rid2})
        r = await api.delete(f"/reservations/{rid2}")  # not Accepted any more
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"

        # list filters
        page = (await api.get("/reservations", params={"charger": "CP16"})).json()
        assert page["total"] == 2 and [i["id"] for i in page["items"]] == [rid2, rid]
        page = (await api.get("/reservations", params={"status": "Cancelled"})).json()
        assert [i["id"] for i in page["items"]] == [rid2]
        page = (await api.get("/reservations", params={"active": "true"})).json()
        assert [i["id"] for i in page["items"]] == [rid]
        page = (await api.get("/reservations", params={"active": "false", "limit": 1})).json()
        assert page["total"] == 1 and page["limit"] == 1 and page["items"][0]["id"] == rid2
        assert (await api.get("/reservations", params={"charger": "NOPE"})).json()["total"] == 0
        assert (await api.get(f"/reservations/{rid}")).json()["status"] == "Accepted"

        # refusals store nothing
        before = await counts(api)
        r = await api.post("/reservations", {"charge_point_id": "NOPE", "id_tag": "T", "expiry_date": future()})
        assert r.status_code == 404, r.text
        r = await api.post("/reservations", {"charge_point_id": "OFF1", "id_tag": "T", "expiry_date": future()})
        assert r.status_code == 409 and r.json()["error"]["code"] == "charger_offline"
        r = await api.post("/reservations", {"charge_point_id": "CP16", "id_tag": "T", "expiry_date": future(-1)})
        assert r.status_code == 422 and "future" in r.json()["error"]["message"]
        r = await api.post("/reservations", {"charge_point_id": "CP16", "id_tag": "X" * 25, "expiry_date": future()})
        assert r.status_code == 422, r.text  # 1.6 idTag ≤ 20
        r = await api.post("/reservations", {"charge_point_id": "CP16", "id_tag": "T", "expiry_date": future(),
                                             "extra": 1})
        assert r.status_code == 422
        r = await api.post("/reservations", {"charge_point_id": "CP16", "id_tag": "T", "expiry_date": future()},
                           role="bureau")
        assert r.status_code == 403
        assert await counts(api) == before
        assert (await api.get("/reservations/999999")).status_code == 404
        assert (await api.delete("/reservations/999999")).status_code == 404
        assert (await api.get("/reservations/0")).status_code == 422

        # the charger starts a transaction on the reservation: Used
        started = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=0,
                                                        timestamp=now_iso(), reservation_id=rid))
        res = (await api.get(f"/reservations/{rid}")).json()
        assert res["status"] == "Used" and not res["active"]
        assert res["session_id"] == await api.pool.fetchval(
            "SELECT id FROM sessions WHERE transaction_id=$1", str(started.transaction_id))
        r = await api.delete(f"/reservations/{rid}", role="admin")
        assert r.status_code == 409


async def test_reservation_on_a_201_charger(api: ApiEnv):
    await api.register("CP201")
    async with Online2x(api, "CP201") as cp:
        r = await api.post("/reservations", {"charge_point_id": "CP201", "connector_id": 1, "id_tag": "TAG1",
                                             "expiry_date": future()}, role="admin")
        assert r.status_code == 201, r.text
        res = r.json()
        assert res["status"] == "Accepted" and res["created_by"] == "test-admin"
        action, payload = cp.received[-1]
        assert action == "ReserveNow"
        assert payload["id"] == res["id"] and payload["evse_id"] == 1
        assert payload["id_token"] == {"id_token": "TAG1", "type": "ISO14443"}
        r = await api.delete(f"/reservations/{res['id']}")
        assert r.status_code == 200 and r.json()["status"] == "Cancelled"
        assert cp.received[-1] == ("CancelReservation", {"reservation_id": res["id"]})

        # the charger reports another one expired (ReservationStatusUpdate)
        r = await api.post("/reservations", {"charge_point_id": "CP201", "id_tag": "TAG2", "expiry_date": future()})
        rid = r.json()["id"]
        await cp.call(cp._call.ReservationStatusUpdate(reservation_id=rid, reservation_update_status="Expired"))
        assert (await api.get(f"/reservations/{rid}")).json()["status"] == "Expired"
        assert (await api.get("/reservations", params={"status": "Expired"})).json()["total"] == 1

        # a transaction started on a reservation (TransactionEvent.reservationId): Used
        r = await api.post("/reservations", {"charge_point_id": "CP201", "connector_id": 1, "id_tag": "TAG3",
                                             "expiry_date": future()})
        rid = r.json()["id"]
        await cp.call(cp._call.TransactionEvent(
            event_type="Started", timestamp=datetime.now(timezone.utc).isoformat(), trigger_reason="Authorized",
            seq_no=0, transaction_info={"transaction_id": "tx-res"}, reservation_id=rid,
            evse={"id": 1, "connector_id": 1}, id_token={"id_token": "TAG3", "type": "ISO14443"}))
        res = (await api.get(f"/reservations/{rid}")).json()
        assert res["status"] == "Used" and not res["active"]


# --------------------------------------------------------------------- charging profiles
PROFILE = {
    "name": "Max 16A", "description": "evening limit", "purpose": "TxDefaultProfile", "stack_level": 1,
    "kind": "Absolute",
    "schedule": {"chargingRateUnit": "A", "duration": 3600, "startSchedule": "2030-01-01T18:00:00Z",
                 "periods": [{"startPeriod": 0, "limit": 16, "numberPhases": 3}, {"startPeriod": 1800, "limit": 8}]},
}


async def test_profile_crud_and_validation(api: ApiEnv):
    r = await api.post("/charging-profiles", PROFILE)
    assert r.status_code == 201, r.text
    p = r.json()
    pid = p["id"]
    assert r.headers["location"].endswith(f"/charging-profiles/{pid}")
    assert p["schedule"] == PROFILE["schedule"] | {"startSchedule": "2030-01-01T18:00:00Z"}
    assert p["active_assignments"] == 0 and p["purpose"] == "TxDefaultProfile"

    before = await counts(api)
    bad_schedules = [
        {"chargingRateUnit": "kW", "periods": [{"startPeriod": 0, "limit": 1}]},
        {"chargingRateUnit": "A", "periods": [{"startPeriod": 10, "limit": 1}]},
        {"chargingRateUnit": "A", "periods": [{"startPeriod": 0, "limit": 1}, {"startPeriod": 0, "limit": 2}]},
        {"chargingRateUnit": "A", "periods": [{"startPeriod": 0, "limit": 1}, {"startPeriod": 600, "limit": 2},
                                              {"startPeriod": 300, "limit": 2}]},
        {"chargingRateUnit": "W", "periods": [{"startPeriod": 0, "limit": -1}]},
        {"chargingRateUnit": "W", "periods": []},
    ]
    for schedule in bad_schedules:
        r = await api.post("/charging-profiles", {**PROFILE, "name": "bad", "schedule": schedule})
        assert r.status_code == 422, (schedule, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    for change in ({"purpose": "Nope"}, {"kind": "Recurring"}, {"recurrency": "Daily"},
                   {"valid_from": "2030-01-02T00:00:00Z", "valid_to": "2030-01-01T00:00:00Z"}, {"name": ""}):
        r = await api.post("/charging-profiles", {**PROFILE, "name": "bad", **change})
        assert r.status_code == 422, (change, r.text)
    r = await api.post("/charging-profiles", PROFILE)
    assert r.status_code == 409
    r = await api.post("/charging-profiles", {**PROFILE, "name": "x"}, role="bureau")
    assert r.status_code == 403
    assert await counts(api) == before

    r = await api.post("/charging-profiles", {**PROFILE, "name": "Site max", "purpose": "ChargePointMaxProfile",
                                              "kind": "Recurring", "recurrency": "Daily"})
    assert r.status_code == 201, r.text
    pid2 = r.json()["id"]
    page = (await api.get("/charging-profiles")).json()
    assert page["total"] == 2 and [i["name"] for i in page["items"]] == ["Max 16A", "Site max"]
    page = (await api.get("/charging-profiles", params={"purpose": "ChargePointMaxProfile"})).json()
    assert [i["id"] for i in page["items"]] == [pid2]
    assert (await api.get("/charging-profiles", params={"q": "16a"})).json()["total"] == 1

    # replace
    r = await api.client.put(f"/api/v1/charging-profiles/{pid}", headers=api.auth(),
                             json={**PROFILE, "stack_level": 2, "description": None})
    assert r.status_code == 200, r.text
    assert r.json()["stack_level"] == 2 and r.json()["description"] is None
    r = await api.client.put(f"/api/v1/charging-profiles/{pid}", headers=api.auth(), json={**PROFILE, "name": "Site max"})
    assert r.status_code == 409
    r = await api.client.put("/api/v1/charging-profiles/99999", headers=api.auth(), json=PROFILE)
    assert r.status_code == 404
    assert (await api.get(f"/charging-profiles/{pid}")).json()["stack_level"] == 2
    assert (await api.get("/charging-profiles/99999")).status_code == 404

    assert (await api.delete(f"/charging-profiles/{pid2}")).status_code == 204
    assert (await api.delete(f"/charging-profiles/{pid2}")).status_code == 404
    assert (await api.get("/charging-profiles/99999/assignments")).status_code == 404


async def test_apply_and_clear_profiles(api: ApiEnv):
    await api.register("CP16")
    await api.register("CP201")
    await api.register("OFF1")
    pid = (await api.post("/charging-profiles", PROFILE)).json()["id"]
    async with Online16(api, "CP16") as cp16, Online2x(api, "CP201") as cp2:
        r = await api.post(f"/charging-profiles/{pid}/apply", {"charge_point_id": "CP16", "connector_id": 1})
        assert r.status_code == 200, r.text
        a16 = r.json()
        assert a16["status"] == "Accepted" and a16["charge_point_id"] == "CP16" and a16["connector_id"] == 1
        action, payload = cp16.received[-1]
        assert action == "SetChargingProfile" and payload["connector_id"] == 1
        prof = payload["cs_charging_profiles"]
        assert prof["charging_profile_id"] == pid and prof["stack_level"] == 1
        assert prof["charging_profile_purpose"] == "TxDefaultProfile" and prof["charging_profile_kind"] == "Absolute"
        sched = prof["charging_schedule"]
        assert sched["charging_rate_unit"] == "A" and sched["duration"] == 3600
        assert sched["charging_schedule_period"] == [{"start_period": 0, "limit": 16, "number_phases": 3},
                                                     {"start_period": 1800, "limit": 8}]
        log = await api.pool.fetchrow("SELECT * FROM command_log WHERE id=$1", a16["command_id"])
        assert log["command"] == "set-charging-profile" and log["outcome"] == "answered"

        r = await api.post(f"/charging-profiles/{pid}/apply", {"charge_point_id": "CP201", "connector_id": 1})
        assert r.status_code == 200, r.text
        action, payload = cp2.received[-1]
        assert action == "SetChargingProfile" and payload["evse_id"] == 1
        prof = payload["charging_profile"]
        assert prof["id"] == pid and prof["charging_profile_purpose"] == "TxDefaultProfile"
        sched = prof["charging_schedule"]
        assert isinstance(sched, list) and sched[0]["charging_rate_unit"] == "A"
        assert sched[0]["charging_schedule_period"][1] == {"start_period": 1800, "limit": 8}

        page = (await api.get(f"/charging-profiles/{pid}/assignments")).json()
        assert page["total"] == 2 and {i["charge_point_id"] for i in page["items"]} == {"CP16", "CP201"}
        assert (await api.get(f"/charging-profiles/{pid}")).json()["active_assignments"] == 2
        r = await api.delete(f"/charging-profiles/{pid}")
        assert r.status_code == 409  # installed on chargers

        before = await counts(api)
        r = await api.post(f"/charging-profiles/{pid}/apply", {"charge_point_id": "OFF1"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "charger_offline"
        r = await api.post(f"/charging-profiles/{pid}/apply", {"charge_point_id": "NOPE"})
        assert r.status_code == 404
        r = await api.post("/charging-profiles/99999/apply", {"charge_point_id": "CP16"})
        assert r.status_code == 404
        assert await counts(api) == before

        r = await api.post(f"/charging-profiles/{pid}/clear", {"charge_point_id": "CP16"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "Accepted" and r.json()["cleared"] == 1
        assert cp16.received[-1] == ("ClearChargingProfile", {"id": pid})
        r = await api.post(f"/charging-profiles/{pid}/clear", {"charge_point_id": "CP201", "connector_id": 1})
        assert r.json()["cleared"] == 1
        action, payload = cp2.received[-1]
        assert action == "ClearChargingProfile" and payload["charging_profile_id"] == pid

        page = (await api.get(f"/charging-profiles/{pid}/assignments", params={"active": "true"})).json()
        assert page["total"] == 0
        page = (await api.get(f"/charging-profiles/{pid}/assignments", params={"charger": "CP16"})).json()
        assert page["total"] == 1 and page["items"][0]["cleared_at"] and page["items"][0]["clear_command_id"]
        assert (await api.delete(f"/charging-profiles/{pid}")).status_code == 204
