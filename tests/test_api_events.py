"""Live events: the in-process bus (bounded, drop with a marker) and the SSE endpoint, filtered by role."""

from __future__ import annotations

import asyncio
import time

from csms.eventbus import EventBus, role_filter

from .api_helpers import ApiEnv, Online16, api, sse_events  # noqa: F401 - fixture


# ----------------------------------------------------------------------------- the bus
async def test_bus_delivers_and_drops_with_a_marker_where_the_gap_is():
    bus = EventBus("n1", queue_size=3)
    sub = bus.subscribe()
    for i in range(10):
        bus.publish("status", {"charge_point_id": "CP", "n": i})
    got = [await sub.get() for _ in range(4)]
    assert [e.get("n") for e in got[:3]] == [0, 1, 2]
    assert got[3]["kind"] == "dropped" and got[3]["count"] == 7
    bus.publish("status", {"n": 10})
    assert (await sub.get())["n"] == 10
    # a gap between later events is marked at its place
    for i in range(11, 16):
        bus.publish("status", {"n": i})
    first = await sub.get()  # frees one slot: the next publish puts the marker, then its event is dropped
    bus.publish("status", {"n": 16})
    rest = [await sub.get() for _ in range(3)]
    assert first["n"] == 11 and [e.get("n") for e in rest] == [12, 13, None]
    assert rest[2] == {**rest[2], "kind": "dropped", "count": 2}
    tail = await sub.get()
    assert tail["kind"] == "dropped" and tail["count"] == 1
    assert sub.dropped_total == 10
    sub.close()
    assert await sub.get() is None


async def test_bus_never_blocks_the_publisher():
    bus = EventBus("n1", queue_size=10)
    subs = [bus.subscribe() for _ in range(50)]  # none of them reads
    started = time.perf_counter()
    for i in range(20_000):
        bus.publish("status", {"charge_point_id": "CP", "connector_id": 1, "status": "Charging", "n": i})
    assert time.perf_counter() - started < 5
    assert all(s.dropped_total == 20_000 - 10 for s in subs)
    bus.close()
    assert bus.subscribers == 0


async def test_bus_filters_and_derives_fault_events():
    bus = EventBus("n1")
    bureau = bus.subscribe(role_filter("bureau"))
    faults = bus.subscribe(role_filter("operator", kinds=["fault"]))
    one = bus.subscribe(role_filter("admin", charger="CP2"))
    bus.publish("command", {"charge_point_id": "CP1", "command": "reset"})
    bus.publish("status", {"charge_point_id": "CP1", "status": "Faulted", "error_code": "GroundFailure"})
    bus.publish("status", {"charge_point_id": "CP2", "status": "Available", "error_code": "NoError"})
    bus.close()
    assert [e["kind"] async for e in bureau] == ["status", "fault", "status"]
    assert [(e["kind"], e["charge_point_id"]) async for e in faults] == [("fault", "CP1")]
    assert [(e["kind"], e["status"]) async for e in one] == [("status", "Available")]


async def test_events_from_other_nodes_are_delivered_once():
    a, b = EventBus("a"), EventBus("b")
    sub_b = b.subscribe()
    forwarded = []
    a._forward = asyncio.Queue()  # what start_forwarding would send over NOTIFY
    a.publish("status", {"charge_point_id": "CP", "status": "Available"})
    while not a._forward.empty():
        forwarded.append(a._forward.get_nowait())
    for body in forwarded:
        b.deliver_remote(body)
        a.deliver_remote(body)  # its own event coming back is ignored
    b.close()
    events = [e async for e in sub_b]
    assert [(e["kind"], e["node_id"]) for e in events] == [("status", "a")]


# ----------------------------------------------------------------------------- SSE
async def read_until(stream, predicate, timeout: float = 5.0) -> list[dict]:
    seen = []

    async def run():
        async for ev in stream:
            seen.append(ev)
            if predicate(ev):
                return

    await asyncio.wait_for(run(), timeout)
    return seen


async def test_sse_streams_charger_session_and_command_events(api: ApiEnv):
    await api.register("CP1")
    await api.post("/id-tags", {"id_tag": "SIMTAG"})
    async with api.client.stream("GET", "/api/v1/events", headers=api.auth("operator")) as op_resp, \
            api.client.stream("GET", "/api/v1/events", headers=api.auth("bureau")) as bu_resp, \
            api.client.stream("GET", "/api/v1/events", params={"kinds": ["fault"]},
                              headers=api.auth("admin")) as fault_resp:
        assert op_resp.status_code == 200 and op_resp.headers["content-type"].startswith("text/event-stream")
        op, bu, fa = sse_events(op_resp), sse_events(bu_resp), sse_events(fault_resp)
        async with Online16(api, "CP1") as cp:
            await cp.status(1, "Available")
            await cp.charge(1, samples=1, interval=0.01)
            await cp.status(1, "Faulted", "GroundFailure")
            r = await api.command("CP1", "reset", {"type": "soft"})
            assert r.status_code == 200
        seen = await read_until(op, lambda e: e["event"] == "charger_disconnected")
        kinds = [e["event"] for e in seen]
        for kind in ("charger_connected", "status", "session_started", "session_stopped", "fault", "command",
                     "charger_disconnected"):
            assert kind in kinds, (kind, kinds)
        command = next(e["data"] for e in seen if e["event"] == "command")
        assert command["charge_point_id"] == "CP1" and command["outcome"] == "answered"
        assert command["token_name"] == "test-operator" and command["node_id"] == api.app.settings.node_id
        status = next(e["data"] for e in seen if e["event"] == "status")
        assert status["charge_point_id"] == "CP1" and status["connector_id"] == 1 and status["status"]
        bureau_seen = await read_until(bu, lambda e: e["event"] == "charger_disconnected")
        assert "command" not in [e["event"] for e in bureau_seen]
        assert "session_started" in [e["event"] for e in bureau_seen]
        fault = await read_until(fa, lambda e: True)
        assert [e["event"] for e in fault] == ["fault"] and fault[0]["data"]["error_code"] == "GroundFailure"


async def test_sse_auth_and_bad_filters(api: ApiEnv):
    r = await api.client.get("/api/v1/events")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = await api.client.get("/api/v1/events", params={"kinds": "nonsense"}, headers=api.auth())
    assert r.status_code == 422
    r = await api.client.get("/api/v1/events", params={"kinds": "nonsense"})
    assert r.status_code == 401


async def test_slow_sse_consumer_gets_a_dropped_marker_and_never_slows_the_gateway(api: ApiEnv):
    await api.register("CP1")
    async with api.client.stream("GET", "/api/v1/events", params={"kinds": ["status"]},
                                 headers=api.auth()) as stalled, \
            api.client.stream("GET", "/api/v1/events", params={"kinds": ["status"], "charger": "BURST"},
                              headers=api.auth()) as slow:
        assert stalled.status_code == 200 and slow.status_code == 200
        await asyncio.sleep(0.1)
        # a burst far larger than a subscriber's queue (100), published without yielding
        started = time.perf_counter()
        for i in range(5000):
            api.app.bus.publish("status", {"charge_point_id": "BURST", "connector_id": 1, "status": "Available",
                                           "error_code": "NoError", "n": i, "pad": "x" * 200})
        assert time.perf_counter() - started < 2
        # the gateway keeps its pace while `stalled` is never read
        async with Online16(api, "CP1") as cp:
            started = time.perf_counter()
            for _ in range(100):
                await cp.status(1, "Available")
            assert time.perf_counter() - started < 10
        events = sse_events(slow)
        seen = await read_until(events, lambda e: e["event"] == "dropped", timeout=10)
        marker = seen[-1]["data"]
        assert 0 < len(seen) - 1 <= 100 and marker["count"] > 0
        assert [e["data"]["n"] for e in seen[:-1]] == list(range(len(seen) - 1))
        assert len(seen) - 1 + marker["count"] == 5000


async def test_sse_stream_ends_when_the_server_stops(db_url):
    from .api_helpers import start_api_env

    env = await start_api_env(db_url)
    try:
        async with env.client.stream("GET", "/api/v1/events", headers=env.auth("bureau")) as resp:
            assert resp.status_code == 200
            started = time.perf_counter()
            await asyncio.wait_for(env.app.stop(), 10)
            assert time.perf_counter() - started < 8
            lines = [line async for line in resp.aiter_lines()]
            assert ": connected" in lines
    finally:
        await env.client.aclose()
