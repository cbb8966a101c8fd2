"""Strategy ``v2g``: the bill-minimising plan with bidirectional charging where the stack allows.

Discharge is offered only to sessions whose vehicle × charger pair passes the stack check
(:mod:`fleetcharge.v2g.stack`); export only up to the interconnection agreement's limit (none
without an approved agreement: then discharge can only lower the site's own import). Export is
credited at the scenario's export price series or the tariff's sell rates; programs pay for load
reduced below the V1G plan's load in their called hours; every kWh leaving a battery costs its
chemistry's degradation (or the scenario's override). Departure targets stay hard.

``discharge_chargers`` narrows discharge to the sessions on those chargers, whatever the stack
check says of the others: the live depot passes the chargers whose station can take a discharge
setpoint now (connected over OCPP 2.1, see :mod:`fleetcharge.strategies.rolling`); studies pass
nothing and every eligible pair may discharge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from fleetcharge.domain import Scenario
from fleetcharge.plan import Plan
from fleetcharge.strategies.optimal import lp_input, optimal, solver_info
from fleetcharge.strategies.v2g_lp import V2GTerms, solve_v2g
from fleetcharge.v2g.degradation import degradation_cost_per_kwh
from fleetcharge.v2g.programs import program_price_per_kwh
from fleetcharge.v2g.stack import check_stack


def session_discharge_kw(scenario: Scenario, *,
                         discharge_chargers: Collection[str] | None = None,
                         has_program: bool | None = None) -> np.ndarray:
    """Discharge cap of each of the scenario's sessions [kW]; 0 where it may not discharge.

    The cap is the pair's limit from the stack check (:func:`fleetcharge.v2g.stack.check_stack`;
    0 when a link other than the interconnection is missing). With ``discharge_chargers`` only
    sessions on those chargers keep it (an empty collection: none does).

    Parameters
    ----------
    scenario : Scenario
        Its sessions, fleet, chargers, site, tariff and ``v2g`` settings.
    discharge_chargers : collection of str, optional
        Ids of the chargers allowed to discharge; ``None`` allows every charger.
    has_program : bool, optional
        Whether a program pays (a value stream of the stack check); default: the scenario has
        ``v2g.programs``.

    Returns
    -------
    numpy.ndarray
        One cap per session, in ``scenario.sessions`` order [kW].
    """
    settings = scenario.v2g
    checks = check_stack(scenario,
                         has_program=bool(settings.programs) if has_program is None
                         else has_program,
                         has_export_price=settings.export_price_per_kwh is not None)
    pair_kw = {(p.vehicle_id, p.charger_id): p.discharge_kw for p in checks}
    allowed = None if discharge_chargers is None else frozenset(discharge_chargers)
    return np.array([pair_kw.get((s.vehicle_id, s.charger_id), 0.0)
                     if allowed is None or s.charger_id in allowed else 0.0
                     for s in scenario.sessions], dtype=float)


def v2g_terms(scenario: Scenario, baseline_kw: np.ndarray | None = None, *,
              discharge_chargers: Collection[str] | None = None,
              export_limit_kw: float | np.ndarray | None = None) -> V2GTerms:
    """The V2G LP terms of ``scenario``: per-session discharge caps from the stack check
    (:func:`session_discharge_kw`, only on ``discharge_chargers`` when given), SOC bounds,
    degradation, export limit and prices, program payments on ``baseline_kw``.

    The export limit is the interconnection agreement's [kW]; ``export_limit_kw`` (a number or
    one per step) can only lower it (e.g. a live re-plan's partly elapsed first step).
    """
    settings = scenario.v2g
    horizon = scenario.horizon
    arrays = scenario.session_arrays()
    vehicles = [scenario.vehicle(s.vehicle_id) for s in scenario.sessions]
    discharge = session_discharge_kw(scenario, discharge_chargers=discharge_chargers)
    if settings.degradation_per_kwh is not None:
        degradation = np.full(len(vehicles), float(settings.degradation_per_kwh))
    else:
        by_chem = {c: degradation_cost_per_kwh(c) for c in {v.type.chemistry for v in vehicles}}
        degradation = np.array([by_chem[v.type.chemistry] for v in vehicles], dtype=float)
    sell = (settings.export_price_per_kwh.to_numpy(dtype=float)
            if settings.export_price_per_kwh is not None
            else np.asarray(scenario.tariff.sell_rate_per_kwh(horizon), dtype=float))
    program = None
    if settings.programs:
        program = sum(program_price_per_kwh(p, horizon.index) for p in settings.programs)
    return V2GTerms(
        discharge_kw=discharge,
        charge_efficiency=arrays.efficiency,
        discharge_efficiency=arrays.discharge_efficiency,
        usable_kwh=arrays.usable_kwh,
        arrival_kwh=arrays.arrival_soc * arrays.usable_kwh,
        floor_kwh=np.array([v.min_soc for v in vehicles], dtype=float) * arrays.usable_kwh,
        degradation_per_kwh=degradation,
        export_limit_kw=_export_limit_kw(scenario, export_limit_kw),
        sell_price_per_kwh=sell,
        program_price_per_kwh=program,
        baseline_kw=baseline_kw if program is not None else None,
    )


def _export_limit_kw(scenario: Scenario,
                     override_kw: float | np.ndarray | None) -> float | np.ndarray:
    """The agreement's export limit, lowered to ``override_kw`` where that is lower [kW]."""
    allowed = scenario.site.interconnection.export_allowed_kw
    if override_kw is None:
        return allowed
    limit = np.minimum(allowed, np.asarray(override_kw, dtype=float))
    if limit.ndim and limit.shape != (scenario.horizon.n_steps,):
        raise ValueError(f"export_limit_kw has {limit.shape[0]} values; give one per step of "
                         f"the horizon ({scenario.horizon.n_steps}) or a single number")
    return limit if limit.ndim else float(limit)


def netting_note(import_kw: np.ndarray, export_kw: np.ndarray, buy_per_kwh: np.ndarray,
                 sell_per_kwh: np.ndarray | None, step_hours: float) -> str | None:
    """A plan note when the LP both imports and exports in a step, else None.

    A site meter nets import and export within a step; the LP keeps them apart (import g,
    export x, ``g − x`` = load) and never does both while the export credit σ is below the
    import price π. Where σ > π it may (e.g. one vehicle charging from another), which the
    meter would not record as export: those steps' export and its credit are overstated by
    ``Σ min(g, x)·Δ`` kWh and ``Σ (σ − π)·min(g, x)·Δ`` dollars, which the note reports.
    """
    both_kwh = np.minimum(np.clip(import_kw, 0.0, None), np.clip(export_kw, 0.0, None)) * step_hours
    if sell_per_kwh is None or both_kwh.sum() <= 1e-6:
        return None
    overstated = float(((np.asarray(sell_per_kwh) - buy_per_kwh) * both_kwh).sum())
    return (f"export credit above the import price: the plan imports and exports in the same "
            f"step in {int((both_kwh > 1e-9).sum())} steps ({both_kwh.sum():.2f} kWh), which a "
            f"site meter nets; export and its credit are overstated by up to "
            f"{both_kwh.sum():.2f} kWh and ${overstated:.2f}")


def optimal_v2g(
    scenario: Scenario,
    *,
    baseline: Plan | None = None,
    peaks_so_far_kw: Mapping[str, float] | None = None,
    demand_history_kw: Mapping[str, float] | None = None,
    time_limit_s: float | None = None,
    discharge_chargers: Collection[str] | None = None,
    export_limit_kw: float | np.ndarray | None = None,
) -> Plan:
    """Plan that minimises bill + degradation − program payments with V2G where eligible.

    ``baseline`` is the V1G plan whose site load programs measure reductions against (computed
    with :func:`fleetcharge.strategies.optimal.optimal` when needed and not given); its LP
    duals also tell the V2G LP which sessions to start with (a speed-up only).
    ``discharge_chargers`` (charger ids) restricts discharge to the sessions on those chargers
    (:func:`session_discharge_kw`); ``None``: every eligible pair. ``export_limit_kw`` (a
    number or one per step) lowers the interconnection's export limit (:func:`v2g_terms`).
    ``peaks_so_far_kw``, ``demand_history_kw`` and ``time_limit_s`` are as for
    :func:`~fleetcharge.strategies.optimal.optimal`.
    """
    lp, notes = lp_input(scenario, peaks_so_far_kw, demand_history_kw)
    baseline_kw = None
    if scenario.v2g.programs:
        baseline = baseline or optimal(scenario, peaks_so_far_kw=peaks_so_far_kw,
                                       demand_history_kw=demand_history_kw)
        baseline_kw = baseline.site_load_kw()
    v1g_duals = None
    if baseline is not None and "step_dual" in baseline.info:
        v1g_duals = (baseline.info["energy_dual"], baseline.info["step_dual"])
    terms = v2g_terms(scenario, baseline_kw, discharge_chargers=discharge_chargers,
                      export_limit_kw=export_limit_kw)
    result = solve_v2g(lp, terms, time_limit_s=time_limit_s, v1g_duals=v1g_duals)
    note = netting_note(result.import_kw, result.export_kw, lp.energy_price_per_kwh,
                        terms.sell_price_per_kwh, lp.step_hours)
    if note:
        notes = [*notes, note]
    info = solver_info(result, lp, notes)
    info.update(
        objective_parts=result.parts,
        export_limit_kw=scenario.site.interconnection.export_allowed_kw,
        max_export_kw=float(result.export_kw.max(initial=0.0)),
        eligible_sessions=int((terms.discharge_kw > 0).sum()),
        degradation_per_kwh=terms.degradation_per_kwh,
    )
    status = "ok" if result.status == "Optimal" else result.status
    return Plan("v2g", scenario, result.charge_kw, discharge_kw=result.discharge_kw,
                status=status, info=info)
