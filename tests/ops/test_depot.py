"""The depot controller: live state, re-plan triggers, coalescing, peaks and the fail-safe."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pandas as pd
import pytest

from fleetcharge.ops.clock import Clock
from fleetcharge.ops.depot import (DepotController, billing_cycle_start, interval_kw,
                                   soc_lower_bound)
from fleetcharge.ops.store import MeterSample, Store
from fleetcharge.strategies.rolling import replan
from tests.ops.test_csms import (
    HAND_PERIODS,
    PASSWORD,
    TZ,
    depot_server,
    one_van,
    plugged_in_and_planned,
    station,
    tx_periods,
    until,
)


def at(clock_time: str) -> pd.Timestamp:
    return pd.Timestamp(f"2025-03-03 {clock_time}", tz=TZ)


def broken_planner(state, now, horizon_hours=24.0, time_limit_s=None):
    raise RuntimeError("solver crashed")


def test_planner_failure_or_timeout_keeps_charging(tmp_path):
    release = threading.Event()

    def stuck_planner(state, now, horizon_hours=24.0, time_limit_s=None):
        release.wait(10.0)
        return replan(state, now, horizon_hours, time_limit_s)

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van(),
                                planner=broken_planner, replan_timeout_s=1.0) as server, \
                station(server, "2.0.1") as cp:
            depot = server.depot
            await cp.boot()
            await cp.start_tx("V0", meter_wh=0)
            await until(lambda: depot.failures >= 2 and len(cp.profiles) >= 2, "failures")
            # no plan yet: the station keeps its boot profiles, TxDefault at full power
            assert depot.last is None and "RuntimeError: solver crashed" in depot.last_error
            assert [tx_periods(p) for p in cp.profiles] == [[(0, 10_000.0)], [(0, 10_000.0)]]

            await until(lambda: not depot.busy, "the depot to settle")
            depot.planner = stuck_planner
            failures = depot.failures
            depot.request_replan("test: stuck solver")
            await until(lambda: depot.failures > failures, "the timeout", timeout_s=5.0)
            assert "timed out after 1 s" in depot.last_error
            assert len(cp.profiles) == 2

            release.set()
            await until(lambda: not depot.busy, "the depot to settle")
            depot.planner = replan
            depot.request_replan("test: solver back")
            await until(lambda: cp.tx_profiles(), "a TxProfile from a good plan")
            await until(lambda: not depot.busy, "the depot to settle")
            assert tx_periods(cp.tx_profiles()[-1]) == HAND_PERIODS
            good, sent = depot.last, len(cp.profiles)

            depot.planner = broken_planner
            failures = depot.failures
            depot.request_replan("test: solver broken again")
            await until(lambda: depot.failures > failures, "the failure")
            await asyncio.sleep(0.2)
            assert depot.last is good and len(cp.profiles) == sent  # nothing sent, no zero

    asyncio.run(scenario())


def test_a_burst_of_requests_is_one_or_two_solves(tmp_path):
    calls: list[pd.Timestamp] = []

    def counting(state, now, **kwargs):
        calls.append(now)
        return replan(state, now, **kwargs)

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van(), planner=counting,
                                debounce_s=0.2) as server:
            await until(lambda: server.depot.replans >= 1, "the startup plan")
            calls.clear()
            for i in range(50):
                server.depot.request_replan(f"arrival {i}")
                await asyncio.sleep(0.002)
            await asyncio.sleep(1.0)
            assert 1 <= len(calls) <= 2
            assert "arrival 49" in server.depot.last.reason

    asyncio.run(scenario())


def test_meter_deviation_triggers_a_replan_once_per_interval(tmp_path):
    reasons: list[str] = []

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van()) as server, \
                station(server, "1.6") as cp:
            depot = server.depot
            await plugged_in_and_planned(server, cp)
            done = depot.replans
            # planned 0 kW until 21:00; threshold max(1 kW, 10 % of 10 kW) = 1 kW
            await cp.meter(energy_wh=0, power_w=800, soc_percent=75)
            await asyncio.sleep(0.3)
            assert depot.replans == done
            await cp.meter(energy_wh=10, power_w=5_000, soc_percent=75)
            await until(lambda: depot.replans > done, "the deviation re-plan")
            reasons.append(depot.last.reason)
            done = depot.replans
            await cp.meter(energy_wh=20, power_w=6_000, soc_percent=75)  # same interval
            await asyncio.sleep(0.3)
            assert depot.replans == done

    asyncio.run(scenario())
    assert reasons == ["C0 meters 5.0 kW, 0.0 kW planned"]


def test_fault_and_offline_replan(tmp_path):
    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van()) as server:
            depot = server.depot

            def planned() -> list[str]:
                return [s["session_id"] for s in depot.plan_summary()["sessions"]]

            async with station(server, "2.1") as cp:
                await cp.boot()
                await cp.start_tx("V0", meter_wh=0)
                await until(lambda: cp.tx_profiles(), "a TxProfile")
                assert planned() == ["V0@C0"]
                await cp.status("Faulted")
                await until(lambda: "C0 Faulted" in depot.last.reason, "the fault re-plan")
                assert planned() == []  # a vehicle on a faulted charger cannot charge
                await cp.status("Occupied")
                await until(lambda: "C0 Occupied" in depot.last.reason, "the recovery")
                assert planned() == ["V0@C0"]
            await until(lambda: "C0 offline" in depot.last.reason, "the offline re-plan")
            # it keeps charging on its last TxProfile (2.x K11), so it stays planned
            assert "C0" not in depot.stations and planned() == ["V0@C0"]

    asyncio.run(scenario())


def test_interval_kw_from_registers_hand_computed():
    # C0 samples on the boundaries: 0, 2500, 2500, 5000 Wh → 10, 0, 10 kW.
    # C1 samples at 18:05 (100 Wh) and 18:20 (2600 Wh): linear in between, flat outside:
    # E(18:00)=100, E(18:15)=100+2500·10/15, E(18:30)=2600 → 6.667 kW, 3.333 kW, 0 kW.
    rows = [("C0", "18:00", 0), ("C0", "18:15", 2500), ("C0", "18:30", 2500),
            ("C0", "18:45", 5000), ("C1", "18:05", 100), ("C1", "18:20", 2600)]
    registers = pd.DataFrame({"charge_point_id": [r[0] for r in rows], "evse_id": 1,
                              "timestamp": [at(r[1]).tz_convert("UTC") for r in rows],
                              "value": [float(r[2]) for r in rows]})
    bounds = pd.date_range(at("18:00"), at("18:45"), freq="15min").tz_convert("UTC")
    np.testing.assert_allclose(interval_kw(registers, bounds),
                               [10 + 20 / 3, 10 / 3, 10.0], rtol=1e-12)


def test_billing_cycle_start():
    tz = "America/Los_Angeles"
    now = pd.Timestamp("2025-03-15 12:00", tz=tz)
    assert billing_cycle_start(now, tz, 1) == pd.Timestamp("2025-03-01", tz=tz)
    assert billing_cycle_start(now, tz, 20) == pd.Timestamp("2025-02-20", tz=tz)
    assert billing_cycle_start(pd.Timestamp("2025-03-05", tz=tz), tz, 31) == pd.Timestamp(
        "2025-02-28", tz=tz)  # clamped to the month's length
    assert billing_cycle_start(pd.Timestamp("2025-01-10", tz=tz), tz, 15) == pd.Timestamp(
        "2024-12-15", tz=tz)


def _store(tmp_path, *ids: str) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
    for cp_id in ids:
        store.add_charge_point(cp_id, PASSWORD)
    return store


def test_month_to_date_peak_is_stored_and_passed_to_the_planner(tmp_path):
    store = _store(tmp_path, "C0", "C1")
    samples = {"C0": [("18:00", 0), ("18:15", 2500), ("18:30", 2500), ("18:45", 5000),
                      ("19:00", 5000)],
               "C1": [("18:05", 100), ("18:20", 2600)]}
    for cp_id, values in samples.items():
        store.add_meter_values(cp_id, [MeterSample(at(t), 1, None, "Energy.Active.Import.Register",
                                                   float(wh), "Wh") for t, wh in values])
    seen = []

    def capturing(state, now, **kwargs):
        seen.append(state.metered_kw)
        return replan(state, now, **kwargs)

    async def scenario() -> DepotController:
        depot = DepotController(one_van(vans=2), store, Clock(at("19:00:30")),
                                planner=capturing, debounce_s=60)
        await depot.start()
        try:
            assert await depot.replan_now("test")
            assert await depot.replan_now("test again")  # cached intervals, same series
        finally:
            await depot.stop()
        return depot

    depot = asyncio.run(scenario())
    expected = pd.Series([10 + 20 / 3, 10 / 3, 10.0, 0.0],
                         index=pd.date_range(at("18:00"), periods=4, freq="15min"))
    for metered in seen:
        np.testing.assert_allclose(metered.to_numpy(), expected.to_numpy(), rtol=1e-12)
        assert (metered.index == expected.index).all()
    peaks = store.peaks()
    assert peaks["2025-03 all hours"] == pytest.approx(10 + 20 / 3)
    # the planner takes the metered peak as a floor, not that plus its own (rolling.replan
    # floors), less the controller's margin: max(0.5 kW, 1 %) below it
    determinant = next(d for d in depot.last.plan.info["demand_determinants"]
                       if "all hours" in d["label"])
    assert determinant["billed_kw"] == pytest.approx(10 + 20 / 3 - 0.5)
    store.close()


def test_soc_and_target_from_energy_and_readings(tmp_path):
    # V0: arrival SOC 0.75 (scenario), needs 10 kWh, η = 0.9, 60 kWh usable.
    store = _store(tmp_path, "C0")
    tx = store.start_transaction("C0", evse_id=1, connector_id=1, ocpp_tx_id=None, id_tag="V0",
                                 meter_start_wh=1000.0, started_at=at("18:00"), vehicle_id="V0")
    store.set_needs("C0", tx.ocpp_tx_id, departure_at=at("23:00"), energy_needed_kwh=10.0,
                    source="scenario")
    register = "Energy.Active.Import.Register"
    store.add_meter_values("C0", [MeterSample(at("18:00"), 1, tx.ocpp_tx_id, register, 1000.0,
                                              "Wh"),
                                  MeterSample(at("18:30"), 1, tx.ocpp_tx_id, register, 4000.0,
                                              "Wh")])

    async def views():
        depot = DepotController(one_van(), store, Clock(at("18:31")), debounce_s=60)
        return (await depot.sessions())[0]

    view = asyncio.run(views())
    assert not view.soc_measured and view.delivered_kwh == pytest.approx(3.0)
    assert view.soc == pytest.approx(0.75 + 0.9 * 3 / 60)
    assert view.target_soc == pytest.approx(0.9) and view.remaining_kwh == pytest.approx(7.0)
    assert view.departure_at == at("23:00")

    store.add_meter_values("C0", [MeterSample(at("18:30"), 1, tx.ocpp_tx_id, "SoC", 80.0,
                                              "Percent")])
    view = asyncio.run(views())
    # a whole-percent reading of 80 stands for [79.5, 80.5) %: planned from 79.5 %
    assert view.soc_measured and view.soc == pytest.approx(0.795)
    assert view.target_soc == pytest.approx(0.795 + 0.9 * 7 / 60)
    assert view.remaining_kwh == pytest.approx(7.0)

    store.set_needs("C0", tx.ocpp_tx_id, target_soc=0.95, source="dispatcher")
    view = asyncio.run(views())
    assert view.target_soc == 0.95 and view.remaining_kwh == pytest.approx(0.155 * 60 / 0.9)

    store.close()


def test_request_replan_is_thread_safe(tmp_path):
    store = _store(tmp_path)

    async def scenario() -> str:
        depot = DepotController(one_van(), store, Clock(at("18:00")), debounce_s=0.05)
        await depot.start()
        try:
            await until(lambda: depot.replans >= 1, "the startup plan")
            worker = threading.Thread(target=depot.request_replan, args=("DR event 7",))
            worker.start()
            worker.join()
            await until(lambda: "DR event 7" in depot.last.reason, "the DR re-plan")
            return depot.last.reason
        finally:
            await depot.stop()

    assert asyncio.run(scenario()) == "DR event 7"
    with pytest.raises(RuntimeError, match="start\\(\\) the DepotController"):
        DepotController(one_van(), store, Clock(at("18:00"))).request_replan("too early")
    store.close()


def test_energy_already_metered_in_the_current_interval_counts(tmp_path):
    # Open transaction on C0: register 0 Wh at 19:00 and 1000 Wh at 19:05 read with 12 kW.
    # At 19:10 the register is carried to 1000 + 12 000·5/60 = 2000 Wh: 2 kWh of the 19:00
    # interval are used, i.e. 2 kWh / 0.25 h = 8 kW of its average before any new charging.
    store = _store(tmp_path, "C0")
    tx = store.start_transaction("C0", evse_id=1, connector_id=1, ocpp_tx_id=None, id_tag="V0",
                                 meter_start_wh=0.0, started_at=at("19:00"), vehicle_id="V0")
    store.set_needs("C0", tx.ocpp_tx_id, departure_at=at("23:00"), energy_needed_kwh=10.0,
                    source="scenario")
    register = "Energy.Active.Import.Register"
    store.add_meter_values("C0", [
        MeterSample(at("19:00"), 1, tx.ocpp_tx_id, register, 0.0, "Wh"),
        MeterSample(at("19:05"), 1, tx.ocpp_tx_id, register, 1000.0, "Wh"),
        MeterSample(at("19:05"), 1, tx.ocpp_tx_id, "Power.Active.Import", 12_000.0, "W")])
    forecasts = []

    def capturing(state, now, **kwargs):
        forecasts.append(state.building_forecast_kw)
        return replan(state, now, **kwargs)

    async def scenario() -> None:
        depot = DepotController(one_van(), store, Clock(at("19:10")), planner=capturing,
                                debounce_s=60)
        await depot.start()
        try:
            assert await depot.replan_now("test")
        finally:
            await depot.stop()

    asyncio.run(scenario())
    [forecast] = forecasts
    assert forecast.index[0] == at("19:00")
    assert forecast.iloc[0] == pytest.approx(8.0, rel=1e-3)  # the clock ran on a little
    assert (forecast.iloc[1:] == 0.0).all()  # no building load in this scenario
    store.close()


def test_periodic_replan_at_each_step_boundary(tmp_path):
    store = _store(tmp_path)

    async def reasons(periodic: bool) -> list[str]:
        # 60 simulated seconds to the 18:15 boundary take 0.5 s at 120× speed
        depot = DepotController(one_van(), store, Clock(at("18:14:00"), speed=120.0),
                                debounce_s=0.01, periodic=periodic)
        seen: list[str] = []
        await depot.start()
        try:
            for _ in range(150):
                await asyncio.sleep(0.01)
                if depot.last and (not seen or depot.last.made_at != seen[-1][1]):
                    seen.append((depot.last.reason, depot.last.made_at))
        finally:
            await depot.stop()
        return [(reason, made_at.strftime("%H:%M")) for reason, made_at in seen]

    assert asyncio.run(reasons(True)) == [("startup", "18:14"), ("periodic re-plan", "18:15")]
    assert asyncio.run(reasons(False)) == [("startup", "18:14")]
    store.close()


def test_an_expected_arrival_gets_its_planned_profile_before_the_replan(tmp_path):
    release = threading.Event()

    def slow(state, now, **kwargs):
        release.wait(10.0)
        return replan(state, now, **kwargs)

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van()) as server, \
                station(server, "1.6") as cp:
            depot = server.depot
            await until(lambda: depot.last is not None and not depot.busy, "the startup plan")
            assert [s.id for s in depot.last.plan.scenario.sessions] == ["S0"]  # expected
            depot.planner = slow
            await cp.boot()
            await until(lambda: depot.busy and len(cp.profiles) >= 2, "the blocked re-plan")
            await cp.start_tx("V0", meter_wh=0)
            await until(lambda: cp.tx_profiles(), "the arrival profile", timeout_s=3.0)
            assert depot.busy  # still solving: it came from the startup plan's row S0
            assert tx_periods(cp.tx_profiles()[-1]) == HAND_PERIODS
            release.set()

    try:
        asyncio.run(scenario())
    finally:
        release.set()


@pytest.mark.parametrize(("reading", "target", "expected"), [
    (45.3, 0.9, 0.4525),     # 0.1 % resolution: the low end of [45.25, 45.35)
    (45.0, 0.9, 0.445),      # whole percent: [44.5, 45.5)
    (45.25, 0.9, 0.45245),   # 0.01 %
    (90.0, 0.9, 0.9),        # at the target: full for this session, taken as read
    (95.3, 0.9, 0.953),
    (0.0, None, 0.0),        # never below 0
    (62.7, None, 0.6265),    # target unknown (energy-based needs): always the low end
])
def test_soc_reading_is_planned_from_its_lower_bound(reading, target, expected) -> None:
    assert soc_lower_bound(reading, target) == pytest.approx(expected, abs=1e-12)


def test_soc_lower_bound_covers_rounding_property() -> None:
    """Whatever true SOC a station rounded to 0.1 % or 1 %, the bound is never above it."""
    rng = np.random.default_rng(5)
    for true_percent in rng.uniform(0.0, 89.0, 2000):
        for decimals in (0, 1):
            reading = round(float(true_percent), decimals)
            assert soc_lower_bound(reading, 0.9) <= true_percent / 100.0 + 1e-12
