"""The V1G charging LP (DESIGN.md §4), built as sparse matrices and solved by HiGHS in one call.

Formulation (charging only). Sessions n, steps t where n is plugged in (the availability pattern;
absent steps have no variable), demand charges j (a set of steps T_j and a rate r_j):

.. math::

    \\min\\; \\sum_{n,t} π_t Δ\\, c_{n,t} + \\sum_j r_j P_j + M \\sum_n s_n

    \\text{s.t.}\\quad \\sum_t Δ\\, c_{n,t} + s_n ≥ E_n          \\quad (\\text{departure energy})

    \\sum_n c_{n,t} ≤ L − b_t                                    \\quad (\\text{service limit})

    \\sum_n c_{n,t} − P_j ≤ −b_t \\quad ∀ t ∈ T_j               \\quad (\\text{demand})

    0 ≤ c_{n,t} ≤ \\bar p_n f_{n,t},\\quad 0 ≤ s_n ≤ E_n,\\quad P_j ≥ \\underline P_j

with π the energy price [$/kWh], Δ the step [h], E_n the energy at the charger the session needs
[kWh], L the service limit and b the building load [kW], f the available fraction of a step, and
:math:`\\underline P_j` a floor (month-to-date peak already metered, or a ratchet) [kW].

No per-step SOC variable is needed for V1G: charging only raises SOC, the session's SOC bounds
hold at arrival (validated) and at departure (E_n ≤ (1 − soc_arr)·U/η), so they hold in between.

The shortfall s_n is penalised at M, larger than any saving a kWh not delivered could buy:
M = max π + Σ_j r_j / Δ + 1 (one kWh moved into a single step raises every peak by at most 1/Δ kW),
so targets are met whenever feasible and the rest of the fleet is still planned optimally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import highspy
import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class DemandCharge:
    """One demand determinant: the peak of site import over ``steps`` is billed at ``rate``.

    Attributes
    ----------
    label : str
        For reports, e.g. ``"2025-03 all hours"`` or ``"2025-03 On-Peak"``.
    steps : numpy.ndarray of int
        Horizon steps in which this determinant is measured.
    rate_per_kw : float
        Price of the billed peak [$/kW].
    floor_kw : float
        The determinant is at least this [kW]: month-to-date peak already incurred, a ratchet.
    """

    label: str
    steps: np.ndarray
    rate_per_kw: float
    floor_kw: float = 0.0


@dataclass(frozen=True)
class LPInput:
    """Everything the LP needs, as arrays; built from a Scenario and a tariff elsewhere."""

    availability: sp.csr_array  # (n_sessions × n_steps) available fraction
    max_kw: np.ndarray  # per session cap [kW]
    energy_kwh: np.ndarray  # per session requirement at the charger [kWh]
    step_hours: float
    energy_price_per_kwh: np.ndarray  # per step [$/kWh]
    building_kw: np.ndarray  # per step [kW]
    service_limit_kw: float
    demand_charges: tuple[DemandCharge, ...] = ()


@dataclass(frozen=True)
class LPResult:
    """Solution of the LP, with the solver's own status words."""

    charge_kw: sp.csr_array
    shortfall_kwh: np.ndarray
    peaks_kw: np.ndarray
    status: str
    objective: float  # without the shortfall penalty [$]
    info: dict = field(default_factory=dict)


def shortfall_penalty(lp: LPInput) -> float:
    """Penalty M [$/kWh] that makes meeting targets lexicographically first (module docstring)."""
    max_price = float(lp.energy_price_per_kwh.max()) if lp.energy_price_per_kwh.size else 0.0
    demand = sum(max(dc.rate_per_kw, 0.0) for dc in lp.demand_charges)
    return max(max_price, 0.0) + demand / lp.step_hours + 1.0


def solve_v1g(lp: LPInput, *, time_limit_s: float | None = None) -> LPResult:
    """Build the sparse LP and solve it with HiGHS (dual simplex by default)."""
    t0 = perf_counter()
    avail = lp.availability.tocsr()
    avail.sort_indices()
    n_sessions, n_steps = avail.shape
    nnz = avail.nnz
    dt = lp.step_hours
    n_dc = len(lp.demand_charges)
    row_of = np.repeat(np.arange(n_sessions), np.diff(avail.indptr))
    step_of = avail.indices
    penalty = shortfall_penalty(lp)

    # Columns: [c (nnz) | s (n_sessions) | P (n_dc)]
    n_col = nnz + n_sessions + n_dc
    cost = np.concatenate([
        lp.energy_price_per_kwh[step_of] * dt,
        np.full(n_sessions, penalty),
        np.array([dc.rate_per_kw for dc in lp.demand_charges], dtype=float),
    ])
    col_lo = np.concatenate([
        np.zeros(nnz + n_sessions),
        np.array([dc.floor_kw for dc in lp.demand_charges], dtype=float),
    ])
    col_hi = np.concatenate([
        lp.max_kw[row_of] * avail.data,
        lp.energy_kwh,
        np.full(n_dc, np.inf),
    ])

    c_cols = np.arange(nnz)
    # Energy rows: Σ_t Δ c + s ≥ E
    energy = sp.csr_array(
        (np.concatenate([np.full(nnz, dt), np.ones(n_sessions)]),
         (np.concatenate([row_of, np.arange(n_sessions)]),
          np.concatenate([c_cols, nnz + np.arange(n_sessions)]))),
        shape=(n_sessions, n_col),
    )
    blocks = [energy]
    lo = [lp.energy_kwh]
    hi = [np.full(n_sessions, np.inf)]

    # Site limit rows only where the limit could bind.
    step_cap = np.bincount(step_of, weights=col_hi[:nnz], minlength=n_steps)
    headroom = lp.service_limit_kw - lp.building_kw
    binding = np.flatnonzero(step_cap > headroom + 1e-9)
    if binding.size:
        sel = np.isin(step_of, binding)
        pos = np.searchsorted(binding, step_of[sel])
        blocks.append(sp.csr_array((np.ones(int(sel.sum())), (pos, c_cols[sel])),
                                   shape=(binding.size, n_col)))
        lo.append(np.full(binding.size, -np.inf))
        hi.append(np.maximum(headroom[binding], 0.0))

    # Demand rows: Σ_n c[n,t] − P_j ≤ −b_t for t in T_j (steps with any charging possible; at
    # other steps the building alone sets the floor).
    has_charge = step_cap > 0
    for j, dc in enumerate(lp.demand_charges):
        steps = np.asarray(dc.steps, dtype=np.int64)
        floor = max(dc.floor_kw, float(lp.building_kw[steps].max()) if steps.size else 0.0)
        col_lo[nnz + n_sessions + j] = floor
        steps = steps[has_charge[steps]]
        if not steps.size:
            continue
        mark = np.full(n_steps, -1)
        mark[steps] = np.arange(steps.size)
        sel = mark[step_of] >= 0
        rows = np.concatenate([mark[step_of[sel]], np.arange(steps.size)])
        cols = np.concatenate([c_cols[sel], np.full(steps.size, nnz + n_sessions + j)])
        vals = np.concatenate([np.ones(int(sel.sum())), -np.ones(steps.size)])
        blocks.append(sp.csr_array((vals, (rows, cols)), shape=(steps.size, n_col)))
        lo.append(np.full(steps.size, -np.inf))
        hi.append(-lp.building_kw[steps])

    a = sp.vstack(blocks, format="csc")
    row_lo, row_hi = np.concatenate(lo), np.concatenate(hi)
    t_build = perf_counter() - t0

    model = highspy.HighsLp()
    model.num_col_ = n_col
    model.num_row_ = a.shape[0]
    model.col_cost_ = cost
    model.col_lower_ = col_lo
    model.col_upper_ = col_hi
    model.row_lower_ = row_lo
    model.row_upper_ = row_hi
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = a.indptr
    model.a_matrix_.index_ = a.indices
    model.a_matrix_.value_ = a.data
    model.a_matrix_.num_col_ = n_col
    model.a_matrix_.num_row_ = a.shape[0]
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    if time_limit_s is not None:
        highs.setOptionValue("time_limit", float(time_limit_s))
    highs.passModel(model)
    t1 = perf_counter()
    highs.run()
    t_solve = perf_counter() - t1
    status = highs.modelStatusToString(highs.getModelStatus())
    x = np.asarray(highs.getSolution().col_value)
    if x.size != n_col:
        raise RuntimeError(f"HiGHS returned no solution (status: {status})")
    c = np.clip(x[:nnz], 0.0, None)
    s = x[nnz:nnz + n_sessions]
    peaks = x[nnz + n_sessions:]
    objective = float(cost[:nnz] @ c + cost[nnz + n_sessions:] @ peaks)
    charge = sp.csr_array((c, avail.indices.copy(), avail.indptr.copy()), shape=avail.shape)
    return LPResult(
        charge_kw=charge,
        shortfall_kwh=np.clip(s, 0.0, None),
        peaks_kw=peaks,
        status=status,
        objective=objective,
        info={
            "columns": n_col,
            "rows": int(a.shape[0]),
            "nonzeros": int(a.nnz),
            "build_s": t_build,
            "solve_s": t_solve,
            "penalty_per_kwh": penalty,
            "simplex_iterations": int(highs.getInfo().simplex_iteration_count),
        },
    )
