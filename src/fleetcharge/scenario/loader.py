"""Load a scenario: YAML (+ sessions or trips CSV, building load CSV, tariff) → ``Scenario``."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fleetcharge.domain import (
    Charger,
    Disruptions,
    Interconnection,
    Scenario,
    Site,
    V2GSettings,
    Vehicle,
    VehicleType,
)
from fleetcharge.errors import ConsistencyError, InputError
from fleetcharge.loadcsv import read_load_csv
from fleetcharge.scenario.schema import (
    Loc,
    ScenarioModel,
    V2GModel,
    VehicleTypeModel,
    check_timezone,
    describe_loc,
    expand_chargers,
    expand_vehicles,
    parse_scenario_model,
    yaml_key_lines,
)
from fleetcharge.scenario.sessions import (
    SESSION_COLUMNS_OPTIONAL,
    SESSION_COLUMNS_REQUIRED,
    TRIP_COLUMNS_OPTIONAL,
    TRIP_COLUMNS_REQUIRED,
    Fleet,
    build_sessions,
    draft_from_sessions_csv,
    draft_from_trips_csv,
)
from fleetcharge.scenario.tables import (
    column_or_empty,
    parse_numbers,
    read_price_csv,
    read_table,
    reindex_load,
    require_ids,
)
from fleetcharge.timegrid import ALLOWED_RESOLUTIONS_MIN, Horizon, to_aware

#: Quick path: the inferred battery holds this multiple of a vehicle's largest session energy.
QUICK_CAPACITY_FACTOR = 1.25


def _timestamp(value: Any, timezone: str, file: str | None, location: str) -> pd.Timestamp:
    """A horizon bound: a date (local midnight), naive datetime (local) or one with an offset."""
    if isinstance(value, pd.Timestamp):
        text = value.isoformat()
    elif isinstance(value, (dt.datetime, dt.date)):
        text = value.isoformat()
    else:
        text = str(value).strip()
    try:
        t = to_aware([text], timezone)[0]
    except (ValueError, TypeError, OverflowError):
        t = pd.NaT
    if pd.isna(t):
        raise InputError(
            f"cannot read {value!r} as a date or timestamp; write 2025-03-01 or "
            "2025-03-01T00:00:00-08:00", file=file, location=location,
        )
    return t.as_unit("ns")


#: Where the horizon's inputs come from: YAML fields, or the options of ``fleetcharge plan``.
_YAML_NAMES = {"start": "billing.start", "end": "billing.end", "resolution": "resolution_min"}
_CLI_NAMES = {"start": "--start", "end": "--end", "resolution": "--resolution"}


def _horizon(start: Any, end: Any, resolution_min: int, timezone: str, file: str | None,
             names: dict[str, str]) -> Horizon:
    res = names["resolution"]
    if resolution_min not in ALLOWED_RESOLUTIONS_MIN:
        raise InputError(
            f"{res} {resolution_min} is not supported; use one of "
            f"{ALLOWED_RESOLUTIONS_MIN}", file=file, location=res,
        )
    t0 = _timestamp(start, timezone, file, names["start"])
    t1 = _timestamp(end, timezone, file, names["end"])
    if t1 <= t0:
        raise InputError(f"end {t1} is not after start {t0}; the end is exclusive "
                         "(2025-03-01 to 2025-04-01 is March)", file=file, location=names["end"])
    try:
        return Horizon(t0, t1, resolution_min, timezone)
    except ValueError as exc:
        raise InputError(f"{exc}; start and end must fall on the {resolution_min}-minute grid",
                         file=file, location=names["start"]) from None


def _load_tariff(ref: Any, base_dir: Path | None, file: str | None, location: str) -> Any:
    """Load ``ref``; a name that resolves to nothing is reported at ``file``/``location`` (the
    YAML's ``tariff`` field, or ``--tariff``) with the library's message (close matches, how
    to list the bundled tariffs). Errors inside a tariff file keep naming that file."""
    if not isinstance(ref, (str, Path)):
        return ref  # already a Tariff
    from fleetcharge.tariff.library import load_tariff  # lazy: another module of the package

    try:
        return load_tariff(str(ref), base_dir)
    except InputError as exc:
        if exc.file is not None:
            raise  # a problem inside the tariff file, which it already names
        raise type(exc)(exc.detail, file=file, location=location) from None
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot load tariff {str(ref)!r}: {exc}", file=file,
                         location=location) from None


def _building(path: Path | None, horizon: Horizon, timezone: str,
              option: str | None = None) -> pd.Series | None:
    if path is None:
        return None
    if option is not None and not path.is_file():
        raise InputError("building load CSV not found; check the path", file=str(path),
                         location=option)
    load = read_load_csv(path, timezone)
    return reindex_load(load, horizon, str(path))


def _finish_metadata(meta: dict, extra_warnings: list[str], **more: Any) -> dict:
    meta["warnings"] = extra_warnings + meta.get("warnings", [])
    meta.update(more)
    return meta


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario YAML and the files it names into a validated :class:`Scenario`.

    Parameters
    ----------
    path : str or Path
        The scenario YAML. Relative paths inside it (CSVs, a tariff JSON) are relative to the
        YAML's folder.

    Returns
    -------
    Scenario
        Frozen domain objects on the horizon ``[billing.start, billing.end)``. ``metadata``
        holds ``source``, ``input`` (``"sessions"``/``"trips"``), ``warnings``,
        ``clipped_sessions``, ``dropped_sessions``, ``kwh_per_mile`` by vehicle type and
        ``dr_programs`` (the ``dr: programs:`` by name, :class:`fleetcharge.dr.programs.DRProgram`).
        ``site.interconnection`` and ``v2g`` hold the V2G settings (their defaults when the YAML
        has none: no agreement, no programs).

    Raises
    ------
    InputError
        Anything wrong in one file, naming the file and the row or YAML field and the fix.
    ConsistencyError
        Inputs that contradict each other (unknown or duplicate ids, overlapping sessions).
    """
    path = Path(path)
    file = str(path)
    if path.is_dir():
        raise InputError(_folder_hint(path), file=file)
    if not path.is_file():
        raise InputError("scenario file not found; check the path", file=file)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML: {problem}", file=file, location=where) from None
    except UnicodeDecodeError:
        raise InputError("the scenario file is not UTF-8 text", file=file) from None
    model = parse_scenario_model(data, file, text)
    base = path.parent
    return _scenario_from_model(model, base, file, text)


def _folder_hint(folder: Path) -> str:
    """What to say when a folder is given where the scenario YAML is expected."""
    try:
        found = sorted(p for p in folder.iterdir()
                       if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    except OSError:
        found = []
    if len(found) == 1:
        return f"is a folder, not a scenario file; did you mean {found[0]}?"
    if found:
        names = ", ".join(p.name for p in found)
        return f"is a folder, not a scenario file; give one of its YAML files ({names})"
    return "is a folder with no .yaml file in it; give the path of the scenario YAML"


def _vehicle_type(t: VehicleTypeModel) -> VehicleType:
    """The domain type; V2G fields not given in the YAML keep the domain's defaults."""
    v2g = {k: getattr(t, k) for k in ("bidirectional_modes", "max_discharge_kw",
                                       "discharge_efficiency") if getattr(t, k) is not None}
    return VehicleType(name=t.name, usable_kwh=t.usable_kwh, max_ac_kw=t.max_ac_kw,
                       max_dc_kw=t.max_dc_kw, charge_efficiency=t.charge_efficiency,
                       bidirectional=t.bidirectional, chemistry=t.chemistry,
                       j3072_certified=t.j3072_certified, **v2g)


def _v2g_warnings(model: ScenarioModel, file: str,
                  where: Callable[[Loc], str]) -> list[str]:
    """Settings that load but probably do not mean what was intended."""
    out = []
    ic = model.site.interconnection
    if ic is not None and ic.status == "approved" and ic.export_limit_kw == 0:
        out.append(f"{file}: {where(('site', 'interconnection'))}: approved with export limit "
                   "0 kW: behind-the-meter only (discharge can lower the site's import but not "
                   "export; set export_limit_kw to the agreement's limit to export)")
    for i, t in enumerate(model.vehicle_types):
        ignored = [k for k in ("bidirectional_modes", "max_discharge_kw", "discharge_efficiency")
                   if getattr(t, k) is not None]
        if ignored and not t.bidirectional:
            out.append(f"{file}: {where(('vehicle_types', i))}: {', '.join(ignored)} "
                       f"ignored because type {t.name!r} is not bidirectional (set "
                       "bidirectional: true to let it discharge)")
    return out


def _v2g_settings(v2g: V2GModel | None, base: Path, horizon: Horizon, tz: str, file: str,
                  where: Callable[[Loc], str]) -> V2GSettings:
    if v2g is None:
        return V2GSettings()
    given = {k: getattr(v2g, k) for k in ("degradation_per_kwh", "premium_per_port_usd",
                                          "discount_rate", "years", "readiness_risk_threshold")
             if getattr(v2g, k) is not None}
    prices = None
    if v2g.export_price_csv is not None:
        csv_path = base / v2g.export_price_csv
        if not csv_path.is_file():
            raise InputError(
                f"export price CSV {v2g.export_price_csv!r} not found (looked for {csv_path}); "
                "check the path, which is relative to the scenario file's folder",
                file=file, location=where(("v2g", "export_price_csv")),
            )
        prices = reindex_load(read_price_csv(csv_path, tz), horizon, str(csv_path),
                              what="export price series", name="export_price_per_kwh")
    if v2g.disruptions is not None:
        given["disruptions"] = Disruptions(**v2g.disruptions.model_dump())
    return V2GSettings(export_price_per_kwh=prices,
                       programs=tuple(p.to_program() for p in v2g.programs), **given)


def _scenario_from_model(model: ScenarioModel, base: Path, file: str,
                         text: str | None = None) -> Scenario:
    lines: dict[Loc, int] | None = None

    def where(loc: Loc) -> str:
        """The YAML path of ``loc`` with its line (the text is only parsed again if needed)."""
        nonlocal lines
        if lines is None:
            lines = yaml_key_lines(text) if text is not None else {}
        return describe_loc(loc, lines)

    tz = model.site.timezone
    horizon = _horizon(model.billing.start, model.billing.end, model.resolution_min, tz, file,
                       _YAML_NAMES)
    exp_chargers = expand_chargers(model, file)
    chargers = tuple(
        Charger(id=e.id, max_kw=e.model.max_kw, min_kw=e.model.min_kw,
                current_type=e.model.current_type, phases=e.model.phases,
                voltage_v=e.model.voltage_v, bidirectional=e.model.bidirectional,
                j3072_certified=e.model.j3072_certified)
        for e in exp_chargers
    )
    types = {t.name: _vehicle_type(t) for t in model.vehicle_types}
    exp_vehicles = expand_vehicles(model, file, {c.id for c in chargers})
    by_id = {c.id: c for c in chargers}
    vehicles = []
    for e in exp_vehicles:
        vt = types[e.type]
        if e.home_charger is not None and vt.max_kw_on(by_id[e.home_charger]) <= 0:
            c = by_id[e.home_charger]
            raise ConsistencyError(
                f"vehicle {e.id!r} of type {vt.name!r} cannot charge on its home charger "
                f"{c.id!r} ({c.current_type}, and the type's max_{c.current_type.lower()}_kw is "
                "0); pick a compatible home charger or fix the type",
                file=file, location=e.path.split(" ")[0] + ".home_charger",
            )
        vehicles.append(Vehicle(id=e.id, type=vt, home_charger_id=e.home_charger,
                                target_soc=e.target_soc, min_soc=e.min_soc))
    kwh_per_mile = {t.name: t.kwh_per_mile for t in model.vehicle_types
                    if t.kwh_per_mile is not None}
    fleet = Fleet(tuple(vehicles), chargers, kwh_per_mile)

    warnings: list[str] = []
    if model.sessions_csv is not None:
        csv_path = base / model.sessions_csv
        df = read_table(csv_path, required=SESSION_COLUMNS_REQUIRED,
                        optional=SESSION_COLUMNS_OPTIONAL, what="sessions")
        draft = draft_from_sessions_csv(df, fleet, tz, str(csv_path))
        kind = "sessions"
    else:
        csv_path = base / str(model.trips_csv)
        df = read_table(csv_path, required=TRIP_COLUMNS_REQUIRED,
                        optional=TRIP_COLUMNS_OPTIONAL, what="trips")
        draft, warnings = draft_from_trips_csv(df, fleet, horizon, str(csv_path))
        kind = "trips"
    sessions, meta = build_sessions(draft, fleet, horizon, str(csv_path))

    building_path = base / model.site.building_load_csv if model.site.building_load_csv else None
    building = _building(building_path, horizon, tz)
    v2g = _v2g_settings(model.v2g, base, horizon, tz, file, where)
    tariff = _load_tariff(model.tariff, base, file, "tariff")
    meta = _finish_metadata(
        meta, _v2g_warnings(model, file, where) + warnings, source=file, input=kind,
        kwh_per_mile=kwh_per_mile, description=model.description,
        dr_programs=model.dr.by_name() if model.dr is not None else {},
    )
    ic = model.site.interconnection
    interconnection = Interconnection() if ic is None else Interconnection(
        status=ic.status, export_limit_kw=ic.export_limit_kw, anti_islanding=ic.anti_islanding)
    return Scenario(
        name=model.name,
        site=Site(timezone=tz, service_limit_kw=model.site.service_limit_kw,
                  building_load_kw=building, interconnection=interconnection),
        chargers=chargers,
        vehicle_types=tuple(types.values()),
        vehicles=tuple(vehicles),
        sessions=sessions,
        tariff=tariff,
        horizon=horizon,
        billing_cycle_day=model.billing.cycle_day,
        metadata=meta,
        v2g=v2g,
    )


def scenario_from_sessions(
    sessions_csv: str | Path,
    tariff_ref: Any,
    site_limit_kw: float,
    start: Any,
    end: Any,
    timezone: str = "UTC",
    resolution_min: int = 15,
    building_load_csv: str | Path | None = None,
    default_max_kw: float = 19.2,
) -> Scenario:
    """Build a scenario from a sessions CSV alone (no YAML, so the fleet is inferred).

    The CSV needs ``vehicle_id, arrival, departure, energy_kwh`` and may have ``max_kw``,
    ``charger_id`` and ``session_id``. What is not declared is inferred:

    - one generic vehicle type per vehicle (``generic-<vehicle_id>``) with efficiency 1.0, so
      SOC is energy-based, target SOC 1.0 and min SOC 0; its usable capacity is
      ``ceil(max(1, 1.25 × the vehicle's largest session energy))`` kWh, so the largest session
      arrives at 20 % SOC; its AC and DC limits are its largest session ``max_kw``;
    - chargers from ``charger_id`` (AC, ``max_kw`` = largest session cap on it); rows without a
      ``charger_id`` use one port per vehicle, ``EVSE-<vehicle_id>``;
    - a session's cap is its ``max_kw`` cell, else ``default_max_kw``.

    Parameters
    ----------
    sessions_csv : str or Path
        The sessions CSV.
    tariff_ref : str, Path or Tariff
        Bundled tariff name or JSON path (relative to the working directory), or a ``Tariff``.
    site_limit_kw : float
        Service (import) limit of the site [kW].
    start, end : str, date, datetime or Timestamp
        Horizon ``[start, end)``; naive values are local time in ``timezone``.
    timezone : str
        IANA site timezone.
    resolution_min : int
        Step length [min]: 5, 15, 30 or 60.
    building_load_csv : str or Path, optional
        ``timestamp,kw`` CSV of other site load.
    default_max_kw : float
        Charging power cap for rows without ``max_kw`` [kW].

    Raises
    ------
    InputError
        Errors in an argument name the ``fleetcharge plan`` option it comes from (``--start``,
        ``--tariff``, ``--site-limit-kw`` ...), since the CLI is this function's main caller;
        errors in a CSV name the file, row and column.
    """
    path = Path(sessions_csv)
    file = str(path)
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise InputError(str(exc), location="--timezone") from None
    for option, value, what, example in (
            ("--site-limit-kw", site_limit_kw, "site limit", 150),
            ("--default-max-kw", default_max_kw, "default charger power", 19.2)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value > 0):
            raise InputError(f"{what} {value!r} must be a positive number of kW, e.g. "
                             f"{option} {example}", location=option)
    horizon = _horizon(start, end, resolution_min, timezone, None, _CLI_NAMES)
    tariff = _load_tariff(tariff_ref, None, None, "--tariff")  # every option before the CSVs
    df = read_table(path, required=(*SESSION_COLUMNS_REQUIRED, "energy_kwh"),
                    optional=("max_kw", "charger_id", "session_id"), what="sessions")
    if len(df) == 0:
        raise InputError("the sessions CSV has a header but no sessions", file=file)
    ids = require_ids(df["vehicle_id"], "vehicle_id", file)
    energy = parse_numbers(df["energy_kwh"], "energy_kwh", file, required=True)
    cap = parse_numbers(column_or_empty(df, "max_kw"), "max_kw", file)
    for col, values, bad in (("energy_kwh", energy, energy < 0), ("max_kw", cap, cap <= 0)):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            bound = "≥ 0" if col == "energy_kwh" else "> 0"
            raise InputError(f"{col} {values[i]:g} must be {bound}; fix the value", file=file,
                             location=f"row {i + 2}, column {col}")
    cap = np.where(np.isfinite(cap), cap, float(default_max_kw))
    charger_col = column_or_empty(df, "charger_id").to_numpy(dtype=object).astype(str)
    charger_col = np.where(charger_col == "", np.char.add("EVSE-", ids.astype(str)), charger_col)

    frame = pd.DataFrame({"v": ids, "e": energy, "cap": cap, "c": charger_col})
    per_vehicle = frame.groupby("v", sort=False).agg(e=("e", "max"), cap=("cap", "max"))
    per_charger = frame.groupby("c", sort=False)["cap"].max()
    vehicles = []
    types = []
    for vid, row in per_vehicle.iterrows():
        usable = float(math.ceil(max(1.0, QUICK_CAPACITY_FACTOR * row.e)))
        vt = VehicleType(name=f"generic-{vid}", usable_kwh=usable, max_ac_kw=float(row.cap),
                         max_dc_kw=float(row.cap), charge_efficiency=1.0)
        types.append(vt)
        own = f"EVSE-{vid}"
        vehicles.append(Vehicle(id=str(vid), type=vt,
                                home_charger_id=own if own in per_charger.index else None,
                                target_soc=1.0, min_soc=0.0))
    chargers = tuple(Charger(id=str(cid), max_kw=float(kw)) for cid, kw in per_charger.items())
    fleet = Fleet(tuple(vehicles), chargers)
    draft = draft_from_sessions_csv(df.assign(charger_id=charger_col), fleet, timezone, file)
    draft.max_kw = cap  # rows without max_kw get default_max_kw
    sessions, meta = build_sessions(draft, fleet, horizon, file)
    building = _building(Path(building_load_csv) if building_load_csv else None, horizon,
                         timezone, "--building-load")
    meta = _finish_metadata(meta, [], source=file, input="sessions", kwh_per_mile={},
                            description="built from a sessions CSV (fleet inferred)")
    return Scenario(
        name=path.stem,
        site=Site(timezone=timezone, service_limit_kw=float(site_limit_kw),
                  building_load_kw=building),
        chargers=chargers,
        vehicle_types=tuple(types),
        vehicles=tuple(vehicles),
        sessions=sessions,
        tariff=tariff,
        horizon=horizon,
        billing_cycle_day=1,
        metadata=meta,
    )
