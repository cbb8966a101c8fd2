"""The V2G LP (DESIGN.md §4 with discharge): charge, discharge, per-step SOC, import and export.

Sessions n, steps t while plugged in; V2G-eligible sessions (a discharge cap > 0) also get a
discharge d and a battery-energy state e per step; the others keep the V1G energy row.

.. math::

    \\min\\; \\sum_t π_t Δ g_t − \\sum_t σ_t Δ x_t + \\sum_j \\mathrm{cost}_j(B_j)
    + \\sum_{n,t} δ_n Δ d_{n,t}/η^d_n − \\sum_t ρ_t Δ r_t + M \\sum_n s_n

    e_{n,k+1} = e_{n,k} + η^c_n Δ c_{n,k} − Δ d_{n,k} / η^d_n, \\quad
    e_{n,0} = e^{arr}_n,\\quad \\underline e_n ≤ e_{n,k} ≤ U_n

    e_{n,end} + η^c_n s_n ≥ e^{arr}_n + η^c_n E_n \\quad(\\text{V2G}),\\qquad
    \\sum_t Δ c_{n,t} + s_n ≥ E_n \\quad(\\text{V1G})

    g_t − x_t = b_t + \\sum_n c_{n,t} − \\sum_n d_{n,t},\\quad 0 ≤ g_t ≤ L,\\quad
    0 ≤ x_t ≤ X

    r_t ≤ β_t − (g_t − x_t),\\ r_t ≥ 0 \\quad (\\text{program: reduction below the baseline})

with π the import price and σ the export credit [$/kWh], g import and x export [kW], X the
export limit of the interconnection agreement (0 without one: discharge then only lowers the
site's own import), δ the degradation cost per kWh leaving the battery [$/kWh], η^c/η^d the
charge/discharge efficiencies, ρ a program's payment for load reduced below its baseline β
[$/kWh], and the demand determinants priced on import g exactly as in V1G
(:func:`fleetcharge.strategies.optimal_lp.add_demand_terms`). Discharge makes SOC
non-monotone, so the floor and the battery size can bind between block ends: the split into
steps checks them at every step (:func:`solve_v2g`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import highspy
import numpy as np
import scipy.sparse as sp

from fleetcharge.strategies.optimal_lp import (
    LPInput,
    _Model,
    add_demand_terms,
    event_blocks,
    flatten_blocks,
    highs_for_model,
    highs_with,
    run_highs,
    shortfall_penalty,
)


@dataclass(frozen=True)
class V2GTerms:
    """Everything V2G adds to an :class:`LPInput` (per session or per step)."""

    discharge_kw: np.ndarray  # per session discharge cap at the charger; 0 = not eligible [kW]
    charge_efficiency: np.ndarray  # per session η_c
    discharge_efficiency: np.ndarray  # per session η_d
    usable_kwh: np.ndarray  # per session battery size [kWh]
    arrival_kwh: np.ndarray  # per session battery energy at arrival [kWh]
    floor_kwh: np.ndarray  # per session SOC floor while plugged in [kWh]
    degradation_per_kwh: np.ndarray  # per session, per kWh leaving the battery [$/kWh]
    export_limit_kw: float | np.ndarray = 0.0  # agreement (or per step); 0 = no export [kW]
    sell_price_per_kwh: np.ndarray | None = None  # per step export credit [$/kWh]
    program_price_per_kwh: np.ndarray | None = None  # per step payment for reduction [$/kWh]
    baseline_kw: np.ndarray | None = None  # per step program baseline (site load without V2G)


@dataclass(frozen=True)
class V2GResult:
    """Solution of the V2G LP with the objective split into its parts [$]."""

    charge_kw: sp.csr_array
    discharge_kw: sp.csr_array
    shortfall_kwh: np.ndarray
    import_kw: np.ndarray
    export_kw: np.ndarray
    peaks_kw: np.ndarray
    billed_kw: np.ndarray
    status: str
    objective: float  # energy + demand − export credit + degradation − program, no penalty
    parts: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


#: The V2G LP uses dual simplex up to this many columns, interior point without crossover above
#: (see ``solve_v2g``).
V2G_IPM_MIN_COLUMNS = 200_000


def solve_v2g(lp: LPInput, v2g: V2GTerms, *, time_limit_s: float | None = None,
              v1g_duals: tuple[np.ndarray, np.ndarray] | None = None) -> V2GResult:
    """Build the V2G LP on event blocks, solve it with HiGHS, and split it into per-step power.

    As for V1G (:func:`fleetcharge.strategies.optimal_lp.solve_v1g`), each session gets its
    charge C and discharge D *per event block* and, if eligible, its battery energy at the end of
    each block; the site's net charging y_t, import g_t and export x_t stay per step. That is a
    relaxation of the per-step model (module docstring); the plan then splits each block into
    steps — in proportion to y when the block only charges or only discharges, else by a small
    LP that also keeps every step's SOC within bounds — and where a block cannot be split, its
    steps become blocks of their own and the LP is solved again. The result is optimal for the
    per-step model.

    Most sessions of a fleet never profit from discharging, and their battery rows would only
    slow the solver down. So the LP starts with the V2G formulation for the sessions whose
    prices alone make a discharge pay (:func:`_likely_to_discharge`) and the V1G energy row for
    all others; after each solve, pricing with the LP's duals (:func:`_price_discharge`) finds
    the sessions whose discharge could still lower the cost (demand charges included), they get
    their V2G formulation and the LP is solved again, until none is left: column generation,
    which ends with the optimum of the full V2G model. ``v1g_duals`` (per-session energy-row
    and per-step site duals of the V1G plan, ``LPResult.info["energy_dual"/"step_dual"]``)
    price the starting set too, which usually leaves nothing for later rounds.
    """
    t0 = perf_counter()
    avail = lp.availability.tocsr()
    avail.sort_indices()
    n_sessions, n_steps = avail.shape
    dt = lp.step_hours
    lengths = np.diff(avail.indptr)
    row_of = np.repeat(np.arange(n_sessions), lengths)
    step_of = avail.indices
    cap = lp.max_kw[row_of] * avail.data
    eligible = (v2g.discharge_kw > 0) & (lengths > 0)
    dcap_eligible = np.where(eligible[row_of], v2g.discharge_kw[row_of] * avail.data, 0.0)
    sell = np.zeros(n_steps) if v2g.sell_price_per_kwh is None else v2g.sell_price_per_kwh
    program = (np.zeros(n_steps) if v2g.program_price_per_kwh is None
               else v2g.program_price_per_kwh)
    paying = program > 0 if v2g.baseline_kw is not None else np.zeros(n_steps, dtype=bool)
    # Meeting targets comes first: a kWh short must cost more than selling it could earn.
    penalty = shortfall_penalty(lp) + max(float(sell.max(initial=0.0)), 0.0) + max(
        float(program.max(initial=0.0)), 0.0)
    eta_c, eta_d = v2g.charge_efficiency, v2g.discharge_efficiency
    floor = np.minimum(v2g.floor_kwh, v2g.arrival_kwh)
    headroom = (np.full(n_sessions, np.inf) if lp.headroom_kwh is None
                else np.maximum(lp.headroom_kwh, lp.energy_kwh))
    window = sp.csr_array(lp.window_matrix if lp.window_matrix is not None
                          else sp.identity(n_steps, format="csr"))
    window_of_step = window.tocsc().indices
    membership = np.zeros((len(lp.demand_charges), n_steps), dtype=bool)
    for j, dc in enumerate(lp.demand_charges):
        member = np.zeros(window.shape[0], dtype=bool)
        member[np.asarray(dc.windows, dtype=np.int64)] = True
        membership[j] = member[window_of_step]
    # Blocks also end where the export credit or a program payment changes.
    _, price_code = np.unique(np.stack([lp.energy_price_per_kwh, sell, program * paying]),
                              axis=1, return_inverse=True)
    step_cap = np.bincount(step_of, weights=cap, minlength=n_steps)
    plugged_steps = np.flatnonzero(step_cap > 0)
    step_dcap = np.bincount(step_of, weights=dcap_eligible, minlength=n_steps)
    dis_steps = np.flatnonzero(step_dcap > 0)

    split = np.zeros(n_steps, dtype=bool)
    # Sessions with the V2G formulation; the others keep the V1G energy row until pricing shows
    # that discharging could lower the cost (column generation, see _price_discharge).
    active = _likely_to_discharge(eligible, row_of, step_of, lp.energy_price_per_kwh,
                                  np.maximum(sell, 0.0) if np.any(np.asarray(
                                      v2g.export_limit_kw) > 0) else None,
                                  np.where(paying, program, 0.0), v2g.degradation_per_kwh,
                                  eta_c, eta_d)
    if v1g_duals is not None and v1g_duals[0].size == n_sessions and v1g_duals[1].size == n_steps:
        active |= _price_discharge(eligible, v1g_duals[0], v1g_duals[1], row_of, step_of,
                                   dcap_eligible, v2g.degradation_per_kwh, eta_c, eta_d, dt)
    rounds = pricing_rounds = 0
    t_build = t_solve = t_split = 0.0
    while True:
        rounds += 1
        block_of = event_blocks(avail, price_code.astype(float), membership, split)
        n_blocks = int(block_of[-1]) + 1
        key = row_of * n_blocks + block_of[step_of]
        keys, entry_block = np.unique(key, return_inverse=True)
        e_session, e_block = keys // n_blocks, keys % n_blocks
        c_cap_kwh = np.bincount(entry_block, weights=cap, minlength=keys.size) * dt
        m = _Model()
        cc = m.add_cols(np.zeros(keys.size), 0.0, c_cap_kwh)
        s = m.add_cols(np.full(n_sessions, penalty), 0.0, lp.energy_kwh)
        # Every session starts with its V1G energy row E ≤ Σ C + s ≤ headroom.
        energy_rows = m.n_row + np.arange(n_sessions)
        m.add_rows(np.concatenate([e_session, np.arange(n_sessions)]),
                   np.concatenate([cc, s]), np.ones(keys.size + n_sessions),
                   lp.energy_kwh, headroom)
        # Charging and discharging per step, each linked to its blocks:
        # Σ_{t∈B} y⁺_t Δ = Σ_k C_k and Σ_{t∈B} y⁻_t Δ = Σ_k D_k (a net load below zero must be
        # paid for with discharge, degradation included; the D_k join these rows when their
        # session gets its V2G formulation).
        yp = m.add_cols(np.zeros(plugged_steps.size), 0.0, step_cap[plugged_steps])
        yn = m.add_cols(np.zeros(dis_steps.size), 0.0, 0.0)  # bounds: see battery.add
        used, link_row = np.unique(block_of[plugged_steps], return_inverse=True)
        m.add_rows(np.concatenate([link_row, np.searchsorted(used, e_block)]),
                   np.concatenate([yp, cc]),
                   np.concatenate([np.full(yp.size, dt), -np.ones(cc.size)]),
                   np.zeros(used.size), 0.0)
        used_d, link_d = np.unique(block_of[dis_steps], return_inverse=True)
        discharge_rows = m.n_row + np.arange(used_d.size)
        m.add_rows(link_d, yn, np.full(yn.size, dt), np.zeros(used_d.size), 0.0)
        # Site balance per step: g − x − y⁺ + y⁻ = b.
        g = m.add_cols(lp.energy_price_per_kwh * dt, 0.0, lp.service_limit_kw)
        x = m.add_cols(-sell * dt, 0.0, np.maximum(v2g.export_limit_kw, 0.0))
        t = np.arange(n_steps)
        balance_rows = m.n_row + t
        m.add_rows(np.concatenate([t, t, plugged_steps, dis_steps]),
                   np.concatenate([g, x, yp, yn]),
                   np.concatenate([np.ones(n_steps), -np.ones(n_steps), -np.ones(yp.size),
                                   np.ones(yn.size)]),
                   lp.building_kw, lp.building_kw)
        # Program: r_t + g_t − x_t ≤ β_t where it pays.
        r = np.zeros(0, dtype=np.int64)
        if paying.any():
            paid = np.flatnonzero(paying)
            r = m.add_cols(-program[paid] * dt, 0.0, np.inf)
            j = np.arange(paid.size)
            m.add_rows(np.concatenate([j, j, j]), np.concatenate([r, g[paid], x[paid]]),
                       np.concatenate([np.ones(paid.size), np.ones(paid.size),
                                       -np.ones(paid.size)]),
                       np.full(paid.size, -np.inf), v2g.baseline_kw[paid])
        aggregate = sp.csr_array((np.ones(n_steps), (t, g)), shape=(n_steps, m.n_col))
        peak_cols, billed_cols, _, integer_used = add_demand_terms(
            m, lp.demand_charges, window, aggregate, np.zeros(window.shape[0]),
            np.ones(window.shape[0], dtype=bool))
        # Dual simplex below V2G_IPM_MIN_COLUMNS: its vertex solutions split into steps in
        # fewer refinement rounds than interior-point ones (measured: 7 s vs 20 s for 50 buses
        # × 31 days before column generation kept most sessions V1G).
        highs = highs_for_model(m, m.matrix(), np.concatenate(m.cost), integer_used,
                                time_limit_s, ipm_min_columns=V2G_IPM_MIN_COLUMNS)
        d_cap_kwh = np.bincount(entry_block, weights=dcap_eligible, minlength=keys.size) * dt
        battery = _BatteryColumns(keys.size)
        # A MILP has no duals to price with: every eligible session gets V2G at once.
        new = eligible.copy() if integer_used else active.copy()
        while True:
            if new.any():
                # Entries of sessions that cannot discharge may lie in blocks after the last
                # one with discharge; their row is never used, only kept in bounds.
                block_row = np.minimum(np.searchsorted(used_d, e_block), used_d.size - 1)
                battery.add(highs, new, e_session, d_cap_kwh, discharge_rows[block_row], cc, s,
                            energy_rows, v2g, lp.energy_kwh, floor)
                active |= new
                # y⁻_t ≤ what the sessions with a V2G formulation can discharge at t.
                active_dcap = np.bincount(step_of, weights=np.where(
                    active[row_of], dcap_eligible, 0.0), minlength=n_steps)[dis_steps]
                highs.changeColsBounds(yn.size, yn.astype(np.int32), np.zeros(yn.size),
                                       active_dcap)
            t_build += perf_counter() - t0
            status, sol, seconds = run_highs(highs, highs.getNumCol())
            t_solve += seconds
            t0 = perf_counter()
            if status != "Optimal" or integer_used:
                break
            row_dual = np.asarray(highs.getSolution().row_dual)
            new = _price_discharge(eligible & ~active, row_dual[energy_rows],
                                   row_dual[balance_rows], row_of, step_of, dcap_eligible,
                                   v2g.degradation_per_kwh, eta_c, eta_d, dt)
            if not new.any():
                break
            pricing_rounds += 1
        t2 = perf_counter()
        cost = np.asarray(highs.getLp().col_cost_)
        dcap = np.where(active[row_of], dcap_eligible, 0.0)
        y_plus = np.zeros(n_steps)
        y_plus[plugged_steps] = np.clip(sol[yp], 0.0, None)
        y_minus = np.zeros(n_steps)
        y_minus[dis_steps] = np.clip(sol[yn], 0.0, None)
        c_kwh = np.clip(sol[cc], 0.0, c_cap_kwh)
        v_ent = np.flatnonzero(battery.dd >= 0)
        d_kwh = np.zeros(keys.size)
        d_kwh[v_ent] = np.clip(sol[battery.dd[v_ent]], 0.0, d_cap_kwh[v_ent])
        e_start = np.zeros(keys.size)  # battery energy at each entry's block start
        first = np.r_[True, e_session[v_ent][1:] != e_session[v_ent][:-1]]
        e_start[v_ent] = np.where(first, v2g.arrival_kwh[e_session[v_ent]],
                                  sol[battery.ee[v_ent - 1]] if v_ent.size else 0.0)
        # Charging a block needs may be re-shaped under the import its peaks and the service
        # limit allow (every step its own demand window): same price inside the block.
        y_max = None
        if window.shape[0] == n_steps and (lp.building_kw >= 0).all():
            y_max = np.maximum(lp.service_limit_kw - lp.building_kw, 0.0)
            for j, dc in enumerate(lp.demand_charges):
                w = np.asarray(dc.windows, dtype=np.int64)
                y_max[w] = np.minimum(y_max[w], sol[peak_cols[j]] - lp.building_kw[w])
            y_max = np.maximum(y_max, 0.0)
            # Valley-fill the blocks that only charge (same cost; smoother, splits better).
            charge_only = np.bincount(block_of, weights=y_minus, minlength=n_blocks)[
                block_of] <= 1e-12
            flat = flatten_blocks(y_plus, block_of, lp.building_kw,
                                  np.minimum(y_max, step_cap))
            y_plus = np.where(charge_only, flat, y_plus)
        charge, discharge, failed = _split_v2g(
            c_kwh, d_kwh, e_start, entry_block, block_of, step_of, row_of, cap,
            dcap, y_plus, y_minus, dt, eta_c, eta_d, floor, v2g.usable_kwh, active, y_max)
        t_split += perf_counter() - t2
        t0 = perf_counter()
        if not failed.size:
            break
        split |= np.isin(block_of, failed)

    dd = battery.dd[battery.dd >= 0]
    parts = {
        "energy": float(cost[g] @ sol[g]),
        "export_credit": float(cost[x] @ sol[x]),
        "degradation": float(cost[dd] @ sol[dd]),
        "program": float(cost[r] @ sol[r]) if r.size else 0.0,
    }
    demand_cols = np.setdiff1d(np.arange(m.n_col),
                               np.concatenate([cc, s, yp, yn, g, x, r]))
    parts["demand"] = float(cost[demand_cols] @ sol[demand_cols])
    pattern = (avail.indices.copy(), avail.indptr.copy())
    return V2GResult(
        charge_kw=sp.csr_array((charge, *pattern), shape=avail.shape),
        discharge_kw=sp.csr_array((discharge, *pattern), shape=avail.shape),
        shortfall_kwh=np.clip(sol[s], 0.0, None),
        import_kw=np.clip(sol[g], 0.0, None),
        export_kw=np.clip(sol[x], 0.0, None),
        peaks_kw=sol[peak_cols],
        billed_kw=sol[billed_cols],
        status=status,
        objective=sum(parts.values()),
        parts=parts,
        info={"columns": highs.getNumCol(), "rows": highs.getNumRow(),
              "nonzeros": int(highs.getNumNz()),
              "v2g_sessions": int(eligible.sum()), "v2g_formulated_sessions": int(active.sum()),
              "pricing_rounds": pricing_rounds, "build_s": t_build, "solve_s": t_solve,
              "disaggregate_s": t_split, "event_blocks": n_blocks, "refinement_rounds": rounds,
              "refined_steps": int(split.sum()),
              "integer_columns": int(np.concatenate(m.integer).sum()),
              "penalty_per_kwh": penalty},
    )


class _BatteryColumns:
    """Discharge D and battery energy e per session-block entry, added to a HiGHS model
    session by session (column index −1 where the entry's session has no V2G formulation)."""

    def __init__(self, n_entries: int) -> None:
        self.dd = np.full(n_entries, -1, dtype=np.int64)
        self.ee = np.full(n_entries, -1, dtype=np.int64)

    def add(self, highs: highspy.Highs, sessions: np.ndarray, e_session: np.ndarray,
            d_cap_kwh: np.ndarray, discharge_row: np.ndarray, cc: np.ndarray, s: np.ndarray,
            energy_rows: np.ndarray, v2g: V2GTerms, energy_kwh: np.ndarray,
            floor_kwh: np.ndarray) -> None:
        """Give ``sessions`` (mask) the V2G formulation in the HiGHS model (its basis is kept):
        columns D_k (cost δ/η_d, joining its block's discharge link row) and e_k ∈ [floor, U];
        rows e_k − e_{k−1} − η_c C_k + D_k/η_d = 0 (e_{−1} = arrival) and
        e_end + η_c s ≥ arrival + η_c E; the V1G row's upper side (headroom) is dropped — its
        lower side E ≤ ΣC + s stays valid, being implied by the departure row."""
        ent = np.flatnonzero(sessions[e_session])
        ses = e_session[ent]
        nv = ent.size
        eta_c, eta_d = v2g.charge_efficiency[ses], v2g.discharge_efficiency[ses]
        n0 = highs.getNumCol()
        dd, ee = n0 + np.arange(nv), n0 + nv + np.arange(nv)
        self.dd[ent], self.ee[ent] = dd, ee
        highs.addCols(nv, v2g.degradation_per_kwh[ses] / eta_d, np.zeros(nv), d_cap_kwh[ent],
                      nv, np.arange(nv, dtype=np.int32), discharge_row[ent].astype(np.int32),
                      -np.ones(nv))
        highs.addCols(nv, np.zeros(nv), floor_kwh[ses], v2g.usable_kwh[ses], 0,
                      np.zeros(nv, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        first = np.r_[True, ses[1:] != ses[:-1]]
        last = np.r_[ses[1:] != ses[:-1], True]
        k = np.arange(nv)
        inner = k[~first]
        arrival = v2g.arrival_kwh[ses]
        new_sessions = ses[last]
        dep = nv + np.arange(new_sessions.size)
        rows = sp.csr_array(
            (np.concatenate([np.ones(nv), -np.ones(inner.size), -eta_c, 1.0 / eta_d,
                             np.ones(dep.size), v2g.charge_efficiency[new_sessions]]),
             (np.concatenate([k, inner, k, k, dep, dep]),
              np.concatenate([ee, ee[inner - 1], cc[ent], dd, ee[last], s[new_sessions]]))),
            shape=(nv + dep.size, n0 + 2 * nv))
        lo = np.concatenate([np.where(first, arrival, 0.0),
                             v2g.arrival_kwh[new_sessions]
                             + v2g.charge_efficiency[new_sessions] * energy_kwh[new_sessions]])
        hi = np.concatenate([np.where(first, arrival, 0.0), np.full(dep.size, np.inf)])
        highs.addRows(lo.size, lo, hi, rows.nnz, rows.indptr[:-1].astype(np.int32),
                      rows.indices.astype(np.int32), rows.data)
        idx = energy_rows[new_sessions].astype(np.int32)
        highs.changeRowsBounds(idx.size, idx, energy_kwh[new_sessions],
                               np.full(idx.size, np.inf))


def _likely_to_discharge(eligible: np.ndarray, row_of: np.ndarray, step_of: np.ndarray,
                         import_price: np.ndarray, export_price: np.ndarray | None,
                         program_price: np.ndarray, degradation_per_kwh: np.ndarray,
                         eta_c: np.ndarray, eta_d: np.ndarray) -> np.ndarray:
    """Eligible sessions whose energy prices alone make a discharge pay: some step of the dwell
    where a kWh out (avoided import or export credit, plus program payment) is worth more
    than its degradation δ/η_d plus recharging it at the dwell's cheapest import price
    1/(η_c η_d). Only a starting set for the column generation (pricing with the LP's duals,
    which also see demand charges, decides); it saves solving the V1G model first."""
    value = import_price if export_price is None else np.maximum(import_price, export_price)
    value = value + program_price
    n = eligible.size
    cheapest = np.full(n, np.inf)
    np.minimum.at(cheapest, row_of, import_price[step_of])
    best = np.full(n, -np.inf)
    np.maximum.at(best, row_of, value[step_of])
    return eligible & (best > degradation_per_kwh / eta_d + cheapest / (eta_c * eta_d) + 1e-9)


def _price_discharge(candidates: np.ndarray, energy_dual: np.ndarray, balance_dual: np.ndarray, row_of: np.ndarray, step_of: np.ndarray,
                     dcap: np.ndarray, degradation_per_kwh: np.ndarray, eta_c: np.ndarray,
                     eta_d: np.ndarray, dt: float, tol: float = 1e-7) -> np.ndarray:
    """Sessions among ``candidates`` (now modelled V1G) whose discharge could lower the cost.

    Column generation (Dantzig–Wolfe pricing, e.g. Desrosiers & Lübbecke, *A Primer in Column
    Generation*, 2005): a session modelled with its V1G energy row E ≤ ΣC + s ≤ headroom is
    the V2G model with D = 0. Add to that row discharge columns D_t [kWh at the meter, step t]
    with coefficient −1/(η_c η_d) (each kWh leaving must be recharged before departure,
    e_end = e_arr + η_c ΣC − ΣD/η_d) and +1/Δ in step t's site balance, at cost δ/η_d: dropping
    the SOC bounds between arrival and departure makes this a *relaxation* of the session's V2G
    model. If no such column has a negative reduced cost c − aᵀy under the current duals y, the
    current solution is optimal for the relaxation and, being feasible for the V2G model, for
    the V2G model too; else the session needs its V2G formulation.
    """
    mu = energy_dual  # per session, its energy row's dual
    reduced = (degradation_per_kwh[row_of] / eta_d[row_of] - balance_dual[step_of] / dt
               + mu[row_of] / (eta_c[row_of] * eta_d[row_of]))
    scale = 1.0 + np.abs(balance_dual[step_of]) / dt + np.abs(mu[row_of])
    pays = (reduced < -tol * scale) & (dcap > 0) & candidates[row_of]
    return np.bincount(row_of[pays], minlength=candidates.size) > 0


def _split_v2g(c_kwh: np.ndarray, d_kwh: np.ndarray, e_start: np.ndarray,
               entry_block: np.ndarray, block_of: np.ndarray, step_of: np.ndarray,
               row_of: np.ndarray, cap: np.ndarray, dcap: np.ndarray, y_plus: np.ndarray,
               y_minus: np.ndarray, dt: float, eta_c: np.ndarray, eta_d: np.ndarray,
               floor: np.ndarray, usable: np.ndarray, eligible: np.ndarray,
               y_max: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-step charge and discharge of every availability entry from the block solution.

    Charge is split in proportion to y⁺ and discharge to y⁻ inside each block. Where a block
    holds a session that both charges and discharges (its SOC could leave its bounds between
    the block's ends), or a cap would be exceeded, a feasibility LP with per-step SOC bounds
    splits it instead; a block that only charges may there re-shape its load under ``y_max``.
    Returns charge and discharge per entry [kW] and the blocks that cannot be split.
    """
    n_blocks = int(block_of[-1]) + 1
    blk = block_of[step_of]
    yb_pos = np.bincount(block_of, weights=y_plus * dt, minlength=n_blocks)
    yb_neg = np.bincount(block_of, weights=y_minus * dt, minlength=n_blocks)
    both = (c_kwh > 1e-9) & (d_kwh > 1e-9)  # per session-block entry
    mixed = np.bincount(blk, weights=both[entry_block], minlength=n_blocks) > 0
    charge = np.where(yb_pos[blk] > 1e-12, c_kwh[entry_block] * y_plus[step_of]
                      / np.maximum(yb_pos[blk], 1e-12), 0.0)
    discharge = np.where(yb_neg[blk] > 1e-12, d_kwh[entry_block] * y_minus[step_of]
                         / np.maximum(yb_neg[blk], 1e-12), 0.0)
    bad = (charge > cap + 1e-7) | (discharge > dcap + 1e-7)
    redo = np.unique(np.r_[np.flatnonzero(mixed), blk[bad]]).astype(np.int64)
    charge_only = yb_neg < 1e-12
    failed = []
    # One feasibility LP for all these blocks (independent of each other); only if it is
    # infeasible, block by block to find the ones that cannot be split.
    step_max = None
    if y_max is not None:
        step_max = np.where(charge_only[block_of], y_max, np.nan)
    sel = np.flatnonzero(np.isin(blk, redo))
    res = _split_block_soc(sel, c_kwh, d_kwh, e_start, entry_block, row_of, step_of, cap, dcap,
                           y_plus - y_minus, dt, eta_c, eta_d, floor, usable, eligible,
                           step_max) if sel.size else None
    if res is not None:
        charge[sel], discharge[sel] = res
        redo = redo[:0]
    for b in redo:
        sel = np.flatnonzero(blk == b)
        res = _split_block_soc(sel, c_kwh, d_kwh, e_start, entry_block, row_of, step_of, cap,
                               dcap, y_plus - y_minus, dt, eta_c, eta_d, floor, usable,
                               eligible, step_max)
        if res is None:
            failed.append(b)
        else:
            charge[sel], discharge[sel] = res
    return np.clip(charge, 0.0, cap), np.clip(discharge, 0.0, dcap), np.asarray(
        failed, dtype=np.int64)


def _split_block_soc(sel, c_kwh, d_kwh, e_start, entry_block, row_of, step_of, cap, dcap,
                     y_step, dt, eta_c, eta_d, floor, usable, eligible, y_max=None):
    """Feasibility LP for one block: per-entry c and d with the block's energies, each step's
    net load (equal to ``y_step``, or anywhere in [0, max(y_max, y_step)] at steps where
    ``y_max`` is given and not NaN), and SOC within bounds after every step. ``None`` if
    infeasible. Several blocks at once are fine: they share no rows."""
    ent = entry_block[sel]
    sessions, srow = np.unique(ent, return_inverse=True)
    steps, trow = np.unique(step_of[sel], return_inverse=True)
    k = sel.size
    n_s, n_t = sessions.size, steps.size
    ses = row_of[sel]
    # columns: c (k) | d (k)
    rows, cols, vals, lo, hi = [], [], [], [], []
    r0 = 0
    # energies per session-block
    rows += [srow, srow + n_s]
    cols += [np.arange(k), k + np.arange(k)]
    vals += [np.full(k, dt), np.full(k, dt)]
    tgt = np.concatenate([c_kwh[sessions], d_kwh[sessions]])
    slack = 1e-9 * (1 + np.abs(tgt))
    lo.append(tgt - slack)
    hi.append(tgt + slack)
    r0 += 2 * n_s
    # net per step
    rows += [r0 + trow, r0 + trow]
    cols += [np.arange(k), k + np.arange(k)]
    vals += [np.ones(k), -np.ones(k)]
    ys = y_step[steps]
    tol = 1e-9 * (1 + np.abs(ys))
    lo_t, hi_t = ys - tol, ys + tol
    if y_max is not None:  # NaN where the step's load must stay as the LP planned it
        flexible = np.isfinite(y_max[steps])
        lo_t = np.where(flexible, 0.0, lo_t)
        hi_t = np.where(flexible, np.maximum(np.nan_to_num(y_max[steps]), ys) + tol, hi_t)
    lo.append(lo_t)
    hi.append(hi_t)
    r0 += n_t
    # Battery state after each step for eligible sessions (columns 2k…): e_i − e_{i−1}
    # − η_c Δ c_i + Δ/η_d d_i = 0 with e_{−1} = the block's start, floor ≤ e ≤ U.
    order = np.lexsort((step_of[sel], srow))
    soc = order[eligible[ses[order]]]
    n_e = soc.size
    first = np.r_[True, srow[soc][1:] != srow[soc][:-1]] if n_e else np.zeros(0, bool)
    i = np.arange(n_e)
    n_of = ses[soc]
    rows += [r0 + i, r0 + i, r0 + i, r0 + i[~first]]
    cols += [2 * k + i, soc, k + soc, 2 * k + i[~first] - 1]
    vals += [np.ones(n_e), -eta_c[n_of] * dt, dt / eta_d[n_of], -np.ones(int((~first).sum()))]
    start = np.where(first, e_start[ent[soc]], 0.0)
    lo.append(start)
    hi.append(start)
    r0 += n_e
    e_lo = floor[n_of] - 1e-7
    e_hi = usable[n_of] + 1e-7
    n_col = 2 * k + n_e
    a = sp.csc_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                     shape=(r0, n_col))
    highs = highs_with(a, np.zeros(n_col), np.concatenate([np.zeros(2 * k), e_lo]),
                       np.concatenate([cap[sel], dcap[sel], e_hi]),
                       np.concatenate(lo), np.concatenate(hi))
    highs.setOptionValue("primal_feasibility_tolerance", 1e-10)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    z = np.asarray(highs.getSolution().col_value)
    return np.clip(z[:k], 0.0, cap[sel]), np.clip(z[k:2 * k], 0.0, dcap[sel])
