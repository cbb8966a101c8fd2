"""Synthetic but realistic depot scenarios: delivery vans, school buses, transit buses.

:func:`generate_scenario` writes ``scenario.yaml`` + ``sessions.csv`` (+ ``building.csv``) that
:func:`fleetcharge.scenario.load_scenario` reads back. Same arguments and seed, same files.

Fleet envelopes (research notes, ``reference/market-and-v2g-economics.md`` §5.1):

- **delivery-vans** — Ford E-Transit class: 68 kWh usable (MY22–23, 115 kW DC) and 89 kWh
  (MY24, 176 kW DC), 11.3 kW on-board AC charger, ~0.55 kWh/mi; 19.2 kW L2 ports (6 A floor
  1.44 kW at 240 V). Out 06:00–07:00, back 17:00–19:00, 20–60 kWh a day (90 % of users drive
  < 76 mi/day). Fewer vans on weekends (Saturday ~40 %, Sunday ~10 %).
- **school-buses** — Type C ~155 kWh pack (140 usable, 1.21 kWh/mi, NREL) and Thomas Jouley
  style 226 kWh pack (200 usable, 1.4 kWh/mi, ConEd), both 19.2 kW AC / 60 kW DC and
  bidirectional (Lion/Thomas V2G pilots). A third of the ports are 60 kW DC bidirectional, the
  rest 19.2 kW L2. Two runs a school day (≈06:15–09:15 and ≈14:00–16:45) with a midday dwell;
  no service on weekends.
- **transit-buses** — 450 kWh (400 usable, LFP) and 660 kWh (590 usable, NMC, Proterra ZX5
  class) battery-electric buses, DC only, ~2.2 kWh/mi, one 150 kW DC depot charger each. Out
  04:30–05:45, back 21:30–23:55, 150–300 kWh a day; reduced weekend service.

Choices documented here because they shape results:

- **Service limit** = 60 % of the sum of port ratings plus the building's peak, rounded up to
  50 kW: depots are rarely built for every port at full power at once, which is exactly why
  managed charging matters; every session still fits its own dwell at its own cap.
- **V2G (school-buses only)**: the buses discharge on DC only (``bidirectional_modes: [DC]``,
  the charger is the inverter, so no J3072 certification is needed); the site has an approved
  interconnection agreement with anti-islanding and an export limit of 60 % of the
  bidirectional DC port ratings (omitted when the fleet is too small to have a DC port); the
  ``v2g:`` section names the ELRP-like emergency program and a $3,500 bidirectional premium per
  port. Vans and transit buses are not bidirectional and get no V2G settings.
- **Feasibility**: every session's energy fits in 90 % of ``cap × dwell`` (a day's energy is
  shortened when a dwell is too short), so unmanaged charging meets every target.
- Each vehicle starts the horizon plugged in at its target SOC (a zero-energy session until
  its first departure). Its last session runs to its next departure after the horizon (as a
  charging back-end's export of the month would show it; a week is simulated past the end), so
  the loader clips it at the horizon end and pro-rates its energy by the share of the dwell
  inside (``metadata["clipped_sessions"]``).
- Times are written as naive local wall-clock (site timezone) and stay within 04:30–23:55, so no
  time falls in a DST gap or repeated hour. The building load is written with UTC offsets.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml

from fleetcharge.errors import InputError
from fleetcharge.scenario.schema import check_timezone
from fleetcharge.timegrid import ALLOWED_RESOLUTIONS_MIN
from fleetcharge.v2g.programs import ELRP_LIKE

Kind = Literal["delivery-vans", "school-buses", "transit-buses"]
KINDS: tuple[str, ...] = ("delivery-vans", "school-buses", "transit-buses")

#: share of the sum of port ratings the service limit is sized for (plus the building peak)
SERVICE_SHARE = 0.6
#: a session's energy fits in this share of cap × dwell
FEASIBLE_SHARE = 0.9
TARGET_SOC, MIN_SOC = 0.9, 0.1
#: days simulated past the horizon to find each vehicle's next departure
LOOK_AHEAD_DAYS = 7
#: school buses: export limit as a share of the bidirectional DC port ratings
EXPORT_SHARE = 0.6
#: school buses: extra cost of a bidirectional port over a V1G one [$]
BIDIRECTIONAL_PREMIUM_USD = 3500


@dataclass(frozen=True)
class _Type:
    name: str
    usable_kwh: float
    max_ac_kw: float
    max_dc_kw: float
    charge_efficiency: float
    bidirectional: bool
    chemistry: str
    kwh_per_mile: float
    share: float
    bidirectional_modes: tuple[str, ...] = ()  # written only when given


@dataclass(frozen=True)
class _Port:
    prefix: str
    max_kw: float
    min_kw: float
    current_type: str
    bidirectional: bool
    share: float


L2 = _Port("L2", 19.2, 1.44, "AC", False, 1.0)  # 80 A at 240 V; 6 A J1772 floor

FLEETS: dict[str, tuple[tuple[_Type, ...], tuple[_Port, ...]]] = {
    "delivery-vans": (
        (_Type("e-transit-68", 68, 11.3, 115, 0.92, False, "NMC", 0.54, 0.6),
         _Type("e-transit-89", 89, 11.3, 176, 0.92, False, "NMC", 0.56, 0.4)),
        (L2,),
    ),
    "school-buses": (
        (_Type("school-bus-155", 140, 19.2, 60, 0.90, True, "NMC", 1.21, 0.5, ("DC",)),
         _Type("school-bus-226", 200, 19.2, 60, 0.90, True, "NMC", 1.40, 0.5, ("DC",))),
        (_Port("DC", 60.0, 0.0, "DC", True, 1 / 3), _Port("L2", 19.2, 1.44, "AC", False, 2 / 3)),
    ),
    "transit-buses": (
        (_Type("beb-450", 400, 0.0, 150, 0.93, False, "LFP", 2.1, 0.5),
         _Type("beb-660", 590, 0.0, 150, 0.93, False, "NMC", 2.3, 0.5)),
        (_Port("DC", 150.0, 0.0, "DC", False, 1.0),),
    ),
}


def _blocks(n: int, shares: list[float]) -> np.ndarray:
    """Split ``n`` items into contiguous blocks by share; returns the block of each item."""
    edges = np.round(np.cumsum([0.0, *shares]) / sum(shares) * n).astype(int)
    return np.searchsorted(edges[1:], np.arange(n), side="right")


def _minutes(rng: np.random.Generator, lo_h: float, hi_h: float, size: int | tuple) -> np.ndarray:
    return rng.uniform(lo_h * 60, hi_h * 60, size)


def _trips(kind: str, rng: np.random.Generator, usable: np.ndarray, kwh_mi: np.ndarray,
           weekday: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vehicle × day × run: depart and return [local minutes after midnight] and battery kWh.

    Runs that do not happen are NaN. Energy is capped so a vehicle leaving at the target SOC
    returns at or above ``MIN_SOC``.
    """
    n, days = len(usable), len(weekday)
    room = (TARGET_SOC - MIN_SOC) * usable[:, None] * 0.98
    if kind == "delivery-vans":
        dep_base = _minutes(rng, 6.0, 7.0, n)[:, None]
        ret_base = _minutes(rng, 17.0, 19.0, n)[:, None]
        route_kwh = rng.uniform(25, 50, n)[:, None]
        p_work = np.select([weekday == 5, weekday == 6], [0.4, 0.1], 0.97)
        works = rng.random((n, days)) < p_work
        dep = np.clip(dep_base + rng.normal(0, 8, (n, days)), 360, 420)
        ret = np.clip(ret_base + rng.normal(0, 20, (n, days)), 1020, 1140)
        kwh = route_kwh * rng.lognormal(0, 0.2, (n, days)) * np.where(weekday == 5, 0.8, 1.0)
        kwh = np.clip(kwh, 20, np.minimum(60, room))
        out = [x[..., None] for x in (dep, ret, kwh)]
        mask = works[..., None]
    elif kind == "school-buses":
        route_mi = rng.uniform(12, 30, n)[:, None, None]
        base = np.stack([_minutes(rng, lo, hi, n) for lo, hi in
                         ((6.25, 7.0), (8.5, 9.25), (14.0, 14.75), (15.75, 16.75))], axis=1)
        jitter = rng.normal(0, 5, (n, days, 4))
        t = base[:, None, :] + jitter
        dep = t[..., [0, 2]]
        ret = np.maximum(t[..., [1, 3]], dep + 45)
        kwh = route_mi * kwh_mi[:, None, None] * rng.lognormal(0, 0.15, (n, days, 2))
        kwh = np.minimum(kwh, room[..., None])
        out = [dep, ret, kwh]
        mask = np.broadcast_to((weekday < 5)[None, :, None], (n, days, 2))
    elif kind == "transit-buses":
        dep_base = _minutes(rng, 4.5, 5.75, n)[:, None]
        ret_base = _minutes(rng, 21.5, 23.75, n)[:, None]
        route_kwh = rng.uniform(170, 280, n)[:, None]
        p_work = np.select([weekday == 5, weekday == 6], [0.85, 0.65], 1.0)
        works = rng.random((n, days)) < p_work
        dep = np.clip(dep_base + rng.normal(0, 6, (n, days)), 270, 345)
        ret = np.clip(ret_base + rng.normal(0, 15, (n, days)), 1290, 1435)
        kwh = route_kwh * rng.lognormal(0, 0.1, (n, days)) * np.where(weekday >= 5, 0.85, 1.0)
        kwh = np.clip(kwh, 150, np.minimum(300, room))
        out = [x[..., None] for x in (dep, ret, kwh)]
        mask = works[..., None]
    else:  # pragma: no cover - checked by the caller
        raise AssertionError(kind)
    return tuple(np.where(mask, x, np.nan) for x in out)  # type: ignore[return-value]


def _sessions(
    ids: list[str], cap_kw: np.ndarray, eta: np.ndarray, days: pd.DatetimeIndex,
    dep_min: np.ndarray, ret_min: np.ndarray, kwh: np.ndarray, start: pd.Timestamp,
    end: pd.Timestamp, tz: str,
) -> pd.DataFrame:
    """Turn per-day trips into plug-in sessions (the dwell between trips), feasibly sized.

    ``days`` may run past ``end`` (the look-ahead that supplies each vehicle's next departure);
    sessions that start at or after ``end`` are not written.
    """
    n, n_days, runs = dep_min.shape
    day_ns = np.asarray(days.tz_localize(None).as_unit("ns").asi8)  # local midnight, naive
    v = np.repeat(np.arange(n), n_days * runs)
    dep_naive = (day_ns[None, :, None] + (np.round(dep_min) * 6e10)).reshape(-1)
    ret_naive = (day_ns[None, :, None] + (np.round(ret_min) * 6e10)).reshape(-1)
    e = kwh.reshape(-1)
    ok = np.isfinite(e)
    v, dep_naive, ret_naive, e = v[ok], dep_naive[ok].astype(np.int64), \
        ret_naive[ok].astype(np.int64), e[ok]
    order = np.lexsort((dep_naive, v))
    v, dep_naive, ret_naive, e = v[order], dep_naive[order], ret_naive[order], e[order]

    def aware(ns: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(ns, unit="ns")).tz_localize(tz).as_unit("ns")

    dep_ts, ret_ts = aware(dep_naive), aware(ret_naive)
    last = np.concatenate((v[1:] != v[:-1], [True]))
    first = np.concatenate(([True], v[1:] != v[:-1]))
    sim_end_ns = (days[-1] + pd.Timedelta(days=1)).as_unit("ns").value
    next_dep = np.where(last, sim_end_ns, np.concatenate((dep_ts.asi8[1:], [sim_end_ns])))
    dwell_h = (next_dep - ret_ts.asi8) / 3.6e12
    charger_kwh = np.minimum(e / eta[v], FEASIBLE_SHARE * cap_kw[v] * dwell_h)
    charger_kwh = np.floor(charger_kwh * 100) / 100

    start_ns = start.as_unit("ns").value
    idle = np.setdiff1d(np.arange(n), v)
    n_first = int(first.sum())
    arr = np.concatenate((ret_ts.asi8, np.full(n_first, start_ns), np.full(idle.size, start_ns)))
    dep = np.concatenate((next_dep, dep_ts.asi8[first], np.full(idle.size, sim_end_ns)))
    veh = np.concatenate((v, v[first], idle))
    energy = np.concatenate((charger_kwh, np.zeros(n_first + idle.size)))
    inside = arr < end.as_unit("ns").value
    arr, dep, veh, energy = arr[inside], dep[inside], veh[inside], energy[inside]

    def local(ns: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(ns, unit="ns", utc=True)).tz_convert(tz)

    df = pd.DataFrame({
        "vehicle_id": np.asarray(ids, dtype=object)[veh],
        "arrival": local(arr).strftime("%Y-%m-%d %H:%M"),
        "departure": local(dep).strftime("%Y-%m-%d %H:%M"),
        "energy_kwh": np.round(energy, 2),
        "_arr": arr, "_v": veh,
    })
    return df.sort_values(["_arr", "_v"], kind="stable").drop(columns=["_arr", "_v"])


def _building(rng: np.random.Generator, n_vehicles: int, index: pd.DatetimeIndex) -> np.ndarray:
    """A modest office/warehouse profile [kW]: night base, weekday daytime plateau, noise."""
    peak = 20.0 + 0.5 * n_vehicles
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60
    day_shape = np.interp(hour, [0, 6, 8, 17, 20, 24], [0, 0, 1, 1, 0, 0])
    weekend = index.day_of_week.to_numpy() >= 5
    level = 0.35 + 0.65 * day_shape * np.where(weekend, 0.5, 1.0)
    return np.round(peak * level * rng.normal(1.0, 0.05, len(index)).clip(0.8, 1.2), 1)


def _write_atomic(out_dir: Path, files: dict[str, str]) -> None:
    """Write ``files`` into ``out_dir`` via a temp folder + rename; nothing partial on failure."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        if not out_dir.exists():
            os.rename(tmp, out_dir)
            return
        if not out_dir.is_dir():
            raise InputError("exists and is not a folder; choose another output path",
                             file=str(out_dir))
        for name in files:
            os.replace(tmp / name, out_dir / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_arguments(kind: str, vehicles: int, days: int, resolution_min: int,
                     usable_kwh: float | None, max_ac_kw: float | None, timezone: str) -> None:
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(f"unknown fleet kind {kind!r}; {hint}use one of {', '.join(KINDS)}",
                         location="kind")
    for label, value in (("vehicles", vehicles), ("days", days)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{label} must be a whole number ≥ 1 (got {value!r}); "
                             f"e.g. --{label} {10 if label == 'vehicles' else 31}",
                             location=f"--{label}")
    if resolution_min not in ALLOWED_RESOLUTIONS_MIN:
        raise InputError(f"resolution_min must be one of {ALLOWED_RESOLUTIONS_MIN} "
                         f"(got {resolution_min!r})", location="resolution_min")
    for label, value in (("usable_kwh", usable_kwh), ("max_ac_kw", max_ac_kw)):
        if value is not None and not value > 0:
            raise InputError(f"{label} must be positive (got {value!r})", location=label)
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise InputError(str(exc), location="timezone") from None


def _start_day(start: str | dt.date) -> dt.date:
    if isinstance(start, dt.date) and not isinstance(start, dt.datetime):
        return start
    try:
        return dt.date.fromisoformat(str(start).strip())
    except ValueError:
        raise InputError(f"{str(start)!r} is not a date; use YYYY-MM-DD (e.g. 2025-03-03)",
                         location="--start") from None


def _check_tariff(tariff: str | Path) -> None:
    """Fail now, before anything is written, if ``tariff`` names no tariff or a broken one."""
    from fleetcharge.tariff.library import load_tariff
    from fleetcharge.tariff.model import UnsupportedTariffFeature

    with warnings.catch_warnings():
        # the scenario's loader reports these when the tariff is used; here we only check it
        warnings.simplefilter("ignore", UnsupportedTariffFeature)
        try:
            load_tariff(str(tariff))
        except InputError as exc:
            if exc.file is not None:
                raise  # a problem inside the tariff file, which it names
            raise InputError(exc.detail, location="--tariff") from None
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot load tariff {str(tariff)!r}: {exc}",
                             location="--tariff") from None


def generate_scenario(
    kind: Kind,
    vehicles: int,
    days: int,
    seed: int,
    out_dir: Path,
    start: str = "2025-03-03",
    tariff: str = "oregon/PGE_Sch85_TEMPLATE_placeholder_demand",
    timezone: str = "America/Los_Angeles",
    *,
    resolution_min: int = 15,
    usable_kwh: float | None = None,
    max_ac_kw: float | None = None,
    building_load: bool = True,
    name: str | None = None,
) -> Path:
    """Write a synthetic fleet scenario and return the path of its ``scenario.yaml``.

    Parameters
    ----------
    kind : {"delivery-vans", "school-buses", "transit-buses"}
        Fleet archetype (see the module docstring for the numbers and their sources).
    vehicles : int
        Number of vehicles (one home port each).
    days : int
        Length of the horizon [days], starting at local midnight of ``start``.
    seed : int
        Seed of the numpy ``Generator``; same seed and arguments, same files.
    out_dir : Path
        Folder to write ``scenario.yaml``, ``sessions.csv`` and ``building.csv`` into (created;
        existing files of those names are replaced, each atomically).
    start : str
        First day, a local date ``YYYY-MM-DD``.
    tariff : str
        Bundled tariff name or path to a tariff JSON (an existing file is copied next to the
        YAML as ``tariff.json`` so the folder is self-contained).
    timezone : str
        IANA site timezone.
    resolution_min : int
        Step length of the scenario and of the building load [min].
    usable_kwh, max_ac_kw : float, optional
        Override the battery [kWh] / on-board AC limit [kW] of every vehicle type (the fleet
        then has one type, named after the archetype and capacity).
    building_load : bool
        Also write a building load and reference it from the YAML.
    name : str, optional
        Scenario name (default ``<kind>-<vehicles>``).

    Raises
    ------
    InputError
        A bad argument, before anything is written. Arguments that are options of
        ``fleetcharge generate`` are named as such (``--vehicles``, ``--start``, ``--tariff``).
    """
    _check_arguments(kind, vehicles, days, resolution_min, usable_kwh, max_ac_kw, timezone)
    day0 = _start_day(start)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a folder; choose another output path",
                         file=str(out_dir), location="--out")
    _check_tariff(tariff)

    types, ports = FLEETS[kind]
    if usable_kwh is not None or max_ac_kw is not None:
        t0 = types[0]
        label = f"{kind.split('-')[-1].rstrip('s')}-{(usable_kwh or t0.usable_kwh):g}kwh"
        types = (_Type(label, usable_kwh or t0.usable_kwh,
                       max_ac_kw if max_ac_kw is not None else t0.max_ac_kw, t0.max_dc_kw,
                       t0.charge_efficiency, t0.bidirectional, t0.chemistry, t0.kwh_per_mile,
                       1.0, t0.bidirectional_modes),)
    rng = np.random.default_rng(seed)
    n = int(vehicles)
    width = max(2, len(str(n)))
    num = [f"{{:0{width}d}}".format(i + 1) for i in range(n)]
    type_of = _blocks(n, [t.share for t in types])
    port_of = _blocks(n, [p.share for p in ports])
    ids = [f"V{x}" for x in num]
    usable = np.array([types[k].usable_kwh for k in type_of])
    eta = np.array([types[k].charge_efficiency for k in type_of])
    kwh_mi = np.array([types[k].kwh_per_mile for k in type_of])
    cap = np.array([
        min(ports[p].max_kw, types[t].max_dc_kw if ports[p].current_type == "DC"
            else types[t].max_ac_kw)
        for t, p in zip(type_of, port_of)
    ])
    if (cap <= 0).any():  # pragma: no cover - the archetypes are consistent
        raise AssertionError("a vehicle type cannot charge on its port")

    tz = timezone
    start_ts = pd.Timestamp(day0).tz_localize(tz).as_unit("ns")
    end_ts = pd.Timestamp(day0 + dt.timedelta(days=int(days))).tz_localize(tz).as_unit("ns")
    # simulate a week past the horizon so each vehicle's last session has a real departure
    day_index = pd.date_range(pd.Timestamp(day0), periods=int(days) + LOOK_AHEAD_DAYS,
                              freq="D").tz_localize(tz)
    weekday = day_index.day_of_week.to_numpy()
    dep, ret, kwh = _trips(kind, rng, usable, kwh_mi, weekday)
    sessions = _sessions(ids, cap, eta, day_index, dep, ret, kwh, start_ts, end_ts, tz)

    files: dict[str, str] = {"sessions.csv": sessions.to_csv(index=False, lineterminator="\n")}
    port_kw_total = sum(ports[p].max_kw for p in port_of)
    building_peak = 0.0
    if building_load:
        index = pd.date_range(start_ts.tz_convert("UTC"), end_ts.tz_convert("UTC"),
                              freq=f"{resolution_min}min", inclusive="left").tz_convert(tz)
        kw = _building(rng, n, index)
        building_peak = float(kw.max())
        files["building.csv"] = pd.DataFrame(
            {"timestamp": index.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(
                r"(\d\d)(\d\d)$", r"\1:\2", regex=True), "kw": kw}
        ).to_csv(index=False, lineterminator="\n")
    service_kw = math.ceil((SERVICE_SHARE * port_kw_total + building_peak) / 50.0) * 50.0

    tariff_ref = str(tariff)
    if Path(tariff).is_file():
        files["tariff.json"] = Path(tariff).read_text(encoding="utf-8")
        tariff_ref = "tariff.json"

    chargers, vehicles_yaml = [], []
    for p, port in enumerate(ports):
        members = np.flatnonzero(port_of == p)
        if members.size == 0:
            continue
        chargers.append({
            "id_template": f"{port.prefix}-{{:0{width}d}}", "start": int(members[0]) + 1,
            "count": int(members.size), "max_kw": port.max_kw, "min_kw": port.min_kw,
            "current_type": port.current_type, "bidirectional": port.bidirectional,
        })
    # one vehicle group per contiguous run of (type, port)
    key = type_of * len(ports) + port_of
    cuts = np.flatnonzero(np.diff(key)) + 1
    for block in np.split(np.arange(n), cuts):
        t, p = types[type_of[block[0]]], ports[port_of[block[0]]]
        vehicles_yaml.append({
            "id_template": f"V{{:0{width}d}}", "start": int(block[0]) + 1,
            "count": int(block.size), "type": t.name,
            "home_charger_template": f"{p.prefix}-{{:0{width}d}}",
        })
    used_types = sorted(set(type_of))
    v2g = kind == "school-buses"
    bidi_dc_kw = sum(ports[p].max_kw for p in port_of
                     if ports[p].bidirectional and ports[p].current_type == "DC")
    export_kw = round(EXPORT_SHARE * bidi_dc_kw, 1)
    site = {"timezone": tz, "service_limit_kw": service_kw,
            **({"building_load_csv": "building.csv"} if building_load else {})}
    if v2g and export_kw > 0:
        site["interconnection"] = {"status": "approved", "export_limit_kw": export_kw,
                                   "anti_islanding": True}
    doc = {
        "name": name or f"{kind}-{n}",
        "description": (
            f"Synthetic {kind} depot: {n} vehicles, {days} days from {day0}, seed {seed} "
            "(fleetcharge.generate)."
        ),
        "site": site,
        "tariff": tariff_ref,
        "billing": {"start": day0, "end": day0 + dt.timedelta(days=int(days)), "cycle_day": 1},
        "resolution_min": resolution_min,
        "defaults": {"target_soc": TARGET_SOC, "min_soc": MIN_SOC},
        "chargers": chargers,
        "vehicle_types": [
            {"name": types[k].name, "usable_kwh": types[k].usable_kwh,
             "max_ac_kw": types[k].max_ac_kw, "max_dc_kw": types[k].max_dc_kw,
             "charge_efficiency": types[k].charge_efficiency,
             "bidirectional": types[k].bidirectional,
             **({"bidirectional_modes": list(types[k].bidirectional_modes)}
                if types[k].bidirectional_modes else {}),
             "chemistry": types[k].chemistry, "kwh_per_mile": types[k].kwh_per_mile}
            for k in used_types
        ],
        "vehicles": vehicles_yaml,
        "sessions_csv": "sessions.csv",
    }
    if v2g:
        doc["v2g"] = {"programs": [ELRP_LIKE.name],
                      "premium_per_port_usd": BIDIRECTIONAL_PREMIUM_USD}
    header = (
        f"# Generated by fleetcharge.generate.generate_scenario({kind!r}, vehicles={n}, "
        f"days={days}, seed={seed}).\n"
        f"# Service limit = {SERVICE_SHARE:.0%} of the port ratings ({port_kw_total:g} kW) + "
        f"building peak ({building_peak:g} kW), rounded up to 50 kW.\n"
    )
    if "interconnection" in site:
        header += (f"# Export limit = {EXPORT_SHARE:.0%} of the bidirectional DC port ratings "
                   f"({bidi_dc_kw:g} kW).\n")
    files["scenario.yaml"] = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True,
                                                     width=100)
    _write_atomic(out_dir, files)
    return out_dir / "scenario.yaml"
