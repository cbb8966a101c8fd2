"""Read OpenEI URDB tariff JSON (and REopt tariff inputs) into a :class:`~.model.Tariff`.

Accepted inputs
---------------
* a bare URDB rate dict (API v3–v8 field names, any letter case: ``flatDemandUnits``,
  ``dgRules`` … are the same fields as ``flatdemandunit``, ``dgrules``);
* an API response ``{"items": [rate, ...]}`` (the first rate is used; a warning if more);
* a REopt scenario (``{"ElectricTariff": {...}, ...}``) or a bare REopt ``ElectricTariff`` dict:
  ``urdb_response``; ``monthly_energy_rates`` / ``monthly_demand_rates``;
  ``blended_annual_energy_rate`` / ``blended_annual_demand_rate``; ``tou_energy_rates_per_kwh``
  (folded into 12 × 24 schedules); ``wholesale_rate``; ``demand_lookback_*``;
  ``coincident_peak_load_active_time_steps`` + ``coincident_peak_load_charge_per_kw``.
  A scenario that only names a rate (``urdb_label``) loads as a tariff with no charges and a
  warning: fleetcharge downloads nothing at run time.

Field semantics follow the URDB v8 documentation [1]_ and, where it is silent, NREL SAM
(``PySAM.UtilityRateTools``, ``Utilityrate5``) [2]_ and REopt.jl ``src/core/urdb.jl`` [3]_.
Every field that is neither modelled nor pure metadata raises
:class:`~.model.UnsupportedTariffFeature` naming the field; malformed JSON or shapes raise
:class:`~fleetcharge.errors.InputError` naming the file and field.

fleetcharge extension keys (URDB has no field for these)
--------------------------------------------------------
``"fleetcharge_subscription": {"block_kw": 50, "price_per_block": 95.56, "overage_per_kw": 3.82,
"subscribed_blocks": null}``
    PG&E BEV-style subscription blocks, see :class:`~.model.SubscriptionCharge`.
``"fleetcharge_export_rate_per_kwh": 0.05``
    A flat export credit that overrides per-period ``sell`` rates.

References
----------
.. [1] OpenEI, "U.S. Utility Rate Database API, version 8", response field definitions.
.. [2] NREL, PySAM ``UtilityRateTools.URDBv8_to_ElectricityRates`` and SSC ``utilityrate5``.
.. [3] NREL, REopt.jl ``src/core/urdb.jl`` and ``src/core/electric_tariff.jl``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fleetcharge.errors import InputError
from fleetcharge.tariff.model import (
    ENERGY_TIER_UNITS,
    METERING_RULES,
    CoincidentDemandCharge,
    CoincidentPeakEvents,
    DemandPeriod,
    DemandRatchet,
    DemandTier,
    EnergyCharge,
    EnergyPeriod,
    EnergyTier,
    FixedCharges,
    FlatDemandCharge,
    MinimumCharge,
    SubscriptionCharge,
    Tariff,
    TariffWarning,
    TouDemandCharge,
    UnsupportedTariffFeature,
)

__all__ = ["parse_urdb", "parse_urdb_text", "read_urdb"]

# Aliases seen in real files (after lower-casing) → canonical URDB v8 name.
_ALIASES = {
    "flatdemandunits": "flatdemandunit",
    "demandrateunits": "demandrateunit",
    "demandreactpwrcharge": "demandreactivepowercharge",
    "coincidentschedule": "coincidentrateschedule",
    "coincidentrateunits": "coincidentrateunit",
    "supercedes": "supersedes",
    "sourcereference": "source",
    "isdefault": "is_default",
}

# Descriptive fields: eligibility, provenance and free text. Never warned about.
_METADATA = frozenset(
    """
    label uri revisions approved is_default utility utilityname utility_name eiaid name rateName
    startdate enddate supersedes sector servicetype description source sourceparent
    voltagecategory phasewiring country energycomments demandcomments basicinformationcomments
    fixedchargecomments energyattrs demandattrs fixedattrs fixedkeyvals energykeyvals demandkeyvals
    peakkwcapacitymin peakkwcapacitymax peakkwcapacityhistory peakkwhusagemin peakkwhusagemax
    peakkwhusagehistory voltageminimum voltagemaximum mindemand maxdemand servicemax
    energytoulabels demandtoulabels latest_update id _id htmlurl ratename utility_id is_approved
    """.lower().split()
)

# Fields that hold a charge fleetcharge does not model (warned about when non-zero).
_UNSUPPORTED_CHARGES = {
    "demandreactivepowercharge": "reactive-power (kVAR) demand charge",
    "fixedchargeeaaddl": "fixed charge for each additional meter (one meter is assumed)",
    "fueladjustmentsmonthly": "monthly fuel adjustment",
}

_HANDLED = frozenset(
    """
    energyratestructure energyweekdayschedule energyweekendschedule
    flatdemandstructure flatdemandmonths flatdemandunit demandunits
    demandratestructure demandweekdayschedule demandweekendschedule demandrateunit
    lookbackpercent lookbackrange lookbackmonths demandratchetpercentage demandwindow
    fixedchargefirstmeter fixedchargeunits fixedmonthlycharge
    mincharge minchargeunits minmonthlycharge annualmincharge
    coincidentratestructure coincidentrateschedule coincidentrateunit
    dgrules usenetmetering fleetcharge_subscription fleetcharge_export_rate_per_kwh
    """.split()
)

_REOPT_TARIFF_KEYS = frozenset(
    """
    urdb_label urdb_response urdb_utility_name urdb_rate_name urdb_metadata
    monthly_energy_rates monthly_demand_rates blended_annual_energy_rate
    blended_annual_demand_rate tou_energy_rates_per_kwh wholesale_rate
    export_rate_beyond_net_metering_limit add_monthly_rates_to_urdb_rate
    add_tou_energy_rates_to_urdb_rate remove_tiers demand_lookback_months
    demand_lookback_percent demand_lookback_range coincident_peak_load_active_time_steps
    coincident_peak_load_charge_per_kw net_metering_limit_kw
    """.split()
)

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_BIG = 1e30  # URDB/REopt write "no limit" as 1e38, 1e14 …; anything this large is unlimited


def _unsupported(source: str, fld: str, what: str) -> str:
    msg = f"{source}: {fld}: {what}"
    warnings.warn(msg, UnsupportedTariffFeature, stacklevel=4)
    return msg


class _Ctx:
    """Parse context: the file name for errors and the notes collected from warnings."""

    def __init__(self, source: str):
        self.source = source
        self.notes: list[str] = []

    def error(self, fld: str, message: str) -> InputError:
        return InputError(message, self.source, fld)

    def warn(self, fld: str, what: str) -> None:
        self.notes.append(_unsupported(self.source, fld, what))


# ------------------------------------------------------------------------- small validators
def _number(ctx: _Ctx, value: Any, fld: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ctx.error(fld, f"expected a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ctx.error(fld, f"expected a finite number, got {value!r}")
    return float(value)


def _limit(ctx: _Ctx, value: Any, fld: str) -> float:
    if value is None:
        return math.inf
    x = _number(ctx, value, fld)
    return math.inf if x >= _BIG else x


def _schedule(ctx: _Ctx, value: Any, fld: str, n_periods: int) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list) or len(value) != 12:
        n = len(value) if isinstance(value, list) else type(value).__name__
        raise ctx.error(fld, f"{fld} has {n} rows; URDB schedules are 12 months × 24 hours")
    rows = []
    for m, row in enumerate(value):
        if not isinstance(row, list) or len(row) != 24:
            n = len(row) if isinstance(row, list) else type(row).__name__
            extra = ""
            if isinstance(row, list) and len(row) > 24 and len(row) % 24 == 0:
                extra = " (sub-hourly schedules are not supported)"
            raise ctx.error(
                f"{fld}[{m}]",
                f"{fld} row {m + 1} ({_MONTHS[m]}) has {n} hours; "
                f"URDB schedules are 12 months × 24 hours{extra}",
            )
        out = []
        for h, p in enumerate(row):
            if isinstance(p, bool) or not isinstance(p, int | float) or p != int(p):
                raise ctx.error(f"{fld}[{m}][{h}]", f"period index must be an integer, got {p!r}")
            if not 0 <= int(p) < n_periods:
                raise ctx.error(
                    f"{fld}[{m}][{h}]",
                    f"{fld} row {m + 1} ({_MONTHS[m]}) hour {h} uses period {int(p)} but the "
                    f"rate structure has {n_periods} periods (numbered from 0)",
                )
            out.append(int(p))
        rows.append(tuple(out))
    return tuple(rows)


def _structure_list(ctx: _Ctx, value: Any, fld: str) -> list[list[dict]]:
    if not isinstance(value, list) or not value:
        raise ctx.error(fld, f"{fld} must be a non-empty list of periods, each a list of tiers")
    for i, period in enumerate(value):
        if not isinstance(period, list) or not period:
            raise ctx.error(f"{fld}[{i}]", "each period must be a non-empty list of tier objects")
        for j, tier in enumerate(period):
            if not isinstance(tier, dict):
                raise ctx.error(f"{fld}[{i}][{j}]", f"tier must be an object, got {tier!r}")
    return value


def _labels(raw: Any, n: int, prefix: str) -> list[str]:
    if isinstance(raw, list) and len(raw) == n and all(isinstance(x, str) and x for x in raw):
        labels = [str(x) for x in raw]
    else:
        labels = [f"{prefix} {i}" for i in range(n)]
    seen: dict[str, int] = {}
    for i, lab in enumerate(labels):
        if lab in seen:
            labels[i] = f"{lab} ({i})"
        seen[lab] = i
    return labels


def _check_increasing(ctx: _Ctx, limits: list[float], fld: str) -> None:
    for j in range(1, len(limits) - 1):
        if not limits[j] > limits[j - 1]:
            raise ctx.error(
                f"{fld}[{j}].max",
                f"tier maxima must increase (cumulative limits), got {limits[j - 1]:g} then "
                f"{limits[j]:g}",
            )


def _energy_periods(ctx: _Ctx, d: Mapping, labels_raw: Any) -> list[EnergyPeriod]:
    fld = "energyratestructure"
    struct = _structure_list(ctx, d[fld], fld)
    labels = _labels(labels_raw, len(struct), "period")
    periods = []
    for i, period in enumerate(struct):
        tiers = []
        for j, t in enumerate(period):
            where = f"{fld}[{i}][{j}]"
            for k in t:
                if k not in ("rate", "adj", "max", "unit", "sell"):
                    ctx.warn(f"{where}.{k}", "energy tier field is not modelled and was ignored")
            rate = _number(ctx, t.get("rate", 0.0) or 0.0, f"{where}.rate")
            adj = _number(ctx, t.get("adj", 0.0) or 0.0, f"{where}.adj")
            sell = _number(ctx, t.get("sell", 0.0) or 0.0, f"{where}.sell")
            unit_raw = t.get("unit", "kWh") or "kWh"
            unit = {u.lower(): u for u in ENERGY_TIER_UNITS}.get(str(unit_raw).strip().lower())
            if unit is None:
                raise ctx.error(
                    f"{where}.unit",
                    f"energy tier unit {unit_raw!r} is not a URDB unit; use one of "
                    f"{', '.join(ENERGY_TIER_UNITS)}",
                )
            last = j == len(period) - 1
            mx = math.inf if last else _limit(ctx, t.get("max"), f"{where}.max")
            if not last and (mx == math.inf or mx <= 0):
                raise ctx.error(
                    f"{where}.max", "every tier but the last needs a positive 'max' (URDB)"
                )
            tiers.append(EnergyTier(rate + adj, mx, unit, sell))
        lim = [t.max_usage for t in tiers]
        if len({t.unit for t in tiers}) == 1:
            _check_increasing(ctx, lim, f"{fld}[{i}]")
        sells = {t.sell_per_kwh for t in tiers}
        if len(sells) > 1:
            ctx.warn(
                f"{fld}[{i}].sell",
                "tiers of one period have different sell rates; the first tier's is used",
            )
        periods.append(EnergyPeriod(tuple(tiers), labels[i]))
    return periods


def _demand_periods(ctx: _Ctx, value: Any, fld: str, prefix: str) -> list[DemandPeriod]:
    struct = _structure_list(ctx, value, fld)
    out = []
    for i, period in enumerate(struct):
        tiers = []
        for j, t in enumerate(period):
            where = f"{fld}[{i}][{j}]"
            for k in t:
                if k == "sell" and not t[k]:
                    continue
                if k == "unit":
                    continue
                if k not in ("rate", "adj", "max"):
                    ctx.warn(f"{where}.{k}", "demand tier field is not modelled and was ignored")
            rate = _number(ctx, t.get("rate", 0.0) or 0.0, f"{where}.rate")
            adj = _number(ctx, t.get("adj", 0.0) or 0.0, f"{where}.adj")
            last = j == len(period) - 1
            mx = math.inf if last else _limit(ctx, t.get("max"), f"{where}.max")
            if not last and (mx == math.inf or mx <= 0):
                raise ctx.error(
                    f"{where}.max", "every tier but the last needs a positive 'max' (URDB)"
                )
            tiers.append(DemandTier(rate + adj, mx))
        _check_increasing(ctx, [t.max_kw for t in tiers], f"{fld}[{i}]")
        out.append(DemandPeriod(tuple(tiers), f"{prefix} {i}"))
    return out


def _demand_unit_ok(ctx: _Ctx, d: Mapping, unit_fields: tuple[str, ...], struct_fld: str) -> bool:
    """Check demand units; return False if the structure must be left out (warned)."""
    units = {str(d[f]).strip() for f in unit_fields if f in d and d[f]}
    struct = d.get(struct_fld) or []
    for period in struct if isinstance(struct, list) else []:
        for t in period if isinstance(period, list) else []:
            if isinstance(t, dict) and t.get("unit"):
                units.add(str(t["unit"]).strip())
    keep = True
    for u in sorted(units):
        lu = u.lower()
        if lu == "kw":
            continue
        if lu == "kva":
            ctx.warn(
                f"{struct_fld} unit",
                "demand billed in kVA is treated as kW (unity power factor, a lower bound)",
            )
        elif "daily" in lu:
            ctx.warn(
                f"{struct_fld} unit",
                f"daily demand unit {u!r} is not modelled; this demand charge is left out",
            )
            keep = False
        else:
            ctx.warn(
                f"{struct_fld} unit", f"demand unit {u!r} is not modelled; this charge is left out"
            )
            keep = False
    return keep


def _fraction(x: float) -> float:
    """URDB stores ratchet percentages as fractions (SAM multiplies by 100); >1 means percent."""
    return x / 100.0 if x > 1.0 else x


# ------------------------------------------------------------------------- URDB rate dict
def _normalise_keys(ctx: _Ctx, data: Mapping) -> dict:
    out: dict[str, Any] = {}
    for k, v in data.items():
        lk = str(k).lower()
        lk = _ALIASES.get(lk, lk)
        if lk in out and out[lk] != v:
            raise ctx.error(str(k), f"field {k!r} is given twice (letter case or alias differs)")
        out[lk] = v
    return out


def _parse_rate(data: Mapping, ctx: _Ctx) -> Tariff:
    d = _normalise_keys(ctx, data)

    for k, v in d.items():
        if k in _HANDLED or k in _METADATA or k.startswith("_"):
            continue
        if k in _UNSUPPORTED_CHARGES:
            if v not in (None, 0, 0.0, "", [], {}) and not (
                isinstance(v, list) and all(not x for x in v)
            ):
                ctx.warn(k, f"{_UNSUPPORTED_CHARGES[k]} is not modelled and was left out")
            continue
        if v in (None, "", [], {}):
            continue
        ctx.warn(k, "field is not modelled by fleetcharge and was ignored")

    # Energy -------------------------------------------------------------------------------
    energy = None
    if d.get("energyratestructure"):
        periods = _energy_periods(ctx, d, d.get("energytoulabels"))
        n = len(periods)
        scheds = []
        for fld in ("energyweekdayschedule", "energyweekendschedule"):
            if d.get(fld) is None:
                if n == 1:
                    scheds.append(tuple((0,) * 24 for _ in range(12)))
                    continue
                raise ctx.error(fld, f"{fld} is missing but energyratestructure has {n} periods")
            scheds.append(_schedule(ctx, d[fld], fld, n))
        energy = EnergyCharge(tuple(periods), scheds[0], scheds[1])

    # Flat demand ---------------------------------------------------------------------------
    flat = None
    if d.get("flatdemandstructure"):
        periods = _demand_periods(ctx, d["flatdemandstructure"], "flatdemandstructure", "flat")
        if _demand_unit_ok(ctx, d, ("flatdemandunit", "demandunits"), "flatdemandstructure"):
            months_raw = d.get("flatdemandmonths")
            if months_raw is None:
                if len(periods) != 1:
                    raise ctx.error(
                        "flatdemandmonths",
                        f"flatdemandmonths is missing but flatdemandstructure has "
                        f"{len(periods)} periods",
                    )
                months_raw = [0] * 12
            if not isinstance(months_raw, list) or len(months_raw) != 12:
                raise ctx.error("flatdemandmonths", "flatdemandmonths must list 12 period indices")
            months = []
            for m, p in enumerate(months_raw):
                if isinstance(p, bool) or not isinstance(p, int | float) or p != int(p):
                    raise ctx.error(f"flatdemandmonths[{m}]", f"expected an integer, got {p!r}")
                if not 0 <= int(p) < len(periods):
                    raise ctx.error(
                        f"flatdemandmonths[{m}]",
                        f"month {m + 1} uses flat demand period {int(p)} but only "
                        f"{len(periods)} exist (numbered from 0)",
                    )
                months.append(int(p))
            flat = FlatDemandCharge(tuple(periods), tuple(months))

    # TOU demand ----------------------------------------------------------------------------
    tou = None
    if d.get("demandratestructure"):
        periods = _demand_periods(ctx, d["demandratestructure"], "demandratestructure", "demand")
        if _demand_unit_ok(ctx, d, ("demandrateunit", "demandunits"), "demandratestructure"):
            n = len(periods)
            scheds = []
            for fld in ("demandweekdayschedule", "demandweekendschedule"):
                if d.get(fld) is None:
                    if n == 1:
                        scheds.append(tuple((0,) * 24 for _ in range(12)))
                        continue
                    raise ctx.error(
                        fld, f"{fld} is missing but demandratestructure has {n} periods"
                    )
                scheds.append(_schedule(ctx, d[fld], fld, n))
            tou = TouDemandCharge(tuple(periods), scheds[0], scheds[1])

    # Coincident ----------------------------------------------------------------------------
    coincident = None
    if d.get("coincidentratestructure"):
        periods = _demand_periods(
            ctx, d["coincidentratestructure"], "coincidentratestructure", "coincident"
        )
        if _demand_unit_ok(ctx, d, ("coincidentrateunit",), "coincidentratestructure"):
            if d.get("coincidentrateschedule") is None:
                if len(periods) != 1:
                    raise ctx.error("coincidentrateschedule", "coincidentrateschedule is missing")
                sched = tuple((0,) * 24 for _ in range(12))
            else:
                sched = _schedule(
                    ctx, d["coincidentrateschedule"], "coincidentrateschedule", len(periods)
                )
            coincident = CoincidentDemandCharge(tuple(periods), sched)

    # Ratchets ------------------------------------------------------------------------------
    ratchets = []
    pct = d.get("lookbackpercent")
    if pct not in (None, 0, 0.0):
        frac = _fraction(_number(ctx, pct, "lookbackpercent"))
        rng_raw = d.get("lookbackrange") or 0
        rng = int(_number(ctx, rng_raw, "lookbackrange"))
        months_raw = d.get("lookbackmonths")
        counted = (True,) * 12
        if months_raw:
            if not isinstance(months_raw, list) or len(months_raw) != 12:
                raise ctx.error("lookbackmonths", "lookbackmonths must list 12 booleans")
            if any(bool(x) for x in months_raw):
                counted = tuple(bool(x) for x in months_raw)
        ratchets.append(DemandRatchet((frac,) * 12, rng if rng > 0 else 12, counted, "lookback"))
    drp = d.get("demandratchetpercentage")
    if drp:
        if not isinstance(drp, list) or len(drp) != 12:
            raise ctx.error("demandratchetpercentage", "demandratchetpercentage needs 12 values")
        fr = tuple(
            _fraction(_number(ctx, x, f"demandratchetpercentage[{i}]")) for i, x in enumerate(drp)
        )
        if any(fr):
            ratchets.append(DemandRatchet(fr, 11, (True,) * 12, "demandratchetpercentage"))
    if ratchets and flat is None:
        ctx.warn(
            "lookbackpercent" if pct else "demandratchetpercentage",
            "a demand ratchet without a flat demand charge has nothing to act on; left out",
        )
        ratchets = []

    # Fixed and minimum charges -------------------------------------------------------------
    fixed = FixedCharges()
    fcfm = d.get("fixedchargefirstmeter")
    fmc = d.get("fixedmonthlycharge")
    if fcfm not in (None, ""):
        amount = _number(ctx, fcfm, "fixedchargefirstmeter")
        units = str(d.get("fixedchargeunits") or "$/month").strip().lower()
        if units == "$/month":
            fixed = FixedCharges(per_month=amount)
        elif units == "$/day":
            fixed = FixedCharges(per_day=amount)
        elif units == "$/year":
            fixed = FixedCharges(per_year=amount)
        else:
            raise ctx.error(
                "fixedchargeunits",
                f"fixedchargeunits {d.get('fixedchargeunits')!r} is not $/month, $/day or $/year",
            )
        if fmc not in (None, "", 0) and _number(ctx, fmc, "fixedmonthlycharge") != amount:
            ctx.warn(
                "fixedmonthlycharge",
                "legacy fixedmonthlycharge differs from fixedchargefirstmeter; the latter is used",
            )
    elif fmc not in (None, ""):
        fixed = FixedCharges(per_month=_number(ctx, fmc, "fixedmonthlycharge"))

    minimum = MinimumCharge()
    mc = d.get("mincharge")
    if mc not in (None, "", 0):
        amount = _number(ctx, mc, "mincharge")
        units = str(d.get("minchargeunits") or "$/month").strip().lower()
        if units not in ("$/month", "$/day", "$/year"):
            raise ctx.error("minchargeunits", f"minchargeunits {units!r} is not $/month|day|year")
        minimum = MinimumCharge(
            per_month=amount if units == "$/month" else 0.0,
            per_day=amount if units == "$/day" else 0.0,
            per_year=amount if units == "$/year" else 0.0,
        )
    else:
        mm = d.get("minmonthlycharge")
        am = d.get("annualmincharge")
        minimum = MinimumCharge(
            per_month=_number(ctx, mm, "minmonthlycharge") if mm not in (None, "") else 0.0,
            per_year=_number(ctx, am, "annualmincharge") if am not in (None, "") else 0.0,
        )

    # Metering, demand window, extensions ---------------------------------------------------
    rule = d.get("dgrules")
    if rule is not None and rule not in METERING_RULES:
        raise ctx.error("dgrules", f"dgrules {rule!r} is not one of {', '.join(METERING_RULES)}")
    if rule is None and d.get("usenetmetering") is True:
        rule = "Net Metering"

    window = 15
    if d.get("demandwindow") not in (None, "", 0):
        w = _number(ctx, d["demandwindow"], "demandwindow")
        if w != int(w) or w < 1:
            raise ctx.error("demandwindow", f"demandwindow must be whole minutes ≥ 1, got {w:g}")
        window = int(w)

    subscription = None
    if d.get("fleetcharge_subscription") is not None:
        subscription = _subscription(ctx, d["fleetcharge_subscription"])
    export_rate = None
    if d.get("fleetcharge_export_rate_per_kwh") is not None:
        export_rate = _number(
            ctx, d["fleetcharge_export_rate_per_kwh"], "fleetcharge_export_rate_per_kwh"
        )

    name = str(d.get("name") or d.get("label") or Path(ctx.source.split(" (")[0]).stem)
    return Tariff(
        name=name,
        utility=str(d.get("utility") or ""),
        label=str(d.get("label") or ""),
        source=ctx.source,
        energy=energy,
        flat_demand=flat,
        tou_demand=tou,
        ratchets=tuple(ratchets),
        fixed=fixed,
        minimum=minimum,
        export_rate_per_kwh=export_rate,
        coincident=coincident,
        subscription=subscription,
        demand_window_min=window,
        metering_rule=rule,
        notes=tuple(ctx.notes),
    )


def _subscription(ctx: _Ctx, raw: Any) -> SubscriptionCharge:
    fld = "fleetcharge_subscription"
    if not isinstance(raw, dict):
        raise ctx.error(fld, "must be an object with block_kw, price_per_block, overage_per_kw")
    allowed = {"block_kw", "price_per_block", "overage_per_kw", "subscribed_blocks"}
    unknown = set(raw) - allowed - {k for k in raw if str(k).startswith("_")}
    if unknown:
        raise ctx.error(f"{fld}.{sorted(unknown)[0]}", f"unknown key; allowed: {sorted(allowed)}")
    missing = {"block_kw", "price_per_block", "overage_per_kw"} - set(raw)
    if missing:
        raise ctx.error(fld, f"missing {', '.join(sorted(missing))}")
    blocks = raw.get("subscribed_blocks")
    if blocks is not None:
        b = _number(ctx, blocks, f"{fld}.subscribed_blocks")
        if b != int(b) or b < 0:
            raise ctx.error(f"{fld}.subscribed_blocks", "must be a whole number ≥ 0")
        blocks = int(b)
    block_kw = _number(ctx, raw["block_kw"], f"{fld}.block_kw")
    if block_kw <= 0:
        raise ctx.error(f"{fld}.block_kw", "must be positive")
    return SubscriptionCharge(
        block_kw=block_kw,
        price_per_block=_number(ctx, raw["price_per_block"], f"{fld}.price_per_block"),
        overage_per_kw=_number(ctx, raw["overage_per_kw"], f"{fld}.overage_per_kw"),
        subscribed_blocks=blocks,
    )


# ------------------------------------------------------------------------- REopt inputs
def _is_empty(v: Any) -> bool:
    return v is None or v == [] or v == {} or v == ""


def _reopt_year(scenario: Mapping) -> int:
    """REopt.jl's load year: ``ElectricLoad.year``, else 2017 for DOE reference loads, else 2022."""
    load = scenario.get("ElectricLoad") or {}
    if isinstance(load.get("year"), int):
        return int(load["year"])
    if load.get("doe_reference_name") or load.get("blended_doe_reference_names"):
        return 2017
    return 2022


def _months_energy(ctx: _Ctx, rates: list, fld: str) -> EnergyCharge:
    if not isinstance(rates, list) or len(rates) != 12:
        raise ctx.error(fld, f"{fld} must list 12 monthly values")
    vals = [_number(ctx, r, f"{fld}[{i}]") for i, r in enumerate(rates)]
    periods = tuple(EnergyPeriod((EnergyTier(v),), _MONTHS[i]) for i, v in enumerate(vals))
    sched = tuple((m,) * 24 for m in range(12))
    return EnergyCharge(periods, sched, sched)


def _tou_energy(ctx: _Ctx, rates: list, sph: int, year: int) -> EnergyCharge:
    """Fold an 8760 × sph price series into 12 × 24 weekday/weekend schedules."""
    fld = "tou_energy_rates_per_kwh"
    arr = np.asarray(rates, dtype=float)
    n = 8760 * sph
    if arr.ndim != 1 or len(arr) != n:
        raise ctx.error(fld, f"{fld} has {arr.size} values; expected 8760 × {sph} = {n}")
    idx = pd.date_range(f"{year}-01-01", periods=n, freq=pd.Timedelta(minutes=60 // sph))
    key = pd.DataFrame(
        {
            "m": idx.month - 1,
            "h": idx.hour,
            "we": (idx.day_of_week >= 5).astype(int),
            "p": arr,
        }
    )
    g = key.groupby(["we", "m", "h"])["p"]
    if (g.max() - g.min()).abs().max() > 1e-9:
        ctx.warn(
            fld,
            "prices vary within (month, day type, hour) and cannot be written as URDB "
            "schedules; the mean of each group is used",
        )
    mean = g.mean()
    uniq, inverse = np.unique(np.round(mean.to_numpy(), 9), return_inverse=True)
    grid = inverse.reshape(2, 12, 24)
    periods = tuple(EnergyPeriod((EnergyTier(float(v)),), f"{v:g}/kWh") for v in uniq)
    wd = tuple(tuple(int(x) for x in row) for row in grid[0])
    we = tuple(tuple(int(x) for x in row) for row in grid[1])
    return EnergyCharge(periods, wd, we)


def _parse_reopt(et: Mapping, scenario: Mapping, ctx: _Ctx) -> Tariff:
    for k, v in et.items():
        if k not in _REOPT_TARIFF_KEYS and not _is_empty(v):
            ctx.warn(f"ElectricTariff.{k}", "REopt tariff input is not modelled and was ignored")
    settings = scenario.get("Settings") or {}
    sph = int(settings.get("time_steps_per_hour") or 1)

    if not _is_empty(et.get("urdb_response")):
        if not isinstance(et["urdb_response"], dict):
            raise ctx.error("ElectricTariff.urdb_response", "urdb_response must be an object")
        for k in (
            "monthly_energy_rates",
            "monthly_demand_rates",
            "blended_annual_energy_rate",
            "blended_annual_demand_rate",
            "tou_energy_rates_per_kwh",
        ):
            if not _is_empty(et.get(k)):
                ctx.warn(f"ElectricTariff.{k}", "ignored because urdb_response is given")
        base = _parse_rate(et["urdb_response"], ctx)
    else:
        base = _reopt_simple(et, scenario, ctx, sph)

    extra: dict[str, Any] = {}
    wr = et.get("wholesale_rate")
    if not _is_empty(wr):
        if isinstance(wr, int | float):
            extra["export_rate_per_kwh"] = float(wr)
        elif isinstance(wr, list) and len(set(wr)) == 1:
            extra["export_rate_per_kwh"] = _number(ctx, wr[0], "ElectricTariff.wholesale_rate")
        else:
            ctx.warn(
                "ElectricTariff.wholesale_rate",
                "a time-varying wholesale rate is not modelled; pass it to compute_bill as "
                "export_price_per_kwh",
            )
    for k in ("export_rate_beyond_net_metering_limit", "net_metering_limit_kw"):
        if et.get(k) not in (None, 0, 0.0, []):
            ctx.warn(f"ElectricTariff.{k}", "net-metering limits are not modelled")
    for k in (
        "add_monthly_rates_to_urdb_rate",
        "add_tou_energy_rates_to_urdb_rate",
        "remove_tiers",
    ):
        if et.get(k):
            ctx.warn(f"ElectricTariff.{k}", "REopt option is not applied")

    pct = et.get("demand_lookback_percent")
    if pct not in (None, 0, 0.0):
        if base.flat_demand is None:
            ctx.warn(
                "ElectricTariff.demand_lookback_percent", "no flat demand to ratchet; left out"
            )
        else:
            frac = _fraction(_number(ctx, pct, "ElectricTariff.demand_lookback_percent"))
            rng = int(et.get("demand_lookback_range") or 0)
            months = et.get("demand_lookback_months") or []
            counted = (True,) * 12
            if months:
                if len(months) == 12 and all(x in (0, 1, True, False) for x in months):
                    counted = tuple(bool(x) for x in months)
                else:  # REopt.jl: a list of month numbers 1–12
                    counted = tuple((m + 1) in set(months) for m in range(12))
            extra["ratchets"] = base.ratchets + (
                DemandRatchet((frac,) * 12, rng if rng > 0 else 12, counted, "lookback"),
            )

    steps = et.get("coincident_peak_load_active_time_steps")
    if not _is_empty(steps):
        charges = et.get("coincident_peak_load_charge_per_kw")
        fld = "ElectricTariff.coincident_peak_load_active_time_steps"
        if not isinstance(steps, list) or not all(isinstance(w, list) for w in steps):
            raise ctx.error(fld, "must be a list of lists of 1-based time steps")
        if not isinstance(charges, list):
            charges = [charges] * len(steps)
        if len(charges) != len(steps):
            raise ctx.error(
                "ElectricTariff.coincident_peak_load_charge_per_kw",
                f"{len(charges)} charges for {len(steps)} coincident peak windows",
            )
        if sph not in (1, 2, 4):
            raise ctx.error("Settings.time_steps_per_hour", "must be 1, 2 or 4")
        extra["coincident_events"] = CoincidentPeakEvents(
            tuple(tuple(int(s) for s in w) for w in steps),
            tuple(_number(ctx, c, f"{fld} charge") for c in charges),
            sph,
        )
    return replace(base, **extra, notes=tuple(ctx.notes))


def _reopt_simple(et: Mapping, scenario: Mapping, ctx: _Ctx, sph: int) -> Tariff:
    energy = flat = None
    what = []
    if not _is_empty(et.get("monthly_energy_rates")):
        energy = _months_energy(ctx, et["monthly_energy_rates"], "monthly_energy_rates")
        what.append("monthly energy rates")
    elif not _is_empty(et.get("tou_energy_rates_per_kwh")):
        energy = _tou_energy(ctx, et["tou_energy_rates_per_kwh"], sph, _reopt_year(scenario))
        what.append("TOU energy rates")
    elif et.get("blended_annual_energy_rate") not in (None, ""):
        v = _number(ctx, et["blended_annual_energy_rate"], "blended_annual_energy_rate")
        sched = tuple((0,) * 24 for _ in range(12))
        energy = EnergyCharge((EnergyPeriod((EnergyTier(v),), "blended"),), sched, sched)
        what.append("blended energy rate")
    if not _is_empty(et.get("monthly_demand_rates")):
        raw = et["monthly_demand_rates"]
        if not isinstance(raw, list) or len(raw) != 12:
            raise ctx.error("monthly_demand_rates", "monthly_demand_rates must list 12 values")
        vals = [_number(ctx, r, f"monthly_demand_rates[{i}]") for i, r in enumerate(raw)]
        periods = tuple(DemandPeriod((DemandTier(v),), _MONTHS[i]) for i, v in enumerate(vals))
        flat = FlatDemandCharge(periods, tuple(range(12)))
        what.append("monthly demand rates")
    elif et.get("blended_annual_demand_rate") not in (None, "", 0, 0.0):
        v = _number(ctx, et["blended_annual_demand_rate"], "blended_annual_demand_rate")
        flat = FlatDemandCharge((DemandPeriod((DemandTier(v),), "blended"),), (0,) * 12)
        what.append("blended demand rate")

    ref = next(
        (f"{k}={et[k]!r}" for k in ("urdb_label", "urdb_rate_name") if not _is_empty(et.get(k))),
        None,
    )
    if energy is None and flat is None:
        if ref is not None:
            ctx.warn(
                "ElectricTariff." + ref.split("=")[0],
                f"the scenario only names a URDB rate ({ref}); fleetcharge downloads nothing "
                "at run time, so this tariff has no charges. Save the rate JSON from OpenEI "
                "(version=8&detail=full) and load that file instead",
            )
            name = f"URDB {ref.split('=', 1)[1].strip(chr(39))} (not downloaded)"
        else:
            raise ctx.error("ElectricTariff", "no tariff inputs found (urdb_response, rates …)")
    else:
        name = "REopt " + " + ".join(what)
        if ref is not None:
            ctx.warn(f"ElectricTariff.{ref.split('=')[0]}", "URDB reference not downloaded")
    return Tariff(
        name=name,
        source=ctx.source,
        energy=energy,
        flat_demand=flat,
        notes=tuple(ctx.notes),
    )


# ------------------------------------------------------------------------- public API
def parse_urdb(data: Mapping, source: str = "<tariff>") -> Tariff:
    """Build a :class:`~.model.Tariff` from parsed URDB or REopt tariff JSON.

    Parameters
    ----------
    data : dict
        A URDB rate, ``{"items": [rate, ...]}``, a REopt scenario with ``ElectricTariff`` or a
        REopt ``ElectricTariff`` dict.
    source : str
        File name (or other origin) used in error and warning messages.

    Returns
    -------
    Tariff

    Raises
    ------
    InputError
        Malformed structure: wrong schedule shape, period out of range, bad tier, unknown unit.

    Warns
    -----
    UnsupportedTariffFeature
        For every field that holds a charge fleetcharge does not model, naming the field.
    TariffWarning
        If ``items`` holds more than one rate (the first is used).
    """
    ctx = _Ctx(source)
    if not isinstance(data, Mapping):
        raise ctx.error("", f"a tariff must be a JSON object, got {type(data).__name__}")
    if "items" in data and not any(k in data for k in ("energyratestructure", "ElectricTariff")):
        items = data["items"]
        if not isinstance(items, list) or not items:
            raise ctx.error("items", "the URDB response holds no rates ('items' is empty)")
        if len(items) > 1:
            labels = [str(i.get("label", "?")) for i in items if isinstance(i, dict)]
            warnings.warn(
                f"{source}: items holds {len(items)} rates ({', '.join(labels[:5])}); "
                "the first is used",
                TariffWarning,
                stacklevel=2,
            )
        if not isinstance(items[0], dict):
            raise ctx.error("items[0]", "a URDB rate must be a JSON object")
        return _parse_rate(items[0], ctx)
    if "ElectricTariff" in data:
        et = data["ElectricTariff"]
        if not isinstance(et, dict):
            raise ctx.error("ElectricTariff", "ElectricTariff must be an object")
        return _parse_reopt(et, data, ctx)
    if any(k in data for k in _REOPT_TARIFF_KEYS) and not any(
        k.lower() in _HANDLED for k in data
    ):
        return _parse_reopt(data, {}, ctx)
    return _parse_rate(data, ctx)


def read_urdb(path: str | Path) -> Tariff:
    """Read a URDB / REopt tariff JSON file; see :func:`parse_urdb`.

    Raises
    ------
    InputError
        If the file is missing or not valid JSON (with line and column), or malformed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("tariff file not found", str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read tariff file: {exc.strerror}", str(p)) from None
    return parse_urdb_text(text, str(p))


def parse_urdb_text(text: str, source: str) -> Tariff:
    """Parse URDB / REopt tariff JSON text; see :func:`parse_urdb`.

    Raises
    ------
    InputError
        If the text is not valid JSON (with line and column) or the tariff is malformed.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} (fix the file or re-export it from OpenEI)",
            source,
            f"line {exc.lineno}, column {exc.colno}",
        ) from None
    return parse_urdb(data, source)

