"""Rolling re-plan: the optimal plan from ``now`` on, given the live state of the depot.

This is the operations entry point: the central system calls :func:`replan` whenever a vehicle
arrives or leaves, a meter reading deviates, a charger faults or a dispatcher edits a departure.
The month-to-date peaks already metered enter the LP as floors of their demand determinants,
so a re-plan never pays for a peak twice, and energy a vehicle still needs beyond the horizon is
pro-rated by the share of its remaining dwell inside the horizon.

The re-plan is V1G (:func:`fleetcharge.strategies.optimal.optimal`) unless a plugged-in or
expected vehicle can discharge *now*: its vehicle × charger pair passes the V2G stack check
(:mod:`fleetcharge.v2g.stack`) **and** its charger is in ``LiveState.discharge_chargers``, the
chargers whose station can take a discharge setpoint (the depot lists those connected over OCPP
2.1: operationMode ``CentralSetpoint``; OCPP 1.6 and 2.0.1 have no standard discharge). Then it
is the V2G plan (:func:`fleetcharge.strategies.v2g.optimal_v2g`) with discharge on those chargers
only, under the interconnection's export limit (in the step already under way, only its share
still ahead: :func:`live_export_limit_kw`). Accepted DR events go through
:func:`fleetcharge.dr.planning.plan_with_events` with the same restrictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fleetcharge.domain import Scenario, Session
from fleetcharge.errors import InputError
from fleetcharge.plan import Plan
from fleetcharge.scenario.tables import reindex_load
from fleetcharge.strategies.optimal import demand_charges, optimal
from fleetcharge.strategies.v2g import optimal_v2g, session_discharge_kw
from fleetcharge.timegrid import Horizon, infer_resolution_min

if TYPE_CHECKING:
    from fleetcharge.dr.events import DREvent


@dataclass(frozen=True)
class PluggedVehicle:
    """A vehicle plugged in right now.

    Attributes
    ----------
    vehicle_id, charger_id : str
        Who is plugged in where (ids of the scenario's fleet and chargers).
    soc : float
        State of charge now [0–1].
    departure : pandas.Timestamp
        Expected departure (tz-aware).
    target_soc : float, optional
        SOC wanted at departure; the vehicle's own target when ``None`` [0–1].
    max_kw : float, optional
        Extra power cap for this session (e.g. from NotifyEVChargingNeeds) [kW].
    """

    vehicle_id: str
    charger_id: str
    soc: float
    departure: pd.Timestamp
    target_soc: float | None = None
    max_kw: float | None = None


@dataclass(frozen=True)
class LiveState:
    """What the central system knows: the depot, who is plugged in, and what was metered.

    ``depot`` supplies the site, chargers, fleet, tariff, billing-cycle day and resolution (its
    sessions are not used). ``expected`` are known future sessions (arrivals not yet plugged in).
    ``metered_kw`` is the site meter's interval-average load so far in the billing cycle, from
    which the month-to-date peaks are taken; ``demand_history_kw`` holds earlier months' peaks
    for ratchets (``{"2025-02": 512.0}``). ``building_forecast_kw`` is the building load expected
    over the horizon (zeros when unknown). ``dr_events`` are the demand-response events the
    depot has accepted (:class:`fleetcharge.dr.events.DREvent`); a re-plan honours them
    (:func:`fleetcharge.dr.planning.plan_with_events`; programs from ``depot.metadata
    ["dr_programs"]`` and the presets). ``discharge_chargers`` are the ids of the chargers whose
    station can be sent a discharge setpoint now (connected and configured over OCPP 2.1, and
    bidirectional); only sessions on them may discharge, and only if their pair passes the V2G
    stack check. Empty (the default): the re-plan is V1G. ``peak_margin_share`` > 0 makes the
    plan keep below each month-to-date peak by that share of it, at least
    :data:`PEAK_MARGIN_MIN_KW` (:func:`planning_floors`); 0 (the default) plans up to it.
    ``departure_guard`` > 0 makes the plan finish each vehicle that much before its departure
    (when its dwell allows): a plan that charges until the last second leaves a vehicle short
    by whatever a late profile or a slow station costs in that last second.
    """

    depot: Scenario
    plugged: tuple[PluggedVehicle, ...]
    expected: tuple[Session, ...] = ()
    metered_kw: pd.Series | None = None
    demand_history_kw: Mapping[str, float] = field(default_factory=dict)
    building_forecast_kw: pd.Series | None = None
    dr_events: tuple[DREvent, ...] = ()
    discharge_chargers: frozenset[str] = frozenset()
    peak_margin_share: float = 0.0
    departure_guard: pd.Timedelta = pd.Timedelta(0)


PEAK_MARGIN_MIN_KW = 0.5
"""Least margin :func:`planning_floors` keeps below a metered peak when a margin is asked [kW]."""


def planning_floors(peaks_kw: Mapping[str, float], margin_share: float) -> dict[str, float]:
    """The month-to-date peaks a live plan may fill for free: each peak ``P`` less a control
    margin ``max(PEAK_MARGIN_MIN_KW, margin_share·P)`` (``margin_share`` 0: the peaks as metered).

    Once a peak is metered, every kW below it is free, so an optimal plan fills it wherever that
    saves energy cost — often whole nights exactly at the peak. Stations then follow the plan
    only to within rounding, timing and metering error, and whatever lands above the peak
    becomes the new peak, which the next plan fills again: a ratchet, step by step. Planning to
    a floor a little below the metered peak (a set-point back-off, as in any controller running
    at a constraint) keeps those errors under it. The cost is bounded: at most the margin times
    the demand rate, and only when the margin's room would have paid.
    """
    if not 0.0 <= margin_share < 1.0:
        raise ValueError(f"margin_share={margin_share!r} must be in [0, 1)")
    if margin_share == 0.0:
        return dict(peaks_kw)
    return {label: max(kw - max(PEAK_MARGIN_MIN_KW, margin_share * kw), 0.0)
            for label, kw in peaks_kw.items()}


def peaks_so_far(depot: Scenario, metered_kw: pd.Series | None) -> dict[str, float]:
    """Peak already metered for each demand determinant, by label (``"2025-03 all hours"``) [kW].

    Uses the same determinants (billing cycles, demand windows, TOU periods) as the planner, so
    labels match :func:`fleetcharge.strategies.optimal.demand_charges`.
    """
    if metered_kw is None or metered_kw.empty:
        return {}
    try:
        res = infer_resolution_min(metered_kw.index) if len(metered_kw) > 1 else (
            depot.horizon.resolution_min)
        horizon = Horizon.covering(metered_kw.index, res, depot.horizon.timezone)
    except ValueError as exc:
        raise InputError(f"{exc}; send the meter's interval-average kW on a regular 5, 15, 30 "
                         "or 60-minute grid", location="LiveState.metered_kw") from None
    charges, window, _ = demand_charges(depot.tariff, horizon, depot.billing_cycle_day)
    window_kw = window @ np.clip(metered_kw.to_numpy(dtype=float), 0.0, None)
    return {dc.label: float(window_kw[dc.windows].max()) for dc in charges if dc.windows.size}


def _session(depot: Scenario, sid: str, vehicle_id: str, charger_id: str, arrival: pd.Timestamp,
             departure: pd.Timestamp, arrival_soc: float, target_soc: float,
             max_kw: float | None, horizon_end: pd.Timestamp) -> Session:
    vehicle = depot.vehicle(vehicle_id)
    charger = depot.charger(charger_id)
    usable, eta = vehicle.type.usable_kwh, vehicle.type.charge_efficiency
    energy = max(target_soc - arrival_soc, 0.0) * usable / eta
    end = min(departure, horizon_end)
    if departure > horizon_end and departure > arrival:
        energy *= (end - arrival) / (departure - arrival)
    cap = vehicle.type.max_kw_on(charger)
    if max_kw is not None:
        cap = min(cap, max_kw)
    return Session(sid, vehicle_id, charger_id, arrival, end, energy, arrival_soc,
                   arrival_soc + eta * energy / usable, cap)


def live_scenario(state: LiveState, now: pd.Timestamp, horizon_hours: float = 24.0) -> Scenario:
    """The scenario the re-plan solves: from the step containing ``now`` over ``horizon_hours``."""
    depot = state.depot
    if now.tzinfo is None:
        raise InputError("now must be timezone-aware", location="replan(now)")
    res = depot.horizon.resolution_min
    step = pd.Timedelta(minutes=res)
    # Floor on absolute time (local floors are ambiguous in the repeated fall-back hour).
    start = now.tz_convert("UTC").floor(step).tz_convert(depot.horizon.timezone)
    n_steps = int(np.ceil(pd.Timedelta(hours=horizon_hours) / step))
    horizon = Horizon(start, start + n_steps * step, res, depot.horizon.timezone)
    sessions: list[Session] = []
    for p in state.plugged:
        if p.departure <= now:
            continue
        target = p.target_soc if p.target_soc is not None else depot.vehicle(p.vehicle_id).target_soc
        sessions.append(_session(depot, f"{p.vehicle_id}@{p.charger_id}", p.vehicle_id,
                                 p.charger_id, now, _guarded(p.departure, now, state), p.soc,
                                 target, p.max_kw, horizon.end))
    for s in state.expected:
        if s.arrival >= horizon.end or s.departure <= now:
            continue
        arrival = max(s.arrival, now)
        sessions.append(_session(depot, s.id, s.vehicle_id, s.charger_id, arrival,
                                 _guarded(s.departure, arrival, state), s.arrival_soc,
                                 s.target_soc, s.max_kw, horizon.end))
    building = None
    if state.building_forecast_kw is not None:
        # averaged onto the steps when finer, repeated when coarser; must cover the horizon
        building = reindex_load(state.building_forecast_kw, horizon,
                                file="LiveState.building_forecast_kw")
    site = replace(depot.site, building_load_kw=building)
    v2g = depot.v2g
    if v2g.export_price_per_kwh is not None:
        v2g = replace(v2g, export_price_per_kwh=_repeat_days(v2g.export_price_per_kwh,
                                                             depot.horizon, horizon))
    return replace(depot, site=site, sessions=tuple(sessions), horizon=horizon, v2g=v2g)


def _guarded(departure: pd.Timestamp, start: pd.Timestamp, state: LiveState) -> pd.Timestamp:
    """The departure the plan aims at: ``state.departure_guard`` earlier, unless that leaves no
    time after ``start`` (then the departure itself)."""
    aimed = departure - state.departure_guard
    return aimed if aimed > start else departure


def _repeat_days(values: pd.Series, horizon: Horizon, onto: Horizon) -> pd.Series:
    """A series on the steps of ``horizon`` put on the steps of ``onto`` (same resolution): the
    same instant where ``horizon`` covers it, else repeated in whole days (a horizon shorter
    than a day: repeated as a whole), as the depot repeats its building load."""
    span_ns = horizon.end.value - horizon.start.value
    day_ns = 86_400_000_000_000
    period_ns = max(span_ns // day_ns, 1) * day_ns if span_ns >= day_ns else span_ns
    offset = (onto.index.as_unit("ns").asi8 - horizon.start.value) % period_ns
    steps = offset // (horizon.resolution_min * 60_000_000_000)
    out = values.to_numpy(dtype=float)[np.minimum(steps, len(values) - 1)]
    return pd.Series(out, index=onto.index, name=values.name)


def live_export_limit_kw(scenario: Scenario, now: pd.Timestamp) -> np.ndarray:
    """Export limit of each step of a live re-plan starting at ``now`` [kW].

    The interconnection's limit X, except in the first step, of which only the share
    ``f = (t₁ − now)/Δ`` is still ahead: ``f·X``. The plan's first step is an average over the
    whole step, and the stations deliver it in the part still ahead (:func:`fleetcharge.ops.
    profiles.session_power`), while the part already past may have exported at up to X under
    the previous plan; with ``f·X`` the meter's interval average stays within X.
    """
    horizon = scenario.horizon
    limit = np.full(horizon.n_steps, scenario.site.interconnection.export_allowed_kw)
    if horizon.n_steps:
        step = pd.Timedelta(minutes=horizon.resolution_min)
        ahead = (horizon.start + step - now) / step
        limit[0] *= float(np.clip(ahead, 0.0, 1.0))
    return limit


def replan(state: LiveState, now: pd.Timestamp, horizon_hours: float = 24.0,
           time_limit_s: float | None = None) -> Plan:
    """Optimal plan from ``now`` over ``horizon_hours`` (default 24 h) given the live state.

    The month-to-date peaks of ``state.metered_kw`` are floors of the demand determinants of the
    current billing cycle; ``state.demand_history_kw`` feeds ratchets. The plan is V1G
    (strategy ``"optimal"``) unless a session on one of ``state.discharge_chargers`` passes the
    V2G stack check; then it is V2G (``"v2g"``, :func:`~fleetcharge.strategies.v2g.optimal_v2g`)
    with discharge on those chargers only (module docstring). Accepted DR events
    (``state.dr_events``) that overlap the horizon are honoured: import limits in curtail and
    reduce events, prices in price events, V2G where a pair on ``state.discharge_chargers`` is
    eligible (see :mod:`fleetcharge.dr.planning`). The returned plan's ``info["replan_s"]`` is
    the wall time of the whole call.
    """
    t0 = pd.Timestamp.now()
    scenario = live_scenario(state, now, horizon_hours)
    peaks = planning_floors(peaks_so_far(state.depot, state.metered_kw), state.peak_margin_share)
    if state.dr_events:
        from fleetcharge.dr.planning import plan_with_events  # lazy: dr builds on this module

        plan = plan_with_events(scenario, state.dr_events, state.depot.metadata.get(
            "dr_programs"), history_kw=state.metered_kw, peaks_so_far_kw=peaks,
            demand_history_kw=state.demand_history_kw, time_limit_s=time_limit_s,
            discharge_chargers=state.discharge_chargers,
            export_limit_kw=live_export_limit_kw(scenario, now))
    elif state.discharge_chargers and (session_discharge_kw(
            scenario, discharge_chargers=state.discharge_chargers) > 0).any():
        plan = optimal_v2g(scenario, peaks_so_far_kw=peaks,
                           demand_history_kw=state.demand_history_kw, time_limit_s=time_limit_s,
                           discharge_chargers=state.discharge_chargers,
                           export_limit_kw=live_export_limit_kw(scenario, now))
    else:
        plan = optimal(scenario, peaks_so_far_kw=peaks, demand_history_kw=state.demand_history_kw,
                       time_limit_s=time_limit_s)
    plan.info["replan_s"] = (pd.Timestamp.now() - t0).total_seconds()
    return plan


def plugged_from_sessions(sessions: Sequence[Session], now: pd.Timestamp) -> tuple[
        tuple[PluggedVehicle, ...], tuple[Session, ...]]:
    """Split planned sessions at ``now`` into plugged-in vehicles (at their arrival SOC) and
    expected arrivals — a convenience for simulations and benchmarks."""
    plugged = tuple(
        PluggedVehicle(s.vehicle_id, s.charger_id, s.arrival_soc, s.departure, s.target_soc,
                       s.max_kw)
        for s in sessions if s.arrival <= now < s.departure
    )
    expected = tuple(s for s in sessions if s.arrival > now)
    return plugged, expected
