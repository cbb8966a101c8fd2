"""Event-aware planning: plan with an event, decide whether to take part, and say why.

An event enters the optimal planner as LP inputs (:class:`EventTerms`):

- ``curtail`` to P kW: site import ≤ P in the event's steps;
- ``reduce`` by N kW: site import ≤ baseline − N (the program's baseline, see
  :mod:`fleetcharge.dr.baseline`);
- ``price`` ρ $/kWh (and every event's payment per kWh reduced): V1G sees ρ added to the energy
  price in the event's steps — exact wherever import stays at or below the baseline, where a
  kWh not taken earns ρ — and V2G gets the exact credit ρ·max(baseline − net import, 0) of
  :mod:`fleetcharge.strategies.v2g_lp`, plus the program's export payment on top of the export
  credit.

Where the scenario has vehicle × charger pairs that pass the V2G stack check, the plan is the V2G
LP (:func:`fleetcharge.strategies.v2g.v2g_terms`, :func:`~fleetcharge.strategies.v2g_lp.solve_v2g`),
else the V1G LP (:func:`fleetcharge.strategies.optimal.optimal`). Event limits never ask to shed
the building load. Live, only pairs whose charger can take a discharge setpoint now may discharge
(``discharge_chargers``: the chargers connected over OCPP 2.1, from
``LiveState.discharge_chargers``); a study leaves it out and every eligible pair may.

The decision (:func:`run_dr_study` for a study, :func:`decide_live` for the central system)
compares the plan *with* the event against the plan *without* it:

1. **Readiness first.** If any departure that meets its target without the event would miss it
   with the event, the depot declines — whatever the program pays or the penalty for declining
   ("declined: V07 would leave at 62 % instead of 90 %").
2. **Money.** Taking part is worth payment − penalty − (bill with − bill without); declining is
   worth 0 when the program lets the depot opt out for free, else the settlement of the plan
   without the event (the penalty for not delivering). The depot takes part when that is at
   least as good (to the cent), and the reason names the numbers.

Bills are always recomputed by the bill engine from the site load (STYLE.md rule 5).

Events with a notification time (``received_at``) are decided at that moment in a study: the plan
before it stands (the depot did not know), and the rest is re-planned from the next step with the
live re-plan machinery (:func:`fleetcharge.strategies.rolling.live_scenario`). Events without one
are known in advance. A study decides events in the order they are known, each against the plan
with all events accepted before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fleetcharge.accounting import Outcome, evaluate
from fleetcharge.billing import Bill, compute_bill
from fleetcharge.domain import Scenario
from fleetcharge.dr.baseline import Baseline, event_baseline
from fleetcharge.dr.events import DREvent
from fleetcharge.dr.programs import EMERGENCY_2_PER_KWH, DRProgram, with_presets
from fleetcharge.dr.settlement import (
    EventSettlement,
    SeasonSettlement,
    over_cap_events,
    settle_event,
    settle_seasons,
)
from fleetcharge.errors import InputError
from fleetcharge.plan import Plan
from fleetcharge.strategies.optimal import lp_input, optimal, solver_info
from fleetcharge.strategies.rolling import (
    LiveState,
    PluggedVehicle,
    live_export_limit_kw,
    live_scenario,
    peaks_so_far,
)
from fleetcharge.strategies.v2g import netting_note, session_discharge_kw, v2g_terms
from fleetcharge.strategies.v2g_lp import solve_v2g
from fleetcharge.timegrid import infer_resolution_min
from fleetcharge.v2g.stack import check_stack

#: Taking part must be at least as good as declining to within this [$] (a cent: bills are
#: rounded to cents).
TIE_USD = 0.005
#: A reduce event is re-planned against the baseline of its own plan until the baseline moves
#: less than this [kW] (a 10-of-10 day-of adjustment depends on the load just before the event,
#: which the plan sets), at most ``BASELINE_ROUNDS`` plans.
BASELINE_TOLERANCE_KW = 0.05
BASELINE_ROUNDS = 3


@dataclass(frozen=True)
class EventTerms:
    """Per-step LP inputs of the DR events on a horizon (one entry per step).

    Attributes
    ----------
    import_limit_kw : numpy.ndarray
        Site import limit [kW]; ``inf`` outside events.
    price_adder_per_kwh : numpy.ndarray
        Added to the energy price in the V1G LP [$/kWh].
    reduction_price_per_kwh : numpy.ndarray
        Paid per kWh of import below the baseline, for the V2G LP [$/kWh].
    export_adder_per_kwh : numpy.ndarray
        Added to the export credit in the V2G LP [$/kWh].
    baseline_kw : numpy.ndarray
        The events' baselines [kW]; NaN outside events.
    event_ids : tuple of str
        The events these terms come from.
    """

    import_limit_kw: np.ndarray
    price_adder_per_kwh: np.ndarray
    reduction_price_per_kwh: np.ndarray
    export_adder_per_kwh: np.ndarray
    baseline_kw: np.ndarray
    event_ids: tuple[str, ...] = ()

    @classmethod
    def none(cls, n_steps: int) -> EventTerms:
        """No event: no limit, no price."""
        zeros = np.zeros(n_steps)
        return cls(np.full(n_steps, np.inf), zeros, zeros, zeros, np.full(n_steps, np.nan))

    def combine(self, other: EventTerms) -> EventTerms:
        """Both sets of events: the lower limit, prices added, the other's baseline where set."""
        return EventTerms(
            np.minimum(self.import_limit_kw, other.import_limit_kw),
            self.price_adder_per_kwh + other.price_adder_per_kwh,
            self.reduction_price_per_kwh + other.reduction_price_per_kwh,
            self.export_adder_per_kwh + other.export_adder_per_kwh,
            np.where(np.isnan(other.baseline_kw), self.baseline_kw, other.baseline_kw),
            self.event_ids + other.event_ids,
        )

    def from_step(self, k: int) -> EventTerms:
        """The terms of steps ``k …`` (a re-plan from step ``k``)."""
        return EventTerms(self.import_limit_kw[k:], self.price_adder_per_kwh[k:],
                          self.reduction_price_per_kwh[k:], self.export_adder_per_kwh[k:],
                          self.baseline_kw[k:], self.event_ids)

    @property
    def pays(self) -> bool:
        """Does any step pay for reduction or export?"""
        return bool((self.reduction_price_per_kwh > 0).any()
                    or (self.export_adder_per_kwh > 0).any())


def event_terms(event: DREvent, program: DRProgram, index: pd.DatetimeIndex,
                baseline: Baseline | None) -> EventTerms:
    """The LP inputs of one event on the steps of ``index`` (module docstring).

    A step only partly inside the window is constrained as a whole (the meter's interval).
    ``baseline`` is needed for ``reduce`` events and for V2G's reduction credit.
    """
    n = len(index)
    terms = EventTerms.none(n)
    mask = event.mask(index)
    if not mask.any():
        return replace(terms, event_ids=(event.event_id,))
    base = np.full(n, np.nan)
    if baseline is not None:
        base[mask] = baseline.kw.reindex(index[mask]).to_numpy(dtype=float)
    limit = terms.import_limit_kw.copy()
    if event.kind == "curtail":
        limit[mask] = event.value
    elif event.kind == "reduce":
        if np.isnan(base[mask]).any():
            raise ValueError(f"event {event.event_id!r}: a reduce event needs its baseline on "
                             "every step of the window")
        limit[mask] = np.maximum(base[mask] - event.value, 0.0)
    rate = np.zeros(n)
    rate[mask] = program.reduction_rate_per_kwh(event)
    export = np.zeros(n)
    export[mask] = program.export_payment_per_kwh
    return EventTerms(limit, rate, np.where(np.isnan(base), 0.0, rate), export, base,
                      (event.event_id,))


def can_discharge(scenario: Scenario,
                  discharge_chargers: Collection[str] | None = None) -> bool:
    """Does any vehicle × charger pair of the scenario pass the V2G stack check (a DR program
    counting as a value stream)? With ``discharge_chargers`` (charger ids), only sessions on
    those chargers count (:func:`fleetcharge.strategies.v2g.session_discharge_kw`)."""
    if discharge_chargers is None:
        return any(p.discharge_kw > 0 for p in check_stack(scenario, has_program=True))
    return bool((session_discharge_kw(scenario, discharge_chargers=discharge_chargers,
                                      has_program=True) > 0).any())


def plan_with_terms(
    scenario: Scenario,
    terms: EventTerms | None = None,
    *,
    peaks_so_far_kw: Mapping[str, float] | None = None,
    demand_history_kw: Mapping[str, float] | None = None,
    time_limit_s: float | None = None,
    discharge_chargers: Collection[str] | None = None,
    export_limit_kw: float | np.ndarray | None = None,
) -> Plan:
    """The optimal plan of ``scenario`` under ``terms`` (none: the plan without events).

    V2G (strategy ``"v2g"``) when a pair passes the stack check (and, with
    ``discharge_chargers``, is on one of those chargers), else V1G (``"optimal"``);
    ``export_limit_kw`` lowers the V2G plan's export limit
    (:func:`fleetcharge.strategies.v2g.v2g_terms`).
    In the V2G plan the scenario's own program value streams are replaced by the events'
    payments; its export prices and degradation costs stay. ``plan.info["dr_events"]`` lists
    the events planned for.
    """
    terms = terms if terms is not None else EventTerms.none(scenario.horizon.n_steps)
    limited = bool(np.isfinite(terms.import_limit_kw).any())
    if not can_discharge(scenario, discharge_chargers):
        plan = optimal(scenario, peaks_so_far_kw=peaks_so_far_kw,
                       demand_history_kw=demand_history_kw, time_limit_s=time_limit_s,
                       import_limit_kw=terms.import_limit_kw if limited else None,
                       price_adder_per_kwh=(terms.price_adder_per_kwh
                                            if terms.price_adder_per_kwh.any() else None))
    else:
        lp, notes = lp_input(scenario, peaks_so_far_kw, demand_history_kw,
                             import_limit_kw=terms.import_limit_kw if limited else None)
        # The stack check counts DR payments as a value stream through a program; that
        # program's own calls are then replaced by the events' prices.
        streams = (EMERGENCY_2_PER_KWH.to_program(),) if terms.pays else ()
        vterms = v2g_terms(replace(scenario, v2g=replace(scenario.v2g, programs=streams)),
                           discharge_chargers=discharge_chargers,
                           export_limit_kw=export_limit_kw)
        paid = ~np.isnan(terms.baseline_kw) & (terms.reduction_price_per_kwh > 0)
        sell = (vterms.sell_price_per_kwh if vterms.sell_price_per_kwh is not None
                else np.zeros(scenario.horizon.n_steps))
        vterms = replace(
            vterms,
            program_price_per_kwh=np.where(paid, terms.reduction_price_per_kwh, 0.0),
            baseline_kw=np.where(paid, terms.baseline_kw, 0.0) if paid.any() else None,
            sell_price_per_kwh=sell + terms.export_adder_per_kwh)
        result = solve_v2g(lp, vterms, time_limit_s=time_limit_s)
        note = netting_note(result.import_kw, result.export_kw, lp.energy_price_per_kwh,
                            vterms.sell_price_per_kwh, lp.step_hours)
        info = solver_info(result, lp, [*notes, note] if note else notes)
        status = "ok" if result.status == "Optimal" else result.status
        plan = Plan("v2g", scenario, result.charge_kw, discharge_kw=result.discharge_kw,
                    status=status, info=info)
    plan.info["dr_events"] = list(terms.event_ids)
    return plan


def program_for(event: DREvent, programs: Mapping[str, DRProgram]) -> DRProgram:
    """The program ``event`` names, or an :class:`InputError` listing the known ones."""
    try:
        return programs[event.program]
    except KeyError:
        raise InputError(f"event {event.event_id!r} names unknown program {event.program!r}; "
                         f"known programs are {', '.join(sorted(programs))} (define it under "
                         "`dr: programs:` in the scenario)", location="program") from None


def event_days(events: Iterable[DREvent], timezone: str) -> set[dt.date]:
    """Local dates touched by the events that were not cancelled."""
    out: set[dt.date] = set()
    for e in events:
        if not e.cancelled:
            out.add(e.start.tz_convert(timezone).date())
            out.add((e.end - pd.Timedelta(microseconds=1)).tz_convert(timezone).date())
    return out


def _load(plan: Plan) -> pd.Series:
    return pd.Series(plan.site_load_kw(), index=plan.scenario.horizon.index, name="kw")


def _with_history(history_kw: pd.Series | None, load_kw: pd.Series) -> pd.Series:
    """Metered history before ``load_kw`` followed by it (same grid only; else ``load_kw``)."""
    if history_kw is None or len(history_kw) < 2 or len(load_kw) < 2:
        return load_kw
    if infer_resolution_min(history_kw.index) != infer_resolution_min(load_kw.index):
        return load_kw
    before = history_kw[history_kw.index < load_kw.index[0]].astype(float)
    return pd.concat([before, load_kw]) if len(before) else load_kw


def plan_with_events(
    scenario: Scenario,
    events: Sequence[DREvent],
    programs: Mapping[str, DRProgram] | None = None,
    *,
    history_kw: pd.Series | None = None,
    peaks_so_far_kw: Mapping[str, float] | None = None,
    demand_history_kw: Mapping[str, float] | None = None,
    time_limit_s: float | None = None,
    discharge_chargers: Collection[str] | None = None,
    export_limit_kw: float | np.ndarray | None = None,
) -> Plan:
    """The optimal plan of ``scenario`` honouring the (accepted) ``events``.

    The live entry point: :func:`fleetcharge.strategies.rolling.replan` calls it when
    ``LiveState.dr_events`` is not empty. Cancelled events and events outside the horizon are
    ignored. Baselines (for ``reduce`` events and V2G's reduction credit) are the programs'
    10-of-10 over ``history_kw`` (metered load before the horizon) followed by the plan without
    events, or that plan itself (the counterfactual) when history is too short.

    Parameters
    ----------
    scenario : Scenario
        What to plan (e.g. :func:`~fleetcharge.strategies.rolling.live_scenario`).
    events : sequence of DREvent
        Events the depot takes part in.
    programs : mapping of str to DRProgram, optional
        Programs by name; the presets are always known.
    history_kw : pandas.Series, optional
        Metered site load before the horizon [kW].
    peaks_so_far_kw, demand_history_kw, time_limit_s
        As for :func:`fleetcharge.strategies.optimal.optimal`.
    discharge_chargers : collection of str, optional
        Only sessions on these chargers may discharge (live: the chargers connected over OCPP
        2.1); ``None``: every pair that passes the stack check.
    export_limit_kw : float or numpy.ndarray, optional
        Lowers the interconnection's export limit [kW], a number or one per step (live: the
        share of the first step still ahead, :func:`fleetcharge.strategies.rolling.
        live_export_limit_kw`).
    """
    programs = with_presets(programs)
    index = scenario.horizon.index
    active = [e for e in events if not e.cancelled and e.mask(index).any()]
    kwargs: dict[str, Any] = dict(peaks_so_far_kw=peaks_so_far_kw,
                                  demand_history_kw=demand_history_kw, time_limit_s=time_limit_s,
                                  discharge_chargers=discharge_chargers,
                                  export_limit_kw=export_limit_kw)
    if not active:
        return plan_with_terms(scenario, None, **kwargs)
    chosen = [(e, program_for(e, programs)) for e in active]
    terms = EventTerms.none(len(index))
    counterfactual = None
    if can_discharge(scenario, discharge_chargers) or any(e.kind == "reduce" for e in active):
        counterfactual = _load(plan_with_terms(scenario, None, **kwargs))
    described = {}
    for event, program in chosen:
        baseline = None
        if counterfactual is not None:
            baseline = event_baseline(program, event, _with_history(history_kw, counterfactual),
                                      scenario.horizon.timezone,
                                      exclude_days=event_days(events, scenario.horizon.timezone),
                                      counterfactual_kw=counterfactual)
            described[event.event_id] = baseline.describe()
        terms = terms.combine(event_terms(event, program, index, baseline))
    plan = plan_with_terms(scenario, terms, **kwargs)
    plan.info["dr_baselines"] = described
    return plan


@dataclass(frozen=True)
class EventDecision:
    """Whether the depot takes part in an event, why, and what it earns or costs.

    Attributes
    ----------
    event : DREvent
        The event.
    participate : bool
        Take part (opt in) or not (opt out).
    reason : str
        One plain sentence: ``"declined: V07 would leave at 62 % instead of 90 %"``.
    settlement : EventSettlement or None
        What the event settles to: as run when taking part; as measured on the plan without the
        event when declining costs a penalty; ``None`` when declining is free or the event was
        cancelled.
    if_taken : EventSettlement or None
        What it would settle to when taking part (for reports of declined events).
    extra_bill_usd : float or None
        Bill with the event − bill without [$].
    bill_delta : dict
        The same by line item (``energy``, ``demand``, ``export_credit``) [$].
    at_risk : tuple of str
        Departures that would miss their target with the event ("V07 would leave at 62 % instead
        of 90 %"), worst first.
    decided_at : pandas.Timestamp or None
        When it was decided (a re-plan from there), ``None`` = known in advance.
    over_cap : bool
        The event is beyond its program's caps.
    plan : Plan or None
        The plan with the event (taking part), ``None`` when not planned.
    """

    event: DREvent
    participate: bool
    reason: str
    settlement: EventSettlement | None = None
    if_taken: EventSettlement | None = None
    extra_bill_usd: float | None = None
    bill_delta: dict[str, float] = field(default_factory=dict)
    at_risk: tuple[str, ...] = ()
    decided_at: pd.Timestamp | None = None
    over_cap: bool = False
    plan: Plan | None = field(default=None, repr=False, compare=False)

    @property
    def net_usd(self) -> float:
        """What the event is worth to the depot as decided: settlement net, minus the extra bill
        when taking part [$]."""
        net = self.settlement.net_usd if self.settlement is not None else 0.0
        if self.participate and self.extra_bill_usd is not None:
            net -= self.extra_bill_usd
        return net

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready decision with its settlement."""
        e = self.event
        out: dict[str, Any] = {
            "event_id": e.event_id,
            "program": e.program,
            "start": e.start.isoformat(),
            "end": e.end.isoformat(),
            "kind": e.kind,
            "value": e.value,
            "cancelled": e.cancelled,
            "notice_minutes": None if e.notice_minutes is None else round(e.notice_minutes, 1),
            "decision": ("cancelled" if e.cancelled else
                         "accepted" if self.participate else "declined"),
            "reason": self.reason,
            "decided_at": None if self.decided_at is None else self.decided_at.isoformat(),
            "over_cap": self.over_cap,
            "at_risk": list(self.at_risk),
            "extra_bill_usd": (None if self.extra_bill_usd is None
                               else round(self.extra_bill_usd, 2)),
            "bill_delta": {k: round(v, 2) for k, v in self.bill_delta.items()},
            "settlement": None if self.settlement is None else self.settlement.to_dict(),
            "if_taken": None if self.if_taken is None else self.if_taken.to_dict(),
            "net_usd": round(self.net_usd, 2),
        }
        return out


def _pct(soc: float) -> str:
    return f"{100 * soc:.0f} %"


def readiness_losses(without: Outcome, with_event: Outcome) -> tuple[str, ...]:
    """Departures met without the event and missed with it, worst shortfall first, each as
    ``"V07 would leave at 62 % instead of 90 %"``."""
    a = without.readiness.per_session.set_index("session_id")
    b = with_event.readiness.per_session.set_index("session_id")
    lost = b[b.index.isin(a.index[a["met"]]) & ~b["met"]].sort_values("shortfall_kwh",
                                                                      ascending=False)
    return tuple(f"{r.vehicle_id} would leave at {_pct(r.departure_soc)} instead of "
                 f"{_pct(r.target_soc)}" for r in lost.itertuples())


def _money(x: float) -> str:
    return f"-${-x:,.2f}" if round(x, 2) < 0 else f"${abs(x):,.2f}"


def _signed(x: float) -> str:
    """``+$12.00`` / ``-$3.50`` / ``$0.00``."""
    return _money(x) if round(x, 2) <= 0 else f"+{_money(x)}"


def _bill_parts(with_bill: Bill, without_bill: Bill) -> dict[str, float]:
    return {"energy": with_bill.energy - without_bill.energy,
            "demand": with_bill.demand - without_bill.demand,
            "export_credit": with_bill.export_credit - without_bill.export_credit}


def _breakdown(parts: dict[str, float]) -> str:
    names = {"demand": "demand charge", "energy": "energy", "export_credit": "export credit"}
    shown = [f"{names[k]} {'+' if v > 0 else '-'}${abs(v):,.2f}"
             for k, v in sorted(parts.items(), key=lambda kv: -abs(kv[1])) if abs(v) >= 0.005]
    return f" ({', '.join(shown)})" if shown else ""


def judge(
    event: DREvent,
    program: DRProgram,
    without: Outcome,
    with_event: Outcome,
    bill_without: Bill,
    bill_with: Bill,
    taken: EventSettlement,
    not_taken: EventSettlement,
    over_cap: bool = False,
) -> tuple[bool, str, EventSettlement | None, tuple[str, ...]]:
    """The decision rule (module docstring): readiness first, then money.

    Returns
    -------
    participate, reason, settlement, at_risk
        ``settlement`` is ``taken`` when taking part, ``not_taken`` when declining costs a
        penalty, else ``None``.
    """
    at_risk = readiness_losses(without, with_event)
    free_because = program.free_opt_out_reason(event, over_cap)
    free = program.opt_out == "free" or free_because is not None
    decline_value = 0.0 if free else not_taken.net_usd
    extra = bill_with.total - bill_without.total
    parts = _bill_parts(bill_with, bill_without)
    take_value = taken.net_usd - extra
    if not free:
        penalty_note = ("" if not_taken.penalty_usd < TIE_USD else
                        f"; declining costs the program's {_money(not_taken.penalty_usd)} penalty")
    elif program.opt_out == "penalty" and event.kind != "price":
        penalty_note = f"; declining is free: {free_because}"
    else:
        penalty_note = ""
    if at_risk:
        more = f" (and {len(at_risk) - 1} more)" if len(at_risk) > 1 else ""
        return False, f"declined: {at_risk[0]}{more}{penalty_note}", (
            None if free else not_taken), at_risk
    earn_text = (f"earnings {_money(taken.payment_usd)}" if taken.penalty_usd < TIE_USD
                 else f"earnings {_money(taken.payment_usd)} − penalty "
                      f"{_money(taken.penalty_usd)}")
    if take_value >= decline_value - TIE_USD:
        if not free and not_taken.penalty_usd >= TIE_USD:
            reason = (f"accepted: declining would cost {_money(not_taken.penalty_usd)} in "
                      f"penalties; taking part: {earn_text}, bill {_signed(extra)}"
                      f"{_breakdown(parts)}")
        elif abs(extra) < TIE_USD:
            reason = f"accepted: {earn_text} at no extra cost on the bill"
        elif extra < 0:
            reason = (f"accepted: {earn_text}, and the bill falls by {_money(-extra)}"
                      f"{_breakdown(parts)}")
        else:
            reason = f"accepted: {earn_text} > extra bill {_money(extra)}{_breakdown(parts)}"
        return True, reason, taken, ()
    if free:  # then take_value < 0: the earnings do not cover the extra bill
        return False, (f"declined: {earn_text} < extra cost {_money(extra)}"
                       f"{_breakdown(parts)}{penalty_note}"), None, ()
    reason = (f"declined: taking part nets {_money(take_value)} ({earn_text}, bill "
              f"{_signed(extra)}), declining {_money(decline_value)}")
    return False, reason, not_taken, ()


@dataclass(frozen=True)
class DRStudy:
    """A DR study: every event's decision and settlement, season totals, the plans.

    ``base`` is the plan without events, ``final`` the plan with every accepted event (both
    ``None`` when settling metered data, which is then ``metered_kw``).
    """

    scenario: Scenario
    programs: dict[str, DRProgram]
    events: tuple[DREvent, ...]
    decisions: tuple[EventDecision, ...]
    seasons: tuple[SeasonSettlement, ...]
    base: Outcome | None = None
    final: Outcome | None = None
    metered_kw: pd.Series | None = field(default=None, repr=False, compare=False)

    @property
    def metered(self) -> bool:
        """Settled from metered data (nothing planned)."""
        return self.metered_kw is not None

    @property
    def site_load_kw(self) -> pd.Series | None:
        """The site load the events were settled on: metered, or the final plan's [kW]."""
        if self.metered_kw is not None:
            return self.metered_kw
        return self.final.site_load_kw if self.final is not None else None

    @property
    def net_usd(self) -> float:
        """Events' net worth plus capacity payments [$]."""
        return (sum(d.net_usd for d in self.decisions)
                + sum(s.capacity_payment_usd for s in self.seasons))

    def to_dict(self) -> dict[str, Any]:
        """The study as JSON-ready data (the ``fleetcharge dr --json`` contract)."""
        out: dict[str, Any] = {
            "scenario": self.scenario.name,
            "mode": "metered" if self.metered else "plan",
            "events": [d.to_dict() for d in self.decisions],
            "seasons": [s.to_dict() for s in self.seasons],
            "totals": {
                "accepted": sum(d.participate for d in self.decisions),
                "declined": sum(not d.participate and not d.event.cancelled
                                for d in self.decisions),
                "cancelled": sum(d.event.cancelled for d in self.decisions),
                "delivered_kwh": round(sum(d.settlement.delivered_kwh for d in self.decisions
                                           if d.participate and d.settlement), 3),
                "payment_usd": round(sum(d.settlement.payment_usd for d in self.decisions
                                         if d.settlement), 2),
                "penalty_usd": round(sum(d.settlement.penalty_usd for d in self.decisions
                                         if d.settlement), 2),
                "capacity_payment_usd": round(sum(s.capacity_payment_usd
                                                  for s in self.seasons), 2),
                "extra_bill_usd": round(sum(d.extra_bill_usd for d in self.decisions
                                            if d.participate and d.extra_bill_usd), 2),
                "net_usd": round(self.net_usd, 2),
            },
        }
        if self.base is not None and self.final is not None:
            out["bill"] = {"without_events": round(self.base.bill.total, 2),
                           "with_accepted_events": round(self.final.bill.total, 2)}
            out["readiness"] = {"without_events": self.base.readiness.to_dict(),
                                "with_accepted_events": self.final.readiness.to_dict()}
        return out


def _decision_step(event: DREvent, index: pd.DatetimeIndex) -> int:
    """First step the depot can act on an event: the step after it was notified (0 when it was
    known before the horizon)."""
    if event.received_at is None or event.received_at <= index[0]:
        return 0
    return int(np.searchsorted(index.asi8, event.received_at.value, side="left"))


def soc_at(plan: Plan, k: int) -> np.ndarray:
    """SOC of every session at the start of step ``k`` under ``plan`` [0–1]."""
    arrays = plan.scenario.session_arrays()
    battery = plan.battery_kw(arrays.efficiency, arrays.discharge_efficiency).tocsc()
    gained = np.asarray(battery[:, :k].sum(axis=1)).ravel() * plan.scenario.horizon.step_hours
    return arrays.arrival_soc + gained / arrays.usable_kwh


def _splice(before: sp.csr_array | None, after: sp.csr_array | None, shape: tuple[int, int],
            rows_of_after: np.ndarray, k: int, pattern: sp.csr_array) -> sp.csr_array | None:
    """``before`` on steps < k and ``after`` (re-plan rows mapped, steps shifted by k) on the
    rest, on the sparsity pattern of ``pattern``."""
    if before is None and after is None:
        return None
    n_steps = shape[1]
    pat = pattern.tocsr()
    pat.sort_indices()
    row = np.repeat(np.arange(shape[0]), np.diff(pat.indptr))
    col = pat.indices
    data = np.zeros(pat.nnz)
    if before is not None:
        b = before.tocsr()
        b.sort_indices()
        data[:] = b.data if b.nnz == pat.nnz else np.asarray(b[row, col]).ravel()
    late = col >= k
    data[late] = 0.0
    if after is not None:
        a = after.tocoo()
        keys = rows_of_after[a.row].astype(np.int64) * n_steps + (a.col + k)
        order = np.argsort(keys)
        keys = keys[order]
        want = row[late].astype(np.int64) * n_steps + col[late]
        pos = np.minimum(np.searchsorted(keys, want), max(keys.size - 1, 0))
        hit = keys.size > 0
        found = (keys[pos] == want) if hit else np.zeros(want.size, dtype=bool)
        data[np.flatnonzero(late)[found]] = np.asarray(a.data)[order][pos[found]]
    return sp.csr_array((data, col.copy(), pat.indptr.copy()), shape=shape)


def continue_plan(current: Plan, k: int, terms: EventTerms, *,
                  time_limit_s: float | None = None) -> Plan:
    """``current`` up to step ``k``, re-planned from step ``k`` under ``terms``.

    The depot's state at step ``k`` (SOC of the vehicles plugged in, the site's month-to-date
    peaks) comes from ``current``; the re-plan is the live one
    (:func:`~fleetcharge.strategies.rolling.live_scenario`) over the rest of the horizon, mapped
    back onto the scenario's sessions.
    """
    scenario = current.scenario
    horizon = scenario.horizon
    if k <= 0:
        return plan_with_terms(scenario, terms, time_limit_s=time_limit_s)
    now = horizon.index[k]
    arrays = scenario.session_arrays()
    soc = soc_at(current, k)
    plugged_idx = np.flatnonzero((arrays.first < k) & (arrays.stop > k))
    expected_idx = np.flatnonzero(arrays.first >= k)
    sessions = scenario.sessions
    plugged = tuple(PluggedVehicle(sessions[i].vehicle_id, sessions[i].charger_id,
                                   float(min(soc[i], 1.0)), sessions[i].departure,
                                   sessions[i].target_soc, sessions[i].max_kw)
                    for i in plugged_idx)
    metered = _load(current).iloc[:k]
    state = LiveState(scenario, plugged, tuple(sessions[i] for i in expected_idx),
                      metered_kw=metered, building_forecast_kw=scenario.site.building_load_kw)
    hours = (horizon.end - now) / pd.Timedelta(hours=1)
    live = live_scenario(state, now, hours)
    mapping = np.concatenate([plugged_idx, expected_idx])
    if len(live.sessions) != mapping.size:  # live_scenario drops nothing here by construction
        raise RuntimeError("re-plan sessions do not match the scenario's sessions")
    later = plan_with_terms(live, terms.from_step(k),
                            peaks_so_far_kw=peaks_so_far(scenario, metered),
                            time_limit_s=time_limit_s)
    pattern = current.charge_kw
    charge = _splice(current.charge_kw, later.charge_kw, pattern.shape, mapping, k, pattern)
    discharge = _splice(current.discharge_kw, later.discharge_kw, pattern.shape, mapping, k,
                        pattern)
    info = dict(later.info)
    info["replanned_from"] = now.isoformat()
    return Plan(later.strategy, scenario, charge, discharge_kw=discharge, status=later.status,
                info=info)


def _cancelled(event: DREvent) -> EventDecision:
    return EventDecision(event, False, "cancelled by the utility: nothing to do")


def run_dr_study(
    scenario: Scenario,
    events: Sequence[DREvent],
    programs: Mapping[str, DRProgram] | None = None,
    *,
    metered_kw: pd.Series | None = None,
    time_limit_s: float | None = None,
) -> DRStudy:
    """Decide and settle every event of a study (planning), or settle metered data.

    Parameters
    ----------
    scenario : Scenario
        The depot and its horizon; its ``metadata["dr_programs"]`` (from the scenario YAML's
        ``dr: programs:``) are known programs, as are the presets.
    events : sequence of DREvent
        The events (e.g. :func:`fleetcharge.dr.events.read_events_csv`).
    programs : mapping of str to DRProgram, optional
        More programs by name (override the scenario's).
    metered_kw : pandas.Series, optional
        Metered site load [kW]. Given, nothing is planned: every event that was not cancelled is
        settled as taken part in, against this load (after-the-fact analysis).
    time_limit_s : float, optional
        Solver time limit per plan [s].

    Returns
    -------
    DRStudy
        Decisions in event start order, season totals, and the plans without events and with
        the accepted ones.

    Raises
    ------
    InputError
        An event names an unknown program; a metered series that does not cover an event, or a
        program whose baseline metered data cannot give.
    """
    tz = scenario.horizon.timezone
    known = with_presets({**dict(scenario.metadata.get("dr_programs") or {}),
                          **dict(programs or {})})
    for e in events:
        program_for(e, known)
    days = event_days(events, tz)
    over = over_cap_events(events, known, tz)
    if metered_kw is not None:
        return _settle_metered(scenario, events, known, metered_kw, days, over)
    index = scenario.horizon.index
    current = plan_with_terms(scenario, None, time_limit_s=time_limit_s)
    out_current = evaluate(current)
    base = out_current
    accepted = EventTerms.none(len(index))
    decisions: dict[str, EventDecision] = {}
    settlements: dict[str, EventSettlement] = {}
    taken: list[str] = []
    order = sorted(events, key=lambda e: (_decision_step(e, index), e.start))
    for event in order:
        if event.cancelled:
            decisions[event.event_id] = _cancelled(event)
            continue
        program = known[event.program]
        k = _decision_step(event, index)
        cur_load = out_current.site_load_kw
        not_taken_baseline = event_baseline(program, event, cur_load, tz, exclude_days=days,
                                            counterfactual_kw=cur_load)
        plan_baseline = not_taken_baseline
        for _ in range(BASELINE_ROUNDS):
            terms = accepted.combine(event_terms(event, program, index, plan_baseline))
            with_plan = continue_plan(current, k, terms, time_limit_s=time_limit_s)
            out_with = evaluate(with_plan)
            with_baseline = event_baseline(program, event, out_with.site_load_kw, tz,
                                           exclude_days=days, counterfactual_kw=cur_load)
            moved = np.abs(with_baseline.kw.to_numpy() - plan_baseline.kw.to_numpy()).max()
            if event.kind != "reduce" or moved < BASELINE_TOLERANCE_KW:
                break
            plan_baseline = with_baseline  # the day-of adjustment follows the plan's own load
        if_taken = settle_event(event, program, out_with.site_load_kw, with_baseline)
        not_taken = settle_event(event, program, cur_load, not_taken_baseline)
        participate, reason, settlement, at_risk = judge(
            event, program, out_current, out_with, out_current.bill, out_with.bill, if_taken,
            not_taken, event.event_id in over)
        decisions[event.event_id] = EventDecision(
            event, participate, reason, settlement, if_taken,
            out_with.bill.total - out_current.bill.total,
            _bill_parts(out_with.bill, out_current.bill), at_risk,
            index[k] if k > 0 else None, event.event_id in over,
            with_plan)
        if settlement is not None:
            settlements[event.event_id] = settlement
        if participate:
            taken.append(event.event_id)
            current, out_current, accepted = with_plan, out_with, terms
    seasons = settle_seasons(events, settlements, taken, known, index, tz)
    ordered = tuple(decisions[e.event_id] for e in sorted(events, key=lambda e: e.start))
    return DRStudy(scenario, known, tuple(events), ordered, tuple(seasons), base, out_current)


def _settle_metered(scenario: Scenario, events: Sequence[DREvent],
                    programs: dict[str, DRProgram], metered_kw: pd.Series,
                    days: set[dt.date], over: set[str]) -> DRStudy:
    tz = scenario.horizon.timezone
    decisions = []
    settlements: dict[str, EventSettlement] = {}
    for event in sorted(events, key=lambda e: e.start):
        if event.cancelled:
            decisions.append(_cancelled(event))
            continue
        program = programs[event.program]
        covered = event.mask(metered_kw.index).sum() * pd.Timedelta(
            minutes=infer_resolution_min(metered_kw.index))
        if covered < event.end - event.start:
            raise InputError(f"the metered load does not cover event {event.event_id!r} "
                             f"({event.start} to {event.end}); supply meter data for it",
                             location="--metered")
        try:
            baseline = event_baseline(program, event, metered_kw, tz, exclude_days=days)
        except ValueError as exc:
            raise InputError(f"{exc}; give 10 or more days of meter data before each event",
                             location="--metered") from None
        s = settle_event(event, program, metered_kw, baseline)
        settlements[event.event_id] = s
        decisions.append(EventDecision(event, True, "settled from metered data", s, s,
                                       over_cap=event.event_id in over))
    seasons = settle_seasons(events, settlements, settlements, programs,
                             metered_kw.index, tz)
    return DRStudy(scenario, programs, tuple(events), tuple(decisions), tuple(seasons),
                   metered_kw=metered_kw)


def _bill(scenario: Scenario, load_kw: pd.Series, prefix_kw: pd.Series | None) -> Bill:
    """Bill of ``load_kw``, preceded by the metered ``prefix_kw`` of the billing period when it
    joins on (so a month-to-date peak is not charged again)."""
    series = _with_history(prefix_kw, load_kw)
    return compute_bill(scenario.tariff, series, billing_cycle_day=scenario.billing_cycle_day,
                        export_price_per_kwh=scenario.v2g.export_price_per_kwh,
                        resolution_min=scenario.horizon.resolution_min)


def decide_live(
    state: LiveState,
    event: DREvent,
    now: pd.Timestamp,
    programs: Mapping[str, DRProgram] | None = None,
    *,
    horizon_hours: float = 24.0,
    time_limit_s: float | None = None,
) -> EventDecision:
    """Should the depot take part in ``event``, notified ``now``? For the central system (the
    OpenADR VEN's optIn/optOut).

    Plans the next ``horizon_hours`` from ``now`` with the events already accepted
    (``state.dr_events``) and with ``event`` added, and applies :func:`judge`. Bills include the
    metered load so far (``state.metered_kw``), so a month-to-date peak is not counted again.
    The returned decision's ``plan`` is the re-plan honouring the event: when the depot opts in,
    it can be dispatched as is (or re-plan with ``state.dr_events`` extended).

    Parameters
    ----------
    state : LiveState
        The depot now. Programs are ``programs``, else the depot scenario's, plus the presets.
        Only pairs on ``state.discharge_chargers`` may discharge.
    event : DREvent
        The new (or modified) event; a cancelled one is declined at once.
    now : pandas.Timestamp
        tz-aware.
    """
    if event.cancelled:
        return _cancelled(event)
    depot = state.depot
    known = with_presets({**dict(depot.metadata.get("dr_programs") or {}),
                          **dict(programs or {})})
    program = program_for(event, known)
    others = [e for e in state.dr_events if e.event_id != event.event_id and not e.cancelled]
    scenario = live_scenario(state, now, horizon_hours)
    tz = scenario.horizon.timezone
    peaks = peaks_so_far(depot, state.metered_kw)
    kwargs: dict[str, Any] = dict(history_kw=state.metered_kw, peaks_so_far_kw=peaks,
                                  demand_history_kw=state.demand_history_kw,
                                  time_limit_s=time_limit_s,
                                  discharge_chargers=state.discharge_chargers,
                                  export_limit_kw=live_export_limit_kw(scenario, now))
    without = plan_with_events(scenario, others, known, **kwargs)
    with_plan = plan_with_events(scenario, [*others, event], known, **kwargs)
    out_without, out_with = evaluate(without), evaluate(with_plan)
    days = event_days([*others, event], tz)
    history = state.metered_kw
    cf = out_without.site_load_kw

    def baseline(load: pd.Series) -> Baseline:
        return event_baseline(program, event, _with_history(history, load), tz,
                              exclude_days=days, counterfactual_kw=cf)

    taken = settle_event(event, program, out_with.site_load_kw, baseline(out_with.site_load_kw))
    not_taken = settle_event(event, program, cf, baseline(cf))
    bill_without = _bill(depot, cf, history)
    bill_with = _bill(depot, out_with.site_load_kw, history)
    participate, reason, settlement, at_risk = judge(
        event, program, out_without, out_with, bill_without, bill_with, taken, not_taken)
    return EventDecision(event, participate, reason, settlement, taken,
                         bill_with.total - bill_without.total,
                         _bill_parts(bill_with, bill_without), at_risk, now, False, with_plan)
