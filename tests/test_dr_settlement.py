"""Settlement and baselines against hand-computed cases: each program type's payment math
($/kWh reduced, $/kW-month capacity with penalties, $/kWh exported), season totals against the
caps, and the 10-of-10 baseline with its day-of adjustment."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from fleetcharge.dr.baseline import event_baseline, ten_of_ten
from fleetcharge.dr.events import DREvent
from fleetcharge.dr.programs import CAPACITY_WITH_PENALTY, EMERGENCY_2_PER_KWH, DRProgram
from fleetcharge.dr.settlement import over_cap_events, settle_event, settle_seasons

TZ = "America/Los_Angeles"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def hour(start: str, kw: list[float]) -> pd.Series:
    """Four 15-minute values from ``start`` [kW]."""
    return pd.Series(kw, index=pd.date_range(start, periods=len(kw), freq="15min", tz=TZ))


def test_energy_program_pays_per_kwh_reduced_and_exported():
    # $2/kWh emergency program, price event 16–17 h. Baseline 100 kW; actual 60, 80, 120, −10 kW.
    # Reduced: ¼ h × (40 + 20 + 0 + 100) = 40 kWh (import can fall to 0, not below);
    # exported: ¼ h × 10 = 2.5 kWh. Payment 2 × 40 + 2 × 2.5 = $85; no penalty.
    e = DREvent("e", EMERGENCY_2_PER_KWH.name, ts("2025-07-01 16:00"), ts("2025-07-01 17:00"),
                "price", 2.0)
    actual = hour("2025-07-01 16:00", [60, 80, 120, -10])
    s = settle_event(e, EMERGENCY_2_PER_KWH, actual, hour("2025-07-01 16:00", [100] * 4))
    assert (s.reduced_kwh, s.exported_kwh, s.short_kwh) == pytest.approx((40.0, 2.5, 0.0))
    assert (s.payment_usd, s.penalty_usd, s.net_usd) == pytest.approx((85.0, 0.0, 85.0))
    assert (s.baseline_avg_kw, s.actual_avg_kw) == pytest.approx((100.0, 62.5))
    # a reduce-by-30 kW event is short ¼ × (0 + 10 + 30 + 0) = 10 kWh, which ELRP does not charge
    r = DREvent("r", EMERGENCY_2_PER_KWH.name, e.start, e.end, "reduce", 30.0)
    s = settle_event(r, EMERGENCY_2_PER_KWH, actual, hour("2025-07-01 16:00", [100] * 4))
    assert (s.short_kwh, s.payment_usd, s.penalty_usd) == pytest.approx((10.0, 85.0, 0.0))


def test_capacity_program_penalises_under_delivery():
    # capacity-with-penalty: $0.30/kWh, $1/kWh short. Reduce by 50 kW from a 200 kW baseline;
    # actual 140, 150, 160, 260 → delivered 60, 50, 40, 0 kW → short ¼ × (0 + 0 + 10 + 50)
    # = 15 kWh (a step above the baseline is short N, not more); reduced ¼ × 150 = 37.5 kWh.
    p = CAPACITY_WITH_PENALTY
    e = DREvent("e", p.name, ts("2025-03-12 17:00"), ts("2025-03-12 18:00"), "reduce", 50.0)
    s = settle_event(e, p, hour("2025-03-12 17:00", [140, 150, 160, 260]),
                     hour("2025-03-12 17:00", [200] * 4))
    assert (s.reduced_kwh, s.short_kwh) == pytest.approx((37.5, 15.0))
    assert (s.payment_usd, s.penalty_usd, s.net_usd) == pytest.approx((11.25, 15.0, -3.75))
    # curtail to 100 kW: every kWh above the level is short: ¼ × (0 + 10 + 0 + 30) = 10 kWh
    c = DREvent("c", p.name, e.start, e.end, "curtail", 100.0)
    s = settle_event(c, p, hour("2025-03-12 17:00", [90, 110, 100, 130]),
                     hour("2025-03-12 17:00", [150] * 4))
    assert (s.short_kwh, s.penalty_usd) == pytest.approx((10.0, 10.0))
    assert s.reduced_kwh == pytest.approx(0.25 * (60 + 40 + 50 + 20))


def test_export_program_and_partial_steps():
    # $0.10/kWh reduced, $0.80/kWh exported. Baseline 30 kW, actual −20, −20, 10, 10 kW:
    # reduced ¼ × (30 + 30 + 20 + 20) = 25 kWh → $2.50; exported ¼ × 40 = 10 kWh → $8.00.
    p = DRProgram("export", frozenset(range(1, 13)), 0, 24, weekdays_only=False,
                  payment_per_kwh=0.10, export_payment_per_kwh=0.80)
    e = DREvent("x", "export", ts("2025-03-12 17:00"), ts("2025-03-12 18:00"), "curtail", 50)
    s = settle_event(e, p, hour("2025-03-12 17:00", [-20, -20, 10, 10]),
                     hour("2025-03-12 17:00", [30] * 4))
    assert (s.reduced_kwh, s.exported_kwh) == pytest.approx((25.0, 10.0))
    assert s.payment_usd == pytest.approx(10.50)
    # 17:10–17:40 covers 5 + 15 + 10 of the steps' minutes: 60 kW below the baseline → 30 kWh
    part = DREvent("p", "export", ts("2025-03-12 17:10"), ts("2025-03-12 17:40"), "price", 1.0)
    s = settle_event(part, p, hour("2025-03-12 17:00", [40] * 4),
                     hour("2025-03-12 17:00", [100] * 4))
    assert s.reduced_kwh == pytest.approx(60 * 30 / 60) and len(s.actual_kw) == 3
    assert s.payment_usd == pytest.approx(30.0)


def test_season_totals_against_caps():
    p = DRProgram("cap2", frozenset({3, 4}), 0, 24, weekdays_only=False, payment_per_kwh=1.0,
                  capacity_payment_per_kw_month=5.0, committed_kw=20.0, penalty_per_kwh=2.0,
                  cap_events_per_season=2, cap_hours_per_year=3.0)
    events = [DREvent(f"e{i}", "cap2", ts(f"2025-03-{10 + i} 17:00"), ts(f"2025-03-{10 + i} 18:00"),
                      "reduce", 10.0, cancelled=(i == 1)) for i in range(4)]
    assert over_cap_events(events, {"cap2": p}, TZ) == {"e3"}  # e1 cancelled: e0, e2 fit
    base = hour("2025-03-10 17:00", [50] * 4)
    settled = {}
    for e, actual in ((events[0], 40.0), (events[2], 45.0)):  # 10 kW delivered; 5 kW (short 5)
        idx = pd.date_range(e.start, periods=4, freq="15min")
        settled[e.event_id] = settle_event(e, p, pd.Series(actual, index=idx),
                                           pd.Series(base.to_numpy(), index=idx))
    index = pd.date_range("2025-03-01", "2025-04-30 23:00", freq="1h", tz=TZ)
    (season,) = settle_seasons(events, settled, ["e0", "e2"], {"cap2": p}, index, TZ)
    assert (season.events_called, season.hours_called, season.events_taken) == (3, 3.0, 2)
    assert season.over_cap == ("e3",) and season.cap_events == 2 and season.cap_hours == 3.0
    # capacity 20 kW × $5 × 2 months; energy $1 × (10 + 5) kWh; penalty $2 × 5 kWh
    assert season.capacity_payment_usd == pytest.approx(200.0)
    assert season.energy_payment_usd == pytest.approx(15.0)
    assert season.penalty_usd == pytest.approx(10.0)
    assert season.net_usd == pytest.approx(205.0)
    assert season.season == "2025 Mar–Apr"


def weekday_load() -> pd.Series:
    """15-minute load, Mar 3–21 2025: each weekday at its day of the month [kW], weekends 99 kW."""
    index = pd.date_range("2025-03-03", "2025-03-22", freq="15min", tz=TZ, inclusive="left")
    day = index.day.to_numpy(dtype=float)
    return pd.Series(np.where(index.day_of_week < 5, day, 99.0), index=index)


def test_ten_of_ten_baseline_hand_computed():
    # Event Fri Mar 21 16–17 h; Mar 13 is another event day. The 10 most recent similar days:
    # 20, 19, 18, 17, 14, 12, 11, 10, 7, 6 → mean 134 / 10 = 13.4 kW. The day-of window
    # (12–15 h) on Mar 21 is at 21 kW: factor 21 / 13.4 = 1.57, capped at 1.2 → 16.08 kW.
    load = weekday_load()
    e = DREvent("e", "p", ts("2025-03-21 16:00"), ts("2025-03-21 17:00"), "price", 1.0)
    b = ten_of_ten(load, e, TZ, exclude_days=[dt.date(2025, 3, 13)], adjustment_cap=0.0)
    assert [d.day for d in b.days] == [20, 19, 18, 17, 14, 12, 11, 10, 7, 6]
    assert b.kw.to_numpy() == pytest.approx([13.4] * 4) and b.adjustment == 1.0
    b = ten_of_ten(load, e, TZ, exclude_days=[dt.date(2025, 3, 13)])
    assert b.adjustment == pytest.approx(1.2) and b.kw.iloc[0] == pytest.approx(16.08)
    # at 15 kW in the day-of window: factor 15 / 13.4 = 1.119 (inside ±20 %) → baseline 15 kW
    load[(load.index >= ts("2025-03-21 12:00")) & (load.index < ts("2025-03-21 15:00"))] = 15.0
    b = ten_of_ten(load, e, TZ, exclude_days=[dt.date(2025, 3, 13)])
    assert b.adjustment == pytest.approx(15 / 13.4) and b.kw.to_numpy() == pytest.approx([15.0] * 4)
    b = ten_of_ten(load, e, TZ, exclude_days=[dt.date(2025, 3, 13)], adjustment_cap=0.05)
    assert b.adjustment == pytest.approx(1.05) and b.kw.iloc[0] == pytest.approx(13.4 * 1.05)
    assert b.describe() == "10-of-10 (10 days, day-of ×1.05)"


def test_ten_of_ten_too_little_history_falls_back_to_the_counterfactual():
    load = weekday_load()
    e = DREvent("e", "p", ts("2025-03-05 16:00"), ts("2025-03-05 17:00"), "price", 1.0)
    with pytest.raises(ValueError, match=r"only 2 similar non-event day\(s\) with data in the 45 "
                                         r"days before 2025-03-05 \(10-of-10 needs at least 5\)"):
        ten_of_ten(load, e, TZ)
    plan = load * 0 + 7.0
    b = event_baseline(CAPACITY_WITH_PENALTY, e, load, TZ, counterfactual_kw=plan)
    assert b.method == "counterfactual" and b.kw.to_numpy() == pytest.approx([7.0] * 4)
    assert "only 2 similar" in b.describe()
    with pytest.raises(ValueError, match="no plan without the event is given"):
        event_baseline(CAPACITY_WITH_PENALTY, e, load, TZ)
