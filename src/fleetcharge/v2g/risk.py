"""Readiness risk: how likely a vehicle leaves below target when the day does not go to plan.

Monte Carlo over the things that go wrong at a depot: a vehicle comes back late, leaves early, or
its last route was heavier than planned (it arrives with less energy). In every sample each
vehicle follows the plan's power schedule for as long as it is actually plugged in (a plan
cannot charge a vehicle that is not there), and its SOC at the actual departure is compared with
its target. A V1G plan that charges late in the dwell and a V2G plan that discharges first and
recharges late are both exposed; the comparison shows whether V2G raises the risk.

Distributions (all configurable, seeds fixed): with probability ``p_late`` the arrival is late by
an exponential delay with mean ``late_mean_min``; likewise ``p_early``/``early_mean_min`` for
the departure; the route energy is scaled by a lognormal factor with ``route_sigma``
(``exp(σZ − σ²/2)``, mean 1) and the extra energy comes out of the arrival SOC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetcharge.plan import Plan

#: A departure below target by more than this counts as a miss [kWh at the charger].
MISS_TOLERANCE_KWH = 0.1


@dataclass(frozen=True)
class Disruptions:
    """What goes wrong, and how often (module docstring)."""

    p_late: float = 0.2
    late_mean_min: float = 45.0
    p_early: float = 0.1
    early_mean_min: float = 30.0
    route_sigma: float = 0.15


@dataclass(frozen=True)
class ReadinessRisk:
    """Result of :func:`readiness_risk`."""

    probability: float  # P(departure below target) over vehicles-departures and samples
    expected_shortfall_kwh: float  # mean shortfall per departure [kWh at the charger]
    per_session_probability: np.ndarray
    samples: int


def readiness_risk(plan: Plan, disruptions: Disruptions = Disruptions(), samples: int = 200,
                   seed: int = 7) -> ReadinessRisk:
    """Monte Carlo readiness risk of following ``plan`` under ``disruptions`` (module docstring).

    Vectorised over sessions; one sample at a time over the plan's sparse entries.
    """
    scenario = plan.scenario
    arrays = scenario.session_arrays()
    horizon = scenario.horizon
    n = len(arrays)
    step_h = horizon.step_hours
    charge = plan.charge_kw.tocsr()
    charge.sort_indices()
    lengths = np.diff(charge.indptr)
    row = np.repeat(np.arange(n), lengths)
    battery = charge.data * arrays.efficiency[row]
    if plan.discharge_kw is not None:
        dis = plan.discharge_kw.tocsr()
        dis.sort_indices()
        battery = battery - dis.data / arrays.discharge_efficiency[row]
    # Each entry's step as [start, end) in steps from the horizon start, and its planned
    # interval-average battery power spread uniformly over the *available* part of the step.
    avail = arrays.availability(horizon.n_steps).tocsr()
    avail.sort_indices()
    step = charge.indices.astype(float)
    first_pos = arrays.first + (1.0 - arrays.first_fraction)  # plugged-in time, in steps
    last_pos = np.where(arrays.stop > arrays.first, arrays.stop - 1 + arrays.last_fraction,
                        arrays.first)
    frac = avail.data
    density = np.divide(battery, frac, out=np.zeros_like(battery), where=frac > 0)

    rng = np.random.default_rng(seed)
    needed_kwh = arrays.efficiency * arrays.energy_kwh  # battery gain the target needs
    misses = np.zeros(n)
    shortfall_total = 0.0
    minutes_per_step = horizon.resolution_min
    for _ in range(samples):
        late = rng.random(n) < disruptions.p_late
        early = rng.random(n) < disruptions.p_early
        delay = np.where(late, rng.exponential(disruptions.late_mean_min, n), 0.0)
        cut = np.where(early, rng.exponential(disruptions.early_mean_min, n), 0.0)
        arr = first_pos + delay / minutes_per_step
        dep = np.maximum(last_pos - cut / minutes_per_step, arr)
        factor = np.exp(disruptions.route_sigma * rng.standard_normal(n)
                        - disruptions.route_sigma ** 2 / 2)
        # the previous route used factor × (what the plan expected), so it arrives lower
        extra_kwh = np.maximum(factor - 1.0, -1.0) * needed_kwh
        overlap = np.clip(np.minimum(dep[row], step + 1) - np.maximum(arr[row], step), 0.0, 1.0)
        gain = np.bincount(row, weights=density * overlap * step_h, minlength=n)
        short = np.maximum(needed_kwh + extra_kwh - gain, 0.0) / arrays.efficiency
        miss = short > MISS_TOLERANCE_KWH
        misses += miss
        shortfall_total += float(short[miss].sum())
    per_session = misses / samples
    return ReadinessRisk(
        probability=float(per_session.mean()) if n else 0.0,
        expected_shortfall_kwh=shortfall_total / (samples * n) if n else 0.0,
        per_session_probability=per_session,
        samples=samples,
    )
