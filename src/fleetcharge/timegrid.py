"""One time grid for everything: the planning horizon and how intervals map onto its steps.

Conventions (DESIGN.md §3): every timestamp past the input edge is timezone-aware; a step covers
``[t, t + Δ)``; power is the interval-average kW over a step, so energy in a step is
``kW × step_hours``. No other module derives timestamps on its own: strategies, accounting and the
bill engine all take their index, step length and local calendar fields from :class:`Horizon`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

ALLOWED_RESOLUTIONS_MIN = (5, 15, 30, 60)


def to_aware(values: pd.Series | pd.Index | list, timezone: str) -> pd.DatetimeIndex:
    """Parse timestamps once at the input edge and return them tz-aware in ``timezone``.

    Naive values are read as wall-clock time in ``timezone`` (DST gaps shift forward, ambiguous
    fall-back hours take the first occurrence); values that carry an offset are converted.

    Parameters
    ----------
    values : sequence of str or datetime
        Timestamps, each either naive or with a UTC offset (ISO 8601).
    timezone : str
        IANA zone of the site, e.g. ``"America/Los_Angeles"``.

    Returns
    -------
    pandas.DatetimeIndex
        tz-aware in ``timezone``.
    """
    as_str = pd.Index(values).astype(str)
    has_offset = as_str.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    out = pd.Series(pd.NaT, index=range(len(as_str)), dtype=f"datetime64[ns, {timezone}]")
    if has_offset.any():
        aware = pd.to_datetime(as_str[has_offset], utc=True, format="ISO8601")
        out.iloc[np.flatnonzero(has_offset)] = aware.tz_convert(timezone)
    if (~has_offset).any():
        naive = pd.to_datetime(as_str[~has_offset], format="ISO8601")
        out.iloc[np.flatnonzero(~has_offset)] = naive.tz_localize(
            timezone, nonexistent="shift_forward", ambiguous=True
        )
    return pd.DatetimeIndex(out)


@dataclass(frozen=True)
class Horizon:
    """A regular grid of steps ``[start, end)`` of ``resolution_min`` minutes in a site timezone.

    Parameters
    ----------
    start, end : pandas.Timestamp
        tz-aware bounds; ``end - start`` must be a whole number of steps.
    resolution_min : int
        Step length [min]; one of 5, 15, 30, 60.
    timezone : str
        IANA zone used for local calendar fields (tariff hours, weekdays, billing months).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    resolution_min: int
    timezone: str

    def __post_init__(self) -> None:
        if self.resolution_min not in ALLOWED_RESOLUTIONS_MIN:
            raise ValueError(
                f"resolution {self.resolution_min} min is not supported; "
                f"use one of {ALLOWED_RESOLUTIONS_MIN}"
            )
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Horizon start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"Horizon end {self.end} must be after start {self.start}")
        span_min = (self.end - self.start) / pd.Timedelta(minutes=1)
        if span_min % self.resolution_min:
            raise ValueError(
                f"Horizon {self.start}..{self.end} is not a whole number of "
                f"{self.resolution_min}-minute steps"
            )
        object.__setattr__(self, "start", self.start.tz_convert(self.timezone))
        object.__setattr__(self, "end", self.end.tz_convert(self.timezone))

    @property
    def step_hours(self) -> float:
        """Step length Δ [h]."""
        return self.resolution_min / 60.0

    @property
    def n_steps(self) -> int:
        """Number of steps in the horizon."""
        return int((self.end - self.start) / pd.Timedelta(minutes=self.resolution_min))

    @cached_property
    def index(self) -> pd.DatetimeIndex:
        """Step start times, tz-aware in the site timezone (absolute time, so DST-safe).

        Always stored in nanoseconds, whatever unit the inputs had (pandas ≥ 3 infers ``us`` or
        ``s`` from strings), so ``index.asi8`` is nanoseconds everywhere.
        """
        utc = pd.date_range(
            self.start.tz_convert("UTC"),
            periods=self.n_steps,
            freq=pd.Timedelta(minutes=self.resolution_min),
        )
        return utc.tz_convert(self.timezone).as_unit("ns")

    def step_of(self, when: pd.DatetimeIndex) -> np.ndarray:
        """Fractional step position of each timestamp (0.0 = horizon start) [steps]."""
        return (epoch_seconds(when) - epoch_seconds(self.start)) / (self.resolution_min * 60.0)

    def availability(
        self, arrival: pd.DatetimeIndex, departure: pd.DatetimeIndex
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Map plug-in intervals onto steps, with partial first and last steps.

        Returns, per interval, the first step, one past the last step (both clipped to the
        horizon), and the available fraction of the first and last step (an arrival at
        17:40 on a 15-minute grid makes 5/15 of the 17:30 step available).

        Returns
        -------
        first, stop : numpy.ndarray of int
            ``range(first, stop)`` are the steps touched by the interval (empty if outside).
        first_fraction, last_fraction : numpy.ndarray of float
            Available fraction of step ``first`` and of step ``stop - 1`` [0–1]. When the
            interval lies inside one step both hold that step's fraction.
        """
        a = np.clip(self.step_of(arrival), 0.0, self.n_steps)
        d = np.clip(self.step_of(departure), 0.0, self.n_steps)
        first = np.floor(a).astype(np.int64)
        stop = np.ceil(d).astype(np.int64)
        stop = np.maximum(stop, first)
        single = stop - first == 1
        first_fraction = np.where(single, d - a, (first + 1) - a)
        last_fraction = np.where(single, d - a, d - (stop - 1))
        empty = stop <= first
        first_fraction = np.where(empty, 0.0, first_fraction)
        last_fraction = np.where(empty, 0.0, last_fraction)
        return first, stop, first_fraction, last_fraction

    def availability_matrix(
        self, arrival: pd.DatetimeIndex, departure: pd.DatetimeIndex
    ) -> np.ndarray:
        """Dense (n_intervals × n_steps) available fraction of each step [0–1].

        Convenient for small problems and tests; strategies that scale use :meth:`availability`.
        """
        first, stop, ff, lf = self.availability(arrival, departure)
        out = np.zeros((len(first), self.n_steps))
        steps = np.arange(self.n_steps)
        inside = (steps >= first[:, None]) & (steps < stop[:, None])
        out[inside] = 1.0
        rows = np.flatnonzero(stop > first)
        out[rows, first[rows]] = ff[rows]
        out[rows, stop[rows] - 1] = lf[rows]
        return out

    # Local calendar fields, the one place tariffs and billing read them from.
    @cached_property
    def local_month(self) -> np.ndarray:
        """Local calendar month of each step, 1–12."""
        return self.index.month.to_numpy()

    @cached_property
    def local_hour(self) -> np.ndarray:
        """Local hour of each step, 0–23."""
        return self.index.hour.to_numpy()

    @cached_property
    def local_weekday(self) -> np.ndarray:
        """Local day of week of each step, Monday = 0."""
        return self.index.day_of_week.to_numpy()

    def billing_cycles(self, cycle_day: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Billing cycle of each step, for a meter read at local midnight on ``cycle_day``.

        ``cycle_day = 1`` gives calendar months. A cycle is labelled by the month it starts in
        (the month whose monthly-indexed tariff items apply).

        Returns
        -------
        cycle : numpy.ndarray of int
            Cycle number of each step, 0 for the first cycle touched by the horizon.
        start_month : numpy.ndarray of int
            For each cycle, ``year * 12 + month − 1`` of the month it starts in.
        """
        idx = self.index
        ym = idx.year.to_numpy() * 12 + (self.local_month - 1) - (idx.day.to_numpy() < cycle_day)
        start_month, cycle = np.unique(ym, return_inverse=True)
        return cycle.astype(np.int64), start_month.astype(np.int64)

    def demand_windows(self, window_min: int, cycle: np.ndarray) -> tuple[sp.csr_array, np.ndarray]:
        """Clock-aligned demand windows: which steps each window averages.

        Meters integrate demand over fixed windows aligned to the local clock (15 minutes at
        :00, :15, …). When steps are shorter than the window, a window averages its steps;
        otherwise every step is its own window. Windows never straddle a billing cycle.

        Returns
        -------
        matrix : scipy.sparse.csr_array
            (n_windows × n_steps) averaging weights; ``matrix @ load_kw`` is window-average kW.
        first_step : numpy.ndarray of int
            First step of each window (its calendar fields are the window's).
        """
        n = self.n_steps
        if window_min <= self.resolution_min:
            return sp.identity(n, format="csr"), np.arange(n)
        wall_min = (self.index.tz_localize(None).asi8 // 60_000_000_000).astype(np.int64)
        offset_min = wall_min - self.index.asi8 // 60_000_000_000  # differs across DST
        key = wall_min // window_min
        new = np.r_[True, (key[1:] != key[:-1]) | (offset_min[1:] != offset_min[:-1])
                    | (cycle[1:] != cycle[:-1])]
        first = np.flatnonzero(new)
        window_of = np.cumsum(new) - 1
        counts = np.diff(np.r_[first, n])
        matrix = sp.csr_array((1.0 / counts[window_of], (window_of, np.arange(n))),
                              shape=(len(first), n))
        return matrix, first

    @classmethod
    def covering(
        cls, index: pd.DatetimeIndex, resolution_min: int, timezone: str
    ) -> "Horizon":
        """The horizon whose steps start at ``index`` (regular, tz-aware)."""
        step = pd.Timedelta(minutes=resolution_min)
        return cls(index[0], index[-1] + step, resolution_min, timezone)


def wall_days(start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Days between two tz-aware instants on the local wall clock (a DST day counts as one)."""
    return (end.tz_localize(None) - start.tz_localize(None)) / pd.Timedelta(days=1)


def cycle_start(year_month: int, cycle_day: int, timezone: str) -> pd.Timestamp:
    """Local midnight on ``cycle_day`` of month ``year_month`` (``year * 12 + month − 1``)."""
    y, m = divmod(year_month, 12)
    return pd.Timestamp(year=y, month=m + 1, day=cycle_day).tz_localize(
        timezone, nonexistent="shift_forward", ambiguous=True)


def cycle_coverage(covered_start: pd.Timestamp, covered_end: pd.Timestamp, year_month: int,
                   cycle_day: int, timezone: str) -> tuple[float, int, float]:
    """How much of a billing cycle ``[covered_start, covered_end)`` bills, by wall-clock days.

    Returns ``(days, cycle_days, fraction)``: days covered, whole days in the cycle, and their
    ratio (at most 1), the factor fixed charges and subscriptions are pro-rated by.
    """
    days = wall_days(covered_start, covered_end)
    cycle_days = round(wall_days(cycle_start(year_month, cycle_day, timezone),
                                 cycle_start(year_month + 1, cycle_day, timezone)))
    return days, cycle_days, min(days / cycle_days, 1.0)


def month_label(year_month: int) -> str:
    """``"YYYY-MM"`` of a ``year * 12 + month − 1`` number."""
    return f"{year_month // 12:04d}-{year_month % 12 + 1:02d}"


def epoch_seconds(when: pd.DatetimeIndex | pd.Timestamp) -> np.ndarray:
    """Seconds since 1970-01-01 UTC, whatever the datetime unit pandas stores (ns, us, s)."""
    return np.asarray((when - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=float)


def infer_resolution_min(index: pd.DatetimeIndex) -> int:
    """Resolution of a regular series [min]; raises ``ValueError`` naming the first gap."""
    if len(index) < 2:
        raise ValueError("a time series needs at least two rows to infer its resolution")
    diffs_s = np.round(np.diff(epoch_seconds(index))).astype(np.int64)
    step_s = int(np.median(diffs_s))
    bad = np.flatnonzero(diffs_s != step_s)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"rows {i + 2} and {i + 3} ({index[i]} → {index[i + 1]}) are "
            f"{diffs_s[i] / 60:g} min apart but the series is every {step_s / 60:g} min; "
            "timestamps must be regular and sorted"
        )
    if step_s % 60:
        raise ValueError(f"resolution of {step_s} s is not a whole number of minutes")
    return step_s // 60
