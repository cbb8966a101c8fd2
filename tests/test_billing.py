"""Hand-computed bills on tiny tariffs, billing cycles, demand windows and properties.

January 2018 starts on a Monday: 23 weekdays and 8 weekend days, 744 hours.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetcharge.billing import Bill, compute_bill
from fleetcharge.errors import InputError
from fleetcharge.tariff import (
    CoincidentPeakEvents,
    DemandPeriod,
    DemandTier,
    EnergyCharge,
    EnergyPeriod,
    EnergyTier,
    FixedCharges,
    FlatDemandCharge,
    SubscriptionCharge,
    Tariff,
    UnsupportedTariffFeature,
    load_tariff,
    parse_urdb,
)


TZ = "America/Los_Angeles"
ZERO = [[0] * 24 for _ in range(12)]
PEAK_16_21 = [[0] * 16 + [1] * 5 + [0] * 3 for _ in range(12)]


def series(start: str, end: str, freq: str = "15min", value: float = 0.0, tz: str = TZ):
    idx = pd.date_range(pd.Timestamp(start, tz=tz), pd.Timestamp(end, tz=tz), freq=freq,
                        inclusive="left")
    return pd.Series(value, index=idx, dtype=float)


def two_period_tariff(**extra) -> Tariff:
    urdb = {
        "name": "two-period test",
        "energyratestructure": [[{"rate": 0.10, "unit": "kWh"}], [{"rate": 0.25, "adj": 0.05}]],
        "energytoulabels": ["Off-Peak", "Peak"],
        "energyweekdayschedule": PEAK_16_21,
        "energyweekendschedule": ZERO,
        "flatdemandstructure": [[{"rate": 10.0}]],
        "flatdemandmonths": [0] * 12,
        "demandratestructure": [[{"rate": 0.0}], [{"rate": 5.0}]],
        "demandweekdayschedule": PEAK_16_21,
        "demandweekendschedule": ZERO,
        "fixedchargefirstmeter": 100.0,
        "fixedchargeunits": "$/month",
    }
    urdb.update(extra)
    return parse_urdb(urdb, "test")


def january_load() -> pd.Series:
    s = series("2018-01-01", "2018-02-01", value=10.0)
    s[pd.Timestamp("2018-01-10 17:00", tz=TZ):pd.Timestamp("2018-01-10 17:45", tz=TZ)] = 60.0
    s[pd.Timestamp("2018-01-13 12:00", tz=TZ)] = 110.0  # a Saturday, off-peak
    return s


# ------------------------------------------------------------------------------ hand bills
def test_two_period_energy_flat_and_tou_demand_fixed() -> None:
    bill = compute_bill(two_period_tariff(), january_load())
    assert len(bill.months) == 1
    m = bill.months[0]
    # peak hours: 23 weekdays × 5 h × 10 kW = 1150 kWh, + 50 kWh on Jan 10 17–18
    # off-peak: 7440 − 1150 = 6290 kWh, + 100 kW × 0.25 h on Jan 13
    assert m.energy_by_period == pytest.approx({"Peak": 1200 * 0.30, "Off-Peak": 6315 * 0.10})
    assert m.energy == pytest.approx(991.5)
    assert m.energy_kwh == pytest.approx(7515.0)
    assert m.peak_kw == pytest.approx(110.0)
    assert m.demand_flat == pytest.approx(1100.0)
    assert m.demand_tou_by_period == pytest.approx({"demand 0": 0.0, "demand 1": 300.0})
    assert m.demand_tou == pytest.approx(300.0)
    assert m.tou_peak_kw_by_period == pytest.approx({"demand 0": 110.0, "demand 1": 60.0})
    assert m.fixed == pytest.approx(100.0)
    assert m.export_credit == 0.0 and m.ratchet == 0.0
    assert m.total == pytest.approx(2491.5)
    assert (m.month, m.days, m.partial) == ("2018-01", 31.0, False)
    assert m.start == pd.Timestamp("2018-01-01", tz=TZ)
    assert m.end == pd.Timestamp("2018-02-01", tz=TZ)
    assert bill.total == pytest.approx(2491.5)


def test_energy_tiers_shared_by_periods_split_in_proportion() -> None:
    tariff = parse_urdb(
        {
            "energyratestructure": [
                [{"rate": 0.1, "max": 1000}, {"rate": 0.2}],
                [{"rate": 0.3, "max": 1000}, {"rate": 0.4}],
            ],
            "energyweekdayschedule": [[0] * 12 + [1] * 12 for _ in range(12)],
            "energyweekendschedule": [[0] * 12 + [1] * 12 for _ in range(12)],
        },
        "tiers",
    )
    load = series("2018-01-01", "2018-02-01", "1h")
    load[:] = np.where(load.index.hour < 12, 10.0, 20.0)
    m = compute_bill(tariff, load).months[0]
    # 3720 + 7440 = 11160 kWh: 1000 in tier 1, 10160 in tier 2, shared 1/3 : 2/3
    assert m.energy_by_period["period 0"] == pytest.approx((1000 * 0.1 + 10160 * 0.2) / 3)
    assert m.energy_by_period["period 1"] == pytest.approx((1000 * 0.3 + 10160 * 0.4) * 2 / 3)
    assert m.energy == pytest.approx(3620.0)


def test_energy_tiers_differing_by_period_apply_per_period() -> None:
    tariff = parse_urdb(
        {
            "energyratestructure": [[{"rate": 0.1, "max": 1000}, {"rate": 0.2}], [{"rate": 0.3}]],
            "energyweekdayschedule": [[0] * 12 + [1] * 12 for _ in range(12)],
            "energyweekendschedule": [[0] * 12 + [1] * 12 for _ in range(12)],
        },
        "tiers",
    )
    load = series("2018-01-01", "2018-02-01", "1h")
    load[:] = np.where(load.index.hour < 12, 10.0, 20.0)
    m = compute_bill(tariff, load).months[0]
    assert m.energy_by_period == pytest.approx({"period 0": 644.0, "period 1": 2232.0})


def test_custom_rate_with_uneven_tiers_hand_checked() -> None:
    """custom_rate_reopt_api (SAM refuses it): 355 kWh tier in period 1 only, a 480 kW demand
    tier in period 2 only; flat 100 kW in January 2018."""
    tariff = load_tariff("custom_rate_reopt_api")
    m = compute_bill(tariff, series("2018-01-01", "2018-02-01", "1h", 100.0, tz="UTC")).months[0]
    # January: weekdays hours 0–10 and 19–23 period 3, 11–18 period 2; weekends period 1
    wd_p3, wd_p2, we_p1 = 23 * 16 * 100, 23 * 8 * 100, 8 * 24 * 100
    assert m.energy_by_period == pytest.approx(
        {"period 3": wd_p3 * 0.095, "period 2": wd_p2 * 0.082,
         "period 1": 355 * 0.054 + (we_p1 - 355) * 0.073}
    )
    # demand: period 3 (weekday night, all weekend) $14.35; period 2 $10.68 up to 480 kW
    assert m.demand_tou_by_period == pytest.approx({"demand 3": 1435.0, "demand 2": 1068.0})


def test_flat_and_tou_demand_tiers() -> None:
    tariff = parse_urdb(
        {
            "flatdemandstructure": [[{"rate": 10.0, "max": 100}, {"rate": 5.0}]],
            "flatdemandmonths": [0] * 12,
            "demandratestructure": [[{"rate": 0.0}], [{"rate": 4.0, "max": 50}, {"rate": 2.0}]],
            "demandweekdayschedule": PEAK_16_21,
            "demandweekendschedule": ZERO,
        },
        "demand tiers",
    )
    m = compute_bill(tariff, january_load()).months[0]
    assert m.demand_flat == pytest.approx(100 * 10 + 10 * 5)
    assert m.demand_tou == pytest.approx(50 * 4 + 10 * 2)
    assert m.energy == 0.0


RATCHET_URDB = {
    "energyratestructure": [[{"rate": 0.0}]],
    "energyweekdayschedule": ZERO,
    "energyweekendschedule": ZERO,
    "flatdemandstructure": [[{"rate": 10.0}]],
    "flatdemandmonths": [0] * 12,
}


def three_month_load() -> pd.Series:
    s = series("2018-01-01", "2018-04-01", "1h", 20.0)
    for day, kw in (("2018-01-05 18:00", 100.0), ("2018-02-05 18:00", 50.0),
                    ("2018-03-05 18:00", 90.0)):
        s[pd.Timestamp(day, tz=TZ)] = kw
    return s


@pytest.mark.parametrize(
    ("extra", "billing_kw"),
    [
        ({"lookbackpercent": 0.8, "lookbackrange": 12}, [160.0, 160.0, 160.0]),
        ({"lookbackpercent": 0.8, "lookbackrange": 2}, [160.0, 160.0, 90.0]),
        # only December peaks count (lookbackmonths), 12-month window
        ({"lookbackpercent": 80, "lookbackmonths": [False] * 11 + [True]}, [160.0, 160.0, 160.0]),
        # only January peaks count: January itself looks back at none
        ({"lookbackpercent": 0.8, "lookbackmonths": [True] + [False] * 11}, [100.0, 80.0, 90.0]),
        ({"demandratchetpercentage": [0.5] * 12}, [100.0, 100.0, 100.0]),
    ],
)
def test_lookback_ratchets(extra: dict, billing_kw: list[float]) -> None:
    tariff = parse_urdb({**RATCHET_URDB, **extra}, "ratchet")
    bill = compute_bill(tariff, three_month_load(), demand_history_kw={"2017-12": 200.0})
    peaks = [100.0, 50.0, 90.0]
    assert [m.peak_kw for m in bill.months] == pytest.approx(peaks)
    assert [m.billing_demand_kw for m in bill.months] == pytest.approx(billing_kw)
    assert [m.demand_flat for m in bill.months] == pytest.approx([10 * p for p in peaks])
    assert [m.ratchet for m in bill.months] == pytest.approx(
        [10 * (b - p) for b, p in zip(billing_kw, peaks, strict=True)]
    )
    assert bill.total == pytest.approx(10 * sum(billing_kw))


def test_ratchet_history_month_inside_load_uses_larger_peak() -> None:
    tariff = parse_urdb({**RATCHET_URDB, "lookbackpercent": 1.0, "lookbackrange": 1}, "r")
    bill = compute_bill(tariff, three_month_load(), demand_history_kw={"2018-01": 130.0})
    assert bill.months[1].billing_demand_kw == pytest.approx(130.0)


def test_billing_cycle_day_15_partial_cycles_fixed_and_month_rates() -> None:
    tariff = Tariff(
        name="cycles",
        flat_demand=FlatDemandCharge(
            (DemandPeriod((DemandTier(10.0),)), DemandPeriod((DemandTier(20.0),))),
            (1,) + (0,) * 11,  # January's rate is $20/kW
        ),
        fixed=FixedCharges(per_month=31.0, per_day=2.0),
    )
    load = series("2018-01-10", "2018-03-20", "15min", 5.0)
    load[pd.Timestamp("2018-02-01 12:00", tz=TZ)] = 40.0  # in the cycle labelled 2018-01
    bill = compute_bill(tariff, load, billing_cycle_day=15)
    got = [(m.month, m.days, m.cycle_days, m.partial) for m in bill.months]
    assert got == [
        ("2017-12", 5.0, 31, True),
        ("2018-01", 31.0, 31, False),
        ("2018-02", 28.0, 28, False),
        ("2018-03", 5.0, 31, True),
    ]
    # $31/month pro-rated by days/cycle days, plus $2/day
    assert [m.fixed for m in bill.months] == pytest.approx([5 + 10, 31 + 62, 31 + 56, 5 + 10])
    # monthly-indexed rates follow the month the cycle starts in
    assert [m.demand_flat for m in bill.months] == pytest.approx([50.0, 800.0, 50.0, 50.0])
    assert bill.months[0].start == pd.Timestamp("2018-01-10", tz=TZ)
    assert bill.months[0].cycle_start == pd.Timestamp("2017-12-15", tz=TZ)
    assert bill.months[1].start == pd.Timestamp("2018-01-15", tz=TZ)
    assert bill.months[1].end == pd.Timestamp("2018-02-15", tz=TZ)
    assert bill.months[3].end == pd.Timestamp("2018-03-20", tz=TZ)
    # 5 kW over 69 days less the spring-forward hour, plus the extra 35 kW for 0.25 h
    assert bill.energy_kwh == pytest.approx(5 * (69 * 24 - 1) + 35 * 0.25)


def test_calendar_month_with_dst_is_a_full_month() -> None:
    tariff = two_period_tariff()
    bill = compute_bill(tariff, series("2018-03-01", "2018-04-01", value=10.0))
    m = bill.months[0]
    assert (m.days, m.partial, m.fixed) == (31.0, False, 100.0)
    assert m.energy_kwh == pytest.approx(10.0 * 743)  # the spring-forward day has 23 hours


def test_fixed_per_day_and_per_year() -> None:
    t = replace(two_period_tariff(), fixed=FixedCharges(per_day=3.298, per_year=1200.0))
    bill = compute_bill(t, series("2018-01-01", "2018-03-01", value=1.0))
    assert [m.fixed for m in bill.months] == pytest.approx([31 * 3.298 + 100, 28 * 3.298 + 100])


def test_export_credit_per_period_sell_rates_and_overrides() -> None:
    tariff = parse_urdb(
        {
            "energyratestructure": [[{"rate": 0.10, "sell": 0.05}], [{"rate": 0.30, "sell": 0.03}]],
            "energyweekdayschedule": [[0] * 12 + [1] * 12 for _ in range(12)],
            "energyweekendschedule": [[0] * 12 + [1] * 12 for _ in range(12)],
            "dgrules": "Net Billing Instantaneous",
        },
        "export",
    )
    load = series("2018-01-01", "2018-02-01", "1h")
    load[:] = np.where(load.index.hour < 12, -4.0, 10.0)  # export mornings, import afternoons
    m = compute_bill(tariff, load).months[0]
    assert m.export_kwh == pytest.approx(31 * 12 * 4)
    assert m.export_credit == pytest.approx(-31 * 12 * 4 * 0.05)
    assert m.energy == pytest.approx(31 * 12 * 10 * 0.30)
    assert m.energy_by_period == pytest.approx({"period 0": 0.0, "period 1": 1116.0})
    assert m.peak_kw == 10.0
    assert m.total == pytest.approx(1116.0 - 74.4)
    flat = compute_bill(tariff, load, export_price_per_kwh=0.08).months[0]
    assert flat.export_credit == pytest.approx(-31 * 12 * 4 * 0.08)
    prices = pd.Series(np.where(load.index.day <= 10, 0.2, 0.0), index=load.index)
    ts = compute_bill(tariff, load, export_price_per_kwh=prices).months[0]
    assert ts.export_credit == pytest.approx(-10 * 12 * 4 * 0.2)
    fixed_rate = replace(tariff, export_rate_per_kwh=0.01)
    assert compute_bill(fixed_rate, load).months[0].export_credit == pytest.approx(-14.88)


def test_export_under_net_metering_rule_warns() -> None:
    tariff = two_period_tariff(dgrules="Net Metering")
    with pytest.warns(UnsupportedTariffFeature, match="Net Metering.*nets every interval"):
        compute_bill(tariff, series("2018-01-01", "2018-01-02", value=-1.0))


def test_subscription_blocks_auto_fixed_and_prorated() -> None:
    sub = SubscriptionCharge(block_kw=50, price_per_block=95.56, overage_per_kw=3.82)
    tariff = Tariff(name="BEV", subscription=sub)
    load = series("2018-01-01", "2018-02-01", value=20.0)
    load[pd.Timestamp("2018-01-09 18:00", tz=TZ)] = 120.0
    m = compute_bill(tariff, load).months[0]
    assert (m.subscribed_blocks, m.subscription) == (3, pytest.approx(3 * 95.56))
    fixed = Tariff(name="BEV", subscription=replace(sub, subscribed_blocks=2))
    m = compute_bill(fixed, load).months[0]
    assert m.subscription == pytest.approx(2 * 95.56 + 20 * 3.82)
    half = compute_bill(tariff, series("2018-04-01", "2018-04-16", value=100.0)).months[0]
    assert half.partial and half.subscription == pytest.approx(2 * 95.56 * 15 / 30)


def test_subscription_from_json_extension_key() -> None:
    t = two_period_tariff(
        fleetcharge_subscription={"block_kw": 50, "price_per_block": 95.56,
                                  "overage_per_kw": 3.82}
    )
    m = compute_bill(t, january_load()).months[0]
    assert m.subscription == pytest.approx(3 * 95.56)
    assert m.total == pytest.approx(2491.5 + 3 * 95.56)


def test_five_minute_data_is_averaged_into_clock_aligned_15_minute_windows() -> None:
    tariff = parse_urdb({**RATCHET_URDB, "demandwindow": 15}, "window")
    load = series("2018-01-01", "2018-02-01", "5min", 10.0)
    # 100 kW from 12:10 to 12:20 straddles two clock windows: each averages (10+10+100)/3
    load[pd.Timestamp("2018-01-03 12:10", tz=TZ)] = 100.0
    load[pd.Timestamp("2018-01-03 12:15", tz=TZ)] = 100.0
    m = compute_bill(tariff, load).months[0]
    assert m.peak_kw == pytest.approx(40.0)
    assert m.demand_flat == pytest.approx(400.0)
    hourly_window = compute_bill(replace(tariff, demand_window_min=60), load).months[0]
    assert hourly_window.peak_kw == pytest.approx((11 * 10 + 2 * 100 - 10) / 12)
    assert compute_bill(replace(tariff, demand_window_min=5), load).months[0].peak_kw == 100.0
    coarse = compute_bill(tariff, series("2018-01-01", "2018-02-01", "1h", 7.0)).months[0]
    assert coarse.peak_kw == 7.0  # data coarser than the window are used as they are


def test_one_minute_data_regridded_exactly() -> None:
    t = two_period_tariff()
    base = january_load()
    fine = base.resample("1min").ffill().reindex(
        pd.date_range(base.index[0], periods=len(base) * 15, freq="1min"), method="ffill"
    )
    fine[pd.Timestamp("2018-01-20 03:07", tz=TZ)] = 160.0  # one minute: +10 kW on the window
    b1, b15 = compute_bill(t, fine).months[0], compute_bill(t, base).months[0]
    assert b1.energy_kwh == pytest.approx(b15.energy_kwh + 150 / 60)
    assert b1.peak_kw == pytest.approx(110.0)
    assert b1.energy == pytest.approx(b15.energy + 150 / 60 * 0.10)


def test_coincident_schedule_charge() -> None:
    t = two_period_tariff(
        coincidentratestructure=[[{"rate": 2.0}], [{"rate": 2.0}]],
        coincidentschedule=[[0] * 14 + [1] * 4 + [0] * 6 for _ in range(12)],
        coincidentrateunit="kW",
    )
    m = compute_bill(t, january_load()).months[0]
    # 14:00–18:00 every day: the 60 kW of Jan 10 17:00 counts, the 110 kW at 12:00 does not
    assert m.coincident_by_period == pytest.approx({"coincident 0": 220.0, "coincident 1": 120.0})
    assert m.coincident == pytest.approx(340.0)
    assert m.total == pytest.approx(2491.5 + 340.0)


def test_coincident_peak_events_reopt_style() -> None:
    events = CoincidentPeakEvents(((1, 2, 100), (6000, 7000)), (10.0, 5.0), 1)
    t = Tariff(name="cp", coincident_events=events)
    load = series("2018-01-01", "2019-01-01", "1h", 1.0, tz="UTC")
    load.iloc[99] = 7.0  # step 100 = Jan 5 03:00
    load.iloc[6999] = 3.0  # step 7000 = Oct 19 15:00
    bill = compute_bill(t, load)
    assert bill.coincident == pytest.approx(70.0 + 15.0)
    assert bill.months[0].coincident == pytest.approx(70.0)
    assert bill.months[9].coincident == pytest.approx(15.0)


def test_monthly_and_annual_minimum_charges() -> None:
    t = two_period_tariff(mincharge=3000.0, minchargeunits="$/month")
    m = compute_bill(t, january_load()).months[0]
    assert m.minimum_adjustment == pytest.approx(3000.0 - 2491.5)
    assert m.total == pytest.approx(3000.0)
    t = two_period_tariff(annualmincharge=36500.0)
    bill = compute_bill(t, january_load())
    assert bill.total == pytest.approx(3100.0)  # 31 days of a $36,500/year minimum


def test_to_dict_and_summary_contract() -> None:
    bill = compute_bill(two_period_tariff(), january_load())
    d = bill.to_dict()
    assert set(d) >= {"months", "total"}
    month = d["months"][0]
    assert set(month) >= {"month", "energy", "demand_flat", "demand_tou", "fixed",
                          "export_credit", "total"}
    assert month["month"] == "2018-01" and month["total"] == 2491.5 and d["total"] == 2491.5
    s = bill.summary()
    assert set(s) >= {"total", "energy", "demand", "fixed", "export_credit", "months"}
    assert s["demand"] == pytest.approx(1400.0) and s["months"][0] == month


# ------------------------------------------------------------------------------ errors
def test_naive_index_rejected() -> None:
    s = pd.Series(1.0, index=pd.date_range("2018-01-01", periods=4, freq="15min"))
    with pytest.raises(InputError, match="timezone-aware DatetimeIndex"):
        compute_bill(two_period_tariff(), s)


def test_irregular_index_rejected() -> None:
    s = series("2018-01-01", "2018-01-02").drop(pd.Timestamp("2018-01-01 05:00", tz=TZ))
    with pytest.raises(InputError, match="timestamps must be regular"):
        compute_bill(two_period_tariff(), s)


@pytest.mark.parametrize("day", [0, 29, 2.5])
def test_bad_billing_cycle_day(day) -> None:
    with pytest.raises(InputError, match="billing_cycle_day.*1–28"):
        compute_bill(two_period_tariff(), january_load(), billing_cycle_day=day)


def test_export_price_series_must_cover_load() -> None:
    load = january_load()
    with pytest.raises(InputError, match="no price for 2018-01-31 23:45"):
        compute_bill(two_period_tariff(), load, export_price_per_kwh=load.iloc[:-1] * 0)


def test_bad_history_label() -> None:
    t = parse_urdb({**RATCHET_URDB, "lookbackpercent": 0.5}, "r")
    with pytest.raises(InputError, match="'Dec 2017' is not a month label"):
        compute_bill(t, january_load(), demand_history_kw={"Dec 2017": 1.0})


def test_nan_load_rejected() -> None:
    s = january_load()
    s.iloc[5] = np.nan
    with pytest.raises(InputError, match="non-finite value at 2018-01-01 01:15"):
        compute_bill(two_period_tariff(), s)


# ------------------------------------------------------------------------------ speed
def test_bill_is_fast() -> None:
    t = load_tariff("oregon/PGE_Sch85_TEMPLATE_placeholder_demand")
    month = series("2018-01-01", "2018-02-01", value=50.0)
    year = series("2018-01-01", "2019-01-01", value=50.0)
    compute_bill(t, month)  # warm up
    t0 = time.perf_counter()
    compute_bill(t, month)
    t1 = time.perf_counter()
    compute_bill(t, year)
    t2 = time.perf_counter()
    assert t1 - t0 < 0.05, f"a month took {t1 - t0:.3f} s"
    assert t2 - t1 < 0.5, f"a year took {t2 - t1:.3f} s"


# ------------------------------------------------------------------------------ properties
def _bundled(name: str) -> Tariff:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedTariffFeature)
        return load_tariff(name)


PROPERTY_TARIFFS = {
    "sch85": _bundled("oregon/PGE_Sch85_TEMPLATE_placeholder_demand"),
    "sce_tou8": _bundled("california_ev/SCE_TOU-8_Option-D_Under-2-kV"),
    "peco_coincident_export": _bundled("PECO_GS-HT_coincident_53ac8daa5257a3406ac32a35"),
    "tiered": _bundled("reopt_jl_tests/tiered_tou_demand"),
    "bev_subscription": replace(
        _bundled("california_ev/PGE_BEV-2-S_2025-09-08"),
        subscription=SubscriptionCharge(50, 95.56, 3.82),
        ratchets=(),
    ),
}
LINE_ITEMS = ("energy", "demand_flat", "ratchet", "demand_tou", "coincident", "subscription",
              "fixed", "minimum_adjustment", "export_credit")

hourly_profiles = st.lists(
    st.floats(min_value=-50.0, max_value=500.0, allow_nan=False), min_size=24, max_size=24
)


def _profile(hours: list[float], days: int = 40, freq: str = "15min") -> pd.Series:
    idx = pd.date_range(pd.Timestamp("2018-01-20", tz=TZ), periods=days * 24 * 60 // int(
        pd.Timedelta(freq).total_seconds() // 60), freq=freq)
    return pd.Series(np.asarray(hours)[idx.hour.to_numpy()] * (1 + 0.01 * idx.day.to_numpy()),
                     index=idx)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hours=hourly_profiles, name=st.sampled_from(sorted(PROPERTY_TARIFFS)),
       cycle_day=st.sampled_from([1, 10]))
def test_total_is_sum_of_line_items(hours: list[float], name: str, cycle_day: int) -> None:
    bill = compute_bill(PROPERTY_TARIFFS[name], _profile(hours), billing_cycle_day=cycle_day)
    for m in bill.months:
        assert m.total == pytest.approx(sum(getattr(m, k) for k in LINE_ITEMS), abs=1e-6)
        assert m.export_credit <= 0.0
        assert m.energy == pytest.approx(sum(m.energy_by_period.values()), abs=1e-6)
        assert m.demand_tou == pytest.approx(sum(m.demand_tou_by_period.values()), abs=1e-6)
    assert bill.total == pytest.approx(sum(m.total for m in bill.months))
    assert bill.summary()["demand"] == pytest.approx(
        bill.demand_flat + bill.demand_tou + bill.ratchet + bill.coincident + bill.subscription,
        abs=0.02,
    )


@settings(max_examples=30, deadline=None)
@given(hours=hourly_profiles, k=st.floats(min_value=0.1, max_value=20.0),
       name=st.sampled_from(["sch85", "sce_tou8", "peco_coincident_export"]))
def test_bill_scales_linearly_without_fixed_charges(hours: list[float], k: float,
                                                    name: str) -> None:
    tariff = replace(PROPERTY_TARIFFS[name], fixed=FixedCharges())
    load = _profile(hours, days=20)
    assert compute_bill(tariff, load * k).total == pytest.approx(
        k * compute_bill(tariff, load).total, rel=1e-9, abs=1e-6
    )


@settings(max_examples=20, deadline=None)
@given(hours=hourly_profiles, name=st.sampled_from(sorted(PROPERTY_TARIFFS)))
def test_energy_charge_invariant_to_resolution(hours: list[float], name: str) -> None:
    tariff = PROPERTY_TARIFFS[name]
    bills = [compute_bill(tariff, _profile(hours, 35, f)) for f in ("1h", "15min", "5min")]
    for b in bills[1:]:
        for m, ref in zip(b.months, bills[0].months, strict=True):
            assert m.energy == pytest.approx(ref.energy, rel=1e-9, abs=1e-6)
            assert m.export_credit == pytest.approx(ref.export_credit, rel=1e-9, abs=1e-6)
            assert m.peak_kw == pytest.approx(ref.peak_kw, rel=1e-9)


def test_bill_type() -> None:
    assert isinstance(compute_bill(two_period_tariff(), january_load()), Bill)


def test_energy_charge_without_energy_structure_is_zero() -> None:
    t = Tariff(name="demand only",
               flat_demand=FlatDemandCharge((DemandPeriod((DemandTier(1.0),)),), (0,) * 12))
    m = compute_bill(t, january_load()).months[0]
    assert (m.energy, m.demand_flat) == (0.0, pytest.approx(110.0))


def test_energy_charge_model_direct() -> None:
    sched = tuple((0,) * 24 for _ in range(12))
    t = Tariff(name="flat", energy=EnergyCharge((EnergyPeriod((EnergyTier(0.2),), "all"),),
                                                sched, sched))
    assert compute_bill(t, january_load()).energy == pytest.approx(7515 * 0.2)
