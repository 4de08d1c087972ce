"""A load-generating process for the benchmark: N charger connections speaking OCPP-J.

Run by ``bench/run.py`` in several processes at once. The messages are the ones
``csms simulate`` sends, pre-serialised, so that the load generator's own CPU
stays small next to the server's on a 2-core machine (the ``ocpp`` library's
client validates every message with jsonschema, which would make the client,
not the server, the bottleneck). Prints one JSON line with its results.

Modes:
* ``throughput`` — every connection sends MeterValues back to back (closed loop).
* ``rate`` — every connection sends one MeterValues every ``interval`` seconds.
* ``idle`` — connect, boot, then stay idle until ``duration`` has passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import datetime, timezone

import orjson
import websockets

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Client:
    def __init__(self, ws, version: str):
        self.ws, self.version, self.n = ws, version, 0

    async def call(self, action: str, payload: dict) -> dict:
        self.n += 1
        uid = str(self.n)
        return await self.send_frame(uid, action, orjson.dumps([2, uid, action, payload]).decode())

    async def send_frame(self, uid: str, action: str, frame: str) -> dict:
        await self.ws.send(frame)
        while True:
            reply = orjson.loads(await self.ws.recv())
            if reply[1] == uid:
                if reply[0] != 3:
                    raise RuntimeError(f"{action}: {reply}")
                return reply[2]


async def prepare(url: str, cp_id: str, version: str):
    ws = await websockets.connect(f"{url}/{cp_id}", subprotocols=[SUBPROTOCOL[version]], ping_interval=None,
                                  open_timeout=60, compression=None)
    c = Client(ws, version)
    if version == "1.6":
        await c.call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "B1"})
    else:
        await c.call("BootNotification", {"reason": "PowerUp",
                                          "chargingStation": {"vendorName": "Bench", "model": "B1"}})
    return c


async def start_tx(c: Client, meter: int) -> str:
    if c.version == "1.6":
        r = await c.call("StartTransaction", {"connectorId": 1, "idTag": "BENCH", "meterStart": meter,
                                              "timestamp": now_iso()})
        return r["transactionId"]
    tx = f"tx-{random.getrandbits(48):x}"
    await c.call("TransactionEvent", {
        "eventType": "Started", "timestamp": now_iso(), "triggerReason": "Authorized", "seqNo": 0,
        "transactionInfo": {"transactionId": tx}, "idToken": {"idToken": "BENCH", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": now_iso(), "sampledValue": [
            {"value": meter, "measurand": "Energy.Active.Import.Register", "context": "Transaction.Begin"}]}]})
    return tx


def meter_frame(version: str, uid: str, tx, meter: int, seq: int) -> str:
    """The MeterValues (1.6) or TransactionEvent(Updated) (2.x) frame, as text.

    Built with an f-string rather than by serialising nested dicts, so that the load
    generator's own CPU cost stays small for both versions and does not skew the comparison.
    """
    ts = now_iso()
    if version == "1.6":
        return (f'[2,"{uid}","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"{ts}",'
                f'"sampledValue":[{{"value":"{meter}","measurand":"Energy.Active.Import.Register","unit":"Wh",'
                f'"context":"Sample.Periodic"}}]}}]}}]')
    return (f'[2,"{uid}","TransactionEvent",{{"eventType":"Updated","timestamp":"{ts}",'
            f'"triggerReason":"MeterValuePeriodic","seqNo":{seq},"transactionInfo":{{"transactionId":"{tx}",'
            f'"chargingState":"Charging"}},"meterValue":[{{"timestamp":"{ts}","sampledValue":[{{"value":{meter},'
            f'"measurand":"Energy.Active.Import.Register","context":"Sample.Periodic"}}]}}]}}]')


async def worker(args, cp_id: str, latencies: list[float], errors: list[str], ready: asyncio.Event,
                 go: asyncio.Event, end: list[float]) -> None:
    try:
        c = await prepare(args.url, cp_id, args.ocpp)
        meter = random.randint(0, 1_000_000)
        tx = await start_tx(c, meter) if args.mode != "idle" else None
    except Exception as exc:  # noqa: BLE001
        errors.append(f"{cp_id}: {exc!r}")
        return
    finally:
        ready.set()
    await go.wait()
    seq = 1
    try:
        if args.mode == "idle":
            await asyncio.sleep(args.duration)
            return
        next_at = time.perf_counter() + random.random() * args.interval
        while time.perf_counter() < end[0]:
            if args.mode == "rate":
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += args.interval
            meter += 10
            c.n += 1
            uid = str(c.n)
            frame = meter_frame(args.ocpp, uid, tx, meter, seq)
            seq += 1
            t0 = time.perf_counter()
            await c.send_frame(uid, "meter values", frame)
            latencies.append(time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001
        errors.append(f"{cp_id}: {exc!r}")
    finally:
        await c.ws.close()


async def main(args) -> None:
    ids = [f"{args.prefix}{i:05d}" for i in range(args.first, args.first + args.count)]
    latencies: list[float] = []
    errors: list[str] = []
    go = asyncio.Event()
    end = [0.0]
    events = [asyncio.Event() for _ in ids]
    tasks = []
    sem = asyncio.Semaphore(50)  # connect at most 50 at a time

    async def spawn(i, cp_id):
        async with sem:
            t = asyncio.create_task(worker(args, cp_id, latencies, errors, events[i], go, end))
            tasks.append(t)
            await events[i].wait()

    await asyncio.gather(*(spawn(i, cp) for i, cp in enumerate(ids)))
    print(json.dumps({"ready": len(ids) - len(errors)}), flush=True)
    # Wait for the coordinator's start signal on stdin, so all processes start together.
    await asyncio.get_running_loop().run_in_executor(None, input)
    end[0] = time.perf_counter() + args.duration
    started, cpu = time.perf_counter(), time.process_time()
    go.set()
    await asyncio.gather(*tasks)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"count": len(latencies), "elapsed": elapsed, "cpu_s": cpu, "latencies": latencies,
                      "errors": errors[:10], "error_count": len(errors)}), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", default="B")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--mode", choices=["throughput", "rate", "idle"], default="throughput")
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--ocpp", default="1.6")
    asyncio.run(main(p.parse_args()))
