"""Accounting from a dispatched plan: site load, bill, readiness, SOC, energy and peak.

The bill is always recomputed from the schedule by the bill engine (STYLE.md house rule 5): an
optimiser's objective is never taken as the bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fleetcharge.billing import Bill, compute_bill
from fleetcharge.plan import Plan

#: A departure counts as meeting its target when it is short by no more than this [kWh].
MET_TOLERANCE_KWH = 1e-3
#: Import above the service limit by more than this counts as an overload [kW] (1 W: below
#: any meter's resolution, above the solver's feasibility tolerance).
OVERLOAD_TOLERANCE_KW = 1e-3


@dataclass(frozen=True)
class Readiness:
    """Did every vehicle leave with the energy it needed?

    ``per_session`` has one row per session: required and delivered energy at the charger [kWh],
    shortfall [kWh], SOC at departure and its target, and ``met``.
    """

    per_session: pd.DataFrame

    @property
    def departures(self) -> int:
        return len(self.per_session)

    @property
    def met(self) -> int:
        return int(self.per_session["met"].sum())

    @property
    def shortfall_kwh(self) -> float:
        return float(self.per_session["shortfall_kwh"].sum())

    def to_dict(self) -> dict[str, Any]:
        short = self.per_session[~self.per_session["met"]]
        return {
            "departures": self.departures,
            "met": self.met,
            "shortfall_kwh": round(self.shortfall_kwh, 3),
            "missed": [
                {
                    "session_id": r.session_id,
                    "vehicle_id": r.vehicle_id,
                    "departure": r.departure.isoformat(),
                    "shortfall_kwh": round(float(r.shortfall_kwh), 3),
                    "reason": r.reason,
                }
                for r in short.itertuples()
            ],
        }


@dataclass(frozen=True)
class Outcome:
    """Everything a report needs about one plan."""

    plan: Plan
    site_load_kw: pd.Series
    bill: Bill
    readiness: Readiness

    @property
    def strategy(self) -> str:
        return self.plan.strategy

    @property
    def peak_kw(self) -> float:
        """Highest interval-average import at the meter [kW]."""
        return float(max(self.site_load_kw.max(), 0.0))

    @property
    def energy_kwh(self) -> float:
        """Energy imported at the meter, building included [kWh]."""
        dt_h = self.plan.scenario.horizon.step_hours
        return float(self.site_load_kw.clip(lower=0).sum() * dt_h)

    @property
    def export_kwh(self) -> float:
        """Energy exported at the meter [kWh] (≥ 0)."""
        dt_h = self.plan.scenario.horizon.step_hours
        return float((-self.site_load_kw).clip(lower=0).sum() * dt_h)

    @property
    def charging_kwh(self) -> float:
        """Net energy delivered to vehicles at the chargers [kWh]."""
        return float(self.plan.delivered_kwh().sum())

    @property
    def overload(self) -> dict[str, float]:
        """Steps where import exceeds the service limit, and by how much [kW]."""
        limit = self.plan.scenario.site.service_limit_kw
        over = self.site_load_kw - limit
        return {
            "service_limit_kw": limit,
            "steps": int((over > OVERLOAD_TOLERANCE_KW).sum()),
            "max_kw": round(float(max(over.max(), 0.0)), 3),
        }

    def summary(self) -> dict[str, Any]:
        """The public JSON summary of a plan (documented in README, "JSON contracts")."""
        return {
            "strategy": self.strategy,
            "status": self.plan.status,
            "bill": self.bill.summary(),
            "peak_kw": round(self.peak_kw, 3),
            "energy_kwh": round(self.energy_kwh, 3),
            "export_kwh": round(self.export_kwh, 3),
            "charging_kwh": round(self.charging_kwh, 3),
            "readiness": self.readiness.to_dict(),
            "overload": self.overload,
            **({"solver": self._solver_info()} if "solver_status" in self.plan.info else {}),
        }

    def _solver_info(self) -> dict[str, Any]:
        info = self.plan.info
        keys = ("solver", "solver_status", "objective", "gap", "exact", "approximations",
                "columns", "rows", "integer_columns", "build_s", "solve_s")
        out = {k: info[k] for k in keys if k in info}
        for k in ("objective", "build_s", "solve_s"):
            if k in out:
                out[k] = round(float(out[k]), 4)
        return out


def readiness(plan: Plan) -> Readiness:
    """Per-session energy delivered vs required, and SOC at departure.

    SOC at departure = arrival SOC + (η_c·charged − discharged/η_d) / usable kWh: energy at the
    charger reaches the battery through the charge efficiency η_c and leaves it through η_d.
    ``delivered_kwh`` is that net gain expressed at the charger (÷ η_c), so for V1G it is
    simply the energy charged.
    """
    scenario = plan.scenario
    arrays = scenario.session_arrays()
    battery = plan.battery_kw(arrays.efficiency, arrays.discharge_efficiency)
    gain_kwh = np.asarray(battery.sum(axis=1)).ravel() * scenario.horizon.step_hours
    delivered = gain_kwh / arrays.efficiency  # charger-side equivalent of the battery's gain
    shortfall = np.maximum(arrays.energy_kwh - delivered, 0.0)
    departure_soc = arrays.arrival_soc + gain_kwh / arrays.usable_kwh
    met = shortfall <= MET_TOLERANCE_KWH
    reason = np.full(len(arrays), "", dtype=object)
    missed = np.flatnonzero(~met)
    if missed.size:
        dt_h = scenario.horizon.step_hours
        possible = arrays.max_energy_kwh(dt_h)
        avail = arrays.availability(scenario.horizon.n_steps)
        at_limit = plan.site_load_kw() >= scenario.site.service_limit_kw - 1e-6
        limited = np.asarray(avail.multiply(at_limit[None, :]).sum(axis=1)).ravel() > 0
        for i in missed:
            plugged_h = float(avail[[i], :].sum()) * dt_h
            if arrays.energy_kwh[i] > possible[i] + MET_TOLERANCE_KWH:
                reason[i] = (f"dwell too short or charger too small: {plugged_h:.2f} h at "
                             f"{arrays.max_kw[i]:g} kW delivers at most {possible[i]:.1f} kWh")
            elif limited[i]:
                reason[i] = (f"site service limit {scenario.site.service_limit_kw:g} kW was "
                             "reached while it was plugged in")
            else:
                reason[i] = f"the {plan.strategy} strategy did not deliver it"
    frame = pd.DataFrame(
        {
            "session_id": [s.id for s in scenario.sessions],
            "vehicle_id": [s.vehicle_id for s in scenario.sessions],
            "charger_id": [s.charger_id for s in scenario.sessions],
            "arrival": [s.arrival for s in scenario.sessions],
            "departure": [s.departure for s in scenario.sessions],
            "required_kwh": arrays.energy_kwh,
            "delivered_kwh": delivered,
            "shortfall_kwh": shortfall,
            "arrival_soc": arrays.arrival_soc,
            "departure_soc": departure_soc,
            "target_soc": arrays.target_soc,
            "met": met,
            "reason": reason,
        }
    )
    return Readiness(frame)


def evaluate(plan: Plan) -> Outcome:
    """Site load, bill and readiness of ``plan``."""
    scenario = plan.scenario
    site = pd.Series(plan.site_load_kw(), index=scenario.horizon.index, name="kw")
    bill = compute_bill(scenario.tariff, site, billing_cycle_day=scenario.billing_cycle_day,
                        export_price_per_kwh=scenario.v2g.export_price_per_kwh,
                        resolution_min=scenario.horizon.resolution_min)
    return Outcome(plan=plan, site_load_kw=site, bill=bill, readiness=readiness(plan))


def plan_frame(plan: Plan) -> pd.DataFrame:
    """Long table, one row per session per plugged-in step: power and SOC at the step's end.

    Columns: timestamp (step start), step (its index on the horizon), vehicle_id, session_id,
    charger_id, power_kw, soc.
    """
    scenario = plan.scenario
    arrays = scenario.session_arrays()
    charge = plan.charge_kw.tocsr()
    charge.sort_indices()
    lengths = np.diff(charge.indptr)
    row = np.repeat(np.arange(len(arrays)), lengths)
    dt_h = scenario.horizon.step_hours
    power = charge.data.copy()
    battery = charge.data * arrays.efficiency[row]
    if plan.discharge_kw is not None:  # same availability pattern as charge_kw
        dis = plan.discharge_kw.tocsr()
        dis.sort_indices()
        power = power - dis.data
        battery = battery - dis.data / arrays.discharge_efficiency[row]
    running = np.cumsum(battery * dt_h)
    row_start = np.concatenate(([0.0], running))[charge.indptr[:-1]]
    soc = arrays.arrival_soc[row] + (running - row_start[row]) / arrays.usable_kwh[row]
    session_ids = np.array([s.id for s in scenario.sessions], dtype=object)
    vehicle_ids = np.array([s.vehicle_id for s in scenario.sessions], dtype=object)
    charger_ids = np.array([s.charger_id for s in scenario.sessions], dtype=object)
    return pd.DataFrame(
        {
            "timestamp": scenario.horizon.index[charge.indices],
            "step": charge.indices,
            "vehicle_id": vehicle_ids[row],
            "session_id": session_ids[row],
            "charger_id": charger_ids[row],
            "power_kw": power,
            "soc": soc,
        }
    )
