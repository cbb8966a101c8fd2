"""URDB / REopt tariff import: field mapping, variants, warnings and malformed input."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleetcharge.errors import InputError
from fleetcharge.tariff import (
    DemandRatchet,
    FixedCharges,
    MinimumCharge,
    SubscriptionCharge,
    TariffWarning,
    UnsupportedTariffFeature,
    load_tariff,
    parse_urdb,
    read_urdb,
)
from fleetcharge.timegrid import Horizon


ZERO = [[0] * 24 for _ in range(12)]
SUMMER_PEAK = [[0] * 24 if m < 5 or m > 8 else [0] * 16 + [1] * 5 + [0] * 3 for m in range(12)]

BASE = {
    "label": "TEST-1",
    "utility": "Test Utility",
    "name": "Test rate",
    "description": "free text is metadata",
    "energyratestructure": [
        [{"rate": 0.1, "adj": 0.01, "unit": "kWh"}],
        [{"rate": 0.3, "adj": 0.02, "unit": "kWh", "sell": 0.04}],
    ],
    "energytoulabels": ["Off", "On"],
    "energyweekdayschedule": SUMMER_PEAK,
    "energyweekendschedule": ZERO,
    "flatdemandstructure": [[{"rate": 5.0}], [{"rate": 7.0, "adj": 1.0}]],
    "flatdemandmonths": [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0],
    "flatdemandunit": "kW",
    "demandratestructure": [[{"rate": 0.0}], [{"rate": 9.0, "max": 100}, {"rate": 4.0}]],
    "demandweekdayschedule": SUMMER_PEAK,
    "demandweekendschedule": ZERO,
    "demandrateunit": "kW",
    "fixedchargefirstmeter": 25.0,
    "fixedchargeunits": "$/month",
}


def rate(**changes) -> dict:
    d = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


# ------------------------------------------------------------------------------ mapping
def test_bare_rate_fields_are_mapped() -> None:
    t = parse_urdb(rate(), "base.json")
    assert (t.name, t.utility, t.label, t.source) == ("Test rate", "Test Utility", "TEST-1",
                                                      "base.json")
    assert [p.label for p in t.energy.periods] == ["Off", "On"]
    assert t.energy.periods[1].tiers[0].rate_per_kwh == pytest.approx(0.32)
    assert t.energy.periods[1].tiers[0].sell_per_kwh == pytest.approx(0.04)
    assert t.flat_demand.month_period == (0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0)
    assert t.flat_demand_rate_per_kw(7) == pytest.approx(8.0)
    assert t.flat_demand_rate_per_kw(1) == pytest.approx(5.0)
    tiers = t.tou_demand.periods[1].tiers
    assert [(x.rate_per_kw, x.max_kw) for x in tiers] == [(9.0, 100.0), (4.0, math.inf)]
    assert t.fixed == FixedCharges(per_month=25.0)
    assert t.demand_window_min == 15 and t.ratchets == () and t.metering_rule is None
    assert t.features == ("tou_energy", "flat_demand", "tou_demand", "fixed", "export")
    assert t.notes == ()


def test_vectorised_accessors_follow_the_horizon_calendar() -> None:
    t = parse_urdb(rate(), "base.json")
    tz = "America/Los_Angeles"
    # Friday 2018-07-06 and Saturday 2018-07-07, hourly
    h = Horizon(pd.Timestamp("2018-07-06", tz=tz), pd.Timestamp("2018-07-08", tz=tz), 60, tz)
    period = t.energy_period(h)
    assert period[:24].tolist() == [0] * 16 + [1] * 5 + [0] * 3
    assert period[24:].tolist() == [0] * 24
    rate_kwh = t.energy_rate_per_kwh(h)
    assert rate_kwh[17] == pytest.approx(0.32) and rate_kwh[17 + 24] == pytest.approx(0.11)
    assert t.sell_rate_per_kwh(h)[17] == pytest.approx(0.04)
    assert t.demand_tou_period(h)[17] == 1 and t.demand_tou_period(h)[41] == 0
    assert t.tou_demand_rate_per_kw(1) == 9.0
    assert t.tou_demand_rates_per_kw().tolist() == [0.0, 9.0]
    winter = Horizon(pd.Timestamp("2018-01-05", tz=tz), pd.Timestamp("2018-01-06", tz=tz), 15, tz)
    assert t.energy_period(winter).max() == 0
    assert t.coincident_period(winter).tolist() == [-1] * 96


def test_items_wrapper_uses_first_rate_and_warns_on_several() -> None:
    one = parse_urdb({"items": [rate()]}, "one.json")
    assert one.name == "Test rate"
    second = rate(name="Second")
    with pytest.warns(TariffWarning, match="items holds 2 rates .* the first is used"):
        t = parse_urdb({"items": [rate(), second]}, "two.json")
    assert t.name == "Test rate"
    with pytest.raises(InputError, match="holds no rates"):
        parse_urdb({"items": []}, "none.json")


def test_case_variants_from_real_files_are_understood() -> None:
    d = rate(flatdemandunit=None, demandrateunit=None)
    d.update({"flatDemandUnits": "kW", "demandRateUnits": "kW", "dgRules": "Net Metering",
              "demandComments": "text", "sourceReference": "http://x", "supercedes": "abc",
              "FixedChargeFirstMeter": 25.0})
    d.pop("fixedchargefirstmeter")
    t = parse_urdb(d, "variants.json")  # no warning: pytest turns warnings into errors
    assert t.metering_rule == "Net Metering"
    assert t.fixed.per_month == 25.0


def test_same_field_twice_with_different_values_is_an_error() -> None:
    d = rate()
    d["FLATDEMANDMONTHS"] = [1] * 12
    with pytest.raises(InputError, match="given twice"):
        parse_urdb(d, "dup.json")


def test_fixed_charge_units_and_legacy_field() -> None:
    assert parse_urdb(rate(fixedchargeunits="$/day"), "x").fixed == FixedCharges(per_day=25.0)
    assert parse_urdb(rate(fixedchargeunits="$/year"), "x").fixed == FixedCharges(per_year=25.0)
    legacy = rate(fixedchargefirstmeter=None, fixedchargeunits=None, fixedmonthlycharge=259.2)
    assert parse_urdb(legacy, "x").fixed == FixedCharges(per_month=259.2)
    with pytest.warns(UnsupportedTariffFeature, match="fixedmonthlycharge differs"):
        parse_urdb(rate(fixedmonthlycharge=30.0), "x")
    with pytest.raises(InputError, match=r"fixedchargeunits '\$/week' is not"):
        parse_urdb(rate(fixedchargeunits="$/week"), "x")


def test_minimum_charges() -> None:
    m = parse_urdb(rate(mincharge=100.0, minchargeunits="$/day"), "x").minimum
    assert m == MinimumCharge(per_day=100.0)
    legacy = parse_urdb(rate(minmonthlycharge=50.0, annualmincharge=900.0), "x").minimum
    assert legacy == MinimumCharge(per_month=50.0, per_year=900.0)


def test_ratchet_fields() -> None:
    t = parse_urdb(rate(lookbackpercent=0.6, lookbackrange=11,
                        lookbackmonths=[False] * 5 + [True] * 4 + [False] * 3), "x")
    assert t.ratchets == (DemandRatchet((0.6,) * 12, 11,
                                        (False,) * 5 + (True,) * 4 + (False,) * 3, "lookback"),)
    pct = parse_urdb(rate(lookbackpercent=75), "x").ratchets[0]
    assert pct.fraction_by_month == (0.75,) * 12 and pct.lookback_months == 12
    drp = parse_urdb(rate(demandratchetpercentage=[0.0] * 6 + [0.9] * 6), "x").ratchets[0]
    assert drp.fraction_by_month == (0.0,) * 6 + (0.9,) * 6 and drp.lookback_months == 11
    assert parse_urdb(rate(demandratchetpercentage=[0] * 12), "x").ratchets == ()
    with pytest.warns(UnsupportedTariffFeature, match="ratchet without a flat demand charge"):
        t = parse_urdb(rate(flatdemandstructure=None, flatdemandmonths=None,
                            lookbackpercent=0.5), "x")
    assert t.ratchets == ()


def test_demand_window_coincident_alias_and_extensions() -> None:
    t = parse_urdb(
        rate(
            demandwindow=30,
            coincidentratestructure=[[{"rate": 0.79}]],
            coincidentschedule=ZERO,
            coincidentrateunit="kW",
            fleetcharge_subscription={"block_kw": 50, "price_per_block": 95.56,
                                      "overage_per_kw": 3.82, "subscribed_blocks": 4},
            fleetcharge_export_rate_per_kwh=0.05,
        ),
        "x",
    )
    assert t.demand_window_min == 30
    assert t.coincident.periods[0].tiers[0].rate_per_kw == 0.79
    assert t.subscription == SubscriptionCharge(50.0, 95.56, 3.82, 4)
    assert t.export_rate_per_kwh == 0.05
    same = parse_urdb(rate(coincidentratestructure=[[{"rate": 0.79}]],
                           coincidentrateschedule=ZERO), "x")
    assert same.coincident == t.coincident


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        ({"block_kw": 50, "price_per_block": 1.0}, "missing overage_per_kw"),
        ({"block_kw": 50, "price_per_block": 1, "overage_per_kw": 1, "blocks": 2},
         "unknown key"),
        ({"block_kw": 0, "price_per_block": 1, "overage_per_kw": 1}, "must be positive"),
        ({"block_kw": 50, "price_per_block": 1, "overage_per_kw": 1, "subscribed_blocks": 1.5},
         "whole number"),
        ([50, 95.56], "must be an object"),
    ],
)
def test_bad_subscription_extension(sub, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_urdb(rate(fleetcharge_subscription=sub), "sub.json")


def test_energy_tier_units() -> None:
    tiers = [{"rate": 0.1, "max": 10, "unit": "kWh daily"}, {"rate": 0.2, "unit": "kWh daily"}]
    t = parse_urdb(rate(energyratestructure=[tiers, tiers]), "x")
    assert t.energy.periods[0].limits(days=30, peak_kw=0).tolist() == [300.0, math.inf]
    kw = [{"rate": 0.1, "max": 200, "unit": "kWh/kW"}, {"rate": 0.2}]
    t = parse_urdb(rate(energyratestructure=[kw, kw]), "x")
    assert t.energy.periods[0].limits(days=30, peak_kw=50).tolist() == [10000.0, math.inf]
    with pytest.raises(InputError, match="energy tier unit 'therms' is not a URDB unit"):
        parse_urdb(rate(energyratestructure=[[{"rate": 0.1, "unit": "therms"}]] * 2), "x")


def test_huge_or_zero_last_tier_max_means_unlimited() -> None:
    t = parse_urdb(rate(energyratestructure=[[{"rate": 0.1, "max": 1e38}],
                                             [{"rate": 0.1, "max": 5}, {"rate": 0.2, "max": 0}]]),
                   "x")
    assert t.energy.periods[0].tiers[0].max_usage == math.inf
    assert t.energy.periods[1].limits(30, 0).tolist() == [5.0, math.inf]


# ------------------------------------------------------------------------------ unsupported
@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"demandreactivepowercharge": 0.52}, "demandreactivepowercharge: reactive-power"),
        ({"demandReactPwrCharge": 0.25}, "demandreactivepowercharge"),
        ({"fixedchargeeaaddl": 10.0}, "fixedchargeeaaddl: fixed charge for each additional"),
        ({"fueladjustmentsmonthly": [0.01] * 12}, "fueladjustmentsmonthly"),
        ({"flatdemandunit": "kVA"}, "flatdemandstructure unit: demand billed in kVA"),
        ({"demandrateunit": "hp"}, "demand unit 'hp' is not modelled; this charge is left out"),
        ({"flatdemandunit": "kW daily"}, "daily demand unit 'kW daily'"),
        ({"somefuturefield": 3}, "somefuturefield: field is not modelled"),
        ({"energyratestructure": [[{"rate": 0.1, "rebate": 1}], [{"rate": 0.2}]]},
         r"energyratestructure\[0\]\[0\].rebate"),
    ],
)
def test_unsupported_features_warn_naming_the_field(changes: dict, match: str) -> None:
    with pytest.warns(UnsupportedTariffFeature, match=match):
        t = parse_urdb(rate(**changes), "feature.json")
    assert any(re.search(match, note) for note in t.notes)  # and recorded on the tariff


def test_left_out_demand_structures_are_absent() -> None:
    with pytest.warns(UnsupportedTariffFeature, match="hp"):
        t = parse_urdb(rate(demandrateunit="hp"), "x")
    assert t.tou_demand is None and t.flat_demand is not None
    with pytest.warns(UnsupportedTariffFeature, match="kVA"):
        t = parse_urdb(rate(flatdemandunit="kVA"), "x")
    assert t.flat_demand is not None  # treated as kW


def test_zero_valued_unsupported_charges_and_metadata_do_not_warn() -> None:
    t = parse_urdb(rate(demandreactivepowercharge=0, fixedchargeeaaddl=0, revisions=[1, 2],
                        energycomments="x", peakkwcapacitymin=200, _README="notes"), "x")
    assert t.notes == ()


# ------------------------------------------------------------------------------ malformed
def test_schedule_with_23_hours() -> None:
    sched = copy.deepcopy(SUMMER_PEAK)
    sched[2] = sched[2][:23]
    with pytest.raises(
        InputError,
        match=r"energyweekdayschedule row 3 \(Mar\) has 23 hours; URDB schedules are "
        r"12 months × 24 hours",
    ) as exc:
        parse_urdb(rate(energyweekdayschedule=sched), "bad.json")
    assert exc.value.file == "bad.json"
    assert exc.value.location == "energyweekdayschedule[2]"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"demandweekendschedule": ZERO[:11]}, "demandweekendschedule has 11 rows"),
        ({"energyweekdayschedule": [[0] * 96] * 12}, "sub-hourly schedules are not supported"),
        ({"energyweekendschedule": [[2] * 24] * 12},
         r"hour 0 uses period 2 but the rate structure has 2 periods"),
        ({"energyweekendschedule": [[0.5] * 24] * 12}, "period index must be an integer"),
        ({"energyweekdayschedule": None}, "energyweekdayschedule is missing"),
        ({"flatdemandmonths": [0] * 11}, "flatdemandmonths must list 12"),
        ({"flatdemandmonths": [0] * 11 + [3]}, "month 12 uses flat demand period 3"),
        ({"energyratestructure": [[{"rate": 0.1}, {"rate": 0.2}], [{"rate": 0.3}]]},
         r"every tier but the last needs a positive 'max'"),
        ({"demandratestructure": [[{"rate": 1, "max": 50}, {"rate": 2, "max": 40}, {"rate": 3}],
                                  [{"rate": 0}]]}, "tier maxima must increase"),
        ({"energyratestructure": [[{"rate": "cheap"}], [{"rate": 0.2}]]},
         "expected a number, got 'cheap'"),
        ({"energyratestructure": []}, None),
        ({"flatdemandstructure": [[]]}, "non-empty list of tier objects"),
        ({"dgrules": "Feed-in"}, "dgrules 'Feed-in' is not one of"),
        ({"demandwindow": 7.5}, "demandwindow must be whole minutes"),
        ({"lookbackpercent": 0.5, "lookbackmonths": [True] * 11}, "lookbackmonths must list 12"),
    ],
)
def test_malformed_structures(changes: dict, match: str | None) -> None:
    d = rate(**changes)
    if match is None:  # an empty structure is simply no energy charge
        assert parse_urdb(d, "x").energy is None
        return
    with pytest.raises(InputError, match=match):
        parse_urdb(d, "bad.json")


def test_read_urdb_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{"energyratestructure": [[{"rate": 0.1,}]]}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.json: line 1, column 40: not valid JSON"):
        read_urdb(p)
    with pytest.raises(InputError, match="tariff file not found"):
        read_urdb(tmp_path / "missing.json")
    with pytest.raises(InputError, match="a tariff must be a JSON object, got list"):
        parse_urdb([1, 2], "list.json")  # type: ignore[arg-type]


def test_read_urdb_roundtrip(tmp_path: Path) -> None:
    p = tmp_path / "rate.json"
    p.write_text(json.dumps({"items": [rate()]}), encoding="utf-8")
    assert read_urdb(p) == parse_urdb(rate(), str(p))


# ------------------------------------------------------------------------------ REopt inputs
def test_reopt_monthly_rates() -> None:
    t = load_tariff("reopt_jl_tests/monthly_rate")
    assert [p.tiers[0].rate_per_kwh for p in t.energy.periods] == [
        0.15, 0.2, 0.21, 0.23, 0.27, 0.19, 0.22, 0.17, 0.24, 0.26, 0.18, 0.2]
    assert t.energy.weekday_schedule[4] == (4,) * 24
    assert t.flat_demand_rate_per_kw(5) == 0.15 and t.flat_demand_rate_per_kw(3) == 0.0


def test_reopt_coincident_peak_and_blended_rate() -> None:
    t = load_tariff("reopt_jl_tests/coincident_peak")
    assert t.energy.periods[0].tiers[0].rate_per_kwh == 1.0
    assert t.flat_demand is None  # blended demand rate 0
    assert t.coincident_events.windows == ((1, 2, 100), (6000, 7000))
    assert t.coincident_events.rates_per_kw == (10.0, 5.0)
    assert t.coincident_events.steps_per_hour == 1


def test_reopt_urdb_response_inside_scenario() -> None:
    t = load_tariff("reopt_jl_tests/subhourly_with_urdb")
    assert t.metering_rule == "Net Billing Hourly"
    assert t.fixed == FixedCharges(per_month=435.0)
    assert t.energy.periods[4].tiers[0].sell_per_kwh == 0.05819
    assert t.energy.periods[0].tiers[0].max_usage == math.inf  # 1e38 means no limit
    t = load_tariff("reopt_jl_tests/tiered_tou_demand")
    assert [x.max_usage for x in t.energy.periods[0].tiers] == [40000.0, math.inf]


@pytest.mark.parametrize("name", ["URDB_customer_generation", "lookback_rate",
                                  "tiered_energy_rate", "urdb_rate"])
def test_reopt_label_only_scenarios_load_without_charges(name: str) -> None:
    with pytest.warns(UnsupportedTariffFeature, match="urdb_label: the scenario only names"):
        t = load_tariff(f"reopt_jl_tests/{name}")
    assert t.features == () and t.name.startswith("URDB ")


def test_reopt_tou_energy_series_is_folded_into_schedules() -> None:
    idx = pd.date_range("2017-01-01", periods=8760, freq="h")
    prices = np.where((idx.day_of_week < 5) & (idx.hour >= 16) & (idx.hour < 21), 0.3, 0.1)
    scenario = {"ElectricLoad": {"doe_reference_name": "Hospital"},
                "ElectricTariff": {"tou_energy_rates_per_kwh": prices.tolist(),
                                   "wholesale_rate": 0.03,
                                   "demand_lookback_percent": 0.5,
                                   "monthly_demand_rates": [2.0] * 12}}
    t = parse_urdb(scenario, "reopt.json")
    assert [p.tiers[0].rate_per_kwh for p in t.energy.periods] == [0.1, 0.3]
    assert t.energy.weekday_schedule[0] == (0,) * 16 + (1,) * 5 + (0,) * 3
    assert t.energy.weekend_schedule[6] == (0,) * 24
    assert t.export_rate_per_kwh == 0.03
    assert t.ratchets[0].fraction_by_month == (0.5,) * 12
    noisy = scenario | {"ElectricTariff": scenario["ElectricTariff"]
                        | {"tou_energy_rates_per_kwh": (prices + idx.day / 1000).tolist()}}
    with pytest.warns(UnsupportedTariffFeature, match="mean of each group"):
        parse_urdb(noisy, "reopt.json")
    with pytest.raises(InputError, match="has 100 values; expected 8760"):
        parse_urdb({"ElectricTariff": {"tou_energy_rates_per_kwh": [0.1] * 100}}, "r.json")


def test_reopt_unknown_tariff_input_warns() -> None:
    with pytest.warns(UnsupportedTariffFeature, match="ElectricTariff.magic_rate"):
        parse_urdb({"ElectricTariff": {"blended_annual_energy_rate": 0.1, "magic_rate": 1}}, "r")
    with pytest.raises(InputError, match="no tariff inputs found"):
        parse_urdb({"ElectricTariff": {}}, "r.json")
