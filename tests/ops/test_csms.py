"""The OCPP central system against real websocket charge points (ocpp library clients).

One van (V0) at one 10 kW, 240 V single-phase port (C0) from 18:00 to 06:00 needs 10 kWh. With
the two-period test tariff (off-peak 21–16 h at $0.10, on-peak 16–21 h at $0.30; $10/kW all
hours, $5/kW on-peak) the optimal plan is worked out by hand in
``tests/test_optimal_strategy.py::test_hand_computed_single_vehicle``: nothing on-peak, then
10 kWh / 9 h = 1.1111 kW from 21:00 to 06:00. Its TxProfile is therefore, in W with one
decimal (OCPP 1.6 §7.14): 0.0 W from the 18:00 step, 1111.1 W from 21:00 (10 800 s), for 12 h.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ocpp import v16, v21, v201
from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.headers import build_authorization_basic

from fleetcharge.ops.clock import Clock
from fleetcharge.ops.csms import iso_utc
from fleetcharge.ops.serve import DepotServer
from fleetcharge.ops.store import Store
from fleetcharge.strategies.rolling import replan
from tests.conftest import build_scenario, until
from tests.test_optimal_strategy import two_period_tariff

TZ = "America/Los_Angeles"
START = pd.Timestamp("2025-03-03 18:00", tz=TZ)
PASSWORD = "correct-horse-battery-staple"
VERSIONS = ("1.6", "2.0.1", "2.1")
SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
HAND_PERIODS = [(0, 0.0), (10_800, 1111.1)]
"""The hand-computed TxProfile of the module docstring: (startPeriod s, limit W)."""


def one_van(energy_kwh: float = 10.0, vans: int = 1):
    """V0..: 18:00–06:00, ``energy_kwh`` each, on 10 kW single-phase 240 V ports C0.."""
    return build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", energy_kwh, 10.0)] * vans,
                          tariff=two_period_tariff())


@asynccontextmanager
async def depot_server(db_url: str, scenario, *, planner=replan, ids=("C0",),
                       start: pd.Timestamp = START, **options: Any
                       ) -> AsyncIterator[DepotServer]:
    """A running depot (websockets + REST on free ports) with ``ids`` registered.

    On exit the store is closed only after every store call still running in a worker thread
    (of a cancelled task) has returned: the loop's default executor is shut down first.
    """
    store = await asyncio.to_thread(Store.open, db_url)
    for cp_id in ids:
        await asyncio.to_thread(store.add_charge_point, cp_id, PASSWORD)
    options.setdefault("debounce_s", 0.05)
    # the hand-computed profiles of these tests plan up to the departure itself
    options.setdefault("departure_guard", pd.Timedelta(0))
    try:
        async with DepotServer(scenario, store, Clock(start), ocpp_host="127.0.0.1",
                               ocpp_port=0, http_host="127.0.0.1", http_port=0,
                               planner=planner, **options) as server:
            yield server
    finally:
        await asyncio.get_running_loop().shutdown_default_executor()
        store.close()


def ws_url(server: DepotServer, cp_id: str = "C0", scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.ocpp_port}/{cp_id}"


def auth(cp_id: str = "C0", password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": build_authorization_basic(cp_id, password)}


# --- test charge points: answer the server, record what it sends -----------------------------


class _Recording:
    """Profiles received (wire format, limits as floats) and a composite that echoes the
    TxProfile (a station whose TxProfile lies below its max profile reports exactly it)."""

    profiles: list[dict]
    clock: Clock
    now: Callable[[], str]

    def tx_profiles(self) -> list[dict]:
        return [p for p in self.profiles if self._profile(p)["chargingProfilePurpose"]
                == "TxProfile"]

    @staticmethod
    def _profile(payload: dict) -> dict:
        return payload.get("csChargingProfiles") or payload["chargingProfile"]

    @staticmethod
    def schedule(payload: dict) -> dict:
        profile = _Recording._profile(payload)
        schedule = profile["chargingSchedule"]
        return schedule if isinstance(schedule, dict) else schedule[0]

    def record(self, payload: dict) -> None:
        self.profiles.append(json.loads(json.dumps(payload, default=float)))


class CP16(_Recording, v16.ChargePoint):
    version = "1.6"

    def __init__(self, cp_id: str, ws: ClientConnection, clock: Clock) -> None:
        super().__init__(cp_id, ws)
        self.profiles, self.clock = [], clock
        self.tx_id: int | None = None

    def now(self) -> str:
        return iso_utc(self.clock.now())

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        values = {"ChargingScheduleAllowedChargingRateUnit": "Current,Power",
                  "ChargingScheduleMaxPeriods": "24"}
        return v16.call_result.GetConfiguration(configuration_key=[
            {"key": k, "readonly": True, "value": values[k]} for k in key or values])

    @on("SetChargingProfile")
    def on_set_profile(self, connector_id: int, cs_charging_profiles: dict, **_: Any) -> Any:
        self.record(snake_to_camel_case({"connector_id": connector_id,
                                         "cs_charging_profiles": cs_charging_profiles}))
        return v16.call_result.SetChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_composite(self, connector_id: int, duration: int, **_: Any) -> Any:
        schedule = self.schedule(self.tx_profiles()[-1])
        return v16.call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id,
            schedule_start=schedule["startSchedule"], charging_schedule={
                "duration": duration, "start_schedule": schedule["startSchedule"],
                "charging_rate_unit": schedule["chargingRateUnit"],
                "charging_schedule_period": [
                    {"start_period": p["startPeriod"], "limit": p["limit"],
                     "number_phases": p["numberPhases"]}
                    for p in schedule["chargingSchedulePeriod"]]})

    async def boot(self) -> None:
        await self.call(v16.call.BootNotification(charge_point_model="Test-16",
                                                  charge_point_vendor="fleetcharge-tests"),
                        suppress=False)

    async def status(self, status: str) -> None:
        await self.call(v16.call.StatusNotification(
            connector_id=1, error_code="NoError", status=status, timestamp=self.now()),
            suppress=False)

    async def start_tx(self, vehicle: str, meter_wh: int) -> str:
        result = await self.call(v16.call.StartTransaction(
            connector_id=1, id_tag=vehicle, meter_start=meter_wh, timestamp=self.now()),
            suppress=False)
        self.tx_id = result.transaction_id
        return str(result.transaction_id)

    async def needs(self, departure: pd.Timestamp, energy_wh: float) -> None:
        raise NotImplementedError("OCPP 1.6 has no NotifyEVChargingNeeds")

    async def meter(self, *, energy_wh: float, power_w: float, soc_percent: float | None = None,
                    unit_kwh: bool = False) -> None:
        values = [{"value": f"{energy_wh / 1000 if unit_kwh else energy_wh:g}",
                   "measurand": "Energy.Active.Import.Register",
                   "unit": "kWh" if unit_kwh else "Wh"},
                  {"value": f"{power_w:g}", "measurand": "Power.Active.Import", "unit": "W"}]
        if soc_percent is not None:
            values.append({"value": f"{soc_percent:g}", "measurand": "SoC", "unit": "Percent",
                           "location": "EV"})
        await self.call(v16.call.MeterValues(connector_id=1, transaction_id=self.tx_id,
                                             meter_value=[{"timestamp": self.now(),
                                                           "sampled_value": values}]),
                        suppress=False)

    async def stop_tx(self, meter_wh: int) -> None:
        await self.call(v16.call.StopTransaction(meter_stop=meter_wh, timestamp=self.now(),
                                                 transaction_id=self.tx_id,
                                                 reason="EVDisconnected"), suppress=False)


class _CP2x(_Recording):
    version: str
    _call: Any
    _call_result: Any

    def __init__(self, cp_id: str, ws: ClientConnection, clock: Clock) -> None:
        super().__init__(cp_id, ws)  # type: ignore[call-arg]
        self.profiles, self.clock = [], clock
        self.tx_id = "tx-0001"
        self.seq = 0

    def now(self) -> str:
        return iso_utc(self.clock.now())

    async def _ask(self, message: Any) -> Any:
        return await self.call(message, suppress=False)  # type: ignore[attr-defined]

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict], **_: Any) -> Any:
        values = {"RateUnit": "A,W", "PeriodsPerSchedule": "24"}
        return self._call_result.GetVariables(get_variable_result=[
            {"attribute_status": "Accepted", "attribute_value": values[d["variable"]["name"]],
             "component": d["component"], "variable": d["variable"]}
            for d in get_variable_data])

    @on("SetChargingProfile")
    def on_set_profile(self, evse_id: int, charging_profile: dict, **_: Any) -> Any:
        self.record(snake_to_camel_case({"evse_id": evse_id,
                                         "charging_profile": charging_profile}))
        return self._call_result.SetChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_composite(self, duration: int, evse_id: int, **_: Any) -> Any:
        schedule = self.schedule(self.tx_profiles()[-1])
        return self._call_result.GetCompositeSchedule(status="Accepted", schedule={
            "evse_id": evse_id, "duration": duration,
            "schedule_start": schedule["startSchedule"],
            "charging_rate_unit": schedule["chargingRateUnit"],
            "charging_schedule_period": [
                {"start_period": p["startPeriod"], "limit": p["limit"],
                 "number_phases": p["numberPhases"]}
                for p in schedule["chargingSchedulePeriod"]]})

    async def boot(self) -> None:
        await self._ask(self._call.BootNotification(
            charging_station={"vendor_name": "fleetcharge-tests", "model": f"Test-{self.version}"},
            reason="PowerUp"))

    async def status(self, status: str) -> None:
        await self._ask(self._call.StatusNotification(
            timestamp=self.now(), connector_status=status, evse_id=1, connector_id=1))

    def _event(self, event_type: str, trigger: str, **extra: Any) -> Any:
        self.seq += 1
        return self._call.TransactionEvent(
            event_type=event_type, timestamp=self.now(), trigger_reason=trigger,
            seq_no=self.seq, transaction_info={"transaction_id": self.tx_id}, **extra)

    async def start_tx(self, vehicle: str, meter_wh: int) -> str:
        await self._ask(self._event(
            "Started", "Authorized", evse={"id": 1, "connector_id": 1},
            id_token={"id_token": vehicle, "type": "Central"},
            meter_value=[{"timestamp": self.now(), "sampled_value": [
                {"value": float(meter_wh), "measurand": "Energy.Active.Import.Register",
                 "context": "Transaction.Begin"}]}]))
        return self.tx_id

    async def needs(self, departure: pd.Timestamp, energy_wh: float) -> None:
        result = await self._ask(self._call.NotifyEVChargingNeeds(evse_id=1, charging_needs={
            "requested_energy_transfer": "AC_single_phase", "departure_time": iso_utc(departure),
            "ac_charging_parameters": {"energy_amount": energy_wh, "ev_min_current": 6,
                                       "ev_max_current": 32, "ev_max_voltage": 240}}))
        assert result.status == "Accepted"

    async def meter(self, *, energy_wh: float, power_w: float, soc_percent: float | None = None,
                    unit_kwh: bool = False) -> None:
        values = [{"value": energy_wh / 1000 if unit_kwh else energy_wh,
                   "measurand": "Energy.Active.Import.Register",
                   "unit_of_measure": {"unit": "Wh", "multiplier": 3 if unit_kwh else 0}},
                  {"value": power_w, "measurand": "Power.Active.Import"}]
        if soc_percent is not None:
            values.append({"value": soc_percent, "measurand": "SoC", "location": "EV",
                           "unit_of_measure": {"unit": "Percent"}})
        await self._ask(self._event("Updated", "MeterValuePeriodic", meter_value=[
            {"timestamp": self.now(), "sampled_value": values}]))

    async def stop_tx(self, meter_wh: int) -> None:
        end = {"value": float(meter_wh), "measurand": "Energy.Active.Import.Register",
               "context": "Transaction.End"}
        await self._ask(self._event("Ended", "EVCommunicationLost", meter_value=[
            {"timestamp": self.now(), "sampled_value": [end]}]))


class CP201(_CP2x, v201.ChargePoint):
    version = "2.0.1"


class CP21(_CP2x, v21.ChargePoint):
    version = "2.1"


CLIENTS = {"1.6": CP16, "2.0.1": CP201, "2.1": CP21}


@asynccontextmanager
async def station(server: DepotServer, version: str, cp_id: str = "C0",
                  **connect_options: Any) -> AsyncIterator[Any]:
    """A connected test charge point of ``version`` (closed on exit)."""
    connect_options.setdefault("uri", ws_url(server, cp_id))
    async with connect(connect_options.pop("uri"), subprotocols=[SUBPROTOCOL[version]],
                       additional_headers=auth(cp_id), **connect_options) as ws:
        cp = CLIENTS[version](cp_id, ws, server.depot.clock)
        reader = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def plugged_in_and_planned(server: DepotServer, cp: Any, vehicle_id: str = "V0") -> None:
    """Boot ``cp``, start ``vehicle_id``'s transaction at meter 0 and wait for the re-plan and
    the composite schedule it reads back."""
    depot = server.depot
    await cp.boot()
    await cp.start_tx(vehicle_id, meter_wh=0)
    await until(lambda: not depot.busy and depot.last is not None and depot.last.answers,
                "a plan and its composite")


def tx_periods(payload: dict) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["limit"])
            for p in _Recording.schedule(payload)["chargingSchedulePeriod"]]


# --- tests ----------------------------------------------------------------------------------


async def _full_transaction(db_url: str, version: str) -> None:
    async with depot_server(db_url, one_van()) as server, station(server, version) as cp:
        store = server.depot.store
        await cp.boot()
        await until(lambda: len(cp.profiles) >= 2, "TxDefault and max profiles")
        default, maximum = cp.profiles[:2]
        max_purpose = "ChargePointMaxProfile" if version == "1.6" else "ChargingStationMaxProfile"
        assert [cp._profile(p)["chargingProfilePurpose"] for p in (default, maximum)] == [
            "TxDefaultProfile", max_purpose]
        # full power (10 kW) in W, since the station allows W (preferred, conventions)
        assert tx_periods(default) == [(0, 10_000.0)]
        assert tx_periods(maximum) == [(0, 10_000.0)]
        assert cp._profile(default)["stackLevel"] == 0
        record = await asyncio.to_thread(store.charge_point, "C0")
        assert (record.ocpp_version, record.rate_units, record.max_periods) == (version, "A,W", 24)

        await cp.status("Occupied" if version != "1.6" else "Preparing")
        tx_id = await cp.start_tx("V0", meter_wh=1_000)
        tx = await asyncio.to_thread(store.transaction, "C0", tx_id)
        assert (tx.vehicle_id, tx.needs_source, tx.energy_needed_kwh) == ("V0", "scenario", 10.0)
        assert tx.departure_at == pd.Timestamp("2025-03-04 06:00", tz=TZ)
        if version != "1.6":
            await cp.needs(pd.Timestamp("2025-03-04 06:00", tz=TZ), 10_000)
        await cp.meter(energy_wh=1_000, power_w=0, soc_percent=75, unit_kwh=True)
        await until(lambda: cp.tx_profiles(), "a TxProfile")

        profile = cp.tx_profiles()[-1]
        body = cp._profile(profile)
        assert tx_periods(profile) == HAND_PERIODS
        schedule = cp.schedule(profile)
        assert schedule["startSchedule"] == "2025-03-04T02:00:00Z"  # the 18:00 step (PST)
        assert schedule["duration"] == 12 * 3600
        assert (body["stackLevel"], body["chargingProfileKind"]) == (1, "Absolute")
        assert body["transactionId"] == (int(tx_id) if version == "1.6" else tx_id)
        assert body[("chargingProfileId" if version == "1.6" else "id")] == 1000 + tx.id

        await until(lambda: not server.depot.busy and server.depot.last is not None
                    and server.depot.last.answers, "the composite schedule")
        rows = await asyncio.to_thread(store.profiles, "C0")
        assert [r["purpose"] for r in rows][:2] == ["TxDefaultProfile", max_purpose]
        assert all(r["status"] == "Accepted" for r in rows)
        assert rows[-1]["purpose"] == "TxProfile" and rows[-1]["composite"] is not None

        meter = await asyncio.to_thread(store.meter_values, "C0")
        by_measurand = meter.groupby("measurand")["value"].last()
        assert by_measurand["Energy.Active.Import.Register"] == 1_000.0  # 1 kWh sent
        assert by_measurand["SoC"] == 75.0
        assert (meter["ocpp_tx_id"] == tx_id).all()

        await cp.stop_tx(meter_wh=1_500)
        tx = await asyncio.to_thread(store.transaction, "C0", tx_id)
        assert tx.stopped_at is not None and tx.meter_stop_wh == 1_500.0
        assert await asyncio.to_thread(store.open_transactions) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_each_version_boots_transacts_and_gets_the_planned_profile(version, tmp_path):
    asyncio.run(_full_transaction(f"sqlite:///{tmp_path / 'depot.db'}", version))


def test_full_transaction_on_both_databases(db_url):
    asyncio.run(_full_transaction(db_url, "1.6"))


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_notify_ev_charging_needs_sets_departure_and_energy(version, tmp_path):
    # The EV says: leave at 05:00 with 9 kWh. Off-peak 21:00–05:00 is 8 h: 9/8 kW = 1125.0 W.
    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van()) as server, \
                station(server, version) as cp:
            await cp.boot()
            tx_id = await cp.start_tx("V0", meter_wh=0)
            await cp.needs(pd.Timestamp("2025-03-04 05:00", tz=TZ), 9_000)
            tx = await asyncio.to_thread(server.depot.store.transaction, "C0", tx_id)
            assert tx.departure_at == pd.Timestamp("2025-03-04 05:00", tz=TZ)
            assert (tx.energy_needed_kwh, tx.needs_source) == (9.0, "NotifyEVChargingNeeds")
            await until(lambda: cp.tx_profiles()
                        and tx_periods(cp.tx_profiles()[-1]) == [(0, 0.0), (10_800, 1125.0)],
                        "a TxProfile for 9 kWh by 05:00")
            assert cp.schedule(cp.tx_profiles()[-1])["duration"] == 11 * 3600

    asyncio.run(scenario())


def test_rejected_handshakes_are_logged(tmp_path):
    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van(),
                                ids=("C0", "X9")) as server:
            attempts = [  # (id, password, subprotocol, expected HTTP status)
                ("C0", "guess-1234", "ocpp1.6", 401),
                ("C7", PASSWORD, "ocpp1.6", 401),      # not registered
                ("X9", PASSWORD, "ocpp1.6", 403),      # registered, not a charger of the depot
                ("C0", PASSWORD, "ocpp1.5", 400),      # no acceptable subprotocol
            ]
            for cp_id, password, subprotocol, status in attempts:
                with pytest.raises(InvalidStatus, match=f"HTTP {status}"):
                    async with connect(ws_url(server, cp_id), subprotocols=[subprotocol],
                                       additional_headers=auth(cp_id, password)):
                        pass
            with pytest.raises(InvalidStatus, match="HTTP 401"):  # no credentials at all
                async with connect(ws_url(server), subprotocols=["ocpp1.6"]):
                    pass
            events = await asyncio.to_thread(server.depot.store.security_events)
            assert [(e["cp_id"], e["kind"]) for e in events] == [
                ("C0", "auth_failed"), ("C7", "auth_failed"), ("X9", "unknown_charger"),
                ("C0", "bad_subprotocol"), ("C0", "auth_failed")]
            assert all(e["remote"] == "127.0.0.1" for e in events)
            assert not any(PASSWORD in e["detail"] or "guess-1234" in e["detail"]
                           for e in events)

    asyncio.run(scenario())


def test_repeated_auth_failures_are_throttled(tmp_path):
    async def attempt(server: DepotServer, cp_id: str, password: str) -> int:
        try:
            async with connect(ws_url(server, cp_id), subprotocols=["ocpp1.6"],
                               additional_headers=auth(cp_id, password)):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van(vans=2),
                                ids=("C0", "C1"), auth_failures=3, auth_window_s=60,
                                auth_backoff_s=1.0) as server:
            assert [await attempt(server, "C0", "guess") for _ in range(3)] == [401] * 3
            # backing off: even the right password, and other ids from the same address
            assert await attempt(server, "C0", PASSWORD) == 429
            assert await attempt(server, "C1", PASSWORD) == 429
            await asyncio.sleep(1.1)
            assert await attempt(server, "C0", PASSWORD) == 101
            kinds = [e["kind"] for e in await asyncio.to_thread(
                server.depot.store.security_events)]
            assert kinds == ["auth_failed"] * 3 + ["auth_throttled"] * 2

    asyncio.run(scenario())


def test_oversize_frame_is_refused_and_logged(tmp_path):
    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van()) as server:
            async with connect(ws_url(server), subprotocols=["ocpp1.6"],
                               additional_headers=auth(), max_size=None) as ws:
                await ws.send(json.dumps([2, "big", "DataTransfer",
                                          {"vendorId": "x", "data": "x" * 70_000}]))
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd.code == 1009  # message too big (RFC 6455 §7.4.1)
            store = server.depot.store
            await until(lambda: any(e["kind"] == "oversize_frame"
                                    for e in store.security_events()), "the log entry")

    asyncio.run(scenario())


def test_invalid_and_unhandled_messages_get_answers(tmp_path):
    async def exchange(ws: ClientConnection, frame: list) -> list:
        await ws.send(json.dumps(frame))
        return json.loads(await ws.recv())

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van()) as server:
            async with connect(ws_url(server), subprotocols=["ocpp1.6"],
                               additional_headers=auth()) as ws:
                # chargePointModel is required (1.6 BootNotification.req schema)
                answer = await exchange(ws, [2, "m1", "BootNotification",
                                             {"chargePointVendor": "x"}])
                assert answer[:2] == [4, "m1"]
                assert answer[2] in ("ProtocolError", "OccurenceConstraintViolation",
                                     "OccurrenceConstraintViolation")
                # not an OCPP-J frame: nothing to answer (no message id), but logged
                await ws.send("this is not JSON")
                # the connection stays usable
                answer = await exchange(ws, [2, "m2", "Heartbeat", {}])
                assert answer[:2] == [3, "m2"] and "currentTime" in answer[2]
            async with connect(ws_url(server), subprotocols=["ocpp2.1"],
                               additional_headers=auth()) as ws:
                # a station-side 2.1 action the server has no use for: CALLERROR, not silence
                answer = await exchange(ws, [2, "m3", "AFRRSignal",
                                             {"timestamp": "2025-03-04T02:00:00Z", "signal": 1}])
                assert answer[:3] == [4, "m3", "NotSupported"]
                # not an OCPP action at all (OCPP-J: NotImplemented)
                answer = await exchange(ws, [2, "m5", "MakeCoffee", {}])
                assert answer[:3] == [4, "m5", "NotImplemented"]
                # a notification the server acknowledges
                answer = await exchange(ws, [2, "m4", "SecurityEventNotification",
                                             {"type": "StartupOfTheDevice",
                                              "timestamp": "2025-03-04T02:00:00Z"}])
                assert answer == [3, "m4", {}]
            events = await asyncio.to_thread(server.depot.store.security_events)
            invalid = [e for e in events if e["kind"] in ("invalid_message", "malformed_frame")]
            assert [(e["kind"], e["detail"].split(":")[0]) for e in invalid] == [
                ("invalid_message", "BootNotification"),
                ("malformed_frame", "FormatViolationError")]
            assert invalid[0]["detail"].startswith("BootNotification: ProtocolError")

    asyncio.run(scenario())


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_security_profile_2(tmp_path):
    import ssl

    from fleetcharge.ops.csms import server_ssl_context

    cert, key = _self_signed(tmp_path)

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van(),
                                ssl_context=server_ssl_context(str(cert), str(key))) as server:
            trusting = ssl.create_default_context(cafile=str(cert))
            async with station(server, "2.0.1", uri=ws_url(server, scheme="wss"),
                               ssl=trusting) as cp:
                assert cp._call_result is v201.call_result
                await cp.boot()
                await until(lambda: len(cp.profiles) >= 2, "profiles over TLS")
                assert cp._connection.transport.get_extra_info("ssl_object").version() in (
                    "TLSv1.2", "TLSv1.3")
            with pytest.raises(ssl.SSLCertVerificationError, match="self-signed"):
                async with connect(ws_url(server, scheme="wss"), subprotocols=["ocpp2.0.1"],
                                   additional_headers=auth(),
                                   ssl=ssl.create_default_context()):
                    pass

    asyncio.run(scenario())
