"""Readiness risk Monte Carlo, the V2G study's verdicts, and its JSON contract."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fleetcharge.strategies.baseline import unmanaged
from fleetcharge.strategies.optimal import optimal
from fleetcharge.v2g.programs import ELRP_LIKE
from fleetcharge.domain import Disruptions
from fleetcharge.v2g.risk import readiness_risk
from fleetcharge.v2g.study import run_study, study_json
from tests.test_v2g_strategy import bus_depot

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = {"verdict", "reasons", "pairs", "eligible_pairs", "missing_links", "export_kwh",
            "max_export_kw", "export_limit_kw", "added_cycles_per_vehicle_year",
            "readiness_risk", "annual_value", "npv", "option_value", "bill", "readiness"}


def test_no_disruption_no_risk_and_late_charging_is_riskier():
    sc = bus_depot()
    calm = Disruptions(p_late=0.0, p_early=0.0, route_sigma=0.0)
    assert readiness_risk(optimal(sc), calm, samples=20).probability == 0.0
    early = Disruptions(p_late=0.0, p_early=1.0, early_mean_min=240.0, route_sigma=0.0)
    asap = readiness_risk(unmanaged(sc), early, samples=100)
    late = readiness_risk(optimal(sc), early, samples=100)
    assert late.probability >= asap.probability
    assert late.expected_shortfall_kwh >= asap.expected_shortfall_kwh


def test_heavier_routes_are_made_up_from_spare_capacity():
    sc = bus_depot()
    heavy = Disruptions(p_late=0.0, p_early=0.0, route_sigma=0.3)
    # 17 h dwells on 60 kW ports leave ample room to catch up: nobody misses
    assert readiness_risk(optimal(sc), heavy, samples=50).probability == 0.0


def test_study_opportunity_with_a_paying_program():
    study = run_study(bus_depot(programs=(ELRP_LIKE,)), samples=40)
    data = study_json(study)
    assert CONTRACT <= data["v2g"].keys()
    assert data["v2g"]["verdict"] == "opportunity"
    assert data["v2g"]["eligible_pairs"] == 2 and data["v2g"]["pairs"] == 3
    assert data["v2g"]["missing_links"] == {"charger": 1}
    assert data["v2g"]["annual_value"] > 0
    assert data["strategy"] == "v2g" and "bill" in data and "readiness" in data


def test_study_not_ready_names_the_missing_links():
    sc = bus_depot(bidirectional=(False, False, False))
    data = study_json(run_study(sc, samples=20))["v2g"]
    assert data["verdict"] == "not-ready"
    assert "3 miss a bidirectional charger" in data["reasons"][0]


def test_study_distraction_when_nothing_pays_for_the_premium():
    sc = bus_depot()
    sc = replace(sc, v2g=replace(sc.v2g, premium_per_port_usd=50_000.0))
    data = study_json(run_study(sc, samples=20))["v2g"]
    assert data["verdict"] == "distraction"
    assert "does not repay" in data["reasons"][0]


def _cli_verdict(example: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "fleetcharge.cli", "v2g", str(ROOT / "examples" / example /
                                                         "scenario.yaml"),
         "--json", "--samples", "40"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["v2g"]


@pytest.mark.parametrize("example, verdict, reason", [
    ("school-buses-v2g", "opportunity", "Programs add"),
    ("delivery-vans-v2g", "distraction", "does not repay"),
])
def test_bundled_examples_get_opposite_verdicts(example, verdict, reason):
    data = _cli_verdict(example)
    assert data["verdict"] == verdict
    assert any(reason in r for r in data["reasons"])


def test_disruptions_are_configurable_in_the_scenario(tmp_path):
    import shutil

    from fleetcharge.scenario import load_scenario

    src = ROOT / "examples" / "delivery-vans-v2g"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    text = (tmp_path / "scenario.yaml").read_text()
    text += "  disruptions: {p_late: 0.5, late_mean_min: 60, p_early: 0.0, route_sigma: 0.0}\n"
    (tmp_path / "scenario.yaml").write_text(text)
    d = load_scenario(tmp_path / "scenario.yaml").v2g.disruptions
    assert (d.p_late, d.late_mean_min, d.p_early, d.early_mean_min, d.route_sigma) == (
        0.5, 60.0, 0.0, 30.0, 0.0)
    (tmp_path / "scenario.yaml").write_text(text.replace("p_late: 0.5", "p_late: 1.5"))
    from fleetcharge.errors import InputError

    with pytest.raises(InputError, match=r"v2g\.disruptions\.p_late"):
        load_scenario(tmp_path / "scenario.yaml")
