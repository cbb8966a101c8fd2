import numpy as np
import pandas as pd
import pytest

from fleetcharge.v2g.programs import (
    ELRP_LIKE,
    Program,
    event_days,
    event_hours,
    program_price_per_kwh,
    program_settlement_usd,
)

TZ = "America/Los_Angeles"


def year_index(year=2025, freq="15min"):
    return pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq=freq, tz=TZ, inclusive="left")


def assert_inside_program(index, called):
    local = index[called]
    assert set(local.month) <= set(range(5, 11))
    assert (local.day_of_week < 5).all()
    assert (local.hour >= 16).all() and (local.hour < 21).all()


def test_elrp_like_matches_design_example():
    assert ELRP_LIKE.payment_per_kwh == 2.0
    assert ELRP_LIKE.months == frozenset(range(5, 11))
    assert (ELRP_LIKE.window_start_hour, ELRP_LIKE.window_end_hour) == (16, 21)
    assert ELRP_LIKE.cap_hours_per_year == 60.0
    assert ELRP_LIKE.penalty_per_kwh == 0.0
    assert ELRP_LIKE.window_hours == 5


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_event_hours_respect_cap_season_window_weekdays(seed):
    index = year_index()
    called = event_hours(ELRP_LIKE, index, seed=seed)
    assert called.dtype == bool and called.shape == (len(index),)
    assert called.sum() * 0.25 == pytest.approx(60.0)
    assert_inside_program(index, called)
    # 12 whole 4–9 pm windows on 12 different days
    assert len(set(index[called].date)) == 12


def test_spread_choice_is_even_and_deterministic():
    days, hours = event_days(ELRP_LIKE, 2025)
    assert len(days) == 12 and (hours == 5).all()
    months = pd.DatetimeIndex(days).month
    assert np.bincount(months, minlength=11)[5:11].tolist() == [2] * 6
    np.testing.assert_array_equal(days, event_days(ELRP_LIKE, 2025)[0])


def test_random_choice_is_seeded():
    a = event_hours(ELRP_LIKE, year_index(), seed=1)
    b = event_hours(ELRP_LIKE, year_index(), seed=1)
    c = event_hours(ELRP_LIKE, year_index(), seed=2)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_month_alone_sees_the_same_events_as_inside_the_year():
    index = year_index()
    july = index[index.month == 7]
    for seed in (None, 3):
        np.testing.assert_array_equal(
            event_hours(ELRP_LIKE, july, seed=seed),
            event_hours(ELRP_LIKE, index, seed=seed)[index.month == 7],
        )


def test_cap_not_a_multiple_of_the_window_truncates_the_last_event():
    program = Program("odd-cap", 1.0, {7, 8}, 17, 20, 10.0)  # 3 h windows, 10 h cap
    days, hours = event_days(program, 2025)
    assert hours.tolist() == [3.0, 3.0, 3.0, 1.0]
    index = year_index()
    called = event_hours(program, index)
    assert called.sum() * 0.25 == pytest.approx(10.0)
    last_day = index[called].normalize().max()
    assert index[called & (index.normalize() == last_day)].hour.unique().tolist() == [17]


def test_hourly_and_multi_year_index():
    index = pd.date_range("2024-01-01", "2026-01-01", freq="h", tz=TZ, inclusive="left")
    called = event_hours(ELRP_LIKE, index)
    for year in (2024, 2025):
        assert called[index.year == year].sum() == 60
    assert_inside_program(index, called)


def test_n_events_override_and_clipping():
    index = year_index(freq="h")
    assert event_hours(ELRP_LIKE, index, n_events=4).sum() == 20
    assert event_hours(ELRP_LIKE, index, n_events=0).sum() == 0
    # more events than the cap allows: the cap still binds
    assert event_hours(ELRP_LIKE, index, n_events=50).sum() == 60


def test_weekend_program_and_local_time_across_dst():
    program = Program("any-day", 1.0, range(1, 13), 0, 3, 1000.0, weekdays_only=False,
                      notice_minutes=60)
    index = pd.date_range("2025-03-08", "2025-03-11", freq="15min", tz=TZ, inclusive="left")
    called = event_hours(program, index)
    assert (index[called].hour < 3).all()
    assert 5 in set(index[called].day_of_week)  # Saturday 8 March is eligible
    # the 02:00–03:00 hour does not exist on 9 March (DST): 2 called hours that night
    sunday = index.normalize() == pd.Timestamp("2025-03-09", tz=TZ)
    assert called[sunday].sum() * 0.25 == pytest.approx(2.0)


def test_price_per_kwh():
    index = year_index()
    price = program_price_per_kwh(ELRP_LIKE, index)
    assert set(np.unique(price)) == {0.0, 2.0}
    assert (price > 0).sum() * 0.25 == pytest.approx(60.0)
    np.testing.assert_array_equal(price > 0, event_hours(ELRP_LIKE, index))
    np.testing.assert_array_equal(
        program_price_per_kwh(ELRP_LIKE, index, seed=4) > 0, event_hours(ELRP_LIKE, index, seed=4)
    )


def test_settlement_payment_penalty_capacity():
    program = Program("cap-and-penalty", 1.5, {7}, 16, 18, 4.0, penalty_per_kwh=0.5,
                      capacity_payment_per_kw_month=8.0)
    index = pd.date_range("2025-07-01", "2025-08-01", freq="15min", tz=TZ, inclusive="left")
    called = event_hours(program, index)
    assert called.sum() == 16  # two 2-hour events
    delivered = np.where(called, 2.0, 0.0)  # 8 kW × 0.25 h in every called step
    delivered[np.flatnonzero(called)[:4]] = 0.5  # 2 kW during the first hour
    # payment 1.5 × (12 × 2 + 4 × 0.5) = 39; shortfall vs 10 kW = (2.5 − 2) × 12 + (2.5 − 0.5) × 4
    # = 14 kWh × 0.5 = 7; capacity 8 × 10 kW × 1 month = 80
    got = program_settlement_usd(program, index, delivered, committed_kw=10.0)
    assert got == pytest.approx(39.0 - 7.0 + 80.0)
    assert program_settlement_usd(ELRP_LIKE, index, np.zeros(len(index))) == 0.0


def test_settlement_shape_error():
    index = year_index()
    with pytest.raises(ValueError, match="delivered_kwh has shape"):
        program_settlement_usd(ELRP_LIKE, index, np.zeros(3))


def test_naive_index_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        event_hours(ELRP_LIKE, pd.date_range("2025-07-01", periods=8, freq="h"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"months": {0, 5}}, "months must be a non-empty set of 1–12"),
        ({"months": set()}, "months must be a non-empty set of 1–12"),
        ({"window_start_hour": 21, "window_end_hour": 16}, "window must satisfy"),
        ({"window_end_hour": 25}, "window must satisfy"),
        ({"payment_per_kwh": -1.0}, "payment_per_kwh must be ≥ 0"),
        ({"cap_hours_per_year": -5.0}, "cap_hours_per_year must be ≥ 0"),
    ],
)
def test_program_validation(kwargs, message):
    fields = {"name": "x", "payment_per_kwh": 1.0, "months": {6}, "window_start_hour": 16,
              "window_end_hour": 21, "cap_hours_per_year": 10.0} | kwargs
    with pytest.raises(ValueError, match=message):
        Program(**fields)
