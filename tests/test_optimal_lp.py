"""The V1G LP against an independent per-step SOC formulation solved by scipy's linprog."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from fleetcharge.strategies.optimal_lp import DemandCharge, LPInput, solve_v1g


def random_instance(seed: int, n_sessions: int = 4, n_steps: int = 24, limit: float = 1e9):
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n_steps - 4, n_sessions)
    stop = np.minimum(first + rng.integers(2, 14, n_sessions), n_steps)
    avail = np.zeros((n_sessions, n_steps))
    for i in range(n_sessions):
        avail[i, first[i]:stop[i]] = 1.0
        avail[i, first[i]] = rng.uniform(0.2, 1.0)
        if stop[i] - first[i] > 1:
            avail[i, stop[i] - 1] = rng.uniform(0.2, 1.0)
    cap = rng.uniform(3, 12, n_sessions)
    dt = 0.25
    max_e = (avail * cap[:, None]).sum(axis=1) * dt
    energy = max_e * rng.uniform(0.1, 0.95, n_sessions)
    price = rng.choice([0.05, 0.12, 0.30], n_steps)
    building = rng.uniform(0, 5, n_steps)
    charges = (
        DemandCharge("all", np.arange(n_steps), 4.0, floor_kw=float(rng.uniform(0, 8))),
        DemandCharge("peak", np.arange(8, 16), 9.0),
    )
    return LPInput(sp.csr_array(avail), cap, energy, dt, price, building, limit, charges)


def reference_objective(lp: LPInput) -> tuple[float, float]:
    """Per-step model with explicit SOC (energy) variables, dense, via scipy linprog.

    Variables per session: c[t] (T), e[t] (T+1); then P_j. Returns (energy+demand cost,
    total shortfall) with the shortfall minimised first (lexicographic, two solves).
    """
    avail = lp.availability.toarray()
    n, T = avail.shape
    dt = lp.step_hours
    nd = len(lp.demand_charges)
    nc = n * T
    ne = n * (T + 1)
    nvar = nc + ne + nd + n  # + shortfall per session
    ci = lambda i, t: i * T + t  # noqa: E731
    ei = lambda i, t: nc + i * (T + 1) + t  # noqa: E731
    A_eq, b_eq, A_ub, b_ub = [], [], [], []
    for i in range(n):
        row = np.zeros(nvar); row[ei(i, 0)] = 1; A_eq.append(row); b_eq.append(0.0)
        for t in range(T):
            row = np.zeros(nvar)
            row[ei(i, t + 1)] = 1; row[ei(i, t)] = -1; row[ci(i, t)] = -dt
            A_eq.append(row); b_eq.append(0.0)
        row = np.zeros(nvar); row[ei(i, T)] = -1; row[nc + ne + nd + i] = -1
        A_ub.append(row); b_ub.append(-lp.energy_kwh[i])
    for t in range(T):
        row = np.zeros(nvar)
        for i in range(n):
            row[ci(i, t)] = 1
        A_ub.append(row); b_ub.append(lp.service_limit_kw - lp.building_kw[t])
    for j, dc in enumerate(lp.demand_charges):
        for t in dc.steps:
            row = np.zeros(nvar)
            for i in range(n):
                row[ci(i, t)] = 1
            row[nc + ne + j] = -1
            A_ub.append(row); b_ub.append(-lp.building_kw[t])
    bounds = []
    for i in range(n):
        for t in range(T):
            bounds.append((0, lp.max_kw[i] * avail[i, t]))
    bounds += [(0, None)] * ne
    bounds += [(dc.floor_kw, None) for dc in lp.demand_charges]
    bounds += [(0, lp.energy_kwh[i]) for i in range(n)]
    A_ub, b_ub, A_eq, b_eq = map(np.array, (A_ub, b_ub, A_eq, b_eq))
    # 1) least total shortfall
    c1 = np.zeros(nvar); c1[nc + ne + nd:] = 1
    r1 = linprog(c1, A_ub, b_ub, A_eq, b_eq, bounds=bounds, method="highs")
    assert r1.status == 0
    short = r1.fun
    # 2) cheapest with that shortfall
    c2 = np.zeros(nvar)
    for i in range(n):
        for t in range(T):
            c2[ci(i, t)] = lp.energy_price_per_kwh[t] * dt
    for j, dc in enumerate(lp.demand_charges):
        c2[nc + ne + j] = dc.rate_per_kw
    A2 = np.vstack([A_ub, c1]); b2 = np.append(b_ub, short + 1e-9)
    r2 = linprog(c2, A2, b2, A_eq, b_eq, bounds=bounds, method="highs")
    assert r2.status == 0
    return r2.fun, short


@pytest.mark.parametrize("seed", range(12))
def test_matches_independent_formulation_when_feasible(seed):
    lp = random_instance(seed)
    res = solve_v1g(lp)
    ref, short = reference_objective(lp)
    assert short == pytest.approx(0.0, abs=1e-7)
    assert res.shortfall_kwh.sum() == pytest.approx(0.0, abs=1e-7)
    assert res.objective == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_matches_independent_formulation_under_a_tight_site_limit(seed):
    lp = random_instance(seed, n_sessions=5, limit=9.0)
    res = solve_v1g(lp)
    ref, short = reference_objective(lp)
    assert res.shortfall_kwh.sum() == pytest.approx(short, abs=1e-6)
    assert res.objective == pytest.approx(ref, rel=1e-6, abs=1e-6)
    load = np.asarray(res.charge_kw.sum(axis=0)).ravel() + lp.building_kw
    assert (load <= np.maximum(lp.service_limit_kw, lp.building_kw) + 1e-6).all()
