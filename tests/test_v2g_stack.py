"""V2G stack check: every link named, fleet totals."""

from dataclasses import replace

import pytest

from fleetcharge.domain import Charger, Interconnection, Vehicle, VehicleType
from fleetcharge.v2g.stack import check_pair, check_stack, fleet_summary, stack_table
from tests.conftest import build_scenario
from tests.test_optimal_strategy import two_period_tariff

BUS = VehicleType("bus", 200, max_ac_kw=19.2, max_dc_kw=60, bidirectional=True,
                  bidirectional_modes=("DC",))
AC_VAN = VehicleType("van", 60, max_ac_kw=11.5, max_dc_kw=0, bidirectional=True,
                     bidirectional_modes=("AC",), j3072_certified=True)
DC_BIDI = Charger("DC-1", 60, current_type="DC", bidirectional=True)
AC_BIDI_J = Charger("AC-1", 19.2, current_type="AC", bidirectional=True, j3072_certified=True)
AC_BIDI = Charger("AC-2", 19.2, current_type="AC", bidirectional=True)
AC_PLAIN = Charger("AC-3", 19.2)


@pytest.mark.parametrize("vtype, charger, export_kw, missing, kw", [
    (BUS, DC_BIDI, 100.0, (), 60.0),
    (BUS, DC_BIDI, 0.0, ("interconnection",), 60.0),
    (BUS, AC_BIDI_J, 100.0, ("vehicle", "j3072"), 0.0),
    (AC_VAN, AC_BIDI_J, 100.0, (), 11.5),
    (AC_VAN, AC_BIDI, 100.0, ("j3072",), 0.0),
    (AC_VAN, AC_PLAIN, 100.0, ("charger", "j3072"), 0.0),
    (replace(AC_VAN, bidirectional=False), AC_BIDI_J, 0.0, ("vehicle", "interconnection"), 0.0),
])
def test_links(vtype, charger, export_kw, missing, kw):
    check = check_pair(Vehicle("V", vtype), charger, export_kw, has_value_stream=True)
    assert check.missing == missing
    assert check.discharge_kw == pytest.approx(kw)
    assert check.can_export == (not missing)


def test_no_value_stream_means_no_discharge():
    check = check_pair(Vehicle("V", BUS), DC_BIDI, 100.0, has_value_stream=False)
    assert check.missing == ("value_stream",) and check.discharge_kw == 0.0


def test_fleet_totals_and_table():
    sc = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 10.0, 10.0)] * 3,
                        tariff=two_period_tariff())
    sc = replace(sc, site=replace(sc.site, interconnection=Interconnection("approved", 50.0)))
    checks = check_stack(sc)
    summary = fleet_summary(checks)
    assert summary["pairs"] == 3 and summary["export_pairs"] == 0
    assert summary["missing_links"]["vehicle"] == 3 and summary["missing_links"]["charger"] == 3
    assert "0 of 3 pairs can export" in summary["sentence"]
    assert "3 miss a bidirectional charger" in summary["sentence"]
    table = stack_table(checks)
    assert list(table["can"]) == ["nothing"] * 3
    assert not table["charger"].any() and table["interconnection"].all()


def test_applied_agreement_does_not_allow_export():
    assert Interconnection("applied", 200.0).export_allowed_kw == 0.0
    assert Interconnection("approved", 200.0).export_allowed_kw == 200.0
