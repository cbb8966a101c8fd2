import math

import numpy as np
import pytest

from fleetcharge.v2g.economics import (
    annual_value,
    bidirectional_premium_usd,
    npv,
    payback_years,
)


def test_waterfall_sums_to_total():
    value = annual_value(
        12_000.0,
        10_500.0,
        export_revenue_usd=300.0,
        program_payments_usd=1_380.0,
        degradation_usd=27.6,
        other_costs_usd=150.0,
    )
    assert math.fsum(usd for _, usd in value.waterfall) == pytest.approx(value.total_usd, abs=1e-9)
    assert value.total_usd == pytest.approx(1_500.0 + 300.0 + 1_380.0 - 27.6 - 150.0)
    labels = [label for label, _ in value.waterfall]
    assert labels[0].startswith("bill saving") and "battery degradation" in labels
    assert dict(value.waterfall)["battery degradation"] == pytest.approx(-27.6)
    assert value.lines()[-1].endswith(f"{value.total_usd:,.2f}")


def test_monthly_results_are_summed():
    v1g = np.full(12, 1_000.0)
    v2g = np.full(12, 950.0)
    program = [0, 0, 0, 0, 200.0, 200.0, 200.0, 200.0, 200.0, 200.0, 0, 0]
    value = annual_value(v1g, v2g, program_payments_usd=program, degradation_usd=[10.0] * 12)
    assert value.total_usd == pytest.approx(600.0 + 1_200.0 - 120.0)


def test_losses_in_net_meter_bills_are_not_counted_twice():
    with pytest.raises(ValueError, match="round_trip_loss_usd double counts"):
        annual_value(1000.0, 900.0, round_trip_loss_usd=20.0)
    gross = annual_value(1000.0, 900.0, round_trip_loss_usd=20.0, export_revenue_usd=150.0,
                         bills_on_net_meter_load=False)
    assert gross.total_usd == pytest.approx(100.0 + 150.0 - 20.0)
    assert not gross.bills_on_net_meter_load


def test_negative_cost_rejected():
    with pytest.raises(ValueError, match="degradation_usd is a cost and must be ≥ 0"):
        annual_value(1000.0, 900.0, degradation_usd=-5.0)
    with pytest.raises(ValueError, match="bill_v2g_usd must be finite"):
        annual_value(1000.0, float("nan"))


def test_npv_flat_annuity_against_closed_form():
    a, n, r, upfront = 1_238.0, 12, 0.06, 5_000.0
    closed = a * (1 - (1 + r) ** -n) / r - upfront
    assert npv(a, n, r, upfront) == pytest.approx(closed, rel=1e-12)


def test_npv_growing_annuity_and_r_equals_g():
    a, n, r, g = 1_000.0, 10, 0.07, 0.03
    closed = a * (1 - ((1 + g) / (1 + r)) ** n) / (r - g)
    assert npv(a, n, r, 0.0, growth_rate=g) == pytest.approx(closed, rel=1e-12)
    assert npv(a, n, 0.05, 0.0, growth_rate=0.05) == pytest.approx(n * a / 1.05)
    assert npv(a, 0, r, 250.0) == -250.0


def test_npv_vectorised_over_scenarios():
    out = npv(np.array([0.0, 1_000.0]), 2, 0.0, np.array([100.0, 500.0]))
    np.testing.assert_allclose(out, [-100.0, 1_500.0])


def test_bidirectional_premium_per_port():
    assert bidirectional_premium_usd(10, 4_000.0, site_fixed_usd=25_000.0) == 65_000.0
    assert bidirectional_premium_usd(0, 4_000.0) == 0.0
    with pytest.raises(ValueError, match="ports must be a whole number"):
        bidirectional_premium_usd(2.5, 4_000.0)
    with pytest.raises(ValueError, match="premiums must be ≥ 0"):
        bidirectional_premium_usd(2, -1.0)


def test_premium_feeds_npv():
    upfront = bidirectional_premium_usd(4, 5_000.0)
    assert npv(1_238.0 * 4, 12, 0.06, upfront) == pytest.approx(4 * npv(1_238.0, 12, 0.06, 5_000.0))


def test_payback():
    assert payback_years(1_000.0, 4_500.0) == pytest.approx(4.5)
    assert payback_years(1_000.0, 0.0) == 0.0
    assert payback_years(-10.0, 1_000.0) == math.inf
    assert payback_years(100.0, 10_000.0, discount_rate=0.06) == math.inf
    # discounted: cumulative PV reaches the cost inside year n where the annuity factor crosses
    a, r, upfront = 1_000.0, 0.06, 4_000.0
    t = payback_years(a, upfront, discount_rate=r)
    assert 4 < t < 5
    assert npv(a, 4, r, upfront) < 0 < npv(a, 5, r, upfront)
    # growth shortens payback
    assert payback_years(a, upfront, growth_rate=0.1) < 4.0


def test_rates_validated():
    with pytest.raises(ValueError, match="rates must be > −1"):
        npv(1.0, 3, -1.5, 0.0)
    with pytest.raises(ValueError, match="years must be a whole number"):
        npv(1.0, 2.5, 0.05, 0.0)
