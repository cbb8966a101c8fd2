"""The scenario YAML as pydantic models: typos and bad values are caught here, field by field.

Every model forbids unknown keys (``extra="forbid"``), so ``max_kW`` or ``usable_kWh`` is an error
rather than a silently ignored key. :func:`parse_scenario_file` collects *all* problems of a file
into one :class:`~fleetcharge.errors.InputError` whose lines read ``chargers[1].max_kw: ...``.

The compact ``id_template`` + ``count`` forms expand here too, so the loader only ever sees one
entry per charger and per vehicle, each with the YAML path it came from.
"""

from __future__ import annotations

import datetime as dt
import difflib
import inspect
import math
import typing
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from fleetcharge.dr.programs import PRESETS as DR_PRESETS
from fleetcharge.dr.programs import DRProgram
from fleetcharge.errors import ConsistencyError, InputError
from fleetcharge.timegrid import ALLOWED_RESOLUTIONS_MIN
from fleetcharge.v2g.programs import ELRP_LIKE, Program

DateLike = dt.datetime | dt.date | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA timezone, else raise ``ValueError`` saying so."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name such as 'America/Los_Angeles' or 'UTC'"
        ) from None
    return name


def _close(value: Any, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'X'?)`` for a near miss of one of ``choices``, else ``""``."""
    by_lower = {c.lower(): c for c in choices}
    text = str(value).strip().lower()
    if text in by_lower:
        return f" (did you mean {by_lower[text]!r}?)"
    close = difflib.get_close_matches(text, list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


INTERCONNECTION_STATUSES: tuple[str, ...] = ("none", "applied", "approved")


class InterconnectionModel(_Strict):
    """``site.interconnection:`` — the agreement to run V2G in parallel with the grid."""

    status: Literal["none", "applied", "approved"] = "none"
    export_limit_kw: float = 0.0
    anti_islanding: bool = False

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> Any:
        if v not in INTERCONNECTION_STATUSES:
            hint = _close(v, INTERCONNECTION_STATUSES)
            raise ValueError(
                f"status {v!r} is not one of none, applied, approved{hint}"
                "; none = no agreement, applied = applied for, approved = signed (export up to "
                "export_limit_kw)"
            )
        return v

    @field_validator("export_limit_kw")
    @classmethod
    def _limit(cls, v: float) -> float:
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(
                f"export_limit_kw {v!r} must be ≥ 0 kW (the most the site may send to the grid); "
                "use 0 for no export (behind the meter only)"
            )
        return v


class SiteModel(_Strict):
    """``site:`` — the depot's grid connection."""

    timezone: str = "UTC"
    service_limit_kw: float = Field(gt=0)
    building_load_csv: str | None = None
    interconnection: InterconnectionModel | None = None

    _tz = field_validator("timezone")(check_timezone)


class BillingModel(_Strict):
    """``billing:`` — the horizon ``[start, end)`` and the meter-read day."""

    start: DateLike
    end: DateLike
    cycle_day: int = Field(default=1, ge=1, le=31)


class DefaultsModel(_Strict):
    """``defaults:`` — fleet-wide SOC targets, overridable per vehicle."""

    target_soc: float = Field(default=0.9, gt=0, le=1)
    min_soc: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _order(self) -> DefaultsModel:
        if self.min_soc >= self.target_soc:
            raise ValueError(
                f"min_soc {self.min_soc} must be below target_soc {self.target_soc}"
            )
        return self


def _check_template(template: str | None) -> str | None:
    if template is None:
        return None
    try:
        a, b = template.format(1), template.format(2)
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(
            f"template {template!r} cannot be formatted with a number ({exc}); "
            "write it like 'L2-{:02d}'"
        ) from None
    if a == b:
        raise ValueError(
            f"template {template!r} has no number field, so every id would be the same; "
            "write it like 'V{:03d}'"
        )
    return template


class _Repeatable(_Strict):
    """Either ``id`` (one item) or ``id_template`` + ``count`` (+ ``start``, default 1)."""

    id: str | None = Field(default=None, min_length=1)
    id_template: str | None = None
    count: int | None = Field(default=None, ge=1)
    start: int = Field(default=1, ge=0)

    _tmpl = field_validator("id_template")(_check_template)

    @model_validator(mode="after")
    def _one_form(self) -> Any:
        if (self.id is None) == (self.id_template is None):
            raise ValueError("give exactly one of 'id' or 'id_template' (with 'count')")
        if self.id_template is not None and self.count is None:
            raise ValueError("'id_template' needs 'count' (how many to create)")
        if self.id is not None and (self.count is not None or self.start != 1):
            raise ValueError("'count' and 'start' only go with 'id_template', not with 'id'")
        return self

    def numbers(self) -> list[int | None]:
        """The numbers the template is formatted with (``[None]`` for a single item)."""
        if self.id is not None:
            return [None]
        return list(range(self.start, self.start + (self.count or 0)))

    def make_id(self, number: int | None) -> str:
        return self.id if number is None else self.id_template.format(number)  # type: ignore


class ChargerModel(_Repeatable):
    """``chargers[i]`` — one port, or ``count`` identical ports."""

    max_kw: float = Field(gt=0)
    min_kw: float = Field(default=0.0, ge=0)
    current_type: Literal["AC", "DC"] = "AC"
    phases: Literal[1, 3] = 1
    voltage_v: float = Field(default=240.0, gt=0)
    bidirectional: bool = False
    j3072_certified: bool = False

    @model_validator(mode="after")
    def _floor(self) -> ChargerModel:
        if self.min_kw > self.max_kw:
            raise ValueError(f"min_kw {self.min_kw} is above max_kw {self.max_kw}")
        return self


class VehicleTypeModel(_Strict):
    """``vehicle_types[i]`` — a vehicle model. ``kwh_per_mile`` is only used by trips CSVs."""

    name: str = Field(min_length=1)
    usable_kwh: float = Field(gt=0)
    max_ac_kw: float = Field(ge=0)
    max_dc_kw: float = Field(default=0.0, ge=0)
    charge_efficiency: float = Field(default=0.92, gt=0, le=1)
    bidirectional: bool = False
    chemistry: str = "NMC"
    kwh_per_mile: float | None = Field(default=None, gt=0)
    # V2G; None means "not given": the domain default applies (VehicleType)
    bidirectional_modes: tuple[Literal["AC", "DC"], ...] | None = None
    j3072_certified: bool = False
    max_discharge_kw: float | None = None
    discharge_efficiency: float | None = None

    @model_validator(mode="after")
    def _can_charge(self) -> VehicleTypeModel:
        if self.max_ac_kw == 0 and self.max_dc_kw == 0:
            raise ValueError("max_ac_kw and max_dc_kw are both 0: the vehicle cannot charge")
        return self

    @field_validator("bidirectional_modes", mode="before")
    @classmethod
    def _modes(cls, v: Any) -> Any:
        if v is None:
            return v
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"bidirectional_modes {v!r} must be a list: [AC], [DC] or [AC, DC]")
        if not items:
            raise ValueError("bidirectional_modes is empty; list where the vehicle can discharge "
                             "([AC], [DC] or [AC, DC]) or set bidirectional: false")
        for m in items:
            if m not in ("AC", "DC"):
                raise ValueError(f"bidirectional mode {m!r} is not AC or DC"
                                 f"{_close(m, ('AC', 'DC'))}; write [AC], [DC] or [AC, DC]")
        if len(set(items)) < len(items):
            raise ValueError(f"bidirectional_modes {list(items)} lists a mode twice; "
                             "list each once")
        return tuple(items)

    @field_validator("max_discharge_kw")
    @classmethod
    def _discharge_kw(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(
                f"max_discharge_kw {v!r} must be > 0 kW; delete it to use the charging limit on "
                "each port, or set bidirectional: false for a vehicle that cannot discharge"
            )
        return v

    @field_validator("discharge_efficiency")
    @classmethod
    def _discharge_eff(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0 < v <= 1):
            raise ValueError(
                f"discharge_efficiency {v!r} must be in (0, 1]: the fraction of the energy "
                "leaving the battery that reaches the grid, e.g. 0.92 for 92 %"
            )
        return v


class VehicleModel(_Repeatable):
    """``vehicles[i]`` — one vehicle, or ``count`` vehicles of one type.

    ``home_charger_template`` is formatted with the same number as ``id_template``.
    """

    type: str
    home_charger: str | None = None
    home_charger_template: str | None = None
    target_soc: float | None = Field(default=None, gt=0, le=1)
    min_soc: float | None = Field(default=None, ge=0, lt=1)

    _home_tmpl = field_validator("home_charger_template")(_check_template)

    @model_validator(mode="after")
    def _home(self) -> VehicleModel:
        if self.home_charger is not None and self.home_charger_template is not None:
            raise ValueError("give 'home_charger' or 'home_charger_template', not both")
        if self.home_charger_template is not None and self.id_template is None:
            raise ValueError("'home_charger_template' goes with 'id_template'; use 'home_charger'")
        return self

    def make_home(self, number: int | None) -> str | None:
        if self.home_charger_template is not None:
            return self.home_charger_template.format(number)
        return self.home_charger


#: Programs a scenario may name instead of defining them (``v2g.programs: [<name>]``).
PROGRAM_PRESETS: dict[str, Program] = {p.name: p for p in (ELRP_LIKE,)}


class _ProgramBase(_Strict):
    """A program definition; the fields are :class:`~fleetcharge.v2g.programs.Program`'s."""

    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)
    _program: Program = PrivateAttr()

    @model_validator(mode="after")
    def _build(self) -> Any:
        try:
            program = Program(**{f: getattr(self, f) for f in type(self).model_fields})
        except (ValueError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        self._program = program
        return self

    def to_program(self) -> Program:
        """The validated :class:`Program`."""
        return self._program


def _program_model() -> type[_ProgramBase]:
    """A pydantic model with the fields of ``Program.__init__`` (kept in step with it)."""
    hints = typing.get_type_hints(Program)
    fields: dict[str, Any] = {}
    for p in inspect.signature(Program).parameters.values():
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints.get(p.name, Any), default)
    return create_model("ProgramModel", __base__=_ProgramBase, **fields)


ProgramModel = _program_model()


def _program_required() -> list[str]:
    return [n for n, f in ProgramModel.model_fields.items() if f.is_required()]


def _program_entry(v: Any) -> Any:
    """A preset name becomes its :class:`Program`; a mapping is validated field by field."""
    if isinstance(v, str):
        if v not in PROGRAM_PRESETS:
            raise ValueError(
                f"unknown program preset {v!r}{_close(v, list(PROGRAM_PRESETS))}; presets are "
                f"{', '.join(PROGRAM_PRESETS)}, or define it in full as a mapping with "
                f"{', '.join(_program_required())}"
            )
        return PROGRAM_PRESETS[v]
    if not isinstance(v, dict):
        raise ValueError(
            f"a program is a preset name ({', '.join(PROGRAM_PRESETS)}) or a mapping with "
            f"{', '.join(_program_required())}"
        )
    return v


class DisruptionsModel(_Strict):
    """``v2g.disruptions:`` — what goes wrong, for the readiness-risk Monte Carlo."""

    p_late: float = Field(default=0.2, ge=0, le=1)
    late_mean_min: float = Field(default=45.0, ge=0)
    p_early: float = Field(default=0.1, ge=0, le=1)
    early_mean_min: float = Field(default=30.0, ge=0)
    route_sigma: float = Field(default=0.15, ge=0, le=2)


class V2GModel(_Strict):
    """``v2g:`` — what a V2G study needs beyond the fleet. ``None`` = the domain default."""

    degradation_per_kwh: float | None = None
    export_price_csv: str | None = Field(default=None, min_length=1)
    programs: list[  # type: ignore[valid-type]
        Annotated[ProgramModel, BeforeValidator(_program_entry)]] = []
    premium_per_port_usd: float | None = None
    discount_rate: float | None = None
    years: int | None = None
    readiness_risk_threshold: float | None = None
    disruptions: DisruptionsModel | None = None

    @field_validator("degradation_per_kwh")
    @classmethod
    def _degradation(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError(f"degradation_per_kwh {v!r} must be ≥ 0 $/kWh (battery wear per kWh "
                             "leaving the battery); delete it to use the chemistry's default")
        return v

    @field_validator("premium_per_port_usd")
    @classmethod
    def _premium(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError(f"premium_per_port_usd {v!r} must be ≥ 0 $ (the extra cost of a "
                             "bidirectional port over a V1G one)")
        return v

    @field_validator("discount_rate")
    @classmethod
    def _rate(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0 <= v < 1):
            raise ValueError(f"discount_rate {v!r} must be in [0, 1): a fraction per year, e.g. "
                             "0.07 for 7 %")
        return v

    @field_validator("years")
    @classmethod
    def _years(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"years {v!r} must be ≥ 1 (the study period in years)")
        return v

    @field_validator("readiness_risk_threshold")
    @classmethod
    def _risk(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0 <= v <= 1):
            raise ValueError(f"readiness_risk_threshold {v!r} must be in [0, 1]: a probability, "
                             "e.g. 0.05 for 5 %")
        return v

    @model_validator(mode="after")
    def _unique_programs(self) -> V2GModel:
        seen: dict[str, int] = {}
        for i, p in enumerate(self.programs):
            name = p.to_program().name
            if name in seen:
                raise ValueError(f"program {name!r} is listed twice (programs[{seen[name]}] and "
                                 f"programs[{i}]); list each program once")
            seen[name] = i
        return self


class _DRProgramBase(_Strict):
    """A DR program; the fields are :class:`~fleetcharge.dr.programs.DRProgram`'s."""

    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)
    _program: DRProgram = PrivateAttr()

    @model_validator(mode="after")
    def _build(self) -> Any:
        try:
            program = DRProgram(**{f: getattr(self, f) for f in type(self).model_fields})
        except (ValueError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        self._program = program
        return self

    def to_dr_program(self) -> DRProgram:
        """The validated :class:`DRProgram`."""
        return self._program


def _dr_program_model() -> type[_DRProgramBase]:
    """A pydantic model with the fields of ``DRProgram.__init__`` (kept in step with it)."""
    hints = typing.get_type_hints(DRProgram)
    fields: dict[str, Any] = {}
    for p in inspect.signature(DRProgram).parameters.values():
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints.get(p.name, Any), default)
    return create_model("DRProgramModel", __base__=_DRProgramBase, **fields)


DRProgramModel = _dr_program_model()


def _dr_program_entry(v: Any) -> Any:
    """A preset name → its program; ``{preset: name, <field>: …}`` → the preset with those
    fields changed; any other mapping is a full definition, validated field by field."""
    presets = ", ".join(DR_PRESETS)
    required = [n for n, f in DRProgramModel.model_fields.items() if f.is_required()]
    name = v if isinstance(v, str) else v.get("preset") if isinstance(v, dict) else None
    if name is not None and name not in DR_PRESETS:
        raise ValueError(f"unknown DR program preset {name!r}{_close(name, list(DR_PRESETS))}; "
                         f"presets are {presets}, or define it in full with "
                         f"{', '.join(required)}")
    if isinstance(v, str):
        return DR_PRESETS[v]
    if not isinstance(v, dict):
        raise ValueError(f"a DR program is a preset name ({presets}), a mapping "
                         "{preset: <name>, <field>: <value>} or a full definition with "
                         f"{', '.join(required)}")
    if name is not None:
        preset = DR_PRESETS[name]
        base = {f: getattr(preset, f) for f in DRProgramModel.model_fields}
        return {**base, **{k: x for k, x in v.items() if k != "preset"}}
    return v


class DRModel(_Strict):
    """``dr:`` — the demand-response programs the depot is enrolled in (events name them)."""

    programs: list[  # type: ignore[valid-type]
        Annotated[DRProgramModel, BeforeValidator(_dr_program_entry)]] = []

    @model_validator(mode="after")
    def _unique(self) -> DRModel:
        seen: dict[str, int] = {}
        for i, p in enumerate(self.programs):
            name = p.to_dr_program().name
            if name in seen:
                raise ValueError(f"DR program {name!r} is listed twice (programs[{seen[name]}] "
                                 f"and programs[{i}]); list each program once (give a changed "
                                 "preset its own `name:`)")
            seen[name] = i
        return self

    def by_name(self) -> dict[str, DRProgram]:
        """The programs by name."""
        return {p.to_dr_program().name: p.to_dr_program() for p in self.programs}


class ScenarioModel(_Strict):
    """The whole scenario YAML."""

    name: str = Field(min_length=1)
    description: str | None = None
    site: SiteModel
    tariff: str = Field(min_length=1)
    billing: BillingModel
    resolution_min: int = 15
    defaults: DefaultsModel = DefaultsModel()
    chargers: list[ChargerModel] = Field(min_length=1)
    vehicle_types: list[VehicleTypeModel] = Field(min_length=1)
    vehicles: list[VehicleModel] = Field(min_length=1)
    sessions_csv: str | None = None
    trips_csv: str | None = None
    v2g: V2GModel | None = None
    dr: DRModel | None = None

    @field_validator("resolution_min")
    @classmethod
    def _resolution(cls, v: int) -> int:
        if v not in ALLOWED_RESOLUTIONS_MIN:
            raise ValueError(
                f"resolution_min {v} is not supported; use one of {ALLOWED_RESOLUTIONS_MIN}"
            )
        return v

    @model_validator(mode="after")
    def _one_input(self) -> ScenarioModel:
        if (self.sessions_csv is None) == (self.trips_csv is None):
            both = "both" if self.sessions_csv is not None else "neither"
            raise ValueError(
                f"{both} of sessions_csv and trips_csv given; give exactly one "
                "(sessions_csv: plug-in sessions, trips_csv: trips to derive sessions from)"
            )
        return self


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


Loc = tuple[int | str, ...]


def yaml_key_lines(text: str) -> dict[Loc, int]:
    """1-based line of every mapping key and list item in a YAML text, by its pydantic ``loc``.

    ``{("site", "service_limit_kw"): 5, ("chargers", 0): 16, ...}``; empty if the text does not
    compose (the caller has then already reported the YAML syntax error).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[Loc, int] = {}
    on_path: set[int] = set()  # guards against recursive aliases

    def walk(node: yaml.Node, path: Loc) -> None:
        if id(node) in on_path:
            return
        on_path.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    sub = (*path, key.value)
                    out[sub] = key.start_mark.line + 1  # a repeated key: the last one wins
                    walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                sub = (*path, i)
                out[sub] = value.start_mark.line + 1
                walk(value, sub)
        on_path.discard(id(node))

    if root is not None:
        walk(root, ())
    return out


def describe_loc(loc: Loc, lines: dict[Loc, int] | None) -> str:
    """``site.interconnection (line 7)``: a YAML path and, when known, its line."""
    line = _line_of(loc, lines or {})
    return _loc_path(loc) + (f" (line {line})" if line is not None else "")


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of ``loc`` or of its nearest ancestor present in the YAML."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _model_at(loc: Loc, model: type[BaseModel]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (``None`` if not a model)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # list item: the list's item model was already taken below
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _model_in(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _model_in(annotation: Any) -> Any:
    """``SiteModel`` from ``SiteModel``, ``list[ChargerModel]`` or ``SiteModel | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _suggest(key: str, missing: list[str], fields: list[str]) -> str | None:
    """The field ``key`` is most likely a typo of: a missing field first, else any field."""
    low = key.lower().replace("-", "_").replace(" ", "_")
    for pool in (missing, fields):
        by_lower = {f.lower(): f for f in pool}
        if low in by_lower:
            return by_lower[low]
        close = difflib.get_close_matches(low, list(by_lower), n=1, cutoff=0.75)
        if close:
            return by_lower[close[0]]
    return None


def _keys_at(data: Any, loc: Loc) -> set[str]:
    """The keys of the mapping at ``loc`` in the raw input (empty if there is none)."""
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return set()
    return {str(k) for k in node} if isinstance(node, dict) else set()


def _parent_phrase(parent: Loc) -> str:
    return f"under `{_loc_path(parent)}:`" if parent else "at the top level"


def format_validation_error(
    exc: ValidationError,
    lines: dict[Loc, int] | None = None,
    model: type[BaseModel] | None = None,
    data: Any = None,
) -> tuple[str, str]:
    """One line per problem, ``path (line N): message (got value)``; returns
    ``(message, locations)``.

    A misspelt key (``service_limt_kw``) is one problem, not two: its "unknown field" and the
    "field required" of the key it was meant to be are merged into one line suggesting the
    right name. ``lines`` (from :func:`yaml_key_lines`) adds the YAML line of each problem;
    ``model`` (default :class:`ScenarioModel`) is what the suggestions are drawn from; ``data``
    (the validated input) tells a misspelling of a key that is also given.
    """
    model = model or ScenarioModel
    lines = lines or {}
    errors = exc.errors(include_url=False)
    missing: dict[Loc, list[str]] = {}
    for err in errors:
        if err["type"] == "missing" and err["loc"]:
            missing.setdefault(tuple(err["loc"][:-1]), []).append(str(err["loc"][-1]))
    absorbed: set[Loc] = set()
    suggestions: dict[int, str] = {}
    for i, err in enumerate(errors):
        if err["type"] != "extra_forbidden" or not err["loc"]:
            continue
        parent, key = tuple(err["loc"][:-1]), str(err["loc"][-1])
        target = _model_at(parent, model)
        fields = list(target.model_fields) if target is not None else []
        open_fields = [f for f in missing.get(parent, []) if (*parent, f) not in absorbed]
        best = _suggest(key, open_fields, fields)
        if best is None:
            if fields:
                suggestions[i] = (f"unknown field (a typo? allowed {_parent_phrase(parent)}: "
                                  f"{', '.join(fields)})")
            continue
        if best in open_fields:
            absorbed.add((*parent, best))
            suggestions[i] = (f"unknown field (a typo? did you mean `{best}`? it is required; "
                              "rename the key)")
        elif best in _keys_at(data, parent):
            suggestions[i] = (f"unknown field (a typo? did you mean `{best}`? it is also given; "
                              "delete one of the two)")
        else:
            suggestions[i] = f"unknown field (a typo? did you mean `{best}`?)"

    out, paths = [], []
    for i, err in enumerate(errors):
        loc = tuple(err["loc"])
        if loc in absorbed:
            continue
        path = _loc_path(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = suggestions.get(
                i, "unknown field (a typo? see the scenario format in the README)")
        elif err["type"] == "missing" and loc:
            msg = f"required field missing; add `{loc[-1]}:` {_parent_phrase(loc[:-1])}"
        got = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(
            got, (dict, list)) else f" (got {got!r})"
        line = _line_of(loc, lines)
        at = f" (line {line})" if line is not None else ""
        out.append(f"  - {path}{at}: {msg}{shown}")
        paths.append(path)
    n = len(out)
    head = f"{n} problem{'s' if n > 1 else ''} in the scenario file; fix each field below:"
    return head + "\n" + "\n".join(out), ", ".join(paths)


def parse_scenario_model(data: Any, file: str, text: str | None = None) -> ScenarioModel:
    """Validate the YAML's content, raising one :class:`InputError` listing every bad field.

    ``text`` is the YAML source; given, each problem names its line.
    """
    if not isinstance(data, dict):
        raise InputError(
            "the scenario file must be a YAML mapping (name:, site:, tariff:, ...)", file=file
        )
    try:
        return ScenarioModel.model_validate(data)
    except ValidationError as exc:
        lines = yaml_key_lines(text) if text is not None else None
        message, paths = format_validation_error(exc, lines, data=data)
        raise InputError(message, file=file, location=paths) from None


@dataclass(frozen=True)
class ExpandedCharger:
    """A charger after template expansion, with the YAML path it came from."""

    path: str
    id: str
    model: ChargerModel


@dataclass(frozen=True)
class ExpandedVehicle:
    """A vehicle after template expansion, with the YAML path it came from."""

    path: str
    id: str
    type: str
    home_charger: str | None
    target_soc: float
    min_soc: float


def expand_chargers(model: ScenarioModel, file: str) -> list[ExpandedCharger]:
    """One entry per port, in declared order; duplicate ids are an error naming both paths."""
    out: list[ExpandedCharger] = []
    seen: dict[str, str] = {}
    for i, c in enumerate(model.chargers):
        for n in c.numbers():
            cid = c.make_id(n)
            path = f"chargers[{i}]" + ("" if n is None else f" (number {n})")
            if cid in seen:
                raise ConsistencyError(
                    f"charger id {cid!r} is declared twice (also at {seen[cid]}); "
                    "give every port its own id",
                    file=file, location=f"chargers[{i}]",
                )
            seen[cid] = path
            out.append(ExpandedCharger(path, cid, c))
    return out


def expand_vehicles(
    model: ScenarioModel, file: str, charger_ids: set[str]
) -> list[ExpandedVehicle]:
    """One entry per vehicle; checks types and home chargers exist and ids are unique."""
    type_names: dict[str, int] = {}
    for i, t in enumerate(model.vehicle_types):
        if t.name in type_names:
            raise ConsistencyError(
                f"vehicle type {t.name!r} is declared twice (also vehicle_types"
                f"[{type_names[t.name]}]); give every type its own name",
                file=file, location=f"vehicle_types[{i}].name",
            )
        type_names[t.name] = i
    out: list[ExpandedVehicle] = []
    seen: dict[str, str] = {}
    d = model.defaults
    for i, v in enumerate(model.vehicles):
        if v.type not in type_names:
            raise ConsistencyError(
                f"unknown vehicle type {v.type!r}; declared types are "
                f"{sorted(type_names)} (add it under vehicle_types or fix the name)",
                file=file, location=f"vehicles[{i}].type",
            )
        target = v.target_soc if v.target_soc is not None else d.target_soc
        min_soc = v.min_soc if v.min_soc is not None else d.min_soc
        if min_soc >= target:
            raise InputError(
                f"min_soc {min_soc} is not below target_soc {target}; lower min_soc or raise "
                "target_soc", file=file, location=f"vehicles[{i}]",
            )
        for n in v.numbers():
            vid = v.make_id(n)
            path = f"vehicles[{i}]" + ("" if n is None else f" (number {n})")
            if vid in seen:
                raise ConsistencyError(
                    f"vehicle id {vid!r} is declared twice (also at {seen[vid]}); "
                    "give every vehicle its own id",
                    file=file, location=f"vehicles[{i}]",
                )
            seen[vid] = path
            home = v.make_home(n)
            if home is not None and home not in charger_ids:
                field = "home_charger" if v.home_charger is not None else "home_charger_template"
                raise ConsistencyError(
                    f"vehicle {vid!r} has home charger {home!r}, which is not declared under "
                    "chargers (declare it or fix the id)",
                    file=file, location=f"vehicles[{i}].{field}",
                )
            out.append(ExpandedVehicle(path, vid, v.type, home, target, min_soc))
    return out
