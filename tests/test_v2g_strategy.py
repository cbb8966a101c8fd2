"""Strategy ``v2g`` end to end on a small depot: stack-aware, bill-consistent, ready on time."""

from dataclasses import replace

import numpy as np
import pandas as pd

import pytest

from fleetcharge.accounting import evaluate
from fleetcharge.domain import Charger, Interconnection, V2GSettings, VehicleType
from fleetcharge.strategies.optimal import optimal
from fleetcharge.strategies.v2g import netting_note, optimal_v2g
from fleetcharge.tariff import EnergyCharge, EnergyPeriod, EnergyTier, Tariff
from fleetcharge.v2g.programs import ELRP_LIKE
from tests.conftest import build_scenario
from tests.test_optimal_strategy import two_period_tariff

BUS = VehicleType("bus", 150, max_ac_kw=19.2, max_dc_kw=60, charge_efficiency=0.92,
                  bidirectional=True, bidirectional_modes=("DC",), chemistry="LFP")


def bus_depot(export_kw: float = 50.0, status: str = "approved", programs=(),
              bidirectional=(True, True, False)):
    """Three buses plugged in over a summer weekday evening (on-peak 16–21 h), DC ports."""
    sessions = [("2025-07-01 13:00", "2025-07-02 06:00", 60.0, 60.0)] * 3
    sc = build_scenario(sessions, start="2025-07-01 12:00", end="2025-07-02 12:00",
                        charger_kw=60.0, building_kw=20.0, usable_kwh=150.0,
                        tariff=two_period_tariff(export_rate_per_kwh=0.05))
    chargers = tuple(Charger(c.id, 60.0, current_type="DC", bidirectional=b)
                     for c, b in zip(sc.chargers, bidirectional))
    vehicles = tuple(replace(v, type=BUS, min_soc=0.2) for v in sc.vehicles)
    arrival = 0.9 - 0.92 * 60.0 / 150.0
    sessions = tuple(replace(s, arrival_soc=arrival, max_kw=60.0) for s in sc.sessions)
    site = replace(sc.site, interconnection=Interconnection(status, export_kw))
    return replace(sc, chargers=chargers, vehicles=vehicles, vehicle_types=(BUS,),
                   sessions=sessions, site=site, v2g=V2GSettings(programs=tuple(programs)))


def test_v2g_plan_is_consistent_with_the_bill_and_the_stack():
    sc = bus_depot(programs=(ELRP_LIKE,))
    plan = optimal_v2g(sc)
    out = evaluate(plan)
    parts = plan.info["objective_parts"]
    assert plan.info["solver_status"] == "Optimal"
    # the bill engine sees energy, demand and export credit; degradation and programs are not
    # on the utility bill
    bill_part = parts["energy"] + parts["demand"] + parts["export_credit"]
    assert out.bill.total - out.bill.fixed == pytest.approx(bill_part, abs=0.01)
    assert parts["degradation"] >= 0 and parts["program"] <= 0
    dis = plan.discharge_kw.toarray()
    assert dis[2].sum() == 0, "bus 3's charger is not bidirectional"
    assert dis[:2].sum() > 0, "buses 1–2 discharge into the on-peak window"
    assert out.readiness.met == out.readiness.departures
    assert plan.info["max_export_kw"] <= 50.0 + 1e-6


def test_without_an_agreement_there_is_no_export_and_v2g_still_helps_behind_the_meter():
    sc = bus_depot(status="applied")
    plan = optimal_v2g(sc)
    out = evaluate(plan)
    assert out.export_kwh == pytest.approx(0.0, abs=1e-6)
    v1g = evaluate(optimal(sc))
    assert out.bill.total <= v1g.bill.total + 1e-6
    assert plan.discharged_kwh().sum() > 0


def test_ineligible_fleet_reproduces_the_v1g_plan():
    sc = bus_depot(bidirectional=(False, False, False))
    v2g, v1g = optimal_v2g(sc), optimal(sc)
    assert v2g.discharged_kwh().sum() == 0
    assert v2g.info["objective"] == pytest.approx(v1g.info["objective"], rel=1e-6)


def test_soc_stays_within_floor_and_battery():
    sc = bus_depot(programs=(ELRP_LIKE,))
    from fleetcharge.accounting import plan_frame

    frame = plan_frame(optimal_v2g(sc))
    assert frame["soc"].min() >= 0.2 - 1e-6
    assert frame["soc"].max() <= 1.0 + 1e-6


def test_export_credit_above_the_import_price_is_reported_not_hidden():
    # Flat $0.10/kWh import, no demand charge, $3/kWh export credit 19–20 h, 10 kW agreement:
    # the LP can "export" one van's discharge while importing for the other in the same step,
    # which a site meter nets. The plan must say so, with the kWh and dollars it overstates.
    zero = tuple(tuple(0 for _ in range(24)) for _ in range(12))
    flat = Tariff(name="flat", energy=EnergyCharge((EnergyPeriod((EnergyTier(0.10),), "all"),),
                                                   zero, zero))
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 10.0, 10.0),
                         ("2025-03-03 18:00", "2025-03-04 06:00", 40.0, 10.0)], tariff=flat)
    vt = VehicleType("van", 60.0, max_ac_kw=10.0, max_dc_kw=50.0, charge_efficiency=0.9,
                     bidirectional=True, bidirectional_modes=("AC",), j3072_certified=True)
    chargers = tuple(Charger(f"C{i}", 10.0, bidirectional=True, j3072_certified=True)
                     for i in range(2))
    local = sc.horizon.index.tz_convert("America/Los_Angeles")
    credit = pd.Series(np.where((local.hour == 19) & (local.day == 3), 3.0, 0.0),
                       index=sc.horizon.index)
    sc = replace(sc, chargers=chargers, vehicle_types=(vt,),
                 vehicles=tuple(replace(v, type=vt) for v in sc.vehicles),
                 site=replace(sc.site, interconnection=Interconnection("approved", 10.0)),
                 v2g=V2GSettings(export_price_per_kwh=credit))
    plan = optimal_v2g(sc)
    [note] = [n for n in plan.info["approximations"] if "export credit above" in n]
    assert not plan.info["exact"]
    assert "10.00 kWh" in note  # one van's 10 kW for the hour at 19–20 h, netted away
    # below the import price there is nothing to report
    assert netting_note(np.array([5.0, 0.0]), np.array([0.0, 5.0]), np.array([0.1, 0.1]),
                        np.array([0.05, 0.05]), 0.25) is None
    assert netting_note(np.array([4.0]), np.array([6.0]), np.array([0.1]), np.array([3.0]),
                        0.25) == ("export credit above the import price: the plan imports and "
                                  "exports in the same step in 1 steps (1.00 kWh), which a site "
                                  "meter nets; export and its credit are overstated by up to "
                                  "1.00 kWh and $2.90")
