"""Domain objects: chargers, vehicles, plug-in sessions, the site, and a whole scenario.

They are validated once at the input edge (``fleetcharge.scenario``) and immutable afterwards.
Units are in the names: ``*_kw`` interval-average power, ``*_kwh`` energy, ``*_soc`` a fraction
0–1 of usable capacity. ``energy_kwh`` of a session is energy at the charger (as a charging
back-end meters it); charge efficiency only enters the battery's SOC:
``Δsoc = η_c · E_charger / usable_kwh``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fleetcharge.timegrid import Horizon

if TYPE_CHECKING:
    from fleetcharge.tariff.model import Tariff

CurrentType = Literal["AC", "DC"]


@dataclass(frozen=True)
class Charger:
    """One charging port (EVSE connector).

    ``max_kw``/``min_kw`` are at the grid side. ``min_kw`` is the lowest non-zero setpoint the
    port accepts (the 6 A J1772 floor on AC: 6 A × voltage × phases). ``voltage_v`` is
    line-to-neutral for single phase and line-to-line for three phase; see :meth:`amps_to_kw`.
    """

    id: str
    max_kw: float
    min_kw: float = 0.0
    current_type: CurrentType = "AC"
    phases: int = 1
    voltage_v: float = 240.0
    bidirectional: bool = False
    j3072_certified: bool = False

    def amps_to_kw(self, amps: np.ndarray | float) -> np.ndarray | float:
        """Convert a per-phase current limit to power [kW] at unity power factor.

        Single phase: P = V·I; three phase with line-to-line V: P = √3·V·I (IEC 61851 / OCPP
        practice of per-phase current limits).
        """
        factor = np.sqrt(3.0) if self.phases == 3 else float(self.phases)
        return factor * self.voltage_v * np.asarray(amps) / 1000.0

    def kw_to_amps(self, kw: np.ndarray | float) -> np.ndarray | float:
        """Inverse of :meth:`amps_to_kw` [A per phase]."""
        factor = np.sqrt(3.0) if self.phases == 3 else float(self.phases)
        return np.asarray(kw) * 1000.0 / (factor * self.voltage_v)


@dataclass(frozen=True)
class VehicleType:
    """A vehicle model: battery and on-board/off-board charging limits."""

    name: str
    usable_kwh: float
    max_ac_kw: float
    max_dc_kw: float
    charge_efficiency: float = 0.92
    bidirectional: bool = False
    chemistry: str = "NMC"
    bidirectional_modes: tuple[CurrentType, ...] = ("AC", "DC")  # where it can discharge
    j3072_certified: bool = False  # on-board inverter certified to SAE J3072 (AC export)
    max_discharge_kw: float | None = None  # None: the same as its charging limit
    discharge_efficiency: float = 0.92  # battery → grid

    def max_kw_on(self, charger: Charger) -> float:
        """Power limit of this vehicle on ``charger`` [kW]: AC is capped by the on-board charger."""
        vehicle_kw = self.max_ac_kw if charger.current_type == "AC" else self.max_dc_kw
        return min(charger.max_kw, vehicle_kw)

    def max_discharge_kw_on(self, charger: Charger) -> float:
        """Discharge limit on ``charger`` [kW] if both ends are bidirectional there, else 0."""
        if not (self.bidirectional and charger.bidirectional
                and charger.current_type in self.bidirectional_modes):
            return 0.0
        limit = self.max_kw_on(charger)
        return limit if self.max_discharge_kw is None else min(limit, self.max_discharge_kw)


@dataclass(frozen=True)
class Vehicle:
    """One vehicle of the fleet."""

    id: str
    type: VehicleType
    home_charger_id: str | None = None
    target_soc: float = 0.9
    min_soc: float = 0.1


@dataclass(frozen=True)
class Session:
    """A plug-in session: the vehicle is at ``charger_id`` over ``[arrival, departure)``.

    ``energy_kwh`` is the energy the vehicle should take at the charger before it leaves;
    ``arrival_soc`` and ``target_soc`` are the SOC on arrival and the SOC wanted at departure.
    The loader fills all three consistently: ``target_soc = arrival_soc + η_c·energy_kwh/usable``.
    ``max_kw`` is the effective power cap (charger, vehicle and any session cap).
    """

    id: str
    vehicle_id: str
    charger_id: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    energy_kwh: float
    arrival_soc: float
    target_soc: float
    max_kw: float


InterconnectionStatus = Literal["none", "applied", "approved"]


@dataclass(frozen=True)
class Interconnection:
    """The site's agreement with the utility to run generation (V2G) in parallel with the grid.

    Export to the grid needs an approved agreement with a non-zero ``export_limit_kw``; without
    one, discharge may only lower the site's own import (behind the meter, non-export).
    """

    status: InterconnectionStatus = "none"
    export_limit_kw: float = 0.0
    anti_islanding: bool = False  # UL 1741 / IEEE 1547 protection confirmed on site

    @property
    def export_allowed_kw(self) -> float:
        """Export the site may actually send to the grid [kW]: 0 unless approved."""
        return self.export_limit_kw if self.status == "approved" else 0.0


@dataclass(frozen=True)
class Site:
    """The depot's grid connection and its other (building) load."""

    timezone: str
    service_limit_kw: float
    building_load_kw: pd.Series | None = None  # on the horizon index, interval-average kW
    interconnection: Interconnection = Interconnection()


@dataclass(frozen=True)
class Disruptions:
    """What goes wrong at the depot, and how often (readiness-risk Monte Carlo).

    With probability ``p_late`` a vehicle comes back late by an exponential delay with mean
    ``late_mean_min`` [min]; likewise ``p_early``/``early_mean_min`` for leaving early; the
    route energy is scaled by a mean-one lognormal factor with ``route_sigma``.
    """

    p_late: float = 0.2
    late_mean_min: float = 45.0
    p_early: float = 0.1
    early_mean_min: float = 30.0
    route_sigma: float = 0.15


@dataclass(frozen=True)
class V2GSettings:
    """What a V2G study needs beyond the fleet: prices, programs, degradation, economics.

    ``export_price_per_kwh`` (on the horizon index) overrides the tariff's sell rates;
    ``programs`` are :class:`fleetcharge.v2g.programs.Program` objects; ``degradation_per_kwh``
    overrides the chemistry presets of :mod:`fleetcharge.v2g.degradation` [$/kWh leaving the
    battery]; ``premium_per_port_usd`` is the extra cost of a bidirectional port.
    """

    degradation_per_kwh: float | None = None
    export_price_per_kwh: pd.Series | None = None
    programs: tuple = ()
    premium_per_port_usd: float = 0.0
    discount_rate: float = 0.07
    years: int = 10
    readiness_risk_threshold: float = 0.05
    disruptions: Disruptions = Disruptions()


@dataclass(frozen=True)
class Scenario:
    """Everything a strategy needs: site, fleet, sessions, tariff and the time grid."""

    name: str
    site: Site
    chargers: tuple[Charger, ...]
    vehicle_types: tuple[VehicleType, ...]
    vehicles: tuple[Vehicle, ...]
    sessions: tuple[Session, ...]
    tariff: "Tariff"
    horizon: Horizon
    billing_cycle_day: int = 1
    metadata: dict = field(default_factory=dict)
    v2g: V2GSettings = V2GSettings()

    def charger(self, charger_id: str) -> Charger:
        """The charger with this id."""
        return self._chargers_by_id[charger_id]

    def vehicle(self, vehicle_id: str) -> Vehicle:
        """The vehicle with this id."""
        return self._vehicles_by_id[vehicle_id]

    @cached_property
    def _chargers_by_id(self) -> dict[str, Charger]:
        return {c.id: c for c in self.chargers}

    @cached_property
    def _vehicles_by_id(self) -> dict[str, Vehicle]:
        return {v.id: v for v in self.vehicles}

    def building_kw(self) -> np.ndarray:
        """Building load on the horizon [kW]; zeros when the site has none."""
        if self.site.building_load_kw is None:
            return np.zeros(self.horizon.n_steps)
        return self.site.building_load_kw.to_numpy(dtype=float)

    def session_arrays(self) -> "SessionArrays":
        """Sessions as aligned numpy arrays, the form strategies and accounting work on."""
        return SessionArrays.from_scenario(self)


@dataclass(frozen=True)
class SessionArrays:
    """Column view of the sessions (one entry per session), mapped onto the horizon.

    ``vehicle_index`` points into ``Scenario.vehicles``. ``first``/``stop`` and the fractions
    come from :meth:`Horizon.availability`.
    """

    vehicle_index: np.ndarray
    energy_kwh: np.ndarray
    max_kw: np.ndarray
    efficiency: np.ndarray
    discharge_efficiency: np.ndarray
    usable_kwh: np.ndarray
    arrival_soc: np.ndarray
    target_soc: np.ndarray
    first: np.ndarray
    stop: np.ndarray
    first_fraction: np.ndarray
    last_fraction: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> "SessionArrays":
        s = scenario.sessions
        v_index = {v.id: i for i, v in enumerate(scenario.vehicles)}
        vehicles = scenario._vehicles_by_id
        arrival = pd.DatetimeIndex([x.arrival for x in s]) if s else pd.DatetimeIndex([], tz="UTC")
        departure = pd.DatetimeIndex([x.departure for x in s]) if s else arrival
        first, stop, ff, lf = scenario.horizon.availability(arrival, departure)
        return cls(
            vehicle_index=np.array([v_index[x.vehicle_id] for x in s], dtype=np.int64),
            energy_kwh=np.array([x.energy_kwh for x in s], dtype=float),
            max_kw=np.array([x.max_kw for x in s], dtype=float),
            efficiency=np.array(
                [vehicles[x.vehicle_id].type.charge_efficiency for x in s], dtype=float
            ),
            discharge_efficiency=np.array(
                [vehicles[x.vehicle_id].type.discharge_efficiency for x in s], dtype=float
            ),
            usable_kwh=np.array([vehicles[x.vehicle_id].type.usable_kwh for x in s], dtype=float),
            arrival_soc=np.array([x.arrival_soc for x in s], dtype=float),
            target_soc=np.array([x.target_soc for x in s], dtype=float),
            first=first,
            stop=stop,
            first_fraction=ff,
            last_fraction=lf,
        )

    def __len__(self) -> int:
        return len(self.energy_kwh)

    def availability(self, n_steps: int) -> sp.csr_array:
        """Available fraction of each step while plugged in, (n_sessions × n_steps) CSR [0–1].

        The sparsity pattern is the set of (session, step) pairs where a charging variable exists
        (absent is not zero: a step outside the dwell has no entry). Column indices are sorted
        within each row, so ``data[indptr[i]:indptr[i+1]]`` runs through session i in time order.
        """
        lengths = self.stop - self.first
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        row_of_entry = np.repeat(np.arange(len(lengths)), lengths)
        indices = np.arange(indptr[-1]) - indptr[:-1][row_of_entry] + self.first[row_of_entry]
        data = np.ones(indptr[-1])
        has = lengths > 0
        data[indptr[:-1][has]] = self.first_fraction[has]
        data[indptr[1:][has] - 1] = self.last_fraction[has]
        return sp.csr_array((data, indices, indptr), shape=(len(lengths), n_steps))

    def max_energy_kwh(self, step_hours: float) -> np.ndarray:
        """Most energy each session can take at full power over its available steps [kWh]."""
        n = self.stop - self.first
        full_steps = np.where(
            n >= 2,
            n - 2 + self.first_fraction + self.last_fraction,
            np.where(n == 1, self.first_fraction, 0.0),
        )
        return self.max_kw * full_steps * step_hours
