"""Simulated chargers built on the ``ocpp`` library's ChargePoint.

Used by ``csms simulate``, the demo, the tests and the benchmark. Each charger
boots, reports its connectors, authorizes an id tag, runs sessions with
periodic MeterValues (energy register rising at the simulated power), stops,
and now and then reports a fault and recovers. It also answers the common
CSMS-initiated calls so that operator commands can be tested against it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl as ssl_module
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

__all__ = ["SimulatorConfig", "Charger16", "run_simulation", "connect", "now_iso"]

log = logging.getLogger("csms.simulator")


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class SimulatorConfig:
    url: str
    ids: list[str]
    version: str = "1.6"
    sessions: int = 1
    meter_interval: float = 1.0
    samples: int = 5
    id_tag: str = "SIMTAG"
    password: str | None = None
    fault_rate: float = 0.05
    power_w: float = 7400.0
    connectors: int = 1
    seed: int | None = None
    ssl: ssl_module.SSLContext | None = None  # for wss:// (profiles 2 and 3: the CA, and a client certificate)


SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}


def client_tls(ca_file: str | None, cert_file: str | None = None, key_file: str | None = None
               ) -> ssl_module.SSLContext:
    """A charger's TLS context: trust *ca_file* (else the system's CAs), present *cert_file* if given."""
    ctx = ssl_module.create_default_context(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


async def connect(url: str, cp_id: str, version: str = "1.6", password: str | None = None, **kwargs: Any):
    """Open a websocket to the CSMS as charger *cp_id* (HTTP Basic auth when *password* is given)."""
    headers = {}
    if password is not None:
        token = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return await websockets.connect(f"{url}/{cp_id}", subprotocols=[SUBPROTOCOL[version]],
                                    additional_headers=headers, open_timeout=20, ping_interval=None, **kwargs)


class Charger16(ChargePoint16):
    """An OCPP 1.6 charger: the library's ChargePoint plus a meter and a scripted session."""

    def __init__(self, cp_id: str, ws, config: SimulatorConfig | None = None) -> None:
        super().__init__(cp_id, ws, response_timeout=30)
        self.config = config or SimulatorConfig(url="", ids=[cp_id])
        self.meter_wh = random.Random(cp_id).randint(0, 10_000_000)
        self.transaction_id: int | None = None
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.availability = "Operative"
        self.configuration = {"HeartbeatInterval": "300", "MeterValueSampleInterval": "60"}

    # -------------------------------------------------- charger-initiated
    async def boot(self) -> Any:
        return await self.call(call16.BootNotification(
            charge_point_vendor="CSMS-Sim", charge_point_model="Sim-AC7", charge_point_serial_number=self.id,
            firmware_version="1.0.0", meter_type="SimMeter"))

    async def status(self, connector_id: int, status: str, error_code: str = "NoError", **kw: Any) -> Any:
        return await self.call(call16.StatusNotification(
            connector_id=connector_id, error_code=error_code, status=status, timestamp=now_iso(), **kw))

    async def available(self) -> None:
        """Report every connector, and the charger itself (connector 0), Available."""
        for c in range(0, self.config.connectors + 1):
            await self.status(c, "Available")

    async def fault(self, connector_id: int, pause: float) -> None:
        """A ground failure on *connector_id*, cleared after *pause* seconds."""
        await self.status(connector_id, "Faulted", "GroundFailure", vendor_error_code="E42")
        await asyncio.sleep(pause)
        await self.status(connector_id, "Available")

    async def charge(self, connector_id: int = 1, samples: int = 5, interval: float = 1.0,
                     id_tag: str | None = None) -> dict[str, Any]:
        """One session; returns what the charger measured (for checking against the CSMS)."""
        tag = id_tag or self.config.id_tag
        auth = await self.call(call16.Authorize(id_tag=tag))
        await self.status(connector_id, "Preparing")
        start_wh = self.meter_wh
        started = await self.call(call16.StartTransaction(
            connector_id=connector_id, id_tag=tag, meter_start=start_wh, timestamp=now_iso()))
        self.transaction_id = started.transaction_id
        await self.status(connector_id, "Charging")
        step = int(self.config.power_w * interval / 3600) or 1
        for _ in range(samples):
            await asyncio.sleep(interval)
            self.meter_wh += step
            await self.call(call16.MeterValues(
                connector_id=connector_id, transaction_id=self.transaction_id,
                meter_value=[{"timestamp": now_iso(), "sampledValue": [
                    {"value": str(self.meter_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                     "context": "Sample.Periodic", "location": "Outlet"},
                    {"value": f"{self.config.power_w:.0f}", "measurand": "Power.Active.Import", "unit": "W"},
                ]}]))
        await self.call(call16.StopTransaction(
            meter_stop=self.meter_wh, timestamp=now_iso(), transaction_id=self.transaction_id,
            reason="EVDisconnected", id_tag=tag))
        await self.status(connector_id, "Finishing")
        await self.status(connector_id, "Available")
        tx, self.transaction_id = self.transaction_id, None
        return {"transaction_id": tx, "meter_start": start_wh, "meter_stop": self.meter_wh,
                "energy_wh": self.meter_wh - start_wh, "auth": auth.id_tag_info["status"]}

    # -------------------------------------------------- CSMS-initiated
    def _got(self, action: str, **payload: Any) -> None:
        self.received.append((action, payload))

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, **kw: Any):
        self._got("RemoteStartTransaction", id_tag=id_tag, **kw)
        return result16.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int, **kw: Any):
        self._got("RemoteStopTransaction", transaction_id=transaction_id)
        return result16.RemoteStopTransaction(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str, **kw: Any):  # noqa: A002 - OCPP field name
        self._got("Reset", type=type)
        return result16.Reset(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, connector_id: int, **kw: Any):
        self._got("UnlockConnector", connector_id=connector_id)
        return result16.UnlockConnector(status="Unlocked")

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **kw: Any):  # noqa: A002
        self._got("ChangeAvailability", connector_id=connector_id, type=type)
        self.availability = type
        return result16.ChangeAvailability(status="Accepted")

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **kw: Any):
        self._got("GetConfiguration", key=key)
        keys = key or list(self.configuration)
        known = [{"key": k, "readonly": False, "value": self.configuration[k]} for k in keys if k in self.configuration]
        unknown = [k for k in keys if k not in self.configuration]
        return result16.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **kw: Any):
        self._got("ChangeConfiguration", key=key, value=value)
        self.configuration[key] = value
        return result16.ChangeConfiguration(status="Accepted")

    @on("ClearCache")
    def on_clear_cache(self, **kw: Any):
        self._got("ClearCache")
        return result16.ClearCache(status="Accepted")

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, **kw: Any):
        self._got("TriggerMessage", requested_message=requested_message, **kw)
        return result16.TriggerMessage(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kw: Any):
        self._got("DataTransfer", vendor_id=vendor_id, **kw)
        return result16.DataTransfer(status="Accepted", data="pong")

    @on("ReserveNow")
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int, **kw: Any):
        self._got("ReserveNow", connector_id=connector_id, expiry_date=expiry_date, id_tag=id_tag,
                  reservation_id=reservation_id, **kw)
        return result16.ReserveNow(status="Accepted")

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int, **kw: Any):
        self._got("CancelReservation", reservation_id=reservation_id)
        return result16.CancelReservation(status="Accepted")

    @on("SetChargingProfile")
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict, **kw: Any):
        self._got("SetChargingProfile", connector_id=connector_id, cs_charging_profiles=cs_charging_profiles)
        return result16.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **kw: Any):
        self._got("ClearChargingProfile", **kw)
        return result16.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, connector_id: int, duration: int, **kw: Any):
        self._got("GetCompositeSchedule", connector_id=connector_id, duration=duration, **kw)
        return result16.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=now_iso(),
            charging_schedule={"duration": duration, "chargingRateUnit": kw.get("charging_rate_unit", "A"),
                               "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}]})

    @on("SendLocalList")
    def on_send_local_list(self, list_version: int, update_type: str, **kw: Any):
        self._got("SendLocalList", list_version=list_version, update_type=update_type, **kw)
        self.local_list_version = list_version
        return result16.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **kw: Any):
        self._got("GetLocalListVersion")
        return result16.GetLocalListVersion(list_version=getattr(self, "local_list_version", 0))

    @on("UpdateFirmware")
    def on_update_firmware(self, location: str, retrieve_date: str, **kw: Any):
        self._got("UpdateFirmware", location=location, retrieve_date=retrieve_date, **kw)
        return result16.UpdateFirmware()

    @on("GetDiagnostics")
    def on_get_diagnostics(self, location: str, **kw: Any):
        self._got("GetDiagnostics", location=location, **kw)
        return result16.GetDiagnostics(file_name=f"{self.id}-diagnostics.log")


def _charger_class(version: str) -> type:
    if version == "1.6":
        return Charger16
    from .simulator_v2x import charger_class  # noqa: PLC0415 - only when asked for

    return charger_class(version)


async def _run_one(config: SimulatorConfig, cp_id: str, rng: random.Random, results: dict[str, Any]) -> None:
    """Run one charger through *config*'s sessions, adding them (and its faults) to *results*."""
    tls = {"ssl": config.ssl} if config.ssl is not None else {}  # None would mean "no TLS" to websockets
    async with await connect(config.url, cp_id, config.version, config.password, **tls) as ws:
        cp = _charger_class(config.version)(cp_id, ws, config)
        listener = asyncio.create_task(cp.start())
        try:
            await cp.boot()
            await cp.available()
            n = 0
            while config.sessions == 0 or n < config.sessions:
                outcome = await cp.charge(1, config.samples, config.meter_interval, config.id_tag)
                results["sessions"].append({"charge_point_id": cp_id, **outcome})
                n += 1
                if rng.random() < config.fault_rate:
                    await cp.fault(1, config.meter_interval)
                    results["faults"] += 1
        finally:
            listener.cancel()


async def run_simulation(config: SimulatorConfig) -> dict[str, Any]:
    """Run every charger of *config*; return a summary (sessions with measured energy, failures)."""
    rng = random.Random(config.seed)
    results: dict[str, Any] = {"sessions": [], "faults": 0, "failed_chargers": []}

    async def guarded(cp_id: str) -> None:
        try:
            await _run_one(config, cp_id, rng, results)
        except Exception as exc:  # noqa: BLE001 - report, keep the others running
            log.error("charger failed: %r", exc, extra={"charge_point_id": cp_id})
            results["failed_chargers"].append({"charge_point_id": cp_id, "error": repr(exc)})

    await asyncio.gather(*(guarded(i) for i in config.ids))
    results["energy_wh"] = sum(s["energy_wh"] for s in results["sessions"])
    return results

