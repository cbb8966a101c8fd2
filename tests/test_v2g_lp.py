"""The V2G LP against an independent dense formulation (scipy linprog), and its invariants."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from fleetcharge.strategies.optimal_lp import DemandCharge, LPInput, solve_v1g
from fleetcharge.strategies.v2g_lp import V2GTerms, solve_v2g


def instance(seed: int, n: int = 3, T: int = 24, export_kw: float = 6.0, eligible=None,
             program: bool = False):
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 6, n)
    stop = np.minimum(first + rng.integers(10, 18, n), T)
    avail = np.zeros((n, T))
    for i in range(n):
        avail[i, first[i]:stop[i]] = 1.0
    cap = rng.uniform(5, 10, n)
    dt = 0.5
    usable = rng.uniform(40, 60, n)
    arrival_soc = rng.uniform(0.3, 0.6, n)
    eta_c = np.full(n, 0.9)
    energy = np.minimum(rng.uniform(5, 15, n), (0.95 - arrival_soc) * usable / eta_c)
    price = np.where((np.arange(T) >= 12) & (np.arange(T) < 18), 0.40, 0.10)
    building = rng.uniform(2, 6, T)
    charges = (DemandCharge("all", np.arange(T), 3.0),
               DemandCharge("peak", np.arange(12, 18), 6.0))
    lp = LPInput(sp.csr_array(avail), cap, energy, dt, price, building, 40.0, charges,
                 headroom_kwh=(1 - arrival_soc) * usable / eta_c)
    elig = np.ones(n, bool) if eligible is None else np.asarray(eligible)
    terms = V2GTerms(
        discharge_kw=np.where(elig, cap, 0.0), charge_efficiency=eta_c,
        discharge_efficiency=np.full(n, 0.92), usable_kwh=usable,
        arrival_kwh=arrival_soc * usable, floor_kwh=0.2 * usable,
        degradation_per_kwh=np.full(n, 0.05), export_limit_kw=export_kw,
        sell_price_per_kwh=np.where(price > 0.2, 0.30, 0.03),
        program_price_per_kwh=np.where((np.arange(T) >= 14) & (np.arange(T) < 16), 2.0, 0.0)
        if program else None,
        baseline_kw=building + 5.0 if program else None)
    return lp, terms


def reference(lp: LPInput, v: V2GTerms) -> float:
    """Dense model: per session and step c, d, SOC e; per step g, x, r; peaks P_j."""
    A = lp.availability.toarray()
    n, T = A.shape
    dt = lp.step_hours
    idx: dict = {}

    def var(*key):
        return idx.setdefault(key, len(idx))

    for i in range(n):
        for t in range(T):
            var("c", i, t); var("d", i, t); var("e", i, t)
    for t in range(T):
        var("g", t); var("x", t); var("r", t)
    for j in range(len(lp.demand_charges)):
        var("P", j)
    N = len(idx)
    cost = np.zeros(N)
    bounds = [(0, None)] * N
    Aeq, beq, Aub, bub = [], [], [], []
    prog = v.program_price_per_kwh if v.program_price_per_kwh is not None else np.zeros(T)
    for i in range(n):
        for t in range(T):
            bounds[var("c", i, t)] = (0, lp.max_kw[i] * A[i, t])
            bounds[var("d", i, t)] = (0, v.discharge_kw[i] * A[i, t])
            bounds[var("e", i, t)] = (min(v.floor_kwh[i], v.arrival_kwh[i]), v.usable_kwh[i])
            cost[var("d", i, t)] = v.degradation_per_kwh[i] * dt / v.discharge_efficiency[i]
            row = np.zeros(N)  # e_t = e_{t-1} + η_c c Δ − d Δ / η_d   (e_{-1} = arrival)
            row[var("e", i, t)] = 1
            row[var("c", i, t)] = -v.charge_efficiency[i] * dt
            row[var("d", i, t)] = dt / v.discharge_efficiency[i]
            if t:
                row[var("e", i, t - 1)] = -1
            Aeq.append(row); beq.append(v.arrival_kwh[i] if t == 0 else 0.0)
        row = np.zeros(N)  # departure: final energy ≥ arrival + η_c E
        row[var("e", i, T - 1)] = -1
        Aub.append(row); bub.append(-(v.arrival_kwh[i] + v.charge_efficiency[i] * lp.energy_kwh[i]))
    for t in range(T):
        row = np.zeros(N)
        row[var("g", t)] = 1; row[var("x", t)] = -1
        for i in range(n):
            row[var("c", i, t)] = -1; row[var("d", i, t)] = 1
        Aeq.append(row); beq.append(lp.building_kw[t])
        bounds[var("g", t)] = (0, lp.service_limit_kw)
        bounds[var("x", t)] = (0, v.export_limit_kw)
        cost[var("g", t)] = lp.energy_price_per_kwh[t] * dt
        cost[var("x", t)] = -v.sell_price_per_kwh[t] * dt
        if prog[t] > 0:
            row = np.zeros(N); row[var("r", t)] = 1; row[var("g", t)] = 1; row[var("x", t)] = -1
            Aub.append(row); bub.append(v.baseline_kw[t])
            cost[var("r", t)] = -prog[t] * dt
        else:
            bounds[var("r", t)] = (0, 0)
    for j, dc in enumerate(lp.demand_charges):
        cost[var("P", j)] = dc.rate_per_kw
        for t in dc.windows:
            row = np.zeros(N); row[var("g", t)] = 1; row[var("P", j)] = -1
            Aub.append(row); bub.append(0.0)
    res = linprog(cost, np.array(Aub), np.array(bub), np.array(Aeq), np.array(beq),
                  bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return res.fun


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("program", [False, True])
def test_matches_independent_formulation(seed, program):
    lp, v = instance(seed, program=program)
    res = solve_v2g(lp, v)
    assert res.shortfall_kwh.sum() == pytest.approx(0.0, abs=1e-7)
    assert res.objective == pytest.approx(reference(lp, v), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_invariants(seed):
    lp, v = instance(seed, eligible=[True, False, True], export_kw=4.0)
    res = solve_v2g(lp, v)
    dis = res.discharge_kw.toarray()
    assert (dis[1] == 0).all(), "no discharge from an ineligible pair"
    assert res.export_kw.max() <= 4.0 + 1e-7, "export within the agreement"
    # site balance
    net = lp.building_kw + res.charge_kw.toarray().sum(axis=0) - dis.sum(axis=0)
    assert res.import_kw - res.export_kw == pytest.approx(net, abs=1e-6)
    # departures: battery at the end ≥ arrival + η E (the V1G target) for every session
    delivered = (res.charge_kw.toarray() * v.charge_efficiency[:, None]
                 - dis / v.discharge_efficiency[:, None]).sum(axis=1) * lp.step_hours
    assert (delivered >= v.charge_efficiency * lp.energy_kwh - 1e-6).all()


def test_no_agreement_means_no_export_but_behind_the_meter_discharge():
    lp, v = instance(1, export_kw=0.0)
    res = solve_v2g(lp, v)
    assert res.export_kw.max() <= 1e-9
    assert res.discharge_kw.sum() > 0  # it still shaves the on-peak import


def test_v2g_never_costs_more_than_v1g_and_signs_are_right():
    lp, v = instance(2)
    v1g = solve_v1g(lp)
    res = solve_v2g(lp, v)
    assert res.objective <= v1g.objective + 1e-6
    assert res.parts["degradation"] >= 0 and res.parts["export_credit"] <= 0
    # Degradation priced prohibitively: no discharge, and the V1G optimum comes back.
    dear = replace(v, degradation_per_kwh=np.full(3, 100.0))
    res_dear = solve_v2g(lp, dear)
    assert res_dear.discharge_kw.sum() == pytest.approx(0.0, abs=1e-7)
    assert res_dear.objective == pytest.approx(v1g.objective, rel=1e-6)
    assert res_dear.info["v2g_formulated_sessions"] == 0, "pricing kept them V1G"
    # A program payment makes discharging in its window more attractive, never less.
    lp_p, v_p = instance(2, program=True)
    with_program = solve_v2g(lp_p, v_p)
    assert with_program.parts["program"] <= 0
    assert with_program.objective <= res.objective + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_pricing_finds_discharge_that_only_demand_charges_pay_for(seed):
    """Flat energy price: no session looks profitable on prices alone, so every session the
    optimum discharges enters through pricing with the LP's duals (its demand charges)."""
    lp, v = instance(seed)
    T = lp.building_kw.size
    building = lp.building_kw.copy()
    building[12:15] += 25.0  # a short evening spike the vehicles can shave
    lp = replace(lp, energy_price_per_kwh=np.full(T, 0.10), building_kw=building)
    v = replace(v, sell_price_per_kwh=np.full(T, 0.03))
    res = solve_v2g(lp, v)
    assert res.objective == pytest.approx(reference(lp, v), rel=1e-6, abs=1e-6)
    assert res.info["pricing_rounds"] >= 1
    assert res.discharge_kw.sum() > 0


@pytest.mark.parametrize("seed", range(8))
def test_v1g_duals_only_choose_the_starting_sessions(seed):
    """Starting from the sessions the V1G plan's duals price in changes the work, never the
    optimum (flat energy price: only demand charges make a discharge pay)."""
    lp, v = instance(seed)
    T = lp.building_kw.size
    lp = replace(lp, energy_price_per_kwh=np.full(T, 0.10),
                 energy_kwh=np.minimum(lp.energy_kwh * 2, 0.9 * lp.headroom_kwh))
    v = replace(v, sell_price_per_kwh=np.full(T, 0.03))
    v1g = solve_v1g(lp)
    assert v1g.info["step_dual"].max() > 0.10 * lp.step_hours, "the peak's value shows"
    cold = solve_v2g(lp, v)
    seeded = solve_v2g(lp, v, v1g_duals=(v1g.info["energy_dual"], v1g.info["step_dual"]))
    assert seeded.objective == pytest.approx(reference(lp, v), rel=1e-6, abs=1e-6)
    assert seeded.objective == pytest.approx(cold.objective, rel=1e-9, abs=1e-9)
    assert seeded.info["pricing_rounds"] <= cold.info["pricing_rounds"]
