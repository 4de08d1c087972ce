"""The reference central system: written as the ``ocpp`` library's README shows.

Library-default validation, no persistence. The benchmark drives the same load
against it and against our CSMS and prints the ratio. Run:
``python bench/reference_csms.py PORT``.
"""

import asyncio
import sys
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as cp
from ocpp.v16 import call_result
from ocpp.v16.enums import RegistrationStatus


class ChargePoint(cp):
    @on("BootNotification")
    def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kwargs):
        return call_result.BootNotification(
            current_time=datetime.now(timezone.utc).isoformat(), interval=10, status=RegistrationStatus.accepted)

    @on("Heartbeat")
    def on_heartbeat(self, **kwargs):
        return call_result.Heartbeat(current_time=datetime.now(timezone.utc).isoformat())

    @on("StatusNotification")
    def on_status(self, **kwargs):
        return call_result.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_tag: str, **kwargs):
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    def on_start(self, **kwargs):
        return call_result.StartTransaction(transaction_id=1, id_tag_info={"status": "Accepted"})

    @on("StopTransaction")
    def on_stop(self, **kwargs):
        return call_result.StopTransaction()

    @on("MeterValues")
    def on_meter_values(self, **kwargs):
        return call_result.MeterValues()


async def on_connect(websocket):
    charge_point_id = websocket.request.path.strip("/").split("/")[-1]
    charge_point = ChargePoint(charge_point_id, websocket)
    try:
        await charge_point.start()
    except websockets.ConnectionClosed:
        pass


async def main(port: int) -> None:
    server = await websockets.serve(on_connect, "127.0.0.1", port, subprotocols=["ocpp1.6"])
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
