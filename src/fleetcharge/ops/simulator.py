"""Depot simulator: one simulated OCPP charge point per scenario charger, driven by the sessions.

Each :class:`SimulatedStation` is a real OCPP client (the ``ocpp`` library's 1.6, 2.0.1 or 2.1
``ChargePoint`` over a ``websockets`` connection with HTTP Basic auth, OCPP security profile 1,
or TLS, profile 2). It boots, keeps a heartbeat, answers the CSMS's smart-charging requests from
its own :class:`fleetcharge.ops.composite.ProfileStore`, and plays the scenario's sessions on the
shared :class:`fleetcharge.ops.clock.Clock`:

- at arrival: connector ``Preparing``, transaction start (1.6 ``StartTransaction`` with
  ``idTag`` = vehicle id; 2.x ``TransactionEvent(Started)`` with ``idToken`` {vehicle id,
  ``Central``}, then ``NotifyEVChargingNeeds`` with the departure time and the energy in Wh);
- while plugged in: the vehicle draws p(t) = min(composite limit now, the vehicle's and the
  charger's power, what the battery still accepts up to its target SOC (or full)), integrated
  exactly between the composite's breakpoints; a limit 0 < limit < ``Charger.min_kw`` cannot be
  followed (the J1772 6 A floor) so the station draws 0 and the time is reported
  (``SessionResult.below_floor_s``). On 2.1 a ``CentralSetpoint`` period is followed as the
  setpoint, discharging when negative (bidirectional pairs only);
- every ``meter_interval_s`` simulated seconds, clock-aligned: meter values
  ``Energy.Active.Import.Register`` (Wh), ``Power.Active.Import`` (W), ``SoC`` (%), plus the export
  register and power on 2.x when the charger is bidirectional — 1.6 ``MeterValues``, 2.x
  ``TransactionEvent(Updated)`` (OCPP 2.0.1 J02: sampled transaction data travels in
  TransactionEvent);
- at departure: transaction stop (``StopTransaction`` / ``TransactionEvent(Ended)``,
  ``EVDisconnected``) and ``Available``.

Reliability (OCPP 1.6 §4.10 and 2.x E04: transaction-related messages must be delivered): every
call but BootNotification and Heartbeat goes through one ordered outbox, sent one call at a time
(OCPP-J allows one outstanding CALL per connection, so a station sends at most one message per
round trip; heartbeats are skipped while other messages flow, 1.6 §4.6). When the socket drops,
the station reconnects with
exponential back-off; transaction messages (start, meter values, stop, charging needs) stay queued
and are sent in order after the next ``BootNotification`` is accepted (2.x flags them
``offline``); status notifications and heartbeats are not queued (the current status is sent after
every boot). A call that gets no answer within ``response_timeout_s`` is sent again with the same
message id; a CALLERROR is retried up to ``max_attempts`` times. The station sends
``BootNotification`` after every (re)connection, so a restarted CSMS re-reads the station's
capabilities and re-sends its profiles.

Not simulated: reservations, remote start/stop, firmware, local authorisation lists, per-phase
(``_L2``/``_L3``) limits, AC phase switching, ISO 15118 schedule negotiation.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import math
import random
import ssl as ssl_module
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import pandas as pd
import websockets
from ocpp import v16, v21, v201
from ocpp.exceptions import NotImplementedError as OCPPNotImplemented
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect

from fleetcharge.domain import Charger, Scenario, Session, Vehicle
from fleetcharge.errors import InputError
from fleetcharge.ops.clock import Clock
from fleetcharge.ops.composite import (
    EVSE_ID,
    VERSIONS,
    ActiveTransaction,
    ProfileRejected,
    ProfileStore,
    Segment,
    iso_z,
)
from fleetcharge.scenario import load_scenario

LOGGER = logging.getLogger(__name__)

SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
#: DC charging needs ask for a pack voltage, which the domain model does not carry; a nominal
#: 400 V pack is assumed for ``evMaxVoltage`` and to express the DC power limit as a current.
DC_PACK_VOLTAGE_V = 400
#: J1772 / IEC 61851 lowest PWM current an AC EV can be told to draw [A] (``evMinCurrent``)
AC_MIN_CURRENT_A = 6
VENDOR, MODEL = "fleetcharge", "depot-simulator"
#: queued messages at which a connected station warns that it cannot keep up
BACKLOG_WARNING = 100
ChargeTo = Literal["target", "full"]


@dataclass(frozen=True)
class StationOptions:
    """What a simulated station reports and accepts (1.6 §3.13.5 / 2.x ``SmartChargingCtrlr``).

    Attributes
    ----------
    rate_units : tuple of {"A", "W"}
        ``ChargingScheduleAllowedChargingRateUnit`` / ``RateUnit``; the first is the default unit
        of ``GetCompositeSchedule``.
    max_periods : int
        ``ChargingScheduleMaxPeriods`` / ``PeriodsPerSchedule``.
    max_stack_level : int
        ``ChargeProfileMaxStackLevel`` / ``ProfileStackLevel``.
    """

    rate_units: tuple[str, ...] = ("A", "W")
    max_periods: int = 24
    max_stack_level: int = 8


@dataclass(frozen=True)
class SessionResult:
    """What one session got.

    ``delivered_kwh`` is the net energy at the charger (import − export); ``target_kwh`` the
    session's ``energy_kwh``; ``met`` is true when the final SOC is within ``tolerance_kwh`` of
    the target SOC. ``departed`` is false for a vehicle still plugged in when the simulation
    ended (its ``final_soc`` and ``met`` are as of then). ``below_floor_s`` is the simulated
    time the station was limited to 0 < limit < ``min_kw`` while the vehicle wanted energy (it
    drew 0 then).
    """

    session_id: str
    vehicle_id: str
    charger_id: str
    ocpp_version: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    target_kwh: float
    delivered_kwh: float
    exported_kwh: float
    arrival_soc: float
    final_soc: float
    target_soc: float
    met: bool
    departed: bool
    below_floor_s: float
    transaction_id: str | None
    authorized: bool


@dataclass
class MessageStats:
    """Calls the stations sent to the CSMS and what came back.

    ``sent`` counts every transmission (a retry counts again) and ``answered`` every CALLRESULT
    or CALLERROR received, both also per action (``sent_by_action``, ``answered_by_action``);
    ``errors`` the CALLERRORs, ``timeouts`` the calls that got no answer in time, ``dropped``
    transaction messages given up after ``max_attempts`` CALLERRORs, ``undelivered`` messages
    still queued when the simulation ended; ``server_calls`` the CSMS's requests the stations
    answered. ``latencies_s`` holds, per action, the real seconds from a CALL leaving the station
    to its answer arriving.
    """

    sent: int = 0
    answered: int = 0
    errors: int = 0
    timeouts: int = 0
    dropped: int = 0
    undelivered: int = 0
    connects: int = 0
    connect_failures: int = 0
    server_calls: int = 0
    sent_by_action: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    answered_by_action: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def merge(self, other: MessageStats) -> None:
        """Add ``other``'s counts and latencies to these."""
        for name in ("sent", "answered", "errors", "timeouts", "dropped", "undelivered",
                     "connects", "connect_failures", "server_calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.sent_by_action, other.sent_by_action),
                             (self.answered_by_action, other.answered_by_action)):
            for k, v in theirs.items():
                mine[k] += v
        for k, values in other.latencies_s.items():
            self.latencies_s[k].extend(values)

    def latency_percentiles_ms(self, action: str | None = None,
                               q: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
        """Round-trip latency percentiles of ``action`` (default: all calls) [ms]; NaN without
        answers."""
        values = (self.latencies_s.get(action, []) if action is not None
                  else [x for v in self.latencies_s.values() for x in v])
        if not values:
            return {f"p{x:g}": math.nan for x in q}
        ms = np.percentile(np.asarray(values) * 1000.0, q)
        return {f"p{x:g}": float(v) for x, v in zip(q, ms, strict=True)}


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of :func:`simulate_depot`.

    Attributes
    ----------
    sessions : tuple of SessionResult
        One per session that started before the end of the simulation.
    site_kw : pandas.Series
        Metered load of all stations (import − export) as interval averages [kW], indexed by
        interval start (tz-aware UTC); intervals the simulation only partly covers are averaged
        over the whole interval, as a demand meter does.
    stats : MessageStats
        Calls and latencies over all stations.
    versions : dict
        OCPP version of each charger.
    """

    sessions: tuple[SessionResult, ...]
    site_kw: pd.Series
    stats: MessageStats
    versions: dict[str, str]

    @property
    def peak_kw(self) -> float:
        """Highest interval-average site load [kW] (0 when nothing was metered)."""
        return float(self.site_kw.max()) if len(self.site_kw) else 0.0

    @property
    def all_met(self) -> bool:
        """Whether every vehicle that left had reached its target."""
        return all(s.met for s in self.sessions if s.departed)

    def sessions_frame(self) -> pd.DataFrame:
        """The session results as a table, one row per session."""
        return pd.DataFrame([asdict(s) for s in self.sessions])


class SiteMeter:
    """The site's demand meter: energy per interval summed over stations, import positive.

    Times are POSIX seconds; intervals are aligned on the epoch (so on the hour in UTC).

    Parameters
    ----------
    interval_min : int
        Demand interval [min] (DESIGN §3: 15).
    """

    def __init__(self, interval_min: int = 15) -> None:
        self.interval_s = 60.0 * interval_min
        self.energy_wh: dict[float, float] = defaultdict(float)

    def next_boundary(self, t: float) -> float:
        """Start of the interval after the one containing ``t`` [s]."""
        return (math.floor(t / self.interval_s) + 1) * self.interval_s

    def add(self, t0: float, t1: float, power_kw: float) -> None:
        """Power ``power_kw`` [kW] over ``[t0, t1)``, which lies inside one interval."""
        if t1 > t0 and power_kw != 0.0:
            self.energy_wh[math.floor(t0 / self.interval_s) * self.interval_s] += (
                power_kw * (t1 - t0) / 3.6)

    def series(self, start_s: float, end_s: float) -> pd.Series:
        """Interval-average power [kW] of the intervals overlapping ``[start_s, end_s)``,
        indexed by interval start (tz-aware UTC)."""
        first = math.floor(start_s / self.interval_s) * self.interval_s
        starts = np.arange(first, end_s, self.interval_s)
        kw = [self.energy_wh.get(float(s), 0.0) * 3.6 / self.interval_s for s in starts]
        index = pd.to_datetime((starts * 1e9).astype("int64"), utc=True)
        return pd.Series(kw, index=index, name="site_kw", dtype=float)


def _seconds(ts: pd.Timestamp) -> float:
    return pd.Timestamp(ts).value / 1e9


def _ts(seconds: float) -> pd.Timestamp:
    return pd.Timestamp(round(seconds * 1e9), tz="UTC")


@dataclass
class _Transaction:
    """A transaction on the station: ``ocpp_id`` is the station's uuid (2.x) or the CSMS's
    integer (1.6, ``None`` until ``StartTransaction`` is answered)."""

    started_at: pd.Timestamp
    ocpp_id: str | None
    start_call_id: str | None = None  # message id of the 1.6 StartTransaction
    seq: itertools.count = field(default_factory=itertools.count)
    authorized: bool = True

    def active(self) -> ActiveTransaction:
        return ActiveTransaction(self.ocpp_id, self.started_at)


@dataclass
class _Plug:
    """The vehicle plugged in and its battery."""

    session: Session
    vehicle: Vehicle
    soc: float
    transaction: _Transaction
    imported_wh: float = 0.0
    exported_wh: float = 0.0
    below_floor_s: float = 0.0


@dataclass
class _Outgoing:
    """One queued call: ``build`` makes the payload when it is sent (a 1.6 stop needs the
    transaction id the start's answer brought)."""

    action: str
    build: Callable[[], Any | None]
    transactional: bool
    on_result: Callable[[Any], None] | None = None
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    errors: int = 0


def _message_type(raw: str) -> str:
    """OCPP-J MessageTypeId of a frame: "2" CALL, "3" CALLRESULT, "4" CALLERROR."""
    return raw.lstrip().lstrip("[").lstrip()[:1]


class _CatchAll:
    """Answer every request: an action without a handler gets a CALLERROR ``NotImplemented``
    (the ``ocpp`` 2.1.0 library leaves a 2.1 action without handler unanswered). Also stamps
    when a CALL left and when its answer arrived, for the round-trip latency (OCPP-J allows one
    outstanding CALL per connection, so the two stamps belong together)."""

    route_map: dict[str, dict]
    station: SimulatedStation
    call_sent_at = 0.0
    answer_at = 0.0

    async def _send(self, message: str) -> None:
        if _message_type(message) == "2":
            self.call_sent_at = time.perf_counter()
        await super()._send(message)  # type: ignore[misc]

    async def route_message(self, raw_msg: str) -> None:
        kind = _message_type(raw_msg)
        if kind in ("3", "4"):
            self.answer_at = time.perf_counter()
        if kind == "3":
            self.station.call_result_arrived(raw_msg)
        await super().route_message(raw_msg)  # type: ignore[misc]

    async def _handle_call(self, msg: Any) -> Any:
        self.station.stats.server_calls += 1
        if msg.action not in self.route_map:
            raise OCPPNotImplemented(details={"cause": f"No handler for {msg.action}"})
        return await super()._handle_call(msg)  # type: ignore[misc]


class _Link16(_CatchAll, v16.ChargePoint):
    """OCPP 1.6J requests from the Central System, answered from the station."""

    def __init__(self, station: SimulatedStation, connection: ClientConnection,
                 response_timeout: float) -> None:
        super().__init__(station.charger.id, connection, response_timeout)
        self.station = station

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known, unknown = self.station.configuration_16(key)
        return v16.call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, **_: Any) -> Any:
        known, _unknown = self.station.configuration_16([key])
        return v16.call_result.ChangeConfiguration(status="Rejected" if known else "NotSupported")

    @on("SetChargingProfile")
    def on_set_charging_profile(self, **payload: Any) -> Any:
        status, _reason = self.station.set_profile(payload)
        return v16.call_result.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                                  charging_profile_purpose: str | None = None,
                                  stack_level: int | None = None, **_: Any) -> Any:
        cleared = self.station.clear_profiles(profile_id=id, evse_id=connector_id,
                                              purpose=charging_profile_purpose,
                                              stack_level=stack_level)
        return v16.call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, connector_id: int, duration: int,
                                  charging_rate_unit: str | None = None, **_: Any) -> Any:
        r = self.station.composite(evse_id=connector_id, duration_s=duration,
                                   unit=charging_rate_unit)
        return v16.call_result.GetCompositeSchedule(
            status=r["status"], connector_id=r.get("connectorId"),
            schedule_start=r.get("scheduleStart"), charging_schedule=r.get("chargingSchedule"))

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        ok = requested_message in ("Heartbeat", "StatusNotification", "MeterValues")
        return v16.call_result.TriggerMessage(status="Accepted" if ok else "NotImplemented")

    @after("TriggerMessage")
    def after_trigger_message(self, requested_message: str, **_: Any) -> None:
        self.station.triggered(requested_message)

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return v16.call_result.DataTransfer(status="UnknownVendorId")


class _Link2x(_CatchAll):
    """OCPP 2.0.1 / 2.1 requests from the CSMS, answered from the station."""

    _call_result: Any

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict], **_: Any) -> Any:
        return self._call_result.GetVariables(
            get_variable_result=[self.station.variable(d) for d in get_variable_data])

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict], **_: Any) -> Any:
        results = []
        for d in set_variable_data:
            status = self.station.variable(d)["attribute_status"]
            results.append({"attribute_status": "Rejected" if status == "Accepted" else status,
                            "component": d["component"], "variable": d["variable"]})
        return self._call_result.SetVariables(set_variable_result=results)

    @on("SetChargingProfile")
    def on_set_charging_profile(self, **payload: Any) -> Any:
        status, reason = self.station.set_profile(payload)
        info = None if reason is None else {"reason_code": reason[0],
                                            "additional_info": reason[1][:1024]}
        return self._call_result.SetChargingProfile(status=status, status_info=info)

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                  charging_profile_criteria: dict | None = None, **_: Any) -> Any:
        c = charging_profile_criteria or {}
        if c.get("charging_profile_purpose") == "ChargingStationExternalConstraints":  # K10.FR.06
            return self._call_result.ClearChargingProfile(status="Unknown")
        cleared = self.station.clear_profiles(
            profile_id=charging_profile_id, evse_id=c.get("evse_id"),
            purpose=c.get("charging_profile_purpose"), stack_level=c.get("stack_level"))
        return self._call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, duration: int, evse_id: int,
                                  charging_rate_unit: str | None = None, **_: Any) -> Any:
        r = self.station.composite(evse_id=evse_id, duration_s=duration, unit=charging_rate_unit)
        info = r.get("statusInfo")
        return self._call_result.GetCompositeSchedule(
            status=r["status"], schedule=r.get("schedule"),
            status_info=None if info is None else {"reason_code": info["reasonCode"]})

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **_: Any) -> Any:
        ok = requested_message in ("Heartbeat", "StatusNotification", "MeterValues")
        return self._call_result.TriggerMessage(status="Accepted" if ok else "NotImplemented")

    @after("TriggerMessage")
    def after_trigger_message(self, requested_message: str, **_: Any) -> None:
        self.station.triggered(requested_message)

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return self._call_result.DataTransfer(status="UnknownVendorId")


class _Link201(_Link2x, v201.ChargePoint):
    def __init__(self, station: SimulatedStation, connection: ClientConnection,
                 response_timeout: float) -> None:
        super().__init__(station.charger.id, connection, response_timeout)
        self.station = station


class _Link21(_Link2x, v21.ChargePoint):
    def __init__(self, station: SimulatedStation, connection: ClientConnection,
                 response_timeout: float) -> None:
        super().__init__(station.charger.id, connection, response_timeout)
        self.station = station


_LINKS = {"1.6": _Link16, "2.0.1": _Link201, "2.1": _Link21}
_CALLS = {"1.6": v16.call, "2.0.1": v201.call, "2.1": v21.call}
#: 1.6 ChargePointStatus → 2.x ConnectorStatusEnumType
_CONNECTOR_STATUS_2X = {"Available": "Available", "Preparing": "Occupied", "Charging": "Occupied",
                        "SuspendedEV": "Occupied", "SuspendedEVSE": "Occupied",
                        "Finishing": "Occupied"}
#: 1.6 ChargePointStatus while charging → 2.x ChargingStateEnumType
_CHARGING_STATE_2X = {"Preparing": "EVConnected", "Charging": "Charging",
                      "SuspendedEV": "SuspendedEV", "SuspendedEVSE": "SuspendedEVSE"}


class SimulatedStation:
    """One simulated charge point (one EVSE with one connector) and the vehicles it serves.

    Parameters
    ----------
    charger : Charger
        The scenario port; its id is the OCPP identity.
    sessions : sequence of Session
        The sessions at this charger, in any order (they must not overlap).
    vehicles : mapping of str to Vehicle
        The fleet by id.
    version : {"1.6", "2.0.1", "2.1"}
    url : str
        CSMS base URL (``ws://host:port`` or ``wss://…``); the station connects to
        ``<url>/<charger id>``.
    password : str
        HTTP Basic password (user = charger id).
    clock : Clock
        Simulated time, shared with the CSMS.
    meter : SiteMeter, optional
        Where the station adds its metered energy (shared by the stations of a depot; default:
        a meter of its own).
    options : StationOptions
    meter_interval_s : float
        Simulated seconds between meter samples (clock-aligned).
    charge_to : {"target", "full"}
        Whether a vehicle stops accepting energy at its target SOC or only when full.
    tolerance_kwh : float
        Shortfall at departure still counted as met [kWh].
    ssl : ssl.SSLContext, optional
        TLS context for ``wss://`` URLs.
    response_timeout_s, reconnect_backoff_s, max_attempts
        Real seconds to wait for an answer; (first, largest) reconnect delay in real seconds;
        CALLERRORs after which a transaction message is dropped.
    """

    def __init__(self, charger: Charger, sessions: Sequence[Session],
                 vehicles: Mapping[str, Vehicle], *, version: str, url: str, password: str,
                 clock: Clock, meter: SiteMeter | None = None,
                 options: StationOptions = StationOptions(),
                 meter_interval_s: float = 60.0, charge_to: ChargeTo = "target",
                 tolerance_kwh: float = 0.05, ssl: ssl_module.SSLContext | None = None,
                 response_timeout_s: float = 30.0,
                 reconnect_backoff_s: tuple[float, float] = (0.2, 5.0),
                 max_attempts: int = 3) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown OCPP version {version!r} for {charger.id}; "
                             f"use one of {VERSIONS}")
        if not meter_interval_s > 0:
            raise ValueError(f"meter_interval_s must be > 0, got {meter_interval_s}")
        self.charger = charger
        self.sessions = tuple(sorted(sessions, key=lambda s: s.arrival))
        self.vehicles = vehicles
        self.version = version
        self.url = f"{url.rstrip('/')}/{quote(charger.id, safe='')}"
        self.password = password
        self.clock = clock
        self.meter = meter if meter is not None else SiteMeter()
        self.options = options
        self.meter_interval_s = float(meter_interval_s)
        self.charge_to = charge_to
        self.tolerance_kwh = tolerance_kwh
        self.ssl = ssl
        self.response_timeout_s = response_timeout_s
        self.reconnect_backoff_s = reconnect_backoff_s
        self.max_attempts = max_attempts
        self.store = ProfileStore(charger, version=version, rate_units=options.rate_units,
                                  max_periods=options.max_periods,
                                  max_stack_level=options.max_stack_level)
        self.stats = MessageStats()
        self.results: list[SessionResult] = []
        self.status = "Available"
        self.connected = False
        self._reported_connector: str | None = None  # 2.x connector status last sent
        self._call = _CALLS[version]
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_changed = asyncio.Event()
        self._plug: _Plug | None = None
        self._t = _seconds(clock.now())
        self._imported_wh = 0.0  # connector registers, cumulative
        self._exported_wh = 0.0
        self._heartbeat_s = 0.0
        self._in_flight = 0  # calls sent and not answered yet
        self._next_sample_s = math.inf  # next clock-aligned meter sample of this session
        self._samples_until_s = -math.inf
        self._last_call_at = clock.now()

    # ------------------------------------------------------------------ running
    async def run(self, until: pd.Timestamp, drain_timeout_s: float = 30.0) -> None:
        """Play the sessions until ``until`` (simulated), then wait up to ``drain_timeout_s``
        real seconds for queued messages to be delivered, and disconnect."""
        link_task = asyncio.create_task(self._connection_loop(), name=f"link {self.charger.id}")
        try:
            await self._drive(until)
            deadline = time.monotonic() + drain_timeout_s
            while (self._outbox or self._in_flight) and time.monotonic() < deadline:
                if not self.connected and not any(o.transactional for o in self._outbox):
                    break
                await asyncio.sleep(0.05)
        finally:
            self.stats.undelivered += sum(o.transactional for o in self._outbox)
            link_task.cancel()
            await asyncio.gather(link_task, return_exceptions=True)

    async def _connection_loop(self) -> None:
        delay = self.reconnect_backoff_s[0]
        token = base64.b64encode(f"{self.charger.id}:{self.password}".encode()).decode()
        while True:
            try:
                async with connect(
                    self.url, subprotocols=[SUBPROTOCOLS[self.version]],  # type: ignore[list-item]
                    additional_headers={"Authorization": f"Basic {token}"},
                    ssl=self.ssl if self.url.startswith("wss") else None,
                    proxy=None, open_timeout=self.response_timeout_s,
                ) as ws:
                    if ws.subprotocol != SUBPROTOCOLS[self.version]:
                        raise ConnectionRefusedError(
                            f"server accepted subprotocol {ws.subprotocol!r}")
                    self.stats.connects += 1
                    await self._serve(ws)
                    delay = self.reconnect_backoff_s[0]
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
                self.stats.connect_failures += 1
                LOGGER.info("%s: connection lost or refused (%s); retrying in %.2f s",
                            self.charger.id, exc, delay)
            finally:
                self.connected = False
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(2 * delay, self.reconnect_backoff_s[1])

    async def _serve(self, ws: ClientConnection) -> None:
        """One connection: read frames, boot, then pump the outbox and heartbeat until it drops."""
        link = _LINKS[self.version](self, ws, self.response_timeout_s)
        reader = asyncio.create_task(link.start())
        worker = asyncio.create_task(self._session(link))
        try:
            done, _ = await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises ConnectionClosed → reconnect
        finally:
            for task in (reader, worker):
                task.cancel()
            await asyncio.gather(reader, worker, return_exceptions=True)

    async def _session(self, link: Any) -> None:
        await self._boot(link)
        self.connected = True
        # Only transaction messages survive a disconnection (1.6 §4.10, 2.x E04); the current
        # status follows them.
        self._outbox = deque(o for o in self._outbox if o.transactional)
        self._enqueue_status(self.status, force=True)
        tasks = [asyncio.create_task(self._pump(link))]
        if self._heartbeat_s > 0:
            tasks.append(asyncio.create_task(self._heartbeats(link)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _boot(self, link: Any) -> None:
        """BootNotification until Accepted (1.6 §4.2, 2.x B01–B03: retry after ``interval``)."""
        while True:
            payload = (self._call.BootNotification(charge_point_model=MODEL,
                                                   charge_point_vendor=VENDOR)
                       if self.version == "1.6" else
                       self._call.BootNotification(
                           charging_station={"model": MODEL, "vendor_name": VENDOR},
                           reason="PowerUp"))
            item = _Outgoing("BootNotification", lambda p=payload: p, transactional=False)
            result = await self._call_once(link, item.action, payload, item)
            if result is not None and result.status == "Accepted":
                self._heartbeat_s = float(result.interval)
                return
            wait_s = float(result.interval) if result is not None and result.interval else 10.0
            await self.clock.sleep(wait_s)

    async def _call_once(self, link: Any, action: str, payload: Any,
                         item: _Outgoing) -> Any | None:
        """Send ``payload`` once with ``item``'s message id; ``None`` on CALLERROR or timeout."""
        self.stats.sent += 1
        self.stats.sent_by_action[action] += 1
        self._last_call_at = self.clock.now()
        self._in_flight += 1
        try:
            result = await link.call(payload, suppress=False, unique_id=item.unique_id)
        except TimeoutError:
            self.stats.timeouts += 1
            LOGGER.warning("%s: no answer to %s %s in %.1f s",
                           self.charger.id, action, item.unique_id, self.response_timeout_s)
            return None
        except OCPPError as exc:
            self.stats.answered += 1
            self.stats.answered_by_action[action] += 1
            self.stats.errors += 1
            item.errors += 1
            LOGGER.warning("%s: CALLERROR for %s: %s", self.charger.id, action, exc)
            return None
        finally:
            self._in_flight -= 1
        self.stats.answered += 1
        self.stats.answered_by_action[action] += 1
        self.stats.latencies_s[action].append(link.answer_at - link.call_sent_at)
        return result

    async def _pump(self, link: Any) -> None:
        """Send the outbox in order; an item leaves it only once answered (or given up)."""
        while True:
            while not self._outbox:
                self._outbox_changed.clear()
                await self._outbox_changed.wait()
            item = self._outbox[0]
            payload = item.build()
            if payload is None:  # a 1.6 stop whose start was never answered
                self._outbox.popleft()
                self.stats.dropped += 1
                continue
            result = await self._call_once(link, item.action, payload, item)
            if result is None:
                if item.errors >= self.max_attempts:
                    LOGGER.error("%s: dropping %s after %d CALLERRORs", self.charger.id,
                                 item.action, item.errors)
                    self._outbox.popleft()
                    self.stats.dropped += item.transactional
                continue
            self._outbox.popleft()
            if item.on_result is not None:
                item.on_result(result)

    async def _heartbeats(self, link: Any) -> None:
        """Heartbeat when nothing else was sent for ``interval`` simulated seconds (1.6 §4.6 and
        2.x G02: the station may skip it when other messages show it is alive)."""
        interval = pd.Timedelta(seconds=self._heartbeat_s)
        while True:
            due = self._last_call_at + interval
            if self.clock.now() < due:
                await self.clock.sleep_until(due)
                continue
            item = _Outgoing("Heartbeat", self._call.Heartbeat, transactional=False)
            await self._call_once(link, item.action, item.build(), item)

    def _enqueue(self, item: _Outgoing) -> None:
        self._outbox.append(item)
        self._outbox_changed.set()
        if len(self._outbox) == BACKLOG_WARNING and self.connected:
            LOGGER.warning("%s: %d messages wait to be sent: the CSMS answers more slowly than "
                           "this station produces them (one call at a time, OCPP-J); lower the "
                           "clock speed or raise meter_interval_s", self.charger.id,
                           BACKLOG_WARNING)

    # ------------------------------------------------------------------ sessions
    async def _drive(self, until: pd.Timestamp) -> None:
        """Play the sessions, then stay on line (heartbeats, answering the CSMS) until ``until``."""
        for s in self.sessions:
            if s.departure <= self.clock.now():
                continue  # over before the simulation started
            if s.arrival >= until:
                break
            await self.clock.sleep_until(s.arrival)
            end = min(s.departure, until)
            self._plug_in(s, _seconds(end))
            while True:  # _advance takes the samples due on its way
                t_next = min(self._next_sample_s, _seconds(end))
                await self.clock.sleep_until(_ts(t_next))
                self._advance(t_next)
                if t_next >= _seconds(end):
                    break
            if end < s.departure:
                self._record(s, departed=False)  # still plugged in when the simulation ends
                return
            self._unplug()
        await self.clock.sleep_until(until)

    def _plug_in(self, s: Session, end_s: float) -> None:
        """Plug the session's vehicle in (it leaves, or the simulation ends, at ``end_s``)."""
        self._advance(max(_seconds(s.arrival), self._t))
        now = _ts(self._t)
        self._next_sample_s = (math.floor(self._t / self.meter_interval_s) + 1) * (
            self.meter_interval_s)
        self._samples_until_s = end_s
        vehicle = self.vehicles[s.vehicle_id]
        self._set_status("Preparing")
        ocpp_id = None if self.version == "1.6" else str(uuid.uuid4())
        tx = _Transaction(started_at=now, ocpp_id=ocpp_id)
        self._plug = _Plug(s, vehicle, s.arrival_soc, tx)
        LOGGER.info("%s: %s plugged in at %s (SOC %.2f → %.2f by %s)", self.charger.id,
                    vehicle.id, now, s.arrival_soc, s.target_soc, s.departure)
        if self.version == "1.6":
            meter_start = int(self._imported_wh)
            start = _Outgoing("StartTransaction", lambda: self._call.StartTransaction(
                connector_id=EVSE_ID, id_tag=vehicle.id, meter_start=meter_start,
                timestamp=iso_z(now)), True, self._started_16)
            tx.start_call_id = start.unique_id
            self._enqueue(start)
            self._update_charging_state()
        else:
            self._update_charging_state()
            self._enqueue(self._transaction_event("Started", "Authorized", now, "Transaction.Begin"))
            self._enqueue(_Outgoing("NotifyEVChargingNeeds", self._needs_2x(s, vehicle), True))

    def call_result_arrived(self, raw_msg: str) -> None:
        """Read a 1.6 transaction id as soon as the StartTransaction answer arrives.

        The CSMS may send the transaction's TxProfile right behind that answer; the profile is
        routed before the call that waits for the answer resumes, so the id is taken here.
        """
        plug = self._plug
        if plug is None or plug.transaction.ocpp_id is not None or (
                plug.transaction.start_call_id is None):
            return
        msg = json.loads(raw_msg)
        if msg[1] == plug.transaction.start_call_id and isinstance(msg[2], dict):
            tx_id = msg[2].get("transactionId")
            if isinstance(tx_id, int):
                plug.transaction.ocpp_id = str(tx_id)

    def _started_16(self, result: Any) -> None:
        plug = self._plug
        if plug is None:
            return
        plug.transaction.ocpp_id = str(result.transaction_id)
        if (result.id_tag_info or {}).get("status") != "Accepted":
            self._deauthorize()

    def _authorized_2x(self, result: Any) -> None:
        info = result.id_token_info or {}
        if info and info.get("status") != "Accepted":
            self._deauthorize()

    def _deauthorize(self) -> None:
        """The CSMS refused the vehicle's id: stop the transaction; the vehicle gets nothing
        (1.6 §5.11 StopTransactionOnInvalidId, 2.x E05)."""
        plug = self._plug
        if plug is None or not plug.transaction.authorized:
            return
        self._advance(_seconds(self.clock.now()))
        plug.transaction.authorized = False
        LOGGER.error("%s: CSMS refused vehicle %s; transaction stopped", self.charger.id,
                     plug.vehicle.id)
        self._stop_transaction("DeAuthorized", "Deauthorized")

    def _needs_2x(self, s: Session, vehicle: Vehicle) -> Callable[[], Any]:
        """NotifyEVChargingNeeds (2.x K15/K17): departure and the energy still wanted [Wh]."""
        energy_wh = round(s.energy_kwh * 1000.0)
        if self.charger.current_type == "AC":
            max_a = float(self.charger.kw_to_amps(vehicle.type.max_kw_on(self.charger)))
            needs = {"requested_energy_transfer":
                     "AC_three_phase" if self.charger.phases == 3 else "AC_single_phase",
                     "departure_time": iso_z(s.departure),
                     "ac_charging_parameters": {
                         "energy_amount": energy_wh, "ev_min_current": AC_MIN_CURRENT_A,
                         "ev_max_current": int(max_a), "ev_max_voltage": int(self.charger.voltage_v)}}
        else:
            max_kw = vehicle.type.max_kw_on(self.charger)
            needs = {"requested_energy_transfer": "DC", "departure_time": iso_z(s.departure),
                     "dc_charging_parameters": {
                         "energy_amount": energy_wh, "ev_max_power": int(max_kw * 1000),
                         "ev_max_current": int(max_kw * 1000 / DC_PACK_VOLTAGE_V),
                         "ev_max_voltage": DC_PACK_VOLTAGE_V,
                         "ev_energy_capacity": int(vehicle.type.usable_kwh * 1000),
                         "state_of_charge": round(100 * s.arrival_soc)}}
        return lambda: self._call.NotifyEVChargingNeeds(evse_id=EVSE_ID, charging_needs=needs)

    def _unplug(self) -> None:
        plug = self._plug
        if plug is None:
            return
        if plug.transaction.authorized:
            self._stop_transaction("EVDisconnected", "EVDeparted")
        self._record(plug.session, departed=True)
        self._plug = None
        self._set_status("Available")

    def _stop_transaction(self, reason: str, trigger: str) -> None:
        plug = self._plug
        assert plug is not None
        tx = plug.transaction
        now = _ts(self._t)
        if self.version == "1.6":
            meter_stop = int(self._imported_wh)

            def build() -> Any | None:
                if tx.ocpp_id is None:
                    return None
                return self._call.StopTransaction(
                    meter_stop=meter_stop, timestamp=iso_z(now), transaction_id=int(tx.ocpp_id),
                    reason=reason, id_tag=plug.vehicle.id,
                    transaction_data=[self._meter_value_16(now, "Transaction.End")])

            self._enqueue(_Outgoing("StopTransaction", build, True))
            self._set_status("Finishing")
        else:
            self._enqueue(self._transaction_event("Ended", trigger, now, "Transaction.End",
                                                  stopped_reason=reason))
        self.store.end_transaction(tx.ocpp_id)

    def _record(self, s: Session, *, departed: bool) -> None:
        plug = self._plug
        assert plug is not None
        usable, eta = plug.vehicle.type.usable_kwh, plug.vehicle.type.charge_efficiency
        delivered = (plug.imported_wh - plug.exported_wh) / 1000.0
        self.results.append(SessionResult(
            session_id=s.id, vehicle_id=s.vehicle_id, charger_id=self.charger.id,
            ocpp_version=self.version, arrival=s.arrival, departure=s.departure,
            target_kwh=s.energy_kwh, delivered_kwh=delivered,
            exported_kwh=plug.exported_wh / 1000.0, arrival_soc=s.arrival_soc,
            final_soc=plug.soc, target_soc=s.target_soc,
            met=bool(plug.soc >= s.target_soc - self.tolerance_kwh * eta / usable),
            departed=departed, below_floor_s=plug.below_floor_s, transaction_id=plug.transaction.ocpp_id,
            authorized=plug.transaction.authorized))

    # ------------------------------------------------------------------ physics
    def _draw_kw(self, seg: Segment, plug: _Plug) -> tuple[float, bool]:
        """Power the vehicle takes under ``seg`` [kW] (negative: discharge) and whether the
        station limit was below the charger's minimum (then 0 is drawn)."""
        if not plug.transaction.authorized:
            return 0.0, False
        charge_cap = min(plug.session.max_kw, plug.vehicle.type.max_kw_on(self.charger))
        if seg.setpoint_kw is not None:  # 2.1 CentralSetpoint: follow the setpoint
            target = seg.setpoint_kw
            if seg.discharge_limit_kw is not None:
                target = max(target, seg.discharge_limit_kw)
            if target < 0:
                return -min(-target, plug.vehicle.type.max_discharge_kw_on(self.charger)), False
            limit = target
        else:
            limit = self.charger.max_kw if seg.limit_kw is None else seg.limit_kw
        if 0.0 < limit < self.charger.min_kw:  # below the J1772 floor: cannot be followed
            return 0.0, True
        return max(0.0, min(limit, charge_cap)), False

    def _room_wh(self, plug: _Plug, power_kw: float) -> float:
        """Energy at the charger until the battery stops accepting (charging) or reaches its
        minimum SOC (discharging) [Wh]."""
        t = plug.vehicle.type
        if power_kw > 0:
            cap = plug.session.target_soc if self.charge_to == "target" else 1.0
            return max(0.0, (cap - plug.soc) * t.usable_kwh / t.charge_efficiency * 1000.0)
        return max(0.0, (plug.soc - plug.vehicle.min_soc) * t.usable_kwh
                   * t.discharge_efficiency * 1000.0)

    def _advance(self, t_end: float) -> None:
        """Integrate up to ``t_end``, taking the clock-aligned meter samples due on the way
        (before the vehicle leaves), so samples fall on their exact times whatever woke the
        station."""
        while (self._plug is not None and self._next_sample_s <= t_end
               and self._next_sample_s < self._samples_until_s):
            self._integrate(self._next_sample_s)
            self._sample("Sample.Periodic")
            self._next_sample_s += self.meter_interval_s
        self._integrate(t_end)

    def _integrate(self, t_end: float) -> None:
        """Integrate the plugged-in vehicle's draw exactly from the last instant to ``t_end``."""
        t = self._t
        if t_end <= t:
            return
        self._t = t_end
        plug = self._plug
        if plug is None:
            return
        for seg in self.store.segments(_ts(t), _ts(t_end), transaction=plug.transaction.active()):
            a = max(seg.start_s, t)
            while a < seg.end_s:
                b = min(seg.end_s, self.meter.next_boundary(a))
                p, below_floor = self._draw_kw(seg, plug)
                room = self._room_wh(plug, p)
                if below_floor and self._room_wh(plug, 1.0) > 0:
                    plug.below_floor_s += b - a
                if p == 0.0 or room <= 1e-6:
                    a = b
                    continue
                full_at = a + room * 3.6 / abs(p)
                if full_at <= a:  # what is left takes less than the clock's resolution: done
                    a = b
                    continue
                b = min(b, full_at)
                energy_wh = abs(p) * (b - a) / 3.6
                vt = plug.vehicle.type
                if p > 0:
                    plug.imported_wh += energy_wh
                    self._imported_wh += energy_wh
                    plug.soc += vt.charge_efficiency * energy_wh / 1000.0 / vt.usable_kwh
                else:
                    plug.exported_wh += energy_wh
                    self._exported_wh += energy_wh
                    plug.soc -= energy_wh / 1000.0 / vt.discharge_efficiency / vt.usable_kwh
                self.meter.add(a, b, p)
                a = b

    def _power_now_kw(self) -> float:
        """Power drawn at this instant [kW] (0 when the battery no longer accepts)."""
        plug = self._plug
        if plug is None:
            return 0.0
        segs = self.store.segments(_ts(self._t), _ts(self._t + 1.0),
                                   transaction=plug.transaction.active())
        p, _ = self._draw_kw(segs[0], plug)
        return p if self._room_wh(plug, p) > 1e-6 else 0.0

    def _update_charging_state(self) -> bool:
        """Connector status from the power now (1.6 §4.9 ChargePointStatus); returns whether it
        changed. 1.6 reports it with StatusNotification, 2.x in the next TransactionEvent."""
        plug = self._plug
        if plug is None or not plug.transaction.authorized:
            return False
        p = self._power_now_kw()
        if p != 0.0:
            status = "Charging"
        elif self._room_wh(plug, 1.0) <= 1e-6:
            status = "SuspendedEV"
        else:
            status = "SuspendedEVSE"
        if status == self.status:
            return False
        self._set_status(status)
        return True

    # ------------------------------------------------------------------ messages
    def _set_status(self, status: str) -> None:
        self.status = status
        self._enqueue_status(status)

    def _enqueue_status(self, status: str, force: bool = False) -> None:
        """StatusNotification (1.6 §4.9; 2.x G01 reports only the connector status, the charging
        state travels in TransactionEvent). Not queued offline: the status after the next boot
        replaces it."""
        if not self.connected:
            return
        now = iso_z(_ts(self._t))
        if self.version == "1.6":
            payload = self._call.StatusNotification(connector_id=EVSE_ID, error_code="NoError",
                                                    status=status, timestamp=now)
        else:
            connector = _CONNECTOR_STATUS_2X[status]
            if connector == self._reported_connector and not force:
                return
            self._reported_connector = connector
            payload = self._call.StatusNotification(
                timestamp=now, connector_status=connector, evse_id=EVSE_ID, connector_id=EVSE_ID)
        self._enqueue(_Outgoing("StatusNotification", lambda: payload, transactional=False))

    def _samples(self) -> list[tuple[str, float, str, str | None]]:
        """(measurand, value, unit, location) of one sample (conventions: Wh register, W, %)."""
        p = self._power_now_kw()
        plug = self._plug
        out = [("Energy.Active.Import.Register", self._imported_wh, "Wh", "Outlet"),
               ("Power.Active.Import", max(p, 0.0) * 1000.0, "W", "Outlet")]
        if self.version != "1.6" and self.charger.bidirectional:
            out += [("Energy.Active.Export.Register", self._exported_wh, "Wh", "Outlet"),
                    ("Power.Active.Export", max(-p, 0.0) * 1000.0, "W", "Outlet")]
        if plug is not None:
            out.append(("SoC", 100.0 * plug.soc, "Percent", "EV"))
        return out

    def _meter_value_16(self, at: pd.Timestamp, context: str) -> dict:
        return {"timestamp": iso_z(at), "sampled_value": [
            {"value": f"{v:.1f}", "context": context,
             "measurand": m, "unit": unit, "location": loc}
            for m, v, unit, loc in self._samples()]}

    def _meter_value_2x(self, at: pd.Timestamp, context: str) -> dict:
        return {"timestamp": iso_z(at), "sampled_value": [
            {"value": round(v, 1), "context": context, "measurand": m, "location": loc,
             "unit_of_measure": {"unit": unit}}
            for m, v, unit, loc in self._samples()]}

    def _transaction_event(self, event: str, trigger: str, at: pd.Timestamp, context: str,
                           stopped_reason: str | None = None) -> _Outgoing:
        plug = self._plug
        assert plug is not None
        tx = plug.transaction
        info: dict[str, Any] = {"transaction_id": tx.ocpp_id,
                                "charging_state": _CHARGING_STATE_2X.get(self.status, "Idle")}
        if event == "Ended":
            info["charging_state"] = "Idle"
            info["stopped_reason"] = stopped_reason
        kwargs: dict[str, Any] = {
            "event_type": event, "timestamp": iso_z(at), "trigger_reason": trigger,
            "seq_no": next(tx.seq), "transaction_info": info,
            "meter_value": [self._meter_value_2x(at, context)], "offline": not self.connected}
        if event == "Started":
            kwargs["id_token"] = {"id_token": plug.vehicle.id, "type": "Central"}
            kwargs["evse"] = {"id": EVSE_ID, "connector_id": EVSE_ID}
        payload = self._call.TransactionEvent(**kwargs)
        on_result = self._authorized_2x if event == "Started" else None
        return _Outgoing("TransactionEvent", lambda: payload, True, on_result)

    def _sample(self, context: str) -> None:
        """Meter values now (and the charging state when it changed)."""
        plug = self._plug
        if plug is None or not plug.transaction.authorized:
            return
        at = _ts(self._t)
        changed = self._update_charging_state()
        if self.version == "1.6":
            tx = plug.transaction
            value = self._meter_value_16(at, context)

            def build() -> Any:
                return self._call.MeterValues(
                    connector_id=EVSE_ID, meter_value=[value],
                    transaction_id=None if tx.ocpp_id is None else int(tx.ocpp_id))

            self._enqueue(_Outgoing("MeterValues", build, True))
        else:
            trigger = "ChargingStateChanged" if changed else "MeterValuePeriodic"
            self._enqueue(self._transaction_event("Updated", trigger, at, context))

    def triggered(self, requested_message: str) -> None:
        """Send what a TriggerMessage asked for (1.6 §5.17, 2.x F06)."""
        if requested_message == "Heartbeat":
            self._enqueue(_Outgoing("Heartbeat", self._call.Heartbeat, transactional=False))
        elif requested_message == "StatusNotification":
            self._enqueue_status(self.status)
        elif requested_message == "MeterValues":
            at = self.clock.now()
            self._advance(_seconds(at))
            if self.version == "1.6":
                value = self._meter_value_16(at, "Trigger")
                payload = self._call.MeterValues(connector_id=EVSE_ID, meter_value=[value])
            else:
                value = self._meter_value_2x(at, "Trigger")
                payload = self._call.MeterValues(evse_id=EVSE_ID, meter_value=[value])
            self._enqueue(_Outgoing("MeterValues", lambda: payload, transactional=False))

    # ------------------------------------------------------------------ requests from the CSMS
    def _transaction(self) -> ActiveTransaction | None:
        plug = self._plug
        return None if plug is None else plug.transaction.active()

    def set_profile(self, payload: dict) -> tuple[str, tuple[str, str] | None]:
        """SetChargingProfile: ``("Accepted", None)`` or ``("Rejected", (reason, info))``."""
        self._advance(_seconds(self.clock.now()))
        try:
            self.store.set(payload, transaction=self._transaction())
        except ProfileRejected as exc:
            LOGGER.warning("%s: rejected charging profile: %s", self.charger.id, exc)
            return "Rejected", (exc.reason_code, exc.info)
        except (KeyError, TypeError, ValueError) as exc:
            return "Rejected", ("InvalidValue", f"malformed profile: {exc}")
        return "Accepted", None

    def clear_profiles(self, **criteria: Any) -> bool:
        """ClearChargingProfile by id or criteria; whether anything was cleared."""
        self._advance(_seconds(self.clock.now()))
        return self.store.clear(**criteria)

    def composite(self, *, evse_id: int, duration_s: int, unit: str | None) -> dict:
        """GetCompositeSchedule response payload (wire form) from now over ``duration_s``."""
        return self.store.composite_schedule(start=self.clock.now(), duration_s=duration_s,
                                             evse_id=evse_id, unit=unit,
                                             transaction=self._transaction())

    def configuration_16(self, keys: list[str] | None) -> tuple[list[dict], list[str]]:
        """GetConfiguration (1.6 §5.8, §9.4): the smart-charging keys, all read-only."""
        names = {"A": "Current", "W": "Power"}
        values = {
            "ChargingScheduleAllowedChargingRateUnit":
                ",".join(names[u] for u in self.options.rate_units),
            "ChargingScheduleMaxPeriods": str(self.options.max_periods),
            "ChargeProfileMaxStackLevel": str(self.options.max_stack_level),
            "MaxChargingProfilesInstalled": str(3 * (self.options.max_stack_level + 1)),
            "MeterValueSampleInterval": str(int(self.meter_interval_s)),
            "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import,SoC",
            "NumberOfConnectors": "1",
        }
        wanted = list(values) if not keys else keys
        known = [{"key": k, "readonly": True, "value": values[k]} for k in wanted if k in values]
        return known, [k for k in wanted if k not in values]

    def variable(self, data: dict) -> dict:
        """One GetVariables result (2.x B06; ``SmartChargingCtrlr`` per the conventions)."""
        component, variable = data["component"], data["variable"]
        values = {
            ("SmartChargingCtrlr", "RateUnit"): ",".join(self.options.rate_units),
            ("SmartChargingCtrlr", "PeriodsPerSchedule"): str(self.options.max_periods),
            ("SmartChargingCtrlr", "ProfileStackLevel"): str(self.options.max_stack_level),
            ("SmartChargingCtrlr", "Enabled"): "true",
            ("SmartChargingCtrlr", "Available"): "true",
            ("SampledDataCtrlr", "TxUpdatedInterval"): str(int(self.meter_interval_s)),
        }
        out: dict[str, Any] = {"component": component, "variable": variable}
        key = (component.get("name"), variable.get("name"))
        if key in values and data.get("attribute_type", "Actual") == "Actual":
            out.update(attribute_status="Accepted", attribute_value=values[key])
        elif key in values:
            out["attribute_status"] = "NotSupportedAttributeType"
        elif any(c == key[0] for c, _ in values):
            out["attribute_status"] = "UnknownVariable"
        else:
            out["attribute_status"] = "UnknownComponent"
        return out


def _assign_versions(chargers: Sequence[Charger],
                     versions: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(versions, Mapping):
        missing = [c.id for c in chargers if c.id not in versions]
        if missing:
            raise ValueError(f"no OCPP version given for chargers {missing}")
        return {c.id: versions[c.id] for c in chargers}
    if not versions:
        raise ValueError("versions must name at least one OCPP version")
    return {c.id: versions[i % len(versions)] for i, c in enumerate(chargers)}


async def simulate_depot(
    scenario: Scenario, url: str, *, clock: Clock, passwords: Mapping[str, str] | str,
    versions: Sequence[str] | Mapping[str, str] = VERSIONS, meter_interval_s: float = 60.0,
    until: pd.Timestamp | None = None, ssl: ssl_module.SSLContext | None = None,
    station_options: StationOptions | Mapping[str, StationOptions] = StationOptions(),
    charge_to: ChargeTo = "target", tolerance_kwh: float = 0.05, interval_min: int = 15,
    response_timeout_s: float = 30.0, reconnect_backoff_s: tuple[float, float] = (0.2, 5.0),
    drain_timeout_s: float = 30.0,
) -> SimulationResult:
    """Run one simulated charge point per scenario charger against a CSMS until ``until``.

    Parameters
    ----------
    scenario : Scenario
        Depot: chargers (one station each), fleet and sessions. Sessions that ended before
        ``clock.now()`` are skipped; one in progress starts at once, at its arrival SOC.
    url : str
        CSMS websocket base URL, ``ws://host:port`` (or ``wss://`` with ``ssl``).
    clock : Clock
        Simulated time; share it with an in-process CSMS.
    passwords : str or mapping
        HTTP Basic password of every charger, or one per charger id.
    versions : sequence or mapping of {"1.6", "2.0.1", "2.1"}
        Assigned round-robin over the chargers in scenario order, or per charger id.
    meter_interval_s : float
        Simulated seconds between meter samples [s].
    until : pandas.Timestamp, optional
        End of the simulation (default: the last departure).
    ssl : ssl.SSLContext, optional
        TLS client context (OCPP security profile 2).
    station_options : StationOptions or mapping
        Rate units, periods and stack levels of every station, or per charger id.
    charge_to : {"target", "full"}
        Vehicles stop taking energy at their target SOC, or only when full.
    tolerance_kwh : float
        Shortfall still counted as met [kWh].
    interval_min : int
        Demand interval of the site meter [min].
    response_timeout_s, reconnect_backoff_s, drain_timeout_s : float
        Real seconds: answer timeout, (first, largest) reconnect delay, wait for queued messages
        at the end.

    Returns
    -------
    SimulationResult
    """
    start = clock.now()
    if until is None:
        until = max((s.departure for s in scenario.sessions), default=start)
    until = pd.Timestamp(until)
    version_of = _assign_versions(scenario.chargers, versions)
    by_charger: dict[str, list[Session]] = defaultdict(list)
    for s in scenario.sessions:
        by_charger[s.charger_id].append(s)
    meter = SiteMeter(interval_min)
    vehicles = {v.id: v for v in scenario.vehicles}
    stations = []
    for c in scenario.chargers:
        options = (station_options.get(c.id, StationOptions())
                   if isinstance(station_options, Mapping) else station_options)
        password = passwords if isinstance(passwords, str) else passwords[c.id]
        station = SimulatedStation(
            c, by_charger.get(c.id, ()), vehicles, version=version_of[c.id], url=url,
            password=password, clock=clock, meter=meter, options=options,
            meter_interval_s=meter_interval_s, charge_to=charge_to, tolerance_kwh=tolerance_kwh,
            ssl=ssl, response_timeout_s=response_timeout_s,
            reconnect_backoff_s=reconnect_backoff_s)
        stations.append(station)
    await asyncio.gather(*(st.run(until, drain_timeout_s) for st in stations))
    stats = MessageStats()
    for st in stations:
        stats.merge(st.stats)
    results = sorted((r for st in stations for r in st.results), key=lambda r: r.arrival)
    return SimulationResult(sessions=tuple(results),
                            site_kw=meter.series(_seconds(start), _seconds(until)),
                            stats=stats, versions=version_of)


def run_simulate_depot(scenario_path: str | Path, url: str, *, password: str | Mapping[str, str],
                       speed: float = 60.0, start: str | pd.Timestamp | None = None,
                       until: str | pd.Timestamp | None = None,
                       versions: Sequence[str] = VERSIONS, meter_interval_s: float = 60.0,
                       cafile: str | Path | None = None,
                       start_epoch: float | None = None) -> SimulationResult:
    """What ``fleetcharge simulate-depot SCENARIO.yaml --url ws://…`` does (blocks until done).

    Parameters
    ----------
    scenario_path : str or Path
        Scenario YAML: one simulated station per charger, driven by its sessions.
    url : str
        CSMS base URL, ``ws://host:port`` or ``wss://host:port``.
    password : str or mapping
        HTTP Basic password of every station, or one per charger id.
    speed : float
        Simulated seconds per real second; give ``fleetcharge serve`` the same ``--speed``.
    start, until : str or pandas.Timestamp, optional
        Simulated start (ISO 8601; default: the scenario's first arrival; give the server the
        same ``--start``) and end (default: the last departure).
    versions : sequence of {"1.6", "2.0.1", "2.1"}
        OCPP versions, assigned round-robin over the chargers.
    meter_interval_s : float
        Simulated seconds between meter values [s].
    cafile : str or Path, optional
        CA bundle (PEM) to verify a ``wss://`` server with (default: the system's).
    start_epoch : float, optional
        Unix time at which the clock reads ``start`` (default: when this starts); give the
        server the same to keep both clocks in step.

    Raises
    ------
    InputError
        A bad scenario or option, with the option named.
    """
    if not url.startswith(("ws://", "wss://")):
        raise InputError(f"{url!r} is not a websocket URL; give ws://HOST:PORT (or wss://)",
                         location="--url")
    bad = [v for v in versions if v not in VERSIONS]
    if bad or not versions:
        raise InputError(f"unknown OCPP version(s) {bad}; use some of {', '.join(VERSIONS)}",
                         location="--versions")
    if not meter_interval_s > 0:
        raise InputError(f"must be > 0 seconds, got {meter_interval_s}",
                         location="--meter-interval")
    scenario = load_scenario(scenario_path)
    try:
        if start is None:
            start = min((x.arrival for x in scenario.sessions), default=None)
        clock = Clock(start, speed, start_epoch)
        end = None if until is None else _utc(until)
    except ValueError as exc:
        raise InputError(f"{exc}; give --speed > 0 and --start/--until as ISO 8601, e.g. "
                         "2025-03-03T16:30-08:00", location="--speed/--start/--until") from None
    context = None
    if url.startswith("wss://"):
        try:
            context = ssl_module.create_default_context(
                cafile=None if cafile is None else str(cafile))
        except (OSError, ssl_module.SSLError) as exc:
            raise InputError(f"cannot load the CA bundle: {exc}; give a PEM file",
                             file=str(cafile), location="--cafile") from None
    return asyncio.run(simulate_depot(
        scenario, url, clock=clock, passwords=password, versions=versions,
        meter_interval_s=meter_interval_s, until=end, ssl=context))


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def summary_table(result: SimulationResult) -> Table:
    """The sessions of a simulation as a rich table, with the metered peak and the message
    counts in its caption (for the CLI)."""
    table = Table(title="Depot simulation: sessions")
    for name in ("session", "vehicle", "charger", "OCPP", "target kWh", "delivered kWh",
                 "met", "below floor min"):
        table.add_column(name, justify="right" if "kWh" in name or "min" in name else "left")
    for r in result.sessions:
        table.add_row(r.session_id, r.vehicle_id, r.charger_id, r.ocpp_version,
                      f"{r.target_kwh:.2f}", f"{r.delivered_kwh:.2f}",
                      ("yes" if r.met else "[red]no[/]") if r.departed else "plugged in",
                      f"{r.below_floor_s / 60:.0f}")
    s, p = result.stats, result.stats.latency_percentiles_ms()
    table.caption = (f"site peak {result.peak_kw:.1f} kW (15-min average); calls sent "
                     f"{s.sent}, answered {s.answered}, errors {s.errors}, timeouts "
                     f"{s.timeouts}, undelivered {s.undelivered}; round trip p50 "
                     f"{p['p50']:.0f} ms, p99 {p['p99']:.0f} ms")
    return table
