"""Rolling re-plan from live state."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleetcharge.accounting import evaluate
from fleetcharge.errors import InputError
from fleetcharge.scenario import load_scenario
from fleetcharge.strategies.rolling import (
    LiveState,
    PluggedVehicle,
    live_scenario,
    peaks_so_far,
    planning_floors,
    plugged_from_sessions,
    replan,
)
from tests.test_optimal_strategy import two_period_tariff
from tests.conftest import build_scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portland-delivery-50" / "scenario.yaml"
TZ = "America/Los_Angeles"


@pytest.fixture(scope="module")
def depot():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_scenario(EXAMPLE)


def test_replan_meets_targets_and_respects_limits(depot):
    now = pd.Timestamp("2025-03-11 20:07", tz=TZ)
    plugged, expected = plugged_from_sessions(depot.sessions, now)
    assert len(plugged) > 30
    plan = replan(LiveState(depot, plugged, expected), now)
    assert plan.status == "ok"
    assert plan.scenario.horizon.start == pd.Timestamp("2025-03-11 20:00", tz=TZ)
    assert plan.scenario.horizon.n_steps == 96
    out = evaluate(plan)
    assert out.readiness.met == out.readiness.departures
    assert out.peak_kw <= depot.site.service_limit_kw + 1e-6
    # the current step is only partly available (arrival = now = 20:07)
    first = plan.charge_kw.toarray()[:, 0]
    caps = np.array([s.max_kw for s in plan.scenario.sessions])
    assert (first <= caps * 8 / 15 + 1e-9).all()


def test_month_to_date_peak_is_a_floor_not_paid_twice():
    # 3 vans need 40 kWh each between 18:00 and 23:00; only 21–23 h is off-peak.
    sessions = [("2025-03-03 18:00", "2025-03-03 23:00", 40.0, 10.0)] * 3
    sc = build_scenario(sessions, tariff=two_period_tariff())
    now = pd.Timestamp("2025-03-03 18:00", tz=TZ)
    plugged, _ = plugged_from_sessions(sc.sessions, now)
    free = replan(LiveState(sc, plugged), now)
    # A metered peak of 25 kW earlier this month: charging up to 25 kW costs no more demand.
    idx = pd.date_range("2025-03-01", periods=8, freq="15min", tz=TZ)
    metered = pd.Series([5, 25, 25, 6, 5, 5, 5, 5], index=idx, dtype=float)
    assert peaks_so_far(sc, metered)["2025-03 all hours"] == 25.0
    floored = replan(LiveState(sc, plugged, metered_kw=metered), now)
    free_out, floored_out = evaluate(free), evaluate(floored)
    assert free_out.readiness.met == floored_out.readiness.met == 3
    # It uses the room already paid for: more off-peak charging, a lower energy bill ...
    assert floored_out.peak_kw == pytest.approx(25.0, abs=1e-6)
    assert floored_out.bill.energy == pytest.approx(free_out.bill.energy - 0.2 * 2.0)  # 2 kWh moved
    # ... and the demand it is billed for is the metered 25 kW, not 25 kW plus its own peak.
    all_hours = next(d for d in floored.info["demand_determinants"] if "all hours" in d["label"])
    assert all_hours["billed_kw"] == pytest.approx(25.0)


def test_energy_beyond_the_horizon_is_pro_rated():
    sc = build_scenario([("2025-03-03 12:00", "2025-03-05 12:00", 40.0, 10.0)],
                        end="2025-03-06 12:00", tariff=two_period_tariff())
    now = pd.Timestamp("2025-03-03 12:00", tz=TZ)
    state = LiveState(sc, (PluggedVehicle("V0", "C0", 0.2, pd.Timestamp("2025-03-05 12:00", tz=TZ),
                                          target_soc=0.8),))
    live = live_scenario(state, now, horizon_hours=24)
    needed = (0.8 - 0.2) * 60 / 0.9
    assert live.sessions[0].energy_kwh == pytest.approx(needed / 2)


def test_naive_now_is_rejected():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 10.0, 10.0)],
                        tariff=two_period_tariff())
    with pytest.raises(InputError, match="now must be timezone-aware"):
        replan(LiveState(sc, ()), pd.Timestamp("2025-03-03 18:00"))


def test_replan_in_the_repeated_fall_back_hour():
    sc = build_scenario([("2025-11-01 18:00", "2025-11-02 06:00", 10.0, 10.0)],
                        start="2025-11-01 12:00", end="2025-11-03 12:00",
                        tariff=two_period_tariff())
    now = pd.Timestamp("2025-11-02 08:20", tz="UTC").tz_convert(TZ)  # 01:20 PDT, first pass
    plugged, expected = plugged_from_sessions(sc.sessions, now)
    plan = replan(LiveState(sc, plugged, expected), now)
    assert plan.status == "ok"
    assert plan.scenario.horizon.start == pd.Timestamp("2025-11-02 08:15", tz="UTC")


def test_meter_data_at_a_finer_resolution_and_bad_meter_data():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 10.0, 10.0)],
                        tariff=two_period_tariff())
    idx = pd.date_range("2025-03-01", periods=6, freq="5min", tz=TZ)
    metered = pd.Series([6, 30, 30, 30, 6, 6], index=idx, dtype=float)
    # 15-minute demand windows average the 5-minute readings: (6+30+30)/3 and (30+6+6)/3
    assert peaks_so_far(sc, metered)["2025-03 all hours"] == pytest.approx(22.0)
    gappy = metered.drop(idx[2])
    with pytest.raises(InputError, match="LiveState.metered_kw: .*regular 5, 15, 30 or 60"):
        peaks_so_far(sc, gappy)


def test_building_forecast_must_cover_the_horizon_and_is_averaged():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 10.0, 10.0)],
                        tariff=two_period_tariff())
    now = pd.Timestamp("2025-03-03 18:00", tz=TZ)
    short = pd.Series(5.0, index=pd.date_range(now, periods=8, freq="15min"))
    with pytest.raises(InputError, match="covers .* but the horizon is"):
        live_scenario(LiveState(sc, (), building_forecast_kw=short), now)
    fine = pd.Series(np.tile([0.0, 0.0, 30.0], 24 * 12 // 3 + 3),
                     index=pd.date_range(now, periods=24 * 12 + 9, freq="5min"))
    live = live_scenario(LiveState(sc, (), building_forecast_kw=fine), now)
    assert live.site.building_load_kw.to_numpy() == pytest.approx(10.0)


def test_a_one_step_replan_can_be_billed():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 1.0, 10.0)],
                        tariff=two_period_tariff())
    now = pd.Timestamp("2025-03-03 18:00", tz=TZ)
    plugged, _ = plugged_from_sessions(sc.sessions, now)
    plan = replan(LiveState(sc, plugged), now, horizon_hours=0.25)
    out = evaluate(plan)
    assert plan.scenario.horizon.n_steps == 1
    assert out.bill.total > 0


def test_planning_floors_keep_a_control_margin_below_metered_peaks():
    peaks = {"2025-03 all hours": 150.0, "2025-03 on": 20.0, "2025-03 off": 0.2}
    assert planning_floors(peaks, 0.0) == peaks
    assert planning_floors(peaks, 0.01) == pytest.approx(
        {"2025-03 all hours": 148.5, "2025-03 on": 19.5, "2025-03 off": 0.0})
    with pytest.raises(ValueError, match="margin_share"):
        planning_floors(peaks, 1.0)


def test_a_replan_with_a_margin_plans_below_the_metered_peak():
    # Same depot as the floor test: with 25 kW metered, the plan fills only up to 24.5 kW
    # (a 1 % margin, at least 0.5 kW), still meeting every target.
    sessions = [("2025-03-03 18:00", "2025-03-03 23:00", 40.0, 10.0)] * 3
    sc = build_scenario(sessions, tariff=two_period_tariff())
    now = pd.Timestamp("2025-03-03 18:00", tz=TZ)
    plugged, _ = plugged_from_sessions(sc.sessions, now)
    idx = pd.date_range("2025-03-01", periods=8, freq="15min", tz=TZ)
    metered = pd.Series([5, 25, 25, 6, 5, 5, 5, 5], index=idx, dtype=float)
    plan = replan(LiveState(sc, plugged, metered_kw=metered, peak_margin_share=0.01), now)
    out = evaluate(plan)
    assert out.readiness.met == 3
    assert out.peak_kw == pytest.approx(24.5, abs=1e-6)


def test_a_departure_guard_finishes_each_vehicle_before_it_leaves():
    # 40 kWh between 18:00 and 23:00 on a 10 kW port; plan at 18:07 with a 5-minute guard: the
    # plan aims at 22:55 and charges nothing after; an arrival expected at 22:58 (no time left
    # after the guard) keeps its own departure.
    sc = build_scenario([("2025-03-03 18:00", "2025-03-03 23:00", 40.0, 10.0),
                         ("2025-03-03 22:58", "2025-03-03 23:00", 0.1, 10.0)],
                        tariff=two_period_tariff())
    now = pd.Timestamp("2025-03-03 18:07", tz=TZ)
    plugged, expected = plugged_from_sessions(sc.sessions, now)
    guard = pd.Timedelta(minutes=5)
    state = LiveState(sc, plugged, expected, departure_guard=guard)
    live = live_scenario(state, now)
    assert [s.departure for s in live.sessions] == [
        pd.Timestamp("2025-03-03 22:55", tz=TZ), pd.Timestamp("2025-03-03 23:00", tz=TZ)]
    plan = replan(state, now)
    assert evaluate(plan).readiness.met == 2
    kw = pd.Series(plan.charge_kw.toarray()[0], index=plan.scenario.horizon.index)
    # 22:45–23:00 is the last step: 10 of its 15 minutes are before 22:55
    assert kw[pd.Timestamp("2025-03-03 22:45", tz=TZ)] <= 10.0 * 10 / 15 + 1e-6
    assert kw[kw.index >= pd.Timestamp("2025-03-03 23:00", tz=TZ)].abs().max() < 1e-9
