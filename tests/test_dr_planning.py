"""Event-aware planning and the opt-in decision, on small hand-solvable depots.

Depot A: two vans plugged 21:00–07:00 (all off-peak, $0.10/kWh) need 20 kWh each (10 kW
chargers), building 2 kW, $10/kW of demand. Without events the plan is flat: 40 kWh / 10 h =
4 kW charging, a 6 kW site peak. A curtail to 5 kW over 22:00–02:00 with a payment of ρ per kWh
reduced (a price adder ρ in the window): with w kW charging in the window and r = (40 − 4w)/6 kW
in the other 6 h, the cost 10 · (2 + r) + 4ρw falls with w while ρ < 5/3 $/kWh, so
- ρ = $0.50: w = 3 kW (the limit), peak 2 + 28/6 = 6.667 kW: +$6.67 of demand charge, 4 kWh
  reduced below the 6 kW counterfactual, earning $2;
- ρ = $5: w = 0, peak 2 + 40/6 = 8.667 kW: +$26.67, 16 kWh reduced, earning $80.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fleetcharge.accounting import evaluate
from fleetcharge.domain import Charger, Interconnection, VehicleType
from fleetcharge.dr.events import DREvent
from fleetcharge.dr.planning import (
    EventTerms,
    continue_plan,
    decide_live,
    plan_with_events,
    plan_with_terms,
    run_dr_study,
)
from fleetcharge.dr.programs import DRProgram
from fleetcharge.strategies.rolling import LiveState, plugged_from_sessions, replan
from tests.conftest import build_scenario
from tests.test_optimal_strategy import two_period_tariff

TZ = "America/Los_Angeles"
NIGHT = ("2025-03-03 22:00", "2025-03-04 02:00")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def program(name="night", **kw) -> DRProgram:
    fields = dict(months=frozenset(range(1, 13)), window_start_hour=0, window_end_hour=24,
                  weekdays_only=False, baseline="counterfactual")
    fields.update(kw)
    return DRProgram(name, **fields)


def depot_a():
    sessions = [("2025-03-03 21:00", "2025-03-04 07:00", 20.0, 10.0)] * 2
    return build_scenario(sessions, building_kw=2.0, tariff=two_period_tariff())


def curtail(level=5.0, name="night", **kw) -> DREvent:
    return DREvent("ev", name, ts(NIGHT[0]), ts(NIGHT[1]), "curtail", level, **kw)


def window(out, event) -> np.ndarray:
    return out.site_load_kw.to_numpy()[event.mask(out.site_load_kw.index)]


def test_curtail_accepted_and_planned_load_obeys_it():
    sc, event = depot_a(), curtail()
    study = run_dr_study(sc, [event], {"night": program(payment_per_kwh=5.0)})
    (d,) = study.decisions
    assert d.participate, d.reason
    out = evaluate(d.plan)
    assert window(out, event).max() <= 5.0 + 1e-6
    assert out.readiness.met == 2
    # $5/kWh: charging leaves the window entirely (the price adder beats the demand charge):
    # 16 kWh reduced below the 6 kW plan → $80; 40 kWh over 6 h → peak 8.667 kW, +$26.67.
    assert window(out, event) == pytest.approx([2.0] * 16, abs=1e-6)
    assert d.settlement.reduced_kwh == pytest.approx(16.0, abs=1e-4)
    assert d.settlement.payment_usd == pytest.approx(80.0, abs=1e-3)
    assert d.extra_bill_usd == pytest.approx(10 * 40 / 6 - 10 * 4, abs=0.01)
    assert d.reason == "accepted: earnings $80.00 > extra bill $26.67 (demand charge +$26.67)"
    assert study.final.bill.total == pytest.approx(study.base.bill.total + 26.67, abs=0.01)


def test_declined_when_earnings_do_not_cover_the_extra_demand_charge():
    sc, event = depot_a(), curtail()
    (d,) = run_dr_study(sc, [event], {"night": program(payment_per_kwh=0.5)}).decisions
    assert not d.participate and d.settlement is None
    assert d.if_taken.reduced_kwh == pytest.approx(4.0, abs=1e-4)
    assert d.extra_bill_usd == pytest.approx(20 / 3, abs=0.01)
    assert d.reason == "declined: earnings $2.00 < extra cost $6.67 (demand charge +$6.67)"


def test_penalty_for_declining_makes_taking_part_worth_it():
    sc, event = depot_a(), curtail()
    p = program(payment_per_kwh=0.5, penalty_per_kwh=2.0, opt_out="penalty")
    (d,) = run_dr_study(sc, [event], {"night": p}).decisions
    # declining: the 6 kW plan is 1 kW over the level for 4 h → 4 kWh × $2 = $8 penalty
    assert d.participate
    assert d.reason.startswith("accepted: declining would cost $8.00 in penalties; taking part: "
                               "earnings $2.00, bill +$6.67")
    # Too little notice makes declining free again. Notified at 21:55, the 21–22 h hour was
    # already charged at 4 kW: the other 24 kWh go into 02–07 h → 2 + 24/5 = 6.8 kW, +$8.00.
    short = curtail(received_at=ts("2025-03-03 21:55"))
    (d,) = run_dr_study(sc, [short], {"night": dataclasses.replace(p, notice_minutes=30)}
                        ).decisions
    assert not d.participate and d.settlement is None
    assert d.reason == ("declined: earnings $2.00 < extra cost $8.00 (demand charge +$8.00); "
                        "declining is free: notice 5.0 min is less than the 30 min the program "
                        "guarantees")


def depot_b():
    """One van plugged 22:00–02:00 needing 30 kWh on a 10 kW charger; building 2 kW."""
    return build_scenario([("2025-03-03 22:00", "2025-03-04 02:00", 30.0, 10.0)],
                          building_kw=2.0, tariff=two_period_tariff())


def test_never_opts_in_when_a_departure_would_miss_its_target():
    # Curtailing to the building's 2 kW over the van's whole dwell: it leaves at its arrival SOC
    # 0.9 − 0.9 × 30 / 60 = 45 % instead of 90 %, whatever the program pays; declining costs the
    # penalty on 7.5 kW × 4 h = 30 kWh above the level.
    p = program(payment_per_kwh=100.0, penalty_per_kwh=1.0, opt_out="penalty")
    (d,) = run_dr_study(depot_b(), [curtail(2.0)], {"night": p}).decisions
    assert not d.participate
    assert d.at_risk == ("V0 would leave at 45 % instead of 90 %",)
    assert d.reason == ("declined: V0 would leave at 45 % instead of 90 %; declining costs the "
                        "program's $30.00 penalty")
    assert d.settlement.penalty_usd == pytest.approx(30.0, abs=1e-3)


def test_reduce_event_limits_import_to_baseline_minus_n():
    sc = depot_a()
    event = DREvent("r", "night", ts(NIGHT[0]), ts(NIGHT[1]), "reduce", 1.5)
    (d,) = run_dr_study(sc, [event], {"night": program(payment_per_kwh=0.01)}).decisions
    assert d.participate is False  # $0.06 does not pay for the extra demand charge
    load = window(evaluate(d.plan), event)
    assert load.max() <= 6.0 - 1.5 + 1e-6  # counterfactual baseline 6 kW
    assert d.if_taken.short_kwh == pytest.approx(0.0, abs=1e-4)


def test_price_event_moves_load_out_of_the_window():
    # $2/kWh > 5/3: charging leaves the window; 16 kWh reduced → $32 for +$26.67 demand charge
    sc = depot_a()
    event = DREvent("p", "night", ts(NIGHT[0]), ts(NIGHT[1]), "price", 2.0)
    study = run_dr_study(sc, [event], {"night": program()})
    (d,) = study.decisions
    assert d.participate
    assert window(study.base, event) == pytest.approx([6.0] * 16, abs=1e-6)
    assert window(evaluate(d.plan), event) == pytest.approx([2.0] * 16, abs=1e-6)
    assert d.settlement.payment_usd == pytest.approx(32.0, abs=1e-3)
    assert d.net_usd == pytest.approx(32.0 - 80 / 3, abs=0.01)
    # at $1/kWh moving charging out costs more demand charge than it earns: the plan stays
    (d,) = run_dr_study(sc, [dataclasses.replace(event, value=1.0)], {"night": program()}
                        ).decisions
    assert d.participate and d.reason == "accepted: earnings $0.00 at no extra cost on the bill"


def test_continue_plan_keeps_the_past_and_replans_the_rest():
    sc = depot_a()
    base = plan_with_terms(sc)
    k = int(np.searchsorted(sc.horizon.index, ts("2025-03-04 00:00")))
    same = continue_plan(base, k, EventTerms.none(sc.horizon.n_steps))
    a, b = evaluate(base), evaluate(same)
    assert np.allclose(a.site_load_kw.to_numpy()[:k], b.site_load_kw.to_numpy()[:k])
    assert b.bill.total == pytest.approx(a.bill.total, abs=0.01) and b.readiness.met == 2
    assert same.info["replanned_from"] == ts("2025-03-04 00:00").isoformat()


def test_event_notified_mid_night_is_planned_from_then():
    # Notified 00:50 for 01:00–02:00: the plan up to 01:00 is what the depot already did.
    sc = depot_a()
    event = DREvent("late", "night", ts("2025-03-04 01:00"), ts("2025-03-04 02:00"), "curtail",
                    2.0, received_at=ts("2025-03-04 00:50"))
    study = run_dr_study(sc, [event], {"night": program(payment_per_kwh=5.0)})
    (d,) = study.decisions
    assert d.participate and d.decided_at == ts("2025-03-04 01:00")
    k = int(np.searchsorted(sc.horizon.index, ts("2025-03-04 01:00")))
    assert np.allclose(study.final.site_load_kw.to_numpy()[:k],
                       study.base.site_load_kw.to_numpy()[:k])
    assert window(study.final, event) == pytest.approx([2.0] * 4, abs=1e-6)
    assert study.final.readiness.met == 2


def test_cancelled_event_is_not_planned():
    (d,) = run_dr_study(depot_a(), [curtail(cancelled=True)], {"night": program()}).decisions
    assert not d.participate and d.reason == "cancelled by the utility: nothing to do"


def test_replan_honours_accepted_events_and_decides_live():
    sc = depot_a()
    now = ts("2025-03-03 21:00")
    plugged, expected = plugged_from_sessions(sc.sessions, now)
    event = curtail()
    programs = {"night": program(payment_per_kwh=5.0)}
    state = LiveState(dataclasses.replace(sc, metadata={"dr_programs": programs}), plugged,
                      expected, building_forecast_kw=sc.site.building_load_kw)
    free = evaluate(replan(state, now, horizon_hours=15))
    held = evaluate(replan(dataclasses.replace(state, dr_events=(event,)), now, horizon_hours=15))
    assert window(free, event).max() == pytest.approx(6.0, abs=1e-6)
    assert window(held, event).max() <= 5.0 + 1e-6 and held.readiness.met == 2
    d = decide_live(state, event, now, horizon_hours=15)
    assert d.participate and d.reason.startswith("accepted: earnings $80.00 > extra bill $26.67")
    assert window(evaluate(d.plan), event).max() <= 5.0 + 1e-6
    # the van of depot B cannot take a full curtailment of its dwell
    sc_b = depot_b()
    now_b = ts("2025-03-03 21:00")
    state_b = LiveState(sc_b, *plugged_from_sessions(sc_b.sessions, now_b),
                        building_forecast_kw=sc_b.site.building_load_kw)
    d = decide_live(state_b, curtail(2.0), now_b, programs, horizon_hours=15)
    assert not d.participate and d.reason == "declined: V0 would leave at 45 % instead of 90 %"


def v2g_depot():
    """Depot A with a bidirectional DC pair, an export agreement and the vans full by 17:00."""
    sc = build_scenario([("2025-03-03 16:00", "2025-03-04 07:00", 5.0, 10.0)], building_kw=2.0,
                        tariff=two_period_tariff())
    vt = VehicleType("bus", 60.0, max_ac_kw=10.0, max_dc_kw=10.0, charge_efficiency=0.9,
                     bidirectional=True, discharge_efficiency=0.9)
    charger = Charger("C0", 10.0, current_type="DC", bidirectional=True)
    vehicle = dataclasses.replace(sc.vehicles[0], type=vt)
    site = dataclasses.replace(sc.site, interconnection=Interconnection("approved", 20.0, True))
    return dataclasses.replace(sc, chargers=(charger,), vehicle_types=(vt,), vehicles=(vehicle,),
                               site=site)


def test_v2g_exports_in_a_paying_event_where_the_pair_is_eligible():
    sc = v2g_depot()
    p = program(payment_per_kwh=2.0, export_payment_per_kwh=2.0)
    event = DREvent("x", "night", ts("2025-03-03 17:00"), ts("2025-03-03 18:00"), "price", 2.0)
    study = run_dr_study(sc, [event], {"night": p})
    (d,) = study.decisions
    assert d.participate and d.plan.strategy == "v2g"
    s = d.settlement
    # baseline: the building's 2 kW (charging waits for off-peak); discharge at 10 kW exports
    # 8 kW for an hour → 2 kWh reduced + 8 kWh exported, $2 each
    assert s.reduced_kwh == pytest.approx(2.0, abs=1e-3)
    assert s.exported_kwh == pytest.approx(8.0, abs=1e-3)
    assert s.payment_usd == pytest.approx(20.0, abs=1e-2)
    assert d.plan.discharged_kwh().sum() == pytest.approx(10.0, abs=1e-3)
    assert evaluate(d.plan).readiness.met == 1


def test_plan_with_events_ignores_events_outside_the_horizon():
    sc = depot_a()
    far = DREvent("far", "night", ts("2025-03-10 22:00"), ts("2025-03-10 23:00"), "curtail", 0.0)
    plan = plan_with_events(sc, [far], {"night": program()})
    assert plan.info["dr_events"] == []
