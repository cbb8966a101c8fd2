"""Programs that pay a depot for export or load reduction, and when they call events.

A :class:`Program` describes a value stream in the shape utility emergency / demand-response
programs are published in: a $/kWh payment for energy exported or load reduced in *called* hours,
inside a seasonal weekday window, with a cap on called hours per year. Which hours a program will
actually call is unknown in advance; :func:`event_hours` picks them deterministically (or with a
seed) so that plans, bills and economics are reproducible.

Convention: hours are local wall-clock hours of the index's timezone (the site timezone, DESIGN.md
§3); a step ``[t, t + Δ)`` is called only if it lies wholly inside a called window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from fleetcharge.timegrid import infer_resolution_min


@dataclass(frozen=True)
class Program:
    """A program paying for export or load reduction during called events.

    Parameters
    ----------
    name : str
        Short identifier.
    payment_per_kwh : float
        Payment for each kWh exported or of load reduced in a called step [$/kWh], ≥ 0.
    months : iterable of int
        Months in which events can be called, 1–12 (stored as a ``frozenset``).
    window_start_hour, window_end_hour : int
        Local event window ``[start, end)`` [h], ``0 ≤ start < end ≤ 24`` (no wrap past midnight).
    cap_hours_per_year : float
        Maximum called hours per calendar year [h], ≥ 0.
    weekdays_only : bool, default True
        Events only Monday–Friday (public holidays are not excluded).
    notice_minutes : int, default 0
        Guaranteed notice before an event [min]; 0 means none is guaranteed. Metadata for the
        planner (a rolling re-plan must be at least this fast); not used in the payment.
    penalty_per_kwh : float, default 0
        Charge per kWh of shortfall against the committed kW in called steps [$/kWh]; 0 = none.
    capacity_payment_per_kw_month : float, default 0
        Payment per committed kW for each program month [$/kW-month].

    Raises
    ------
    ValueError
        An out-of-range month, hour, or a negative amount; the message names the field.
    """

    name: str
    payment_per_kwh: float
    months: frozenset[int]
    window_start_hour: int
    window_end_hour: int
    cap_hours_per_year: float
    weekdays_only: bool = True
    notice_minutes: int = 0
    penalty_per_kwh: float = 0.0
    capacity_payment_per_kw_month: float = 0.0

    def __post_init__(self) -> None:
        months = frozenset(int(m) for m in self.months)
        object.__setattr__(self, "months", months)
        if not months or not months <= set(range(1, 13)):
            raise ValueError(
                f"program {self.name!r}: months must be a non-empty set of 1–12, "
                f"got {sorted(months)}"
            )
        if not 0 <= self.window_start_hour < self.window_end_hour <= 24:
            raise ValueError(
                f"program {self.name!r}: window must satisfy 0 ≤ start < end ≤ 24 h, got "
                f"{self.window_start_hour}–{self.window_end_hour}; split a window past midnight "
                "into two programs"
            )
        for field_name in (
            "payment_per_kwh",
            "cap_hours_per_year",
            "notice_minutes",
            "penalty_per_kwh",
            "capacity_payment_per_kw_month",
        ):
            value = getattr(self, field_name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"program {self.name!r}: {field_name} must be ≥ 0, got {value!r}")

    @property
    def window_hours(self) -> int:
        """Length of one event window [h]."""
        return self.window_end_hour - self.window_start_hour


ELRP_LIKE = Program(
    "emergency-2-per-kwh",
    2.0,
    frozenset(range(5, 11)),
    16,
    21,
    60.0,
    weekdays_only=True,
    notice_minutes=0,
    penalty_per_kwh=0.0,
)
"""An emergency program shaped like PG&E's ELRP: $2/kWh, 4–9 pm, May–October, ≤ 60 h/yr,
no penalty for non-performance (market-and-v2g-economics.md §4.1; DESIGN.md §6 example program).
Weekdays only and no guaranteed notice are our assumptions: the reference notes do not state them.
"""


def event_days(
    program: Program, year: int, n_events: int | None = None, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Days a program calls in one calendar year, and the hours called on each.

    Parameters
    ----------
    program : Program
        The program.
    year : int
        Calendar year.
    n_events : int, optional
        Events (days) to call; default ``ceil(cap_hours_per_year / window_hours)``. Clipped to the
        number of qualifying days.
    seed : int, optional
        ``None`` (default): the deterministic *spread* choice; an int: a uniform random choice of
        qualifying days without replacement, seeded by ``(seed, year)`` so a year's events do not
        depend on which other years are simulated.

    Returns
    -------
    days : numpy.ndarray of datetime64[D]
        Event dates, sorted.
    hours : numpy.ndarray of float
        Hours called on each day from the window start [h]: a full window until the yearly cap
        is used up, then the remainder, then 0.

    Notes
    -----
    The *spread* choice takes the qualifying days (program months, and Monday–Friday when
    ``weekdays_only``) of the whole season and calls the middle day of each of ``n_events``
    equal slices, ``day[floor((k + ½)·D/n)]`` for k = 0 … n−1. It is a proxy for emergency calls,
    which in reality cluster in heat waves; it is deterministic, covers the season evenly, and
    does not depend on the simulated index, so a month simulated alone sees the same events as
    that month inside a full year.
    """
    dates = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    qualifying = dates.month.isin(sorted(program.months))
    if program.weekdays_only:
        qualifying &= dates.day_of_week < 5
    season = dates[qualifying].values.astype("datetime64[D]")
    n_days = len(season)
    if n_events is None:
        n_events = int(np.ceil(program.cap_hours_per_year / program.window_hours))
    if n_events < 0:
        raise ValueError(f"n_events must be ≥ 0, got {n_events}")
    n = min(int(n_events), n_days)
    if seed is None:
        picks = np.floor((np.arange(n) + 0.5) * n_days / max(n, 1)).astype(int)
    else:
        rng = np.random.default_rng([seed, year])
        picks = np.sort(rng.choice(n_days, size=n, replace=False))
    used_before = program.window_hours * np.arange(n, dtype=float)
    hours = np.clip(program.cap_hours_per_year - used_before, 0.0, program.window_hours)
    return season[picks], hours


def event_hours(
    program: Program,
    index: pd.DatetimeIndex,
    n_events: int | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Boolean mask of the steps of ``index`` inside called event hours.

    Parameters
    ----------
    program : Program
        The program.
    index : pandas.DatetimeIndex
        tz-aware, regular step starts (the horizon index); local hours are read in its timezone.
    n_events : int, optional
        Events per calendar year; see :func:`event_days`.
    seed : int, optional
        ``None`` for the deterministic spread choice, an int for a seeded random choice.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` for each step ``[t, t + Δ)`` lying wholly within a called window.

    Raises
    ------
    ValueError
        A naive or irregular index.

    Notes
    -----
    The hours cap applies per calendar year over the whole season (see :func:`event_days`), so for
    any index the called steps of one year total at most ``cap_hours_per_year`` hours.
    """
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("event_hours needs a timezone-aware pandas.DatetimeIndex (site time)")
    step_h = infer_resolution_min(index) / 60.0
    local_day = index.tz_localize(None).normalize().values.astype("datetime64[D]")
    start_h = (index.hour + index.minute / 60.0).to_numpy(dtype=float)
    allowed_h = np.zeros(len(index))
    for year in np.unique(index.year):
        days, hours = event_days(program, int(year), n_events=n_events, seed=seed)
        if len(days) == 0:
            continue
        pos = np.searchsorted(days, local_day)
        found = (pos < len(days)) & (days[np.minimum(pos, len(days) - 1)] == local_day)
        found &= index.year == year
        allowed_h[found] = hours[pos[found]]
    begin = program.window_start_hour
    return (start_h >= begin) & (start_h + step_h <= begin + allowed_h + 1e-9)


def program_price_per_kwh(
    program: Program,
    index: pd.DatetimeIndex,
    seed: int | None = None,
    n_events: int | None = None,
) -> np.ndarray:
    """Payment per kWh exported or reduced in each step [$/kWh].

    Parameters
    ----------
    program : Program
        The program.
    index : pandas.DatetimeIndex
        tz-aware, regular step starts.
    seed : int, optional
        ``None`` for the deterministic spread choice of event days, an int for a seeded random one.
    n_events : int, optional
        Events per calendar year; see :func:`event_days`.

    Returns
    -------
    numpy.ndarray of float
        ``payment_per_kwh`` in called steps, 0 elsewhere [$/kWh]; at most
        ``cap_hours_per_year`` hours per calendar year are non-zero.
    """
    called = event_hours(program, index, n_events=n_events, seed=seed)
    return np.where(called, program.payment_per_kwh, 0.0)


def program_settlement_usd(
    program: Program,
    index: pd.DatetimeIndex,
    delivered_kwh: npt.ArrayLike,
    *,
    committed_kw: float = 0.0,
    seed: int | None = None,
    n_events: int | None = None,
) -> float:
    r"""Net program settlement over ``index`` [$]: energy payment − shortfall penalty + capacity.

    Parameters
    ----------
    program : Program
        The program.
    index : pandas.DatetimeIndex
        tz-aware, regular step starts.
    delivered_kwh : array_like
        Export plus load reduction against the program's baseline in each step [kWh], ≥ 0;
        the baseline itself is the program's business and is not computed here.
    committed_kw : float, default 0
        Committed reduction [kW]; drives the penalty and the capacity payment.
    seed, n_events
        Event choice; see :func:`event_hours`.

    Returns
    -------
    float
        :math:`\sum_{called} (p \cdot e_t - \pi \cdot \max(P_c Δt - e_t, 0))
        + c_{cap} \cdot P_c \cdot M` [$], with M the number of program months (year, month)
        touched by ``index``.
    """
    delivered = np.asarray(delivered_kwh, dtype=float)
    if delivered.shape != (len(index),):
        raise ValueError(
            f"delivered_kwh has shape {delivered.shape} but the index has {len(index)} steps"
        )
    if np.any(delivered < 0) or committed_kw < 0:
        raise ValueError("delivered_kwh and committed_kw must be ≥ 0")
    called = event_hours(program, index, n_events=n_events, seed=seed)
    step_h = infer_resolution_min(index) / 60.0
    shortfall_kwh = np.maximum(committed_kw * step_h - delivered, 0.0)
    energy_usd = program.payment_per_kwh * delivered[called].sum()
    penalty_usd = program.penalty_per_kwh * shortfall_kwh[called].sum()
    months = _program_months(program, index.year * 12 + index.month - 1)
    capacity_usd = program.capacity_payment_per_kw_month * committed_kw * months
    return float(energy_usd - penalty_usd + capacity_usd)


def _program_months(program: Program, year_months: Iterable[int]) -> int:
    distinct = np.unique(np.asarray(list(year_months)))
    return int(np.isin(distinct % 12 + 1, sorted(program.months)).sum())
