"""Cross-check the bill engine against NREL PySAM ``Utilityrate5`` (an independent oracle).

Every bundled tariff PySAM can evaluate is billed for a 2018 load at 15 minutes (8760 × 4 steps)
in a fixed-offset zone without DST (``Etc/GMT+8``): SAM's calendar has Jan 1 on a Monday and 365
days, which 2018 matches. Each line item of each month must agree within $0.01: energy (gross of
export credits), export credit, flat demand, TOU demand, fixed, total.

How PySAM is driven (tariffs.md §2): ``URDBv8_to_ElectricityRates`` mutates its input, so it gets
a fresh copy made by a JSON round trip (``copy.deepcopy`` would keep the weekday and weekend
schedules aliased when a file uses one list for both, and the helper would then add 1 twice); it
drops the legacy ``fixedmonthlycharge`` (patched in); the metering option is set to 2 (net billing
per interval), which is what fleetcharge does; its look-back handling is not used (ratchets are
configured directly in ``test_ratchet_matches_pysam_billing_demand``).

Bundled tariffs not compared, and why:

* ``reopt_api_tests/custom_rate_reopt_api`` — periods have different numbers of energy tiers;
  SAM refuses ("All periods must have the same number of tiers"). Hand-checked in
  test_billing.py instead.
* ``reopt_jl_tests/multi_tier_urdb_response`` — January mixes TOU demand periods with different
  tier limits; SAM refuses. Hand-checked in test_billing.py.
* ``reopt_jl_tests/monthly_rate`` and ``coincident_peak`` — REopt inputs, not URDB rates.
* ``reopt_jl_tests/URDB_customer_generation``, ``lookback_rate``, ``tiered_energy_rate``,
  ``urdb_rate`` — only name a URDB label; no rate data to compare.

``reopt_api_tests/PECO_GS-HT_coincident…`` has a coincident charge and
``california_ev/PGE_BEV-2-S_subscription_fleetcharge`` subscription blocks, both of which SAM
ignores: every other line item is compared and the total is compared net of that charge.
"""

from __future__ import annotations

import json
import warnings
from importlib import resources

import numpy as np
import pandas as pd
import pytest

ur5 = pytest.importorskip("PySAM.Utilityrate5")
from PySAM.UtilityRateTools import URDBv8_to_ElectricityRates  # noqa: E402

from fleetcharge.billing import compute_bill  # noqa: E402
from fleetcharge.tariff import UnsupportedTariffFeature, parse_urdb  # noqa: E402


TZ = "Etc/GMT+8"
IDX = pd.date_range("2018-01-01", periods=8760 * 4, freq="15min", tz=TZ)

COMPARED = [
    "california_ev/PGE_BEV-2-S_2025-09-08",
    "california_ev/PGE_BEV-2-S_2025-09-08_Neat",
    "california_ev/PGE_BEV-2-S_subscription_fleetcharge",
    "california_ev/SCE_TOU-8_Option-D_Under-2-kV",
    "california_ev/SCE_TOU-EV-9_below-2kV_2025-09-08_Neat",
    "california_ev/SDGE_EV-HP_EECC-CPP-D_2025-09-08_Neat",
    "oregon/PGE_Sch85_TEMPLATE_placeholder_demand",
    "other_real/Sacramento_Municipal_Utility_District_CI_TOD3_Commercial_and_Industrial_TOD_"
    "Secondary_500_999_kW",
    "other_real/Sacramento_Municipal_Utility_District_CI_TOD4_Commercial_and_Industrial_TOD_"
    "Secondary_1000_kW",
    "other_real/San_Diego_Gas_Electric_Co_AL_TOU_Secondary_Above_500kW",
    "reopt_api_tests/Entergy_AR_LPS-TOU_5a592c995457a3371c423a7d",
    "reopt_api_tests/PECO_GS-HT_coincident_53ac8daa5257a3406ac32a35",
    "reopt_api_tests/SCE_GS-2_TOU_B_55fc81d7682bea28da64f9ae",
    "reopt_jl_tests/subhourly_with_urdb",
    "reopt_jl_tests/tiered_energy_demand",
    "reopt_jl_tests/tiered_tou_demand",
]
SHAPES = ["depot_unmanaged", "flat", "noisy", "weekend_different"]


def _urdb_dict(name: str) -> dict:
    path = resources.files("fleetcharge").joinpath("tariff_library", f"{name}.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    if "items" in data:
        data = data["items"][0]
    if "ElectricTariff" in data:
        data = data["ElectricTariff"]["urdb_response"]
    return data


def _shape(name: str, export: bool) -> np.ndarray:
    hour = IDX.hour.to_numpy() + IDX.minute.to_numpy() / 60.0
    weekday = IDX.day_of_week.to_numpy() < 5
    if name == "depot_unmanaged":
        # 30 vans (9 at weekends) plug in at 17:30 on 19.2 kW chargers, ~55 kWh each
        building = 8.0 + 17.0 * ((hour >= 7) & (hour < 18))
        vans = np.where(weekday, 30, 9)
        charging = vans * 19.2 * ((hour >= 17.5) & (hour < 20.25)) + vans * 7.7 * (
            (hour >= 20.25) & (hour < 20.5)
        )
        return building + charging
    if name == "flat":
        return np.full(len(IDX), 150.0)
    if name == "noisy":
        rng = np.random.default_rng(20180101)
        x = rng.normal(80.0, 60.0, len(IDX)) + 40.0 * np.sin(2 * np.pi * hour / 24)
        return x if export else np.clip(x, 0.0, None)
    if name == "weekend_different":
        day = np.where((hour >= 9) & (hour < 17), 200.0, 40.0)
        night = np.where(hour < 6, 250.0, 20.0)
        return np.where(weekday, day, night)
    raise KeyError(name)


def _pysam(
    urdb: dict, load_kw: np.ndarray, rates_extra: dict | None = None, metering: int = 2
) -> dict:
    rates = URDBv8_to_ElectricityRates(json.loads(json.dumps(urdb)))
    if "ur_monthly_fixed_charge" not in rates and "fixedmonthlycharge" in urdb:
        rates["ur_monthly_fixed_charge"] = urdb["fixedmonthlycharge"]
    rates["ur_metering_option"] = metering
    rates["rate_escalation"] = [0]
    rates.update(rates_extra or {})
    model = ur5.new()
    model.Lifetime.assign(
        {"analysis_period": 1, "inflation_rate": 0, "system_use_lifetime_output": 0}
    )
    model.ElectricityRates.assign(rates)
    model.Load.assign({"load": list(np.clip(load_kw, 0, None)), "load_escalation": [0]})
    model.SystemOutput.assign({"gen": list(np.clip(-load_kw, 0, None)), "degradation": [0]})
    model.execute(0)
    return model.Outputs.export()


def _ours(tariff, load_kw: np.ndarray, **kw):
    return compute_bill(tariff, pd.Series(load_kw, IDX), **kw)


def _compare(bill, out: dict, *, sam_ignores: tuple[str, ...] = ()) -> None:
    assert [m.month for m in bill.months] == [f"2018-{m:02d}" for m in range(1, 13)]
    credits = np.asarray(out["year1_net_billing_credits"])
    for i, m in enumerate(bill.months):
        where = f"month {m.month}"
        assert m.energy == pytest.approx(out["year1_monthly_ec_charge_gross_with_system"][i],
                                         abs=0.01), where
        assert m.export_credit == pytest.approx(-credits[i], abs=0.01), where
        assert m.demand_flat + m.ratchet == pytest.approx(
            out["year1_monthly_dc_fixed_with_system"][i], abs=0.01), where
        assert m.demand_tou == pytest.approx(out["year1_monthly_dc_tou_with_system"][i],
                                             abs=0.01), where
        assert m.fixed == pytest.approx(out["year1_monthly_fixed_with_system"][i], abs=0.01), where
        assert m.peak_kw == pytest.approx(out["year1_monthly_peak_w_system"][i], abs=1e-6), where
        total = m.total - sum(getattr(m, item) for item in sam_ignores)
        assert total == pytest.approx(out["year1_monthly_utility_bill_w_sys"][i], abs=0.01), where


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", COMPARED)
def test_bundled_tariff_matches_pysam(name: str, shape: str) -> None:
    urdb = _urdb_dict(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedTariffFeature)  # e.g. reactive power charge
        tariff = parse_urdb(urdb, name)
    export = shape == "noisy" and tariff.has_export_rate
    load = _shape(shape, export)
    if export and tariff.metering_rule not in (None, "Net Billing Instantaneous"):
        with pytest.warns(UnsupportedTariffFeature, match="nets every interval"):
            bill = _ours(tariff, load)
    else:
        bill = _ours(tariff, load)
    if export:
        assert bill.export_kwh > 0 and bill.export_credit < 0
    out = _pysam(urdb, load)
    ignored = ("coincident",) * (tariff.coincident is not None) + (
        ("subscription",) * (tariff.subscription is not None)
    )
    _compare(bill, out, sam_ignores=ignored)
    for item in ignored:
        assert getattr(bill, item) > 0


def test_enough_bundled_tariffs_are_compared() -> None:
    assert len(COMPARED) >= 8


SCHED_2 = [[0] * 16 + [1] * 5 + [0] * 3 for _ in range(12)]
SYNTHETIC = {
    # tiers shared by both TOU periods: SAM splits the month's tiers in proportion to use
    "tiered_tou_energy": {
        "energyratestructure": [
            [{"rate": 0.10, "max": 20000, "unit": "kWh"}, {"rate": 0.14, "max": 60000},
             {"rate": 0.2}],
            [{"rate": 0.25, "max": 20000, "unit": "kWh"}, {"rate": 0.3, "max": 60000},
             {"rate": 0.4}],
        ],
        "energyweekdayschedule": SCHED_2,
        "energyweekendschedule": [[0] * 24 for _ in range(12)],
        "flatdemandstructure": [[{"rate": 12.0, "max": 150}, {"rate": 7.5}], [{"rate": 3.0}]],
        "flatdemandmonths": [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0],
        "fixedchargefirstmeter": 1200.0,
        "fixedchargeunits": "$/year",
    },
    "daily_tiers_and_minimum": {
        "energyratestructure": [[{"rate": 0.1, "max": 1500, "unit": "kWh daily"}, {"rate": 0.3}]],
        "energyweekdayschedule": [[0] * 24 for _ in range(12)],
        "energyweekendschedule": [[0] * 24 for _ in range(12)],
        "mincharge": 9000.0,
        "minchargeunits": "$/month",
    },
    "kwh_per_kw_tiers": {
        "energyratestructure": [[{"rate": 0.1, "max": 60, "unit": "kWh/kW"}, {"rate": 0.05,
                                                                               "unit": "kWh/kW"}]],
        "energyweekdayschedule": [[0] * 24 for _ in range(12)],
        "energyweekendschedule": [[0] * 24 for _ in range(12)],
        "flatdemandstructure": [[{"rate": 0.0}]],
        "flatdemandmonths": [0] * 12,
    },
}


@pytest.mark.parametrize("shape", ["depot_unmanaged", "noisy"])
@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_tiered_tariffs_match_pysam(name: str, shape: str) -> None:
    """Tiered energy on imports. SAM's net-metering option (0) shares a month's tiers among TOU
    periods in proportion to their kWh, as fleetcharge does; its net-billing options fill tiers
    in time order instead, which makes a bill depend on the order of use within the month."""
    urdb = SYNTHETIC[name]
    tariff = parse_urdb(urdb, name)
    load = _shape(shape, export=False)
    bill = _ours(tariff, load)
    out = _pysam(urdb, load, metering=0)
    _compare(bill, out)
    minimum = np.asarray(out["year1_monthly_minimum_with_system"])
    assert [m.minimum_adjustment for m in bill.months] == pytest.approx(minimum, abs=0.01)
    if name == "daily_tiers_and_minimum":
        assert bill.minimum_adjustment > 0  # the minimum bites in some months
    # the tier limits are crossed, so the tier rule is exercised
    kwh_first_tier_price = sum(m.energy_kwh for m in bill.months) * 0.1
    assert abs(bill.energy - kwh_first_tier_price) > 100.0


def test_ratchet_matches_pysam_billing_demand() -> None:
    """A 12-month look-back at 80 % with prior-year peaks, configured in SAM directly."""
    urdb = {
        "energyratestructure": [[{"rate": 0.1}]],
        "energyweekdayschedule": [[0] * 24 for _ in range(12)],
        "energyweekendschedule": [[0] * 24 for _ in range(12)],
        "flatdemandstructure": [[{"rate": 10.0}], [{"rate": 14.0}]],
        "flatdemandmonths": [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0],
        "lookbackpercent": 0.8,
        "lookbackrange": 12,
    }
    tariff = parse_urdb(urdb, "ratchet")
    load = np.full(len(IDX), 100.0)
    load[(IDX.month == 7) & (IDX.day == 10) & (IDX.hour == 18)] = 500.0
    prior = [120.0, 110.0, 100.0, 90.0, 80.0, 300.0, 200.0, 100.0, 100.0, 100.0, 100.0, 100.0]
    history = {f"2017-{m:02d}": kw for m, kw in zip(range(1, 13), prior, strict=True)}
    bill = _ours(tariff, load, demand_history_kw=history)
    out = _pysam(
        urdb,
        load,
        {
            "ur_enable_billing_demand": 1,
            "ur_billing_demand_lookback_period": 12,
            "ur_billing_demand_lookback_percentages": [[80.0, 1.0] for _ in range(12)],
            "ur_billing_demand_minimum": 0,
            "ur_dc_billing_demand_periods": [[1, 1]],
            "ur_yearzero_usage_peaks": prior,
        },
    )
    billing_demand = [m.billing_demand_kw for m in bill.months]
    assert billing_demand == pytest.approx(out["year1_billing_demand_w_sys"], abs=1e-6)
    assert billing_demand[0] == pytest.approx(240.0)  # 80 % of June 2017's 300 kW
    assert billing_demand[7] == pytest.approx(400.0)  # 80 % of July 2018's 500 kW
    _compare(bill, out)
    assert bill.ratchet > 0
