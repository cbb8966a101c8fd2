"""Readiness risk: how likely a vehicle leaves below target when the day does not go to plan.

Monte Carlo over what goes wrong at a depot: a vehicle comes back late, its last route was
heavier than planned (it arrives with less energy), or it leaves early. The controller is assumed
to see the first two at plug-in and to make up for them as soon as possible with the charging
capacity the plan leaves unused (a live re-plan would do at least that); an early departure is a
surprise, so whatever the plan had scheduled after it is lost. The SOC at the actual departure is
compared with the target. A V1G plan that charges late in the dwell and a V2G plan that
discharges first and recharges late are both exposed to early departures; comparing them shows
whether V2G raises the risk.

In numbers, per vehicle and sample, with the actual plug-in window [a', d'] and the plan's
battery power p_t (η_c·c − d/η_d) and spare s_t = η_c·c̄·f_t − p_t:

    gain = Σ_{t∈[a',d']} p_t Δ + min(K, Σ_{t∈[a',d']} s_t Δ),
    K = Σ_{t∈[a, a']} p_t Δ + extra route energy

Distributions (configurable, seeds fixed): with probability ``p_late`` the arrival is late by an
exponential delay with mean ``late_mean_min``; likewise ``p_early``/``early_mean_min`` for the
departure; the route energy is scaled by a lognormal factor with ``route_sigma``
(``exp(σZ − σ²/2)``, mean 1), the difference coming out of the arrival SOC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetcharge.domain import Disruptions
from fleetcharge.plan import Plan

#: A departure below target by more than this counts as a miss [kWh at the charger].
MISS_TOLERANCE_KWH = 0.1


@dataclass(frozen=True)
class ReadinessRisk:
    """Result of :func:`readiness_risk`."""

    probability: float  # P(departure below target) over vehicles-departures and samples
    expected_shortfall_kwh: float  # mean shortfall per departure [kWh at the charger]
    per_session_probability: np.ndarray
    samples: int


def _overlap(start: np.ndarray, end: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Fraction of step ``[step, step + 1)`` inside ``[start, end)`` (positions in steps)."""
    return np.clip(np.minimum(end, step + 1) - np.maximum(start, step), 0.0, 1.0)


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
    spare = np.maximum(arrays.efficiency[row] * arrays.max_kw[row] - density, 0.0)

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
        inside = _overlap(arr[row], dep[row], step)  # the actual plug-in window
        missed = _overlap(first_pos[row], arr[row], step)  # lost to the late arrival
        planned = np.bincount(row, weights=density * inside * step_h, minlength=n)
        lost = np.bincount(row, weights=density * missed * step_h, minlength=n)
        room = np.bincount(row, weights=spare * inside * step_h, minlength=n)
        catch_up = np.maximum(lost + extra_kwh, 0.0)
        gain = planned + np.minimum(catch_up, room)
        need = needed_kwh + extra_kwh
        short = np.maximum(need - gain, 0.0) / arrays.efficiency
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
