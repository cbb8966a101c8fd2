"""Baselines: what the site would have drawn in an event window had there been no event.

Two methods:

- :func:`ten_of_ten` — the customer load baseline utilities settle with: the average load of
  the 10 most recent similar non-event days at the same clock time, scaled by a day-of
  adjustment from the hours just before the event.
- the *counterfactual* — the depot's own plan without the event (a planning study knows it;
  a meter does not). :func:`event_baseline` falls back to it when there is too little history
  for 10-of-10.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleetcharge.dr.events import DREvent
from fleetcharge.dr.programs import DRProgram

#: Days before the event day searched for similar non-event days (CAISO: 45).
LOOKBACK_DAYS = 45
#: Fewest similar days a 10-of-10 baseline is computed from (our rule, below it: counterfactual).
MIN_BASELINE_DAYS = 5
#: Day-of adjustment window: ``ADJUSTMENT_HOURS`` hours ending ``ADJUSTMENT_GAP_HOURS`` before
#: the event start (hours −4 to −1: the first three of the four hours before the event).
ADJUSTMENT_HOURS = 3
ADJUSTMENT_GAP_HOURS = 1


@dataclass(frozen=True)
class Baseline:
    """A baseline over an event's steps.

    Attributes
    ----------
    kw : pandas.Series
        Baseline load on the event's steps (tz-aware index) [kW].
    method : str
        ``"10-of-10"`` or ``"counterfactual"``.
    days : tuple of datetime.date
        Similar days averaged (10-of-10 only).
    adjustment : float
        Day-of factor applied (1.0 = none).
    note : str
        Why a fallback was used, or ``""``.
    """

    kw: pd.Series
    method: str
    days: tuple[dt.date, ...] = ()
    adjustment: float = 1.0
    note: str = ""

    def describe(self) -> str:
        """``"10-of-10 (10 days, day-of ×1.08)"`` or ``"counterfactual (…note…)"``."""
        if self.method == "10-of-10":
            adj = f", day-of ×{self.adjustment:.2f}" if abs(self.adjustment - 1) > 5e-3 else ""
            return f"10-of-10 ({len(self.days)} days{adj})"
        return "plan without the event" + (f" ({self.note})" if self.note else "")


def _local_naive(load_kw: pd.Series, timezone: str) -> pd.Series:
    """``load_kw`` on local wall-clock time (the repeated fall-back hour averaged)."""
    local = load_kw.copy()
    local.index = load_kw.index.tz_convert(timezone).tz_localize(None)
    if not local.index.is_unique:
        local = local.groupby(level=0).mean()
    return local


def _day_type(day: dt.date) -> bool:
    """True for a weekday (Monday–Friday)."""
    return day.weekday() < 5


def ten_of_ten(
    load_kw: pd.Series,
    event: DREvent,
    timezone: str,
    *,
    exclude_days: Iterable[dt.date] = (),
    days: int = 10,
    adjustment_cap: float = 0.2,
    lookback_days: int = LOOKBACK_DAYS,
    min_days: int = MIN_BASELINE_DAYS,
) -> Baseline:
    r"""The 10-of-10 customer load baseline of ``event`` with a day-of adjustment.

    Parameters
    ----------
    load_kw : pandas.Series
        Site load, interval-average kW on a regular tz-aware index covering the event, the
        adjustment window before it and the days before it [kW].
    event : DREvent
        The event; the baseline covers the steps of ``load_kw`` that overlap its window.
    timezone : str
        Site timezone: days and clock times are local.
    exclude_days : iterable of datetime.date
        Other event days (local dates), never used as similar days.
    days : int, default 10
        Similar days to average.
    adjustment_cap : float, default 0.2
        Largest day-of adjustment as a fraction (±20 %); 0 = none.
    lookback_days : int, default 45
        How far back similar days are searched [days].
    min_days : int, default 5
        Fewest similar days accepted.

    Returns
    -------
    Baseline
        ``method="10-of-10"``, the days used and the day-of factor.

    Raises
    ------
    ValueError
        Fewer than ``min_days`` similar days with complete data in the look-back; the message
        says how many were found.

    Notes
    -----
    Similar days are the most recent days before the event day of the same type (Monday–Friday
    or weekend; public holidays are not recognised), not in ``exclude_days`` and with load data
    at every clock time needed. With :math:`D` those days, :math:`L_d(τ)` the load on day
    :math:`d` at local clock time :math:`τ` and :math:`A` the adjustment window (the three
    hours ending one hour before the event start):

    .. math::

        B(τ) = s \cdot \frac{1}{|D|}\sum_{d∈D} L_d(τ),\qquad
        s = \mathrm{clip}\left(\frac{\overline{L_{event\,day}}(A)}
        {\frac{1}{|D|}\sum_d \overline{L_d}(A)},\ 1 − c,\ 1 + c\right)

    This follows the CAISO *Customer Load Baseline*: "10 in 10" non-event day selection with a
    load point (day-of) adjustment capped at ±20 % (CAISO Business Practice Manual for Metering,
    §10, performance evaluation methodologies), which the California utilities' DR programs
    settle with (PG&E's Capacity Bidding Program, Electric Schedule E-CBP, uses the same
    10-day average and day-of window with its own cap; set ``adjustment_cap``). This is our
    reading of the published methods; check the program's current tariff sheet before settling
    real money. The search window (45 days) is CAISO's; the ``min_days`` fallback is ours.
    """
    step = load_kw.index[1] - load_kw.index[0]
    local = _local_naive(load_kw.astype(float), timezone)
    in_event = event.mask(load_kw.index)
    event_index = load_kw.index[in_event]
    if len(event_index) == 0:
        raise ValueError(f"event {event.event_id!r}: the load series does not cover "
                         f"{event.start} to {event.end}")
    event_local = event_index.tz_convert(timezone).tz_localize(None)
    start_local = event.start.tz_convert(timezone).tz_localize(None)
    adj_end = start_local - pd.Timedelta(hours=ADJUSTMENT_GAP_HOURS)
    adj_times = pd.date_range(adj_end - pd.Timedelta(hours=ADJUSTMENT_HOURS), adj_end,
                              freq=step, inclusive="left")
    event_day = start_local.date()
    excluded = set(exclude_days) | {event_day}
    chosen: list[dt.date] = []
    profiles: list[np.ndarray] = []
    adj_means: list[float] = []
    for back in range(1, lookback_days + 1):
        day = event_day - dt.timedelta(days=back)
        if day in excluded or _day_type(day) != _day_type(event_day):
            continue
        shift = pd.Timedelta(days=back)
        profile = local.reindex(event_local - shift).to_numpy(dtype=float)
        before = local.reindex(adj_times - shift).to_numpy(dtype=float)
        if np.isnan(profile).any() or (adjustment_cap > 0 and np.isnan(before).any()):
            continue
        chosen.append(day)
        profiles.append(profile)
        adj_means.append(float(before.mean()) if before.size else 0.0)
        if len(chosen) == days:
            break
    if len(chosen) < min(min_days, days):
        raise ValueError(f"only {len(chosen)} similar non-event day(s) with data in the "
                         f"{lookback_days} days before {event_day} (10-of-10 needs at least "
                         f"{min(min_days, days)})")
    base = np.mean(profiles, axis=0)
    factor = 1.0
    if adjustment_cap > 0:
        today = local.reindex(adj_times).to_numpy(dtype=float)
        reference = float(np.mean(adj_means))
        if not np.isnan(today).any() and today.size and reference > 0:
            factor = float(np.clip(today.mean() / reference, 1 - adjustment_cap,
                                   1 + adjustment_cap))
    return Baseline(pd.Series(base * factor, index=event_index, name="baseline_kw"),
                    "10-of-10", tuple(chosen), factor)


def event_baseline(
    program: DRProgram,
    event: DREvent,
    load_kw: pd.Series,
    timezone: str,
    *,
    exclude_days: Iterable[dt.date] = (),
    counterfactual_kw: pd.Series | None = None,
) -> Baseline:
    """The baseline ``program`` settles ``event`` against.

    Parameters
    ----------
    program : DRProgram
        Its ``baseline`` method, ``baseline_days`` and ``baseline_adjustment_cap`` apply.
    event : DREvent
        The event.
    load_kw : pandas.Series
        The site load as it happened (metered) or as planned *with* the event [kW]; 10-of-10
        takes the days before the event and the day-of window from it.
    timezone : str
        Site timezone.
    exclude_days : iterable of datetime.date
        Local dates of the other events.
    counterfactual_kw : pandas.Series, optional
        The site load planned without the event [kW]: the ``counterfactual`` baseline, and the
        fallback when 10-of-10 lacks history.

    Raises
    ------
    ValueError
        The program needs the counterfactual (or 10-of-10 has too little history) and none
        is given.
    """
    reason = ""
    if program.baseline == "10-of-10":
        try:
            return ten_of_ten(load_kw, event, timezone, exclude_days=exclude_days,
                              days=program.baseline_days,
                              adjustment_cap=program.baseline_adjustment_cap)
        except ValueError as exc:
            reason = str(exc)
    if counterfactual_kw is None:
        need = reason or f"program {program.name!r} settles against the plan without the event"
        raise ValueError(f"event {event.event_id!r}: {need}, and no plan without the event is "
                         "given (metered data cannot show it)")
    window = counterfactual_kw[event.mask(counterfactual_kw.index)].rename("baseline_kw")
    note = f"10-of-10 not possible: {reason}" if reason else ""
    return Baseline(window.astype(float), "counterfactual", note=note)
