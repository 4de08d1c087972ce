"""Operator commands over the HTTP API against real simulated chargers: every command, every outcome."""

from __future__ import annotations

import asyncio
import time

from csms.simulator import connect
from csms.simulator_v2x import charger_class

from .api_helpers import ApiEnv, Online16, api, raw_charger  # noqa: F401 - fixture
from .conftest import wait_for
from .test_api_command_mapping import EXAMPLES, ONLY_2X, ONLY_16

ACTION_16 = {"remote-start": "RemoteStartTransaction", "remote-stop": "RemoteStopTransaction",
             "get-diagnostics": "GetDiagnostics"}
ACTION_2X = {"remote-start": "RequestStartTransaction", "remote-stop": "RequestStopTransaction",
             "get-diagnostics": "GetLog"}


def action_name(command: str, version: str) -> str:
    table = ACTION_16 if version == "1.6" else ACTION_2X
    return table.get(command) or "".join(p.capitalize() for p in command.split("-"))


async def audit(env: ApiEnv, cp_id: str) -> list[dict]:
    return [dict(r) for r in await env.pool.fetch(
        "SELECT * FROM command_log WHERE charge_point_id=$1 ORDER BY id", cp_id)]


async def test_every_command_reaches_a_16_charger_and_is_audited(api: ApiEnv):
    await api.register("CP16")
    async with Online16(api, "CP16") as cp:
        for name, body in EXAMPLES + ONLY_16:
            r = await api.command("CP16", name, body)
            assert r.status_code == 200, (name, r.text)
            result = r.json()
            expected = action_name(name, "1.6")
            assert result["action"] == expected and result["ocpp_version"] == "1.6"
            assert result["outcome"] == "answered" and result["node_id"] == api.app.settings.node_id
            assert cp.received[-1][0] == expected, name
        # the charger's answer is the response
        r = await api.command("CP16", "get-configuration", {"keys": ["HeartbeatInterval", "Nope"]})
        assert r.json()["response"] == {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False,
                                                              "value": "120"}], "unknownKey": ["Nope"]}
        r = await api.command("CP16", "data-transfer", {"vendor_id": "v"})
        assert r.json()["response"] == {"status": "Accepted", "data": "pong"}
        r = await api.command("CP16", "get-diagnostics", {"location": "ftp://h/p"})
        assert r.json()["response"] == {"fileName": "CP16-diagnostics.log"}
    rows = await audit(api, "CP16")
    assert len(rows) == len(EXAMPLES) + len(ONLY_16) + 3
    assert {r["outcome"] for r in rows} == {"answered"}
    first = rows[0]
    assert first["command"] == "remote-start" and first["action"] == "RemoteStartTransaction"
    assert first["request"] == {"id_tag": "TAG1", "connector_id": 1}
    assert first["payload"] == {"connectorId": 1, "idTag": "TAG1"}
    assert first["response"] == {"status": "Accepted"}
    assert first["token_name"] == "test-operator" and first["api_node_id"] == api.app.settings.node_id
    assert first["duration_ms"] > 0 and first["finished_at"] >= first["requested_at"]
    # ... and readable through the API
    r = await api.get("/commands", params={"charger": "CP16", "command": "reset", "limit": 1})
    page = r.json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["action"] == "Reset"
    r = await api.get(f"/commands/{first['id']}")
    assert r.json()["response"] == {"status": "Accepted"}


async def test_commands_on_2x_chargers(api: ApiEnv):
    for version in ("2.0.1", "2.1"):
        cp_id = "CP" + version.replace(".", "")
        await api.register(cp_id)
        ws = await connect(api.ocpp_url, cp_id, version)
        cp = charger_class(version)(cp_id, ws)
        task = asyncio.create_task(cp.start())
        try:
            await cp.boot()
            for name, body in EXAMPLES + ONLY_2X:
                r = await api.command(cp_id, name, body)
                expected = action_name(name, version)
                if name == "get-composite-schedule":  # the 2.x simulator has no handler: CALLERROR
                    assert r.status_code == 502, r.text
                    assert r.json()["error"]["code"] == "charger_error"
                    assert "NotImplemented" in r.json()["error"]["message"]
                    continue
                assert r.status_code == 200, (version, name, r.text)
                assert r.json()["action"] == expected and r.json()["ocpp_version"] == version
                assert cp.received[-1][0] == expected
            reset = [p for a, p in cp.received if a == "Reset"]
            assert reset[0] == {"type": "OnIdle"} and reset[1] == {"type": "Immediate"}
            # 1.6-only commands are refused for this version, and nothing is sent or recorded
            before = await api.counts()
            for name, body in ONLY_16:
                r = await api.command(cp_id, name, body)
                assert r.status_code == 422, r.text
                assert r.json()["error"]["code"] == "unsupported_for_version"
            assert await api.counts() == before
        finally:
            task.cancel()
            await ws.close()
    outcomes = await api.pool.fetch("SELECT outcome, count(*) FROM command_log GROUP BY 1 ORDER BY 1")
    assert {r["outcome"]: r["count"] for r in outcomes} == {
        "answered": 2 * (len(EXAMPLES) + len(ONLY_2X) - 1), "call_error": 2}


async def test_2x_only_commands_refused_for_16(api: ApiEnv):
    await api.register("CP16")
    async with Online16(api, "CP16") as cp:
        before = await api.counts()
        r = await api.command("CP16", "get-variables", {"variables": [{"component": "C", "variable": "V"}]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_for_version"
        assert "OCPP 1.6" in r.json()["error"]["message"]
        r = await api.command("CP16", "remote-stop", {"transaction_id": "not-a-number"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_for_version"
        r = await api.command("CP16", "remote-start", {"id_tag": "X" * 25})  # 1.6 idTag ≤ 20
        assert r.status_code == 422 and "RemoteStartTransaction" in r.json()["error"]["message"]
        assert await api.counts() == before
        assert cp.received == []


async def test_invalid_command_body_is_422_and_changes_nothing(api: ApiEnv):
    await api.register("CP16")
    async with Online16(api, "CP16") as cp:
        before = await api.counts()
        for name, body in [("reset", {"type": "medium"}), ("reset", {"type": "soft", "extra": 1}),
                           ("remote-start", {}), ("change-availability", {"type": "Operative", "connector_id": -1}),
                           ("reserve-now", {"reservation_id": 1, "id_tag": "T", "expiry": "yesterday"}),
                           ("data-transfer", {"vendor_id": "v", "data": 2 ** 80})]:
            r = await api.command("CP16", name, body)
            assert r.status_code == 422, (name, r.text)
            err = r.json()["error"]
            assert err["code"] == "validation_error" and err["details"], err
        r = await api.client.post("/api/v1/chargers/CP16/commands/reset", content=b"{not json",
                                  headers={**api.auth(), "Content-Type": "application/json"})
        assert r.status_code == 422
        r = await api.command("CP16", "no-such-command", {})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await api.command("CP16", "reset", {}, params={"timeout": 0})
        assert r.status_code == 422
        assert await api.counts() == before
        assert cp.received == []


async def test_unknown_charger_is_404_and_offline_charger_409_recorded(api: ApiEnv):
    r = await api.command("NOPE", "reset", {"type": "soft"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert await api.pool.fetchval("SELECT count(*) FROM command_log") == 0

    await api.register("CP1")
    r = await api.command("CP1", "reset", {"type": "hard"})  # never connected
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "charger_offline" and "offline" in err["message"] and "CP1" in err["message"]
    assert err["details"][0]["outcome"] == "offline"
    async with Online16(api, "CP1"):
        assert (await api.command("CP1", "reset", {"type": "hard"})).status_code == 200
    await wait_for(lambda: "CP1" not in api.app.gateway.connections)
    r = await api.command("CP1", "clear-cache")  # no body needed
    assert r.status_code == 409
    rows = await audit(api, "CP1")
    assert [r["outcome"] for r in rows] == ["offline", "answered", "offline"]
    assert rows[0]["action"] is None and rows[2]["action"] == "ClearCache"
    assert all(r["error"] for r in (rows[0], rows[2]))


async def test_charger_that_never_answers_gives_504_recorded_as_timeout(api: ApiEnv):
    api.app.settings.command_timeout = 0.5  # the configurable default
    await api.register("MUTE")
    raw = await raw_charger(api, "MUTE")
    try:
        await wait_for(lambda: "MUTE" in api.app.gateway.connections)
        started = time.monotonic()
        r = await api.command("MUTE", "reset", {"type": "soft"})
        took = time.monotonic() - started
        assert r.status_code == 504, r.text
        assert r.json()["error"]["code"] == "charger_timeout"
        assert 0.5 <= took < 3
        frame = await asyncio.wait_for(raw.calls.get(), 1)
        assert frame[2] == "Reset" and frame[3] == {"type": "Soft"}
        # a per-request timeout overrides the default
        r = await api.command("MUTE", "clear-cache", params={"timeout": 0.2})
        assert r.status_code == 504
        rows = await audit(api, "MUTE")
        assert [r["outcome"] for r in rows] == ["timeout", "timeout"]
        assert rows[0]["duration_ms"] >= 500 and "did not answer" in rows[0]["error"]
        assert rows[0]["response"] is None
    finally:
        await raw.close()


async def test_callerror_answer_gives_502_with_the_error(api: ApiEnv):
    await api.register("RAW")
    raw = await raw_charger(api, "RAW")
    try:
        await wait_for(lambda: "RAW" in api.app.gateway.connections)

        async def charger():
            frame = await raw.calls.get()
            await raw.error(frame, "NotSupported", "no resets here")

        task = asyncio.create_task(charger())
        r = await api.command("RAW", "reset", {"type": "soft"})
        await task
        assert r.status_code == 502
        err = r.json()["error"]
        assert err["code"] == "charger_error" and "NotSupported" in err["message"]
        assert err["details"][0]["response"]["errorCode"] == "NotSupported"
        row = (await audit(api, "RAW"))[0]
        assert row["outcome"] == "call_error" and row["response"]["errorDescription"] == "no resets here"
    finally:
        await raw.close()


async def test_concurrent_commands_to_one_charger_are_queued_not_failed(api: ApiEnv):
    await api.register("Q")
    raw = await raw_charger(api, "Q")
    answered: list[str] = []
    outstanding = {"max": 0}
    try:
        await wait_for(lambda: "Q" in api.app.gateway.connections)

        async def charger():
            for _ in range(6):
                frame = await raw.calls.get()
                await asyncio.sleep(0.05)  # while this one is open, no other call may arrive
                outstanding["max"] = max(outstanding["max"], 1 + raw.calls.qsize())
                answered.append(frame[3].get("key", frame[2]))
                await raw.answer(frame, {"status": "Accepted"})

        task = asyncio.create_task(charger())
        results = await asyncio.gather(*(api.command("Q", "change-configuration", {"key": f"K{i}", "value": "1"})
                                         for i in range(6)))
        await task
        assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
        assert outstanding["max"] == 1
        assert sorted(answered) == [f"K{i}" for i in range(6)]
        assert {r["outcome"] for r in await audit(api, "Q")} == {"answered"}
    finally:
        await raw.close()


async def test_charger_calling_while_answering_does_not_deadlock(api: ApiEnv):
    """The charger sends its own CALL (and waits for the CSMS's answer) before answering ours."""
    await api.register("TALK")
    raw = await raw_charger(api, "TALK")
    try:
        await wait_for(lambda: "TALK" in api.app.gateway.connections)

        async def charger():
            frame = await raw.calls.get()
            boot = await raw.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
            status = await raw.call("StatusNotification", {"connectorId": 1, "status": "Unavailable",
                                                           "errorCode": "NoError"})
            assert boot[0] == 3 and status[0] == 3
            await raw.answer(frame, {"status": "Accepted"})

        task = asyncio.create_task(charger())
        r = await asyncio.wait_for(api.command("TALK", "change-availability", {"type": "Inoperative",
                                                                               "connector_id": 1}), 10)
        await task
        assert r.status_code == 200 and r.json()["response"] == {"status": "Accepted"}
        r = await api.get("/chargers/TALK")
        assert r.json()["connectors"][0]["status"] == "Unavailable"
    finally:
        await raw.close()


async def test_send_local_list_from_the_id_tag_table(api: ApiEnv):
    await api.register("CP16")
    for tag, status in [("AAA", "Accepted"), ("BBB", "Blocked")]:
        assert (await api.post("/id-tags", {"id_tag": tag, "status": status})).status_code == 201
    async with Online16(api, "CP16") as cp:
        r = await api.command("CP16", "send-local-list", {"list_version": 2, "from_database": True})
        assert r.status_code == 200, r.text
        action, payload = cp.received[-1]
        assert action == "SendLocalList" and payload["list_version"] == 2
        assert payload["local_authorization_list"] == [
            {"id_tag": "AAA", "id_tag_info": {"status": "Accepted"}},
            {"id_tag": "BBB", "id_tag_info": {"status": "Blocked"}}]
        r = await api.command("CP16", "get-local-list-version")
        assert r.json()["response"] == {"listVersion": 2}


async def test_bureau_may_not_send_commands(api: ApiEnv):
    await api.register("CP16")
    r = await api.post("/chargers/CP16/commands/reset", {"type": "soft"}, role="bureau")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await api.get("/commands", role="bureau")
    assert r.status_code == 403
    assert await api.pool.fetchval("SELECT count(*) FROM command_log") == 0
