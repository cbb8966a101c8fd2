import math

import numpy as np
import pytest

from fleetcharge.v2g.economics import npv
from fleetcharge.v2g.options import (
    OptionCase,
    activation_factor,
    binomial_lattice,
    cross_check,
    longstaff_schwartz,
    option_value,
    static_npv_buy_now_usd,
)

# Reference case: an ELRP-like program worth ≈ $1,000/yr per ~11 kW port once it exists
# (market-and-v2g-economics.md §4.2: $619–1,238 net), 25 %/yr arrival hazard, σ = 0.5,
# $3k premium now (low end of §4.3's $3–5k/port), $8k to retrofit/replace later, r = 6 %, 12 yr.
REFERENCE = OptionCase(
    annual_value_usd=1_000.0,
    volatility=0.5,
    arrival_probability_per_year=0.25,
    premium_now_usd=3_000.0,
    premium_later_usd=8_000.0,
)


def test_two_step_lattice_by_hand():
    case = OptionCase(1_000.0, 0.5, 0.5, premium_now_usd=300.0, premium_later_usd=1_000.0,
                      discount_rate=0.10, life_years=2)
    u, d = math.exp(0.5), math.exp(-0.5)
    q = (1 - d) / (u - d)
    a1 = 1 / 1.1  # one payment left after activating at t = 1
    # wait: at t = 1 the program has arrived with probability 0.5; retrofit only in the up state
    up_payoff = 1_000.0 * u * a1 - 1_000.0
    assert 1_000.0 * d * a1 - 1_000.0 < 0
    wait = 0.5 * q * up_payoff / 1.1
    # buy now: activation is free, so activate on arrival in both states
    activate = 0.5 * (q * 1_000.0 * u + (1 - q) * 1_000.0 * d) * a1 / 1.1
    result = binomial_lattice(case, steps_per_decision=1)
    assert result.value_wait_usd == pytest.approx(wait, rel=1e-12)  # ≈ 85.60
    assert result.value_buy_now_usd == pytest.approx(activate - 300.0, rel=1e-12)  # ≈ 113.22
    assert result.option_value_of_buying_now_usd == pytest.approx(activate - 300.0 - wait)
    assert result.max_premium_now_usd == pytest.approx(activate - wait)
    assert result.decision == "buy now"
    assert result.standard_error_usd is None
    assert wait == pytest.approx(85.60, abs=0.01)


def test_zero_volatility_certain_program_equals_closed_form_npv():
    v0, r, g, years = 800.0, 0.07, 0.02, 10
    case = OptionCase(v0, 0.0, 1.0, premium_now_usd=2_000.0, premium_later_usd=5_000.0,
                      discount_rate=r, growth_rate=g, life_years=years, program_available_now=True)
    lattice = binomial_lattice(case, steps_per_decision=3)
    assert lattice.value_buy_now_usd == pytest.approx(npv(v0, years, r, 2_000.0, g), rel=1e-12)
    assert lattice.static_npv_buy_now_usd == pytest.approx(lattice.value_buy_now_usd, rel=1e-12)
    # waiting: best deterministic retrofit date, or never
    k = np.arange(years)
    retrofit = (v0 * (1 + g) ** k * activation_factor(case)[k] - 5_000.0) / (1 + r) ** k
    assert lattice.value_wait_usd == pytest.approx(max(retrofit.max(), 0.0), rel=1e-12)
    lsmc = longstaff_schwartz(case, n_paths=1_000)
    assert lsmc.value_buy_now_usd == pytest.approx(lattice.value_buy_now_usd, rel=1e-12)
    assert lsmc.value_wait_usd == pytest.approx(lattice.value_wait_usd, rel=1e-12)
    assert lsmc.standard_error_usd == pytest.approx(0.0, abs=1e-9)


def test_certain_arrival_next_year_zero_volatility():
    case = OptionCase(1_000.0, 0.0, 1.0, premium_now_usd=500.0, premium_later_usd=0.0,
                      discount_rate=0.05, life_years=5)
    # the program arrives at t = 1 for sure and pays for the remaining 4 years
    expected = npv(1_000.0, 4, 0.05, 0.0) / 1.05
    result = binomial_lattice(case, steps_per_decision=1)
    assert result.value_buy_now_usd == pytest.approx(expected - 500.0, rel=1e-12)
    assert result.value_wait_usd == pytest.approx(expected, rel=1e-12)  # free retrofit
    assert result.decision == "wait"


def test_activation_factor_matches_npv_convention():
    case = OptionCase(1.0, 0.2, 0.1, 0.0, 0.0, discount_rate=0.06, growth_rate=0.01,
                      life_years=12)
    a = activation_factor(case)
    assert a[0] == pytest.approx(npv(1.0, 12, 0.06, 0.0, 0.01))
    assert a[-1] == 0.0 and len(a) == 13
    quarterly = OptionCase(1.0, 0.2, 0.1, 0.0, 0.0, life_years=3, decisions_per_year=4)
    assert len(activation_factor(quarterly)) == 13
    assert activation_factor(quarterly)[0] == pytest.approx(
        sum(0.25 / 1.06 ** (0.25 * (j + 1)) for j in range(12))
    )


def test_static_npv_matches_lattice_when_activation_is_free():
    # with free activation the buy-now holder activates on arrival, so no flexibility is lost
    lattice = binomial_lattice(REFERENCE)
    assert lattice.value_buy_now_usd == pytest.approx(static_npv_buy_now_usd(REFERENCE), rel=1e-9)


def test_reference_case_lattice_and_lsmc_agree():
    check = cross_check(REFERENCE)
    lattice, lsmc = check.lattice, check.lsmc
    assert check.agree, (check.max_difference_usd, check.tolerance_usd)
    for a, b, se in [
        (lattice.value_buy_now_usd, lsmc.value_buy_now_usd, lsmc.standard_error_buy_now_usd),
        (lattice.value_wait_usd, lsmc.value_wait_usd, lsmc.standard_error_wait_usd),
        (lattice.option_value_of_buying_now_usd, lsmc.option_value_of_buying_now_usd,
         lsmc.standard_error_usd),
    ]:
        assert abs(a - b) <= 3 * se + 0.01 * abs(lattice.value_buy_now_usd)
    assert lsmc.standard_error_wait_usd < 0.02 * lattice.value_wait_usd
    # pinned numbers of the reference case (lattice, 50 steps per year)
    assert lattice.value_buy_now_usd == pytest.approx(2_208.8, abs=0.1)
    assert lattice.value_wait_usd == pytest.approx(1_675.0, abs=0.1)
    assert lattice.decision == lsmc.decision == "buy now"
    assert "Buy bidirectional now" in lattice.interpretation
    assert "$3,000 premium" in lattice.interpretation


def test_reproduces_reference_notes_toy_model():
    # market-and-v2g-economics.md §4.4 (annual recombining binomial, r = 6 %, g = 0, 12 years):
    # A0 = $300/yr, σ = 0.5, immediate activation at K = $3,000: NPV −$485, option value $522.
    toy = OptionCase(300.0, 0.5, 1.0, premium_now_usd=3_000.0, premium_later_usd=3_000.0,
                     program_available_now=True)
    assert static_npv_buy_now_usd(toy) == pytest.approx(-485.0, abs=0.5)
    assert binomial_lattice(toy, 1).value_wait_usd == pytest.approx(522.0, abs=0.5)
    # A0 = $500/yr, σ = 0.6: V(K = $1k) = $3,192 vs V(K = $15k) = $393 → premium ≈ $2.8k/port;
    # A0 = $1,000 → ≈ $5.8k; A0 = $2,000 → ≈ $10.3k.
    for a0, activate, retrofit, premium in [
        (500.0, 3_192.0, 393.0, 2_800.0),
        (1_000.0, None, None, 5_800.0),
        (2_000.0, None, None, 10_300.0),
    ]:
        case = OptionCase(a0, 0.6, 1.0, premium_now_usd=0.0, premium_later_usd=14_000.0,
                          activation_usd=1_000.0, program_available_now=True)
        result = binomial_lattice(case, 1)
        assert result.max_premium_now_usd == pytest.approx(premium, abs=50.0)
        if activate is not None:
            assert result.value_buy_now_usd == pytest.approx(activate, abs=0.5)
            assert result.value_wait_usd == pytest.approx(retrofit, abs=0.5)


def test_lattice_converges_in_steps():
    coarse = binomial_lattice(REFERENCE, 25).value_wait_usd
    fine = binomial_lattice(REFERENCE, 200).value_wait_usd
    assert coarse == pytest.approx(fine, rel=2e-3)


@pytest.mark.parametrize(
    "case",
    [
        OptionCase(300.0, 0.5, 0.1, 0.0, 20_000.0),  # retrofit never pays in expectation
        OptionCase(1_000.0, 0.8, 0.3, 5_000.0, 9_000.0, growth_rate=-0.05),
        OptionCase(2_000.0, 0.3, 0.0, 4_000.0, 6_000.0),  # no program ever arrives
    ],
)
def test_wait_option_is_never_negative(case):
    for result in (binomial_lattice(case, 10), longstaff_schwartz(case, n_paths=2_000)):
        assert result.value_wait_usd >= 0.0
        assert result.value_buy_now_usd >= -case.premium_now_usd - 1e-9


def test_no_program_ever_means_wait():
    case = OptionCase(2_000.0, 0.3, 0.0, 4_000.0, 6_000.0)
    result = binomial_lattice(case, 10)
    assert result.value_wait_usd == 0.0
    assert result.value_buy_now_usd == pytest.approx(-4_000.0)
    assert result.decision == "wait"
    assert result.interpretation.startswith("Wait:")
    assert "probability 0%" in result.interpretation


def test_buying_now_gains_value_as_retrofit_gets_dearer():
    values = [
        binomial_lattice(
            OptionCase(1_000.0, 0.5, 0.25, 3_000.0, later), steps_per_decision=10
        ).option_value_of_buying_now_usd
        for later in (3_000.0, 8_000.0, 15_000.0)
    ]
    assert values[0] < values[1] < values[2]
    # retrofit at the same price as now: waiting is never worse
    assert values[0] <= 1e-9


def test_activation_cost_makes_buy_now_an_option_too():
    case = OptionCase(1_000.0, 0.5, 0.25, 3_000.0, 8_000.0, activation_usd=4_000.0)
    result = binomial_lattice(case, 20)
    assert result.value_buy_now_usd > result.static_npv_buy_now_usd
    check = cross_check(case, steps_per_decision=20, n_paths=10_000)
    assert check.agree


def test_option_value_dispatcher():
    assert option_value(REFERENCE, "Lattice", steps_per_decision=5) == binomial_lattice(
        REFERENCE, 5
    )
    assert option_value(REFERENCE, "lsmc", n_paths=1_000).method == "least-squares Monte Carlo"
    with pytest.raises(ValueError, match="unknown option-valuation method 'tree'"):
        option_value(REFERENCE, "tree")


def test_lsmc_is_reproducible():
    a = longstaff_schwartz(REFERENCE, n_paths=2_000, seed=11)
    b = longstaff_schwartz(REFERENCE, n_paths=2_000, seed=11)
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"annual_value_usd": 0.0}, "annual_value_usd=0.0"),
        ({"volatility": -0.1}, "volatility=-0.1"),
        ({"arrival_probability_per_year": 1.5}, "arrival_probability_per_year=1.5"),
        ({"life_years": 2.5}, "life_years=2.5"),
        ({"premium_later_usd": -1.0}, "premium_later_usd=-1.0"),
    ],
)
def test_case_validation(kwargs, message):
    fields = {"annual_value_usd": 1_000.0, "volatility": 0.5, "arrival_probability_per_year": 0.2,
              "premium_now_usd": 1_000.0, "premium_later_usd": 2_000.0} | kwargs
    with pytest.raises(ValueError, match=f"OptionCase out of range: {message}"):
        OptionCase(**fields)


def test_method_argument_validation():
    with pytest.raises(ValueError, match="n_paths must be an even whole number"):
        longstaff_schwartz(REFERENCE, n_paths=101)
    with pytest.raises(ValueError, match="steps_per_decision must be a whole number"):
        binomial_lattice(REFERENCE, 0)
    steep = OptionCase(1_000.0, 0.01, 0.2, 0.0, 0.0, growth_rate=0.5)
    with pytest.raises(ValueError, match="raise steps_per_decision"):
        binomial_lattice(steep, 1)
