"""The exact bill engine: a metered load profile and a :class:`~fleetcharge.tariff.Tariff` → a bill.

Conventions (DESIGN.md §3): the load is interval-average kW at the meter, import positive, export
negative; energy in an interval is ``kW × Δh``; demand is the maximum interval-average kW of net
import over the tariff's demand window. Local month, hour and weekday of every step come from
:class:`fleetcharge.timegrid.Horizon`. Everything is vectorised over steps with numpy; only the
handful of billing periods and tariff periods are looped over in Python.

Component semantics follow the URDB v8 field definitions [1]_ and NREL SAM ``utilityrate5`` [2]_,
which this engine matches to the cent on calendar-month bills (tests/test_billing_pysam.py),
with these documented differences:

* demand is averaged into clock-aligned ``demand_window_min`` windows when the data are finer
  (SAM and REopt use each step as is);
* billing cycles need not be calendar months (``billing_cycle_day``), and partial cycles pro-rate
  fixed charges;
* coincident charges, subscription blocks, ``demandratchetpercentage`` and ``lookbackmonths`` are
  evaluated (SAM ignores the first three; its URDB helper mishandles the last);
* ``$/day`` fixed charges are charged per day billed (SAM charges ``rate × 365/12`` per month).

References
----------
.. [1] OpenEI, "U.S. Utility Rate Database API, version 8", response field definitions
   (energyratestructure, flatdemandstructure, demandratestructure, lookbackpercent, …).
.. [2] NREL SSC ``cmod_utilityrate5`` / ``lib_utility_rate_equations``, via PySAM 7.
.. [3] PG&E Electric Schedule BEV (subscription blocks and overage).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from fleetcharge.errors import InputError
from fleetcharge.tariff.model import (
    DemandPeriod,
    EnergyPeriod,
    Tariff,
    UnsupportedTariffFeature,
    tier_amounts,
)
from fleetcharge.timegrid import (
    ALLOWED_RESOLUTIONS_MIN,
    Horizon,
    cycle_coverage,
    cycle_start,
    infer_resolution_min,
    month_label,
)

__all__ = ["Bill", "BillMonth", "compute_bill"]

_MONEY_FIELDS = (
    "energy",
    "demand_flat",
    "demand_tou",
    "ratchet",
    "coincident",
    "subscription",
    "fixed",
    "minimum_adjustment",
    "export_credit",
    "total",
)


_LINE_ITEMS = tuple(f for f in _MONEY_FIELDS if f != "total")
_DEMAND_ITEMS = ("demand_flat", "ratchet", "demand_tou", "coincident", "subscription")


def _round_money(x: float, decimals: int | None) -> float:
    """Round to ``decimals`` (``None``: keep) and never return ``-0.0``."""
    value = float(round(x, decimals)) if decimals is not None else float(x)
    return value + 0.0


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class BillMonth:
    """One billing period (a calendar month or a meter-read cycle) and its line items.

    Money is in the tariff's currency, unrounded. ``total`` is the sum of ``energy``,
    ``demand_flat``, ``ratchet``, ``demand_tou``, ``coincident``, ``subscription``, ``fixed``,
    ``minimum_adjustment`` and ``export_credit``.

    Attributes
    ----------
    month : str
        ``"YYYY-MM"`` of the cycle start; monthly-indexed tariff items use this month.
    start, end : pandas.Timestamp
        Billed span ``[start, end)`` (the part of the cycle the load covers), tz-aware.
    days : float
        Days billed (wall-clock) [d].
    energy : float
        Energy charge on imports [currency]; ``energy_by_period`` splits it by TOU period.
    energy_kwh, export_kwh : float
        Imported and exported energy [kWh].
    demand_flat : float
        Flat (all-hours) demand charge on the actual peak [currency].
    ratchet : float
        Extra flat demand charge a ratchet adds above ``demand_flat`` [currency].
    demand_tou : float
        TOU demand charges [currency]; ``demand_tou_by_period`` splits them.
    coincident, subscription, fixed, minimum_adjustment : float
        [currency].
    export_credit : float
        Credit for exported energy, ≤ 0 [currency].
    peak_kw : float
        Maximum demand-window average of net import [kW].
    """

    month: str
    start: pd.Timestamp
    end: pd.Timestamp
    days: float
    energy: float
    energy_by_period: dict[str, float]
    energy_kwh: float
    export_kwh: float
    demand_flat: float
    demand_tou: float
    demand_tou_by_period: dict[str, float]
    ratchet: float
    coincident: float
    subscription: float
    fixed: float
    minimum_adjustment: float
    export_credit: float
    total: float
    peak_kw: float
    cycle_start: pd.Timestamp
    cycle_end: pd.Timestamp
    cycle_days: int
    partial: bool
    billing_demand_kw: float
    tou_peak_kw_by_period: dict[str, float] = field(default_factory=dict)
    coincident_by_period: dict[str, float] = field(default_factory=dict)
    subscribed_blocks: int | None = None

    @property
    def demand(self) -> float:
        """All demand-type charges: flat + ratchet + TOU + coincident + subscription [currency]."""
        return (
            self.demand_flat + self.ratchet + self.demand_tou + self.coincident + self.subscription
        )

    def to_dict(self, decimals: int | None = 2) -> dict[str, Any]:
        """Plain-JSON view; money rounded to ``decimals`` (``None`` keeps full precision).

        As on a utility bill, each line item is rounded and ``total`` (and ``demand``) is the
        sum of the rounded items, so the printed items always add up to the printed total.
        """

        def r(x: float) -> float:
            return _round_money(x, decimals)

        out: dict[str, Any] = {
            "month": self.month,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "partial": self.partial,
            "cycle_start": self.cycle_start.isoformat(),
            "cycle_end": self.cycle_end.isoformat(),
            "cycle_days": self.cycle_days,
        }
        for name in _LINE_ITEMS:
            out[name] = r(getattr(self, name))
        out["total"] = r(sum(out[name] for name in _LINE_ITEMS))
        out["demand"] = r(sum(out[name] for name in _DEMAND_ITEMS))
        out["energy_by_period"] = {k: r(v) for k, v in self.energy_by_period.items()}
        out["demand_tou_by_period"] = {k: r(v) for k, v in self.demand_tou_by_period.items()}
        out["coincident_by_period"] = {k: r(v) for k, v in self.coincident_by_period.items()}
        out["energy_kwh"] = float(self.energy_kwh)
        out["export_kwh"] = float(self.export_kwh)
        out["peak_kw"] = float(self.peak_kw)
        out["billing_demand_kw"] = float(self.billing_demand_kw)
        out["tou_peak_kw_by_period"] = {k: float(v) for k, v in self.tou_peak_kw_by_period.items()}
        out["subscribed_blocks"] = self.subscribed_blocks
        return out


@dataclass(frozen=True)
class Bill:
    """A bill: its billing periods in time order and their totals."""

    months: list[BillMonth]
    tariff_name: str = ""

    def _sum(self, name: str) -> float:
        return float(sum(getattr(m, name) for m in self.months))

    @property
    def total(self) -> float:
        """Total of all billing periods [currency]."""
        return self._sum("total")

    @property
    def energy(self) -> float:
        """Energy charges [currency]."""
        return self._sum("energy")

    @property
    def demand_flat(self) -> float:
        """Flat demand charges on actual peaks [currency]."""
        return self._sum("demand_flat")

    @property
    def demand_tou(self) -> float:
        """TOU demand charges [currency]."""
        return self._sum("demand_tou")

    @property
    def ratchet(self) -> float:
        """Ratchet surcharges [currency]."""
        return self._sum("ratchet")

    @property
    def coincident(self) -> float:
        """Coincident demand charges [currency]."""
        return self._sum("coincident")

    @property
    def subscription(self) -> float:
        """Subscription charges [currency]."""
        return self._sum("subscription")

    @property
    def fixed(self) -> float:
        """Fixed charges [currency]."""
        return self._sum("fixed")

    @property
    def minimum_adjustment(self) -> float:
        """Minimum-bill top-ups [currency]."""
        return self._sum("minimum_adjustment")

    @property
    def export_credit(self) -> float:
        """Export credits, ≤ 0 [currency]."""
        return self._sum("export_credit")

    @property
    def demand(self) -> float:
        """Flat + TOU + ratchet + coincident + subscription [currency]."""
        return self._sum("demand")

    @property
    def energy_kwh(self) -> float:
        """Imported energy [kWh]."""
        return self._sum("energy_kwh")

    @property
    def export_kwh(self) -> float:
        """Exported energy [kWh]."""
        return self._sum("export_kwh")

    def to_dict(self, decimals: int | None = 2) -> dict[str, Any]:
        """Public JSON contract: ``{"months": [{"month", "energy", "demand_flat",
        "demand_tou", "fixed", "export_credit", "total", …}], "total": …}`` plus extras."""

        months = [m.to_dict(decimals) for m in self.months]
        out: dict[str, Any] = {"tariff": self.tariff_name, "months": months}
        for name in (*_MONEY_FIELDS, "demand"):
            out[name] = _round_money(sum(m[name] for m in months), decimals)
        out["energy_kwh"] = self.energy_kwh
        out["export_kwh"] = self.export_kwh
        return out

    def summary(self, decimals: int | None = 2) -> dict[str, Any]:
        """Short view: total, energy, demand (all demand-type charges), fixed, export credit,
        minimum adjustment and the month dicts."""

        full = self.to_dict(decimals)
        keys = ("total", "energy", "demand", "fixed", "export_credit", "minimum_adjustment")
        return {**{k: full[k] for k in keys}, "months": full["months"]}


# ---------------------------------------------------------------------------------- metering
@dataclass(frozen=True)
class _Meter:
    horizon: Horizon
    import_kw: np.ndarray
    export_kw: np.ndarray
    export_value_per_h: np.ndarray | None  # export kW × price, when a price series is given


def _tz_name(index: pd.DatetimeIndex) -> str:
    name = str(index.tz)
    try:
        pd.Timestamp("2000-01-01", tz="UTC").tz_convert(name)
    except Exception:  # pragma: no cover - exotic tzinfo objects
        return index.tz  # type: ignore[return-value]
    return name


def _meter(load_kw: pd.Series, export_price: pd.Series | float | None,
           resolution_min: int | None = None) -> _Meter:
    """Validate the load and put import, export (and export value) on a Horizon grid.

    Resolutions the Horizon does not support (e.g. 1, 10 min) are made piecewise constant at
    1 minute and averaged into clock-aligned 5-minute steps, which keeps energy, export value
    and every demand-window average exact.
    """
    if not isinstance(load_kw, pd.Series):
        raise TypeError(f"load_kw must be a pandas Series, got {type(load_kw).__name__}")
    index = load_kw.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise InputError(
            "load_kw needs a timezone-aware DatetimeIndex; read CSVs with "
            "fleetcharge.loadcsv.read_load_csv or localise with timegrid.to_aware",
            location="load_kw",
        )
    values = load_kw.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(
            f"missing or non-finite value at {index[bad[0]]}; fill it", location="load_kw"
        )
    try:
        res = resolution_min if resolution_min is not None else infer_resolution_min(index)
    except ValueError as exc:
        raise InputError(str(exc), location="load_kw") from None

    price = None
    if isinstance(export_price, pd.Series):
        aligned = export_price.reindex(index)
        miss = np.flatnonzero(aligned.isna().to_numpy())
        if miss.size:
            raise InputError(
                f"no price for {index[miss[0]]}; the series must cover every timestamp of "
                "load_kw",
                location="export_price_per_kwh",
            )
        price = aligned.to_numpy(dtype=float)
    elif export_price is not None:
        price = np.full(len(values), float(export_price))

    imp = np.clip(values, 0.0, None)
    exp = np.clip(-values, 0.0, None)
    value = exp * price if price is not None else None
    tz = _tz_name(index)

    if res in ALLOWED_RESOLUTIONS_MIN:
        return _Meter(Horizon.covering(index, res, tz), imp, exp, value)

    first_wall = index[:1].tz_localize(None)[0]
    if first_wall.second or first_wall.microsecond or first_wall.minute % 5:
        raise InputError(
            f"a {res}-minute series must start on a 5-minute boundary of the local clock "
            f"(starts {index[0]}); trim it or resample to 5, 15, 30 or 60 minutes",
            location="load_kw",
        )
    total_min = len(values) * res
    if total_min % 5:
        raise InputError(
            f"a {res}-minute series must span whole 5-minute steps ({total_min} min given); "
            "trim the last rows",
            location="load_kw",
        )

    def regrid(x: np.ndarray) -> np.ndarray:
        return np.repeat(x, res).reshape(-1, 5).mean(axis=1)

    start = index[0]
    horizon = Horizon(start, start + pd.Timedelta(minutes=total_min), 5, tz)
    return _Meter(
        horizon,
        regrid(imp),
        regrid(exp),
        regrid(value) if value is not None else None,
    )


# ---------------------------------------------------------------------------------- helpers
def _run_starts(keys: np.ndarray) -> np.ndarray:
    """Start positions of runs of equal consecutive keys."""
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def _group_max(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, -np.inf)
    np.maximum.at(out, keys, values)
    return out


def _energy_by_period(
    periods: tuple[EnergyPeriod, ...],
    kwh: np.ndarray,
    present: np.ndarray,
    days: float,
    peak_kw: float,
) -> np.ndarray:
    """Energy charge of each TOU period in one billing period [currency].

    URDB ``energyratestructure`` tiers: ``max`` is the cumulative limit of a tier within the
    billing period [1]_. When every period used in the billing period has the same tier limits
    (the only case SAM accepts), the limits apply to the billing period's *total* import and the
    kWh of each tier are shared among periods in proportion to their kWh — SAM's rule for TOU
    rates with tiers [2]_. Otherwise each period's own kWh run through its own tiers.
    """
    rates_first = np.array([p.tiers[0].rate_per_kwh for p in periods])
    if all(len(p.tiers) == 1 for p in periods):
        return kwh * rates_first
    used = np.flatnonzero(present)
    limits = {int(p): periods[p].limits(days, peak_kw) for p in used}
    ref = limits[int(used[0])] if used.size else None
    shared = ref is not None and all(
        len(lim) == len(ref) and np.array_equal(lim, ref) for lim in limits.values()
    )
    out = np.zeros(len(periods))
    if shared and ref is not None:
        total = float(kwh[used].sum())
        if total <= 0.0:
            return out
        amounts = tier_amounts(total, ref)
        for p in used:
            out[p] = kwh[p] / total * float(amounts @ periods[p].rates_per_kwh)
        return out
    for p in used:
        out[p] = float(tier_amounts(kwh[p], limits[int(p)]) @ periods[p].rates_per_kwh)
    return out


def _label_to_ym(label: str) -> int:
    try:
        y, m = label.split("-")
        ym = int(y) * 12 + int(m) - 1
        if not 1 <= int(m) <= 12:
            raise ValueError
    except ValueError:
        raise InputError(
            f"key {label!r} is not a month label like '2018-01'", location="demand_history_kw"
        ) from None
    return ym


# ---------------------------------------------------------------------------------- engine
def compute_bill(
    tariff: Tariff,
    load_kw: pd.Series,
    *,
    billing_cycle_day: int = 1,
    export_price_per_kwh: pd.Series | float | None = None,
    demand_history_kw: dict[str, float] | None = None,
    resolution_min: int | None = None,
) -> Bill:
    """Compute the bill of a metered load under a tariff, billing period by billing period.

    Parameters
    ----------
    tariff : Tariff
        The tariff (see :mod:`fleetcharge.tariff`).
    load_kw : pandas.Series
        Interval-average power at the meter on a regular tz-aware index, any whole-minute
        resolution; import positive, export negative [kW].
    billing_cycle_day : int
        Meter-read day, 1–28. ``1`` bills calendar months; ``d`` bills cycles from local
        midnight on day ``d`` of a month to day ``d`` of the next. Monthly-indexed tariff items
        (``flatdemandmonths``, ratchet fractions) use the month in which the cycle **starts**,
        which also labels the cycle. TOU schedules always use each interval's own month.
    export_price_per_kwh : pandas.Series or float, optional
        Export credit per interval (Series aligned to ``load_kw``) or flat [currency/kWh];
        overrides the tariff's sell rates.
    resolution_min : int, optional
        Step length of ``load_kw`` [min] when the caller knows it (a one-row series cannot
        reveal it); inferred from the timestamps otherwise.
    demand_history_kw : dict of str to float, optional
        Flat monthly peaks before (or alongside) the load, ``{"2017-12": 410.0}`` [kW], for
        look-back ratchets. Where a month is both in the history and the load, the larger peak
        is used.

    Returns
    -------
    Bill

    Notes
    -----
    Per billing period ``c`` with steps ``t`` of length ``Δ`` [h], import ``g_t = max(P_t, 0)``
    and export ``x_t = max(−P_t, 0)`` [kW]:

    * **energy** ``Σ_p tiers(E_cp)`` with ``E_cp = Σ_{t∈c, period(t)=p} g_t Δ`` (URDB
      ``energyratestructure``/``energy*schedule``; tiers as in ``_energy_by_period``);
    * **demand**: ``D_w`` = mean of ``g_t`` over clock-aligned windows of ``demandwindow``
      minutes (default 15) when the data are finer, else ``g_t``; peak ``D_c = max_{w∈c} D_w``;
    * **flat demand** ``tiers_{flatdemandmonths[month(c)]}(D_c)`` (URDB ``flatdemandstructure``);
    * **ratchet** ``tiers(B_c) − tiers(D_c)`` with billing demand ``B_c = max(D_c, f · max of
      counted peaks in the look-back)`` (URDB ``lookbackpercent``/``lookbackrange``/
      ``lookbackmonths``; ``demandratchetpercentage`` over the previous 11 months);
    * **TOU demand** ``Σ_k tiers_k(max_{w∈c, period(w)=k} D_w)`` (URDB ``demandratestructure``),
      likewise **coincident** (URDB ``coincidentratestructure``/``coincidentrateschedule``);
    * **subscription** ``n·price·φ + overage·max(D_c − n·block, 0)`` (PG&E BEV [3]_);
    * **fixed** ``per_month·φ + per_day·days + per_year/12·φ`` where ``φ`` = days billed / days
      in the cycle (1 for a fully covered cycle);
    * **export credit** ``−Σ x_t Δ · sell_t`` netted per interval (URDB ``sell``; SAM net
      billing, ``ur_metering_option = 2``);
    * **minimum** tops the billing period up to ``per_month·φ + per_day·days``; an annual minimum
      (pro-rated by days billed / 365) tops up the last billing period.

    Raises
    ------
    InputError
        (a ``ValueError``) Irregular, naive or non-finite load; an export price series that
        misses timestamps; an invalid ``billing_cycle_day`` or history label.
    """
    if not 1 <= int(billing_cycle_day) <= 28 or int(billing_cycle_day) != billing_cycle_day:
        raise InputError(
            f"must be a whole day 1–28 (a meter-read day that exists in every month), "
            f"got {billing_cycle_day!r}",
            location="billing_cycle_day",
        )
    d = int(billing_cycle_day)
    meter = _meter(load_kw, export_price_per_kwh, resolution_min)
    h = meter.horizon
    idx = h.index
    n = h.n_steps
    dt = h.step_hours
    imp, exp = meter.import_kw, meter.export_kw

    # --- billing periods (Horizon.billing_cycles: the one definition planner and bill share) --
    cyc, cycles_ym = h.billing_cycles(d)
    n_c = len(cycles_ym)
    starts = _run_starts(cyc)

    # --- tariff periods per step -------------------------------------------------------------
    e_per = tariff.energy_period(h)
    n_e = len(tariff.energy.periods) if tariff.energy is not None else 1
    t_per = tariff.demand_tou_period(h)
    n_t = len(tariff.tou_demand.periods) if tariff.tou_demand is not None else 0
    c_per = tariff.coincident_period(h)
    n_k = len(tariff.coincident.periods) if tariff.coincident is not None else 0

    # --- demand windows (Horizon.demand_windows: clock-aligned, never across a cycle) --------
    if tariff.demand_window_min > h.resolution_min:
        window_matrix, w_start = h.demand_windows(tariff.demand_window_min, cyc)
        demand = window_matrix @ imp
    else:
        w_start = np.arange(n)
        demand = imp
    w_cyc = cyc[w_start]

    # --- per billing period aggregates -------------------------------------------------------
    peak = np.maximum.reduceat(demand, _run_starts(w_cyc))
    e_key = cyc * n_e + e_per
    kwh = np.bincount(e_key, weights=imp * dt, minlength=n_c * n_e).reshape(n_c, n_e)
    e_present = np.bincount(e_key, minlength=n_c * n_e).reshape(n_c, n_e) > 0
    export_kwh = np.bincount(cyc, weights=exp * dt, minlength=n_c)
    if meter.export_value_per_h is not None:
        credit = -np.bincount(cyc, weights=meter.export_value_per_h * dt, minlength=n_c)
    else:
        sell = tariff.sell_rate_per_kwh(h)
        credit = -np.bincount(cyc, weights=exp * sell * dt, minlength=n_c)
    tou_peak = (
        _group_max(w_cyc * n_t + t_per[w_start], demand, n_c * n_t).reshape(n_c, n_t)
        if n_t
        else np.zeros((n_c, 0))
    )
    co_peak = (
        _group_max(w_cyc * n_k + c_per[w_start], demand, n_c * n_k).reshape(n_c, n_k)
        if n_k
        else np.zeros((n_c, 0))
    )
    ev_charge = _coincident_events(tariff, h, w_start, demand, w_cyc, n_c)

    # --- calendar of each billing period ------------------------------------------------------
    step = pd.Timedelta(minutes=h.resolution_min)
    ends = np.r_[starts[1:], n] - 1
    bill_start = [idx[i] for i in starts]
    bill_end = [idx[i] + step for i in ends]
    c_start = [cycle_start(int(y), d, h.timezone) for y in cycles_ym]
    c_end = [cycle_start(int(y) + 1, d, h.timezone) for y in cycles_ym]

    # --- ratchet inputs ----------------------------------------------------------------------
    known_peaks: dict[int, float] = {}
    for label, kw in (demand_history_kw or {}).items():
        known_peaks[_label_to_ym(label)] = float(kw)
    for i, y in enumerate(cycles_ym):
        known_peaks[int(y)] = max(known_peaks.get(int(y), 0.0), float(peak[i]))

    e_labels = tariff.energy_period_labels()
    months: list[BillMonth] = []
    for i in range(n_c):
        y_m = int(cycles_ym[i])
        month = y_m % 12 + 1
        days, cycle_days, phi = cycle_coverage(bill_start[i], bill_end[i], y_m, d, h.timezone)
        partial = phi < 1.0 - 1e-9
        pk = float(peak[i])

        # energy
        energy_by: dict[str, float] = {}
        energy = 0.0
        if tariff.energy is not None:
            charges = _energy_by_period(tariff.energy.periods, kwh[i], e_present[i], days, pk)
            for p in np.flatnonzero(e_present[i]):
                energy_by[e_labels[p]] = float(charges[p])
            energy = float(charges.sum())

        # flat demand and ratchet
        demand_flat = ratchet = 0.0
        billing_demand = pk
        if tariff.flat_demand is not None:
            fp: DemandPeriod = tariff.flat_demand.period_of_month(month)
            demand_flat = fp.charge(pk)
            for r in tariff.ratchets:
                frac = r.fraction_by_month[month - 1]
                prior = [
                    known_peaks[k]
                    for k in range(y_m - r.lookback_months, y_m)
                    if k in known_peaks and r.counted_months[k % 12]
                ]
                if prior and frac > 0:
                    billing_demand = max(billing_demand, frac * max(prior))
            if billing_demand > pk:
                ratchet = fp.charge(billing_demand) - demand_flat

        # TOU demand and coincident
        tou_by: dict[str, float] = {}
        tou_peak_by: dict[str, float] = {}
        if tariff.tou_demand is not None:
            for k in np.flatnonzero(np.isfinite(tou_peak[i])):
                per = tariff.tou_demand.periods[k]
                tou_by[per.label] = per.charge(float(tou_peak[i, k]))
                tou_peak_by[per.label] = float(tou_peak[i, k])
        co_by: dict[str, float] = {}
        if tariff.coincident is not None:
            for k in np.flatnonzero(np.isfinite(co_peak[i])):
                per = tariff.coincident.periods[k]
                co_by[per.label] = per.charge(float(co_peak[i, k]))
        if ev_charge[i]:
            co_by["coincident peak events"] = float(ev_charge[i])

        # subscription
        subscription = 0.0
        blocks = None
        if tariff.subscription is not None:
            s = tariff.subscription
            blocks = s.blocks_for(pk)
            subscription = blocks * s.price_per_block * phi + s.overage_per_kw * max(
                pk - blocks * s.block_kw, 0.0
            )

        # fixed
        f = tariff.fixed
        fixed = f.per_month * phi + f.per_day * days + f.per_year / 12.0 * phi

        demand_tou = float(sum(tou_by.values()))
        coincident = float(sum(co_by.values()))
        export_credit = float(credit[i])
        subtotal = (
            energy
            + demand_flat
            + ratchet
            + demand_tou
            + coincident
            + subscription
            + fixed
            + export_credit
        )
        mn = tariff.minimum
        floor = mn.per_month * phi + mn.per_day * days
        minimum_adjustment = max(floor - subtotal, 0.0) if floor > 0 else 0.0

        months.append(
            BillMonth(
                month=month_label(y_m),
                start=bill_start[i],
                end=bill_end[i],
                days=days,
                energy=energy,
                energy_by_period=energy_by,
                energy_kwh=float(kwh[i].sum()),
                export_kwh=float(export_kwh[i]),
                demand_flat=demand_flat,
                demand_tou=demand_tou,
                demand_tou_by_period=tou_by,
                ratchet=ratchet,
                coincident=coincident,
                subscription=subscription,
                fixed=fixed,
                minimum_adjustment=minimum_adjustment,
                export_credit=export_credit,
                total=subtotal + minimum_adjustment,
                peak_kw=pk,
                cycle_start=c_start[i],
                cycle_end=c_end[i],
                cycle_days=cycle_days,
                partial=partial,
                billing_demand_kw=billing_demand,
                tou_peak_kw_by_period=tou_peak_by,
                coincident_by_period=co_by,
                subscribed_blocks=blocks,
            )
        )

    if tariff.minimum.per_year > 0 and months:
        total_days = sum(m.days for m in months)
        required = tariff.minimum.per_year * total_days / 365.0
        shortfall = required - sum(m.total for m in months)
        if shortfall > 0:
            last = months[-1]
            months[-1] = _replace_month(last, shortfall)

    if tariff.metering_rule not in (None, "Net Billing Instantaneous") and float(
        export_kwh.sum()
    ) > 0:
        warnings.warn(
            f"tariff {tariff.name!r} uses dgrules {tariff.metering_rule!r}; fleetcharge nets "
            "every interval instead (imports at the buy rate, exports at the sell rate)",
            UnsupportedTariffFeature,
            stacklevel=2,
        )
    return Bill(months, tariff.name)


def _replace_month(m: BillMonth, extra: float) -> BillMonth:
    return replace(m, minimum_adjustment=m.minimum_adjustment + extra, total=m.total + extra)


def _coincident_events(
    tariff: Tariff,
    h: Horizon,
    w_start: np.ndarray,
    demand: np.ndarray,
    w_cyc: np.ndarray,
    n_c: int,
) -> np.ndarray:
    """REopt-style coincident peak charges per billing period [currency].

    Each window's charge is ``rate × max demand`` over its time steps, evaluated separately for
    every calendar year in the load, and booked in the billing period holding that maximum.
    """
    out = np.zeros(n_c)
    ev = tariff.coincident_events
    if ev is None:
        return out
    idx = h.index[w_start]
    sph = ev.steps_per_hour
    step_no = (
        ((idx.day_of_year.to_numpy() - 1) * 24 + h.local_hour[w_start]) * sph
        + idx.minute.to_numpy() * sph // 60
        + 1
    )
    years = idx.year.to_numpy()
    for steps, rate in zip(ev.windows, ev.rates_per_kw, strict=True):
        member = np.isin(step_no, np.asarray(steps, dtype=np.int64))
        for y in np.unique(years[member]):
            sel = np.flatnonzero(member & (years == y))
            j = sel[int(np.argmax(demand[sel]))]
            out[w_cyc[j]] += rate * float(demand[j])
    return out

