"""Demand-response programs: when events may come, what they pay, what they penalise.

A :class:`DRProgram` is the enrolment side of demand response, in the shape utilities publish
their programs: a season (months) and a daily window in which events may be called; payments per
kWh of load reduced below a baseline, per kWh exported, and per committed kW and month; a penalty
per kWh short of what an event asked; the baseline method the utility settles with; the notice
it guarantees; caps on events per season and hours per year; and whether an event may be
declined for free. The event itself (curtail to a level, reduce by N kW, or a price) is a
:class:`fleetcharge.dr.events.DREvent`.

It extends the V2G study's :class:`fleetcharge.v2g.programs.Program` (a value stream for
export) with what event-by-event planning and settlement need; :meth:`DRProgram.from_program`
and :meth:`DRProgram.to_program` convert between the two, so :data:`EMERGENCY_2_PER_KWH` *is*
:data:`fleetcharge.v2g.programs.ELRP_LIKE` with a baseline and opt-out rule added.

Conventions: a *season* is the program months of one calendar year (a program cannot wrap
past New Year, as in :class:`~fleetcharge.v2g.programs.Program`); hours are local wall-clock
hours in the site timezone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from fleetcharge.dr.events import DREvent
from fleetcharge.v2g.programs import ELRP_LIKE, Program

BaselineMethod = Literal["10-of-10", "counterfactual"]
OptOutRule = Literal["free", "penalty"]
BASELINE_METHODS: tuple[str, ...] = ("10-of-10", "counterfactual")
OPT_OUT_RULES: tuple[str, ...] = ("free", "penalty")
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class DRProgram:
    """A demand-response program the depot is enrolled in.

    Parameters
    ----------
    name : str
        Identifier; events name their program with it.
    months : iterable of int
        Months in which events can be called, 1–12 (stored as a ``frozenset``).
    window_start_hour, window_end_hour : int
        Local hours ``[start, end)`` of one day inside which every event must lie [h],
        ``0 ≤ start < end ≤ 24``; ``0, 24`` = any hour (events may then run past midnight).
    weekdays_only : bool, default True
        Events only Monday–Friday.
    payment_per_kwh : float, default 0
        Paid per kWh of import reduced below the baseline in event intervals [$/kWh] (for a
        ``price`` event the event's own value is paid instead).
    export_payment_per_kwh : float, default 0
        Paid per kWh exported at the meter in event intervals [$/kWh].
    capacity_payment_per_kw_month : float, default 0
        Paid per committed kW for each program month of the season [$/kW-month].
    committed_kw : float, default 0
        Capacity the depot nominated [kW]; drives the capacity payment.
    penalty_per_kwh : float, default 0
        Charged per kWh an event was under-delivered [$/kWh]: for ``reduce``, the reduction short
        of the event's kW; for ``curtail``, the import above the event's level.
        ``price`` events carry no obligation and no penalty.
    baseline : {"10-of-10", "counterfactual"}, default "10-of-10"
        How the utility measures reduction: the 10-of-10 customer load baseline with a
        day-of adjustment (:func:`fleetcharge.dr.baseline.ten_of_ten`), or the depot's own
        plan without the event (a study counterfactual; what a program with a metered
        firm-service level effectively pays against).
    baseline_days : int, default 10
        Similar non-event days averaged by the 10-of-10 baseline.
    baseline_adjustment_cap : float, default 0.2
        Largest day-of adjustment of the 10-of-10 baseline, as a fraction (0.2 = ±20 %,
        CAISO's load point adjustment cap); 0 = no adjustment.
    notice_minutes : int, default 0
        Notice the utility guarantees before an event [min]. An event notified later may be
        declined without penalty.
    max_event_hours : float, optional
        Longest event [h]; ``None`` = no limit.
    cap_events_per_season : int, optional
        Most events the utility may call per season; ``None`` = no cap.
    cap_hours_per_year : float, optional
        Most event hours the utility may call per calendar year [h]; ``None`` = no cap.
    opt_out : {"free", "penalty"}, default "free"
        ``free``: declining an event costs nothing (voluntary programs such as ELRP);
        ``penalty``: the depot's load is settled against the event whether it takes part or
        not, so declining earns the under-delivery penalty (capacity programs). Declining is
        always free for an event with less notice than ``notice_minutes`` or beyond a cap.

    Raises
    ------
    ValueError
        An out-of-range month, hour or amount, or an unknown baseline/opt-out rule; the message
        names the program and the field.
    """

    name: str
    months: frozenset[int]
    window_start_hour: int
    window_end_hour: int
    weekdays_only: bool = True
    payment_per_kwh: float = 0.0
    export_payment_per_kwh: float = 0.0
    capacity_payment_per_kw_month: float = 0.0
    committed_kw: float = 0.0
    penalty_per_kwh: float = 0.0
    baseline: BaselineMethod = "10-of-10"
    baseline_days: int = 10
    baseline_adjustment_cap: float = 0.2
    notice_minutes: int = 0
    max_event_hours: float | None = None
    cap_events_per_season: int | None = None
    cap_hours_per_year: float | None = None
    opt_out: OptOutRule = "free"

    def __post_init__(self) -> None:
        where = f"program {self.name!r}"
        if not str(self.name).strip():
            raise ValueError("a program needs a non-empty name")
        months = frozenset(int(m) for m in self.months)
        object.__setattr__(self, "months", months)
        if not months or not months <= set(range(1, 13)):
            raise ValueError(f"{where}: months must be a non-empty set of 1–12, "
                             f"got {sorted(months)}")
        if not 0 <= self.window_start_hour < self.window_end_hour <= 24:
            raise ValueError(f"{where}: window must satisfy 0 ≤ start < end ≤ 24 h, got "
                             f"{self.window_start_hour}–{self.window_end_hour}")
        for field_name in ("payment_per_kwh", "export_payment_per_kwh",
                           "capacity_payment_per_kw_month", "committed_kw", "penalty_per_kwh",
                           "notice_minutes"):
            value = getattr(self, field_name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{where}: {field_name} must be ≥ 0, got {value!r}")
        if self.baseline not in BASELINE_METHODS:
            raise ValueError(f"{where}: baseline must be one of {', '.join(BASELINE_METHODS)}, "
                             f"got {self.baseline!r}")
        if self.opt_out not in OPT_OUT_RULES:
            raise ValueError(f"{where}: opt_out must be one of {', '.join(OPT_OUT_RULES)}, "
                             f"got {self.opt_out!r}")
        if not 1 <= int(self.baseline_days) <= 45:
            raise ValueError(f"{where}: baseline_days must be 1–45, got {self.baseline_days!r}")
        if not 0 <= self.baseline_adjustment_cap < 1:
            raise ValueError(f"{where}: baseline_adjustment_cap must be in [0, 1) (a fraction, "
                             f"0.2 = ±20 %), got {self.baseline_adjustment_cap!r}")
        for field_name in ("max_event_hours", "cap_events_per_season", "cap_hours_per_year"):
            value = getattr(self, field_name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"{where}: {field_name} must be > 0 (or left out for no "
                                 f"limit), got {value!r}")

    @classmethod
    def from_program(cls, program: Program, **extra: object) -> DRProgram:
        """The DR program of a V2G value-stream :class:`~fleetcharge.v2g.programs.Program`.

        Its payment is paid for load reduced *and* for export (as ELRP pays both), its penalty
        and capacity payment carry over, its yearly hours cap becomes ``cap_hours_per_year``;
        ``extra`` sets the fields a Program does not have (baseline, opt-out, …).
        """
        fields: dict[str, object] = dict(
            name=program.name,
            months=program.months,
            window_start_hour=program.window_start_hour,
            window_end_hour=program.window_end_hour,
            weekdays_only=program.weekdays_only,
            payment_per_kwh=program.payment_per_kwh,
            export_payment_per_kwh=program.payment_per_kwh,
            capacity_payment_per_kw_month=program.capacity_payment_per_kw_month,
            penalty_per_kwh=program.penalty_per_kwh,
            notice_minutes=program.notice_minutes,
            cap_hours_per_year=program.cap_hours_per_year,
        )
        fields.update(extra)
        return cls(**fields)  # type: ignore[arg-type]

    def to_program(self) -> Program:
        """This program as a V2G value stream (:class:`~fleetcharge.v2g.programs.Program`)."""
        return Program(self.name, self.payment_per_kwh, self.months, self.window_start_hour,
                       self.window_end_hour,
                       self.cap_hours_per_year if self.cap_hours_per_year is not None else 8784.0,
                       weekdays_only=self.weekdays_only, notice_minutes=self.notice_minutes,
                       penalty_per_kwh=self.penalty_per_kwh,
                       capacity_payment_per_kw_month=self.capacity_payment_per_kw_month)

    @property
    def season_label(self) -> str:
        """``"May–Oct"``, ``"all year"`` or a list of months."""
        months = sorted(self.months)
        if len(months) == 12:
            return "all year"
        if months == list(range(months[0], months[-1] + 1)):
            return f"{_MONTH_ABBR[months[0] - 1]}–{_MONTH_ABBR[months[-1] - 1]}"
        return ", ".join(_MONTH_ABBR[m - 1] for m in months)

    def window_label(self) -> str:
        """``"16:00–21:00 weekdays"`` or ``"any hour, any day"``."""
        hours = ("any hour" if (self.window_start_hour, self.window_end_hour) == (0, 24)
                 else f"{self.window_start_hour:02d}:00–{self.window_end_hour:02d}:00")
        return f"{hours}, {'weekdays' if self.weekdays_only else 'any day'}"

    def check_event(self, event: DREvent, timezone: str) -> str | None:
        """Why ``event`` cannot belong to this program, or ``None`` if it can.

        Checks the season, the weekday rule, the daily window (in ``timezone``) and the longest
        event; caps and notice are not checked here (a utility may break them; settlement and
        the opt-out rule deal with that).
        """
        start = event.start.tz_convert(timezone)
        last = (event.end - pd.Timedelta(microseconds=1)).tz_convert(timezone)
        if start.month not in self.months or last.month not in self.months:
            return f"program {self.name!r} calls events only in {self.season_label}"
        if self.weekdays_only and (start.day_of_week >= 5 or last.day_of_week >= 5):
            return f"program {self.name!r} calls events on weekdays only"
        wall_start = start.tz_localize(None)  # wall-clock hours (DST days have 23 or 25)
        end_h = ((event.end.tz_convert(timezone).tz_localize(None) - wall_start.normalize())
                 / pd.Timedelta(hours=1))
        start_h = start.hour + start.minute / 60 + start.second / 3600
        any_hour = (self.window_start_hour, self.window_end_hour) == (0, 24)
        if not any_hour and (start_h < self.window_start_hour
                             or end_h > self.window_end_hour + 1e-9):
            return (f"program {self.name!r} calls events only within "
                    f"{self.window_start_hour:02d}:00–{self.window_end_hour:02d}:00 local time "
                    f"on one day ({timezone})")
        if self.max_event_hours is not None and event.duration_h > self.max_event_hours + 1e-9:
            return (f"program {self.name!r} events last at most {self.max_event_hours:g} h, "
                    f"this one {event.duration_h:g} h")
        return None

    def required_kw(self, event: DREvent) -> float:
        """Reduction below the baseline an event asks for [kW]: its value for ``reduce``, else
        0 (a ``curtail`` event asks for a level, see :attr:`DREvent.value`)."""
        return event.value if event.kind == "reduce" else 0.0

    def reduction_rate_per_kwh(self, event: DREvent) -> float:
        """What a kWh reduced below the baseline earns in ``event`` [$/kWh]."""
        return event.value if event.kind == "price" else self.payment_per_kwh

    def free_opt_out_reason(self, event: DREvent, over_cap: bool = False) -> str | None:
        """Why declining ``event`` is free even under a ``penalty`` opt-out rule, else ``None``."""
        if event.kind == "price":
            return "a price signal carries no obligation"
        notice = event.notice_minutes
        if self.notice_minutes > 0 and notice is not None and notice < self.notice_minutes:
            return (f"notice {notice:.1f} min is less than the {self.notice_minutes} min the "
                    "program guarantees")
        if over_cap:
            return "the event is beyond the program's caps"
        return None


EMERGENCY_2_PER_KWH = DRProgram.from_program(ELRP_LIKE, baseline="10-of-10", opt_out="free")
"""The $2/kWh 4–9 pm May–October emergency program (≤ 60 h/yr, no penalty): the V2G study's
:data:`fleetcharge.v2g.programs.ELRP_LIKE`, shaped like PG&E's Emergency Load Reduction Program
(market-and-v2g-economics.md §4.1), paid per kWh reduced below a 10-of-10 baseline and per kWh
exported, free to decline (no penalty for non-performance)."""

CAPACITY_WITH_PENALTY = DRProgram(
    "capacity-with-penalty",
    months=frozenset(range(1, 13)),
    window_start_hour=0,
    window_end_hour=24,
    weekdays_only=False,
    payment_per_kwh=0.30,
    export_payment_per_kwh=0.0,
    capacity_payment_per_kw_month=8.0,
    committed_kw=50.0,
    penalty_per_kwh=1.00,
    baseline="10-of-10",
    notice_minutes=10,
    max_event_hours=4.0,
    cap_events_per_season=15,
    cap_hours_per_year=40.0,
    opt_out="penalty",
)
"""A capacity-style program with penalties. Limits shaped like PGE's Energy Partner (10-minute
notice, events up to 4 h, ≤ 15 events or 40 h per season; tariffs.md §4.1) and PG&E's Capacity
Bidding Program (a monthly payment per committed kW, an energy payment, and a charge for
under-delivery). The rates ($8/kW-month, $0.30/kWh, $1/kWh short) and the 50 kW commitment are
illustrative assumptions, not a published tariff: set yours in the scenario
(``dr: programs: [{preset: capacity-with-penalty, committed_kw: …}]``). Events may come at any
hour of any day, all year, so the preset can be studied on any data."""

#: Programs a scenario or an events CSV may name without defining them.
PRESETS: dict[str, DRProgram] = {p.name: p for p in (EMERGENCY_2_PER_KWH, CAPACITY_WITH_PENALTY)}


def with_presets(programs: Mapping[str, DRProgram] | None) -> dict[str, DRProgram]:
    """The presets, overridden and extended by ``programs`` (by name)."""
    return {**PRESETS, **dict(programs or {})}


def season_of(program: DRProgram, when: pd.Timestamp, timezone: str) -> str:
    """Season label of an event starting ``when``: ``"2025 May–Oct"`` (calendar year + months)."""
    return f"{when.tz_convert(timezone).year} {program.season_label}"


def program_months(program: DRProgram, index: pd.DatetimeIndex) -> int:
    """Program months (year, month) touched by ``index`` — what a capacity payment counts."""
    if len(index) == 0:
        return 0
    ym = np.unique(np.asarray(index.year) * 12 + np.asarray(index.month) - 1)
    return int(np.isin(ym % 12 + 1, sorted(program.months)).sum())
