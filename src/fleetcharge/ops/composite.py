"""Station-side smart charging: the charging-profile stack of one station and its composite schedule.

A simulated charge point (:mod:`fleetcharge.ops.simulator`) keeps one :class:`ProfileStore`. It
validates every ``SetChargingProfile`` the way a station must (answer ``Accepted`` or ``Rejected``),
drops profiles on ``ClearChargingProfile`` and at the end of their transaction, and computes what the
station will actually draw: the *composite schedule*.

Rules and where they come from:

- Purposes and precedence — OCPP 1.6 §3.13.1–3.13.4; OCPP 2.0.1/2.1 K08. Within one purpose the
  profile with the highest ``stackLevel`` that has a value at that instant prevails (a profile is
  valid within ``[validFrom, validTo)``; a schedule has no value before its start, after its
  ``duration`` or, when recurring, past the recurrence length). The ``TxProfile`` of the running
  transaction overrules the ``TxDefaultProfile``; the result is then limited by the station maximum
  (``ChargePointMaxProfile`` in 1.6, ``ChargingStationMaxProfile`` in 2.x): composite =
  min(Tx or TxDefault, max). With no profile at all the station is unconstrained (its own rating).
  Per 1.6 §3.13.4 (“…TxDefaultProfile when there is no TxProfile”) the TxDefaultProfile also shapes
  the composite of a connector without a transaction (Relative schedules then start now).
- Set/replace — 1.6 §5.16.3: a profile with the same ``chargingProfileId``, or the same
  ``stackLevel`` and purpose (on the same connector), replaces the existing one. 2.x K01.FR.05
  replaces by id; K01.FR.06 rejects another non-Tx profile with the same purpose, EVSE and
  ``stackLevel`` whose validity overlaps; K01.FR.39 rejects another TxProfile of the same
  transaction at the same ``stackLevel``; K01.FR.52 rejects a TxDefaultProfile whose
  ``stackLevel`` is taken by one with a different id on the other scope (EVSE 0 vs EVSE 1).
- Checks on the profile itself — first ``startPeriod`` 0 (1.6 §7.14, K01.FR.31), strictly
  increasing ``startPeriod`` (K01.FR.35), ``startSchedule`` required for Absolute/Recurring and
  forbidden for Relative in 2.x (K01.FR.40/41), a rate unit the station supports (1.6 §3.13.5
  ``ChargingScheduleAllowedChargingRateUnit``, K01.FR.26), at most ``max_periods`` periods (1.6
  ``ChargingScheduleMaxPeriods``, 2.x ``PeriodsPerSchedule``), ``numberPhases`` absent on DC
  (K01.FR.44) and not above the supply phases on AC (K01.FR.45), the station maximum only on
  EVSE 0 (1.6 §3.13.1) and, in 2.x, not Relative (K01.FR.38), a TxProfile only on EVSE > 0 with
  the running transaction (1.6 §3.13.1, K01.FR.03/09/16), never
  ``ChargingStationExternalConstraints`` from the CSMS (K01.FR.22), no 2.1 features this station
  lacks (local time, randomized delay, limit at SoC, EVSE sleep: K01.FR.123–126). Reason codes
  follow EVerest libocpp's mapping of these requirements.
- 2.1 operation modes — the station supports ``ChargingOnly`` (default), ``CentralSetpoint``
  (discharge only on a bidirectional charger) and ``Idle``; the station maximum only
  ``ChargingOnly`` (2.1 Part 2 Table 95).
- Units — ``W`` is the total power; ``A`` is per phase (1.6 §7.12) and converts to power with
  :meth:`fleetcharge.domain.Charger.amps_to_kw` scaled by the phases in use: a period's
  ``numberPhases`` (absent: 3 per 1.6 §7.14), capped at the charger's own phases.

Times are handled as POSIX seconds (UTC) inside; the public methods take and return tz-aware
``pandas.Timestamp``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from fleetcharge.domain import Charger

VERSIONS = ("1.6", "2.0.1", "2.1")
MAX_PROFILE = "ChargingStationMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX_PROFILE = "TxProfile"
#: 1.6 name of the station maximum → the 2.x name used inside
_PURPOSE_ALIASES = {"ChargePointMaxProfile": MAX_PROFILE}
_RECURRENCE_S = {"Daily": 86_400.0, "Weekly": 7 * 86_400.0}
#: operation modes this station can execute (2.1 OperationModeEnumType)
SUPPORTED_MODES = ("ChargingOnly", "CentralSetpoint", "Idle")
#: the one EVSE (connector) of a depot port; 0 addresses the whole station
EVSE_ID = 1


class ProfileRejected(Exception):
    """A charging profile the station must answer with ``Rejected``.

    Attributes
    ----------
    reason_code : str
        2.x ``statusInfo.reasonCode`` (``InvalidSchedule``, ``TxNotFound``, ``DuplicateProfile``…).
    info : str
        Which rule failed (``statusInfo.additionalInfo``, ≤ 1024 characters).
    """

    def __init__(self, reason_code: str, info: str) -> None:
        super().__init__(f"{reason_code}: {info}")
        self.reason_code = reason_code
        self.info = info


@dataclass(frozen=True)
class Period:
    """One ``ChargingSchedulePeriod`` in the schedule's rate unit (``limit`` ≥ 0, ``setpoint``
    negative for discharge, ``discharge_limit`` ≤ 0; ``None`` when absent)."""

    start_s: int
    limit: float | None
    number_phases: int | None = None
    setpoint: float | None = None
    discharge_limit: float | None = None
    operation_mode: str = "ChargingOnly"


@dataclass(frozen=True)
class ChargingProfile:
    """A validated charging profile as the station stores it (times in POSIX seconds, UTC).

    ``purpose`` uses the 2.x names (the 1.6 ``ChargePointMaxProfile`` is stored as
    ``ChargingStationMaxProfile``); ``transaction_id`` is a string for every version.
    """

    id: int
    evse_id: int
    stack_level: int
    purpose: str
    kind: str
    rate_unit: str
    periods: tuple[Period, ...]
    recurrency_kind: str | None = None
    valid_from_s: float | None = None
    valid_to_s: float | None = None
    transaction_id: str | None = None
    start_schedule_s: float | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class ActiveTransaction:
    """The transaction running on the EVSE: its id (``None`` while a 1.6 start awaits its id) and
    start time (the origin of Relative schedules)."""

    transaction_id: str | None
    started_at: pd.Timestamp


@dataclass(frozen=True)
class Segment:
    """The composite over ``[start_s, end_s)`` in kW: ``limit_kw`` (``None``: unconstrained),
    2.1 ``setpoint_kw`` / ``discharge_limit_kw`` and the operation mode of the prevailing Tx
    period."""

    start_s: float
    end_s: float
    limit_kw: float | None
    setpoint_kw: float | None = None
    discharge_limit_kw: float | None = None
    operation_mode: str = "ChargingOnly"


def _norm(obj: Any) -> Any:
    """Keys lower-cased without underscores, recursively, so wire camelCase and the ``ocpp``
    library's snake_case read alike (``limit_L2``, ``limitL2`` and ``limit_l2`` → ``limitl2``)."""
    if isinstance(obj, Mapping):
        return {str(k).replace("_", "").lower(): _norm(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_norm(v) for v in obj]
    return obj


def _seconds(value: Any) -> float | None:
    """ISO 8601 date-time → POSIX seconds (naive means UTC); ``None`` stays ``None``."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.value / 1e9


def iso_z(ts: pd.Timestamp) -> str:
    """ISO 8601 UTC with a ``Z`` and milliseconds, as OCPP-J timestamps are written."""
    ts = pd.Timestamp(ts).tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _number(value: Any) -> float | None:
    return None if value is None else float(value)  # 1.6 schedules arrive as Decimal


def _periods(raw: list[dict], *, version: str, charger: Charger, purpose: str) -> tuple[Period, ...]:
    if not raw:
        raise ProfileRejected("InvalidSchedule", "ChargingProfileNoChargingSchedulePeriods")
    out: list[Period] = []
    for i, r in enumerate(raw):
        start = int(r["startperiod"])
        if i == 0 and start != 0:  # 1.6 §7.14, K01.FR.31
            raise ProfileRejected("InvalidSchedule", "ChargingProfileFirstStartScheduleIsNotZero")
        if out and start <= out[-1].start_s:  # K01.FR.35
            raise ProfileRejected("InvalidSchedule", "ChargingSchedulePeriodsOutOfOrder")
        phases = r.get("numberphases")
        if phases is not None:
            if charger.current_type == "DC":  # K01.FR.44
                raise ProfileRejected("InvalidSchedule",
                                      "ChargingSchedulePeriodExtraneousPhaseValues")
            if version != "1.6" and int(phases) > charger.phases:  # K01.FR.45
                raise ProfileRejected("InvalidSchedule",
                                      "ChargingSchedulePeriodUnsupportedNumberPhases")
        if any(k.endswith(("l2", "l3")) for k in r):
            raise ProfileRejected("InvalidSchedule", "per-phase (_L2/_L3) values not supported")
        if r.get("evsesleep"):  # K01.FR.126
            raise ProfileRejected("InvalidSchedule", "ChargingScheduleUnsupportedEvseSleep")
        mode = r.get("operationmode") or "ChargingOnly"
        if mode not in SUPPORTED_MODES:
            raise ProfileRejected("InvalidSchedule", f"operationMode {mode} not supported")
        if mode != "ChargingOnly" and purpose == MAX_PROFILE:  # 2.1 Part 2 Table 95
            raise ProfileRejected("InvalidSchedule", f"{purpose} allows only ChargingOnly")
        period = Period(start, _number(r.get("limit")),
                        None if phases is None else int(phases),
                        _number(r.get("setpoint")), _number(r.get("dischargelimit")), mode)
        _check_period_values(period, charger)
        out.append(period)
    return tuple(out)


def _check_period_values(p: Period, charger: Charger) -> None:
    """Limits and setpoints per operation mode (2.1 Part 2, as enforced by EVerest libocpp)."""
    if p.limit is not None and p.limit < 0:
        # 2.1 schema: a negative limit only for older systems' discharge; this station refuses it
        raise ProfileRejected("InvalidSchedule", "negative limit (use CentralSetpoint to discharge)")
    if p.operation_mode == "ChargingOnly":
        if p.limit is None:
            raise ProfileRejected("InvalidSchedule", "ChargingOnly period without limit")
        if p.setpoint is not None or p.discharge_limit is not None:
            raise ProfileRejected("InvalidSchedule", "ChargingOnly period with setpoint/dischargeLimit")
    elif p.operation_mode == "CentralSetpoint":
        if p.setpoint is None:
            raise ProfileRejected("InvalidSchedule", "CentralSetpoint period without setpoint")
        if p.setpoint < 0 and not charger.bidirectional:
            raise ProfileRejected("InvalidSchedule", "discharge setpoint on a unidirectional charger")
    elif any(v is not None for v in (p.limit, p.setpoint, p.discharge_limit)):  # Idle, Q10.FR.01
        raise ProfileRejected("InvalidSchedule", "Idle period with limit/setpoint")
    if p.discharge_limit is not None and p.discharge_limit > 0:
        raise ProfileRejected("InvalidSchedule", "dischargeLimit must be <= 0")


def parse_profile(payload: Mapping[str, Any], *, version: str, charger: Charger,
                  rate_units: tuple[str, ...] = ("A", "W"), max_periods: int = 24,
                  ) -> ChargingProfile:
    """Validate a ``SetChargingProfile`` request payload on its own (no station state).

    Parameters
    ----------
    payload : mapping
        The request as on the wire (1.6 ``{connectorId, csChargingProfiles}``, 2.x ``{evseId,
        chargingProfile}``), in camelCase or in the ``ocpp`` library's snake_case.
    version : {"1.6", "2.0.1", "2.1"}
    charger : Charger
        The port this station drives (AC/DC, phases, bidirectional).
    rate_units : tuple of {"A", "W"}
        Units the station accepts.
    max_periods : int
        Periods allowed per schedule.

    Raises
    ------
    ProfileRejected
        With the reason code and the rule (module docstring) when the profile is invalid.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown OCPP version {version!r}; use one of {VERSIONS}")
    p = _norm(payload)
    if version == "1.6":
        evse_id, raw = int(p["connectorid"]), p["cschargingprofiles"]
        profile_id, schedule = int(raw["chargingprofileid"]), raw["chargingschedule"]
    else:
        evse_id, raw = int(p["evseid"]), p["chargingprofile"]
        profile_id, schedules = int(raw["id"]), raw["chargingschedule"]
        if len(schedules) != 1:  # several schedules are ISO 15118 offers (K15–K17)
            raise ProfileRejected("InvalidSchedule", "exactly one chargingSchedule supported")
        schedule = schedules[0]
    purpose = _PURPOSE_ALIASES.get(raw["chargingprofilepurpose"], raw["chargingprofilepurpose"])
    kind = raw["chargingprofilekind"]
    if purpose == "ChargingStationExternalConstraints":  # K01.FR.22
        raise ProfileRejected("InvalidValue",
                              "ChargingStationExternalConstraintsInSetChargingProfileRequest")
    if purpose not in (MAX_PROFILE, TX_DEFAULT, TX_PROFILE):  # K01.FR.120
        raise ProfileRejected("UnsupportedPurpose", f"{purpose} not supported")
    if kind not in ("Absolute", "Relative", "Recurring"):  # K01.FR.121 (Dynamic)
        raise ProfileRejected("UnsupportedKind", f"{kind} not supported")
    for key, rule in (("uselocaltime", "UnsupportedLocalTime"),  # K01.FR.123
                      ("randomizeddelay", "UnsupportedRandomizedDelay"),  # K01.FR.124
                      ("limitatsoc", "UnsupportedLimitAtSoC")):  # K01.FR.125
        if schedule.get(key):
            raise ProfileRejected("InvalidSchedule", f"ChargingSchedule{rule}")
    unit = schedule["chargingrateunit"]
    if unit not in rate_units:  # K01.FR.26, 1.6 §3.13.5
        raise ProfileRejected("UnsupportedRateUnit", f"rate unit {unit} not in {rate_units}")
    start = _seconds(schedule.get("startschedule"))
    if version != "1.6":
        if kind != "Relative" and start is None:  # K01.FR.40
            raise ProfileRejected("InvalidSchedule", "ChargingProfileMissingRequiredStartSchedule")
        if kind == "Relative" and start is not None:  # K01.FR.41
            raise ProfileRejected("InvalidSchedule", "ChargingProfileExtraneousStartSchedule")
    recurrency = raw.get("recurrencykind")
    if kind == "Recurring" and (recurrency not in _RECURRENCE_S or start is None):
        raise ProfileRejected("InvalidSchedule", "Recurring needs recurrencyKind and startSchedule")
    raw_periods = schedule.get("chargingscheduleperiod") or []
    if len(raw_periods) > max_periods:
        raise ProfileRejected("InvalidSchedule",
                              f"{len(raw_periods)} periods > {max_periods} allowed per schedule")
    tx = raw.get("transactionid")
    profile = ChargingProfile(
        id=profile_id, evse_id=evse_id, stack_level=int(raw["stacklevel"]), purpose=purpose,
        kind=kind, rate_unit=unit,
        periods=_periods(raw_periods, version=version, charger=charger, purpose=purpose),
        recurrency_kind=recurrency if kind == "Recurring" else None,
        valid_from_s=_seconds(raw.get("validfrom")), valid_to_s=_seconds(raw.get("validto")),
        transaction_id=None if tx is None else str(tx), start_schedule_s=start,
        duration_s=_number(schedule.get("duration")),
    )
    if (profile.valid_from_s is not None and profile.valid_to_s is not None
            and profile.valid_to_s <= profile.valid_from_s):
        raise ProfileRejected("InvalidValue", "validTo is not after validFrom")
    if profile.transaction_id is not None and purpose != TX_PROFILE:
        raise ProfileRejected("InvalidValue", "transactionId only allowed on a TxProfile")
    return profile


def _value_at(p: ChargingProfile, t: float, relative_start: float) -> Period | None:
    """The period of ``p`` in force at ``t`` (``None``: the profile has no value then)."""
    if p.valid_from_s is not None and t < p.valid_from_s:
        return None
    if p.valid_to_s is not None and t >= p.valid_to_s:
        return None
    if p.kind == "Recurring":
        length = _RECURRENCE_S[p.recurrency_kind or "Daily"]
        anchor = p.start_schedule_s + math.floor((t - p.start_schedule_s) / length) * length
    elif p.kind == "Absolute" and p.start_schedule_s is not None:
        anchor = p.start_schedule_s
    else:  # Relative (or a 1.6 Absolute without startSchedule: "relative to start of charging")
        anchor = relative_start
    offset = t - anchor
    if offset < 0 or (p.duration_s is not None and offset >= p.duration_s):
        return None
    if p.kind == "Recurring" and offset >= _RECURRENCE_S[p.recurrency_kind or "Daily"]:
        return None
    current = None
    for period in p.periods:
        if period.start_s > offset:
            break
        current = period
    return current


def _breakpoints(p: ChargingProfile, a: float, b: float, relative_start: float) -> set[float]:
    """Instants in ``(a, b)`` where ``p`` may change value."""
    if p.kind == "Recurring":
        length = _RECURRENCE_S[p.recurrency_kind or "Daily"]
        k0 = math.floor((a - p.start_schedule_s) / length)
        k1 = math.floor((b - p.start_schedule_s) / length)
        anchors = [p.start_schedule_s + k * length for k in range(k0, k1 + 1)]
    elif p.kind == "Absolute" and p.start_schedule_s is not None:
        anchors = [p.start_schedule_s]
    else:
        anchors = [relative_start]
    points = {x for x in (p.valid_from_s, p.valid_to_s) if x is not None}
    for anchor in anchors:
        points.update(anchor + period.start_s for period in p.periods)
        if p.duration_s is not None:
            points.add(anchor + p.duration_s)
    return {x for x in points if a < x < b}


class ProfileStore:
    """The charging profiles installed on one station (one EVSE) and its composite schedule.

    Parameters
    ----------
    charger : Charger
        The port (rating, AC/DC, phases, voltage, bidirectional).
    version : {"1.6", "2.0.1", "2.1"}
        OCPP version the station speaks (validation rules and the response format differ).
    rate_units : tuple of {"A", "W"}
        Units the station accepts and reports (first = default of ``GetCompositeSchedule``).
    max_periods : int
        ``ChargingScheduleMaxPeriods`` / ``PeriodsPerSchedule``.
    max_stack_level : int
        ``ChargeProfileMaxStackLevel`` / ``ProfileStackLevel``.
    """

    def __init__(self, charger: Charger, *, version: str, rate_units: tuple[str, ...] = ("A", "W"),
                 max_periods: int = 24, max_stack_level: int = 8) -> None:
        if not rate_units or not set(rate_units) <= {"A", "W"}:
            raise ValueError(f"rate_units must be a non-empty subset of ('A', 'W'), got {rate_units}")
        if max_periods < 1:
            raise ValueError(f"max_periods must be >= 1, got {max_periods}")
        self.charger = charger
        self.version = version
        self.rate_units = tuple(rate_units)
        self.max_periods = int(max_periods)
        self.max_stack_level = int(max_stack_level)
        self._profiles: dict[int, ChargingProfile] = {}

    @property
    def profiles(self) -> tuple[ChargingProfile, ...]:
        """Installed profiles, by id."""
        return tuple(self._profiles[k] for k in sorted(self._profiles))

    def set(self, payload: Mapping[str, Any], *,
            transaction: ActiveTransaction | None) -> ChargingProfile:
        """Validate and install a ``SetChargingProfile`` request (module docstring rules).

        ``transaction`` is the transaction running on the EVSE. A 1.6 TxProfile without a
        ``transactionId`` is bound to it. Returns the installed profile.

        Raises
        ------
        ProfileRejected
            The station answers ``Rejected``.
        """
        p = parse_profile(payload, version=self.version, charger=self.charger,
                          rate_units=self.rate_units, max_periods=self.max_periods)
        if p.evse_id not in (0, EVSE_ID):
            raise ProfileRejected("InvalidValue", f"EvseDoesNotExist: {p.evse_id}")
        if not 0 <= p.stack_level <= self.max_stack_level:
            raise ProfileRejected("InvalidStackLevel",
                                  f"stackLevel {p.stack_level} outside 0..{self.max_stack_level}")
        if p.purpose == MAX_PROFILE:
            if p.evse_id != 0:  # 1.6 §3.13.1
                raise ProfileRejected("InvalidValue", "ChargingStationMaxProfileEvseIdGreaterThanZero")
            if p.kind == "Relative" and self.version != "1.6":  # K01.FR.38
                raise ProfileRejected("InvalidValue", "ChargingStationMaxProfileCannotBeRelative")
        if p.purpose == TX_PROFILE:
            p = self._bind_transaction(p, transaction)
        self._check_duplicates(p)
        if self.version == "1.6":  # §5.16.3: same id, or same stackLevel + purpose, replaces
            self._profiles = {
                k: q for k, q in self._profiles.items()
                if not (q.stack_level == p.stack_level and q.purpose == p.purpose
                        and q.evse_id == p.evse_id)
            }
        self._profiles[p.id] = p  # K01.FR.05: same id replaces
        return p

    def _bind_transaction(self, p: ChargingProfile,
                          transaction: ActiveTransaction | None) -> ChargingProfile:
        if p.evse_id <= 0:  # 1.6 §3.13.1, K01.FR.16
            raise ProfileRejected("InvalidValue", "TxProfileEvseIdNotGreaterThanZero")
        if p.transaction_id is None and self.version != "1.6":  # K01.FR.03
            raise ProfileRejected("MissingParam", "TxProfileMissingTransactionId")
        if transaction is None or transaction.transaction_id is None:  # 1.6 §3.13.1, K01.FR.09
            raise ProfileRejected("TxNotFound", "TxProfileEvseHasNoActiveTransaction")
        if p.transaction_id is None:
            return replace(p, transaction_id=transaction.transaction_id)
        if p.transaction_id != transaction.transaction_id:
            raise ProfileRejected("TxNotFound", "TxProfileTransactionNotOnEvse")
        return p

    def _check_duplicates(self, p: ChargingProfile) -> None:
        if self.version == "1.6":
            return
        for q in self._profiles.values():
            if q.id == p.id or q.purpose != p.purpose or q.stack_level != p.stack_level:
                continue
            if p.purpose == TX_PROFILE:
                if q.transaction_id == p.transaction_id:  # K01.FR.39
                    raise ProfileRejected("InvalidStackLevel", "TxProfileConflictingStackLevel")
            elif q.evse_id == p.evse_id and _overlap(p, q):  # K01.FR.06
                raise ProfileRejected("DuplicateProfile", "DuplicateProfileValidityPeriod")
            elif p.purpose == TX_DEFAULT:  # K01.FR.52/53
                raise ProfileRejected("DuplicateProfile", "DuplicateTxDefaultProfileFound")

    def clear(self, *, profile_id: int | None = None, evse_id: int | None = None,
              purpose: str | None = None, stack_level: int | None = None) -> bool:
        """Remove the profile with ``profile_id``, else every profile matching all the criteria
        given (none: all). Returns whether anything was removed (``Accepted`` vs ``Unknown``;
        1.6 §5.5, 2.x K10)."""
        purpose = _PURPOSE_ALIASES.get(purpose, purpose) if purpose else None
        if profile_id is not None:
            return self._profiles.pop(profile_id, None) is not None
        keep = {
            k: q for k, q in self._profiles.items()
            if not ((evse_id is None or q.evse_id == evse_id)
                    and (purpose is None or q.purpose == purpose)
                    and (stack_level is None or q.stack_level == stack_level))
        }
        removed = len(keep) < len(self._profiles)
        self._profiles = keep
        return removed

    def end_transaction(self, transaction_id: str | None) -> None:
        """Discard the TxProfiles of a finished transaction (1.6 §3.13.1: “for the duration of the
        current transaction only”)."""
        self._profiles = {k: q for k, q in self._profiles.items()
                          if not (q.purpose == TX_PROFILE and q.transaction_id == transaction_id)}

    def to_kw(self, value: float, unit: str, number_phases: int | None = None) -> float:
        """A limit in ``unit`` → kW. ``A`` is per phase over the phases in use (module docstring)."""
        if unit == "W":
            return value / 1000.0
        kw = float(self.charger.amps_to_kw(value))
        if self.charger.current_type == "AC":
            in_use = min(number_phases if number_phases is not None else 3, self.charger.phases)
            kw *= in_use / self.charger.phases
        return kw

    def from_kw(self, kw: float, unit: str) -> float:
        """kW → ``unit`` (``A`` per phase on all the charger's phases)."""
        return kw * 1000.0 if unit == "W" else float(self.charger.kw_to_amps(kw))

    def segments(self, start: pd.Timestamp, end: pd.Timestamp, *,
                 transaction: ActiveTransaction | None = None) -> list[Segment]:
        """The composite over ``[start, end)`` as constant segments in kW (OCPP 1.6 §3.13.4, K08).

        ``transaction`` selects the TxProfiles that apply and anchors Relative schedules (else
        they start at ``start``). The station has one EVSE, so the station total (EVSE 0, the
        sum over EVSEs in K08) is the same as EVSE 1.
        """
        a, b = _seconds(start), _seconds(end)
        if not b > a:
            return []
        rel = _seconds(transaction.started_at) if transaction is not None else a
        tx_id = transaction.transaction_id if transaction is not None else None
        tx = sorted((q for q in self._profiles.values()
                     if q.purpose == TX_PROFILE and transaction is not None
                     and q.transaction_id == tx_id),
                    key=lambda q: -q.stack_level)
        default = sorted((q for q in self._profiles.values() if q.purpose == TX_DEFAULT),
                         key=lambda q: (-q.stack_level, -q.evse_id))
        maximum = sorted((q for q in self._profiles.values() if q.purpose == MAX_PROFILE),
                         key=lambda q: -q.stack_level)
        points = {a, b}
        for q in (*tx, *default, *maximum):
            points |= _breakpoints(q, a, b, rel)
        times = sorted(points)
        out: list[Segment] = []
        for t0, t1 in itertools.pairwise(times):
            seg = self._segment_at(t0, t1, rel, tx, default, maximum)
            if out and _same(out[-1], seg):
                out[-1] = replace(out[-1], end_s=t1)
            else:
                out.append(seg)
        return out

    def _segment_at(self, t0: float, t1: float, rel: float, tx: list[ChargingProfile],
                    default: list[ChargingProfile], maximum: list[ChargingProfile]) -> Segment:
        chosen = _first_value(tx, t0, rel) or _first_value(default, t0, rel)
        cap = _first_value(maximum, t0, rel)
        cap_kw = None if cap is None else self.to_kw(cap[1].limit, cap[0].rate_unit,
                                                     cap[1].number_phases)
        if chosen is None:
            return Segment(t0, t1, cap_kw)
        q, period = chosen
        limit_kw = (None if period.limit is None
                    else self.to_kw(period.limit, q.rate_unit, period.number_phases))
        if period.operation_mode == "Idle":
            limit_kw = 0.0
        if cap_kw is not None:
            limit_kw = cap_kw if limit_kw is None else min(limit_kw, cap_kw)
        setpoint_kw = (None if period.setpoint is None
                       else self.to_kw(period.setpoint, q.rate_unit, period.number_phases))
        if setpoint_kw is not None and limit_kw is not None:
            setpoint_kw = min(setpoint_kw, limit_kw)
        discharge_kw = (None if period.discharge_limit is None
                        else self.to_kw(period.discharge_limit, q.rate_unit, period.number_phases))
        return Segment(t0, t1, limit_kw, setpoint_kw, discharge_kw, period.operation_mode)

    def composite_schedule(self, *, start: pd.Timestamp, duration_s: int, evse_id: int,
                           unit: str | None,
                           transaction: ActiveTransaction | None) -> dict[str, Any]:
        """The ``GetCompositeSchedule`` response payload (wire camelCase) for this version.

        Limits are in ``unit`` (default: the station's first rate unit; an unsupported unit or
        an unknown EVSE is ``Rejected``, K01.FR.05/07 as in EVerest), rounded to 0.1 (1.6 §7.14);
        an unconstrained interval reports the charger's rating. Periods start at ``start``.
        """
        unit = unit or self.rate_units[0]
        if unit not in self.rate_units or evse_id not in (0, EVSE_ID):
            reason = "UnsupportedRateUnit" if unit not in self.rate_units else "InvalidValue"
            if self.version == "1.6":
                return {"status": "Rejected"}
            return {"status": "Rejected", "statusInfo": {"reasonCode": reason}}
        start = pd.Timestamp(start).tz_convert("UTC").floor("s")
        segs = self.segments(start, start + pd.Timedelta(seconds=duration_s),
                             transaction=transaction)
        a = _seconds(start)
        periods: list[dict[str, Any]] = []
        for s in segs:
            limit_kw = self.charger.max_kw if s.limit_kw is None else s.limit_kw
            period: dict[str, Any] = {"startPeriod": round(s.start_s - a),
                                      "limit": round(self.from_kw(limit_kw, unit), 1)}
            if unit == "A" and self.charger.current_type == "AC":
                period["numberPhases"] = self.charger.phases
            if self.version == "2.1" and s.operation_mode != "ChargingOnly":
                period["operationMode"] = s.operation_mode
                if s.setpoint_kw is not None:
                    period["setpoint"] = round(self.from_kw(s.setpoint_kw, unit), 1)
                if s.discharge_limit_kw is not None:
                    period["dischargeLimit"] = round(self.from_kw(s.discharge_limit_kw, unit), 1)
            same = {k: v for k, v in period.items() if k != "startPeriod"}
            if periods and {k: v for k, v in periods[-1].items() if k != "startPeriod"} == same:
                continue  # equal in every field (a ChargingOnly 0 after a setpoint is not)
            periods.append(period)
        schedule = {"duration": int(duration_s), "chargingRateUnit": unit,
                    "chargingSchedulePeriod": periods}
        if self.version == "1.6":
            return {"status": "Accepted", "connectorId": evse_id, "scheduleStart": iso_z(start),
                    "chargingSchedule": {**schedule, "startSchedule": iso_z(start)}}
        return {"status": "Accepted",
                "schedule": {"evseId": evse_id, "scheduleStart": iso_z(start), **schedule}}


def _first_value(profiles: list[ChargingProfile], t: float,
                 rel: float) -> tuple[ChargingProfile, Period] | None:
    for q in profiles:
        period = _value_at(q, t, rel)
        if period is not None:
            return q, period
    return None


def _same(x: Segment, y: Segment) -> bool:
    return (x.limit_kw, x.setpoint_kw, x.discharge_limit_kw, x.operation_mode) == (
        y.limit_kw, y.setpoint_kw, y.discharge_limit_kw, y.operation_mode)


def _overlap(p: ChargingProfile, q: ChargingProfile) -> bool:
    lo = max(p.valid_from_s or -math.inf, q.valid_from_s or -math.inf)
    hi = min(p.valid_to_s or math.inf, q.valid_to_s or math.inf)
    return lo < hi
