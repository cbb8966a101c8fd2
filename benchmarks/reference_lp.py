"""The plain full-horizon reference LP: per-step SOC (energy) state for every session.

This is the formulation issue 3 measures against ("a plain full-horizon LP in HiGHS with per-step
SOC variables"): for each plugged-in step of session n an energy state e[n,k] with
e[n,k+1] = e[n,k] + Δ·c[n,k], e[n,0] = 0, e[n,last] ≥ E_n, and the same site limit, demand
rows and prices as :mod:`fleetcharge.strategies.optimal_lp`. It is used only to certify the
production LP's optimum (same objective) and to time the difference. Flat and TOU demand with one
rate each (no tiers, ratchets or subscriptions), which is what the benchmark tariff has.
"""

from __future__ import annotations

from time import perf_counter

import numpy as np
import scipy.sparse as sp

from fleetcharge.strategies.optimal_lp import LPInput, highs_with


def solve_reference(lp: LPInput) -> dict[str, float]:
    """Solve the per-step SOC LP; returns objective [$] (building energy included) and timings."""
    t0 = perf_counter()
    avail = lp.availability.tocsr()
    avail.sort_indices()
    n_s, n_t = avail.shape
    nnz = avail.nnz
    dt = lp.step_hours
    lengths = np.diff(avail.indptr)
    row_of = np.repeat(np.arange(n_s), lengths)
    step_of = avail.indices
    cap = lp.max_kw[row_of] * avail.data
    # columns: c (nnz) | e (nnz + n_s: one state before each step and one at the end) | P (n_dc)
    n_e = nnz + n_s
    n_dc = len(lp.demand_charges)
    n_col = nnz + n_e + n_dc
    e_start = avail.indptr[:-1] + np.arange(n_s)  # e index of session n's first state
    e_of_entry = np.arange(nnz) + np.repeat(np.arange(n_s), lengths)  # state before entry
    cost = np.concatenate([lp.energy_price_per_kwh[step_of] * dt, np.zeros(n_e),
                           [dc.rate_per_kw for dc in lp.demand_charges]])
    lo = np.concatenate([np.zeros(nnz), np.zeros(n_e),
                         [dc.floor_kw for dc in lp.demand_charges]])
    hi = np.concatenate([cap, np.full(n_e, np.inf), np.full(n_dc, np.inf)])
    hi[nnz + e_start] = 0.0  # e[n,0] = 0
    lo[nnz + e_start + lengths] = lp.energy_kwh  # e[n,end] ≥ E_n (targets feasible here)
    # dynamics: e[k+1] − e[k] − Δ c[k] = 0
    k = np.arange(nnz)
    dyn = sp.csr_array((np.concatenate([np.ones(nnz), -np.ones(nnz), np.full(nnz, -dt)]),
                        (np.concatenate([k, k, k]),
                         np.concatenate([nnz + e_of_entry + 1, nnz + e_of_entry, k]))),
                       shape=(nnz, n_col))
    blocks, rlo, rhi = [dyn], [np.zeros(nnz)], [np.zeros(nnz)]
    site = sp.csr_array((np.ones(nnz), (step_of, k)), shape=(n_t, n_col))
    blocks.append(site)
    rlo.append(np.full(n_t, -np.inf))
    rhi.append(np.maximum(lp.service_limit_kw - lp.building_kw, 0.0))
    for j, dc in enumerate(lp.demand_charges):
        steps = np.asarray(dc.windows)
        block = sp.hstack([site[steps][:, :n_col - n_dc],
                           sp.csr_array((-np.ones(steps.size),
                                         (np.arange(steps.size), np.full(steps.size, j))),
                                        shape=(steps.size, n_dc))], format="csr")
        blocks.append(block)
        rlo.append(np.full(steps.size, -np.inf))
        rhi.append(-lp.building_kw[steps])
    a = sp.vstack(blocks, format="csc")
    highs = highs_with(a, cost, lo, hi, np.concatenate(rlo), np.concatenate(rhi))
    t1 = perf_counter()
    highs.run()
    t2 = perf_counter()
    x = np.asarray(highs.getSolution().col_value)
    objective = float(cost @ x) + float(lp.energy_price_per_kwh @ lp.building_kw) * dt
    return {"objective": objective, "build_s": t1 - t0, "solve_s": t2 - t1, "columns": n_col,
            "status": highs.modelStatusToString(highs.getModelStatus())}
