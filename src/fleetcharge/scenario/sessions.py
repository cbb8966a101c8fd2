"""From CSV rows to :class:`~fleetcharge.domain.Session` objects: SOC/energy, chargers, clipping.

The work is column-wise over numpy arrays (one entry per session) so that a 1,000-vehicle month
(~30k sessions) loads in well under a second; only charger assignment for sessions without a
charger walks the sessions once, in arrival order, with heaps.

Pipeline (:func:`build_sessions`): vehicle overlaps → charger assignment → compatibility →
charger overlaps → power caps → clip to the horizon → ``Session`` objects.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fleetcharge.domain import Charger, Session, Vehicle
from fleetcharge.errors import ConsistencyError, InputError
from fleetcharge.scenario.tables import (
    column_or_empty,
    parse_numbers,
    parse_times,
    require_ids,
    sheet_row,
)
from fleetcharge.timegrid import Horizon

SOC_TOL = 1e-9

FROM_ROW, AFTER_TRIP, BEFORE_TRIP = 0, 1, 2

SESSION_COLUMNS_REQUIRED = ("vehicle_id", "arrival", "departure")
SESSION_COLUMNS_OPTIONAL = (
    "energy_kwh", "arrival_soc", "target_soc", "max_kw", "charger_id", "session_id",
)
TRIP_COLUMNS_REQUIRED = ("vehicle_id", "depart", "return")
TRIP_COLUMNS_OPTIONAL = ("energy_kwh", "distance_mi", "kwh_per_mile", "trip_id")


@dataclass(frozen=True)
class Fleet:
    """Vehicles and chargers with the per-entity numbers the pipeline needs as arrays."""

    vehicles: tuple[Vehicle, ...]
    chargers: tuple[Charger, ...]
    kwh_per_mile: dict[str, float] = field(default_factory=dict)  # by vehicle type name

    def __post_init__(self) -> None:
        v, c = self.vehicles, self.chargers
        arr = {
            "v_index": {x.id: i for i, x in enumerate(v)},
            "c_index": {x.id: i for i, x in enumerate(c)},
            "usable": np.array([x.type.usable_kwh for x in v], dtype=float),
            "eta": np.array([x.type.charge_efficiency for x in v], dtype=float),
            "max_ac": np.array([x.type.max_ac_kw for x in v], dtype=float),
            "max_dc": np.array([x.type.max_dc_kw for x in v], dtype=float),
            "target": np.array([x.target_soc for x in v], dtype=float),
            "min_soc": np.array([x.min_soc for x in v], dtype=float),
            "c_max": np.array([x.max_kw for x in c], dtype=float),
            "c_dc": np.array([x.current_type == "DC" for x in c], dtype=bool),
        }
        c_index = arr["c_index"]
        arr["home"] = np.array(
            [c_index.get(x.home_charger_id, -1) if x.home_charger_id else -1 for x in v],
            dtype=np.int64,
        )
        for k, val in arr.items():
            object.__setattr__(self, k, val)

    # declared for type checkers; filled in __post_init__
    v_index: dict[str, int] = field(init=False, repr=False)
    c_index: dict[str, int] = field(init=False, repr=False)
    usable: np.ndarray = field(init=False, repr=False)
    eta: np.ndarray = field(init=False, repr=False)
    max_ac: np.ndarray = field(init=False, repr=False)
    max_dc: np.ndarray = field(init=False, repr=False)
    target: np.ndarray = field(init=False, repr=False)
    min_soc: np.ndarray = field(init=False, repr=False)
    c_max: np.ndarray = field(init=False, repr=False)
    c_dc: np.ndarray = field(init=False, repr=False)
    home: np.ndarray = field(init=False, repr=False)

    def vehicle_kw_on(self, vehicle: np.ndarray, charger: np.ndarray) -> np.ndarray:
        """Vectorised ``VehicleType.max_kw_on``: min(charger, vehicle AC or DC limit) [kW]."""
        vehicle_kw = np.where(self.c_dc[charger], self.max_dc[vehicle], self.max_ac[vehicle])
        return np.minimum(self.c_max[charger], vehicle_kw)


@dataclass
class Draft:
    """Sessions before they become domain objects, one array entry per session."""

    row: np.ndarray  # spreadsheet row of the CSV row the session comes from
    origin: np.ndarray  # FROM_ROW, AFTER_TRIP or BEFORE_TRIP (for messages)
    vehicle: np.ndarray  # index into Fleet.vehicles
    arrival: pd.DatetimeIndex
    departure: pd.DatetimeIndex
    energy_kwh: np.ndarray
    arrival_soc: np.ndarray
    target_soc: np.ndarray
    max_kw: np.ndarray  # session cap from the CSV, NaN if none
    charger: np.ndarray  # index into Fleet.chargers, -1 = assign
    session_id: np.ndarray | None = None

    def describe(self, i: int) -> str:
        r = int(self.row[i])
        return {FROM_ROW: f"row {r}", AFTER_TRIP: f"the dwell after trip row {r}",
                BEFORE_TRIP: f"the dwell before trip row {r}"}[int(self.origin[i])]

    def location(self, *idx: int) -> str:
        rows = sorted({int(self.row[i]) for i in idx})
        return ("row " if len(rows) == 1 else "rows ") + " and ".join(str(r) for r in rows)

    def span(self, i: int) -> str:
        return f"{_fmt(self.arrival[i])} → {_fmt(self.departure[i])}"


def _index_ns(epoch_ns: np.ndarray, tz: str) -> pd.DatetimeIndex:
    """Epoch nanoseconds → tz-aware index (ns unit, as ``Horizon.step_of`` expects)."""
    return pd.to_datetime(epoch_ns, unit="ns", utc=True).tz_convert(tz).as_unit("ns")


def _fmt(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%d %H:%M%z")


def _vehicle_indices(ids: np.ndarray, fleet: Fleet, file: str, col: str = "vehicle_id"
                     ) -> np.ndarray:
    idx = pd.Series(ids).map(fleet.v_index)
    bad = idx.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        known = list(fleet.v_index)
        shown = known[:5] + (["..."] if len(known) > 5 else [])
        raise ConsistencyError(
            f"unknown vehicle {str(ids[i])!r}; declare it under vehicles in the scenario YAML or "
            f"fix the id (declared: {', '.join(shown)})",
            file=file, location=f"row {sheet_row(i)}, column {col}",
        )
    return idx.to_numpy(dtype=np.int64)


def _charger_indices(ids: pd.Series, fleet: Fleet, file: str) -> np.ndarray:
    empty = (ids == "").to_numpy()
    idx = ids.map(fleet.c_index)
    bad = (~empty) & idx.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConsistencyError(
            f"unknown charger {ids.iloc[i]!r}; declare it under chargers or fix the id "
            "(leave the cell empty to use the vehicle's home charger or any free one)",
            file=file, location=f"row {sheet_row(i)}, column charger_id",
        )
    return idx.fillna(-1).to_numpy(dtype=np.int64)


def _check_soc_range(values: np.ndarray, col: str, file: str) -> None:
    bad = np.isfinite(values) & ((values < 0) | (values > 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{col} {values[i]:g} is outside 0–1; SOC is a fraction of usable capacity "
            "(write 0.35, not 35)",
            file=file, location=f"row {sheet_row(i)}, column {col}",
        )


def draft_from_sessions_csv(df: pd.DataFrame, fleet: Fleet, timezone: str, file: str) -> Draft:
    """Parse a sessions table and fill energy and SOCs consistently.

    With energy at the charger ``E``, efficiency ``η`` and usable capacity ``U``:
    ``target_soc = arrival_soc + η·E/U``. Given ``energy_kwh``, the target is the row's
    ``target_soc`` (else the vehicle's) and the arrival SOC follows. Given ``arrival_soc``,
    ``E = (target − arrival)·U/η``; a vehicle that arrives at or above its *default* target
    needs nothing (``E = 0``, target = arrival), while an explicit ``target_soc`` below
    ``arrival_soc`` is a contradiction and an error.
    """
    n = len(df)
    if n == 0:
        raise InputError("the sessions CSV has a header but no sessions", file=file)
    if "energy_kwh" not in df.columns and "arrival_soc" not in df.columns:
        raise InputError(
            "the sessions CSV needs an energy_kwh column (energy at the charger) or an "
            "arrival_soc column (SOC on arrival, 0–1)", file=file, location="row 1",
        )
    vehicle = _vehicle_indices(require_ids(df["vehicle_id"], "vehicle_id", file), fleet, file)
    arrival = parse_times(df["arrival"], "arrival", timezone, file)
    departure = parse_times(df["departure"], "departure", timezone, file)
    energy = parse_numbers(column_or_empty(df, "energy_kwh"), "energy_kwh", file)
    a_soc = parse_numbers(column_or_empty(df, "arrival_soc"), "arrival_soc", file)
    t_col = parse_numbers(column_or_empty(df, "target_soc"), "target_soc", file)
    cap = parse_numbers(column_or_empty(df, "max_kw"), "max_kw", file)
    charger = _charger_indices(column_or_empty(df, "charger_id"), fleet, file)
    rows = np.arange(n) + 2

    has_e, has_a = np.isfinite(energy), np.isfinite(a_soc)
    for mask, msg in (
        (has_e & has_a, "has both energy_kwh and arrival_soc; give one (the other follows "
                        "from the vehicle's usable capacity and efficiency)"),
        (~has_e & ~has_a, "has neither energy_kwh nor arrival_soc; give one of them"),
    ):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise InputError(msg, file=file, location=f"row {rows[i]}")
    _check_soc_range(a_soc, "arrival_soc", file)
    _check_soc_range(t_col, "target_soc", file)
    for col, values in (("energy_kwh", energy), ("max_kw", cap)):
        bad = values < 0 if col == "energy_kwh" else values <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "negative" if col == "energy_kwh" else "not positive"
            raise InputError(f"{col} {values[i]:g} is {what}; fix the value",
                             file=file, location=f"row {rows[i]}, column {col}")

    usable, eta = fleet.usable[vehicle], fleet.eta[vehicle]
    explicit_t = np.isfinite(t_col)
    target = np.where(explicit_t, t_col, fleet.target[vehicle])
    # energy given: arrival SOC follows
    a_from_e = target - eta * np.where(has_e, energy, 0.0) / usable
    over = has_e & (a_from_e < -SOC_TOL)
    if over.any():
        i = int(np.flatnonzero(over)[0])
        v = fleet.vehicles[vehicle[i]]
        raise InputError(
            f"energy_kwh {energy[i]:g} is more than vehicle {v.id!r} can take: η·E = "
            f"{eta[i] * energy[i]:.1f} kWh into the battery but only target_soc {target[i]:g} × "
            f"{usable[i]:g} kWh usable = {target[i] * usable[i]:.1f} kWh fit; lower energy_kwh, "
            f"or check the vehicle type {v.type.name!r}",
            file=file, location=f"row {rows[i]}, column energy_kwh",
        )
    # SOC given: energy follows
    below = has_a & explicit_t & (target < a_soc - SOC_TOL)
    if below.any():
        i = int(np.flatnonzero(below)[0])
        raise InputError(
            f"target_soc {target[i]:g} is below arrival_soc {a_soc[i]:g}; the target is the SOC "
            "wanted at departure (leave target_soc empty to use the vehicle's target)",
            file=file, location=f"row {rows[i]}, column target_soc",
        )
    target = np.where(has_a, np.maximum(target, a_soc), target)
    arrival_soc = np.where(has_e, np.maximum(a_from_e, 0.0), a_soc)
    energy = np.where(has_e, energy, (target - arrival_soc) * usable / eta)

    sid = column_or_empty(df, "session_id").to_numpy(dtype=object).astype(str)
    has_sid = sid != ""
    if has_sid.any():
        s = pd.Series(sid[has_sid])
        dup = s.duplicated(keep=False).to_numpy()
        if dup.any():
            pos = np.flatnonzero(has_sid)[dup][:2]
            raise InputError(
                f"session_id {str(sid[pos[0]])!r} is used twice; session ids must be unique",
                file=file, location=f"rows {rows[pos[0]]} and {rows[pos[1]]}, column session_id",
            )
    return Draft(rows, np.full(n, FROM_ROW), vehicle, arrival, departure, energy, arrival_soc,
                 target, cap, charger, np.where(has_sid, sid, None) if has_sid.any() else None)


def draft_from_trips_csv(
    df: pd.DataFrame, fleet: Fleet, horizon: Horizon, file: str
) -> tuple[Draft, list[str]]:
    """Derive plug-in sessions from trips; returns the draft and warnings.

    Each vehicle is plugged in at its target SOC until its first departure (a session of zero
    energy from the horizon start) and leaves on every trip at its target SOC, because the dwell
    before it charges back to target. A trip uses ``energy_kwh`` from the battery, or
    ``distance_mi × kwh_per_mile`` (the row's, else the vehicle type's). Back-to-back trips
    (``depart == previous return``) have no dwell between them and draw the battery down
    together. Each return starts a session to the next departure (or to the horizon end after
    the last trip) with ``arrival_soc = target − (energy since last charge)/U`` and
    ``energy_kwh = (energy since last charge)/η``. Arriving below 0 is an error, below the
    vehicle's ``min_soc`` a warning.
    """
    n = len(df)
    if n == 0:
        raise InputError("the trips CSV has a header but no trips", file=file)
    tz = horizon.timezone
    vehicle = _vehicle_indices(require_ids(df["vehicle_id"], "vehicle_id", file), fleet, file)
    depart = parse_times(df["depart"], "depart", tz, file)
    ret = parse_times(df["return"], "return", tz, file)
    energy = parse_numbers(column_or_empty(df, "energy_kwh"), "energy_kwh", file)
    dist = parse_numbers(column_or_empty(df, "distance_mi"), "distance_mi", file)
    per_mi = parse_numbers(column_or_empty(df, "kwh_per_mile"), "kwh_per_mile", file)
    rows = np.arange(n) + 2

    has_e, has_d = np.isfinite(energy), np.isfinite(dist)
    for mask, msg in (
        (has_e & has_d, "has both energy_kwh and distance_mi; give one"),
        (~has_e & ~has_d, "has neither energy_kwh (battery energy used) nor distance_mi; "
                          "give one of them"),
    ):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise InputError(msg, file=file, location=f"row {rows[i]}")
    for col, values in (("energy_kwh", energy), ("distance_mi", dist), ("kwh_per_mile", per_mi)):
        bad = values < 0 if col != "kwh_per_mile" else values <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            bound = "≥ 0" if col != "kwh_per_mile" else "> 0"
            raise InputError(f"{col} {values[i]:g} must be {bound}; fix the value",
                             file=file, location=f"row {rows[i]}, column {col}")
    type_rate = np.array(
        [fleet.kwh_per_mile.get(v.type.name, np.nan) for v in fleet.vehicles], dtype=float
    )[vehicle]
    rate = np.where(np.isfinite(per_mi), per_mi, type_rate)
    no_rate = has_d & ~np.isfinite(rate)
    if no_rate.any():
        i = int(np.flatnonzero(no_rate)[0])
        v = fleet.vehicles[vehicle[i]]
        raise InputError(
            f"distance_mi given but no kWh per mile is known for vehicle {v.id!r}; add "
            f"kwh_per_mile to vehicle type {v.type.name!r} or a kwh_per_mile column",
            file=file, location=f"row {rows[i]}, column distance_mi",
        )
    trip_kwh = np.where(has_e, energy, dist * rate)

    dep_ns, ret_ns = depart.asi8, ret.asi8
    bad = ret_ns <= dep_ns
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"return {_fmt(ret[i])} is not after depart {_fmt(depart[i])}; fix the times",
            file=file, location=f"row {rows[i]}",
        )
    order = np.lexsort((dep_ns, vehicle))
    v_s, d_s, r_s = vehicle[order], dep_ns[order], ret_ns[order]
    same = v_s[1:] == v_s[:-1]
    clash = same & (d_s[1:] < r_s[:-1])
    if clash.any():
        k = int(np.flatnonzero(clash)[0])
        i, j = order[k], order[k + 1]
        raise ConsistencyError(
            f"vehicle {fleet.vehicles[vehicle[i]].id!r} is on two trips at once "
            f"({_fmt(depart[i])} → {_fmt(ret[i])} and {_fmt(depart[j])} → {_fmt(ret[j])}); "
            "fix the times or the vehicle_id",
            file=file, location=f"rows {min(rows[i], rows[j])} and {max(rows[i], rows[j])}",
        )

    first_of_vehicle = np.concatenate(([True], ~same))
    last_of_vehicle = np.concatenate((~same, [True]))
    # a run = trips with no dwell between them; the battery is at target when a run starts
    new_run = first_of_vehicle | np.concatenate(([True], d_s[1:] > r_s[:-1]))
    run_id = np.cumsum(new_run) - 1
    kwh_s = trip_kwh[order]
    cum = np.cumsum(kwh_s)
    run_base = (cum - kwh_s)[new_run][run_id]
    used = cum - run_base  # battery energy used since the run's start, at each return
    usable, target = fleet.usable[v_s], fleet.target[v_s]
    soc_after = target - used / usable
    empty = soc_after < -SOC_TOL
    if empty.any():
        k = int(np.flatnonzero(empty)[0])
        vid = fleet.vehicles[v_s[k]].id
        raise InputError(
            f"vehicle {vid!r} would return at SOC {soc_after[k]:.2f}: its trips since the last "
            f"charge use {used[k]:.1f} kWh but it leaves with at most target_soc {target[k]:g} × "
            f"{usable[k]:g} kWh usable = {target[k] * usable[k]:.1f} kWh; shorten the trip, add a "
            "dwell between trips to charge, or check the vehicle type",
            file=file, location=f"row {rows[order[k]]}",
        )
    warnings = []
    low = soc_after < fleet.min_soc[v_s] - SOC_TOL
    for k in np.flatnonzero(low):
        warnings.append(
            f"{file}: row {rows[order[k]]}: vehicle {fleet.vehicles[v_s[k]].id!r} returns at "
            f"SOC {soc_after[k]:.2f}, below its min_soc {fleet.min_soc[v_s[k]]:g}"
        )

    # sessions after each return that is followed by a dwell, and after each vehicle's last trip
    end_ns = horizon.end.value
    next_dep = np.concatenate((d_s[1:], [0]))
    stop_ns = np.where(last_of_vehicle, np.maximum(end_ns, r_s), next_dep)
    after = stop_ns > r_s
    # and before each vehicle's first trip, from the horizon start
    start_ns = horizon.start.value
    before = first_of_vehicle & (d_s > start_ns)

    k_after, k_before = np.flatnonzero(after), np.flatnonzero(before)
    arr_ns = np.concatenate((r_s[k_after], np.full(k_before.size, start_ns)))
    dep_ns2 = np.concatenate((stop_ns[k_after], d_s[k_before]))
    veh = np.concatenate((v_s[k_after], v_s[k_before]))
    row = np.concatenate((rows[order[k_after]], rows[order[k_before]]))
    origin = np.concatenate(
        (np.full(k_after.size, AFTER_TRIP), np.full(k_before.size, BEFORE_TRIP)))
    a_soc = np.concatenate((soc_after[k_after], target[k_before]))
    t_soc = fleet.target[veh]
    energy_s = np.concatenate((used[k_after], np.zeros(k_before.size))) / fleet.eta[veh]
    # chronological per vehicle
    o = np.lexsort((arr_ns, veh))
    seen = np.zeros(len(fleet.vehicles), dtype=bool)
    seen[vehicle] = True
    for i in np.flatnonzero(~seen):
        warnings.append(f"{file}: vehicle {fleet.vehicles[i].id!r} has no trips, so no sessions")
    draft = Draft(row[o], origin[o], veh[o], _index_ns(arr_ns[o], tz), _index_ns(dep_ns2[o], tz), energy_s[o],
                  np.maximum(a_soc[o], 0.0), t_soc[o], np.full(o.size, np.nan),
                  np.full(o.size, -1, dtype=np.int64))
    return draft, warnings


def _check_overlaps(draft: Draft, key: np.ndarray, what: str, names: list[str], file: str,
                    hint: str) -> None:
    """Raise naming both sessions if two intervals with the same ``key`` overlap."""
    a, d = draft.arrival.asi8, draft.departure.asi8
    order = np.lexsort((a, key))
    k_s = key[order]
    clash = (k_s[1:] == k_s[:-1]) & (a[order][1:] < d[order][:-1])
    if clash.any():
        pairs = np.flatnonzero(clash)
        # report the pair that appears first in the file
        first_rows = np.minimum(draft.row[order[pairs]], draft.row[order[pairs + 1]])
        k = int(pairs[np.argmin(first_rows)])
        i, j = sorted((int(order[k]), int(order[k + 1])), key=lambda x: draft.row[x])
        raise ConsistencyError(
            f"{what} {names[k_s[k]]!r} is used by two sessions at once: {draft.describe(i)} "
            f"({draft.span(i)}) and {draft.describe(j)} ({draft.span(j)}); {hint}",
            file=file, location=draft.location(i, j),
        )


def _assign_free_chargers(draft: Draft, fleet: Fleet, file: str) -> None:
    """Give each session without a charger the first free, compatible one in declared order.

    Fixed sessions (explicit ``charger_id`` or home charger) are placed first; the others are
    assigned greedily in arrival order. A charger is free for a session if no fixed or already
    assigned session on it overlaps ``[arrival, departure)``.
    """
    todo = np.flatnonzero(draft.charger < 0)
    if todo.size == 0:
        return
    nc = len(fleet.chargers)
    a, d = draft.arrival.asi8, draft.departure.asi8
    fixed = np.flatnonzero(draft.charger >= 0)
    fixed_starts: list[np.ndarray] = [np.empty(0, np.int64)] * nc
    fixed_maxend: list[np.ndarray] = [np.empty(0, np.int64)] * nc
    if fixed.size:
        c_f = draft.charger[fixed]
        o = np.lexsort((a[fixed], c_f))
        bounds = np.searchsorted(c_f[o], np.arange(nc + 1))
        for c in np.unique(c_f):
            sel = fixed[o[bounds[c]:bounds[c + 1]]]
            fixed_starts[c] = a[sel]
            fixed_maxend[c] = np.maximum.accumulate(d[sel])

    def fixed_conflict(c: int, start: int, stop: int) -> bool:
        starts = fixed_starts[c]
        if starts.size == 0:
            return False
        k = bisect_left(starts, stop) - 1  # last fixed session starting before ``stop``
        return k >= 0 and fixed_maxend[c][k] > start

    can_ac = fleet.max_ac > 0
    can_dc = fleet.max_dc > 0
    free = list(range(nc))  # heap of charger indices (declared order) not busy
    busy: list[tuple[int, int]] = []  # heap of (busy until, charger)
    for s in todo[np.argsort(a[todo], kind="stable")]:
        start, stop, v = int(a[s]), int(d[s]), int(draft.vehicle[s])
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        skipped, chosen = [], -1
        while free:
            c = heapq.heappop(free)
            ok = can_dc[v] if fleet.c_dc[c] else can_ac[v]
            if ok and not fixed_conflict(c, start, stop):
                chosen = c
                break
            skipped.append(c)
        for c in skipped:
            heapq.heappush(free, c)
        if chosen < 0:
            vid = fleet.vehicles[v].id
            raise ConsistencyError(
                f"no free charger for vehicle {vid!r} over {draft.span(s)}: every compatible "
                "charger is in use then; add chargers under `chargers`, or give the session a "
                "charger_id (or the vehicle a home_charger)",
                file=file, location=draft.location(s),
            )
        draft.charger[s] = chosen
        heapq.heappush(busy, (stop, chosen))


def build_sessions(
    draft: Draft, fleet: Fleet, horizon: Horizon, file: str
) -> tuple[tuple[Session, ...], dict]:
    """Validate a draft and turn it into ``Session`` objects on the horizon.

    Returns the sessions and metadata: ``clipped_sessions`` and ``dropped_sessions`` (see
    :func:`clip_to_horizon`) and ``warnings``.
    """
    a, d = draft.arrival.asi8, draft.departure.asi8
    bad = d <= a
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"departure {_fmt(draft.departure[i])} is not after arrival {_fmt(draft.arrival[i])}; "
            "fix the times (a session must last longer than zero)",
            file=file, location=draft.location(i),
        )
    vehicle_ids = [v.id for v in fleet.vehicles]
    _check_overlaps(draft, draft.vehicle, "vehicle", vehicle_ids, file,
                    "a vehicle can only be plugged in once at a time: fix the times or the "
                    "vehicle_id")
    home = fleet.home[draft.vehicle]
    draft.charger = np.where(draft.charger >= 0, draft.charger, home)
    _assign_free_chargers(draft, fleet, file)
    vehicle_kw = fleet.vehicle_kw_on(draft.vehicle, draft.charger)
    cant = vehicle_kw <= 0
    if cant.any():
        i = int(np.flatnonzero(cant)[0])
        v, c = fleet.vehicles[draft.vehicle[i]], fleet.chargers[draft.charger[i]]
        raise ConsistencyError(
            f"vehicle {v.id!r} (type {v.type.name!r}, max_ac_kw {v.type.max_ac_kw:g}, max_dc_kw "
            f"{v.type.max_dc_kw:g}) cannot charge on {c.current_type} charger {c.id!r}; "
            "assign a compatible charger or fix the vehicle type's limits",
            file=file, location=draft.location(i),
        )
    _check_overlaps(draft, draft.charger, "charger", [c.id for c in fleet.chargers], file,
                    "a port serves one vehicle at a time: give one session another charger_id, "
                    "or add chargers")
    max_kw = np.where(np.isfinite(draft.max_kw), np.minimum(vehicle_kw, draft.max_kw), vehicle_kw)
    meta = clip_to_horizon(draft, horizon)
    keep = meta.pop("_keep")

    # session ids: the CSV's, else "<vehicle>/<n>" numbered per vehicle in time order
    o = np.lexsort((a, draft.vehicle))
    seq = np.empty(len(o), dtype=np.int64)
    v_sorted = draft.vehicle[o]
    starts = np.concatenate(([True], v_sorted[1:] != v_sorted[:-1]))
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(o)), 0))
    seq[o] = np.arange(len(o)) - run_start + 1
    names = np.asarray(vehicle_ids, dtype=object)[draft.vehicle]
    ids = [f"{v}/{n}" for v, n in zip(names.tolist(), seq.tolist())]
    if draft.session_id is not None:
        ids = [given if given else auto for given, auto in zip(draft.session_id.tolist(), ids)]
    for entry in meta["clipped_sessions"] + meta["dropped_sessions"]:
        entry["id"] = ids[entry.pop("_index")]

    # sessions that cannot take their energy even at full power (the planner reports them)
    hours = (draft.departure.asi8 - draft.arrival.asi8) / 3.6e12
    short = keep & (draft.energy_kwh > max_kw * hours * (1 + 1e-9))
    meta["warnings"] = [
        f"{file}: {draft.describe(i)}: session {ids[i]} needs {draft.energy_kwh[i]:.1f} kWh but "
        f"{max_kw[i]:g} kW × {hours[i]:.2f} h = {max_kw[i] * hours[i]:.1f} kWh is the most it can "
        "take; it cannot reach its target"
        for i in np.flatnonzero(short)
    ]

    charger_ids = [c.id for c in fleet.chargers]
    k = np.flatnonzero(keep)
    cols = zip(
        [ids[i] for i in k],
        [vehicle_ids[i] for i in draft.vehicle[k].tolist()],
        [charger_ids[i] for i in draft.charger[k].tolist()],
        list(draft.arrival[k]), list(draft.departure[k]),
        draft.energy_kwh[k].tolist(), draft.arrival_soc[k].tolist(),
        draft.target_soc[k].tolist(), max_kw[k].tolist(),
    )
    sessions = tuple(
        Session(id=sid, vehicle_id=vid, charger_id=cid, arrival=a, departure=d, energy_kwh=e,
                arrival_soc=a_soc, target_soc=t_soc, max_kw=cap)
        for sid, vid, cid, a, d, e, a_soc, t_soc, cap in cols
    )
    return sessions, meta


def clip_to_horizon(draft: Draft, horizon: Horizon) -> dict:
    """Clip sessions to ``[horizon.start, horizon.end)``, in place.

    A session wholly outside is dropped. One partly outside keeps the part inside: its energy is
    scaled by the fraction of the dwell inside, and its SOCs follow the straight line from
    ``arrival_soc`` at arrival to ``target_soc`` at departure, evaluated at the clipped ends
    (so ``target = arrival + η·E/U`` still holds). Returns metadata entries (internal keys
    ``_index``/``_keep`` are resolved by the caller).
    """
    a, d = draft.arrival.asi8, draft.departure.asi8
    s_ns, e_ns = horizon.start.value, horizon.end.value
    keep = (d > s_ns) & (a < e_ns)
    a2, d2 = np.maximum(a, s_ns), np.minimum(d, e_ns)
    clipped = keep & ((a2 != a) | (d2 != d))
    dropped, clipped_meta = [], []
    for i in np.flatnonzero(~keep):
        dropped.append({"_index": int(i), "row": int(draft.row[i]),
                        "arrival": draft.arrival[i].isoformat(),
                        "departure": draft.departure[i].isoformat()})
    if clipped.any():
        span = (d - a).astype(float)
        f0 = np.where(clipped, (a2 - a) / span, 0.0)
        f1 = np.where(clipped, (d2 - a) / span, 1.0)
        soc_a, soc_t = draft.arrival_soc.copy(), draft.target_soc.copy()
        new_e = draft.energy_kwh * (f1 - f0)
        for i in np.flatnonzero(clipped):
            clipped_meta.append({
                "_index": int(i), "row": int(draft.row[i]),
                "arrival": draft.arrival[i].isoformat(),
                "departure": draft.departure[i].isoformat(),
                "energy_kwh": float(draft.energy_kwh[i]),
                "energy_kwh_inside": float(new_e[i]),
            })
        draft.arrival_soc = np.where(clipped, soc_a + (soc_t - soc_a) * f0, soc_a)
        draft.target_soc = np.where(clipped, soc_a + (soc_t - soc_a) * f1, soc_t)
        draft.energy_kwh = np.where(clipped, new_e, draft.energy_kwh)
        tz = horizon.timezone
        draft.arrival, draft.departure = _index_ns(a2, tz), _index_ns(d2, tz)
    return {"clipped_sessions": clipped_meta, "dropped_sessions": dropped, "_keep": keep}
