"""Simulated OCPP 2.0.1 and 2.1 chargers built on the ``ocpp`` library (``ocpp.v201``, ``ocpp.v21``).

The scenario is the 1.6 simulator's (:mod:`csms.simulator`): boot, connector
statuses, authorize, a transaction — TransactionEvent Started, Updated with
periodic meter values, Ended — and now and then a fault (Faulted status plus a
NotifyEvent problem event, then recovery). The chargers also answer the common
CSMS-initiated calls and record what they received in ``received``, like
:class:`csms.simulator.Charger16`.

The library's 2.1 ChargePoint sends no CALLERROR for an action it has no handler
for (the caller times out); :meth:`_Charger2x._handle_call` answers
NotImplemented instead, as every version should.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.routing import after, on
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v201 import ChargePoint as ChargePoint201

from .simulator import SimulatorConfig, now_iso

__all__ = ["Charger201", "Charger21", "charger_class"]

ENERGY = "Energy.Active.Import.Register"


class _Charger2x:
    """Charger behaviour shared by 2.0.1 and 2.1; mixed into the library's ChargePoint classes."""

    _call: Any
    _call_result: Any

    def __init__(self, cp_id: str, ws, config: SimulatorConfig | None = None) -> None:
        super().__init__(cp_id, ws, response_timeout=30)  # type: ignore[call-arg]
        self.config = config or SimulatorConfig(url="", ids=[cp_id])
        self.meter_wh = random.Random(cp_id).randint(0, 10_000_000)
        self.transaction_id: str | None = None
        self.seq_no = 0
        self.event_id = 0
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.availability = "Operative"
        self.variables: dict[tuple[str, str], str] = {
            ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
            ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
            ("AuthCtrlr", "Enabled"): "true",
            ("ChargingStation", "Model"): "Sim-AC7",
        }

    async def _handle_call(self, msg):  # noqa: D401 - library hook
        """Answer NotImplemented for actions without a handler (the 2.1 library answers nothing)."""
        if msg.action not in self.route_map:
            raise OcppNotImplemented(details={"cause": f"No handler for {msg.action} registered."})
        return await super()._handle_call(msg)  # type: ignore[misc]

    # -------------------------------------------------- charger-initiated
    async def boot(self, reason: str = "PowerUp") -> Any:
        return await self.call(self._call.BootNotification(  # type: ignore[attr-defined]
            charging_station={"vendorName": "CSMS-Sim", "model": "Sim-AC7", "serialNumber": self.id,
                              "firmwareVersion": "1.0.0"},
            reason=reason))

    async def status(self, evse_id: int, status: str, connector_id: int = 1) -> Any:
        return await self.call(self._call.StatusNotification(  # type: ignore[attr-defined]
            timestamp=now_iso(), connector_status=status, evse_id=evse_id, connector_id=connector_id))

    async def available(self) -> None:
        """Report every EVSE Available."""
        for evse in range(1, self.config.connectors + 1):
            await self.status(evse, "Available")

    async def fault(self, evse_id: int, pause: float) -> None:
        """A tripped RCD on *evse_id* (status Faulted and a problem event), cleared after *pause* seconds."""
        await self.status(evse_id, "Faulted")
        await self.problem(evse_id, True)
        await asyncio.sleep(pause)
        await self.problem(evse_id, False)
        await self.status(evse_id, "Available")

    async def problem(self, evse_id: int, active: bool, component: str = "RCD", variable: str = "Tripped",
                      tech_code: str | None = "E42") -> Any:
        self.event_id += 1
        data = {"eventId": self.event_id, "timestamp": now_iso(), "trigger": "Delta",
                "actualValue": "true" if active else "false", "eventNotificationType": "HardWiredNotification",
                "component": {"name": component, "evse": {"id": evse_id}}, "variable": {"name": variable}}
        if tech_code:
            data["techCode"] = tech_code
        if not active:
            data["cleared"] = True
        return await self.call(self._call.NotifyEvent(  # type: ignore[attr-defined]
            generated_at=now_iso(), seq_no=0, event_data=[data]))

    def _reading(self, context: str, with_power: bool = False) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = [{"value": self.meter_wh, "measurand": ENERGY, "context": context,
                                         "location": "Outlet", "unitOfMeasure": {"unit": "Wh"}}]
        if with_power:
            values.append({"value": round(self.config.power_w), "measurand": "Power.Active.Import",
                           "context": context, "unitOfMeasure": {"unit": "W"}})
        return [{"timestamp": now_iso(), "sampledValue": values}]

    async def transaction_event(self, event_type: str, trigger: str, meter_value=None, **info: Any) -> Any:
        assert self.transaction_id is not None
        tx_info = {"transactionId": self.transaction_id}
        tx_info.update({k: v for k, v in info.pop("transaction_info", {}).items() if v is not None})
        payload = self._call.TransactionEvent(  # type: ignore[attr-defined]
            event_type=event_type, timestamp=now_iso(), trigger_reason=trigger, seq_no=self.seq_no,
            transaction_info=tx_info, meter_value=meter_value, **info)
        self.seq_no += 1
        return await self.call(payload)

    async def charge(self, evse_id: int = 1, samples: int = 5, interval: float = 1.0,
                     id_tag: str | None = None) -> dict[str, Any]:
        """One transaction; returns what the charger measured (for checking against the CSMS)."""
        tag = id_tag or self.config.id_tag
        token = {"idToken": tag, "type": "ISO14443"}
        auth = await self.call(self._call.Authorize(id_token=token))  # type: ignore[attr-defined]
        await self.status(evse_id, "Occupied")
        self.transaction_id = str(uuid.uuid4())
        self.seq_no = 0
        start_wh = self.meter_wh
        await self.transaction_event(
            "Started", "Authorized", self._reading("Transaction.Begin"), id_token=token,
            evse={"id": evse_id, "connectorId": 1}, transaction_info={"chargingState": "Charging"},
            number_of_phases_used=3)
        step = int(self.config.power_w * interval / 3600) or 1
        for _ in range(samples):
            await asyncio.sleep(interval)
            self.meter_wh += step
            await self.transaction_event("Updated", "MeterValuePeriodic", self._reading("Sample.Periodic", True),
                                         transaction_info={"chargingState": "Charging"})
        await self.transaction_event(
            "Ended", "EVDeparted", self._reading("Transaction.End"),
            transaction_info={"chargingState": "Idle", "stoppedReason": "EVDisconnected"})
        await self.status(evse_id, "Available")
        tx, self.transaction_id = self.transaction_id, None
        return {"transaction_id": tx, "meter_start": start_wh, "meter_stop": self.meter_wh,
                "energy_wh": self.meter_wh - start_wh, "auth": auth.id_token_info["status"]}

    # -------------------------------------------------- CSMS-initiated
    def _got(self, action: str, **payload: Any) -> None:
        self.received.append((action, payload))

    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict, remote_start_id: int, **kw: Any):
        self._got("RequestStartTransaction", id_token=id_token, remote_start_id=remote_start_id, **kw)
        return self._call_result.RequestStartTransaction(status="Accepted")

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **kw: Any):
        self._got("RequestStopTransaction", transaction_id=transaction_id)
        return self._call_result.RequestStopTransaction(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str, **kw: Any):  # noqa: A002 - OCPP field name
        self._got("Reset", type=type, **kw)
        return self._call_result.Reset(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, evse_id: int, connector_id: int, **kw: Any):
        self._got("UnlockConnector", evse_id=evse_id, connector_id=connector_id)
        return self._call_result.UnlockConnector(status="Unlocked")

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status: str, **kw: Any):
        self._got("ChangeAvailability", operational_status=operational_status, **kw)
        self.availability = operational_status
        return self._call_result.ChangeAvailability(status="Accepted")

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict], **kw: Any):
        self._got("GetVariables", get_variable_data=get_variable_data)
        results = []
        for item in get_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            result = {"component": item["component"], "variable": item["variable"]}
            if key in self.variables:
                result.update(attribute_status="Accepted", attribute_value=self.variables[key])
            elif any(c == key[0] for c, _ in self.variables):
                result["attribute_status"] = "UnknownVariable"
            else:
                result["attribute_status"] = "UnknownComponent"
            results.append(result)
        return self._call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict], **kw: Any):
        self._got("SetVariables", set_variable_data=set_variable_data)
        results = []
        for item in set_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            self.variables[key] = str(item["attribute_value"])
            results.append({"attribute_status": "Accepted", "component": item["component"],
                            "variable": item["variable"]})
        return self._call_result.SetVariables(set_variable_result=results)

    @on("GetBaseReport")
    def on_get_base_report(self, request_id: int, report_base: str, **kw: Any):
        self._got("GetBaseReport", request_id=request_id, report_base=report_base)
        return self._call_result.GetBaseReport(status="Accepted")

    @after("GetBaseReport")
    async def after_get_base_report(self, request_id: int, report_base: str, **kw: Any):
        await self.notify_report(request_id)

    async def notify_report(self, request_id: int) -> Any:
        data = [{"component": {"name": c}, "variable": {"name": v},
                 "variableAttribute": [{"type": "Actual", "value": value, "mutability": "ReadWrite"}],
                 "variableCharacteristics": {"dataType": "string", "supportsMonitoring": False}}
                for (c, v), value in sorted(self.variables.items())]
        for evse in range(1, self.config.connectors + 1):
            data.append({"component": {"name": "EVSE", "evse": {"id": evse}}, "variable": {"name": "Power"},
                         "variableAttribute": [{"type": "MaxSet", "value": str(round(self.config.power_w)),
                                                "mutability": "ReadOnly"}],
                         "variableCharacteristics": {"dataType": "decimal", "unit": "W",
                                                     "supportsMonitoring": True}})
        return await self.call(self._call.NotifyReport(  # type: ignore[attr-defined]
            request_id=request_id, generated_at=now_iso(), seq_no=0, report_data=data))

    @on("GetReport")
    def on_get_report(self, request_id: int, **kw: Any):
        self._got("GetReport", request_id=request_id, **kw)
        return self._call_result.GetReport(status="Accepted")

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, **kw: Any):
        self._got("TriggerMessage", requested_message=requested_message, **kw)
        supported = {"BootNotification", "Heartbeat", "StatusNotification"}
        return self._call_result.TriggerMessage(
            status="Accepted" if requested_message in supported else "NotImplemented")

    @after("TriggerMessage")
    async def after_trigger(self, requested_message: str, **kw: Any):
        if requested_message == "BootNotification":
            await self.boot("Triggered")
        elif requested_message == "Heartbeat":
            await self.call(self._call.Heartbeat())  # type: ignore[attr-defined]
        elif requested_message == "StatusNotification":
            evse = (kw.get("evse") or {}).get("id", 1)
            await self.status(evse, "Available" if self.transaction_id is None else "Occupied")

    @on("ClearCache")
    def on_clear_cache(self, **kw: Any):
        self._got("ClearCache")
        return self._call_result.ClearCache(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kw: Any):
        self._got("DataTransfer", vendor_id=vendor_id, **kw)
        return self._call_result.DataTransfer(status="Accepted", data="pong")

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, **kw: Any):
        self._got("GetTransactionStatus", **kw)
        return self._call_result.GetTransactionStatus(
            messages_in_queue=False, ongoing_indicator=self.transaction_id is not None)

    @on("ReserveNow")
    def on_reserve_now(self, id: int, expiry_date_time: str, id_token: dict, **kw: Any):  # noqa: A002
        self._got("ReserveNow", id=id, expiry_date_time=expiry_date_time, id_token=id_token, **kw)
        return self._call_result.ReserveNow(status="Accepted")

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int, **kw: Any):
        self._got("CancelReservation", reservation_id=reservation_id)
        return self._call_result.CancelReservation(status="Accepted")

    @on("SetChargingProfile")
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict, **kw: Any):
        self._got("SetChargingProfile", evse_id=evse_id, charging_profile=charging_profile)
        return self._call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **kw: Any):
        self._got("ClearChargingProfile", **kw)
        return self._call_result.ClearChargingProfile(status="Accepted")

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **kw: Any):
        self._got("GetLocalListVersion")
        return self._call_result.GetLocalListVersion(version_number=0)

    @on("SendLocalList")
    def on_send_local_list(self, version_number: int, update_type: str, **kw: Any):
        self._got("SendLocalList", version_number=version_number, update_type=update_type, **kw)
        return self._call_result.SendLocalList(status="Accepted")

    @on("GetLog")
    def on_get_log(self, log: dict, log_type: str, request_id: int, **kw: Any):
        self._got("GetLog", log=log, log_type=log_type, request_id=request_id)
        return self._call_result.GetLog(status="Rejected")

    @on("UpdateFirmware")
    def on_update_firmware(self, request_id: int, firmware: dict, **kw: Any):
        self._got("UpdateFirmware", request_id=request_id, firmware=firmware)
        return self._call_result.UpdateFirmware(status="Rejected")


class Charger201(_Charger2x, ChargePoint201):
    """An OCPP 2.0.1 charger."""


class Charger21(_Charger2x, ChargePoint21):
    """An OCPP 2.1 charger."""


def charger_class(version: str) -> type[_Charger2x]:
    if version == "2.0.1":
        return Charger201
    if version == "2.1":
        return Charger21
    raise ValueError(f"not an OCPP 2.x version: {version!r}")
