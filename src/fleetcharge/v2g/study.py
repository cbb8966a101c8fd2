"""The V2G study: opportunity, distraction, or not ready — for this fleet, with the numbers.

Steps (DESIGN.md §6): the stack check; the V1G optimum and the V2G optimum on the scenario's
horizon (the V2G plan sees the same tariff plus export credit, degradation and, when the horizon
holds called events, program payments); the operational envelope and firm capacity; the
readiness risk of both plans under disruptions; the annual value, NPV and the real-option value
of buying bidirectional ports now.

Annual value. The horizon's bill difference (V1G − V2G bill, export credit included) minus the
degradation of the V2G plan is scaled to a year by 365 / horizon days. Programs whose season the
horizon does not cover are valued from the firm capacity instead: payment × the program's
capped hours × the firm kW (at 90 % confidence) in its window, less degradation on that energy
(so a March study still sees a May–October program; one covering the season uses the plan's own
program payments). Both are estimates from one horizon, stated as such in the report.

Verdict. ``not-ready`` when no pair can discharge (the missing links are the reasons);
``distraction`` when V2G raises the readiness risk by more than the threshold, or the annual
value does not pay back the bidirectional premium within the analysis years (NPV ≤ 0);
``opportunity`` otherwise. The real-option value is reported either way: buying the capability
now can be worth it even when today's NPV is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from fleetcharge.accounting import Outcome, evaluate
from fleetcharge.domain import Scenario
from fleetcharge.strategies.optimal import optimal
from fleetcharge.strategies.v2g import optimal_v2g, v2g_terms
from fleetcharge.v2g.degradation import equivalent_full_cycles
from fleetcharge.v2g.economics import annual_value, npv
from fleetcharge.v2g.envelope import firm_capacity, operational_envelope
from fleetcharge.v2g.options import OptionCase, cross_check
from fleetcharge.v2g.programs import event_hours
from fleetcharge.domain import Disruptions
from fleetcharge.v2g.risk import ReadinessRisk, readiness_risk
from fleetcharge.v2g.stack import check_stack, fleet_summary, stack_table

#: Uncertainty about a future paying program, for the real-option value (see v2g.options).
PROGRAM_VOLATILITY = 0.5
PROGRAM_ARRIVAL_PER_YEAR = 0.25
RETROFIT_FACTOR = 2.5  # retrofitting a bidirectional port later costs this × today's premium


@dataclass
class V2GStudy:
    """Everything the verdict rests on."""

    scenario: Scenario
    checks: list
    stack: dict[str, Any]
    v1g: Outcome
    v2g: Outcome
    envelope: pd.DataFrame
    firm: pd.DataFrame
    risk_v1g: ReadinessRisk
    risk_v2g: ReadinessRisk
    annual: Any
    premium_usd: float
    npv_usd: float
    option: Any
    verdict: str
    reasons: list[str] = field(default_factory=list)


def _program_value_usd(study_scenario: Scenario, v2g_plan, baseline_kw: np.ndarray,
                       firm: pd.DataFrame, degradation: float,
                       discharge_efficiency: float) -> float:
    """Yearly program value [$/yr]: payment × the program's capped hours × the kW the fleet
    delivers in its window, less the degradation of that energy.

    The kW is the plan's average reduction below the baseline in the events the horizon holds,
    or, for a program whose season the horizon misses, the firm capacity (90 %) in its window.
    Program hours are capped per year, so this is not scaled like the bill.
    """
    index = study_scenario.horizon.index
    net = v2g_plan.site_load_kw()
    total = 0.0
    for program in study_scenario.v2g.programs:
        called = event_hours(program, index)
        if called.any():
            kw = float(np.maximum(baseline_kw[called] - net[called], 0.0).mean())
        else:
            hours = list(range(program.window_start_hour, program.window_end_hour))
            kw = float(firm.loc[hours, "firm_kw"].mean())
        kwh = kw * program.cap_hours_per_year
        total += program.payment_per_kwh * kwh - degradation * kwh / discharge_efficiency
    return max(total, 0.0)


def _usd(x: float) -> str:
    """Whole dollars with the sign before the currency symbol: -$1,234."""
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def run_study(scenario: Scenario, samples: int = 200, seed: int = 7,
              disruptions: Disruptions | None = None) -> V2GStudy:
    """Run every step of the study (module docstring) and reach the verdict."""
    settings = scenario.v2g
    disruptions = disruptions or settings.disruptions
    checks = check_stack(scenario, has_program=bool(settings.programs),
                         has_export_price=settings.export_price_per_kwh is not None)
    stack = fleet_summary(checks)
    v1g_plan = optimal(scenario)
    v2g_plan = optimal_v2g(scenario, baseline=v1g_plan)
    v1g, v2g = evaluate(v1g_plan), evaluate(v2g_plan)
    # What V2G earns day to day (bill and export, no program) scales with time; programs are
    # capped per year and valued on their own.
    ops_plan = (optimal_v2g(replace(scenario, v2g=replace(settings, programs=())))
                if settings.programs else v2g_plan)
    ops = evaluate(ops_plan)
    terms = v2g_terms(scenario)
    envelope = operational_envelope(scenario, terms.discharge_kw)
    firm = firm_capacity(scenario, envelope, confidence=0.9)
    risk_v1g = readiness_risk(v1g_plan, disruptions, samples, seed)
    risk_v2g = readiness_risk(v2g_plan, disruptions, samples, seed)

    days = (scenario.horizon.end - scenario.horizon.start) / pd.Timedelta(days=1)
    scale = 365.0 / days
    eligible = terms.discharge_kw > 0
    deg = float(np.mean(terms.degradation_per_kwh[eligible])) if eligible.any() else 0.0
    eta_d = float(np.mean(terms.discharge_efficiency[eligible])) if eligible.any() else 1.0
    program_value = _program_value_usd(scenario, v2g_plan, v1g_plan.site_load_kw(), firm, deg,
                                       eta_d) if eligible.any() else 0.0
    annual = annual_value(
        v1g.bill.total * scale, ops.bill.total * scale,
        program_payments_usd=program_value,
        degradation_usd=ops_plan.info["objective_parts"]["degradation"] * scale,
    )
    ports = {p.charger_id for p in checks if p.discharge_kw > 0}  # the bidirectional ports used
    premium = settings.premium_per_port_usd * len(ports)
    value_npv = float(npv(annual.total_usd, settings.years, settings.discount_rate, premium))
    option = None
    if ports and settings.premium_per_port_usd > 0:
        per_port = max(annual.total_usd, 1.0) / len(ports)
        option = cross_check(OptionCase(
            annual_value_usd=per_port, volatility=PROGRAM_VOLATILITY,
            arrival_probability_per_year=PROGRAM_ARRIVAL_PER_YEAR,
            premium_now_usd=settings.premium_per_port_usd,
            premium_later_usd=settings.premium_per_port_usd * RETROFIT_FACTOR,
            discount_rate=settings.discount_rate, life_years=max(settings.years, 1),
            program_available_now=bool(settings.programs)))

    reasons: list[str] = []
    threshold = settings.readiness_risk_threshold
    risk_up = risk_v2g.probability - risk_v1g.probability
    if stack["eligible_pairs"] == 0:
        verdict = "not-ready"
        reasons.append(f"No vehicle × charger pair can discharge: {stack['sentence']}")
    elif risk_up > threshold:
        verdict = "distraction"
        reasons.append(
            f"V2G raises the chance a vehicle leaves below target from "
            f"{risk_v1g.probability:.1%} to {risk_v2g.probability:.1%} (threshold "
            f"+{threshold:.0%}): an operational disruption, not a revenue opportunity.")
    elif value_npv <= 0:
        verdict = "distraction"
        reasons.append(
            f"V2G adds {_usd(annual.total_usd)}/yr, which does not repay the "
            f"{_usd(premium)} bidirectional premium in {settings.years} years "
            f"(NPV {_usd(value_npv)} at {settings.discount_rate:.0%}).")
    else:
        verdict = "opportunity"
        reasons.append(
            f"V2G adds {_usd(annual.total_usd)}/yr over smart charging and repays the "
            f"{_usd(premium)} premium (NPV {_usd(value_npv)} over {settings.years} years).")
    if stack["eligible_pairs"]:
        mean_export = float(envelope.loc[envelope["discharge_kw"] > 0, "exportable_kwh"].mean())
        dwell = float(envelope.loc[envelope["discharge_kw"] > 0, "dwell_h"].mean())
        reasons.append(
            f"Eligible vehicles dwell {dwell:.1f} h on average with {mean_export:.0f} kWh of "
            f"exportable headroom per session; firm capacity at 90 % confidence peaks at "
            f"{firm['firm_kw'].max():,.0f} kW ({int(firm['firm_kw'].idxmax()):02d}:00).")
        if program_value > 0:
            reasons.append(
                f"Programs add ${program_value:,.0f}/yr at their yearly cap of called hours "
                "(net of battery wear).")
        reasons.append(stack["sentence"])
    if option is not None:
        o = option.lattice
        reasons.append(
            f"Real option: buying bidirectional ports now is worth "
            f"{_usd(o.option_value_of_buying_now_usd)} per port more than waiting "
            f"(lattice; Monte Carlo {_usd(option.lsmc.option_value_of_buying_now_usd)}); "
            f"decision: {o.decision}.")
    return V2GStudy(scenario, checks, stack, v1g, v2g, envelope, firm, risk_v1g, risk_v2g,
                    annual, premium, value_npv, option, verdict, reasons)


def study_json(study: V2GStudy) -> dict[str, Any]:
    """The V2G plan's summary (the plan contract) extended with the ``v2g`` object."""
    out = study.v2g.summary()
    plan = study.v2g.plan
    usable = study.scenario.session_arrays().usable_kwh
    vehicles = {s.vehicle_id for s in study.scenario.sessions}
    days = (study.scenario.horizon.end - study.scenario.horizon.start) / pd.Timedelta(days=1)
    cycles = float(np.sum(equivalent_full_cycles(plan.discharged_kwh(), usable))) * 365 / days
    option = study.option
    out["v2g"] = {
        "verdict": study.verdict,
        "reasons": study.reasons,
        "pairs": study.stack["pairs"],
        "eligible_pairs": study.stack["eligible_pairs"],
        "export_pairs": study.stack["export_pairs"],
        "missing_links": study.stack["missing_links"],
        "export_kwh": round(study.v2g.export_kwh, 3),
        "discharged_kwh": round(float(plan.discharged_kwh().sum()), 3),
        "max_export_kw": round(plan.info["max_export_kw"], 3),
        "export_limit_kw": plan.info["export_limit_kw"],
        "added_cycles_per_vehicle_year": round(cycles / max(len(vehicles), 1), 3),
        "readiness_risk": {"v1g": round(study.risk_v1g.probability, 4),
                           "v2g": round(study.risk_v2g.probability, 4)},
        "expected_shortfall_kwh": {"v1g": round(study.risk_v1g.expected_shortfall_kwh, 4),
                                   "v2g": round(study.risk_v2g.expected_shortfall_kwh, 4)},
        "annual_value": round(study.annual.total_usd, 2),
        "annual_value_waterfall": [[k, round(v, 2)] for k, v in study.annual.waterfall],
        "premium_usd": round(study.premium_usd, 2),
        "npv": round(study.npv_usd, 2),
        "option_value": (round(option.lattice.option_value_of_buying_now_usd, 2)
                         if option is not None else None),
        "option_value_lsmc": (round(option.lsmc.option_value_of_buying_now_usd, 2)
                              if option is not None else None),
        "v1g_bill": study.v1g.bill.summary(),
        "bill": study.v2g.bill.summary(),
        "readiness": study.v2g.readiness.to_dict(),
    }
    return out


def stack_frame(study: V2GStudy) -> pd.DataFrame:
    """The stack check as a table (one row per pair)."""
    return stack_table(study.checks)


