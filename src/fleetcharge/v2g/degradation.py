"""Battery degradation cost of V2G discharge: the simple throughput model.

The cost of cycling a traction battery for V2G is priced per kWh *discharged* (DESIGN.md §6):
the pack's replacement cost spread over the energy it can discharge in its cycle life. This is an
average (not marginal) cost that charges V2G for wear as if the pack's life were purely
throughput-limited; lab-fitted models (NREL BLAST-Lite) find the marginal cost of V2G cycling is
often lower, because V2G also lowers the mean SOC and with it calendar ageing
(reference notes, market-and-v2g-economics.md §3.3). Treat the result as a hurdle rate for the
planner, not as a prediction of capacity fade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_AVERAGE_CAPACITY_FRACTION = 0.9
"""Mean usable capacity over life, as a fraction of nameplate [-].

A pack retired at 80 % of nameplate capacity holds ≈ 90 % on average over its life, so each
"full" cycle discharges ≈ 0.9 × nameplate × DoD. This is the "mid-life average capacity 0.9" of
the reference notes' throughput table (market-and-v2g-economics.md §3.2, ``exp/economics.py``).
"""


@dataclass(frozen=True)
class ChemistryPreset:
    """Throughput-model inputs for one cell chemistry.

    Parameters
    ----------
    pack_price_per_kwh : float
        Replacement pack price per kWh of nameplate capacity [$/kWh].
    cycle_life : float
        Full cycles at ``depth_of_discharge`` to end of life (80 % capacity) [cycles].
    depth_of_discharge : float
        Depth of discharge at which ``cycle_life`` holds [fraction 0–1].
    source : str
        Where the numbers come from.
    """

    pack_price_per_kwh: float
    cycle_life: float
    depth_of_discharge: float
    source: str


CHEMISTRY_PRESETS: dict[str, ChemistryPreset] = {
    "LFP": ChemistryPreset(
        pack_price_per_kwh=115.0,
        cycle_life=4000.0,
        depth_of_discharge=0.8,
        source=(
            "BNEF 2024 average pack price $115/kWh; 4,000 cycles at 80 % DoD, the central LFP "
            "case of market-and-v2g-economics.md §3.2 (≈ $0.040/kWh)"
        ),
    ),
    "NMC": ChemistryPreset(
        pack_price_per_kwh=140.0,
        cycle_life=2000.0,
        depth_of_discharge=0.8,
        source=(
            "BEV pack $128–139/kWh (BNEF 2023), rounded to $140/kWh; 2,000 cycles at 80 % DoD, the "
            "central NMC case of market-and-v2g-economics.md §3.2 (≈ $0.097/kWh)"
        ),
    ),
}
"""Presets for :func:`degradation_cost_per_kwh`, keyed by upper-case chemistry name."""


def degradation_cost_per_kwh(
    chemistry: str,
    pack_price_per_kwh: float | None = None,
    cycle_life: float | None = None,
    depth_of_discharge: float | None = None,
    *,
    average_capacity_fraction: float = DEFAULT_AVERAGE_CAPACITY_FRACTION,
) -> float:
    r"""Battery wear cost per kWh discharged, from pack price and lifetime throughput [$/kWh].

    Parameters
    ----------
    chemistry : str
        Cell chemistry, case-insensitive: ``"LFP"`` or ``"NMC"`` (see :data:`CHEMISTRY_PRESETS`).
        Any other name is accepted only when all three of ``pack_price_per_kwh``, ``cycle_life``
        and ``depth_of_discharge`` are given.
    pack_price_per_kwh : float, optional
        Replacement pack price per kWh of nameplate capacity [$/kWh]; overrides the preset.
    cycle_life : float, optional
        Full cycles at ``depth_of_discharge`` until end of life [cycles]; overrides the preset.
    depth_of_discharge : float, optional
        Depth of discharge of those cycles [fraction, 0 < DoD ≤ 1]; overrides the preset.
    average_capacity_fraction : float, default 0.9
        Mean usable capacity over life as a fraction of nameplate [fraction, 0 < f ≤ 1]
        (see :data:`DEFAULT_AVERAGE_CAPACITY_FRACTION`). Pass 1.0 for the plain formula of
        DESIGN.md §6.

    Returns
    -------
    float
        Cost per kWh discharged from the battery (at the cells, before inverter losses) [$/kWh].

    Raises
    ------
    ValueError
        Unknown chemistry without a full override, or a non-positive / out-of-range input.

    Notes
    -----
    The pack's lifetime discharge throughput per kWh of nameplate is
    :math:`N_{cycles} \cdot DoD \cdot f_{cap}` kWh, so

    .. math:: c_{deg} = \frac{P_{pack}}{N_{cycles} \cdot DoD \cdot f_{cap}}

    (DESIGN.md §6: "pack price ÷ (cycle life × DoD)"; reference notes §3.2 add
    :math:`f_{cap}` = 0.9). There is no factor 2: one equivalent full cycle is one charge *and*
    one discharge, and the cost is charged to the discharge half only, so a kWh exported by V2G
    carries the full wear of the cycle that refills it. Multiply by the extra kWh discharged for
    V2G (not by the kWh charged) to get the wear cost in dollars, and do not also charge
    recharging energy with a wear cost.

    With the presets: LFP $115 / (4000 × 0.8 × 0.9) ≈ $0.040/kWh and NMC
    $140 / (2000 × 0.8 × 0.9) ≈ $0.097/kWh, inside DESIGN.md's ranges (LFP ≈ 0.02–0.06,
    NMC ≈ 0.06–0.15).

    References
    ----------
    .. [1] fleetcharge DESIGN.md §6, "V2G definitions: Degradation".
    .. [2] market-and-v2g-economics.md §3.2, "Typical $/kWh-throughput numbers" (BNEF 2023/2024
       pack prices).

    Examples
    --------
    >>> round(degradation_cost_per_kwh("lfp"), 4)
    0.0399
    >>> round(degradation_cost_per_kwh("NCA", 150.0, 1500.0, 0.8, average_capacity_fraction=1.0), 4)
    0.125
    """
    key = chemistry.strip().upper()
    preset = CHEMISTRY_PRESETS.get(key)
    overrides = (pack_price_per_kwh, cycle_life, depth_of_discharge)
    if preset is None and any(v is None for v in overrides):
        names = ", ".join(CHEMISTRY_PRESETS)
        raise ValueError(
            f"unknown battery chemistry {chemistry!r}: presets are {names}; or give all of "
            "pack_price_per_kwh, cycle_life and depth_of_discharge to override"
        )
    price = pack_price_per_kwh if pack_price_per_kwh is not None else preset.pack_price_per_kwh
    cycles = cycle_life if cycle_life is not None else preset.cycle_life
    dod = depth_of_discharge if depth_of_discharge is not None else preset.depth_of_discharge
    _check_positive("pack_price_per_kwh", price)
    _check_positive("cycle_life", cycles)
    _check_fraction("depth_of_discharge", dod)
    _check_fraction("average_capacity_fraction", average_capacity_fraction)
    return float(price / (cycles * dod * average_capacity_fraction))


def equivalent_full_cycles(
    discharged_kwh: npt.ArrayLike, usable_kwh: npt.ArrayLike
) -> float | np.ndarray:
    r"""Equivalent full cycles (EFC) of a discharge throughput [cycles].

    Parameters
    ----------
    discharged_kwh : numeric
        Energy discharged from the battery [kWh]; scalar or array.
    usable_kwh : numeric
        Usable battery capacity [kWh], > 0; broadcasts against ``discharged_kwh``.

    Returns
    -------
    float or numpy.ndarray
        :math:`EFC = E_{discharged} / E_{usable}` [cycles]; a float for scalar inputs.

    Raises
    ------
    ValueError
        ``usable_kwh`` not positive or ``discharged_kwh`` negative.

    Notes
    -----
    Counting discharge only (one EFC = one usable capacity discharged) matches the convention of
    :func:`degradation_cost_per_kwh`, so ``EFC × usable_kwh × cost_per_kwh`` is the wear cost.

    Examples
    --------
    >>> round(equivalent_full_cycles(690.0, 68.0), 2)
    10.15
    """
    discharged = np.asarray(discharged_kwh, dtype=float)
    usable = np.asarray(usable_kwh, dtype=float)
    if np.any(usable <= 0) or not np.all(np.isfinite(usable)):
        raise ValueError(f"usable_kwh must be positive and finite, got {usable_kwh!r}")
    if np.any(discharged < 0) or not np.all(np.isfinite(discharged)):
        raise ValueError(f"discharged_kwh must be ≥ 0 and finite, got {discharged_kwh!r}")
    out = discharged / usable
    return float(out) if out.ndim == 0 else out


def _check_positive(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def _check_fraction(name: str, value: float) -> None:
    if not (np.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be a fraction in (0, 1], got {value!r}")
