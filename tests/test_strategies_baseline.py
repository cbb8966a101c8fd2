"""Baseline strategies: hand-computed cases and property tests."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetcharge.strategies import run_strategy
from fleetcharge.strategies.baseline import balanced, unmanaged
from fleetcharge.errors import InputError
from tests.conftest import build_scenario


def test_unmanaged_hand_computed_with_partial_first_step():
    # Arrives 17:40 on a 15-min grid: 5/15 of the 17:30 step is available.
    sc = build_scenario([("2025-03-03 17:40", "2025-03-04 06:00", 12.0, 10.0)])
    plan = unmanaged(sc)
    power = plan.charge_kw.toarray()[0]
    i = sc.horizon.index.get_loc(sc.horizon.index[sc.horizon.index.hour == 17][2])  # 17:30
    # 17:30: 10 kW × 1/3 → 0.8333 kWh; 17:45..18:30: 2.5 kWh each (4 steps → 10.833 kWh);
    # 18:45: remaining 1.1667 kWh → 4.6667 kW average.
    assert power[i] == pytest.approx(10 / 3)
    assert power[i + 1 : i + 5] == pytest.approx([10.0] * 4)
    assert power[i + 5] == pytest.approx(1.1666667 / 0.25, rel=1e-6)
    assert power[i + 6 :].sum() == 0.0 and power[:i].sum() == 0.0
    assert plan.delivered_kwh()[0] == pytest.approx(12.0)


def test_unmanaged_cannot_exceed_what_the_dwell_allows():
    sc = build_scenario([("2025-03-03 17:00", "2025-03-03 18:00", 30.0, 10.0)])
    plan = unmanaged(sc)
    assert plan.delivered_kwh()[0] == pytest.approx(10.0)


def test_balanced_spreads_evenly():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 24.0, 10.0)])
    power = balanced(sc).charge_kw.toarray()[0]
    on = power[power > 0]
    assert len(on) == 48
    assert on == pytest.approx([2.0] * 48)


def test_balanced_respects_min_kw_floor():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 6.0, 10.0)], min_kw=1.4)
    plan = balanced(sc)
    power = plan.charge_kw.toarray()[0]
    assert power[power > 1e-9].min() >= 1.4 - 1e-9 or power[power > 1e-9][-1] < 1.4
    assert plan.delivered_kwh()[0] == pytest.approx(6.0)


def test_balanced_keeps_site_limit_and_meets_targets_when_possible():
    sessions = [("2025-03-03 18:00", "2025-03-04 06:00", 60.0, 10.0)] * 4  # 240 kWh in 12 h
    sc = build_scenario(sessions, service_limit_kw=25.0, building_kw=3.0)
    plan = balanced(sc)
    assert plan.site_load_kw().max() <= 25.0 + 1e-9
    assert plan.delivered_kwh() == pytest.approx([60.0] * 4)


def test_balanced_gives_priority_to_the_least_laxity():
    # A: 10 kWh in 1 h (must charge flat out); B: 10 kWh over 12 h. Limit 10 kW.
    sc = build_scenario([("2025-03-03 18:00", "2025-03-03 19:00", 10.0, 10.0),
                         ("2025-03-03 18:00", "2025-03-04 06:00", 10.0, 10.0)],
                        service_limit_kw=10.0)
    plan = balanced(sc)
    assert plan.delivered_kwh() == pytest.approx([10.0, 10.0])


def test_unknown_strategy_is_a_clear_error():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 6.0, 10.0)])
    with pytest.raises(InputError, match="unknown strategy 'smart'; choose one of unmanaged"):
        run_strategy(sc, "smart")


session_st = st.tuples(
    st.integers(0, 80),  # arrival, in 5-minute units after 12:00
    st.integers(1, 200),  # dwell in 5-minute units
    st.floats(0.0, 80.0),  # energy kWh
    st.floats(1.0, 20.0),  # cap kW
)


def _to_sessions(raw):
    import pandas as pd

    base = pd.Timestamp("2025-03-03 12:00")
    return [(str(base + pd.Timedelta(minutes=5 * a)), str(base + pd.Timedelta(minutes=5 * (a + d))),
             e, c) for a, d, e, c in raw]


@settings(max_examples=60, deadline=None)
@given(raw=st.lists(session_st, min_size=1, max_size=6), limit=st.floats(5.0, 100.0))
def test_properties_of_both_strategies(raw, limit):
    sc = build_scenario(_to_sessions(raw), charger_kw=[r[3] for r in raw], service_limit_kw=limit)
    arrays = sc.session_arrays()
    avail = arrays.availability(sc.horizon.n_steps).toarray()
    cap = avail * arrays.max_kw[:, None]
    for plan in (unmanaged(sc), balanced(sc)):
        p = plan.charge_kw.toarray()
        assert (p >= -1e-12).all()
        assert (p <= cap + 1e-9).all(), "power above cap or outside the dwell"
        delivered = plan.delivered_kwh()
        assert (delivered <= arrays.energy_kwh + 1e-6).all()
    # Unmanaged delivers min(requested, what full power allows).
    best = np.minimum(arrays.energy_kwh, arrays.max_energy_kwh(sc.horizon.step_hours))
    assert unmanaged(sc).delivered_kwh() == pytest.approx(best, abs=1e-6)
    # Balanced never exceeds the site limit (no building load here).
    assert balanced(sc).site_load_kw().max() <= limit + 1e-6


@settings(max_examples=40, deadline=None)
@given(raw=st.lists(session_st, min_size=1, max_size=6))
def test_balanced_meets_every_feasible_target_without_a_limit(raw):
    sc = build_scenario(_to_sessions(raw), charger_kw=[r[3] for r in raw])
    arrays = sc.session_arrays()
    best = np.minimum(arrays.energy_kwh, arrays.max_energy_kwh(sc.horizon.step_hours))
    assert balanced(sc).delivered_kwh() == pytest.approx(best, abs=1e-6)
