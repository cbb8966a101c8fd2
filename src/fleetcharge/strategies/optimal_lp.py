"""The V1G charging LP (DESIGN.md §4), built as sparse matrices and solved by HiGHS in one call.

Formulation (charging only). Sessions n, steps t where n is plugged in (the availability pattern;
absent steps have no variable), demand windows w (a window averages one or more steps: the
tariff's demand interval), demand determinants j (a set of windows W_j):

.. math::

    \\min\\; \\sum_{n,t} π_t Δ\\, c_{n,t} + \\sum_j \\mathrm{cost}_j(B_j) + M \\sum_n s_n

    \\text{s.t.}\\quad \\sum_t Δ\\, c_{n,t} + s_n ≥ E_n          \\quad (\\text{departure energy})

    \\sum_n c_{n,t} ≤ L − b_t                                    \\quad (\\text{service limit})

    \\sum_t a_{w,t} \\sum_n c_{n,t} − P_j ≤ −\\sum_t a_{w,t} b_t \\quad ∀ w ∈ W_j
    \\quad (\\text{metered peak})

    B_j ≥ P_j,\\quad B_j ≥ φ_{jk} P_k,\\quad B_j ≥ \\underline B_j
    \\quad (\\text{billing demand: ratchets})

    0 ≤ c_{n,t} ≤ \\bar p_n f_{n,t},\\quad 0 ≤ s_n ≤ E_n,\\quad P_j ≥ \\underline P_j

with π the energy price [$/kWh], Δ the step [h], E_n the energy at the charger the session needs
[kWh], L the service limit and b the building load [kW], f the available fraction of a step,
a_{w,t} the averaging weights of window w, :math:`\\underline P_j` the peak already metered this
billing period [kW], φ a ratchet fraction and :math:`\\underline B_j` a ratchet floor from
history [kW]. ``cost_j`` is linear (one rate), convex piecewise linear (tiers with
non-decreasing rates, epigraph rows z ≥ r_k B + b_k) or a subscription
(price · blocks + overage · max(B − block_kw · blocks, 0), blocks integer: a small MILP, one
integer per billing period, only when the subscription level is not fixed).

No per-step SOC variable is needed for V1G: charging only raises SOC, the session's SOC bounds
hold at arrival (validated) and at departure (E_n ≤ (1 − soc_arr)·U/η), so they hold in between.

The shortfall s_n is penalised at M, larger than any saving a kWh not delivered could buy:
M = max π + Σ_j max rate_j / Δ + 1 (one kWh moved into a single step raises every peak by at
most 1/Δ kW), so targets are met whenever feasible and the rest of the fleet is still planned
optimally.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from time import perf_counter

import highspy
import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Subscription:
    """Subscription demand pricing of one billing period (PG&E BEV style).

    ``price_per_block`` is already pro-rated for a partial billing period [$/block];
    ``blocks`` fixes the subscription level, ``None`` lets the optimiser choose it.
    """

    block_kw: float
    price_per_block: float
    overage_per_kw: float
    blocks: int | None = None


@dataclass(frozen=True)
class DemandCharge:
    """One demand determinant and how its billing demand is priced.

    Attributes
    ----------
    label : str
        For reports, e.g. ``"2025-03 all hours"`` or ``"2025-03 On-Peak"``.
    windows : numpy.ndarray of int
        Rows of ``LPInput.window_matrix`` (demand windows) in which the peak is measured.
    rate_per_kw : float
        Price of the billing demand [$/kW] (ignored when ``tiers`` is given).
    tiers : tuple of (limit_kw, rate_per_kw)
        Cumulative tier limits (last ``inf``) and their prices, rates non-decreasing [kW, $/kW].
    floor_kw : float
        Peak already metered in this billing period (month-to-date) [kW].
    billed_floor_kw : float
        Billing demand is at least this (a ratchet on peaks before the horizon) [kW].
    ratchet_from : tuple of (index, fraction)
        Billing demand ≥ fraction × metered peak of determinant ``index`` (earlier periods
        inside the horizon).
    subscription : Subscription, optional
        Subscription pricing instead of ``rate_per_kw``/``tiers``.
    """

    label: str
    windows: np.ndarray
    rate_per_kw: float = 0.0
    tiers: tuple[tuple[float, float], ...] = ()
    floor_kw: float = 0.0
    billed_floor_kw: float = 0.0
    ratchet_from: tuple[tuple[int, float], ...] = ()
    subscription: Subscription | None = None

    def max_rate_per_kw(self) -> float:
        """Steepest price of one more kW of billing demand [$/kW]."""
        rates = [self.rate_per_kw] + [r for _, r in self.tiers]
        if self.subscription is not None:
            s = self.subscription
            rates += [s.overage_per_kw, s.price_per_block / s.block_kw]
        return max(max(rates), 0.0)


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
    window_matrix: sp.csr_array | None = None  # (n_windows × n_steps) averaging; None = identity
    headroom_kwh: np.ndarray | None = None  # per session, most energy the battery can take [kWh]


@dataclass(frozen=True)
class LPResult:
    """Solution of the LP, with the solver's own status words."""

    charge_kw: sp.csr_array
    shortfall_kwh: np.ndarray
    peaks_kw: np.ndarray  # metered peak of each demand determinant
    billed_kw: np.ndarray  # billing demand of each determinant
    status: str
    objective: float  # energy (building included) + demand cost, no shortfall penalty [$]
    info: dict = field(default_factory=dict)


def shortfall_penalty(lp: LPInput) -> float:
    """Penalty M [$/kWh] that makes meeting targets lexicographically first (module docstring)."""
    max_price = float(lp.energy_price_per_kwh.max()) if lp.energy_price_per_kwh.size else 0.0
    demand = sum(dc.max_rate_per_kw() for dc in lp.demand_charges)
    return max(max_price, 0.0) + demand / lp.step_hours + 1.0


_BANNER_SILENCED = False


def new_highs() -> highspy.Highs:
    """A silent HiGHS instance.

    HiGHS prints a copyright banner to the C-level stdout the first time one is constructed in
    a process; that would corrupt ``--json`` output, so the first construction runs with file
    descriptor 1 pointed at /dev/null.
    """
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        highs = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _BANNER_SILENCED = True
    highs.setOptionValue("output_flag", False)
    return highs


class _Model:
    """Columns and row triplets of a sparse LP, appended block by block."""

    def __init__(self) -> None:
        self.cost: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.n_col = 0
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.row_lo: list[np.ndarray] = []
        self.row_hi: list[np.ndarray] = []
        self.n_row = 0

    def add_cols(self, cost, lo, hi, integer: bool = False) -> np.ndarray:
        cost = np.atleast_1d(np.asarray(cost, dtype=float))
        k = cost.size
        self.cost.append(cost)
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), k).copy())
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), k).copy())
        self.integer.append(np.full(k, integer))
        idx = np.arange(self.n_col, self.n_col + k)
        self.n_col += k
        return idx

    def add_rows(self, rows, cols, vals, lo, hi) -> None:
        """Rows numbered from 0 within this block; ``lo``/``hi`` one per row."""
        lo = np.atleast_1d(np.asarray(lo, dtype=float))
        self.rows.append(np.asarray(rows, dtype=np.int64) + self.n_row)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.asarray(vals, dtype=float))
        self.row_lo.append(lo)
        self.row_hi.append(np.broadcast_to(np.asarray(hi, dtype=float), lo.size).copy())
        self.n_row += lo.size

    def matrix(self) -> sp.csc_array:
        return sp.csc_array(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.n_row, self.n_col),
        )


def solve_v1g(lp: LPInput, *, time_limit_s: float | None = None) -> LPResult:
    """Build the sparse LP (MILP with a free subscription level) and solve it with HiGHS."""
    t0 = perf_counter()
    full = lp.availability.tocsr()
    full.sort_indices()
    # With no negative price, a session that needs nothing is best left idle (every cost term
    # is non-decreasing in load): it gets no columns at all.
    nonneg = lp.energy_price_per_kwh.size == 0 or lp.energy_price_per_kwh.min() >= 0
    active = np.flatnonzero(lp.energy_kwh > 0) if nonneg else np.arange(full.shape[0])
    avail = full[active]
    energy_kwh = lp.energy_kwh[active]
    headroom_kwh = (np.full(active.size, np.inf) if lp.headroom_kwh is None
                    else np.maximum(lp.headroom_kwh[active], energy_kwh))
    n_sessions, n_steps = avail.shape
    nnz = avail.nnz
    dt = lp.step_hours
    row_of = np.repeat(np.arange(n_sessions), np.diff(avail.indptr))
    step_of = avail.indices
    penalty = shortfall_penalty(lp)
    m = _Model()

    cap = lp.max_kw[active][row_of] * avail.data
    c = m.add_cols(lp.energy_price_per_kwh[step_of] * dt, 0.0, cap)
    s = m.add_cols(np.full(n_sessions, penalty), 0.0, energy_kwh)

    # Departure energy: E ≤ Σ_t Δ c + s ≤ battery headroom
    m.add_rows(np.concatenate([row_of, np.arange(n_sessions)]), np.concatenate([c, s]),
               np.concatenate([np.full(nnz, dt), np.ones(n_sessions)]),
               energy_kwh, headroom_kwh)

    # Service limit, only at steps where it could bind.
    step_cap = np.bincount(step_of, weights=cap, minlength=n_steps)
    headroom = lp.service_limit_kw - lp.building_kw
    binding = np.flatnonzero(step_cap > headroom + 1e-9)
    if binding.size:
        sel = np.flatnonzero(np.isin(step_of, binding))
        m.add_rows(np.searchsorted(binding, step_of[sel]), c[sel], np.ones(sel.size),
                   np.full(binding.size, -np.inf), np.maximum(headroom[binding], 0.0))

    # Demand windows: window load = W @ (building + Σ_n c).
    window = lp.window_matrix if lp.window_matrix is not None else sp.identity(
        n_steps, format="csr")
    window = sp.csr_array(window)
    window_building = window @ lp.building_kw
    window_can_charge = (window @ (step_cap > 0).astype(float)) > 0
    aggregate = sp.csr_array((np.ones(nnz), (step_of, c)), shape=(n_steps, m.n_col))

    n_dc = len(lp.demand_charges)
    peak_cols = np.empty(n_dc, dtype=np.int64)
    billed_cols = np.empty(n_dc, dtype=np.int64)
    integer_used = False
    # A determinant whose windows contain another's (all hours ⊇ on-peak, same cycle) needs no
    # rows on those windows: P_j ≥ P_k implies them. Exact, and ~15–30 % fewer rows.
    windows_of = [np.unique(np.asarray(dc.windows, dtype=np.int64)) for dc in lp.demand_charges]
    covered_by: list[list[int]] = [[] for _ in windows_of]
    for j, wj in enumerate(windows_of):
        for k, wk in enumerate(windows_of):
            inside = k != j and wk.size and wk.size <= wj.size and np.isin(wk, wj).all()
            if inside and not (wk.size == wj.size and k > j):
                covered_by[j].append(k)
    for j, dc in enumerate(lp.demand_charges):
        w = windows_of[j]
        floor = max(dc.floor_kw, float(window_building[w].max()) if w.size else 0.0)
        peak_cols[j] = m.add_cols([0.0], floor, np.inf)[0]
    for j, w in enumerate(windows_of):
        p = peak_cols[j]
        for k in covered_by[j]:  # P_j − P_k ≥ 0
            m.add_rows([0, 0], [p, peak_cols[k]], [1.0, -1.0], [0.0], np.inf)
        if covered_by[j]:
            w = w[~np.isin(w, np.concatenate([windows_of[k] for k in covered_by[j]]))]
        w = w[window_can_charge[w]]
        if w.size:
            block = (window[w] @ aggregate).tocoo()
            m.add_rows(np.concatenate([block.row, np.arange(w.size)]),
                       np.concatenate([block.col, np.full(w.size, p)]),
                       np.concatenate([block.data, -np.ones(w.size)]),
                       np.full(w.size, -np.inf), -window_building[w])
    for j, dc in enumerate(lp.demand_charges):
        linear = dc.rate_per_kw if not dc.tiers and dc.subscription is None else 0.0
        b = m.add_cols([linear], max(dc.billed_floor_kw, 0.0), np.inf)[0]
        billed_cols[j] = b
        sources = [(peak_cols[j], 1.0)] + [(peak_cols[k], f) for k, f in dc.ratchet_from]
        for src, frac in sources:  # B_j − φ P_k ≥ 0
            m.add_rows([0, 0], [b, src], [1.0, -frac], [0.0], np.inf)
        if dc.tiers:  # z ≥ r_k B + (C(L_{k−1}) − r_k L_{k−1})
            z = m.add_cols([1.0], -np.inf, np.inf)[0]
            lower, acc = 0.0, 0.0
            for limit, rate in dc.tiers:
                m.add_rows([0, 0], [z, b], [1.0, -rate], [acc - rate * lower], np.inf)
                if np.isfinite(limit):
                    acc += rate * (limit - lower)
                    lower = limit
        if dc.subscription is not None:
            sub = dc.subscription
            fixed = sub.blocks is not None
            nb = m.add_cols([sub.price_per_block], sub.blocks if fixed else 0.0,
                            sub.blocks if fixed else np.inf, integer=not fixed)[0]
            integer_used |= not fixed
            over = m.add_cols([sub.overage_per_kw], 0.0, np.inf)[0]
            m.add_rows([0, 0, 0], [over, b, nb], [1.0, -1.0, sub.block_kw], [0.0], np.inf)

    a = m.matrix()
    cost = np.concatenate(m.cost)
    t_build = perf_counter() - t0

    model = highspy.HighsLp()
    model.num_col_ = m.n_col
    model.num_row_ = m.n_row
    model.col_cost_ = cost
    model.col_lower_ = np.concatenate(m.lo)
    model.col_upper_ = np.concatenate(m.hi)
    model.row_lower_ = np.concatenate(m.row_lo)
    model.row_upper_ = np.concatenate(m.row_hi)
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = a.indptr
    model.a_matrix_.index_ = a.indices
    model.a_matrix_.value_ = a.data
    model.a_matrix_.num_col_ = m.n_col
    model.a_matrix_.num_row_ = m.n_row
    if integer_used:
        model.integrality_ = [
            highspy.HighsVarType.kInteger if f else highspy.HighsVarType.kContinuous
            for f in np.concatenate(m.integer)
        ]
    highs = new_highs()
    if integer_used:
        highs.setOptionValue("mip_rel_gap", 1e-9)
    if time_limit_s is not None:
        highs.setOptionValue("time_limit", float(time_limit_s))
    highs.passModel(model)
    t1 = perf_counter()
    highs.run()
    t_solve = perf_counter() - t1
    status = highs.modelStatusToString(highs.getModelStatus())
    x = np.asarray(highs.getSolution().col_value)
    if x.size != m.n_col:
        raise RuntimeError(f"HiGHS returned no solution (status: {status})")
    info = highs.getInfo()
    not_penalty = np.ones(m.n_col, dtype=bool)
    not_penalty[s] = False
    building_energy_cost = float(lp.energy_price_per_kwh @ lp.building_kw) * dt
    objective = float(cost[not_penalty] @ x[not_penalty]) + building_energy_cost
    # Back onto the full availability pattern (idle sessions keep their entries, at 0 kW).
    entry_of_active = np.repeat(full.indptr[:-1][active] - avail.indptr[:-1],
                                np.diff(avail.indptr)) + np.arange(nnz)
    data = np.zeros(full.nnz)
    data[entry_of_active] = np.clip(x[c], 0.0, cap)
    charge = sp.csr_array((data, full.indices.copy(), full.indptr.copy()), shape=full.shape)
    shortfall = np.zeros(full.shape[0])
    shortfall[active] = np.clip(x[s], 0.0, None)
    return LPResult(
        charge_kw=charge,
        shortfall_kwh=shortfall,
        peaks_kw=x[peak_cols],
        billed_kw=x[billed_cols],
        status=status,
        objective=objective,
        info={
            "columns": m.n_col,
            "rows": m.n_row,
            "nonzeros": int(a.nnz),
            "integer_columns": int(np.concatenate(m.integer).sum()),
            "build_s": t_build,
            "solve_s": t_solve,
            "penalty_per_kwh": penalty,
            "simplex_iterations": int(info.simplex_iteration_count),
            "mip_gap": float(info.mip_gap) if integer_used else 0.0,
        },
    )
