"""The V1G charging LP (DESIGN.md §4), built as sparse matrices and solved by HiGHS in one call.

Formulation (charging only). Sessions n, steps t where n is plugged in (the availability pattern;
absent steps have no variable), demand windows w (a window averages one or more steps: the
tariff's demand interval), demand determinants j (a set of windows W_j):

.. math::

    \\min\\; \\sum_{n,t} π_t Δ\\, c_{n,t} + \\sum_j \\mathrm{cost}_j(B_j) + M \\sum_n s_n

    \\text{s.t.}\\quad \\sum_t Δ\\, c_{n,t} + s_n ≥ E_n          \\quad (\\text{departure energy})

    \\sum_n c_{n,t} ≤ L_t − b_t                                  \\quad (\\text{service limit})

    \\sum_t a_{w,t} \\sum_n c_{n,t} − P_j ≤ −\\sum_t a_{w,t} b_t \\quad ∀ w ∈ W_j
    \\quad (\\text{metered peak})

    B_j ≥ P_j,\\quad B_j ≥ φ_{jk} P_k,\\quad B_j ≥ \\underline B_j
    \\quad (\\text{billing demand: ratchets})

    0 ≤ c_{n,t} ≤ \\bar p_n f_{n,t},\\quad 0 ≤ s_n ≤ E_n,\\quad P_j ≥ \\underline P_j

with π the energy price [$/kWh], Δ the step [h], E_n the energy at the charger the session needs
[kWh], L the site's import limit (the service limit, lowered in demand-response events; one
value or one per step) and b the building load [kW], f the available fraction of a step,
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
    service_limit_kw: float | np.ndarray  # site import limit [kW]: one value, or one per step
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


#: LPs with more columns than this are solved by interior point without crossover; smaller ones
#: by dual simplex, which returns a vertex exact to machine precision and is faster there.
IPM_MIN_COLUMNS = 50_000

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


def event_blocks(avail: sp.csr_array, price: np.ndarray, membership: np.ndarray,
                 split: np.ndarray | None = None) -> np.ndarray:
    """Split the horizon into event blocks: runs of steps in which nothing changes.

    A block ends wherever a session arrives or leaves (a partially available first or last step
    is a block of its own), the energy price changes, or the set of demand determinants a step
    counts towards changes (TOU period, billing cycle). Inside a block every plugged-in session
    has the same power cap in every step and every step costs the same, so only each session's
    block energy matters to the LP; the per-step site load stays a variable (building load may
    vary within a block).

    Parameters
    ----------
    avail : scipy.sparse.csr_array
        (n_sessions × n_steps) available fraction, sorted indices.
    price : numpy.ndarray
        Energy price of each step [$/kWh].
    membership : numpy.ndarray of bool
        (n_determinants × n_steps): does step t count towards determinant j.
    split : numpy.ndarray of bool, optional
        Steps that must be blocks of their own (refinement, see :func:`solve_v1g`).

    Returns
    -------
    numpy.ndarray of int
        Block number of each step (0-based, non-decreasing).
    """
    n_steps = avail.shape[1]
    lengths = np.diff(avail.indptr)
    has = lengths > 0
    first = avail.indices[avail.indptr[:-1][has]]
    last = avail.indices[avail.indptr[1:][has] - 1]
    first_frac = avail.data[avail.indptr[:-1][has]]
    last_frac = avail.data[avail.indptr[1:][has] - 1]
    cut = np.zeros(n_steps + 1, dtype=bool)
    cut[0] = True
    cut[first] = True
    cut[last + 1] = True
    cut[(first + 1)[first_frac < 1.0]] = True
    cut[last[last_frac < 1.0]] = True
    cut[1:n_steps] |= price[1:] != price[:-1]
    if membership.size:
        cut[1:n_steps] |= (membership[:, 1:] != membership[:, :-1]).any(axis=0)
    if split is not None:
        cut[:n_steps] |= split
        cut[1:n_steps + 1] |= split
    return np.cumsum(cut[:n_steps]) - 1


def solve_v1g(lp: LPInput, *, time_limit_s: float | None = None) -> LPResult:
    """Build the event-block LP (MILP with a free subscription level), solve it with HiGHS and
    disaggregate it into per-step, per-session power.

    The columns are each session's energy per event block (:func:`event_blocks`) and the site's
    charging load per step, linked per block by Σ_t y_t Δ = Σ_n e_{n,B}: far fewer columns than
    one per session and step. This is a relaxation of the per-step model (module docstring). The
    plan splits each block's energy in proportion to the block's load profile,
    c_{n,t} = e_{n,B} · y_t / Σ_{t∈B} y_t Δ, which reproduces y exactly; where that would exceed
    a session's cap, a small transportation LP splits the block exactly. Where even that is
    infeasible (the relaxation was not tight in that block), those steps become blocks of their
    own and the LP is solved again (``info["refinement_rounds"]``). The result is a feasible
    point of the per-step LP with the relaxation's objective, hence optimal for it.
    LPs are solved by interior point without crossover (an optimum, not necessarily a vertex:
    smoother profiles, and it scales to a thousand vehicles), MILPs by branch and bound.
    """
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
    cap = lp.max_kw[active][row_of] * avail.data  # per entry, interval-average [kW]
    penalty = shortfall_penalty(lp)

    window = sp.csr_array(lp.window_matrix if lp.window_matrix is not None
                          else sp.identity(n_steps, format="csr"))
    window_of_step = window.tocsc().indices
    window_building = window @ lp.building_kw
    membership = np.zeros((len(lp.demand_charges), n_steps), dtype=bool)
    for j, dc in enumerate(lp.demand_charges):
        member = np.zeros(window.shape[0], dtype=bool)
        member[np.asarray(dc.windows, dtype=np.int64)] = True
        membership[j] = member[window_of_step]
    # Solve the event-block LP; where a block's energy cannot be split exactly into per-step
    # power, make those steps blocks of their own and solve again. Single-step blocks always
    # split, so this ends, and the final plan is optimal for the per-step LP.
    split = np.zeros(n_steps, dtype=bool)
    rounds = 0
    t_build = t_solve = 0.0
    while True:
        rounds += 1
        block_of = event_blocks(avail, lp.energy_price_per_kwh, membership, split)
        n_blocks = int(block_of[-1]) + 1 if n_steps else 0
        first_step_of_block = np.flatnonzero(np.r_[True, block_of[1:] != block_of[:-1]])

        # Session-block entries: e_{n,B} [kWh].
        key = row_of * n_blocks + block_of[step_of]
        keys, entry_block = np.unique(key, return_inverse=True)
        e_session, e_block = keys // n_blocks, keys % n_blocks
        e_cap_kwh = np.bincount(entry_block, weights=cap, minlength=keys.size) * dt
        m = _Model()
        e = m.add_cols(lp.energy_price_per_kwh[first_step_of_block[e_block]], 0.0, e_cap_kwh)
        s = m.add_cols(np.full(n_sessions, penalty), 0.0, energy_kwh)
        # Departure energy: E ≤ Σ_B e + s ≤ battery headroom
        m.add_rows(np.concatenate([e_session, np.arange(n_sessions)]), np.concatenate([e, s]),
                   np.ones(e.size + s.size), energy_kwh, headroom_kwh)

        # Site charging load y_t (kW) where anyone can charge: ≤ Σ caps and ≤ the service limit.
        step_cap = np.bincount(step_of, weights=cap, minlength=n_steps)
        charging_steps = np.flatnonzero(step_cap > 0)
        limit_kw = np.broadcast_to(np.asarray(lp.service_limit_kw, dtype=float), n_steps)
        room = np.maximum(limit_kw[charging_steps] - lp.building_kw[charging_steps], 0.0)
        y = m.add_cols(np.zeros(charging_steps.size), 0.0,
                       np.minimum(step_cap[charging_steps], room))
        y_col = np.full(n_steps, -1)
        y_col[charging_steps] = y
        # Block link: Σ_{t∈B} y_t Δ − Σ_n e_{n,B} = 0
        used_blocks, link_row = np.unique(block_of[charging_steps], return_inverse=True)
        link_rows = m.n_row + np.arange(used_blocks.size)
        m.add_rows(np.concatenate([link_row, np.searchsorted(used_blocks, e_block)]),
                   np.concatenate([y, e]), np.concatenate([np.full(y.size, dt), -np.ones(e.size)]),
                   np.zeros(used_blocks.size), 0.0)

        # Demand windows: window load = W @ (building + y).
        window_can_charge = (window @ (step_cap > 0).astype(float)) > 0
        aggregate = sp.csr_array((np.ones(y.size), (charging_steps, y)), shape=(n_steps, m.n_col))
        peak_cols, billed_cols, windows_of, integer_used = add_demand_terms(
            m, lp.demand_charges, window, aggregate, window_building, window_can_charge)

        a = m.matrix()
        cost = np.concatenate(m.cost)
        t_build += perf_counter() - t0
        t0 = perf_counter()

        highs = highs_for_model(m, a, cost, integer_used, time_limit_s)
        status, x, seconds = run_highs(highs, m.n_col)
        t_solve += seconds
        info = highs.getInfo()
        not_penalty = np.ones(m.n_col, dtype=bool)
        not_penalty[s] = False
        building_energy_cost = float(lp.energy_price_per_kwh @ lp.building_kw) * dt
        objective = float(cost[not_penalty] @ x[not_penalty]) + building_energy_cost

        t2 = perf_counter()
        # Per-step load the solution's peaks and the service limit allow (when every step is
        # its own demand window): a block may be re-shaped under it at no cost, as its price
        # is constant.
        y_max = None
        if window.shape[0] == n_steps:  # every step is its own demand window
            y_max = np.minimum(np.maximum(lp.service_limit_kw - lp.building_kw, 0.0), step_cap)
            for j, w in enumerate(windows_of):
                y_max[w] = np.minimum(y_max[w], x[peak_cols[j]] - lp.building_kw[w])
            y_max = np.maximum(y_max, 0.0)
        y_step = np.zeros(n_steps)  # 0 where no session is plugged in (none at all: no columns)
        y_step[y_col >= 0] = x[y_col[y_col >= 0]]
        if y_max is not None:
            y_step = flatten_blocks(y_step, block_of, lp.building_kw, y_max)
        power, failed = _disaggregate(np.clip(x[e], 0.0, e_cap_kwh), entry_block, block_of,
                                      step_of, cap, y_step, dt, y_max)
        t_split = perf_counter() - t2
        if not failed.size:
            break
        split |= np.isin(block_of, failed)

    # Back onto the full availability pattern (idle sessions keep their entries, at 0 kW).
    entry_of_active = np.repeat(full.indptr[:-1][active] - avail.indptr[:-1],
                                np.diff(avail.indptr)) + np.arange(nnz)
    data = np.zeros(full.nnz)
    data[entry_of_active] = power
    charge = sp.csr_array((data, full.indices.copy(), full.indptr.copy()), shape=full.shape)
    shortfall = np.zeros(full.shape[0])
    shortfall[active] = np.clip(x[s], 0.0, None)
    duals = {}
    if status == "Optimal" and not integer_used:
        solution = highs.getSolution()
        row_dual, col_dual = np.asarray(solution.row_dual), np.asarray(solution.col_dual)
        energy_dual = np.zeros(full.shape[0])
        energy_dual[active] = row_dual[:n_sessions]  # the energy rows come first
        # Value of one kW less load at step t over a step (V2G's site-balance dual): energy
        # π_t Δ plus what the demand rows charge y_t, a_yᵀλ − Δ λ_link = −rc_y − Δ λ_link.
        step_dual = lp.energy_price_per_kwh * dt
        step_dual[charging_steps] += (col_dual[y] + dt * row_dual[link_rows][link_row])
        duals = {"energy_dual": energy_dual, "step_dual": step_dual}
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
            "steps": n_steps,
            "event_blocks": n_blocks,
            "session_steps": nnz,
            "integer_columns": int(np.concatenate(m.integer).sum()),
            "build_s": t_build,
            "solve_s": t_solve,
            "disaggregate_s": t_split,
            "refinement_rounds": rounds,
            "refined_steps": int(split.sum()),
            "penalty_per_kwh": penalty,
            "mip_gap": float(info.mip_gap) if integer_used else 0.0,
            **duals,
        },
    )


def add_demand_terms(m: _Model, charges: tuple[DemandCharge, ...], window: sp.csr_array,
                     aggregate: sp.csr_array, window_offset_kw: np.ndarray,
                     window_active: np.ndarray) -> tuple[np.ndarray, np.ndarray, list, bool]:
    """Add the demand determinants to model ``m``: metered peaks, billing demand, prices.

    The metered load of window w is ``window[w] @ aggregate @ x + window_offset_kw[w]``
    (``aggregate`` maps columns to per-step kW, the offset is the fixed load, e.g. the
    building). Rows are written only for windows where the variable part can be non-zero
    (``window_active``); a determinant nested in another (on-peak inside all hours) lends its
    peak instead of repeating rows: P_j ≥ P_k.

    Returns
    -------
    peak_cols, billed_cols, windows_of, integer_used
        Column of each metered peak and billing demand, each determinant's windows, and whether
        an integer column (a free subscription level) was added.
    """
    n_dc = len(charges)
    peak_cols = np.empty(n_dc, dtype=np.int64)
    billed_cols = np.empty(n_dc, dtype=np.int64)
    integer_used = False
    # A determinant whose windows contain another's (all hours ⊇ on-peak, same cycle) needs no
    # rows on those windows: P_j ≥ P_k implies them. Exact, and ~15–30 % fewer rows — when P_k's
    # metered floor is no higher than P_j's (true of month-to-date peaks, since j's windows
    # hold k's; not of a floorless determinant over floored ones, e.g. peak smoothing).
    windows_of = [np.unique(np.asarray(dc.windows, dtype=np.int64)) for dc in charges]
    covered_by: list[list[int]] = [[] for _ in windows_of]
    for j, wj in enumerate(windows_of):
        for k, wk in enumerate(windows_of):
            inside = (k != j and wk.size and wk.size <= wj.size and np.isin(wk, wj).all()
                      and charges[k].floor_kw <= charges[j].floor_kw)
            if inside and not (wk.size == wj.size and k > j):
                covered_by[j].append(k)
    for j, dc in enumerate(charges):
        w = windows_of[j]
        floor = max(dc.floor_kw, float(window_offset_kw[w].max()) if w.size else 0.0)
        peak_cols[j] = m.add_cols([0.0], floor, np.inf)[0]
    for j, w in enumerate(windows_of):
        p = peak_cols[j]
        for k in covered_by[j]:  # P_j − P_k ≥ 0
            m.add_rows([0, 0], [p, peak_cols[k]], [1.0, -1.0], [0.0], np.inf)
        if covered_by[j]:
            w = w[~np.isin(w, np.concatenate([windows_of[k] for k in covered_by[j]]))]
        w = w[window_active[w]]
        if w.size:
            block = (window[w] @ aggregate).tocoo()
            m.add_rows(np.concatenate([block.row, np.arange(w.size)]),
                       np.concatenate([block.col, np.full(w.size, p)]),
                       np.concatenate([block.data, -np.ones(w.size)]),
                       np.full(w.size, -np.inf), -window_offset_kw[w])
    for j, dc in enumerate(charges):
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
            if not fixed:  # as billed: the smallest number of blocks that covers the peak
                m.add_rows([0, 0], [nb, b], [sub.block_kw, -1.0], [0.0], np.inf)
    return peak_cols, billed_cols, windows_of, integer_used


def highs_with(a: sp.csc_array, cost: np.ndarray, col_lower: np.ndarray, col_upper: np.ndarray,
               row_lower: np.ndarray, row_upper: np.ndarray,
               integer: np.ndarray | None = None) -> highspy.Highs:
    """A silent HiGHS instance holding ``min cost·x, row_lower ≤ A x ≤ row_upper, bounds``."""
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = a.shape[1], a.shape[0]
    model.col_cost_ = cost
    model.col_lower_, model.col_upper_ = col_lower, col_upper
    model.row_lower_, model.row_upper_ = row_lower, row_upper
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_, model.a_matrix_.index_, model.a_matrix_.value_ = (
        a.indptr, a.indices, a.data)
    model.a_matrix_.num_col_, model.a_matrix_.num_row_ = a.shape[1], a.shape[0]
    if integer is not None and integer.any():
        model.integrality_ = [highspy.HighsVarType.kInteger if f
                              else highspy.HighsVarType.kContinuous for f in integer]
    highs = new_highs()
    highs.passModel(model)
    return highs


def run_highs(highs: highspy.Highs, n_col: int) -> tuple[str, np.ndarray, float]:
    """Solve; return HiGHS's status words, the column values and the solve time [s]."""
    t0 = perf_counter()
    highs.run()
    seconds = perf_counter() - t0
    status = highs.modelStatusToString(highs.getModelStatus())
    if status == "Empty":  # no columns (no session, no demand charge): trivially optimal
        status = "Optimal"
    x = np.asarray(highs.getSolution().col_value)
    if x.size != n_col:
        raise RuntimeError(f"HiGHS returned no solution (status: {status})")
    return status, x, seconds


def highs_for_model(m: _Model, a: sp.csc_array, cost: np.ndarray, integer_used: bool,
                    time_limit_s: float | None,
                    ipm_min_columns: int | None = None) -> highspy.Highs:
    """HiGHS with the model and the solver choice: MILP gap 1e-9, or interior point without
    crossover above ``ipm_min_columns`` (default :data:`IPM_MIN_COLUMNS`), else dual simplex."""
    highs = highs_with(a, cost, np.concatenate(m.lo), np.concatenate(m.hi),
                       np.concatenate(m.row_lo), np.concatenate(m.row_hi),
                       np.concatenate(m.integer))
    if integer_used:
        highs.setOptionValue("mip_rel_gap", 1e-9)
    elif m.n_col > (IPM_MIN_COLUMNS if ipm_min_columns is None else ipm_min_columns):
        # Large LPs: interior point without crossover (an optimum within 1e-8, not a vertex).
        highs.setOptionValue("solver", "ipm")
        highs.setOptionValue("run_crossover", "off")
    if time_limit_s is not None:
        highs.setOptionValue("time_limit", float(time_limit_s))
    return highs


def flatten_blocks(y_kw: np.ndarray, block_of: np.ndarray, building_kw: np.ndarray,
                   y_max_kw: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Valley-fill each block: the same block energy, with site load as flat as it can be.

    Inside a block the price is constant, so any charging profile with the block's energy that
    stays under ``y_max_kw`` (what the peaks already in the plan and the service limit allow)
    costs exactly the same. Of those, the one that keeps building + charging level — charging
    fills the building's valleys — is what an operator expects and is gentlest on the grid:
    y_t = clip(L_B − b_t, 0, y_max_t) with the level L_B found by bisection, all blocks at once.
    An LP vertex instead switches between 0 and the peak.
    """
    n_blocks = int(block_of[-1]) + 1
    target = np.bincount(block_of, weights=y_kw, minlength=n_blocks)  # Σ y per block [kW·steps]
    lo = np.full(n_blocks, np.inf)
    np.minimum.at(lo, block_of, building_kw)
    hi = np.full(n_blocks, -np.inf)
    np.maximum.at(hi, block_of, building_kw + y_max_kw)
    for _ in range(iterations):
        level = 0.5 * (lo + hi)
        got = np.bincount(block_of, weights=np.clip(level[block_of] - building_kw, 0.0, y_max_kw),
                          minlength=n_blocks)
        low = got < target
        lo = np.where(low, level, lo)
        hi = np.where(low, hi, level)
    flat = np.clip(hi[block_of] - building_kw, 0.0, y_max_kw)
    # Exact block energy (bisection leaves ~1e-15 relative): scale within the block.
    got = np.bincount(block_of, weights=flat, minlength=n_blocks)
    scale = np.divide(target, got, out=np.zeros(n_blocks), where=got > 0)
    return np.minimum(flat * scale[block_of], np.maximum(y_max_kw, y_kw))


def _disaggregate(e_kwh: np.ndarray, entry_block: np.ndarray, block_of: np.ndarray,
                  step_of: np.ndarray, cap: np.ndarray, y_step: np.ndarray,
                  dt: float, y_max: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-step power of each (session, step) entry from block energies and the load profile.

    Splits each block's energy in proportion to its load profile; where that exceeds a cap, a
    transportation LP splits the block exactly, re-shaping the block's load under ``y_max``
    (the per-step load the peaks and the service limit allow: same price inside a block, so
    same cost) when it is given. Returns the power per availability entry [kW] and the blocks
    that cannot be split (the relaxation was not tight there).
    """
    block_kwh = np.bincount(block_of, weights=y_step * dt)
    y_here = y_step[step_of]
    denom = block_kwh[block_of[step_of]]
    power = np.where(denom > 1e-12, e_kwh[entry_block] * y_here / np.maximum(denom, 1e-12), 0.0)
    over = power > cap + 1e-7
    failed = []
    blocks = np.unique(block_of[step_of[over]])
    if blocks.size:
        # One transportation LP for all such blocks (they are independent); only if it is
        # infeasible, block by block to find the ones that cannot be split.
        sel = np.flatnonzero(np.isin(block_of[step_of], blocks))
        split = _split_block(e_kwh, entry_block[sel], step_of[sel], cap[sel], y_step, dt, y_max)
        if split is not None:
            power[sel] = split
        else:
            for b in blocks:
                sel = np.flatnonzero(block_of[step_of] == b)
                split = _split_block(e_kwh, entry_block[sel], step_of[sel], cap[sel], y_step,
                                     dt, y_max)
                if split is None:
                    failed.append(b)
                else:
                    power[sel] = split
    return np.clip(power, 0.0, cap), np.asarray(failed, dtype=np.int64)


def _split_block(e_kwh: np.ndarray, entry: np.ndarray, steps: np.ndarray, cap: np.ndarray,
                 y_step: np.ndarray, dt: float, y_max: np.ndarray | None) -> np.ndarray | None:
    """Exact split of one block: 0 ≤ x ≤ cap, Σ_t x Δ = e per session, and per step
    Σ_n x = y (or 0 ≤ Σ_n x ≤ y_max when given).

    A transportation feasibility LP; returns ``None`` if it is infeasible.
    """
    sessions, srow = np.unique(entry, return_inverse=True)
    block_steps, trow = np.unique(steps, return_inverse=True)
    k = entry.size
    a = sp.csc_array((np.concatenate([np.full(k, dt), np.ones(k)]),
                      (np.concatenate([srow, sessions.size + trow]),
                       np.concatenate([np.arange(k), np.arange(k)]))),
                     shape=(sessions.size + block_steps.size, k))
    rhs = np.concatenate([e_kwh[sessions], y_step[block_steps]])
    slack = 1e-7 * (1.0 + np.abs(rhs))  # the interior-point solution is feasible to ~1e-8
    lower, upper = rhs - slack, rhs + slack
    if y_max is not None:
        lower[sessions.size:] = 0.0
        upper[sessions.size:] = np.maximum(y_max[block_steps], y_step[block_steps]) + slack[
            sessions.size:]
    highs = highs_with(a, np.zeros(k), np.zeros(k), cap, lower, upper)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    x = np.clip(np.asarray(highs.getSolution().col_value), 0.0, cap)
    # Exact session energies (the LP meets its rows only to its feasibility tolerance): spread
    # each session's small deficit or excess over its entries in proportion to their room.
    missing = e_kwh[sessions] - np.bincount(srow, weights=x * dt, minlength=sessions.size)
    room = np.where(missing[srow] > 0, cap - x, x)
    room_kwh = np.bincount(srow, weights=room * dt, minlength=sessions.size)
    share = np.divide(missing, room_kwh, out=np.zeros(sessions.size), where=room_kwh > 0)
    return np.clip(x + room * share[srow], 0.0, cap)
