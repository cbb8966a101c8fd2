"""The operational envelope of V2G: what each dwell can give back and still leave on time.

Per session (one vehicle-day at the depot):

* ``dwell_h`` — time plugged in [h];
* ``energy_needed_kwh`` — energy at the charger the next route needs [kWh];
* ``offpeak_restore_kwh`` — what the charger can put back inside the cheapest-price steps of
  the dwell [kWh at the charger]: cap × off-peak hours;
* ``exportable_kwh`` — the **exportable headroom**: the most energy it can discharge (at the
  charger) and still be charged back to its target before departure, and never below its SOC
  floor. Discharging X at up to d̄ kW takes X/d̄ h and costs X/(η_d η_c) of extra charging at
  up to c̄ kW, so (E + X/(η_d η_c))/c̄ + X/d̄ ≤ dwell; and X/η_d ≤ e_arr − e_floor:

  .. math:: X = \\max\\Big(0, \\min\\Big(\\frac{T − E/\\bar c}{1/\\bar d + 1/(η_d η_c \\bar c)},
            η_d (e_{arr} − e_{floor})\\Big)\\Big)

The fleet's **firm V2G capacity** at a local hour is what the fleet can count on at a chosen
confidence: across the days of the horizon, the (1 − confidence) quantile of the discharge kW
(and exportable kWh) of eligible vehicles plugged in at that hour with headroom left.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleetcharge.domain import Scenario


def exportable_kwh(dwell_h: np.ndarray, energy_kwh: np.ndarray, charge_kw: np.ndarray,
                   discharge_kw: np.ndarray, charge_efficiency: np.ndarray,
                   discharge_efficiency: np.ndarray, arrival_kwh: np.ndarray,
                   floor_kwh: np.ndarray) -> np.ndarray:
    """Exportable headroom of each session [kWh at the charger] (module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        spare_h = dwell_h - energy_kwh / charge_kw
        per_kwh_h = 1.0 / discharge_kw + 1.0 / (discharge_efficiency * charge_efficiency
                                                 * charge_kw)
        by_time = np.where(discharge_kw > 0, spare_h / per_kwh_h, 0.0)
    by_energy = discharge_efficiency * (arrival_kwh - floor_kwh)
    return np.clip(np.minimum(by_time, by_energy), 0.0, None)


def operational_envelope(scenario: Scenario, discharge_kw: np.ndarray) -> pd.DataFrame:
    """One row per session: dwell, energy needed, off-peak restore, exportable headroom.

    ``discharge_kw`` is each session's discharge cap from the stack check (0 = not eligible).
    """
    arrays = scenario.session_arrays()
    horizon = scenario.horizon
    dt = horizon.step_hours
    avail = arrays.availability(horizon.n_steps)
    price = np.asarray(scenario.tariff.energy_rate_per_kwh(horizon), dtype=float)
    offpeak = price <= price.min() + 1e-9
    dwell_h = np.asarray(avail.sum(axis=1)).ravel() * dt
    offpeak_h = np.asarray(avail.multiply(offpeak[None, :]).sum(axis=1)).ravel() * dt
    vehicles = [scenario.vehicle(s.vehicle_id) for s in scenario.sessions]
    floor = np.array([v.min_soc for v in vehicles]) * arrays.usable_kwh
    headroom = exportable_kwh(dwell_h, arrays.energy_kwh, arrays.max_kw, discharge_kw,
                              arrays.efficiency, arrays.discharge_efficiency,
                              arrays.arrival_soc * arrays.usable_kwh, floor)
    return pd.DataFrame({
        "session_id": [s.id for s in scenario.sessions],
        "vehicle_id": [s.vehicle_id for s in scenario.sessions],
        "arrival": [s.arrival for s in scenario.sessions],
        "departure": [s.departure for s in scenario.sessions],
        "dwell_h": dwell_h,
        "energy_needed_kwh": arrays.energy_kwh,
        "offpeak_restore_kwh": arrays.max_kw * offpeak_h,
        "discharge_kw": discharge_kw,
        "exportable_kwh": headroom,
    })


def firm_capacity(scenario: Scenario, envelope: pd.DataFrame,
                  confidence: float = 0.9) -> pd.DataFrame:
    """Firm V2G capacity by local hour of day at ``confidence`` (module docstring).

    Returns one row per hour 0–23: ``firm_kw`` and ``firm_kwh`` (the (1 − confidence) quantile
    over days), and the mean for comparison.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    horizon = scenario.horizon
    arrays = scenario.session_arrays()
    avail = arrays.availability(horizon.n_steps).tocsc()
    able = (envelope["exportable_kwh"].to_numpy() > 0).astype(float)
    kw = (avail.T @ (envelope["discharge_kw"].to_numpy() * able)).ravel()
    kwh = (avail.T @ envelope["exportable_kwh"].to_numpy()).ravel()
    # avail is a fraction; a step counts a vehicle only if plugged for all of it
    full = (avail.T @ able).ravel()
    frame = pd.DataFrame({"kw": kw, "kwh": kwh, "plugged": full}, index=horizon.index)
    hourly = frame.groupby([frame.index.date, frame.index.hour]).min()
    hourly.index.names = ["date", "hour"]
    q = 1.0 - confidence
    out = hourly.groupby(level="hour").agg(
        firm_kw=("kw", lambda s: float(np.quantile(s, q))),
        mean_kw=("kw", "mean"),
        firm_kwh=("kwh", lambda s: float(np.quantile(s, q))),
        mean_kwh=("kwh", "mean"),
    )
    return out.reindex(range(24), fill_value=0.0)
