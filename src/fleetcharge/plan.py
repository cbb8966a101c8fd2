"""The one result type every strategy returns, so every report compares like with like."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from fleetcharge.domain import Scenario


@dataclass(frozen=True)
class Plan:
    """A charging schedule on the scenario's horizon.

    Attributes
    ----------
    strategy : str
        Name of the strategy that produced it (``unmanaged``, ``balanced``, ``optimal``, …).
    scenario : Scenario
        The scenario it plans.
    charge_kw : scipy.sparse.csr_array
        (n_sessions × n_steps) interval-average charging power at the charger (grid side) [kW].
        Entries exist only where the session is plugged in (see ``SessionArrays.availability``).
    discharge_kw : scipy.sparse.csr_array or None
        Same shape, discharge power at the charger [kW] ≥ 0 (V2G); ``None`` for V1G plans.
    status : str
        ``"ok"`` for a complete plan; strategies that solve an optimisation report the solver's
        status vocabulary here.
    info : dict
        Strategy-specific facts (solver objective, timings, gap, notes).
    """

    strategy: str
    scenario: Scenario
    charge_kw: sp.csr_array
    discharge_kw: sp.csr_array | None = None
    status: str = "ok"
    info: dict[str, Any] = field(default_factory=dict)

    def net_charge_kw(self) -> sp.csr_array:
        """Charge minus discharge per session and step [kW]."""
        if self.discharge_kw is None:
            return self.charge_kw
        return (self.charge_kw - self.discharge_kw).tocsr()

    def charging_load_kw(self) -> np.ndarray:
        """Sum over sessions of net charging power in each step [kW]."""
        return np.asarray(self.net_charge_kw().sum(axis=0)).ravel()

    def site_load_kw(self) -> np.ndarray:
        """Net load at the meter: building + charging − discharging [kW]; import positive."""
        return self.scenario.building_kw() + self.charging_load_kw()

    def delivered_kwh(self) -> np.ndarray:
        """Net energy delivered at the charger to each session [kWh]."""
        return np.asarray(self.net_charge_kw().sum(axis=1)).ravel() * self.scenario.horizon.step_hours

    def battery_kw(self, charge_efficiency: np.ndarray,
                   discharge_efficiency: np.ndarray) -> sp.csr_array:
        """Power into each battery per step, η_c·c − d/η_d [kW] (per-session efficiencies)."""
        into = self.charge_kw.multiply(charge_efficiency[:, None])
        if self.discharge_kw is not None:
            into = into - self.discharge_kw.multiply(1.0 / discharge_efficiency[:, None])
        return sp.csr_array(into)

    def discharged_kwh(self) -> np.ndarray:
        """Energy discharged at the charger by each session [kWh] (0 for V1G plans)."""
        if self.discharge_kw is None:
            return np.zeros(self.charge_kw.shape[0])
        return np.asarray(self.discharge_kw.sum(axis=1)).ravel() * self.scenario.horizon.step_hours
