"""The tariff model: immutable descriptions of every charge the bill engine knows.

The model follows the OpenEI Utility Rate Database (URDB) JSON, API version 8 [1]_, one dataclass
per charge component, with units in every field name. URDB periods are indexed from 0 and the
12 × 24 schedules hold one period index per (month, local hour); there are only two day types
(weekday Monday–Friday, weekend Saturday–Sunday) and no holidays.

Components that URDB cannot express are added here and can be attached from JSON through
``fleetcharge_*`` extension keys (see :mod:`fleetcharge.tariff.urdb`):

* :class:`SubscriptionCharge` — PG&E BEV-style subscription blocks [2]_,
  JSON key ``"fleetcharge_subscription": {"block_kw": 50, "price_per_block": 95.56,
  "overage_per_kw": 3.82}`` (optional ``"subscribed_blocks": 4``);
* a flat export (sell) rate, JSON key ``"fleetcharge_export_rate_per_kwh": 0.05``;
* :class:`CoincidentPeakEvents` — REopt's ``coincident_peak_load_active_time_steps`` [3]_.

The vectorised accessors on :class:`Tariff` (``energy_period``, ``energy_rate_per_kwh`` …) are the
one place a planner reads prices per step; they take local month/hour/weekday only from
:class:`fleetcharge.timegrid.Horizon`.

References
----------
.. [1] OpenEI, "U.S. Utility Rate Database API, version 8: response fields",
   https://openei.org/services/doc/rest/util_rates/?version=8
.. [2] PG&E, Electric Schedule BEV, Business Electric Vehicle Rate (subscription of 50 kW blocks
   for BEV-2; overage charge per kW above the subscribed level).
.. [3] NREL REopt.jl, ``ElectricTariff`` inputs ``coincident_peak_load_active_time_steps`` and
   ``coincident_peak_load_charge_per_kw``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fleetcharge.timegrid import Horizon

INF = math.inf

ENERGY_TIER_UNITS = ("kWh", "kWh daily", "kWh/kW", "kWh/kW daily")
"""URDB energy tier ``unit`` values, all supported (SAM ``max_usage_units`` 0–3)."""

METERING_RULES = (
    "Net Metering",
    "Net Billing Instantaneous",
    "Net Billing Hourly",
    "Buy All Sell All",
)
"""URDB ``dgrules`` values. The bill engine nets every interval (Net Billing Instantaneous)."""


class TariffWarning(UserWarning):
    """Something about a tariff input the user should know (e.g. several rates in one file)."""


class UnsupportedTariffFeature(TariffWarning):
    """A tariff field fleetcharge does not model; the message names the field and what was done."""


Schedule = tuple[tuple[int, ...], ...]
"""A URDB 12 × 24 schedule: ``schedule[month - 1][local hour]`` is a period index (from 0)."""


def _check_schedule(schedule: Schedule, n_periods: int, what: str) -> None:
    if len(schedule) != 12 or any(len(row) != 24 for row in schedule):
        raise ValueError(f"{what} must be 12 months × 24 hours")
    flat = [p for row in schedule for p in row]
    if min(flat) < 0 or max(flat) >= n_periods:
        raise ValueError(f"{what} uses period {max(flat)} but only {n_periods} periods exist")


def tier_amounts(quantity: float, limits: np.ndarray) -> np.ndarray:
    """Split a quantity into cumulative tiers.

    Parameters
    ----------
    quantity : float
        Energy [kWh] or demand [kW] to split.
    limits : numpy.ndarray
        Cumulative upper limit of each tier, increasing, last one ``inf`` [same unit].

    Returns
    -------
    numpy.ndarray
        Quantity falling in each tier; sums to ``quantity`` (for ``quantity ≥ 0``).
    """
    lower = np.concatenate(([0.0], limits[:-1]))
    return np.clip(quantity - lower, 0.0, limits - lower)


@dataclass(frozen=True)
class EnergyTier:
    """One tier of a URDB energy period.

    Parameters
    ----------
    rate_per_kwh : float
        Buy price, URDB ``rate + adj`` [currency/kWh].
    max_usage : float
        Cumulative upper limit of the tier within the billing period, in ``unit``; ``inf`` for
        the last tier [kWh, kWh/day, kWh/kW or kWh/kW/day].
    unit : str
        One of :data:`ENERGY_TIER_UNITS`. ``kWh daily`` limits are multiplied by the days billed,
        ``kWh/kW`` limits by the billing period's peak demand [kW] (SAM semantics).
    sell_per_kwh : float
        URDB ``sell``: export credit for energy exported in this period [currency/kWh].
    """

    rate_per_kwh: float
    max_usage: float = INF
    unit: str = "kWh"
    sell_per_kwh: float = 0.0

    def __post_init__(self) -> None:
        if self.unit not in ENERGY_TIER_UNITS:
            raise ValueError(f"energy tier unit {self.unit!r} is not one of {ENERGY_TIER_UNITS}")


@dataclass(frozen=True)
class EnergyPeriod:
    """A TOU energy period: its tiers (at least one) and a label such as ``"Peak"``."""

    tiers: tuple[EnergyTier, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("an energy period needs at least one tier")

    def limits(self, days: float, peak_kw: float) -> np.ndarray:
        """Cumulative tier limits for one billing period [kWh].

        Parameters
        ----------
        days : float
            Days billed (for ``kWh daily`` units) [d].
        peak_kw : float
            Billing-period peak demand (for ``kWh/kW`` units) [kW].
        """
        scale = {"kWh": 1.0, "kWh daily": days, "kWh/kW": peak_kw, "kWh/kW daily": peak_kw * days}
        out = np.array([t.max_usage * scale[t.unit] for t in self.tiers], dtype=float)
        out[-1] = INF
        return np.maximum.accumulate(out)

    @cached_property
    def rates_per_kwh(self) -> np.ndarray:
        """Buy price of each tier [currency/kWh]."""
        return np.array([t.rate_per_kwh for t in self.tiers], dtype=float)


@dataclass(frozen=True)
class DemandTier:
    """One tier of a demand period: ``rate + adj`` [currency/kW] up to ``max_kw`` [kW]."""

    rate_per_kw: float
    max_kw: float = INF


@dataclass(frozen=True)
class DemandPeriod:
    """A demand period (flat, TOU or coincident): its tiers and a label."""

    tiers: tuple[DemandTier, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a demand period needs at least one tier")

    @cached_property
    def limits_kw(self) -> np.ndarray:
        """Cumulative tier limits [kW], last one ``inf``."""
        out = np.array([t.max_kw for t in self.tiers], dtype=float)
        out[-1] = INF
        return np.maximum.accumulate(out)

    @cached_property
    def rates_per_kw(self) -> np.ndarray:
        """Price of each tier [currency/kW]."""
        return np.array([t.rate_per_kw for t in self.tiers], dtype=float)

    def charge(self, demand_kw: float) -> float:
        """Tiered demand charge for one billing period [currency].

        ``Σ_t rate_t · min(max(D − L_{t−1}, 0), L_t − L_{t−1})`` with cumulative limits ``L``
        (URDB ``max``), as in SAM ``ur_dc_*_mat``.
        """
        if demand_kw <= 0.0:
            return 0.0
        return float(tier_amounts(demand_kw, self.limits_kw) @ self.rates_per_kw)


def _lookup(schedule_wd: np.ndarray, schedule_we: np.ndarray, horizon: Horizon) -> np.ndarray:
    month0 = horizon.local_month - 1
    hour = horizon.local_hour
    weekend = horizon.local_weekday >= 5
    return np.where(weekend, schedule_we[month0, hour], schedule_wd[month0, hour])


class _WeekdayWeekendSchedules:
    """Shared by charges priced on URDB 12 × 24 weekday/weekend period schedules."""

    periods: tuple
    weekday_schedule: Schedule
    weekend_schedule: Schedule
    _what = "schedule"

    def __post_init__(self) -> None:
        _check_schedule(self.weekday_schedule, len(self.periods), f"{self._what} weekday schedule")
        _check_schedule(self.weekend_schedule, len(self.periods), f"{self._what} weekend schedule")

    @cached_property
    def _wd(self) -> np.ndarray:
        return np.asarray(self.weekday_schedule, dtype=np.int64)

    @cached_property
    def _we(self) -> np.ndarray:
        return np.asarray(self.weekend_schedule, dtype=np.int64)

    def period(self, horizon: Horizon) -> np.ndarray:
        """Period index of each step (from 0), by local month, hour and day type."""
        return _lookup(self._wd, self._we, horizon)


@dataclass(frozen=True)
class EnergyCharge(_WeekdayWeekendSchedules):
    """TOU (and tiered) energy charge, URDB ``energyratestructure`` + weekday/weekend schedules."""

    periods: tuple[EnergyPeriod, ...]
    weekday_schedule: Schedule
    weekend_schedule: Schedule
    _what = "energy"

    @property
    def is_tiered(self) -> bool:
        """True if any period has more than one tier."""
        return any(len(p.tiers) > 1 for p in self.periods)


@dataclass(frozen=True)
class FlatDemandCharge:
    """Monthly (all-hours) demand charge, URDB ``flatdemandstructure`` + ``flatdemandmonths``.

    ``month_period[m - 1]`` is the period whose tiers price the maximum demand of a billing
    period starting in calendar month ``m``.
    """

    periods: tuple[DemandPeriod, ...]
    month_period: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.month_period) != 12:
            raise ValueError("flat demand month map must have 12 entries")
        if min(self.month_period) < 0 or max(self.month_period) >= len(self.periods):
            raise ValueError("flat demand month map refers to a period that does not exist")

    def period_of_month(self, month: int) -> DemandPeriod:
        """The demand period used for calendar month ``month`` (1–12)."""
        return self.periods[self.month_period[month - 1]]


@dataclass(frozen=True)
class TouDemandCharge(_WeekdayWeekendSchedules):
    """TOU demand charge, URDB ``demandratestructure`` + demand weekday/weekend schedules.

    Each period's tiers price the maximum demand among that period's intervals of the billing
    period.
    """

    periods: tuple[DemandPeriod, ...]
    weekday_schedule: Schedule
    weekend_schedule: Schedule
    _what = "demand"


@dataclass(frozen=True)
class CoincidentDemandCharge:
    """Coincident demand charge, URDB ``coincidentratestructure`` + ``coincidentrateschedule``.

    The schedule has no day types (it applies to every day); each period's tiers price the
    maximum demand among its intervals of the billing period, like TOU demand.
    """

    periods: tuple[DemandPeriod, ...]
    schedule: Schedule

    def __post_init__(self) -> None:
        _check_schedule(self.schedule, len(self.periods), "coincident rate schedule")

    @cached_property
    def _s(self) -> np.ndarray:
        return np.asarray(self.schedule, dtype=np.int64)

    def period(self, horizon: Horizon) -> np.ndarray:
        """Coincident period index of each step (from 0)."""
        return _lookup(self._s, self._s, horizon)


@dataclass(frozen=True)
class CoincidentPeakEvents:
    """REopt-style coincident peak charges on explicit time steps of the year.

    Parameters
    ----------
    windows : tuple of tuple of int
        For each charge, the 1-based time-step numbers of the local calendar year it covers
        (step 1 = Jan 1 00:00 to 00:00 + 1/steps_per_hour h), REopt's convention.
    rates_per_kw : tuple of float
        Charge per kW of the maximum demand within each window [currency/kW].
    steps_per_hour : int
        Steps per hour the step numbers refer to.
    """

    windows: tuple[tuple[int, ...], ...]
    rates_per_kw: tuple[float, ...]
    steps_per_hour: int = 1

    def __post_init__(self) -> None:
        if len(self.windows) != len(self.rates_per_kw):
            raise ValueError("coincident peak windows and rates must have the same length")
        if self.steps_per_hour not in (1, 2, 4):
            raise ValueError("coincident peak steps_per_hour must be 1, 2 or 4")


@dataclass(frozen=True)
class DemandRatchet:
    """A look-back ratchet on the flat (all-hours) billing demand.

    Billing demand of a billing period labelled month ``m`` is
    ``max(peak_m, fraction_by_month[m−1] · max{peak_k : k among the lookback_months months
    before m, counted_months[month(k)−1]})``. The URDB ``lookbackpercent`` /
    ``lookbackrange`` / ``lookbackmonths`` fields and ``demandratchetpercentage`` both map here.

    Parameters
    ----------
    fraction_by_month : tuple of float
        Ratchet fraction for billing periods labelled with each calendar month [0–1].
    lookback_months : int
        How many earlier billing months the look-back covers [months].
    counted_months : tuple of bool
        Calendar months whose peaks count in the look-back (URDB ``lookbackmonths``).
    source : str
        The URDB field it came from.
    """

    fraction_by_month: tuple[float, ...]
    lookback_months: int
    counted_months: tuple[bool, ...] = (True,) * 12
    source: str = "lookbackpercent"

    def __post_init__(self) -> None:
        if len(self.fraction_by_month) != 12 or len(self.counted_months) != 12:
            raise ValueError("ratchet fractions and counted months need 12 entries")
        if self.lookback_months < 1:
            raise ValueError("ratchet lookback_months must be at least 1")


@dataclass(frozen=True)
class _AmountsPerPeriod:
    """Money stated per month, per day and per year (the URDB unit choices)."""

    per_month: float = 0.0
    per_day: float = 0.0
    per_year: float = 0.0

    @property
    def is_zero(self) -> bool:
        """True if all three amounts are zero."""
        return self.per_month == 0.0 and self.per_day == 0.0 and self.per_year == 0.0


@dataclass(frozen=True)
class FixedCharges(_AmountsPerPeriod):
    """Customer (fixed) charges, URDB ``fixedchargefirstmeter`` / ``fixedmonthlycharge``.

    Parameters
    ----------
    per_month : float
        [currency/month]; pro-rated by the fraction of a billing cycle covered.
    per_day : float
        [currency/day]; charged per day billed.
    per_year : float
        [currency/year]; one twelfth per billing cycle, pro-rated like ``per_month``.
    """


@dataclass(frozen=True)
class MinimumCharge(_AmountsPerPeriod):
    """Minimum bill, URDB ``mincharge``/``minchargeunits`` and legacy ``minmonthlycharge``/
    ``annualmincharge``.

    Parameters
    ----------
    per_month : float
        Monthly minimum [currency/month], pro-rated like fixed charges.
    per_day : float
        Minimum per day billed [currency/day], added to the monthly minimum.
    per_year : float
        Annual minimum [currency/year], pro-rated by days billed / 365 over the whole bill.
    """


@dataclass(frozen=True)
class SubscriptionCharge:
    """Subscription demand in blocks, as PG&E Schedule BEV (no URDB field exists).

    Per billing period: ``blocks · price_per_block · coverage + overage_per_kw ·
    max(peak − blocks · block_kw, 0)``, where ``blocks`` is ``subscribed_blocks`` or, if
    ``None``, the smallest number of blocks covering the period's peak demand, and ``coverage``
    is the fraction of the billing cycle billed.

    Parameters
    ----------
    block_kw : float
        Block size [kW] (50 for BEV-2).
    price_per_block : float
        [currency/block/month] (95.56 for BEV-2, 2024).
    overage_per_kw : float
        [currency/kW] charged on peak demand above the subscribed kW (3.82 for BEV-2).
    subscribed_blocks : int, optional
        Fixed subscription level; ``None`` subscribes just enough blocks each month.
    """

    block_kw: float
    price_per_block: float
    overage_per_kw: float
    subscribed_blocks: int | None = None

    def __post_init__(self) -> None:
        if not self.block_kw > 0:
            raise ValueError("subscription block_kw must be positive")
        if self.subscribed_blocks is not None and self.subscribed_blocks < 0:
            raise ValueError("subscribed_blocks must be ≥ 0")

    def blocks_for(self, peak_kw: float) -> int:
        """Subscribed blocks for a billing period with this peak [blocks]."""
        if self.subscribed_blocks is not None:
            return self.subscribed_blocks
        return max(int(math.ceil(peak_kw / self.block_kw - 1e-9)), 0)


@dataclass(frozen=True)
class Tariff:
    """A complete tariff: every charge component the bill engine evaluates.

    Components left as ``None`` (or zero) are absent. ``notes`` lists what was not modelled when
    the tariff was imported (the same text as the warnings raised then).
    """

    name: str
    utility: str = ""
    label: str = ""
    source: str = ""
    energy: EnergyCharge | None = None
    flat_demand: FlatDemandCharge | None = None
    tou_demand: TouDemandCharge | None = None
    ratchets: tuple[DemandRatchet, ...] = ()
    fixed: FixedCharges = FixedCharges()
    minimum: MinimumCharge = MinimumCharge()
    export_rate_per_kwh: float | None = None
    coincident: CoincidentDemandCharge | None = None
    coincident_events: CoincidentPeakEvents | None = None
    subscription: SubscriptionCharge | None = None
    demand_window_min: int = 15
    metering_rule: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.demand_window_min < 1:
            raise ValueError("demand_window_min must be at least 1 minute")
        if self.ratchets and self.flat_demand is None:
            raise ValueError("a demand ratchet needs a flat demand charge to act on")

    # ---------------------------------------------------------------- descriptive
    @property
    def features(self) -> tuple[str, ...]:
        """Short names of the components present (for listings)."""
        out = []
        if self.energy is not None:
            out.append("tou_energy" if len(self.energy.periods) > 1 else "energy")
            if self.energy.is_tiered:
                out.append("tiered_energy")
        if self.flat_demand is not None:
            out.append("flat_demand")
        if self.tou_demand is not None:
            out.append("tou_demand")
        if self.ratchets:
            out.append("ratchet")
        if self.coincident is not None or self.coincident_events is not None:
            out.append("coincident")
        if self.subscription is not None:
            out.append("subscription")
        if not self.fixed.is_zero:
            out.append("fixed")
        if not self.minimum.is_zero:
            out.append("minimum")
        if self.has_export_rate:
            out.append("export")
        return tuple(out)

    @property
    def has_export_rate(self) -> bool:
        """True if the tariff itself credits exports (flat or per-period sell rate)."""
        if self.export_rate_per_kwh is not None:
            return self.export_rate_per_kwh != 0.0
        if self.energy is None:
            return False
        return any(t.sell_per_kwh != 0.0 for p in self.energy.periods for t in p.tiers)

    # ---------------------------------------------------------------- vectorised accessors
    def energy_period(self, horizon: Horizon) -> np.ndarray:
        """Energy period of each step (from 0; all 0 without an energy charge) [-]."""
        if self.energy is None:
            return np.zeros(horizon.n_steps, dtype=np.int64)
        return self.energy.period(horizon)

    def energy_period_labels(self) -> tuple[str, ...]:
        """Label of each energy period."""
        if self.energy is None:
            return ("energy",)
        return tuple(p.label for p in self.energy.periods)

    def energy_rate_per_kwh(self, horizon: Horizon) -> np.ndarray:
        """Buy price of each step, first tier of its period [currency/kWh]."""
        if self.energy is None:
            return np.zeros(horizon.n_steps)
        first = np.array([p.tiers[0].rate_per_kwh for p in self.energy.periods])
        return first[self.energy.period(horizon)]

    def sell_rate_per_kwh(self, horizon: Horizon) -> np.ndarray:
        """Export credit of each step [currency/kWh].

        The flat ``export_rate_per_kwh`` if set, otherwise the URDB ``sell`` of the first tier
        of each step's energy period (0 where none is given).
        """
        if self.export_rate_per_kwh is not None:
            return np.full(horizon.n_steps, float(self.export_rate_per_kwh))
        if self.energy is None:
            return np.zeros(horizon.n_steps)
        sell = np.array([p.tiers[0].sell_per_kwh for p in self.energy.periods])
        return sell[self.energy.period(horizon)]

    def demand_tou_period(self, horizon: Horizon) -> np.ndarray:
        """TOU demand period of each step (from 0; −1 everywhere without TOU demand) [-]."""
        if self.tou_demand is None:
            return np.full(horizon.n_steps, -1, dtype=np.int64)
        return self.tou_demand.period(horizon)

    def coincident_period(self, horizon: Horizon) -> np.ndarray:
        """Coincident period of each step (−1 everywhere without a coincident charge) [-]."""
        if self.coincident is None:
            return np.full(horizon.n_steps, -1, dtype=np.int64)
        return self.coincident.period(horizon)

    def flat_demand_rate_per_kw(self, month: int) -> float:
        """First-tier flat demand price for billing periods starting in ``month`` (1–12)
        [currency/kW]."""
        if self.flat_demand is None:
            return 0.0
        return float(self.flat_demand.period_of_month(month).tiers[0].rate_per_kw)

    def tou_demand_rate_per_kw(self, period: int, month: int | None = None) -> float:
        """First-tier price of TOU demand period ``period`` [currency/kW].

        ``month`` is accepted for symmetry with :meth:`flat_demand_rate_per_kw`; URDB TOU demand
        prices do not depend on the month (the schedules do).
        """
        if self.tou_demand is None:
            return 0.0
        return float(self.tou_demand.periods[period].tiers[0].rate_per_kw)

    def tou_demand_rates_per_kw(self) -> np.ndarray:
        """First-tier price of every TOU demand period [currency/kW]."""
        if self.tou_demand is None:
            return np.zeros(0)
        return np.array([p.tiers[0].rate_per_kw for p in self.tou_demand.periods])
