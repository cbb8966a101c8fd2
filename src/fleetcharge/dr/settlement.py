r"""Settlement: what each event earned or cost, and each season's totals against the caps.

Per event, on the steps of the site-load series that overlap the event window (a step only
partly inside counts with the overlapping fraction :math:`f_t`), with baseline :math:`B_t`,
actual import :math:`A_t` (export negative) [kW] and step length Δ [h]:

.. math::

    \text{reduced} = \sum_t f_t Δ \max(\max(B_t, 0) − \max(A_t, 0),\ 0)
    \qquad \text{exported} = \sum_t f_t Δ \max(−A_t, 0)

    \text{short} = \begin{cases}
        \sum_t f_t Δ \max(N − \max(B_t − A_t, 0),\ 0) & \text{reduce by } N \text{ kW} \\
        \sum_t f_t Δ \max(A_t − P,\ 0) & \text{curtail to } P \text{ kW} \\
        0 & \text{price}
    \end{cases}

    \text{payment} = ρ \cdot \text{reduced} + ρ_x \cdot \text{exported},\qquad
    \text{penalty} = π \cdot \text{short}

with ρ the program's $/kWh for reduction (a ``price`` event's own value), ρ_x its $/kWh for
export and π its penalty per kWh short. A reduce event is short at most N kW in any interval
(load above the baseline delivers nothing; it does not count as negative delivery); a curtail
event is short by every kWh above its level (a firm service level). An interval above the
baseline earns nothing and is not netted against other intervals. Capacity payments are per
season: committed kW × $/kW-month × program months covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fleetcharge.dr.baseline import Baseline
from fleetcharge.dr.events import DREvent
from fleetcharge.dr.programs import DRProgram, program_months, season_of
from fleetcharge.timegrid import infer_resolution_min


@dataclass(frozen=True)
class EventSettlement:
    """What one event paid and charged.

    Attributes
    ----------
    event : DREvent
        The event.
    baseline : Baseline
        The baseline it was measured against.
    actual_kw : pandas.Series
        Site import on the event's steps [kW] (export negative).
    reduced_kwh, exported_kwh, short_kwh : float
        Import reduced below the baseline, energy exported, and the under-delivery [kWh].
    payment_usd, penalty_usd : float
        Energy payment (reduction + export) and under-delivery penalty [$].
    """

    event: DREvent
    baseline: Baseline
    actual_kw: pd.Series
    reduced_kwh: float
    exported_kwh: float
    short_kwh: float
    payment_usd: float
    penalty_usd: float

    @property
    def delivered_kwh(self) -> float:
        """Reduction plus export [kWh]."""
        return self.reduced_kwh + self.exported_kwh

    @property
    def net_usd(self) -> float:
        """Payment − penalty [$]."""
        return self.payment_usd - self.penalty_usd

    @property
    def baseline_avg_kw(self) -> float:
        """Average baseline over the event [kW]."""
        return float(self.baseline.kw.mean())

    @property
    def actual_avg_kw(self) -> float:
        """Average site load over the event [kW]."""
        return float(self.actual_kw.mean())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (kW, kWh to 3 decimals, $ to cents)."""
        return {
            "baseline_method": self.baseline.describe(),
            "baseline_kw": round(self.baseline_avg_kw, 3),
            "actual_kw": round(self.actual_avg_kw, 3),
            "reduced_kwh": round(self.reduced_kwh, 3),
            "exported_kwh": round(self.exported_kwh, 3),
            "delivered_kwh": round(self.delivered_kwh, 3),
            "short_kwh": round(self.short_kwh, 3),
            "payment_usd": round(self.payment_usd, 2),
            "penalty_usd": round(self.penalty_usd, 2),
            "net_usd": round(self.net_usd, 2),
        }


def overlap_fraction(event: DREvent, index: pd.DatetimeIndex) -> np.ndarray:
    """Fraction of each step ``[t, t + Δ)`` of ``index`` inside the event window [0–1]."""
    if event.cancelled or len(index) == 0:
        return np.zeros(len(index))
    step = pd.Timedelta(minutes=infer_resolution_min(index)) if len(index) > 1 else (
        pd.Timedelta(minutes=15))
    t0 = index.tz_convert("UTC").as_unit("ns").asi8
    lo = np.maximum(t0, event.start.value)
    hi = np.minimum(t0 + step.value, event.end.value)
    return np.clip((hi - lo) / step.value, 0.0, 1.0)


def settle_event(event: DREvent, program: DRProgram, actual_kw: pd.Series,
                 baseline: Baseline | pd.Series) -> EventSettlement:
    """Settle ``event`` of ``program``: reduction, export, under-delivery, payment, penalty.

    Parameters
    ----------
    event : DREvent
        The event (a cancelled event settles to zero).
    program : DRProgram
        Its rates.
    actual_kw : pandas.Series
        Site load (metered, or planned) on a regular tz-aware index covering the event [kW];
        import positive, export negative.
    baseline : Baseline or pandas.Series
        The baseline on the same steps (a Series is taken as a counterfactual baseline) [kW].

    Returns
    -------
    EventSettlement
        See the module docstring for the formulas.
    """
    if not isinstance(baseline, Baseline):
        baseline = Baseline(baseline.astype(float), "counterfactual")
    frac_all = overlap_fraction(event, actual_kw.index)
    inside = frac_all > 0
    actual = actual_kw[inside].astype(float)
    b = baseline.kw.reindex(actual.index).to_numpy(dtype=float)
    if np.isnan(b).any():
        raise ValueError(f"event {event.event_id!r}: the baseline does not cover every step of "
                         "the event")
    a = actual.to_numpy()
    step_h = (infer_resolution_min(actual_kw.index) / 60.0) if len(actual_kw) > 1 else 0.25
    w = frac_all[inside] * step_h  # hours of each step inside the event
    reduced = float(w @ np.maximum(np.maximum(b, 0.0) - np.maximum(a, 0.0), 0.0))
    exported = float(w @ np.maximum(-a, 0.0))
    if event.kind == "reduce":
        short = float(w @ np.maximum(event.value - np.maximum(b - a, 0.0), 0.0))
    elif event.kind == "curtail":
        short = float(w @ np.maximum(a - event.value, 0.0))
    else:
        short = 0.0
    payment = program.reduction_rate_per_kwh(event) * reduced + (
        program.export_payment_per_kwh * exported)
    return EventSettlement(event, baseline, actual.rename("actual_kw"), reduced, exported, short,
                           float(payment), float(program.penalty_per_kwh * short))


def over_cap_events(events: Iterable[DREvent], programs: Mapping[str, DRProgram],
                    timezone: str) -> set[str]:
    """Ids of called events beyond their program's caps (events per season, hours per year).

    Events are counted in start order; cancelled events are not calls.
    """
    count: dict[tuple[str, str], int] = {}
    hours: dict[tuple[str, int], float] = {}
    over: set[str] = set()
    for e in sorted((e for e in events if not e.cancelled), key=lambda e: e.start):
        p = programs[e.program]
        season = (p.name, season_of(p, e.start, timezone))
        year = (p.name, e.start.tz_convert(timezone).year)
        count[season] = count.get(season, 0) + 1
        hours[year] = hours.get(year, 0.0) + e.duration_h
        if ((p.cap_events_per_season is not None and count[season] > p.cap_events_per_season)
                or (p.cap_hours_per_year is not None
                    and hours[year] > p.cap_hours_per_year + 1e-9)):
            over.add(e.event_id)
    return over


@dataclass(frozen=True)
class SeasonSettlement:
    """One program's season: events and hours called and taken part in, against the caps, and
    the money.

    ``capacity_payment_usd`` = committed kW × $/kW-month × program months of the season that
    the study covers; ``energy_payment_usd`` and ``penalty_usd`` sum the season's events.
    """

    program: str
    season: str
    events_called: int
    hours_called: float
    events_taken: int
    hours_taken: float
    cap_events: int | None
    cap_hours: float | None
    over_cap: tuple[str, ...]
    capacity_payment_usd: float
    energy_payment_usd: float
    penalty_usd: float

    @property
    def net_usd(self) -> float:
        """Capacity + energy payments − penalties [$]."""
        return self.capacity_payment_usd + self.energy_payment_usd - self.penalty_usd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready totals."""
        return {
            "program": self.program,
            "season": self.season,
            "events_called": self.events_called,
            "hours_called": round(self.hours_called, 3),
            "events_taken": self.events_taken,
            "hours_taken": round(self.hours_taken, 3),
            "cap_events": self.cap_events,
            "cap_hours": self.cap_hours,
            "over_cap": list(self.over_cap),
            "capacity_payment_usd": round(self.capacity_payment_usd, 2),
            "energy_payment_usd": round(self.energy_payment_usd, 2),
            "penalty_usd": round(self.penalty_usd, 2),
            "net_usd": round(self.net_usd, 2),
        }


def settle_seasons(
    events: Sequence[DREvent],
    settlements: Mapping[str, EventSettlement],
    taken: Iterable[str],
    programs: Mapping[str, DRProgram],
    index: pd.DatetimeIndex,
    timezone: str,
) -> list[SeasonSettlement]:
    """Per program and season: events, hours and money against the program's caps.

    Parameters
    ----------
    events : sequence of DREvent
        Every event of the study (cancelled ones are not counted as called).
    settlements : mapping of event id to EventSettlement
        What each settled event paid and charged (events taken part in, and declined events of
        programs that settle them anyway).
    taken : iterable of str
        Ids of the events the depot took part in.
    programs : mapping of str to DRProgram
        Programs by name.
    index : pandas.DatetimeIndex
        The steps the study covers (for the capacity payment's program months).
    timezone : str
        Site timezone.
    """
    taken = set(taken)
    over = over_cap_events(events, programs, timezone)
    local = index.tz_convert(timezone)
    groups: dict[tuple[str, str], list[DREvent]] = {}
    for e in sorted(events, key=lambda e: e.start):
        p = programs[e.program]
        groups.setdefault((p.name, season_of(p, e.start, timezone)), []).append(e)
    out = []
    for (name, season), evs in groups.items():
        p = programs[name]
        called = [e for e in evs if not e.cancelled]
        did = [e for e in called if e.event_id in taken]
        year = int(season.split()[0])
        months = program_months(p, local[local.year == year])
        settled = [settlements[e.event_id] for e in called if e.event_id in settlements]
        out.append(SeasonSettlement(
            program=name, season=season,
            events_called=len(called), hours_called=sum(e.duration_h for e in called),
            events_taken=len(did), hours_taken=sum(e.duration_h for e in did),
            cap_events=p.cap_events_per_season, cap_hours=p.cap_hours_per_year,
            over_cap=tuple(e.event_id for e in called if e.event_id in over),
            capacity_payment_usd=p.committed_kw * p.capacity_payment_per_kw_month * months,
            energy_payment_usd=float(sum(s.payment_usd for s in settled)),
            penalty_usd=float(sum(s.penalty_usd for s in settled)),
        ))
    return out
