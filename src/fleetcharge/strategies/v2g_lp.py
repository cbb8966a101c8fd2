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
(:func:`fleetcharge.strategies.optimal_lp.add_demand_terms`). Per-step SOC is needed here
(discharge makes SOC non-monotone, so the floor and the battery size bind in between).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import numpy as np
import scipy.sparse as sp

from fleetcharge.strategies.optimal_lp import (
    LPInput,
    _Model,
    add_demand_terms,
    highs_for_model,
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
    export_limit_kw: float = 0.0  # interconnection agreement; 0 = no export
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


def solve_v2g(lp: LPInput, v2g: V2GTerms, *, time_limit_s: float | None = None) -> V2GResult:
    """Build the per-step V2G LP (module docstring) and solve it with HiGHS."""
    t0 = perf_counter()
    avail = lp.availability.tocsr()
    avail.sort_indices()
    n_sessions, n_steps = avail.shape
    nnz = avail.nnz
    dt = lp.step_hours
    lengths = np.diff(avail.indptr)
    row_of = np.repeat(np.arange(n_sessions), lengths)
    step_of = avail.indices
    cap = lp.max_kw[row_of] * avail.data
    eligible = (v2g.discharge_kw > 0) & (lengths > 0)
    sell = np.zeros(n_steps) if v2g.sell_price_per_kwh is None else v2g.sell_price_per_kwh
    program = (np.zeros(n_steps) if v2g.program_price_per_kwh is None
               else v2g.program_price_per_kwh)
    # Meeting targets comes first: a kWh short must cost more than selling it could earn.
    penalty = shortfall_penalty(lp) + max(float(sell.max(initial=0.0)), 0.0) + max(
        float(program.max(initial=0.0)), 0.0)
    m = _Model()

    c = m.add_cols(np.zeros(nnz), 0.0, cap)
    s = m.add_cols(np.full(n_sessions, penalty), 0.0, lp.energy_kwh)
    # V2G entries: discharge and the battery state after each step.
    v_entry = np.flatnonzero(eligible[row_of])
    v_row = row_of[v_entry]
    eta_c, eta_d = v2g.charge_efficiency, v2g.discharge_efficiency
    d = m.add_cols(v2g.degradation_per_kwh[v_row] * dt / eta_d[v_row], 0.0,
                   v2g.discharge_kw[v_row] * avail.data[v_entry])
    floor = np.minimum(v2g.floor_kwh, v2g.arrival_kwh)
    e_after = m.add_cols(np.zeros(v_entry.size), floor[v_row], v2g.usable_kwh[v_row])

    # V1G sessions: E ≤ Σ Δ c + s ≤ headroom.
    v1g = np.flatnonzero(~eligible)
    v1g_entry = np.flatnonzero(~eligible[row_of])
    headroom = (np.full(n_sessions, np.inf) if lp.headroom_kwh is None
                else np.maximum(lp.headroom_kwh, lp.energy_kwh))
    pos = np.searchsorted(v1g, row_of[v1g_entry])
    m.add_rows(np.concatenate([pos, np.arange(v1g.size)]),
               np.concatenate([c[v1g_entry], s[v1g]]),
               np.concatenate([np.full(v1g_entry.size, dt), np.ones(v1g.size)]),
               lp.energy_kwh[v1g], headroom[v1g])

    # V2G dynamics: e_k − e_{k−1} − η_c Δ c_k + Δ/η_d d_k = 0, e_{−1} = arrival (a constant).
    first_of_session = np.r_[True, v_row[1:] != v_row[:-1]] if v_entry.size else np.zeros(0, bool)
    k = np.arange(v_entry.size)
    prev = k - 1
    rows = [k, k, k]
    cols = [e_after, c[v_entry], d]
    vals = [np.ones(k.size), -eta_c[v_row] * dt, dt / eta_d[v_row]]
    inner = ~first_of_session
    rows.append(k[inner])
    cols.append(e_after[prev[inner]])
    vals.append(-np.ones(int(inner.sum())))
    rhs = np.where(first_of_session, v2g.arrival_kwh[v_row], 0.0)
    m.add_rows(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), rhs, rhs)
    # V2G departure: e_end + η_c s ≥ arrival + η_c E.
    v_sessions = np.flatnonzero(eligible)
    last_entry = np.flatnonzero(np.r_[v_row[1:] != v_row[:-1], True]) if v_entry.size else k
    m.add_rows(np.concatenate([np.arange(v_sessions.size)] * 2),
               np.concatenate([e_after[last_entry], s[v_sessions]]),
               np.concatenate([np.ones(v_sessions.size), eta_c[v_sessions]]),
               v2g.arrival_kwh[v_sessions] + eta_c[v_sessions] * lp.energy_kwh[v_sessions],
               np.inf)

    # Site balance per step: g − x − Σ c + Σ d = b.
    g = m.add_cols(lp.energy_price_per_kwh * dt, 0.0, lp.service_limit_kw)
    x = m.add_cols(-sell * dt, 0.0, max(v2g.export_limit_kw, 0.0))
    t = np.arange(n_steps)
    m.add_rows(np.concatenate([t, t, step_of, step_of[v_entry]]),
               np.concatenate([g, x, c, d]),
               np.concatenate([np.ones(n_steps), -np.ones(n_steps), -np.ones(nnz),
                               np.ones(v_entry.size)]),
               lp.building_kw, lp.building_kw)

    # Program: r_t + g_t − x_t ≤ β_t where it pays.
    r = np.zeros(0, dtype=np.int64)
    if v2g.program_price_per_kwh is not None and v2g.baseline_kw is not None:
        paid = np.flatnonzero(v2g.program_price_per_kwh > 0)
        r = m.add_cols(-v2g.program_price_per_kwh[paid] * dt, 0.0, np.inf)
        j = np.arange(paid.size)
        m.add_rows(np.concatenate([j, j, j]), np.concatenate([r, g[paid], x[paid]]),
                   np.concatenate([np.ones(paid.size), np.ones(paid.size), -np.ones(paid.size)]),
                   np.full(paid.size, -np.inf), v2g.baseline_kw[paid])

    window = sp.csr_array(lp.window_matrix if lp.window_matrix is not None
                          else sp.identity(n_steps, format="csr"))
    aggregate = sp.csr_array((np.ones(n_steps), (t, g)), shape=(n_steps, m.n_col))
    peak_cols, billed_cols, _, integer_used = add_demand_terms(
        m, lp.demand_charges, window, aggregate, np.zeros(window.shape[0]),
        np.ones(window.shape[0], dtype=bool))

    a = m.matrix()
    cost = np.concatenate(m.cost)
    highs = highs_for_model(m, a, cost, integer_used, time_limit_s)
    t_build = perf_counter() - t0
    t1 = perf_counter()
    highs.run()
    t_solve = perf_counter() - t1
    status = highs.modelStatusToString(highs.getModelStatus())
    sol = np.asarray(highs.getSolution().col_value)
    if sol.size != m.n_col:
        raise RuntimeError(f"HiGHS returned no solution (status: {status})")

    parts = {
        "energy": float(cost[g] @ sol[g]),
        "export_credit": float(cost[x] @ sol[x]),
        "degradation": float(cost[d] @ sol[d]),
        "program": float(cost[r] @ sol[r]) if r.size else 0.0,
    }
    demand_cols = np.setdiff1d(np.arange(m.n_col), np.concatenate([c, s, d, e_after, g, x, r]))
    parts["demand"] = float(cost[demand_cols] @ sol[demand_cols])
    objective = sum(parts.values())
    charge = sp.csr_array((np.clip(sol[c], 0.0, cap), avail.indices.copy(), avail.indptr.copy()),
                          shape=avail.shape)
    dis = np.zeros(nnz)
    dis[v_entry] = np.clip(sol[d], 0.0, None)
    discharge = sp.csr_array((dis, avail.indices.copy(), avail.indptr.copy()), shape=avail.shape)
    return V2GResult(
        charge_kw=charge,
        discharge_kw=discharge,
        shortfall_kwh=np.clip(sol[s], 0.0, None),
        import_kw=np.clip(sol[g], 0.0, None),
        export_kw=np.clip(sol[x], 0.0, None),
        peaks_kw=sol[peak_cols],
        billed_kw=sol[billed_cols],
        status=status,
        objective=objective,
        parts=parts,
        info={"columns": m.n_col, "rows": m.n_row, "nonzeros": int(a.nnz),
              "v2g_sessions": int(eligible.sum()), "build_s": t_build, "solve_s": t_solve,
              "integer_columns": int(np.concatenate(m.integer).sum()),
              "penalty_per_kwh": penalty},
    )
