"""Economics of V2G over V1G: incremental annual value, NPV, payback, bidirectional premium.

Everything here is plain arithmetic on numbers that accounting already produced (bills,
settlements, degradation), kept in one place so that each dollar is counted exactly once and the
result can be shown as a waterfall (DESIGN.md §1, "price it: export revenue − degradation − losses
− hardware premium"; §6 "Economics").

Cash-flow timing convention for :func:`npv` and :func:`payback_years`: the upfront cost is paid at
t = 0 and year k's value arrives at the end of year k (an annuity-immediate), growing at
``growth_rate`` from year 2 on. :mod:`fleetcharge.v2g.options` uses the same convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Amount = float | Sequence[float] | np.ndarray
"""A dollar amount: one number for the year, or one per period (month) that is summed."""


@dataclass(frozen=True)
class AnnualValue:
    """Incremental annual value of V2G over V1G, with the lines that make it up.

    Attributes
    ----------
    total_usd : float
        Incremental value per year [$/yr]; positive means V2G is worth more than V1G.
    waterfall : tuple of (str, float)
        Labelled components [$/yr]; they sum to ``total_usd`` (exactly, up to float rounding).
    bills_on_net_meter_load : bool
        Whether the bills already contain export credits and the energy lost in round trips.
    """

    total_usd: float
    waterfall: tuple[tuple[str, float], ...]
    bills_on_net_meter_load: bool

    def lines(self) -> list[str]:
        """The waterfall as aligned text lines, ending with the total."""
        rows = [f"{label:<40} {usd:>12,.2f}" for label, usd in self.waterfall]
        return [*rows, f"{'incremental value of V2G over V1G':<40} {self.total_usd:>12,.2f}"]


def annual_value(
    bill_v1g_usd: Amount,
    bill_v2g_usd: Amount,
    *,
    export_revenue_usd: Amount = 0.0,
    program_payments_usd: Amount = 0.0,
    degradation_usd: Amount = 0.0,
    round_trip_loss_usd: Amount = 0.0,
    other_costs_usd: Amount = 0.0,
    bills_on_net_meter_load: bool = True,
) -> AnnualValue:
    r"""Incremental annual value of V2G over V1G from one year of results [$/yr].

    Every argument is a cash flow that no other argument contains. Each accepts one number for
    the year or one number per period (e.g. 12 monthly results), which are summed; together the
    periods must cover one year.

    Parameters
    ----------
    bill_v1g_usd : float or sequence of float
        Utility bill of the V1G plan (energy, demand, fixed charges) [$].
    bill_v2g_usd : float or sequence of float
        Utility bill of the V2G plan, same tariff [$]. If the tariff nets exports (export "sell"
        rates, net metering), the bill computed on the *net* meter load already contains the
        export credit and the extra energy bought to cover round-trip losses.
    export_revenue_usd : float or sequence of float, default 0
        Export revenue paid *outside* the bill (a separate export contract or wholesale
        settlement) [$]. Do not repeat export credits the bill already nets.
    program_payments_usd : float or sequence of float, default 0
        Net DR/emergency program settlement (payments − penalties + capacity payments), paid
        outside the bill [$]; see :func:`fleetcharge.v2g.programs.program_settlement_usd`.
    degradation_usd : float or sequence of float, default 0
        Extra battery wear from V2G discharge, ≥ 0 [$]: extra kWh discharged ×
        :func:`fleetcharge.v2g.degradation.degradation_cost_per_kwh`.
    round_trip_loss_usd : float or sequence of float, default 0
        Cost of energy lost charging and discharging the exported kWh, ≥ 0 [$]. Only when the
        bills are *not* on net meter load; otherwise it is already in ``bill_v2g_usd``.
    other_costs_usd : float or sequence of float, default 0
        Recurring V2G costs, ≥ 0 [$]: aggregator share, telemetry, extra metering.
    bills_on_net_meter_load : bool, default True
        True when both bills were computed by the tariff engine on the site's net meter load
        (the normal fleetcharge path). Then ``round_trip_loss_usd`` must be 0.

    Returns
    -------
    AnnualValue
        ``total_usd`` and the ``waterfall`` of its components.

    Raises
    ------
    ValueError
        A cost given as negative, a non-finite amount, or losses given while the bills already
        contain them.

    Notes
    -----
    .. math::

        \Delta V = (B_{V1G} - B_{V2G}) + R_{export} + R_{program}
                   - C_{degradation} - C_{losses} - C_{other}

    Hardware premiums are not annual values: pass them as ``upfront_usd`` to :func:`npv`.
    """
    bill_v1g = _total("bill_v1g_usd", bill_v1g_usd)
    bill_v2g = _total("bill_v2g_usd", bill_v2g_usd)
    export = _total("export_revenue_usd", export_revenue_usd)
    program = _total("program_payments_usd", program_payments_usd)
    costs = {
        "degradation_usd": _total("degradation_usd", degradation_usd),
        "round_trip_loss_usd": _total("round_trip_loss_usd", round_trip_loss_usd),
        "other_costs_usd": _total("other_costs_usd", other_costs_usd),
    }
    for name, value in costs.items():
        if value < 0:
            raise ValueError(f"{name} is a cost and must be ≥ 0 (got {value:g}); give it positive")
    if bills_on_net_meter_load and costs["round_trip_loss_usd"] != 0:
        raise ValueError(
            "round_trip_loss_usd double counts: bills on net meter load already pay for the energy "
            "lost in round trips; pass round_trip_loss_usd=0, or bills_on_net_meter_load=False if "
            "the bills exclude V2G energy"
        )
    waterfall = (
        ("bill saving (V1G bill − V2G bill)", bill_v1g - bill_v2g),
        ("export revenue outside the bill", export),
        ("program payments", program),
        ("battery degradation", -costs["degradation_usd"]),
        ("round-trip losses outside the bill", -costs["round_trip_loss_usd"]),
        ("other recurring V2G costs", -costs["other_costs_usd"]),
    )
    total = math.fsum(usd for _, usd in waterfall)
    return AnnualValue(total, waterfall, bills_on_net_meter_load)


def bidirectional_premium_usd(
    ports: int, premium_per_port_usd: float, site_fixed_usd: float = 0.0
) -> float:
    """Upfront cost of going bidirectional at a site [$].

    Parameters
    ----------
    ports : int
        Ports (EVSE connectors) made bidirectional, ≥ 0.
    premium_per_port_usd : float
        Price of a bidirectional port minus the unidirectional port bought anyway [$/port], ≥ 0.
        The reference notes find ≈ $3–5k per ~11 kW port and no authoritative quote for 60 kW DC
        (treat $5–20k/port as a scenario input; market-and-v2g-economics.md §4.3).
    site_fixed_usd : float, default 0
        One-off site costs of export [$], ≥ 0: interconnection study and upgrades, export metering,
        SAE J3072 certification work.

    Returns
    -------
    float
        ``ports × premium_per_port_usd + site_fixed_usd`` [$].
    """
    if int(ports) != ports or ports < 0:
        raise ValueError(f"ports must be a whole number ≥ 0, got {ports!r}")
    if premium_per_port_usd < 0 or site_fixed_usd < 0:
        raise ValueError(
            f"premiums must be ≥ 0, got {premium_per_port_usd!r} per port and {site_fixed_usd!r} "
            "per site"
        )
    return float(ports * premium_per_port_usd + site_fixed_usd)


def npv(
    annual_value_usd: npt.ArrayLike,
    years: int,
    discount_rate: float,
    upfront_usd: npt.ArrayLike,
    growth_rate: float = 0.0,
) -> float | np.ndarray:
    r"""Net present value of an upfront cost followed by a growing annual value [$].

    Parameters
    ----------
    annual_value_usd : numeric
        Value in year 1 [$/yr]; scalar or array (e.g. one per scenario).
    years : int
        Years of value (equipment life), ≥ 0.
    discount_rate : float
        Annual discount rate r [1/yr], > −1.
    upfront_usd : numeric
        Cost at t = 0 [$] (e.g. :func:`bidirectional_premium_usd`); broadcasts.
    growth_rate : float, default 0
        Annual growth g of the value [1/yr], > −1.

    Returns
    -------
    float or numpy.ndarray
        :math:`NPV = -U + \sum_{k=1}^{n} A (1+g)^{k-1} / (1+r)^k` [$]; a float for scalar inputs.

    Notes
    -----
    End-of-year cash flows; for r ≠ g the sum is the growing annuity
    :math:`A \, [1 - ((1+g)/(1+r))^n] / (r - g)` [1]_.

    References
    ----------
    .. [1] R. A. Brealey, S. C. Myers and F. Allen, *Principles of Corporate Finance*, ch. 2
       (growing annuities).

    Examples
    --------
    >>> round(npv(1000.0, 10, 0.06, 5000.0), 2)
    2360.09
    """
    _check_rates(discount_rate, growth_rate)
    if int(years) != years or years < 0:
        raise ValueError(f"years must be a whole number ≥ 0, got {years!r}")
    k = np.arange(1, int(years) + 1, dtype=float)
    factor = float(np.sum((1.0 + growth_rate) ** (k - 1) / (1.0 + discount_rate) ** k))
    out = np.asarray(annual_value_usd, dtype=float) * factor - np.asarray(upfront_usd, dtype=float)
    return float(out) if out.ndim == 0 else out


def payback_years(
    annual_value_usd: float,
    upfront_usd: float,
    growth_rate: float = 0.0,
    discount_rate: float = 0.0,
    max_years: int = 100,
) -> float:
    r"""Years until cumulative (optionally discounted) value repays the upfront cost [yr].

    Parameters
    ----------
    annual_value_usd : float
        Value in year 1 [$/yr].
    upfront_usd : float
        Cost at t = 0 [$].
    growth_rate : float, default 0
        Annual growth of the value [1/yr].
    discount_rate : float, default 0
        0 for simple payback; > 0 for discounted payback [1/yr].
    max_years : int, default 100
        Search horizon [yr].

    Returns
    -------
    float
        Payback time [yr], interpolated linearly within the year in which it happens (value is
        treated as accruing evenly through the year); 0 if ``upfront_usd ≤ 0``; ``math.inf`` if
        it never pays back within ``max_years``.

    Examples
    --------
    >>> payback_years(1000.0, 4500.0)
    4.5
    """
    _check_rates(discount_rate, growth_rate)
    if upfront_usd <= 0:
        return 0.0
    k = np.arange(1, int(max_years) + 1, dtype=float)
    flows = annual_value_usd * (1.0 + growth_rate) ** (k - 1) / (1.0 + discount_rate) ** k
    cumulative = np.cumsum(flows)
    reached = np.flatnonzero(cumulative >= upfront_usd)
    if reached.size == 0:
        return math.inf
    year = int(reached[0])
    before = cumulative[year - 1] if year > 0 else 0.0
    return float(year + (upfront_usd - before) / flows[year])


def _total(name: str, amount: Amount) -> float:
    values = np.asarray(amount, dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {amount!r}")
    return math.fsum(values.ravel().tolist())


def _check_rates(discount_rate: float, growth_rate: float) -> None:
    if not discount_rate > -1 or not growth_rate > -1:
        raise ValueError(
            f"rates must be > −1 (fractions per year, 0.06 = 6 %), got discount_rate="
            f"{discount_rate!r}, growth_rate={growth_rate!r}"
        )
