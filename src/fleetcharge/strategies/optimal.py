"""Strategy ``optimal``: the bill-minimising V1G plan, from a Scenario and its tariff.

This module translates the tariff into LP terms (:mod:`fleetcharge.strategies.optimal_lp`):
per-step energy prices and one demand determinant per billing cycle and charge (all hours,
each TOU demand period, each coincident period, subscription), with ratchets as billing-demand
floors. The LP is exact for everything it prices; anything it has to approximate (declining
block tiers, REopt coincident-peak events) is listed in ``plan.info["approximations"]`` and the
bill is always recomputed from the schedule by the bill engine.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fleetcharge.domain import Scenario
from fleetcharge.plan import Plan
from fleetcharge.strategies.optimal_lp import DemandCharge, LPInput, Subscription, solve_v1g
from fleetcharge.tariff.model import DemandPeriod, Tariff
from fleetcharge.timegrid import Horizon, cycle_coverage, month_label


def _tier_terms(period: DemandPeriod, what: str, notes: list[str]) -> dict:
    """LP pricing of one demand period: a single rate, or convex tiers; else first tier + note."""
    rates = period.rates_per_kw
    if len(rates) == 1:
        return {"rate_per_kw": float(rates[0])}
    if np.all(np.diff(rates) >= 0):
        return {"tiers": tuple(zip(period.limits_kw.tolist(), rates.tolist()))}
    notes.append(f"{what}: declining demand tiers priced at the first tier in the plan")
    return {"rate_per_kw": float(rates[0])}


def demand_charges(
    tariff: Tariff,
    horizon: Horizon,
    cycle_day: int = 1,
    peaks_so_far_kw: Mapping[str, float] | None = None,
    demand_history_kw: Mapping[str, float] | None = None,
) -> tuple[tuple[DemandCharge, ...], object, list[str]]:
    """Demand determinants of ``tariff`` on ``horizon``, labelled ``"YYYY-MM <what>"``.

    Parameters
    ----------
    peaks_so_far_kw : mapping, optional
        Peak already metered in the current billing cycle, by determinant label (e.g.
        ``{"2025-03 all hours": 412.0, "2025-03 On-Peak": 380.0}``) [kW]: re-plans never pay
        for a peak twice.
    demand_history_kw : mapping, optional
        All-hours peaks of earlier billing months, ``{"2025-01": 450.0}`` [kW], for ratchets.

    Returns
    -------
    charges, window_matrix, notes
    """
    peaks_so_far_kw = dict(peaks_so_far_kw or {})
    history = {k: float(v) for k, v in (demand_history_kw or {}).items()}
    cycle, start_month = horizon.billing_cycles(cycle_day)
    window, first_step = horizon.demand_windows(tariff.demand_window_min, cycle)
    w_cycle = cycle[first_step]
    t_per = tariff.demand_tou_period(horizon)[first_step]
    c_per = tariff.coincident_period(horizon)[first_step]
    notes: list[str] = []
    charges: list[DemandCharge] = []
    flat_index: dict[int, int] = {}
    for c, ym in enumerate(start_month):
        label = month_label(int(ym))
        month = int(ym) % 12 + 1
        windows = np.flatnonzero(w_cycle == c)
        if tariff.flat_demand is not None:
            what = f"{label} all hours"
            terms = _tier_terms(tariff.flat_demand.period_of_month(month), what, notes)
            billed_floor, ratchet_from = 0.0, []
            for r in tariff.ratchets:
                frac = r.fraction_by_month[month - 1]
                if frac <= 0:
                    continue
                for back in range(1, r.lookback_months + 1):
                    prior = int(ym) - back
                    if not r.counted_months[prior % 12]:
                        continue
                    inside = np.flatnonzero(start_month == prior)
                    if inside.size and int(inside[0]) in flat_index:
                        ratchet_from.append((flat_index[int(inside[0])], frac))
                    if month_label(prior) in history:  # the bill takes the larger of the two
                        billed_floor = max(billed_floor, frac * history[month_label(prior)])
            flat_index[c] = len(charges)
            charges.append(DemandCharge(what, windows, floor_kw=peaks_so_far_kw.get(what, 0.0),
                                        billed_floor_kw=billed_floor,
                                        ratchet_from=tuple(ratchet_from), **terms))
        if tariff.subscription is not None:
            sub = tariff.subscription
            cycle_steps = np.flatnonzero(cycle == c)
            step = pd.Timedelta(minutes=horizon.resolution_min)
            _, _, coverage = cycle_coverage(horizon.index[cycle_steps[0]],
                                            horizon.index[cycle_steps[-1]] + step, int(ym),
                                            cycle_day, horizon.timezone)
            what = f"{label} subscription"
            charges.append(DemandCharge(
                what, windows, floor_kw=peaks_so_far_kw.get(what, 0.0),
                subscription=Subscription(sub.block_kw, sub.price_per_block * coverage,
                                          sub.overage_per_kw, sub.subscribed_blocks)))
        for kind, per, periods in (("TOU", t_per, tariff.tou_demand),
                                   ("coincident", c_per, tariff.coincident)):
            if periods is None:
                continue
            for k, period in enumerate(periods.periods):
                if not np.any(period.rates_per_kw):
                    continue
                w = windows[per[windows] == k]
                if not w.size:
                    continue
                what = f"{label} {period.label or f'{kind} period {k}'}"
                charges.append(DemandCharge(what, w, floor_kw=peaks_so_far_kw.get(what, 0.0),
                                            **_tier_terms(period, what, notes)))
    if tariff.coincident_events is not None:
        notes.append("REopt coincident-peak events are billed but not priced in the plan")
    return tuple(charges), window, notes


def lp_input(
    scenario: Scenario,
    peaks_so_far_kw: Mapping[str, float] | None = None,
    demand_history_kw: Mapping[str, float] | None = None,
    *,
    import_limit_kw: np.ndarray | None = None,
    price_adder_per_kwh: np.ndarray | None = None,
) -> tuple[LPInput, list[str]]:
    """The LP of ``scenario`` and the list of approximations it makes (empty when exact).

    ``import_limit_kw`` (one value per step, ``inf`` = none) lowers the site's import limit
    below the service limit, e.g. in a demand-response event; it never asks to shed the building
    load, so the LP's limit is ``min(service limit, max(import_limit_kw, building))``.
    ``price_adder_per_kwh`` (one value per step) is added to the energy price, e.g. a DR price
    signal paid per kWh not taken (see :mod:`fleetcharge.dr.planning`).
    """
    horizon = scenario.horizon
    tariff = scenario.tariff
    arrays = scenario.session_arrays()
    charges, window, notes = demand_charges(
        tariff, horizon, scenario.billing_cycle_day, peaks_so_far_kw, demand_history_kw)
    if tariff.energy is not None and tariff.energy.is_tiered:
        notes.append("tiered energy rates priced at each period's first tier in the plan")
    building = scenario.building_kw()
    limit: float | np.ndarray = scenario.site.service_limit_kw
    if import_limit_kw is not None:
        limit = np.minimum(limit, np.maximum(_per_step(import_limit_kw, horizon, "import_limit_kw"),
                                             building))
    price = np.asarray(tariff.energy_rate_per_kwh(horizon), dtype=float)
    if price_adder_per_kwh is not None:
        price = price + _per_step(price_adder_per_kwh, horizon, "price_adder_per_kwh")
    lp = LPInput(
        availability=arrays.availability(horizon.n_steps),
        max_kw=arrays.max_kw,
        energy_kwh=arrays.energy_kwh,
        step_hours=horizon.step_hours,
        energy_price_per_kwh=price,
        building_kw=building,
        service_limit_kw=limit,
        demand_charges=charges,
        window_matrix=window,
        headroom_kwh=(1.0 - arrays.arrival_soc) * arrays.usable_kwh / arrays.efficiency,
    )
    return lp, notes


def _per_step(values: np.ndarray, horizon: Horizon, name: str) -> np.ndarray:
    """``values`` as a float array with one entry per step of ``horizon``."""
    out = np.asarray(values, dtype=float)
    if out.shape != (horizon.n_steps,):
        raise ValueError(f"{name} has shape {out.shape}; it needs one value per step "
                         f"({horizon.n_steps})")
    return out


def solver_info(result, lp: LPInput, notes: list[str]) -> dict:
    """What every optimised plan reports: solver, status, objective, exactness, shortfall,
    sizes and timings, and each demand determinant's metered and billed peak."""
    info = dict(result.info)
    info.update(
        solver="HiGHS",
        solver_status=result.status,
        objective=result.objective,
        approximations=notes,
        exact=not notes,
        gap=0.0 if not notes else None,
        shortfall_kwh=float(result.shortfall_kwh.sum()),
        demand_determinants=[
            {"label": dc.label, "peak_kw": float(p), "billed_kw": float(b)}
            for dc, p, b in zip(lp.demand_charges, result.peaks_kw, result.billed_kw)
        ],
    )
    return info


def optimal(
    scenario: Scenario,
    *,
    peaks_so_far_kw: Mapping[str, float] | None = None,
    demand_history_kw: Mapping[str, float] | None = None,
    time_limit_s: float | None = None,
    import_limit_kw: np.ndarray | None = None,
    price_adder_per_kwh: np.ndarray | None = None,
) -> Plan:
    """Plan that minimises the bill (energy + demand) with every departure target met if possible.

    Targets are hard when they can be met; when they cannot, the shortfall is minimised first
    and reported per vehicle (see accounting's readiness), and the rest of the fleet is still
    planned at least cost. ``plan.info`` carries the solver status, objective, sizes and timings,
    the demand determinants and the list of approximations (empty: the plan is exactly optimal).
    ``import_limit_kw`` and ``price_adder_per_kwh`` (per step) are demand-response inputs; see
    :func:`lp_input`. With a price adder the objective includes it, so it is not the bill.
    """
    lp, notes = lp_input(scenario, peaks_so_far_kw, demand_history_kw,
                         import_limit_kw=import_limit_kw, price_adder_per_kwh=price_adder_per_kwh)
    if (lp.building_kw < 0).any():
        # On-site generation exceeds the building at times: the meter exports, import and export
        # are priced differently, so solve the per-step model that splits them (V2G LP without
        # discharge). Charging from the surplus then costs the forgone export credit.
        from fleetcharge.strategies.v2g_lp import V2GTerms, solve_v2g

        arrays = scenario.session_arrays()
        n = len(arrays)
        terms = V2GTerms(
            discharge_kw=np.zeros(n), charge_efficiency=arrays.efficiency,
            discharge_efficiency=arrays.discharge_efficiency, usable_kwh=arrays.usable_kwh,
            arrival_kwh=arrays.arrival_soc * arrays.usable_kwh, floor_kwh=np.zeros(n),
            degradation_per_kwh=np.zeros(n), export_limit_kw=np.inf,
            sell_price_per_kwh=(scenario.v2g.export_price_per_kwh.to_numpy(dtype=float)
                                if scenario.v2g.export_price_per_kwh is not None
                                else np.asarray(scenario.tariff.sell_rate_per_kwh(
                                    scenario.horizon), dtype=float)))
        result = solve_v2g(lp, terms, time_limit_s=time_limit_s)
    else:
        result = solve_v1g(lp, time_limit_s=time_limit_s)
    info = solver_info(result, lp, notes)
    status = "ok" if result.status == "Optimal" else result.status
    return Plan("optimal", scenario, result.charge_kw, status=status, info=info)
