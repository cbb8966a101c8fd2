"""Strategy ``v2g``: the bill-minimising plan with bidirectional charging where the stack allows.

Discharge is offered only to sessions whose vehicle × charger pair passes the stack check
(:mod:`fleetcharge.v2g.stack`); export only up to the interconnection agreement's limit (none
without an approved agreement: then discharge can only lower the site's own import). Export is
credited at the scenario's export price series or the tariff's sell rates; programs pay for load
reduced below the V1G plan's load in their called hours; every kWh leaving a battery costs its
chemistry's degradation (or the scenario's override). Departure targets stay hard.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fleetcharge.domain import Scenario
from fleetcharge.plan import Plan
from fleetcharge.strategies.optimal import lp_input, optimal, solver_info
from fleetcharge.strategies.v2g_lp import V2GTerms, solve_v2g
from fleetcharge.v2g.degradation import degradation_cost_per_kwh
from fleetcharge.v2g.programs import program_price_per_kwh
from fleetcharge.v2g.stack import check_stack


def v2g_terms(scenario: Scenario, baseline_kw: np.ndarray | None = None) -> V2GTerms:
    """The V2G LP terms of ``scenario``: per-session discharge caps from the stack check, SOC
    bounds, degradation, export limit and prices, program payments on ``baseline_kw``."""
    settings = scenario.v2g
    horizon = scenario.horizon
    arrays = scenario.session_arrays()
    checks = check_stack(scenario, has_program=bool(settings.programs),
                         has_export_price=settings.export_price_per_kwh is not None)
    pair_kw = {(p.vehicle_id, p.charger_id): p.discharge_kw for p in checks}
    vehicles = [scenario.vehicle(s.vehicle_id) for s in scenario.sessions]
    discharge = np.array([pair_kw.get((s.vehicle_id, s.charger_id), 0.0)
                          for s in scenario.sessions], dtype=float)
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
        export_limit_kw=scenario.site.interconnection.export_allowed_kw,
        sell_price_per_kwh=sell,
        program_price_per_kwh=program,
        baseline_kw=baseline_kw if program is not None else None,
    )


def optimal_v2g(
    scenario: Scenario,
    *,
    baseline: Plan | None = None,
    peaks_so_far_kw: Mapping[str, float] | None = None,
    demand_history_kw: Mapping[str, float] | None = None,
    time_limit_s: float | None = None,
) -> Plan:
    """Plan that minimises bill + degradation − program payments with V2G where eligible.

    ``baseline`` is the V1G plan whose site load programs measure reductions against (computed
    with :func:`fleetcharge.strategies.optimal.optimal` when needed and not given); its LP
    duals also tell the V2G LP which sessions to start with (a speed-up only).
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
    terms = v2g_terms(scenario, baseline_kw)
    result = solve_v2g(lp, terms, time_limit_s=time_limit_s, v1g_duals=v1g_duals)
    info = solver_info(result, lp, notes)
    info.update(
        objective_parts=result.parts,
        export_limit_kw=terms.export_limit_kw,
        max_export_kw=float(result.export_kw.max(initial=0.0)),
        eligible_sessions=int((terms.discharge_kw > 0).sum()),
        degradation_per_kwh=terms.degradation_per_kwh,
    )
    status = "ok" if result.status == "Optimal" else result.status
    return Plan("v2g", scenario, result.charge_kw, discharge_kw=result.discharge_kw,
                status=status, info=info)
