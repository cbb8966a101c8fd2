import numpy as np
import pytest

from fleetcharge.v2g.degradation import (
    CHEMISTRY_PRESETS,
    degradation_cost_per_kwh,
    equivalent_full_cycles,
)


@pytest.mark.parametrize(
    ("chemistry", "low", "high"),
    [("LFP", 0.02, 0.06), ("NMC", 0.06, 0.15)],  # DESIGN.md §6 ranges
)
def test_presets_inside_design_ranges(chemistry, low, high):
    assert low <= degradation_cost_per_kwh(chemistry) <= high
    # also with the plain DESIGN formula (no mid-life capacity fraction)
    assert low <= degradation_cost_per_kwh(chemistry, average_capacity_fraction=1.0) <= high


def test_presets_match_reference_table():
    # market-and-v2g-economics.md §3.2: LFP $115, 4000 cycles @80 % → 0.040; NMC $140, 2000 → 0.097
    assert degradation_cost_per_kwh("LFP") == pytest.approx(115 / (4000 * 0.8 * 0.9))
    assert degradation_cost_per_kwh("LFP") == pytest.approx(0.040, abs=5e-4)
    assert degradation_cost_per_kwh("NMC") == pytest.approx(0.097, abs=5e-4)


def test_chemistry_is_case_insensitive():
    assert degradation_cost_per_kwh(" lfp ") == degradation_cost_per_kwh("LFP")
    assert degradation_cost_per_kwh("Nmc") == degradation_cost_per_kwh("NMC")


def test_overrides_replace_single_preset_fields():
    base = CHEMISTRY_PRESETS["NMC"]
    assert degradation_cost_per_kwh("NMC", pack_price_per_kwh=160.0, cycle_life=1500.0) == (
        pytest.approx(160 / (1500 * base.depth_of_discharge * 0.9))
    )
    assert degradation_cost_per_kwh(
        "LFP", 100.0, 6000.0, 0.8, average_capacity_fraction=1.0
    ) == pytest.approx(100 / 4800)


def test_unknown_chemistry_names_presets_and_override():
    with pytest.raises(ValueError, match=r"unknown battery chemistry 'NCA'.*LFP, NMC.*override"):
        degradation_cost_per_kwh("NCA")
    with pytest.raises(ValueError, match="pack_price_per_kwh, cycle_life and depth_of_discharge"):
        degradation_cost_per_kwh("NCA", pack_price_per_kwh=150.0)


def test_unknown_chemistry_with_full_override():
    assert degradation_cost_per_kwh(
        "NCA", 150.0, 1500.0, 0.8, average_capacity_fraction=1.0
    ) == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth_of_discharge": 1.2}, "depth_of_discharge must be a fraction"),
        ({"depth_of_discharge": 0.0}, "depth_of_discharge must be a fraction"),
        ({"cycle_life": -5.0}, "cycle_life must be positive"),
        ({"pack_price_per_kwh": float("nan")}, "pack_price_per_kwh must be positive"),
        ({"average_capacity_fraction": 0.0}, "average_capacity_fraction must be a fraction"),
    ],
)
def test_invalid_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        degradation_cost_per_kwh("LFP", **kwargs)


def test_equivalent_full_cycles_scalar_and_array():
    assert equivalent_full_cycles(690.0, 68.0) == pytest.approx(690 / 68)
    assert isinstance(equivalent_full_cycles(690.0, 68.0), float)
    out = equivalent_full_cycles(np.array([0.0, 34.0, 136.0]), 68.0)
    np.testing.assert_allclose(out, [0.0, 0.5, 2.0])
    np.testing.assert_allclose(equivalent_full_cycles([100.0, 100.0], [50.0, 200.0]), [2.0, 0.5])


def test_wear_cost_from_cycles_matches_cost_per_kwh():
    usable_kwh, discharged_kwh = 68.0, 690.0
    cost = degradation_cost_per_kwh("LFP")
    assert equivalent_full_cycles(discharged_kwh, usable_kwh) * usable_kwh * cost == (
        pytest.approx(discharged_kwh * cost)
    )


def test_equivalent_full_cycles_errors():
    with pytest.raises(ValueError, match="usable_kwh must be positive"):
        equivalent_full_cycles(10.0, 0.0)
    with pytest.raises(ValueError, match="discharged_kwh must be ≥ 0"):
        equivalent_full_cycles(-1.0, 60.0)
