"""The live depot controller: live state → rolling re-plan → charging profiles → stations.

The central system (:mod:`fleetcharge.ops.csms`) reports what happens at the depot; this module
decides what the chargers should do about it:

1. **State.** Who is plugged in where comes from the store's open transactions, with the
   vehicle's needs (departure, target SOC or energy; from NotifyEVChargingNeeds, the scenario's
   matching session or a dispatcher), the SOC — the latest SoC meter reading less half its
   resolution (:func:`soc_lower_bound`), else the arrival SOC plus the metered energy
   (``soc = soc_arrival + η_c·E/usable``) — and the energy metered so far.
   Expected arrivals are the scenario's sessions not started yet. The site meter is rebuilt
   from the stored energy registers as interval averages on the scenario's resolution (the
   demand interval, DESIGN §3), plus the scenario's building load; the energy already metered
   in the current interval is added to the first step's non-charging load, because the demand
   meter averages the whole interval.
2. **Re-plan.** :func:`fleetcharge.strategies.rolling.replan` (or any ``planner`` with its
   signature) runs in a worker thread with a timeout. The month-to-date metered load enters as
   ``LiveState.metered_kw``, so the planner treats peaks already incurred as floors and never
   pays for a peak twice; the peaks are also stored (``Store.update_peak``). Plans fill
   those peaks only up to a control margin below them (:data:`PEAK_MARGIN_SHARE`).
3. **Profiles.** One TxProfile per open transaction (stack level 1, profile id fixed per
   transaction), in the station's rate unit and period limit (:mod:`fleetcharge.ops.profiles`),
   then GetCompositeSchedule to verify and store what the station will actually do. A vehicle
   whose arrival the last plan expected gets that plan's profile at once, before the re-plan.
4. **V2G.** The chargers whose station is connected over OCPP 2.1 and bidirectional enter the
   state as ``LiveState.discharge_chargers``: only there may the re-plan discharge (where the
   V2G stack check lets the pair), and the TxProfile carries it as ``CentralSetpoint`` periods
   (negative setpoint, ``dischargeLimit`` = setpoint ≤ 0). Stations on 1.6 and 2.0.1 are planned
   V1G. Meter readings are compared with the composite as net power, import − export.

Events that trigger a re-plan: a transaction start or stop, new needs, a meter reading that
deviates from the composite schedule (see :data:`DEVIATION_MIN_KW`), a station going offline or
becoming Faulted/Unavailable (or recovering), a dispatcher change and :meth:`request_replan`;
and, as in any receding-horizon controller, every step boundary (``periodic``). Requests are
coalesced: after the first one the controller waits ``debounce_s`` and then plans once for
everything that arrived meanwhile, so 50 arrivals cost one or two solves.

Fail safe (issue 5): a planner exception, a non-optimal status or a timeout keeps the last good
plan's profiles in the stations (nothing is sent), or, before the first plan, the full-power
TxDefaultProfile set at boot; a failure never causes a profile to be sent, so never a zero one.
"""

from __future__ import annotations

import asyncio
import calendar
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fleetcharge.domain import Charger, Scenario, Session
from fleetcharge.dr.events import DREvent
from fleetcharge.ops import profiles
from fleetcharge.ops.clock import Clock
from fleetcharge.ops.store import MeterSample, Store, TransactionRecord
from fleetcharge.plan import Plan
from fleetcharge.strategies.rolling import LiveState, PluggedVehicle, peaks_so_far, replan

LOG = logging.getLogger(__name__)

MATCH_WINDOW = pd.Timedelta(minutes=30)
"""A transaction belongs to the vehicle's scenario session arriving within ± this of its start
(depot wire conventions)."""
DEFAULT_DWELL = pd.Timedelta(hours=12)
"""Departure assumed for a vehicle with no matching session and no NotifyEVChargingNeeds,
until a dispatcher sets one."""
FAULT_STATUSES = frozenset({"Faulted", "Unavailable"})
"""Connector states in which a vehicle cannot charge (1.6 ChargePointStatus / 2.x
ConnectorStatusEnumType); its session leaves the plan."""
DEVIATION_MIN_KW = 1.0
DEVIATION_SHARE = 0.10
"""A meter reading deviates from plan when |measured − composite| exceeds
max(:data:`DEVIATION_MIN_KW`, :data:`DEVIATION_SHARE` × charger max_kw): 10 % of a port's power
is well above metering noise and J1772 current-control tolerance, and 1 kW keeps small ports
quiet. A vehicle drawing less because it reached its target does not count."""
PEAK_MARGIN_SHARE = 0.01
"""Plans fill month-to-date peaks only up to 1 % below them (at least 0.5 kW): stations follow a
profile to within rounding and timing error, and a plan that runs the night exactly at the peak
lifts it by that error every interval (measured: 143 → 165 kW over a 50-charger night at 300×;
with the margin 146 kW). See :func:`fleetcharge.strategies.rolling.planning_floors`."""
DEPARTURE_GUARD = pd.Timedelta(minutes=5)
"""Plans finish each vehicle 5 minutes before its departure: the last seconds of a plan that
charges until departure are lost to any profile that lands late (measured: 66 Wh short on a
loaded machine at 300×). After the guarded end the TxProfile runs out and the station's
full-power TxDefaultProfile tops up a vehicle that is still short."""
DEVIATION_COOLDOWN = pd.Timedelta(minutes=15)
"""At most one deviation re-plan per transaction per demand interval (simulated time)."""
METER_RECHECK = pd.Timedelta(minutes=30)
"""Interval averages younger than this are recomputed at each re-plan, so meter values that a
station queued while offline and delivers late still count; registers are read from this much
before the first recomputed interval, so a meter reporting every 30 min is interpolated."""
METER_CARRY = pd.Timedelta(minutes=15)
"""Longest gap over which an open transaction's last reading is carried forward to now."""
TX_PROFILE_ID_BASE = 1000
"""TxProfile id = this + the transaction's row id: fixed per transaction, so each re-plan
replaces the previous profile (1.6 §5.16.3 / 2.x K01.FR.05)."""
TX_PROFILE_STACK_LEVEL = 1
ENERGY_REGISTER = "Energy.Active.Import.Register"
EXPORT_REGISTER = "Energy.Active.Export.Register"
POWER = "Power.Active.Import"
POWER_EXPORT = "Power.Active.Export"
DISCHARGE_NOISE_KW = 1e-3
"""Planned discharge smaller than this [kW] (1 W) is solver noise, clipped silently on a station
that cannot discharge."""
METER_LOOKBACK = pd.Timedelta(hours=1)
"""How far back each re-plan re-reads the readings of transactions it already knows, so that
meter values a station queued while offline (OCPP 1.6 §4.10 / 2.x E04) still count."""

Planner = Callable[..., Plan]
"""``planner(state, now, horizon_hours=..., time_limit_s=...) -> Plan`` like ``rolling.replan``."""


@dataclass(frozen=True)
class ProfileAnswer:
    """A station's answer to SetChargingProfile and, if asked for, its composite schedule."""

    status: str
    composite: dict | None = None


class StationLink(Protocol):
    """What the controller needs of a connected station (implemented by ``csms.Station``)."""

    id: str
    version: str
    charger: Charger
    rate_unit: str
    ready: bool

    def max_periods_for(self, ocpp_tx_id: str) -> int: ...

    def has_transaction(self, ocpp_tx_id: str) -> bool: ...

    async def push_profile(self, payload: dict, *, purpose: str, evse_id: int,
                           ocpp_tx_id: str | None = None,
                           composite_duration_s: int | None = None) -> ProfileAnswer: ...


@dataclass(frozen=True)
class Needs:
    """Departure and energy of a vehicle's session, and where they came from."""

    departure_at: pd.Timestamp | None
    energy_kwh: float | None
    source: str


@dataclass(frozen=True)
class SessionView:
    """An open transaction as the planner and the dispatcher see it.

    ``soc`` is measured (``soc_measured``) or estimated from the energy metered; ``target_soc``
    is the dispatcher's, or follows from the energy still needed; ``remaining_kwh`` is the
    energy at the charger still to deliver [kWh].
    """

    vehicle_id: str | None
    charger_id: str
    ocpp_tx_id: str
    tx_row_id: int
    evse_id: int
    started_at: pd.Timestamp
    departure_at: pd.Timestamp
    soc: float | None
    soc_measured: bool
    target_soc: float | None
    delivered_kwh: float
    remaining_kwh: float | None
    needs_source: str | None


@dataclass
class PlanRecord:
    """The last good plan and what was sent for it."""

    plan: Plan
    made_at: pd.Timestamp
    reason: str
    answers: dict[str, ProfileAnswer] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    """Wall seconds of building the state, solving and sending the profiles."""


@dataclass(frozen=True)
class _Expected:
    """kW per step a station will deliver for a transaction (its composite schedule)."""

    start: pd.Timestamp
    step_s: float
    kw: np.ndarray
    target_soc: float | None


@dataclass
class _TxMeter:
    """What a transaction's meter readings say so far; cached between re-plans and extended
    with the readings stored since ``read_to``."""

    read_to: pd.Timestamp
    first_wh: dict[str, float] = field(default_factory=dict)
    last_wh: dict[str, float] = field(default_factory=dict)
    last_at: pd.Timestamp | None = None
    power_w: float | None = None
    soc_percent: float | None = None

    def add(self, rows: pd.DataFrame) -> None:
        """Fold in time-ordered phase-less readings of this transaction."""
        for measurand in (ENERGY_REGISTER, EXPORT_REGISTER):
            values = rows.loc[rows["measurand"] == measurand, "value"]
            if len(values):
                self.first_wh.setdefault(measurand, float(values.iloc[0]))
                self.last_wh[measurand] = float(values.iloc[-1])
        registers = rows.loc[rows["measurand"] == ENERGY_REGISTER, "timestamp"]
        if len(registers):
            self.last_at = registers.iloc[-1]
            power = rows.loc[(rows["measurand"] == POWER) & (rows["timestamp"] == self.last_at),
                             "value"]
            self.power_w = float(power.iloc[-1]) if len(power) else None
        soc = rows.loc[rows["measurand"] == "SoC", "value"]
        if len(soc):
            self.soc_percent = float(soc.iloc[-1])
        if len(rows):
            self.read_to = max(self.read_to, rows["timestamp"].iloc[-1])

    def register_kwh(self, measurand: str) -> float:
        """Energy counted by ``measurand``'s register since its first reading [kWh]."""
        if measurand not in self.first_wh:
            return 0.0
        return (self.last_wh[measurand] - self.first_wh[measurand]) / 1000.0

    @property
    def delivered_kwh(self) -> float:
        """Net energy at the charger since the first reading: import − export [kWh]."""
        return self.register_kwh(ENERGY_REGISTER) - self.register_kwh(EXPORT_REGISTER)

    def register_at(self, now: pd.Timestamp) -> float | None:
        """The import register carried from its last reading to ``now`` at the power read with
        it, ``E(now) = E(t) + P(t)·(now − t)`` for at most :data:`METER_CARRY` [Wh]; None
        without a reading of both."""
        if self.last_at is None or self.power_w is None or now <= self.last_at:
            return None
        hours = min(now - self.last_at, METER_CARRY) / pd.Timedelta(hours=1)
        return self.last_wh[ENERGY_REGISTER] + self.power_w * hours

def soc_lower_bound(soc_percent: float, target_soc: float | None) -> float:
    """The least SOC a reading can stand for [0–1]: the reading less half its resolution.

    Stations round the EV's SoC before sending it (whole percent is common, the simulator
    sends 0.1 %), so ``45.3`` means anything in [45.25, 45.35) %; planning from the reading
    itself can leave a vehicle up to half a step short (0.05 % of an 89 kWh van is 48 Wh),
    planning from the lower end never can. The resolution is taken from the reading's decimals
    (``45`` → 1 %, ``45.3`` → 0.1 %, at most 0.001 %). A reading at or above the target is
    taken as it is: the vehicle is full for this session and planning more for it would only
    schedule power it will not draw.
    """
    if target_soc is not None and soc_percent >= 100.0 * target_soc:
        return float(np.clip(soc_percent / 100.0, 0.0, 1.0))
    decimals = next((k for k in range(4) if round(soc_percent, k) == soc_percent), 3)
    return float(np.clip((soc_percent - 0.5 * 10.0 ** -decimals) / 100.0, 0.0, 1.0))


def billing_cycle_start(now: pd.Timestamp, timezone: str, day: int) -> pd.Timestamp:
    """Local midnight starting the billing cycle that contains ``now`` (cycle day ``day``,
    clamped to the month's length)."""
    local = now.tz_convert(timezone)
    year, month = local.year, local.month
    if local.day < min(day, calendar.monthrange(year, month)[1]):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    first = min(day, calendar.monthrange(year, month)[1])
    return pd.Timestamp(year=year, month=month, day=first).tz_localize(timezone)


def interval_kw(registers: pd.DataFrame, boundaries: pd.DatetimeIndex) -> np.ndarray:
    """Interval-average power from cumulative energy registers [kW], summed over meters.

    Each meter's register (Wh, column ``value``, grouped by ``charge_point_id``/``evse_id``) is
    interpolated linearly at the interval boundaries and differenced: the average of a
    piecewise-linear energy curve, ``P = ΔE / Δt`` (DESIGN §3). Before a meter's first and after
    its last reading its register is taken as flat.
    """
    bounds_s = boundaries.as_unit("ns").asi8 / 1e9
    hours = np.diff(bounds_s) / 3600.0
    total = np.zeros(len(boundaries) - 1)
    for _, meter in registers.groupby(["charge_point_id", "evse_id"]):
        t_s = pd.DatetimeIndex(meter["timestamp"]).as_unit("ns").asi8 / 1e9
        energy_wh = np.interp(bounds_s, t_s, meter["value"].to_numpy(dtype=float))
        total += np.clip(np.diff(energy_wh), 0.0, None) / 1000.0 / hours
    return total


class DepotController:
    """Keeps the live depot state and drives the connected stations with the plan.

    Parameters
    ----------
    scenario : Scenario
        The depot: site, chargers, fleet, tariff and the expected sessions.
    store : Store
        Persistence shared with the central system.
    clock : Clock
        Simulated or wall time (shared with the central system).
    planner : callable
        ``planner(state, now, horizon_hours=, time_limit_s=) -> Plan``; default
        :func:`fleetcharge.strategies.rolling.replan`.
    replan_timeout_s : float
        Wall seconds a re-plan may take; the solver's own time limit is 80 % of it.
    debounce_s : float
        Wall seconds to wait after a re-plan request for more to coalesce.
    horizon_hours : float
        Planning horizon from now [h].
    deviation_kw : float, optional
        Fixed deviation threshold [kW] instead of the per-charger default.
    periodic : bool
        Also re-plan at every step boundary (simulated time), as a receding-horizon
        controller does: it catches up with what the events did not tell (energy a late
        profile could not deliver, batteries filling faster or slower than planned) and plans
        with the interval just completed in the month-to-date meter.
    peak_margin_share : float
        Control margin below the month-to-date peaks that plans fill for free
        (``LiveState.peak_margin_share``, :func:`fleetcharge.strategies.rolling.planning_floors`);
        default :data:`PEAK_MARGIN_SHARE`.
    departure_guard : pandas.Timedelta
        Plans finish each vehicle this much before its departure (``LiveState.departure_guard``);
        default :data:`DEPARTURE_GUARD`.
    """

    def __init__(self, scenario: Scenario, store: Store, clock: Clock, *,
                 planner: Planner = replan, replan_timeout_s: float = 60.0,
                 debounce_s: float = 1.0, horizon_hours: float = 24.0,
                 deviation_kw: float | None = None, periodic: bool = True,
                 peak_margin_share: float = PEAK_MARGIN_SHARE,
                 departure_guard: pd.Timedelta = DEPARTURE_GUARD) -> None:
        self.scenario, self.store, self.clock = scenario, store, clock
        self.peak_margin_share = peak_margin_share
        self.departure_guard = departure_guard
        self.planner = planner
        self.replan_timeout_s = replan_timeout_s
        self.debounce_s = debounce_s
        self.horizon_hours = horizon_hours
        self.deviation_kw = deviation_kw
        self.periodic = periodic
        self.stations: dict[str, StationLink] = {}
        self.last: PlanRecord | None = None
        self.replans = 0
        self.failures = 0
        #: Demand-response events the depot has accepted (OpenADR, see :meth:`set_dr_events`);
        #: every re-plan honours them.
        self.dr_events: tuple[DREvent, ...] = ()
        self.last_error: str | None = None
        self._chargers = {c.id: c for c in scenario.chargers}
        self._vehicles = {v.id: v for v in scenario.vehicles}
        self._sessions_of: dict[str, list[Session]] = {}
        for s in scenario.sessions:
            self._sessions_of.setdefault(s.vehicle_id, []).append(s)
        self._statuses: dict[tuple[str, int], str] = {}
        self._finished: set[str] = set()
        self._expected: dict[tuple[str, str], _Expected] = {}
        self._last_deviation: dict[tuple[str, str], pd.Timestamp] = {}
        self._arrival_sends: set[asyncio.Task] = set()
        self._metered = pd.Series(dtype=float)
        self._tx_meters: dict[tuple[str, str], _TxMeter] = {}
        self._meter_lock = threading.Lock()
        self._pending: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._plan_lock = asyncio.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="planner")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load connector states and start the re-plan loop (call inside the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for row in await asyncio.to_thread(self.store.connector_statuses):
            self._statuses[(row["cp"], row["evse"])] = row["status"]
        self._task = asyncio.create_task(self._run())
        self.request_replan("startup")

    async def stop(self) -> None:
        """Stop the re-plan loop; a planner still running is abandoned."""
        for task in [self._task, *self._arrival_sends]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._task, *self._arrival_sends] if t],
                             return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def busy(self) -> bool:
        """Whether a re-plan is requested or running (its profiles not all answered yet)."""
        return bool(self._wake and self._wake.is_set()) or self._plan_lock.locked()

    # -- what the central system asks ------------------------------------------------------------

    def has_charger(self, cp_id: str) -> bool:
        """Whether ``cp_id`` is a charger of the scenario."""
        return cp_id in self._chargers

    def charger(self, cp_id: str) -> Charger:
        """The scenario charger ``cp_id``."""
        return self._chargers[cp_id]

    def knows_vehicle(self, vehicle_id: str) -> bool:
        """Whether ``vehicle_id`` is a vehicle of the scenario (the ids the server authorises)."""
        return vehicle_id in self._vehicles

    def match_session(self, vehicle_id: str, started_at: pd.Timestamp) -> Session | None:
        """The scenario session of a transaction: the vehicle's session arriving closest to the
        start within :data:`MATCH_WINDOW`, else the one whose dwell contains the start."""
        sessions = self._sessions_of.get(vehicle_id, [])
        near = [s for s in sessions if abs(s.arrival - started_at) <= MATCH_WINDOW]
        if near:
            return min(near, key=lambda s: abs(s.arrival - started_at))
        return next((s for s in sessions if s.arrival <= started_at < s.departure), None)

    def needs_at_start(self, vehicle_id: str, started_at: pd.Timestamp) -> Needs:
        """Departure and energy of a new transaction from the scenario (1.6 has no
        NotifyEVChargingNeeds; for 2.x they hold until it arrives), else the defaults."""
        session = self.match_session(vehicle_id, started_at)
        if session is None:
            return Needs(started_at + DEFAULT_DWELL, None, "vehicle defaults")
        return Needs(session.departure, session.energy_kwh, "scenario")

    # -- events (called on the event loop) -------------------------------------------------------

    def station_ready(self, link: StationLink) -> None:
        """A station is connected and configured: profiles can be sent to it."""
        self.stations[link.id] = link
        self.request_replan(f"{link.id} online")

    def station_offline(self, cp_id: str) -> None:
        """A station's socket closed. Its vehicle keeps charging on the last TxProfile (1.6
        §3.13.6 / 2.x K11), so it stays in the plan; the others are re-planned around it."""
        self.stations.pop(cp_id, None)
        self.request_replan(f"{cp_id} offline")

    def connector_status(self, cp_id: str, evse_id: int, status: str) -> None:
        """A StatusNotification; entering or leaving Faulted/Unavailable re-plans."""
        before = self._statuses.get((cp_id, evse_id))
        self._statuses[(cp_id, evse_id)] = status
        if (before in FAULT_STATUSES) != (status in FAULT_STATUSES):
            self.request_replan(f"{cp_id} {status}")

    def transaction_started(self, cp_id: str, tx: TransactionRecord) -> None:
        """A vehicle plugged in (arrival): its planned profile at once, then a re-plan."""
        self._send_expected_profile(cp_id, tx)
        self.request_replan(f"{tx.vehicle_id or tx.id_tag} arrived at {cp_id}")

    def _send_expected_profile(self, cp_id: str, tx: TransactionRecord) -> None:
        """If the last plan expected this arrival (its scenario session), send that session's
        planned power as the TxProfile right away, so the vehicle follows the plan while the
        re-plan runs instead of charging at full power on the TxDefaultProfile."""
        link = self.stations.get(cp_id)
        if self.last is None or link is None or not link.ready or tx.vehicle_id is None:
            return
        session = self.match_session(tx.vehicle_id, tx.started_at)
        ids = [s.id for s in self.last.plan.scenario.sessions]
        if session is None or session.id not in ids:
            return
        view = SessionView(tx.vehicle_id, cp_id, tx.ocpp_tx_id, tx.id, tx.evse_id,
                           tx.started_at, session.departure, None, False, None, 0.0, None,
                           tx.needs_source)
        task = asyncio.create_task(self._send_tx_profile(
            self.last, link, ids.index(session.id), view, self.clock.now()))
        self._arrival_sends.add(task)
        task.add_done_callback(self._arrival_sends.discard)

    def transaction_stopped(self, cp_id: str, tx: TransactionRecord) -> None:
        """A vehicle left (departure)."""
        if tx.vehicle_id is not None:
            session = self.match_session(tx.vehicle_id, tx.started_at)
            if session is not None:
                self._finished.add(session.id)
        self._expected.pop((cp_id, tx.ocpp_tx_id), None)
        self.request_replan(f"{tx.vehicle_id or tx.id_tag} left {cp_id}")

    def needs_changed(self, cp_id: str, ocpp_tx_id: str) -> None:
        """New departure/energy for a transaction (NotifyEVChargingNeeds, late authorisation)."""
        self.request_replan(f"new needs for {cp_id} transaction {ocpp_tx_id}")

    def meter_reading(self, cp_id: str, samples: list[MeterSample]) -> None:
        """Compare metered power with the station's composite schedule; re-plan on deviation."""
        charger = self._chargers[cp_id]
        threshold = self.deviation_kw or max(DEVIATION_MIN_KW, DEVIATION_SHARE * charger.max_kw)
        socs = [s.value / 100.0 for s in samples if s.measurand == "SoC"]
        net_w = self._net_power_w(samples)
        for s in samples:
            if s.measurand != POWER or s.phase is not None or not s.ocpp_tx_id:
                continue
            key = (cp_id, s.ocpp_tx_id)
            expected = self._expected.get(key)
            if expected is None:
                continue
            at = pd.Timestamp(s.timestamp)
            step = int((at - expected.start).total_seconds() // expected.step_s)
            if not 0 <= step < len(expected.kw):
                continue
            planned_kw = float(expected.kw[step])
            measured_kw = net_w[(s.ocpp_tx_id, s.timestamp)] / 1000.0
            if not abs(measured_kw - planned_kw) > threshold:  # NaN: no composite there
                continue
            full = (expected.target_soc is not None and socs
                    and socs[-1] >= expected.target_soc - 0.005)
            if measured_kw < planned_kw and full:
                continue
            last = self._last_deviation.get(key)
            if last is not None and at - last < DEVIATION_COOLDOWN:
                continue
            self._last_deviation[key] = at
            self.request_replan(f"{cp_id} meters {measured_kw:.1f} kW, "
                                f"{planned_kw:.1f} kW planned")

    def set_dr_events(self, events: tuple[DREvent, ...]) -> None:
        """Accepted demand-response events changed (the OpenADR VEN calls this): re-plan with
        them, which sends new TxProfiles."""
        self.dr_events = tuple(events)
        self.request_replan(f"demand-response events: {len(self.dr_events)} active")

    def site_kw(self) -> float:
        """The last completed interval's metered site load [kW] (0 before any): the telemetry a
        demand-response program asks for."""
        return float(self._metered.iloc[-1]) if len(self._metered) else 0.0

    def live_state(self) -> tuple[LiveState, pd.Timestamp]:
        """Blocking (call in a worker thread): the planner's input now, and now (site time);
        what a demand-response decision is judged on."""
        now = self.clock.now().tz_convert(self.scenario.horizon.timezone)
        faulted = frozenset(cp for (cp, _), st in self._statuses.items()
                            if st in FAULT_STATUSES)
        state, _ = self._live_state(now, faulted, frozenset(self._finished))
        return state, now

    def request_replan(self, reason: str) -> None:
        """Ask for a re-plan soon (coalesced with other requests). Thread-safe: the REST API and
        a demand-response client may call it from other threads.

        Raises
        ------
        RuntimeError
            If the controller was not started.
        """
        if self._loop is None:
            raise RuntimeError("start() the DepotController before requesting re-plans")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._queue(reason)
        else:
            self._loop.call_soon_threadsafe(self._queue, reason)

    def _queue(self, reason: str) -> None:
        assert self._wake is not None
        self._pending.append(reason)
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if self.periodic:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._until_next_step_s())
                except TimeoutError:
                    self._queue("periodic re-plan")
            else:
                await self._wake.wait()
            await asyncio.sleep(self.debounce_s)
            self._wake.clear()
            reasons, self._pending = list(dict.fromkeys(self._pending)), []
            try:
                await self.replan_now("; ".join(reasons))
            except Exception:  # the loop must outlive a failed send
                LOG.exception("sending the profiles of a re-plan failed")

    def _until_next_step_s(self) -> float:
        """Wall seconds until the next step boundary of the scenario's grid (simulated time)."""
        step_s = self.scenario.horizon.resolution_min * 60.0
        now_s = self.clock.now().value / 1e9
        return self.clock.real_seconds(step_s - now_s % step_s)

    # -- the re-plan -----------------------------------------------------------------------------

    async def replan_now(self, reason: str) -> bool:
        """Build the live state, plan and send the profiles; False (and nothing sent) on failure.

        Only an optimal plan (status ``"ok"``) is acted on (STYLE house rule 4).
        """
        async with self._plan_lock:
            # site time: the sessions the planner mixes must share one zone
            now = self.clock.now().tz_convert(self.scenario.horizon.timezone)
            faulted = frozenset(cp for (cp, _), st in self._statuses.items()
                                if st in FAULT_STATUSES)
            t0 = time.perf_counter()
            try:
                state, views = await asyncio.to_thread(self._live_state, now, faulted,
                                                       frozenset(self._finished))
                t1 = time.perf_counter()
                plan = await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(
                        self.planner, state, now, horizon_hours=self.horizon_hours,
                        time_limit_s=0.8 * self.replan_timeout_s)),
                    timeout=self.replan_timeout_s)
                if plan.status != "ok":
                    raise RuntimeError(f"planner status {plan.status!r}")
            except Exception as exc:  # noqa: BLE001 - fail safe: any failure keeps what stations have
                self._fail(exc, reason)
                return False
            t2 = time.perf_counter()
            self.replans += 1
            self.last = PlanRecord(plan, now, reason)
            await self._send_profiles(self.last, views, now)
            self.last.timings_s.update(state=t1 - t0, solve=t2 - t1,
                                       send=time.perf_counter() - t2)
            LOG.info("re-plan (%s): %d sessions, %d plugged in; %s", reason,
                     len(plan.scenario.sessions), len(state.plugged),
                     ", ".join(f"{k} {v:.3f} s" for k, v in self.last.timings_s.items()))
            return True

    def _fail(self, exc: Exception, reason: str) -> None:
        self.failures += 1
        what = (f"timed out after {self.replan_timeout_s:g} s" if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}")
        self.last_error = f"re-plan ({reason}) failed: {what}"
        kept = ("the last good plan's profiles stay in the stations" if self.last
                else "stations charge on their full-power TxDefaultProfile")
        LOG.error("%s; %s", self.last_error, kept,
                  exc_info=None if isinstance(exc, TimeoutError) else exc)
        if isinstance(exc, TimeoutError):  # abandon the stuck solve, plan on a fresh thread
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="planner")

    def _live_state(self, now: pd.Timestamp, faulted: frozenset[str], finished: frozenset[str]
                    ) -> tuple[LiveState, list[SessionView]]:
        """Blocking (worker thread): the planner's input from the store, and the chargers that
        can take a discharge setpoint now (:meth:`_can_discharge`)."""
        views = self._views()
        metered, current_kwh = self._site_meter_kw(now, views)
        for label, kw in peaks_so_far(self.scenario, metered).items():
            self.store.update_peak(label, kw, at=now)
        plugged = tuple(
            PluggedVehicle(v.vehicle_id, v.charger_id, v.soc, v.departure_at.tz_convert(now.tz),
                           max(v.target_soc, v.soc))
            for v in views
            if v.vehicle_id is not None and v.soc is not None and v.target_soc is not None
            and v.needs_source is not None  # else the start is still being recorded
            and v.charger_id not in faulted and v.departure_at > now)
        busy = {v.vehicle_id for v in views}
        matched = set(finished)
        for v in views:
            session = self.match_session(v.vehicle_id, v.started_at) if v.vehicle_id else None
            if session is not None:
                matched.add(session.id)
        expected = tuple(s for s in self.scenario.sessions
                         if s.departure > now and s.arrival > now - MATCH_WINDOW
                         and s.id not in matched and s.vehicle_id not in busy)
        discharge = frozenset(cp for cp, link in self.stations.copy().items()
                              if self._can_discharge(link))
        return LiveState(self.scenario, plugged, expected, metered_kw=metered,
                         building_forecast_kw=self._building_forecast(now, current_kwh),
                         dr_events=self.dr_events, discharge_chargers=discharge,
                         peak_margin_share=self.peak_margin_share,
                         departure_guard=self.departure_guard), views

    def _views(self) -> list[SessionView]:
        """Blocking: every open transaction on a scenario charger as a :class:`SessionView`.

        Readings are read incrementally: for a transaction seen before, those stored since
        its last reading (at most :data:`METER_LOOKBACK` back); for a new one, since its start.
        """
        txs = [tx for tx in self.store.open_transactions() if tx.charge_point_id in self._chargers]
        now = self.clock.now()
        with self._meter_lock:
            keys = {(tx.charge_point_id, tx.ocpp_tx_id): tx for tx in txs}
            self._tx_meters = {k: m for k, m in self._tx_meters.items() if k in keys}
            if not txs:
                return []
            since = min(max(self._tx_meters[k].read_to, now - METER_LOOKBACK)
                        if k in self._tx_meters else tx.started_at for k, tx in keys.items())
            rows = self.store.meter_values(since=since)
            rows = rows[rows["phase"].isna()]
            for key, readings in rows.groupby(["charge_point_id", "ocpp_tx_id"]):
                if key in keys:
                    self._tx_meters.setdefault(key, _TxMeter(keys[key].started_at)).add(readings)
            for key, tx in keys.items():
                self._tx_meters.setdefault(key, _TxMeter(tx.started_at))
            return [self._view(tx, self._tx_meters[key]) for key, tx in keys.items()]

    def _view(self, tx: TransactionRecord, meter: _TxMeter) -> SessionView:
        delivered_kwh = meter.delivered_kwh
        departure = tx.departure_at if tx.departure_at is not None else (
            tx.started_at + DEFAULT_DWELL)
        vehicle = self._vehicles.get(tx.vehicle_id) if tx.vehicle_id else None
        if vehicle is None:
            return SessionView(tx.vehicle_id, tx.charge_point_id, tx.ocpp_tx_id, tx.id,
                               tx.evse_id, tx.started_at, departure, None, False, None,
                               delivered_kwh, None, tx.needs_source)
        eta, usable = vehicle.type.charge_efficiency, vehicle.type.usable_kwh
        if meter.soc_percent is not None:
            known_target = tx.target_soc if tx.target_soc is not None else (
                vehicle.target_soc if tx.energy_needed_kwh is None else None)
            # As old as its meter sample; not carried forward to now at the power read with
            # it: a profile may have lowered the power since, and an SOC guessed too high can
            # leave a vehicle short, one guessed too low only plans a little energy again.
            soc, measured = soc_lower_bound(meter.soc_percent, known_target), True
        else:
            session = self.match_session(vehicle.id, tx.started_at)
            if session is not None:
                arrival_soc = session.arrival_soc
            elif tx.energy_needed_kwh is not None:
                arrival_soc = vehicle.target_soc - eta * tx.energy_needed_kwh / usable
            else:
                arrival_soc = vehicle.min_soc
            soc = float(np.clip(arrival_soc + eta * delivered_kwh / usable, 0.0, 1.0))
            measured = False
        if tx.target_soc is not None:
            target = tx.target_soc
        elif tx.energy_needed_kwh is not None:
            # The need is energy at the charger from the arrival SOC. A kWh exported since
            # took 1/η_d from the battery and takes 1/η_c of import to put back: counted at
            # 1/(η_c·η_d), so the target stays the arrival SOC + η_c·E_needed/usable.
            counted = meter.register_kwh(ENERGY_REGISTER) - meter.register_kwh(EXPORT_REGISTER) / (
                eta * vehicle.type.discharge_efficiency)
            still = max(tx.energy_needed_kwh - counted, 0.0)
            target = min(1.0, soc + eta * still / usable)
        else:
            target = vehicle.target_soc
        remaining = max(target - soc, 0.0) * usable / eta
        return SessionView(vehicle.id, tx.charge_point_id, tx.ocpp_tx_id, tx.id, tx.evse_id,
                           tx.started_at, departure, soc, measured, target, delivered_kwh,
                           remaining, tx.needs_source)

    def _site_meter_kw(self, now: pd.Timestamp, views: list[SessionView]
                       ) -> tuple[pd.Series, float]:
        """Blocking: month-to-date site load as interval averages on the scenario resolution
        [kW], and the charging energy metered so far in the current interval [kWh].

        Charging load comes from the stored energy registers (:func:`interval_kw`: import less
        export on a depot with bidirectional chargers), plus the
        building load of the scenario (:meth:`_building_kw`) for complete intervals. The last
        :data:`METER_RECHECK` of intervals are recomputed each time (late meter values), older
        ones are cached. The registers of the open transactions (``views``) are carried
        forward to ``now`` (:meth:`_registers_now`).
        """
        step = pd.Timedelta(minutes=self.scenario.horizon.resolution_min)
        cycle = billing_cycle_start(now, self.scenario.horizon.timezone,
                                    self.scenario.billing_cycle_day).tz_convert("UTC")
        now = now.tz_convert("UTC")
        end = now.floor(step)
        kept = self._metered[self._metered.index >= cycle] if len(self._metered) else (
            self._metered)
        if kept.empty:
            since = cycle
            registers = self.store.meter_values(since=since, measurand=ENERGY_REGISTER)
            if registers.empty:
                return kept, 0.0
            first = min(end, max(cycle, registers["timestamp"].iloc[0].floor(step)))
        else:
            first = max(cycle, (kept.index[-1] + step - METER_RECHECK).floor(step))
            since = first - METER_RECHECK
            registers = self.store.meter_values(since=since, measurand=ENERGY_REGISTER)
        registers = registers[registers["phase"].isna()]
        bounds = pd.date_range(first, end, freq=step)
        if now > end:
            bounds = bounds.append(pd.DatetimeIndex([now]))
            registers = pd.concat([registers, self._registers_now(now, views)])
        charging = interval_kw(registers, bounds)
        if any(c.bidirectional for c in self.scenario.chargers):
            # the site meter sees import less export (V2G): without it the month-to-date peak
            # would be overstated, and plans would fill a "free" peak the site never reached
            # (export after its last reading is not carried forward: counted as none)
            exports = self.store.meter_values(since=since, measurand=EXPORT_REGISTER)
            charging = charging - interval_kw(exports[exports["phase"].isna()], bounds)
        current_kwh = 0.0
        if now > end:
            current_kwh = float(charging[-1]) * (now - end) / pd.Timedelta(hours=1)
            charging = charging[:-1]
        if len(charging):
            starts = bounds[:len(charging)]
            fresh = pd.Series(charging + self._building_kw(starts), index=starts)
            self._metered = pd.concat([kept[kept.index < first], fresh]) if len(kept) else fresh
        return self._metered, current_kwh

    def _registers_now(self, now: pd.Timestamp, views: list[SessionView]) -> pd.DataFrame:
        """Each open transaction's register carried to ``now`` (:meth:`_TxMeter.register_at`):
        meter values arrive every meter interval, and without this the energy since the last
        reading would look like room in the current interval."""
        rows = []
        with self._meter_lock:
            for v in views:
                meter = self._tx_meters.get((v.charger_id, v.ocpp_tx_id))
                value = None if meter is None else meter.register_at(now)
                if value is not None:
                    rows.append({"charge_point_id": v.charger_id, "evse_id": v.evse_id,
                                 "timestamp": now, "value": value})
        return pd.DataFrame(rows, columns=["charge_point_id", "evse_id", "timestamp", "value"])

    def _building_kw(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Building load expected at step starts ``index`` [kW]: the scenario's building load,
        repeated in whole days outside its horizon (weekday effects are not modelled)."""
        building = self.scenario.site.building_load_kw
        if building is None:
            return np.zeros(len(index))
        horizon = self.scenario.horizon
        span_ns = (horizon.end - horizon.start).value
        period_ns = max(span_ns // 86_400_000_000_000, 1) * 86_400_000_000_000
        if span_ns < 86_400_000_000_000:
            period_ns = span_ns
        offset = (index.as_unit("ns").asi8 - horizon.start.value) % period_ns
        steps = offset // (horizon.resolution_min * 60_000_000_000)
        return building.to_numpy(dtype=float)[np.minimum(steps, len(building) - 1)]

    def _building_forecast(self, now: pd.Timestamp, current_kwh: float) -> pd.Series | None:
        """Load other than the planned charging over the re-plan horizon [kW], or None.

        The building load (:meth:`_building_kw`), and in the current step also the charging
        energy already metered in it (``current_kwh`` spread over the step): the demand meter
        averages the whole interval, so without it a re-plan in mid-interval would see room
        that the first part of the interval already used.
        """
        if self.scenario.site.building_load_kw is None and current_kwh <= 0.0:
            return None
        step = pd.Timedelta(minutes=self.scenario.horizon.resolution_min)
        n = int(np.ceil(pd.Timedelta(hours=self.horizon_hours) / step)) + 1
        index = pd.date_range(now.tz_convert("UTC").floor(step), periods=n, freq=step)
        load_kw = self._building_kw(index)
        load_kw[0] += current_kwh / (step / pd.Timedelta(hours=1))
        return pd.Series(load_kw, index=index)

    # -- plan → profiles -------------------------------------------------------------------------

    async def _send_profiles(self, record: PlanRecord, views: list[SessionView],
                             now: pd.Timestamp) -> None:
        plan = record.plan
        rows = {s.id: i for i, s in enumerate(plan.scenario.sessions)}
        sent, jobs = [], []
        for view in views:
            row = rows.get(f"{view.vehicle_id}@{view.charger_id}")
            link = self.stations.get(view.charger_id)
            if row is not None and link is not None and link.ready:
                sent.append(view)
                jobs.append(self._send_tx_profile(record, link, row, view, now))
        for view, outcome in zip(sent, await asyncio.gather(*jobs, return_exceptions=True)):
            if isinstance(outcome, Exception):
                LOG.error("TxProfile for %s: %r", view.charger_id, outcome, exc_info=outcome)

    async def _send_tx_profile(self, record: PlanRecord, link: StationLink, row: int,
                               view: SessionView, now: pd.Timestamp) -> None:
        """Plan row → TxProfile → station; then keep the composite it reports for checks.

        Discharge (negative net power) goes out as OCPP 2.1 ``CentralSetpoint`` periods, and
        only to a station that can take them (:meth:`_can_discharge`); a plan that discharges
        on any other station (the planner should not) is clipped to 0 there and logged as an
        error, rather than sending a profile the station must reject.
        """
        if not link.has_transaction(view.ocpp_tx_id):  # it stopped while we were planning
            return
        charger = link.charger
        discharge = self._can_discharge(link)
        try:
            power = profiles.session_power(record.plan, row, since=now)
            if not discharge and (power.power_kw < 0).any():
                if power.power_kw.min() < -DISCHARGE_NOISE_KW:
                    LOG.error("the plan discharges %s transaction %s (down to %.3f kW) but the "
                              "station cannot take a discharge setpoint (OCPP %s, %s charger); "
                              "sending 0 kW for those steps", link.id, view.ocpp_tx_id,
                              power.power_kw.min(), link.version,
                              "bidirectional" if charger.bidirectional else "unidirectional")
                power = profiles.SessionPower(power.start, power.step_s,
                                              np.maximum(power.power_kw, 0.0))
            # A profile arrives after the solve: the part of its first step already past can
            # deliver nothing, so nothing (a sub-minimum burst included) is scheduled there.
            elapsed_s = int((self.clock.now() - power.start).total_seconds())
            if elapsed_s >= power.step_s:  # the solve ran past the first step: drop it
                power = profiles.SessionPower(power.start + pd.Timedelta(seconds=power.step_s),
                                              power.step_s, power.power_kw[1:])
                elapsed_s = 0
            duration_s = int(power.step_s * len(power.power_kw))
            periods = profiles.schedule_periods(
                power.power_kw, power.step_s, charger=charger, rate_unit=link.rate_unit,
                max_periods=link.max_periods_for(view.ocpp_tx_id), allow_discharge=discharge,
                elapsed_s=max(elapsed_s, 0))
            payload = profiles.tx_profile(
                periods, version=link.version, evse_id=view.evse_id,
                profile_id=TX_PROFILE_ID_BASE + view.tx_row_id,
                stack_level=TX_PROFILE_STACK_LEVEL,
                transaction_id=int(view.ocpp_tx_id) if link.version == "1.6" else view.ocpp_tx_id,
                start=power.start, duration_s=duration_s, rate_unit=link.rate_unit,
                number_phases=profiles.number_phases_of(charger))
        except ValueError as exc:  # nothing sent: the station keeps its current profile
            LOG.error("no TxProfile for %s transaction %s: %s", link.id, view.ocpp_tx_id, exc)
            return
        # From now on the station may follow the new profile: the old composite no longer says
        # what it does, so meter readings are not judged against it until the new one is in.
        self._expected.pop((view.charger_id, view.ocpp_tx_id), None)
        answer = await link.push_profile(payload, purpose="TxProfile", evse_id=view.evse_id,
                                         ocpp_tx_id=view.ocpp_tx_id,
                                         composite_duration_s=duration_s)
        record.answers[f"{view.charger_id}/{view.ocpp_tx_id}"] = answer
        if answer.composite is not None:
            composite_kw = profiles.composite_to_kw(
                answer.composite, version=link.version, charger=charger, step_s=power.step_s,
                start=power.start, steps=len(power.power_kw))
            self._expected[(view.charger_id, view.ocpp_tx_id)] = _Expected(
                power.start, power.step_s, composite_kw, view.target_soc)

    @staticmethod
    def _can_discharge(link: StationLink) -> bool:
        """Whether a station can be sent a discharge setpoint: connected and configured over
        OCPP 2.1 (operationMode ``CentralSetpoint``, DESIGN §7; 1.6 and 2.0.1 have no standard
        discharge) with a bidirectional charger. Whether its vehicle may discharge is the
        planner's V2G stack check."""
        return link.version == "2.1" and link.charger.bidirectional and link.ready

    @staticmethod
    def _net_power_w(samples: list[MeterSample]) -> dict[tuple[str | None, Any], float]:
        """Net power of each transaction's sample instant, import − export [W]: a 2.1 station
        discharging meters ``Power.Active.Export`` and 0 import, compared with a negative
        composite setpoint."""
        net: dict[tuple[str | None, Any], float] = {}
        for s in samples:
            if s.phase is None and s.measurand in (POWER, POWER_EXPORT):
                sign = 1.0 if s.measurand == POWER else -1.0
                key = (s.ocpp_tx_id, s.timestamp)
                net[key] = net.get(key, 0.0) + sign * s.value
        return net

    # -- views for the REST API ------------------------------------------------------------------

    async def sessions(self) -> list[SessionView]:
        """Open transactions with vehicle, departure, target, SoC and energy."""
        return await asyncio.to_thread(self._views)

    async def update_session(self, vehicle_id: str, *, departure_at: pd.Timestamp | None,
                             target_soc: float | None) -> SessionView:
        """A dispatcher's new departure and/or target SOC for a plugged-in vehicle; re-plans.

        Raises
        ------
        LookupError
            If the vehicle has no open transaction.
        """
        views = await self.sessions()
        view = next((v for v in views if v.vehicle_id == vehicle_id), None)
        if view is None:
            raise LookupError(f"vehicle {vehicle_id!r} is not plugged in (no open transaction)")
        await asyncio.to_thread(self.store.set_needs, view.charger_id, view.ocpp_tx_id,
                                departure_at=departure_at, target_soc=target_soc,
                                source="dispatcher")
        self.request_replan(f"dispatcher changed {vehicle_id}")
        updated = await self.sessions()
        return next(v for v in updated if v.ocpp_tx_id == view.ocpp_tx_id
                    and v.charger_id == view.charger_id)

    def plan_summary(self) -> dict[str, Any] | None:
        """The last good plan: site kW per step and kW per session, for the REST API."""
        if self.last is None:
            return None
        plan = self.last.plan
        index = plan.scenario.horizon.index.tz_convert("UTC")
        net = plan.net_charge_kw().toarray()
        return {
            "made_at": self.last.made_at.tz_convert("UTC").isoformat(),
            "reason": self.last.reason,
            "status": plan.status,
            "timings_s": {k: round(v, 4) for k, v in self.last.timings_s.items()},
            "step_minutes": plan.scenario.horizon.resolution_min,
            "steps": [t.isoformat() for t in index],
            "site_kw": [round(float(x), 3) for x in plan.site_load_kw()],
            "sessions": [{"session_id": s.id, "vehicle_id": s.vehicle_id,
                          "charger_id": s.charger_id, "energy_kwh": round(s.energy_kwh, 3),
                          "kw": [round(float(x), 3) for x in net[i]]}
                         for i, s in enumerate(plan.scenario.sessions)],
            "profiles": {k: a.status for k, a in self.last.answers.items()},
        }
