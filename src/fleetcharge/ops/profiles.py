"""Plan → OCPP smart-charging profiles: pure translation of planned power into wire payloads.

Everything here is synchronous and side-effect free. Payloads are returned in the **wire format**
(camelCase JSON objects exactly as sent) for OCPP 1.6J, 2.0.1 and 2.1. To send one with the
``ocpp`` library, convert the keys back with ``ocpp.charge_point.camel_to_snake_case`` and pass
them to the version's call class, e.g. ``ocpp.v16.call.SetChargingProfile(**camel_to_snake_case(
payload))``; the library camel-cases them again on the way out. The round trip is exact for every
key emitted here; per-phase 2.1 fields (``limit_L2``, ``setpoint_L3``, …) would not survive it
(the library turns ``limit_L2`` into ``limitL2``), which is why none are emitted.

Pipeline for one transaction::

    session_power(plan, row, since=now)        # kW while plugged in, per step, from now on
      → schedule_periods(kW, step_s, …)        # W or A periods: merged, ≥ min rate, 0.1 steps
      → tx_profile(periods, version=…, …)      # SetChargingProfile(.req / Request) payload

Field names and rules come from the JSON schemas bundled with ``ocpp`` 2.1.0 and from the
specifications: OCPP 1.6 edition 2 §3.13 (smart charging), §5.16 (SetChargingProfile),
§7.8–§7.14 (ChargingProfile, ChargingSchedule, ChargingSchedulePeriod); OCPP 2.0.1/2.1 part 2
functional block K (requirement ids K01.FR.xx quoted where they decide a field) and, for V2X,
block Q of OCPP 2.1 (operationMode ``CentralSetpoint``, Q03/Q04).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fleetcharge.domain import Charger
from fleetcharge.plan import Plan

VERSIONS = ("1.6", "2.0.1", "2.1")
RATE_UNITS = ("A", "W")
#: Resolution of ``limit``: "Accepts at most one digit fraction (e.g. 8.1)" (OCPP 1.6 §7.14; the
#: 1.6 schema enforces ``multipleOf: 0.1``; 2.0.1/2.1 keep the rule in the field description).
LIMIT_STEP = 0.1
_HALF = LIMIT_STEP / 2
#: Planned power closer to zero than this is solver noise, not a setpoint [kW] (1 mW).
_NOISE_KW = 1e-6
#: Float slack for the delivery rule's comparisons (segment energies come from running sums,
#: so an exact tie such as E = 7·⌈m⌉ may arrive as 6.9999999999 [rate units or s]).
_TIE = 1e-9
_TIE_S = 1e-6
_EPOCH = pd.Timestamp(0, tz="UTC")

_MAX_PURPOSE = {"1.6": "ChargePointMaxProfile", "2.0.1": "ChargingStationMaxProfile",
                "2.1": "ChargingStationMaxProfile"}
_PURPOSES = {"TxProfile", "TxDefaultProfile", "ChargePointMaxProfile",
             "ChargingStationMaxProfile"}
_ALLOWED_UNIT_WORDS = {"Current": "A", "A": "A", "Power": "W", "W": "W"}


@dataclass(frozen=True)
class Period:
    """One charging schedule period, in the schedule's rate unit (W total, or A per phase).

    Attributes
    ----------
    start_s : int
        Start relative to the schedule start [s]; the first period starts at 0.
    limit : float
        Charging limit ≥ 0, a multiple of 0.1 [W or A]. 0 during discharge periods.
    setpoint : float or None
        Discharge setpoint < 0, a multiple of 0.1 [W or A] (OCPP 2.1 ``CentralSetpoint``);
        ``None`` for charging periods (``ChargingOnly``).
    """

    start_s: int
    limit: float
    setpoint: float | None = None

    @property
    def rate(self) -> float:
        """The rate the vehicle follows: the setpoint when discharging, else the limit."""
        return self.limit if self.setpoint is None else self.setpoint


@dataclass(frozen=True)
class SessionPower:
    """One session's planned power from a given step on (see :func:`session_power`).

    Attributes
    ----------
    start : pandas.Timestamp
        Start of the first step, tz-aware UTC (at or before the ``since`` asked for).
    step_s : int
        Step length [s].
    power_kw : numpy.ndarray
        Net power while plugged in, per step (charge − discharge) [kW].
    """

    start: pd.Timestamp
    step_s: int
    power_kw: np.ndarray


# --------------------------------------------------------------------------- plan → kW per step


def session_power(plan: Plan, row: int, *, since: pd.Timestamp) -> SessionPower:
    """Net planned power of session ``row`` from the step containing ``since`` to its departure.

    Rows of ``plan.charge_kw``/``discharge_kw`` are ``plan.scenario.sessions``, columns the
    horizon's steps. A plan's kW is the average over the whole step, of which the vehicle is
    plugged in only a fraction ``f`` on its arrival and departure steps
    (:meth:`fleetcharge.timegrid.Horizon.availability`). A profile limit is a power *while*
    charging, so those steps are divided by ``f``: ``p = (c − d) / f``. Since the LP bounds
    ``c ≤ p̄·f``, ``p`` never exceeds the session's cap, and a charger that follows ``p`` while
    the vehicle is there delivers exactly the planned ``(c − d)·Δ`` per step.

    Parameters
    ----------
    plan : Plan
        Any strategy's plan.
    row : int
        Session index into ``plan.scenario.sessions``.
    since : pandas.Timestamp
        tz-aware; steps before the one containing it are left out (never before arrival). The
        first step starts at or before ``since``, as OCPP 1.6 §5.16.4 advises for the
        ``startSchedule`` of a refreshed profile.

    Returns
    -------
    SessionPower
        ``start`` (UTC), ``step_s`` and ``power_kw`` [kW] up to the departure step.

    Raises
    ------
    ValueError
        If ``since`` is naive or the session has already left by ``since``.
    """
    if pd.Timestamp(since).tzinfo is None:
        raise ValueError(f"since={since!r} must be timezone-aware (UTC or with an offset)")
    scenario = plan.scenario
    horizon = scenario.horizon
    session = scenario.sessions[row]
    first, stop, first_fraction, last_fraction = horizon.availability(
        pd.DatetimeIndex([session.arrival]), pd.DatetimeIndex([session.departure]))
    first, stop = int(first[0]), int(stop[0])
    since_step = int(np.floor(horizon.step_of(pd.DatetimeIndex([since]))[0]))
    begin = max(first, since_step)
    if begin >= stop:
        raise ValueError(f"session {session.id} (row {row}) is not plugged in at or after "
                         f"{since}: it departs {session.departure}; send no TxProfile for it")
    fraction = np.ones(stop - first)
    fraction[0], fraction[-1] = first_fraction[0], last_fraction[0]
    net = plan.net_charge_kw()[row:row + 1, begin:stop].toarray()[0]
    frac = fraction[begin - first:]
    power = np.divide(net, frac, out=np.zeros_like(net), where=frac > 0)
    return SessionPower(horizon.index[begin].tz_convert("UTC"), horizon.resolution_min * 60,
                        power)


# ------------------------------------------------------------------------ kW → periods


def number_phases_of(charger: Charger) -> int | None:
    """``numberPhases`` to send for ``charger``: its phases on AC, ``None`` (absent) on DC.

    OCPP 1.6 §7.14 assumes 3 phases when ``numberPhases`` is absent, so a single-phase AC port
    must say 1; on DC EVSEs the field must be absent (OCPP 2.x K01.FR.44).
    """
    return charger.phases if charger.current_type == "AC" else None


def rate_unit_from_allowed(allowed: str, *, current_type: str) -> str:
    """Pick the schedule rate unit a charger accepts, from its configuration value.

    Parameters
    ----------
    allowed : str
        OCPP 1.6 ``ChargingScheduleAllowedChargingRateUnit`` (a comma-separated list of
        ``Current``/``Power``, §9.4) or OCPP 2.x ``SmartChargingCtrlr.RateUnit`` (``A``/``W``).
    current_type : str
        ``"AC"`` or ``"DC"`` (``Charger.current_type``).

    Returns
    -------
    str
        ``"A"`` for AC and ``"W"`` for DC when accepted ("A is more natural for AC and W for
        DC", OCPP 1.6 §7.12), otherwise the other unit. Current limits need an AC port.

    Raises
    ------
    ValueError
        If a word is unknown or no usable unit is accepted.
    """
    words = [w.strip() for w in allowed.split(",") if w.strip()]
    unknown = [w for w in words if w not in _ALLOWED_UNIT_WORDS]
    if unknown or not words:
        raise ValueError(f"allowed rate units {allowed!r}: expected a comma-separated list of "
                         "Current/Power (OCPP 1.6) or A/W (OCPP 2.x)")
    units = {_ALLOWED_UNIT_WORDS[w] for w in words}
    for unit in (("A", "W") if current_type == "AC" else ("W",)):
        if unit in units:
            return unit
    raise ValueError(f"a {current_type} charger accepting only {allowed!r} cannot be sent a "
                     "schedule: current (A) limits need an AC port; configure Power/W")


def schedule_periods(power_kw: np.ndarray | Sequence[float], step_s: float, *, charger: Charger,
                     rate_unit: str, max_periods: int, allow_discharge: bool = False,
                     elapsed_s: int = 0) -> list[Period]:
    """Turn planned power per step into at most ``max_periods`` charging schedule periods.

    1. Convert kW to the rate unit: ``W = 1000·kW`` (total power, OCPP 1.6 §7.12) or amps per
       phase ``A = 1000·kW / (k·V)`` with k = √3 for three phases (V line-to-line), else the
       number of phases (:meth:`Charger.kw_to_amps`, the inverse of ``amps_to_kw``).
    2. Merge neighbouring steps whose rates round to the same 0.1 into runs (value: their mean).
    3. Minimum rate: a non-zero rate below ``m``, the rate of ``charger.min_kw`` (the 6 A
       J1772 floor on AC), cannot be delivered. A step with such a rate ``r`` (``D`` s) is
       delivered at the minimum rounded up to 0.1, ``⌈m⌉``, for the first ``x = ⌊r·D/⌈m⌉⌋`` s
       (at ``r·D/x ≥ ⌈m⌉``), then 0: the same energy, front-loaded within the step. Such
       steps are not merged into runs: front-loading a whole run would lift its first steps'
       averages above the plan, and a live re-plan, which front-loads again from its first
       step, would do so in every interval (measured: a few kW over a 50-van site's plan).
    4. If more than ``max_periods`` periods remain, the steps are merged by
       :func:`segment_schedule`: the optimal piecewise-constant approximation with at most
       ``max_periods`` periods (dynamic programming, least squared deviation from the plan),
       every segment keeping its energy. Without a minimum rate it works on the runs, which
       is exact and faster.
    5. Rates are rounded to the nearest 0.1 (OCPP 1.6 §7.14), non-zero ones to at least
       ``⌈m⌉``, and neighbours that became equal are merged.

    Energy: each segment keeps its planned energy exactly before rounding; rounding changes a
    period's rate by less than 0.1, so the schedule's energy is within 0.1 × duration [unit·s]
    of the plan's. A sub-minimum segment whose energy is below ``⌈m⌉`` × 1 s (about 6 A·s)
    cannot be expressed with whole-second periods and is dropped.

    Peak: before merging (step 4) every step delivers its planned energy within itself (up to
    rounding), so each step's average rate — what a demand meter sees — is the plan's; steps
    planned at 0 stay at 0. Merging replaces a segment by its mean, which may lift zero or low
    steps inside it up to that mean; a merged segment never exceeds the largest rate it
    covers, except a sub-minimum segment, front-loaded at (just above) ``⌈m⌉``, whose first
    steps can then draw up to about ``min_kw`` more per charger.

    Parameters
    ----------
    power_kw : array_like
        Planned power per step [kW]; negative is discharge (only with ``allow_discharge``).
    step_s : float
        Step length, a whole number of seconds [s].
    charger : Charger
        Voltage, phases and ``min_kw`` of the port.
    rate_unit : {"W", "A"}
        Schedule unit; ``"A"`` needs an AC charger.
    max_periods : int
        ``ChargingScheduleMaxPeriods`` (1.6) / ``PeriodsPerSchedule`` (2.x) of the charger.
    allow_discharge : bool
        Allow negative power (OCPP 2.1 V2X): discharge periods get ``limit = 0`` and a negative
        ``setpoint``. Charge and discharge are never merged into one period.
    elapsed_s : int
        Whole seconds of the first step already past when the profile is sent (a live
        re-plan's first step): nothing is scheduled in them — the first step's rate holds from
        then on, and a sub-minimum burst starts then, not at the step's start, where it would
        be lost.

    Returns
    -------
    list of Period
        Start times strictly increasing from 0 [s]; limits ≥ 0.

    Raises
    ------
    ValueError
        On bad inputs, negative power without ``allow_discharge``, or when ``max_periods`` is
        too small to deliver the plan at all (a single period whose mean is below the minimum
        rate, or fewer periods than charge/discharge alternations).
    """
    power = np.asarray(power_kw, dtype=float).ravel()
    if power.size == 0 or not np.all(np.isfinite(power)):
        raise ValueError("power_kw must be a non-empty array of finite kW values")
    step = _whole_seconds(step_s, "step_s")
    if int(max_periods) != max_periods or max_periods < 1:
        raise ValueError(f"max_periods={max_periods!r}: must be a positive integer "
                         "(the charger's ChargingScheduleMaxPeriods / PeriodsPerSchedule)")
    _check_rate_unit(rate_unit, charger)
    power = np.where(np.abs(power) < _NOISE_KW, 0.0, power)
    if not allow_discharge and (power < 0).any():
        raise ValueError(f"power_kw has discharge (min {power.min():g} kW) but "
                         "allow_discharge=False; V2G profiles need OCPP 2.1 and an eligible pair")
    rate = _kw_to_rate(power, charger, rate_unit)
    min_rate = float(_kw_to_rate(np.array(charger.min_kw), charger, rate_unit))
    unit_s = np.full(rate.size, step)
    elapsed = int(elapsed_s)
    if not 0 <= elapsed < step:
        raise ValueError(f"elapsed_s={elapsed_s!r} must be in [0, step_s={step})")
    if elapsed:  # the past part of the first step as a unit of its own, at 0
        rate, unit_s = np.r_[0.0, rate], np.r_[elapsed, step - elapsed, unit_s[1:]]
    values, durations = _runs(rate, unit_s, _minimum(min_rate)[1])
    starts = np.concatenate(([0], np.cumsum(durations)[:-1]))
    pieces = [p for t0, d, v in zip(starts, durations, values)
              for p in _deliverable(int(t0), int(d), float(v) * int(d), min_rate)]
    periods = _rounded_periods(pieces, min_rate)
    if len(periods) > max_periods:
        # Least squares only cuts where the rate changes (moving a cut through a run of equal
        # rates changes the error concavely), so runs are exact units without a minimum rate;
        # with one, a feasible optimum may have to cut inside a run, so steps are the units.
        units = (values, durations) if min_rate == 0 else (rate, unit_s)
        periods = _rounded_periods(segment_schedule(*units, max_periods=max_periods,
                                                    min_rate=min_rate), min_rate)
    return periods


def segment_schedule(values: np.ndarray, durations_s: np.ndarray, *, max_periods: int,
                     min_rate: float = 0.0) -> list[tuple[int, float]]:
    """Optimal deliverable piecewise-constant approximation of runs with ≤ ``max_periods`` periods.

    The runs (rate ``v_r`` for ``d_r`` s) are cut into consecutive segments. A segment [i, j)
    with duration ``D``, energy ``E = Σ d_r v_r`` and mean ``μ = E/D`` is delivered either

    * as one period at ``μ``, allowed when ``|μ| < 0.05`` (it rounds to 0) or
      ``|μ| ≥ a = min(m, ⌈m⌉ − 0.05)`` with ``m`` the minimum rate and ``⌈m⌉`` it rounded up to
      0.1 (``μ`` then rounds, or is raised, to at least ``⌈m⌉`` by less than 0.1); squared
      error ``Σ d_r v_r² − E·μ``;
    * or, when ``0.05 ≤ |μ| < a``, front-loaded as two periods: ``E/x`` for the first
      ``x = ⌊|E|/⌈m⌉⌋`` s, then 0 (one period at 0 if ``x = 0``); squared error
      ``Σ d_r v_r² − 2 (E/x) (X(t_i + x) − X(t_i)) + (E/x)² x`` with ``X`` the running
      integral of the runs.

    Segments mixing charge (≥ 0.05) and discharge (≤ −0.05) runs are not allowed. With
    ``dp[k][j]`` the least squared error covering runs [0, j) with exactly k periods,

    .. math:: dp[k][j] = \\min_i \\min(dp[k-1][i] + c_1(i, j),\\; dp[k-2][i] + c_2(i, j))

    and the answer is the best ``dp[k][n]`` over k ≤ ``max_periods`` (fewest periods on ties);
    every segment keeps its energy exactly. Time O(K·n²), memory O(n²) for n runs and K
    periods; measured for random plans with K = 48: 288 steps (a day at 5 min) 54 ms, 864 steps
    0.7 s, 2976 steps (31 days at 15 min) 15–25 s and ~0.7 GB, so keep profiles to the re-plan
    horizon.

    Parameters
    ----------
    values : numpy.ndarray
        Rate of each run [W or A].
    durations_s : numpy.ndarray
        Whole-second duration of each run [s].
    max_periods : int
        Upper bound on the number of periods.
    min_rate : float
        Minimum non-zero rate ``m`` [W or A]; 0 for none.

    Returns
    -------
    list of (int, float)
        ``(start_s, rate)`` of each period, unrounded; starts strictly increasing from 0.

    Raises
    ------
    ValueError
        If no segmentation with at most ``max_periods`` periods can deliver the runs.
    """
    v = np.asarray(values, dtype=float)
    d = np.asarray(durations_s, dtype=np.int64)
    n = v.size
    t = np.concatenate(([0], np.cumsum(d)))
    s1 = np.concatenate(([0.0], np.cumsum(d * v)))
    s2 = np.concatenate(([0.0], np.cumsum(d * v * v)))
    pos = np.concatenate(([0], np.cumsum(v >= _HALF)))
    neg = np.concatenate(([0], np.cumsum(v <= -_HALF)))
    i, j = np.arange(n + 1)[:, None], np.arange(n + 1)[None, :]
    valid = (j > i) & ~((pos[j] - pos[i] > 0) & (neg[j] - neg[i] > 0))
    dur = (t[j] - t[i]).astype(float)
    energy = s1[j] - s1[i]
    square = s2[j] - s2[i]
    mean = np.divide(energy, dur, out=np.zeros_like(energy), where=valid)
    floor_rate, accept = _minimum(min_rate)
    front = valid & (np.abs(mean) >= _HALF - _TIE) & (np.abs(mean) < accept - _TIE)
    x = np.floor(np.divide(np.abs(energy), floor_rate, out=np.zeros_like(energy),
                           where=front) + _TIE_S)
    two = front & (x >= 1)
    cost_one = np.where(valid & ~front, np.maximum(square - mean * energy, 0.0), np.inf)
    cost_one = np.where(front & ~two, square, cost_one)
    level = np.divide(energy, x, out=np.zeros_like(energy), where=two)
    served = np.interp(t[i] + x, t, s1) - s1[i]
    cost_two = np.where(two, np.maximum(square - 2 * level * served + level * level * x, 0.0),
                        np.inf)
    del dur, energy, square, mean, front, x, two, level, served

    k_max = int(min(max_periods, 2 * n))
    cols = np.arange(n + 1)
    dp = np.full((k_max + 1, n + 1), np.inf)
    dp[0, 0] = 0.0
    arg = np.zeros((k_max + 1, n + 1), dtype=np.int64)
    split = np.zeros((k_max + 1, n + 1), dtype=bool)
    for k in range(1, k_max + 1):
        total = dp[k - 1][:, None] + cost_one
        best_i = total.argmin(axis=0)
        best = total[best_i, cols]
        if k >= 2:
            total = dp[k - 2][:, None] + cost_two
            two_i = total.argmin(axis=0)
            two_best = total[two_i, cols]
            split[k] = two_best < best
            best_i = np.where(split[k], two_i, best_i)
            best = np.where(split[k], two_best, best)
        dp[k], arg[k] = best, best_i
    k = int(np.argmin(dp[:, n]))
    if not np.isfinite(dp[k, n]):
        raise ValueError(
            f"max_periods={max_periods} cannot deliver this plan: every schedule with so few "
            f"periods would mix charge and discharge or run below the minimum rate {min_rate:g}; "
            "raise the charger's ChargingScheduleMaxPeriods/PeriodsPerSchedule")
    segments: list[tuple[int, int]] = []
    end = n
    while end > 0:
        begin = int(arg[k, end])
        segments.append((begin, end))
        k -= 2 if split[k, end] else 1
        end = begin
    return [p for b, e in reversed(segments)
            for p in _deliverable(int(t[b]), int(t[e] - t[b]), float(s1[e] - s1[b]), min_rate)]


def _deliverable(start_s: int, duration_s: int, energy: float,
                 min_rate: float) -> list[tuple[int, float]]:
    """How one segment is delivered: its mean, or front-loaded at ≥ ``min_rate`` (see above)."""
    floor_rate, accept = _minimum(min_rate)
    mean = energy / duration_s
    if not _HALF - _TIE <= abs(mean) < accept - _TIE:
        return [(start_s, mean)]
    on_s = math.floor(abs(energy) / floor_rate + _TIE_S)
    if on_s == 0:
        return [(start_s, 0.0)]
    return [(start_s, energy / on_s), (start_s + on_s, 0.0)]


def _runs(rate: np.ndarray, durations_s: np.ndarray, accept: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbours that round to the same 0.1: (time-weighted mean rate, duration [s])
    per run. Units below the deliverable minimum (``0.05 ≤ |rate| < accept``) stay units of
    their own: each is front-loaded within itself, so no step draws more than it planned."""
    key = np.round(rate, 1)
    sub = (np.abs(rate) >= _HALF - _TIE) & (np.abs(rate) < accept - _TIE)
    cut = (key[1:] != key[:-1]) | sub[1:] | sub[:-1]
    edges = np.concatenate(([0], np.flatnonzero(cut) + 1, [rate.size]))
    run_s = np.add.reduceat(durations_s, edges[:-1])
    return np.add.reduceat(rate * durations_s, edges[:-1]) / run_s, run_s


def _minimum(min_rate: float) -> tuple[float, float]:
    """The least non-zero rate that can be sent, ``⌈min_rate⌉`` to 0.1, and the least mean that
    may be sent as it is, ``min(min_rate, ⌈min_rate⌉ − 0.05)``: it rounds, or is raised, to the
    former by less than 0.1."""
    if min_rate <= 0:
        return 0.0, 0.0
    floor_rate = _ceil_step(min_rate)
    return floor_rate, min(min_rate, floor_rate - _HALF)


def _rounded_periods(pieces: list[tuple[int, float]], min_rate: float) -> list[Period]:
    """Round rates to 0.1 (non-zero ones to at least ``⌈min_rate⌉``), merge equal neighbours."""
    floor_rate, _ = _minimum(min_rate)
    out: list[Period] = []
    for start_s, value in pieces:
        rounded = round(value, 1)
        if rounded != 0 and abs(rounded) < floor_rate:
            rounded = math.copysign(floor_rate, rounded)
        rounded += 0.0  # no -0.0 on the wire
        if out and out[-1].rate == rounded:
            continue
        out.append(Period(int(start_s), max(rounded, 0.0), rounded if rounded < 0 else None))
    return out


# ------------------------------------------------------------------------ payloads


def tx_profile(periods: Sequence[Period], *, version: str, evse_id: int, profile_id: int,
               stack_level: int, transaction_id: int | str, start: pd.Timestamp,
               duration_s: int, rate_unit: str, number_phases: int | None) -> dict[str, Any]:
    """A full SetChargingProfile payload carrying a TxProfile for one transaction.

    ``chargingProfileKind`` is ``Absolute`` with ``startSchedule`` = ``start`` (UTC, whole
    seconds, ``Z``); Absolute needs a ``startSchedule`` (2.x K01.FR.40). After ``duration_s`` the
    TxProfile no longer limits and the TxDefaultProfile governs again (the composite takes the
    TxDefaultProfile where no TxProfile applies, 1.6 §3.13.3), i.e. full power.

    Parameters
    ----------
    periods : sequence of Period
        From :func:`schedule_periods`.
    version : {"1.6", "2.0.1", "2.1"}
        OCPP version of the connection.
    evse_id : int
        Connector (1.6) or EVSE (2.x) id > 0: a TxProfile is never set on 0 (1.6 §3.13.1,
        2.x K01.FR.16).
    profile_id : int
        ``chargingProfileId`` (1.6) / ``id`` (2.x) ≥ 1; also the 2.x ``chargingSchedule.id``.
    stack_level : int
        ≥ 0; the highest valid stack level wins (1.6 §3.13.2).
    transaction_id : int or str
        The charger's transaction id: an int in 1.6, a string of ≤ 36 characters in 2.x.
    start : pandas.Timestamp
        tz-aware schedule start; put it at or before now (1.6 §5.16.4).
    duration_s : int
        Schedule duration [s], after the last period's start.
    rate_unit : {"W", "A"}
        The unit the periods are in.
    number_phases : int or None
        ``numberPhases`` of every period (:func:`number_phases_of`); ``None`` leaves it out (DC).

    Returns
    -------
    dict
        1.6: ``{"connectorId", "csChargingProfiles"}`` (SetChargingProfile.req);
        2.x: ``{"evseId", "chargingProfile"}`` (SetChargingProfileRequest, one schedule).
        On 2.1 every period has an ``operationMode``: ``ChargingOnly``, or for a discharge
        period ``CentralSetpoint`` with ``setpoint < 0``, ``dischargeLimit = setpoint ≤ 0``
        and ``limit = 0`` (Q03; the EV may not discharge more than the setpoint nor charge).

    Raises
    ------
    ValueError
        On bad ids or periods, or discharge periods for OCPP 1.6/2.0.1, which have no standard
        bidirectional control.
    """
    _check_version(version)
    if evse_id < 1:
        raise ValueError(f"evse_id={evse_id}: a TxProfile goes to a connector/EVSE > 0 "
                         "(OCPP 1.6 §3.13.1, 2.x K01.FR.16)")
    if version == "1.6":
        if isinstance(transaction_id, bool) or not isinstance(transaction_id, int):
            raise ValueError(f"transaction_id={transaction_id!r}: OCPP 1.6 transaction ids are "
                             "integers (StartTransaction.conf transactionId)")
    elif not isinstance(transaction_id, str) or not 0 < len(transaction_id) <= 36:
        raise ValueError(f"transaction_id={transaction_id!r}: OCPP {version} transaction ids "
                         "are strings of 1–36 characters (TransactionEvent transactionId)")
    _check_periods(periods, duration_s)
    schedule = _schedule_json(periods, version=version, rate_unit=rate_unit,
                              number_phases=number_phases, schedule_id=profile_id,
                              start=start, duration_s=duration_s)
    profile = _profile_json(version, profile_id=profile_id, stack_level=stack_level,
                            purpose="TxProfile", kind="Absolute", schedule=schedule,
                            transaction_id=transaction_id)
    return _set_request(version, evse_id, profile)


def tx_default_profile(*, version: str, charger: Charger, rate_unit: str, profile_id: int,
                       stack_level: int = 0) -> dict[str, Any]:
    """The fail-safe TxDefaultProfile: full charger power whenever no TxProfile applies.

    Set on connector/EVSE 0, so it applies to every connector (1.6 §3.13.1). Kind ``Relative``
    with one period at the charger's full rate and neither ``startSchedule`` nor ``duration``:
    a Relative schedule must not have a ``startSchedule`` (2.x K01.FR.41), and "if the duration
    is left empty, the last period will continue indefinitely or until end of the transaction
    in case startSchedule is absent" (1.6 §7.13). It is independent of any clock, so a vehicle
    charges at full power if the central system, the planner or the network fails
    (offline, the charger keeps using stored profiles: 1.6 §3.13.6).

    Parameters
    ----------
    version : {"1.6", "2.0.1", "2.1"}
    charger : Charger
        ``max_kw`` is the full power; voltage and phases convert it to amps.
    rate_unit : {"W", "A"}
    profile_id : int
    stack_level : int

    Returns
    -------
    dict
        The SetChargingProfile payload. The rate is rounded *down* to 0.1 [W or A].
    """
    _check_version(version)
    limit = _floor_step(float(_kw_to_rate(np.array(charger.max_kw), charger, rate_unit)))
    schedule = _schedule_json([Period(0, limit)], version=version, rate_unit=rate_unit,
                              number_phases=number_phases_of(charger), schedule_id=profile_id)
    profile = _profile_json(version, profile_id=profile_id, stack_level=stack_level,
                            purpose="TxDefaultProfile", kind="Relative", schedule=schedule)
    return _set_request(version, 0, profile)


def station_max_profile(limit_kw: float, *, version: str, charger: Charger, rate_unit: str,
                        profile_id: int, stack_level: int = 0,
                        start: pd.Timestamp | None = None) -> dict[str, Any]:
    """The site limit as ChargePointMaxProfile (1.6) / ChargingStationMaxProfile (2.x).

    Set on connector/EVSE 0 only ("can only be set at Charge Point ConnectorId 0", 1.6
    §3.13.1; 2.x K01.FR.38), kind ``Absolute`` (it cannot be Relative, K01.FR.38) with no
    duration, so the limit holds until replaced. The connectors together never exceed it
    (1.6 §3.13.3).

    Parameters
    ----------
    limit_kw : float
        The station's share of the site limit, ≥ 0 [kW].
    version : {"1.6", "2.0.1", "2.1"}
    charger : Charger
        Voltage and phases convert the limit to amps per phase.
    rate_unit : {"W", "A"}
    profile_id : int
    stack_level : int
    start : pandas.Timestamp, optional
        ``startSchedule``; default the Unix epoch, which is in the past for every charger
        clock, so the limit applies at once (1.6 §5.16.4 advises a start in the past).

    Returns
    -------
    dict
        The SetChargingProfile payload. The rate is rounded *down* to 0.1 so the limit holds.
    """
    _check_version(version)
    if not np.isfinite(limit_kw) or limit_kw < 0:
        raise ValueError(f"limit_kw={limit_kw!r}: a station limit must be finite and ≥ 0 kW")
    limit = _floor_step(float(_kw_to_rate(np.array(limit_kw), charger, rate_unit)))
    schedule = _schedule_json([Period(0, limit)], version=version, rate_unit=rate_unit,
                              number_phases=number_phases_of(charger), schedule_id=profile_id,
                              start=_EPOCH if start is None else start)
    profile = _profile_json(version, profile_id=profile_id, stack_level=stack_level,
                            purpose=_MAX_PURPOSE[version], kind="Absolute", schedule=schedule)
    return _set_request(version, 0, profile)


def clear_profile_request(*, version: str, profile_id: int | None = None,
                          evse_id: int | None = None, purpose: str | None = None,
                          stack_level: int | None = None) -> dict[str, Any]:
    """A ClearChargingProfile payload, by id and/or by criteria (1.6 §5.5; 2.x K10).

    ``purpose`` may be named in either version's words (``ChargePointMaxProfile`` and
    ``ChargingStationMaxProfile`` are translated). With no argument at all the charger clears
    every profile it has, including the fail-safe TxDefaultProfile.

    Returns
    -------
    dict
        1.6: ``{"id", "connectorId", "chargingProfilePurpose", "stackLevel"}`` (those given);
        2.x: ``{"chargingProfileId", "chargingProfileCriteria": {"evseId", …}}``.
    """
    _check_version(version)
    if purpose is not None:
        if purpose not in _PURPOSES:
            raise ValueError(f"purpose={purpose!r}: one of {sorted(_PURPOSES)} (a CSMS may not "
                             "clear ChargingStationExternalConstraints, 2.x K10.FR.06)")
        if purpose in ("ChargePointMaxProfile", "ChargingStationMaxProfile"):
            purpose = _MAX_PURPOSE[version]
    if version == "1.6":
        return _without_none({"id": profile_id, "connectorId": evse_id,
                              "chargingProfilePurpose": purpose, "stackLevel": stack_level})
    criteria = _without_none({"evseId": evse_id, "chargingProfilePurpose": purpose,
                              "stackLevel": stack_level})
    return _without_none({"chargingProfileId": profile_id,
                          "chargingProfileCriteria": criteria or None})


def composite_request(*, version: str, evse_id: int, duration_s: int,
                      rate_unit: str | None = None) -> dict[str, Any]:
    """A GetCompositeSchedule payload (1.6 §5.7 ``connectorId``; 2.x K08 ``evseId``).

    ``evse_id`` 0 asks for the whole station's expected consumption; ``rate_unit`` forces the
    unit of the answer.
    """
    _check_version(version)
    if rate_unit is not None and rate_unit not in RATE_UNITS:
        raise ValueError(f"rate_unit={rate_unit!r}: one of {RATE_UNITS}")
    key = "connectorId" if version == "1.6" else "evseId"
    return _without_none({key: int(evse_id), "duration": _whole_seconds(duration_s,
                                                                         "duration_s"),
                          "chargingRateUnit": rate_unit})


def composite_to_kw(response: Mapping[str, Any], *, version: str, charger: Charger,
                    step_s: float, start: pd.Timestamp, steps: int) -> np.ndarray:
    """What a charger says it will do, from its GetCompositeSchedule answer, as kW per step.

    Periods run from ``scheduleStart`` (1.6 conf: ``scheduleStart``, else the schedule's
    ``startSchedule``; 2.x: ``schedule.scheduleStart``) for ``duration`` s (1.6: the last
    period runs on when absent). A period's rate is its ``setpoint`` when present (2.1
    ``CentralSetpoint``: what the EV follows, negative when discharging), else its ``limit``.
    Watts are total power; amps are per phase on ``numberPhases`` phases (the charger's own
    phases when absent): ``kW = amps_to_kw(A) · n / phases`` (:meth:`Charger.amps_to_kw`).
    Each step ``[start + i·Δ, start + (i+1)·Δ)`` gets the time average over the part the
    schedule covers; NaN where it covers none or a covering period states no rate.

    Parameters
    ----------
    response : mapping
        The wire payload (camelCase) of GetCompositeSchedule.conf (1.6) / Response (2.x). From an
        ``ocpp`` ``call_result`` object use
        ``snake_to_camel_case(serialize_as_dict(result))`` (``ocpp.charge_point``).
    version : {"1.6", "2.0.1", "2.1"}
    charger : Charger
    step_s : float
        Step length, whole seconds [s].
    start : pandas.Timestamp
        tz-aware start of the first step.
    steps : int
        Number of steps.

    Returns
    -------
    numpy.ndarray
        Composite limit (or setpoint) per step [kW].

    Raises
    ------
    ValueError
        If the status is not ``Accepted`` or the schedule has no start.
    """
    _check_version(version)
    if response.get("status") != "Accepted":
        raise ValueError(f"GetCompositeSchedule answered {response.get('status')!r}, not "
                         "'Accepted': the charger gave no schedule to check")
    if version == "1.6":
        schedule = response["chargingSchedule"]
        begin = response.get("scheduleStart", schedule.get("startSchedule"))
    else:
        schedule = response["schedule"]
        begin = schedule["scheduleStart"]
    if begin is None:
        raise ValueError("GetCompositeSchedule.conf has neither scheduleStart nor "
                         "chargingSchedule.startSchedule; cannot place its periods in time")
    if pd.Timestamp(start).tzinfo is None:
        raise ValueError(f"start={start!r} must be timezone-aware")
    step = _whole_seconds(step_s, "step_s")
    unit = schedule["chargingRateUnit"]
    periods = schedule["chargingSchedulePeriod"]
    rate = np.array([p.get("setpoint", p.get("limit", np.nan)) for p in periods], dtype=float)
    phases = np.array([p.get("numberPhases", charger.phases) for p in periods], dtype=float)
    kw = rate / 1000.0 if unit == "W" else charger.amps_to_kw(rate) * phases / charger.phases
    offset_s = (pd.Timestamp(begin) - pd.Timestamp(start)).total_seconds()
    period_start = offset_s + np.array([p["startPeriod"] for p in periods], dtype=float)
    duration = schedule.get("duration")
    end_s = offset_s + duration if duration is not None else max(steps * step,
                                                                 period_start[-1])
    period_end = np.minimum(np.append(period_start[1:], end_s), end_s)
    step_start = np.arange(steps, dtype=float)[:, None] * step
    overlap = np.clip(np.minimum(step_start + step, period_end) - np.maximum(step_start,
                                                                             period_start),
                      0.0, None)
    covered = overlap.sum(axis=1)
    energy = np.where(overlap > 0, overlap * kw, 0.0).sum(axis=1)
    return np.divide(energy, covered, out=np.full(steps, np.nan), where=covered > 0)


# ------------------------------------------------------------------------ helpers


def _schedule_json(periods: Sequence[Period], *, version: str, rate_unit: str,
                   number_phases: int | None, schedule_id: int,
                   start: pd.Timestamp | None = None,
                   duration_s: int | None = None) -> dict[str, Any]:
    if rate_unit not in RATE_UNITS:
        raise ValueError(f"rate_unit={rate_unit!r}: one of {RATE_UNITS}")
    schedule: dict[str, Any] = {} if version == "1.6" else {"id": int(schedule_id)}
    if start is not None:
        schedule["startSchedule"] = _iso_utc(start)
    if duration_s is not None:
        schedule["duration"] = int(duration_s)
    schedule["chargingRateUnit"] = rate_unit
    schedule["chargingSchedulePeriod"] = [_period_json(p, version, number_phases)
                                          for p in periods]
    return schedule


def _period_json(period: Period, version: str, number_phases: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"startPeriod": int(period.start_s), "limit": float(period.limit)}
    if number_phases is not None:
        out["numberPhases"] = int(number_phases)
    if version == "2.1":
        if period.setpoint is None:
            out["operationMode"] = "ChargingOnly"
        else:
            out.update(operationMode="CentralSetpoint", setpoint=float(period.setpoint),
                       dischargeLimit=float(period.setpoint))
    elif period.setpoint is not None:
        raise ValueError(f"a discharge period (setpoint {period.setpoint:g} at "
                         f"{period.start_s} s) cannot be sent over OCPP {version}: only OCPP "
                         "2.1 has bidirectional control (operationMode CentralSetpoint)")
    return out


def _profile_json(version: str, *, profile_id: int, stack_level: int, purpose: str, kind: str,
                  schedule: dict[str, Any],
                  transaction_id: int | str | None = None) -> dict[str, Any]:
    if int(profile_id) != profile_id or profile_id < 1:
        raise ValueError(f"profile_id={profile_id!r}: must be an integer ≥ 1")
    if int(stack_level) != stack_level or stack_level < 0:
        raise ValueError(f"stack_level={stack_level!r}: must be an integer ≥ 0 "
                         "(OCPP 1.6 §7.8: lowest level is 0)")
    id_key = "chargingProfileId" if version == "1.6" else "id"
    return _without_none({
        id_key: int(profile_id), "transactionId": transaction_id, "stackLevel": int(stack_level),
        "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
        "chargingSchedule": schedule if version == "1.6" else [schedule],
    })


def _set_request(version: str, evse_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    if version == "1.6":
        return {"connectorId": int(evse_id), "csChargingProfiles": profile}
    return {"evseId": int(evse_id), "chargingProfile": profile}


def _check_periods(periods: Sequence[Period], duration_s: int) -> None:
    starts = [p.start_s for p in periods]
    if not starts or starts[0] != 0:
        raise ValueError("periods must be non-empty and the first must start at 0 "
                         "(OCPP 1.6 §7.14, 2.x K01.FR.31)")
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise ValueError(f"period starts {starts} must strictly increase (2.x K01.FR.35)")
    if duration_s <= starts[-1]:
        raise ValueError(f"duration_s={duration_s} must end after the last period start "
                         f"{starts[-1]} s")
    bad = [p for p in periods if p.limit < 0 or (p.setpoint is not None and p.setpoint >= 0)]
    if bad:
        raise ValueError(f"periods {bad}: limits must be ≥ 0 and setpoints < 0")


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"OCPP version {version!r}: one of {VERSIONS}")


def _check_rate_unit(rate_unit: str, charger: Charger) -> None:
    if rate_unit not in RATE_UNITS:
        raise ValueError(f"rate_unit={rate_unit!r}: one of {RATE_UNITS}")
    if rate_unit == "A" and charger.current_type != "AC":
        raise ValueError(f"charger {charger.id} is DC: current (A) limits need an AC port; "
                         "use rate_unit='W'")


def _kw_to_rate(power_kw: np.ndarray, charger: Charger, rate_unit: str) -> np.ndarray:
    _check_rate_unit(rate_unit, charger)
    if rate_unit == "W":
        return power_kw * 1000.0
    return np.asarray(charger.kw_to_amps(power_kw), dtype=float)


def _ceil_step(value: float) -> float:
    """``value`` rounded up to a multiple of 0.1 (tolerant of float noise such as 5.9999999)."""
    return math.ceil(round(value / LIMIT_STEP, 6)) / 10


def _floor_step(value: float) -> float:
    """``value`` rounded down to a multiple of 0.1 (tolerant of float noise such as 7.1999999)."""
    return math.floor(round(value / LIMIT_STEP, 6)) / 10


def _whole_seconds(value: float, name: str) -> int:
    if not np.isfinite(value) or value <= 0 or int(value) != value:
        raise ValueError(f"{name}={value!r}: must be a positive whole number of seconds")
    return int(value)


def _iso_utc(when: pd.Timestamp) -> str:
    """ISO 8601 in UTC with ``Z``, whole seconds (truncated)."""
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise ValueError(f"start={when!r} must be timezone-aware")
    return ts.tz_convert("UTC").floor("s").strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}
