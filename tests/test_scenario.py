"""The scenario input edge: YAML + CSV → Scenario, and every rejection it must make."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fleetcharge.errors import ConsistencyError, InputError
from fleetcharge.scenario import load_scenario, scenario_from_sessions

DATA = Path(__file__).parent / "data"
MINI = DATA / "mini"
EXAMPLE = Path(__file__).parents[1] / "examples" / "portland-delivery-50" / "scenario.yaml"
TZ = "America/Los_Angeles"


def case(
    tmp_path: Path,
    edit: Callable[[dict], None] | None = None,
    *,
    sessions: str | None = None,
    trips: str | None = None,
    building: str | None = None,
) -> Path:
    """A copy of tests/data/mini with the YAML edited and/or CSVs replaced; returns the YAML."""
    d = tmp_path / "case"
    shutil.copytree(MINI, d)
    doc = yaml.safe_load((d / "scenario.yaml").read_text())
    if trips is not None:
        doc.pop("sessions_csv")
        doc["trips_csv"] = "trips.csv"
        (d / "trips.csv").write_text(trips)
    if sessions is not None:
        (d / "sessions.csv").write_text(sessions)
    if building is not None:
        (d / "building.csv").write_text(building)
    if edit is not None:
        edit(doc)
    (d / "scenario.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return d / "scenario.yaml"


HEADER = "vehicle_id,arrival,departure,energy_kwh,arrival_soc,target_soc,max_kw,charger_id\n"


def by_id(scenario, sid):
    return next(s for s in scenario.sessions if s.id == sid)


# --- the happy path -------------------------------------------------------------------------


def test_mini_fills_energy_soc_and_power_consistently():
    sc = load_scenario(MINI / "scenario.yaml")
    assert sc.name == "mini-depot"
    assert [c.id for c in sc.chargers] == ["DC-1", "L2-01", "L2-02"]
    assert sc.charger("L2-02").min_kw == pytest.approx(1.44)
    assert [v.id for v in sc.vehicles] == ["BUS-1", "V01", "V02", "FLOAT"]
    assert sc.vehicle("BUS-1").target_soc == 0.95 and sc.vehicle("V01").target_soc == 0.9
    assert sc.horizon.n_steps == 2 * 96
    assert sc.tariff is not None and not isinstance(sc.tariff, str)

    bus = by_id(sc, "BUS-1/1")  # energy given, per-vehicle target 0.95
    assert (bus.charger_id, bus.energy_kwh, bus.target_soc) == ("DC-1", 120, 0.95)
    assert bus.arrival_soc == pytest.approx(0.95 - 0.9 * 120 / 200)
    assert bus.max_kw == 50  # min(DC charger 50, bus DC 60)

    v1 = by_id(sc, "V01/1")  # SOC given: E = (target - arrival)·U/η
    assert v1.charger_id == "L2-01"
    assert v1.energy_kwh == pytest.approx((0.9 - 0.3) * 60 / 0.9)
    assert v1.max_kw == pytest.approx(11.3)  # on-board AC charger below the 19.2 kW port

    v2 = by_id(sc, "V02/1")  # explicit target, session cap, offset timestamps
    assert v2.target_soc == 0.8 and v2.arrival_soc == pytest.approx(0.8 - 0.9 * 30 / 60)
    assert v2.max_kw == pytest.approx(7.2)
    assert v2.departure == pd.Timestamp("2025-03-04 06:30", tz=TZ)

    fl = by_id(sc, "FLOAT/1")  # arrives above its default target: needs nothing
    assert fl.energy_kwh == 0 and fl.arrival_soc == fl.target_soc == 0.95
    assert fl.charger_id == "DC-1"  # first free compatible charger in declared order
    assert fl.max_kw == 50

    for s in sc.sessions:  # the Session invariant
        v = sc.vehicle(s.vehicle_id)
        assert s.target_soc == pytest.approx(
            s.arrival_soc + v.type.charge_efficiency * s.energy_kwh / v.type.usable_kwh)
        assert s.arrival.tzinfo is not None and s.arrival.unit == "ns"
    assert sc.metadata["warnings"] == [] and sc.metadata["input"] == "sessions"
    assert sc.metadata["kwh_per_mile"] == {"van": 0.5}


def test_naive_and_offset_timestamps_mean_the_same_instant(tmp_path):
    naive = HEADER + "V01,2025-03-03 18:00,2025-03-04 06:30,10,,,,\n"
    offset = HEADER + "V01,2025-03-04T02:00:00Z,2025-03-04T06:30:00-08:00,10,,,,\n"
    a = load_scenario(case(tmp_path / "a", sessions=naive)).sessions[0]
    b = load_scenario(case(tmp_path / "b", sessions=offset)).sessions[0]
    assert (a.arrival, a.departure) == (b.arrival, b.departure)
    assert str(b.arrival.tz) == TZ


def test_partial_step_arrival_is_kept_and_mapped_to_a_fraction():
    sc = load_scenario(MINI / "scenario.yaml")
    arrays = sc.session_arrays()
    i = [s.id for s in sc.sessions].index("BUS-1/1")
    assert sc.sessions[i].arrival == pd.Timestamp("2025-03-03 17:40", tz=TZ)
    assert arrays.first[i] == 17 * 4 + 2  # the 17:30 step
    assert arrays.first_fraction[i] == pytest.approx(5 / 15)


def test_building_load_coarser_is_repeated_and_finer_is_averaged(tmp_path):
    sc = load_scenario(MINI / "scenario.yaml")  # hourly data on a 15-minute grid
    kw = sc.building_kw()
    assert kw.shape == (192,)
    assert kw[: 8 * 4].tolist() == [20.0] * 32 and kw[8 * 4: 9 * 4].tolist() == [30.0] * 4

    idx = pd.date_range("2025-03-03", "2025-03-05", freq="5min", inclusive="left", tz=TZ)
    fine = np.tile([10.0, 20.0, 60.0], len(idx) // 3)
    text = pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%dT%H:%M:%S%z"), "kw": fine}).to_csv(
        index=False)
    sc2 = load_scenario(case(tmp_path, building=text))
    assert np.allclose(sc2.building_kw(), 30.0)


def test_clipping_pro_rates_energy_and_drops_sessions_outside(tmp_path):
    text = HEADER + (
        "V01,2025-03-02 18:00,2025-03-03 06:00,24,,,,\n"  # half before the horizon
        "V01,2025-03-04 18:00,2025-03-05 06:00,24,,,,\n"  # half after
        "V02,2025-03-01 18:00,2025-03-02 06:00,24,,,,\n"  # wholly before: dropped
    )
    sc = load_scenario(case(tmp_path, sessions=text))
    assert len(sc.sessions) == 2
    first, last = sorted(sc.sessions, key=lambda s: s.arrival)
    assert first.arrival == sc.horizon.start and first.energy_kwh == pytest.approx(12)
    assert first.target_soc == 0.9 and first.arrival_soc == pytest.approx(0.9 - 0.9 * 12 / 60)
    assert last.departure == sc.horizon.end and last.energy_kwh == pytest.approx(12)
    assert last.arrival_soc == pytest.approx(0.9 - 0.9 * 24 / 60)
    assert last.target_soc == pytest.approx(0.9 - 0.9 * 12 / 60)
    meta = sc.metadata
    assert [(m["row"], m["energy_kwh"], m["energy_kwh_inside"]) for m in
            meta["clipped_sessions"]] == [(2, 24, pytest.approx(12)), (3, 24, pytest.approx(12))]
    assert [(m["id"], m["row"]) for m in meta["dropped_sessions"]] == [("V02/1", 4)]


def test_charger_assignment_prefers_csv_then_home_then_first_free(tmp_path):
    text = HEADER + (
        "V01,2025-03-03 08:00,2025-03-03 12:00,5,,,,L2-02\n"  # explicit beats home L2-01
        "FLOAT,2025-03-03 08:00,2025-03-03 09:30,5,,,,\n"  # DC-1 is free until BUS-1 comes
        "BUS-1,2025-03-03 10:00,2025-03-03 13:00,5,,,,\n"  # home DC-1 (fixed first)
        "FLOAT,2025-03-03 13:00,2025-03-03 15:00,5,,,,\n"  # DC-1 free again at 13:00
    )
    sc = load_scenario(case(tmp_path / "b", sessions=text))
    got = {(s.vehicle_id, s.arrival.hour): s.charger_id for s in sc.sessions}
    assert got == {("V01", 8): "L2-02", ("FLOAT", 8): "DC-1", ("BUS-1", 10): "DC-1",
                   ("FLOAT", 13): "DC-1"}


def test_first_free_charger_skips_ports_a_fixed_session_will_need(tmp_path):
    # BUS-1 holds DC-1 from 10:00; FLOAT 09:00–11:00 must skip it and take L2-01 (V01 is away)
    text = HEADER + (
        "BUS-1,2025-03-03 10:00,2025-03-03 13:00,5,,,,\n"
        "FLOAT,2025-03-03 09:00,2025-03-03 11:00,5,,,,\n"
    )
    sc = load_scenario(case(tmp_path, sessions=text))
    assert by_id(sc, "FLOAT/1").charger_id == "L2-01"
    assert by_id(sc, "FLOAT/1").max_kw == pytest.approx(11.3)


def test_no_free_charger_names_the_row_and_the_fix(tmp_path):
    def two_ports(doc):
        doc["chargers"] = doc["chargers"][:1]
        doc["vehicles"] = [{"id": "A", "type": "van"}, {"id": "B", "type": "van"}]

    text = HEADER + ("A,2025-03-03 18:00,2025-03-04 06:00,5,,,,\n"
                     "B,2025-03-03 19:00,2025-03-04 05:00,5,,,,\n")
    with pytest.raises(ConsistencyError,
                       match=r"sessions\.csv: row 3: no free charger for vehicle 'B'.*add "
                             r"chargers.*charger_id"):
        load_scenario(case(tmp_path, two_ports, sessions=text))


# --- rejected inputs: each names the file, the row or field, and the fix ------------------


def _sessions_case(text: str) -> Callable[[Path], Path]:
    return lambda tmp: case(tmp, sessions=text)


def _yaml_case(edit: Callable[[dict], None]) -> Callable[[Path], Path]:
    return lambda tmp: case(tmp, edit)


def _set(path: str, value) -> Callable[[dict], None]:
    def edit(doc):
        *parents, last = re.findall(r"[^.\[\]]+", path)
        node = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return edit


_DELETE = object()
GOOD = "V01,2025-03-03 18:00,2025-03-04 06:00,10,,,,\n"

REJECTIONS = {
    "vehicle overlap": (
        _sessions_case(HEADER + GOOD + "V02,2025-03-03 18:00,2025-03-04 06:00,10,,,,\n"
                       + "V01,2025-03-04 05:00,2025-03-04 08:00,10,,,,\n"),
        ConsistencyError,
        r"sessions\.csv: rows 2 and 4: vehicle 'V01' is used by two sessions at once: row 2 .* "
        r"and row 4 .*fix the times or the vehicle_id",
    ),
    "charger overlap": (
        _sessions_case(HEADER + GOOD + "V02,2025-03-03 20:00,2025-03-04 06:00,10,,,,L2-01\n"),
        ConsistencyError,
        r"sessions\.csv: rows 2 and 3: charger 'L2-01' is used by two sessions at once.*"
        r"another charger_id",
    ),
    "departure before arrival": (
        _sessions_case(HEADER + "V01,2025-03-04 06:00,2025-03-04 06:00,10,,,,\n"),
        InputError, r"sessions\.csv: row 2: departure .* is not after arrival.*fix the times",
    ),
    "energy above capacity": (
        _sessions_case(HEADER + "V01,2025-03-03 18:00,2025-03-04 06:00,61,,,,\n"),
        InputError,
        r"sessions\.csv: row 2, column energy_kwh: energy_kwh 61 is more than vehicle 'V01' can "
        r"take.*lower energy_kwh",
    ),
    "target below arrival": (
        _sessions_case(HEADER + "V01,2025-03-03 18:00,2025-03-04 06:00,,0.8,0.5,,\n"),
        InputError, r"sessions\.csv: row 2, column target_soc: target_soc 0\.5 is below "
                    r"arrival_soc 0\.8",
    ),
    "soc outside 0-1": (
        _sessions_case(HEADER + "V01,2025-03-03 18:00,2025-03-04 06:00,,35,,,\n"),
        InputError, r"sessions\.csv: row 2, column arrival_soc: arrival_soc 35 is outside 0–1.*"
                    r"write 0\.35",
    ),
    "both energy and soc": (
        _sessions_case(HEADER + "V01,2025-03-03 18:00,2025-03-04 06:00,10,0.3,,,\n"),
        InputError, r"sessions\.csv: row 2: has both energy_kwh and arrival_soc; give one",
    ),
    "unknown vehicle in csv": (
        _sessions_case(HEADER + GOOD + "V99,2025-03-03 18:00,2025-03-04 06:00,10,,,,\n"),
        ConsistencyError, r"sessions\.csv: row 3, column vehicle_id: unknown vehicle 'V99'; "
                          r"declare it under vehicles",
    ),
    "unknown charger in csv": (
        _sessions_case(HEADER + "V01,2025-03-03 18:00,2025-03-04 06:00,10,,,,L2-09\n"),
        ConsistencyError, r"sessions\.csv: row 2, column charger_id: unknown charger 'L2-09'",
    ),
    "missing column": (
        _sessions_case("vehicle_id,arrival,energy_kwh\nV01,2025-03-03 18:00,10\n"),
        InputError, r"sessions\.csv: row 1: missing column\(s\) \['departure'\]",
    ),
    "unknown column": (
        _sessions_case("vehicle_id,arrival,departure,enrgy_kwh\nV01,2025-03-03,2025-03-04,1\n"),
        InputError, r"sessions\.csv: row 1: unknown column\(s\) \['enrgy_kwh'\].*rename a "
                    r"misspelt column",
    ),
    "bad number": (
        _sessions_case(HEADER + GOOD + "V02,2025-03-03 18:00,2025-03-04 06:00,12 kWh,,,,\n"),
        InputError, r"sessions\.csv: row 3, column energy_kwh: cannot read energy_kwh '12 kWh' "
                    r"as a number.*no units",
    ),
    "bad timestamp": (
        _sessions_case(HEADER + GOOD + "V02,03/32/2025 18:00,2025-03-04 06:00,12,,,,\n"),
        InputError, r"sessions\.csv: row 3, column arrival: cannot read arrival '03/32/2025 "
                    r"18:00' as a timestamp; write ISO 8601",
    ),
    "duplicate session id": (
        _sessions_case("vehicle_id,arrival,departure,energy_kwh,session_id\n"
                       "V01,2025-03-03 08:00,2025-03-03 09:00,1,S1\n"
                       "V02,2025-03-03 08:00,2025-03-03 09:00,1,S1\n"),
        InputError, r"sessions\.csv: rows 2 and 3, column session_id: session_id 'S1' is used "
                    r"twice",
    ),
    "unknown type": (
        _yaml_case(_set("vehicles.0.type", "tram")), ConsistencyError,
        r"scenario\.yaml: vehicles\[0\]\.type: unknown vehicle type 'tram'.*add it under "
        r"vehicle_types",
    ),
    "unknown home charger": (
        _yaml_case(_set("vehicles.0.home_charger", "DC-9")), ConsistencyError,
        r"scenario\.yaml: vehicles\[0\]\.home_charger: vehicle 'BUS-1' has home charger 'DC-9', "
        r"which is not declared",
    ),
    "duplicate vehicle id": (
        _yaml_case(_set("vehicles.2.id", "V02")), ConsistencyError,
        r"scenario\.yaml: vehicles\[2\]: vehicle id 'V02' is declared twice \(also at "
        r"vehicles\[1\] \(number 2\)\)",
    ),
    "duplicate charger id": (
        _yaml_case(_set("chargers.0.id", "L2-02")), ConsistencyError,
        r"scenario\.yaml: chargers\[1\]: charger id 'L2-02' is declared twice",
    ),
    "duplicate type": (
        _yaml_case(_set("vehicle_types.1.name", "van")), ConsistencyError,
        r"scenario\.yaml: vehicle_types\[1\]\.name: vehicle type 'van' is declared twice",
    ),
    "both csvs": (
        _yaml_case(_set("trips_csv", "trips.csv")), InputError,
        r"scenario\.yaml: \(top level\): 1 problem.*both of sessions_csv and trips_csv given; "
        r"give exactly one",
    ),
    "neither csv": (
        _yaml_case(_set("sessions_csv", _DELETE)), InputError,
        r"neither of sessions_csv and trips_csv given; give exactly one",
    ),
    "resolution": (
        _yaml_case(_set("resolution_min", 10)), InputError,
        r"scenario\.yaml: resolution_min: .*resolution_min 10 is not supported; use one of "
        r"\(5, 15, 30, 60\)",
    ),
    "bad timezone": (
        _yaml_case(_set("site.timezone", "America/Portland")), InputError,
        r"scenario\.yaml: site\.timezone: .*unknown timezone 'America/Portland'; use an IANA name",
    ),
    "typo field": (
        _yaml_case(_set("chargers.0.max_kW", 50)), InputError,
        r"chargers\[0\]\.max_kW \(line \d+\): unknown field \(a typo\? did you mean `max_kw`\? "
        r"it is also given; delete one of the two\)",
    ),
    "horizon off grid": (
        _yaml_case(_set("billing.start", "2025-03-03T00:07:00")), InputError,
        r"scenario\.yaml: billing\.start: .*whole number of 15-minute steps",
    ),
    "end before start": (
        _yaml_case(_set("billing.end", "2025-03-02")), InputError,
        r"scenario\.yaml: billing\.end: end .* is not after start",
    ),
    "dc-only vehicle on ac home port": (
        _yaml_case(lambda d: d["vehicle_types"][0].update(max_ac_kw=0)), ConsistencyError,
        r"vehicles\[1\]\.home_charger: vehicle 'V01' of type 'van' cannot charge on its home "
        r"charger 'L2-01'",
    ),
    "building load short": (
        lambda tmp: case(tmp, building="timestamp,kw\n2025-03-03 00:00,5\n2025-03-03 01:00,5\n"),
        InputError, r"building\.csv: column timestamp: building load covers .* but the horizon "
                    r"is .*supply data for the whole horizon",
    ),
    "building load irregular": (
        lambda tmp: case(tmp, building="timestamp,kw\n2025-03-03 00:00,5\n2025-03-03 01:00,5\n"
                                      "2025-03-03 01:30,5\n2025-03-03 02:30,5\n"),
        InputError, r"building\.csv: column timestamp: rows 3 and 4 .* are 30 min apart but the "
                    r"series is every 60 min",
    ),
    "missing building file": (
        _yaml_case(_set("site.building_load_csv", "nope.csv")), InputError,
        r"nope\.csv: load CSV not found",
    ),
}


@pytest.mark.parametrize("name", list(REJECTIONS))
def test_rejections_name_file_location_and_fix(tmp_path, name):
    make, exc, pattern = REJECTIONS[name]
    with pytest.raises(exc, match="(?s)" + pattern) as info:
        load_scenario(make(tmp_path))
    assert info.value.file  # always says which file


def test_pydantic_errors_are_collected_with_field_paths(tmp_path):
    def many(doc):
        doc["chargers"][1]["max_kw"] = -5
        doc["vehicle_types"][0]["usable_kwh"] = "lots"
        doc["site"]["service_limit_kw"] = 0
        doc["defaults"]["min_soc"] = 0.95

    with pytest.raises(InputError, match=r"4 problems in the scenario file") as info:
        load_scenario(case(tmp_path, many))
    msg = str(info.value)
    for path in (r"site\.service_limit_kw \(line \d+\): Input should be greater than 0 \(got 0\)",
                 r"defaults \(line \d+\): min_soc 0\.95 must be below target_soc 0\.9",
                 r"chargers\[1\]\.max_kw \(line \d+\): Input should be greater than 0 \(got -5\)",
                 r"vehicle_types\[0\]\.usable_kwh \(line \d+\): Input should be a valid number"):
        assert re.search(path, msg), path
    assert info.value.location.startswith("site.service_limit_kw, ")


def _rename_key(text: str, old: str, new: str) -> str:
    assert text.count(f"{old}:") == 1
    return text.replace(f"{old}:", f"{new}:")


@pytest.mark.parametrize("typo", ["service_limit_kW", "servce_limit_kw", "service-limit-kw"])
def test_typo_of_a_required_key_is_one_problem_with_a_suggestion_and_its_line(tmp_path, typo):
    d = tmp_path / "case"
    shutil.copytree(MINI, d)
    p = d / "scenario.yaml"
    p.write_text(_rename_key(p.read_text(), "service_limit_kw", typo))
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if typo in t)
    with pytest.raises(InputError, match=r"1 problem in the scenario file") as info:
        load_scenario(p)
    msg = str(info.value)
    assert (f"  - site.{typo} (line {line}): unknown field (a typo? did you mean "
            "`service_limit_kw`? it is required; rename the key)") in msg
    assert "required field missing" not in msg and "Field required" not in msg
    assert info.value.file == str(p) and info.value.location == f"site.{typo}"


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(tmp_path):
    with pytest.raises(InputError, match=r"site\.colour \(line \d+\): unknown field \(a typo\? "
                                         r"allowed under `site:`: timezone, service_limit_kw, "
                                         r"building_load_csv, interconnection\)"):
        load_scenario(case(tmp_path, _set("site.colour", "red")))


def test_missing_key_says_where_to_add_it(tmp_path):
    with pytest.raises(InputError, match=r"(?s)2 problems.*"
                                         r"  - name: required field missing; add `name:` at the "
                                         r"top level\n.*  - vehicle_types\[1\]\.usable_kwh "
                                         r"\(line \d+\): required field missing; add `usable_kwh:` "
                                         r"under `vehicle_types\[1\]:`"):
        load_scenario(case(tmp_path, lambda d: (d.pop("name"),
                                                d["vehicle_types"][1].pop("usable_kwh"))))


def test_yaml_key_lines_maps_pydantic_locations_to_lines():
    from fleetcharge.scenario.schema import yaml_key_lines

    text = "name: x\nsite:\n  timezone: UTC\nchargers:\n  - {id: A, max_kw: 5}\n  - id: B\n"
    lines = yaml_key_lines(text)
    assert lines[("site", "timezone")] == 3 and lines[("chargers", 1)] == 6
    assert lines[("chargers", 0, "max_kw")] == 5
    assert yaml_key_lines("a: [") == {}
    assert yaml_key_lines("a: &x [*x]") == {("a",): 1, ("a", 0): 1}  # recursive alias


def test_unknown_tariff_in_yaml_names_the_file_and_field(tmp_path):
    p = case(tmp_path, _set("tariff", "oregon/PGE_Sch85_TEMPLATE_placeholdr_demand"))
    with pytest.raises(InputError, match=r"scenario\.yaml: tariff: no tariff file or bundled "
                                         r"tariff named 'oregon/PGE_Sch85_TEMPLATE_placeholdr_"
                                         r"demand'\. Close matches: .*PGE_Sch85.*"
                                         r"`fleetcharge tariffs list`") as info:
        load_scenario(p)
    assert info.value.file == str(p) and info.value.location == "tariff"


def test_missing_tariff_file_in_yaml_names_the_file_and_field(tmp_path):
    p = case(tmp_path, _set("tariff", "rates/nothere.json"))
    with pytest.raises(InputError, match=r"scenario\.yaml: tariff: no tariff file or bundled "
                                         r"tariff named 'rates/nothere\.json'.*path of a URDB"):
        load_scenario(p)


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nsite: {timezone: UTC\n")
    with pytest.raises(InputError, match=r"bad\.yaml: line \d+, column \d+: not valid YAML"):
        load_scenario(p)


def test_missing_scenario_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.yaml: scenario file not found"):
        load_scenario(tmp_path / "nothere.yaml")


def test_folder_instead_of_scenario_file(tmp_path):
    folder = case(tmp_path).parent  # holds scenario.yaml and CSVs
    with pytest.raises(InputError, match=r"case: is a folder, not a scenario file; did you mean "
                                         + re.escape(str(folder / "scenario.yaml")) + r"\?$"):
        load_scenario(folder)
    (folder / "other.yml").write_text("name: x\n")
    with pytest.raises(InputError, match=r"is a folder, not a scenario file; give one of its "
                                         r"YAML files \(other\.yml, scenario\.yaml\)"):
        load_scenario(folder)
    with pytest.raises(InputError, match=r"is a folder with no \.yaml file in it; give the path "
                                         r"of the scenario YAML"):
        load_scenario(tmp_path)


# --- trips ----------------------------------------------------------------------------------

TRIPS = "vehicle_id,depart,return,energy_kwh,distance_mi\n"


def test_trips_become_sessions_with_the_soc_chain(tmp_path):
    text = TRIPS + (
        "V01,2025-03-03 07:00,2025-03-03 12:00,18,\n"
        "V01,2025-03-03 12:00,2025-03-03 17:00,,36\n"  # back-to-back: no dwell, 18 kWh at 0.5/mi
        "V01,2025-03-04 07:00,2025-03-04 17:00,24,\n"
        "V02,2025-03-03 08:00,2025-03-03 16:00,,20\n"
    )
    sc = load_scenario(case(tmp_path, trips=text))
    v1 = sorted((s for s in sc.sessions if s.vehicle_id == "V01"), key=lambda s: s.arrival)
    assert [(s.arrival.strftime("%d %H:%M"), s.departure.strftime("%d %H:%M")) for s in v1] == [
        ("03 00:00", "03 07:00"), ("03 17:00", "04 07:00"), ("04 17:00", "05 00:00")]
    assert [s.energy_kwh for s in v1] == pytest.approx([0, 36 / 0.9, 24 / 0.9])
    assert [s.arrival_soc for s in v1] == pytest.approx([0.9, 0.9 - 36 / 60, 0.9 - 24 / 60])
    assert all(s.target_soc == 0.9 for s in v1)
    assert all(s.charger_id == "L2-01" for s in v1)
    assert sc.metadata["input"] == "trips"
    assert any("'BUS-1' has no trips" in w for w in sc.metadata["warnings"])


def test_trip_draining_the_battery_is_an_error_and_below_min_soc_a_warning(tmp_path):
    low = TRIPS + "V01,2025-03-03 07:00,2025-03-03 17:00,50,\n"  # 0.9 − 50/60 = 0.067 < 0.1
    sc = load_scenario(case(tmp_path / "a", trips=low))
    assert any(re.search(r"trips\.csv: row 2: vehicle 'V01' returns at SOC 0\.07, below its "
                         r"min_soc 0\.1", w) for w in sc.metadata["warnings"])
    empty = TRIPS + ("V01,2025-03-03 07:00,2025-03-03 12:00,30,\n"
                     "V01,2025-03-03 12:00,2025-03-03 17:00,30,\n")
    with pytest.raises(InputError, match=r"trips\.csv: row 3: vehicle 'V01' would return at SOC "
                                         r"-0\.10.*add a dwell between trips"):
        load_scenario(case(tmp_path / "b", trips=empty))


def test_trip_rejections(tmp_path):
    overlap = TRIPS + ("V01,2025-03-03 07:00,2025-03-03 12:00,10,\n"
                       "V01,2025-03-03 11:00,2025-03-03 17:00,10,\n")
    with pytest.raises(ConsistencyError, match=r"trips\.csv: rows 2 and 3: vehicle 'V01' is on "
                                               r"two trips at once"):
        load_scenario(case(tmp_path / "a", trips=overlap))
    no_rate = TRIPS + "BUS-1,2025-03-03 07:00,2025-03-03 12:00,,10\n"
    with pytest.raises(InputError, match=r"trips\.csv: row 2, column distance_mi: .*add "
                                         r"kwh_per_mile to vehicle type 'bus'"):
        load_scenario(case(tmp_path / "b", trips=no_rate))
    backwards = TRIPS + "V01,2025-03-03 12:00,2025-03-03 07:00,10,\n"
    with pytest.raises(InputError, match=r"trips\.csv: row 2: return .* is not after depart"):
        load_scenario(case(tmp_path / "c", trips=backwards))


@st.composite
def trip_chains(draw):
    """Per vehicle, non-overlapping trips inside the horizon, some back to back."""
    rows = []
    for vid, usable in (("V01", 60.0), ("V02", 60.0), ("BUS-1", 200.0)):
        t = draw(st.integers(0, 120))  # minutes after horizon start
        since_charge = 0.0
        for _ in range(draw(st.integers(0, 6))):
            t += draw(st.sampled_from([0, 0, 15, 40, 300]))  # 0 = back to back
            if rows and rows[-1][0] == vid and t > rows[-1][2]:
                since_charge = 0.0
            dur = draw(st.integers(10, 400))
            room = 0.85 * usable - since_charge
            kwh = draw(st.floats(0, max(room, 0), allow_nan=False))
            if t + dur >= 2 * 24 * 60 - 1:
                break
            rows.append((vid, t, t + dur, kwh))
            since_charge += kwh
            t += dur
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chain=trip_chains())
def test_trips_energy_balance(chain):
    """Σ η·E_session equals Σ trip energy: each vehicle starts and ends the horizon at target."""
    assume(chain)
    start = pd.Timestamp("2025-03-03", tz=TZ)
    ts = lambda m: (start + pd.Timedelta(minutes=m)).isoformat()  # noqa: E731
    text = TRIPS + "".join(f"{v},{ts(a)},{ts(b)},{e!r},\n" for v, a, b, e in chain)
    with tempfile.TemporaryDirectory() as tmp:
        sc = load_scenario(case(Path(tmp), trips=text))
    for vid in ("V01", "V02", "BUS-1"):
        vt = sc.vehicle(vid).type
        trip_kwh = sum(e for v, _, _, e in chain if v == vid)
        mine = [s for s in sc.sessions if s.vehicle_id == vid]
        assert sum(s.energy_kwh for s in mine) * vt.charge_efficiency == pytest.approx(
            trip_kwh, abs=1e-9)
        assert all(s.arrival_soc >= 0 for s in mine)
    assert sc.metadata["clipped_sessions"] == [] and sc.metadata["dropped_sessions"] == []


# --- the quick path --------------------------------------------------------------------------


def test_scenario_from_sessions_infers_a_fleet(tmp_path):
    p = tmp_path / "depot.csv"
    p.write_text(
        "vehicle_id,arrival,departure,energy_kwh,max_kw,charger_id\n"
        "A,2025-03-03 18:00,2025-03-04 06:00,40,,\n"
        "A,2025-03-04 18:00,2025-03-05 06:00,20,7.2,\n"
        "B,2025-03-03 19:00,2025-03-04 05:00,30,50,DC-X\n"
    )
    sc = scenario_from_sessions(p, "oregon/PGE_Sch85_TEMPLATE_placeholder_demand", 80,
                                "2025-03-03", "2025-03-06", timezone=TZ, default_max_kw=11.0)
    assert sc.name == "depot" and sc.site.service_limit_kw == 80
    a, b = sc.vehicle("A"), sc.vehicle("B")
    assert a.type.usable_kwh == 50 and a.type.charge_efficiency == 1.0 and a.target_soc == 1.0
    assert b.type.usable_kwh == math_ceil(1.25 * 30)
    assert {c.id: c.max_kw for c in sc.chargers} == {"EVSE-A": 11.0, "DC-X": 50.0}
    caps = sorted((s.vehicle_id, s.max_kw, s.arrival_soc) for s in sc.sessions)
    assert caps == [("A", 7.2, pytest.approx(0.6)), ("A", 11.0, pytest.approx(0.2)),
                    ("B", 50.0, pytest.approx(1 - 30 / 38))]
    assert sc.horizon.n_steps == 3 * 96


def math_ceil(x: float) -> float:
    import math

    return float(math.ceil(x))


def test_scenario_from_sessions_rejects_bad_arguments(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("vehicle_id,arrival,departure,energy_kwh\nA,2025-03-03 18:00,2025-03-04 06:00,5\n")
    ref = "oregon/PGE_Sch85_TEMPLATE_placeholder_demand"
    with pytest.raises(InputError, match=r"^--timezone: unknown timezone 'Mars/Olympus'"):
        scenario_from_sessions(p, ref, 50, "2025-03-03", "2025-03-05", timezone="Mars/Olympus")
    with pytest.raises(InputError, match=r"^--resolution: --resolution 10 is not supported; use "
                                         r"one of \(5, 15, 30, 60\)"):
        scenario_from_sessions(p, ref, 50, "2025-03-03", "2025-03-05", resolution_min=10)
    with pytest.raises(InputError, match=r"^--site-limit-kw: site limit -1 must be a positive "
                                         r"number of kW, e\.g\. --site-limit-kw 150"):
        scenario_from_sessions(p, ref, -1, "2025-03-03", "2025-03-05")
    with pytest.raises(InputError, match=r"^--default-max-kw: default charger power nan must be"):
        scenario_from_sessions(p, ref, 50, "2025-03-03", "2025-03-05", default_max_kw=float("nan"))
    with pytest.raises(InputError, match=r"^--start: cannot read 'bogus' as a date or timestamp; "
                                         r"write 2025-03-01"):
        scenario_from_sessions(p, ref, 50, "bogus", "2025-03-05")
    with pytest.raises(InputError, match=r"^--end: end .* is not after start"):
        scenario_from_sessions(p, ref, 50, "2025-03-03", "2025-03-02")
    with pytest.raises(InputError, match=r"^--start: .*must fall on the 15-minute grid"):
        scenario_from_sessions(p, ref, 50, "2025-03-03T00:07", "2025-03-05")
    with pytest.raises(InputError, match=r"^--tariff: no tariff file or bundled tariff named "
                                         r"'nosuch'.*`fleetcharge tariffs list`") as info:
        scenario_from_sessions(p, "nosuch", 50, "2025-03-03", "2025-03-05")
    assert info.value.file is None
    with pytest.raises(InputError, match=r"nope\.csv: --building-load: building load CSV not "
                                         r"found; check the path"):
        scenario_from_sessions(p, ref, 50, "2025-03-03", "2025-03-05",
                               building_load_csv=tmp_path / "nope.csv")
    q = tmp_path / "soc.csv"
    q.write_text("vehicle_id,arrival,departure,arrival_soc\nA,2025-03-03,2025-03-04,0.2\n")
    with pytest.raises(InputError, match=r"soc\.csv: row 1: missing column\(s\) \['energy_kwh'\]"):
        scenario_from_sessions(q, ref, 50, "2025-03-03", "2025-03-05")


# --- V2G fields: interconnection, bidirectional vehicle types, the v2g section ---------------

PROGRAM = {"name": "capacity-pilot", "payment_per_kwh": 0.5, "months": [6, 7, 8, 9],
           "window_start_hour": 17, "window_end_hour": 20, "cap_hours_per_year": 40}


def _v2g(doc, **v2g):
    doc["v2g"] = v2g


def _full_v2g(doc):
    doc["site"]["interconnection"] = {"status": "approved", "export_limit_kw": 200,
                                      "anti_islanding": True}
    doc["vehicle_types"][1].update(bidirectional_modes=["DC"], j3072_certified=True,
                                   max_discharge_kw=40, discharge_efficiency=0.88)
    _v2g(doc, degradation_per_kwh=0.04, export_price_csv="export_prices.csv",
         programs=["emergency-2-per-kwh", PROGRAM], premium_per_port_usd=3500,
         discount_rate=0.05, years=12, readiness_risk_threshold=0.02)


def _prices(path: Path, freq: str, values) -> None:
    idx = pd.date_range("2025-03-03", "2025-03-05", freq=freq, inclusive="left", tz=TZ)
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "price_per_kwh": np.resize(values, len(idx))}).to_csv(path, index=False)


def test_v2g_fields_round_trip_into_the_domain(tmp_path):
    from fleetcharge.domain import Interconnection
    from fleetcharge.v2g.programs import ELRP_LIKE, Program

    p = case(tmp_path, _full_v2g)
    _prices(p.parent / "export_prices.csv", "h", [0.10, 0.30])  # hourly: repeated per step
    sc = load_scenario(p)
    assert sc.site.interconnection == Interconnection("approved", 200.0, True)
    bus = sc.vehicle("BUS-1").type
    assert (bus.bidirectional, bus.bidirectional_modes, bus.j3072_certified) == (
        True, ("DC",), True)
    assert (bus.max_discharge_kw, bus.discharge_efficiency) == (40, 0.88)
    assert bus.max_discharge_kw_on(sc.charger("DC-1")) == 40  # min(50 port, 60 bus, 40)
    assert bus.max_discharge_kw_on(sc.charger("L2-01")) == 0  # AC is not among its modes
    v = sc.v2g
    assert v.programs == (ELRP_LIKE, Program("capacity-pilot", 0.5, frozenset({6, 7, 8, 9}),
                                             17, 20, 40.0))
    assert (v.degradation_per_kwh, v.premium_per_port_usd, v.discount_rate, v.years,
            v.readiness_risk_threshold) == (0.04, 3500, 0.05, 12, 0.02)
    prices = v.export_price_per_kwh
    assert prices.index.equals(sc.horizon.index) and prices.name == "export_price_per_kwh"
    assert prices.iloc[:8].tolist() == [0.10] * 4 + [0.30] * 4
    assert sc.metadata["warnings"] == []


def test_finer_export_prices_are_averaged_and_may_be_negative(tmp_path):
    p = case(tmp_path, lambda d: _v2g(d, export_price_csv="export_prices.csv"))
    _prices(p.parent / "export_prices.csv", "5min", [-0.03, 0.0, 0.06])
    assert np.allclose(load_scenario(p).v2g.export_price_per_kwh, 0.01)


def test_without_v2g_fields_the_defaults_are_todays_behaviour():
    from fleetcharge.domain import Interconnection, V2GSettings, VehicleType

    sc = load_scenario(MINI / "scenario.yaml")
    assert sc.site.interconnection == Interconnection()
    assert sc.site.interconnection.export_allowed_kw == 0
    assert sc.v2g == V2GSettings()
    bus = sc.vehicle("BUS-1").type  # bidirectional without modes: both AC and DC
    default = VehicleType("x", 1, 1, 1)
    assert bus.bidirectional and bus.bidirectional_modes == default.bidirectional_modes
    assert (bus.j3072_certified, bus.max_discharge_kw, bus.discharge_efficiency) == (
        default.j3072_certified, default.max_discharge_kw, default.discharge_efficiency)
    assert bus.max_discharge_kw_on(sc.charger("DC-1")) == 50  # its charging limit there


def test_approved_with_zero_export_loads_with_a_warning(tmp_path):
    def edit(doc):
        doc["site"]["interconnection"] = {"status": "approved", "export_limit_kw": 0}

    p = case(tmp_path, edit)
    sc = load_scenario(p)
    assert sc.site.interconnection.status == "approved"
    assert sc.site.interconnection.export_allowed_kw == 0
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1)
                if t.strip() == "interconnection:")
    assert sc.metadata["warnings"] == [
        f"{p}: site.interconnection (line {line}): approved with export limit 0 kW: "
        "behind-the-meter only (discharge can lower the site's import but not export; set "
        "export_limit_kw to the agreement's limit to export)"]


def test_discharge_fields_on_a_type_that_is_not_bidirectional_warn(tmp_path):
    sc = load_scenario(case(tmp_path, lambda d: d["vehicle_types"][0].update(
        bidirectional_modes=["AC"], max_discharge_kw=5)))
    assert len(sc.metadata["warnings"]) == 1
    assert re.search(r"vehicle_types\[0\] \(line \d+\): bidirectional_modes, max_discharge_kw "
                     r"ignored because type 'van' is not bidirectional \(set bidirectional: "
                     r"true", sc.metadata["warnings"][0])


def test_a_single_mode_may_be_written_without_a_list(tmp_path):
    sc = load_scenario(case(tmp_path, _set("vehicle_types.1.bidirectional_modes", "AC")))
    assert sc.vehicle("BUS-1").type.bidirectional_modes == ("AC",)


def _bus(**fields) -> Callable[[dict], None]:
    return lambda doc: doc["vehicle_types"][1].update(**fields)


def _program(entry) -> Callable[[dict], None]:
    return lambda doc: _v2g(doc, programs=["emergency-2-per-kwh", entry])


V2G_REJECTIONS = {
    "status": (
        _set("site.interconnection", {"status": "aproved"}),
        r"site\.interconnection\.status \(line \d+\): status 'aproved' is not one of none, "
        r"applied, approved \(did you mean 'approved'\?\); none = no agreement",
    ),
    "negative export limit": (
        _set("site.interconnection", {"status": "applied", "export_limit_kw": -5}),
        r"site\.interconnection\.export_limit_kw \(line \d+\): export_limit_kw -5\.0 must be ≥ "
        r"0 kW .*use 0 for no export \(behind the meter only\)",
    ),
    "interconnection typo": (
        _set("site.interconnection", {"status": "approved", "export_limit": 5}),
        r"site\.interconnection\.export_limit \(line \d+\): unknown field \(a typo\? did you "
        r"mean `export_limit_kw`\?\)",
    ),
    "mode": (
        _bus(bidirectional_modes=["DC", "V2H"]),
        r"vehicle_types\[1\]\.bidirectional_modes \(line \d+\): bidirectional mode 'V2H' is not "
        r"AC or DC; write \[AC\], \[DC\] or \[AC, DC\]",
    ),
    "mode case": (
        _bus(bidirectional_modes=["dc"]),
        r"bidirectional mode 'dc' is not AC or DC \(did you mean 'DC'\?\)",
    ),
    "no modes": (
        _bus(bidirectional_modes=[]),
        r"vehicle_types\[1\]\.bidirectional_modes \(line \d+\): bidirectional_modes is empty; "
        r"list where the vehicle can discharge .* or set bidirectional: false",
    ),
    "mode twice": (
        _bus(bidirectional_modes=["DC", "DC"]),
        r"bidirectional_modes \['DC', 'DC'\] lists a mode twice; list each once",
    ),
    "discharge efficiency above 1": (
        _bus(discharge_efficiency=92),
        r"vehicle_types\[1\]\.discharge_efficiency \(line \d+\): discharge_efficiency 92\.0 must "
        r"be in \(0, 1\]: .*e\.g\. 0\.92 for 92 % \(got 92\)",
    ),
    "discharge efficiency 0": (
        _bus(discharge_efficiency=0),
        r"vehicle_types\[1\]\.discharge_efficiency \(line \d+\): discharge_efficiency 0\.0 must "
        r"be in \(0, 1\]",
    ),
    "discharge power 0": (
        _bus(max_discharge_kw=0),
        r"vehicle_types\[1\]\.max_discharge_kw \(line \d+\): max_discharge_kw 0\.0 must be > 0 "
        r"kW; delete it to use the charging limit",
    ),
    "unknown preset": (
        _program("emergency-2-per-kw"),
        r"v2g\.programs\[1\] \(line \d+\): unknown program preset 'emergency-2-per-kw' \(did you "
        r"mean 'emergency-2-per-kwh'\?\); presets are emergency-2-per-kwh, or define it in full "
        r"as a mapping with name, payment_per_kwh, months, window_start_hour, window_end_hour, "
        r"cap_hours_per_year",
    ),
    "program neither name nor mapping": (
        _program(5),
        r"v2g\.programs\[1\] \(line \d+\): a program is a preset name \(emergency-2-per-kwh\) "
        r"or a mapping with name, payment_per_kwh",
    ),
    "program value": (
        _program({**PROGRAM, "months": [6, 13]}),
        r"v2g\.programs\[1\] \(line \d+\): program 'capacity-pilot': months must be a non-empty "
        r"set of 1–12, got \[6, 13\]",
    ),
    "program window": (
        _program({**PROGRAM, "window_start_hour": 22, "window_end_hour": 2}),
        r"v2g\.programs\[1\] \(line \d+\): program 'capacity-pilot': window must satisfy 0 ≤ "
        r"start < end ≤ 24 h, got 22–2; split a window past midnight",
    ),
    "program negative payment": (
        _program({**PROGRAM, "payment_per_kwh": -1}),
        r"program 'capacity-pilot': payment_per_kwh must be ≥ 0, got -1",
    ),
    "program typo": (
        _program({**{k: v for k, v in PROGRAM.items() if k != "cap_hours_per_year"},
                  "cap_hours_per_yr": 40}),
        r"v2g\.programs\[1\]\.cap_hours_per_yr \(line \d+\): unknown field \(a typo\? did you "
        r"mean `cap_hours_per_year`\? it is required; rename the key\)",
    ),
    "program missing field": (
        _program({k: v for k, v in PROGRAM.items() if k != "months"}),
        r"v2g\.programs\[1\]\.months \(line \d+\): required field missing; add `months:` under "
        r"`v2g\.programs\[1\]:`",
    ),
    "program type": (
        _program({**PROGRAM, "window_start_hour": "5pm"}),
        r"v2g\.programs\[1\]\.window_start_hour \(line \d+\): Input should be a valid integer",
    ),
    "program twice": (
        lambda doc: _v2g(doc, programs=["emergency-2-per-kwh", "emergency-2-per-kwh"]),
        r"v2g \(line \d+\): program 'emergency-2-per-kwh' is listed twice \(programs\[0\] and "
        r"programs\[1\]\); list each program once",
    ),
    "discount rate as a percentage": (
        lambda doc: _v2g(doc, discount_rate=7),
        r"v2g\.discount_rate \(line \d+\): discount_rate 7\.0 must be in \[0, 1\): a fraction "
        r"per year, e\.g\. 0\.07 for 7 %",
    ),
    "years": (
        lambda doc: _v2g(doc, years=0),
        r"v2g\.years \(line \d+\): years 0 must be ≥ 1",
    ),
    "risk threshold": (
        lambda doc: _v2g(doc, readiness_risk_threshold=5),
        r"v2g\.readiness_risk_threshold \(line \d+\): readiness_risk_threshold 5\.0 must be in "
        r"\[0, 1\]: a probability",
    ),
    "negative degradation": (
        lambda doc: _v2g(doc, degradation_per_kwh=-0.01),
        r"v2g\.degradation_per_kwh \(line \d+\): degradation_per_kwh -0\.01 must be ≥ 0 \$/kWh",
    ),
    "negative premium": (
        lambda doc: _v2g(doc, premium_per_port_usd=-1),
        r"v2g\.premium_per_port_usd \(line \d+\): premium_per_port_usd -1\.0 must be ≥ 0",
    ),
    "v2g typo": (
        lambda doc: _v2g(doc, premium_per_port=3500),
        r"v2g\.premium_per_port \(line \d+\): unknown field \(a typo\? did you mean "
        r"`premium_per_port_usd`\?\)",
    ),
}


@pytest.mark.parametrize("name", list(V2G_REJECTIONS))
def test_v2g_rejections_name_the_yaml_path_line_and_fix(tmp_path, name):
    edit, pattern = V2G_REJECTIONS[name]
    p = case(tmp_path, edit)
    with pytest.raises(InputError, match=r"(?s)scenario\.yaml: .*1 problem in the scenario "
                                         r"file.*" + pattern) as info:
        load_scenario(p)
    assert info.value.file == str(p)


def test_v2g_error_names_the_exact_line(tmp_path):
    d = tmp_path / "case"
    shutil.copytree(MINI, d)
    p = d / "scenario.yaml"
    p.write_text(p.read_text() + "v2g:\n  programs:\n    - emergency-2-per-kwh\n"
                 "    - elrp\n")
    n = len(p.read_text().splitlines())
    with pytest.raises(InputError, match=rf"  - v2g\.programs\[1\] \(line {n}\): unknown "
                                         r"program preset 'elrp'"):
        load_scenario(p)


def test_program_fields_follow_the_program_class():
    import inspect

    from fleetcharge.scenario.schema import PROGRAM_PRESETS, ProgramModel
    from fleetcharge.v2g.programs import ELRP_LIKE, Program

    assert list(ProgramModel.model_fields) == list(inspect.signature(Program).parameters)
    assert PROGRAM_PRESETS == {ELRP_LIKE.name: ELRP_LIKE}


PRICES = "timestamp,price_per_kwh\n"

PRICE_REJECTIONS = {
    "missing file": (
        None,
        r"scenario\.yaml: v2g\.export_price_csv \(line \d+\): export price CSV "
        r"'export_prices\.csv' not found \(looked for .*export_prices\.csv\); check the path",
    ),
    "missing column": (
        "timestamp,price\n2025-03-03 00:00,1\n2025-03-03 01:00,1\n",
        r"export_prices\.csv: row 1: missing column\(s\) \['price_per_kwh'\]; the export price "
        r"CSV needs \['timestamp', 'price_per_kwh'\] \(found \['timestamp', 'price'\]\)",
    ),
    "unknown column": (
        "timestamp,price_per_kwh,kw\n2025-03-03 00:00,1,1\n2025-03-03 01:00,1,1\n",
        r"export_prices\.csv: row 1: unknown column\(s\) \['kw'\]",
    ),
    "bad number": (
        PRICES + "2025-03-03 00:00,0.1\n2025-03-03 01:00,$0.12\n",
        r"export_prices\.csv: row 3, column price_per_kwh: cannot read price_per_kwh '\$0\.12' "
        r"as a number; write a plain decimal number",
    ),
    "empty price": (
        PRICES + "2025-03-03 00:00,0.1\n2025-03-03 01:00,\n",
        r"export_prices\.csv: row 3, column price_per_kwh: missing price_per_kwh value",
    ),
    "one row": (
        PRICES + "2025-03-03 00:00,0.1\n",
        r"export_prices\.csv: 1 data row\(s\); an export price series needs at least two",
    ),
    "bad timestamp": (
        PRICES + "2025-03-03 00:00,0.1\n03/03/2025 01:00,0.1\n",
        r"export_prices\.csv: row 3, column timestamp: timestamp '03/03/2025 01:00' is not "
        r"ISO 8601",
    ),
    "irregular": (
        PRICES + "2025-03-03 00:00,1\n2025-03-03 01:00,1\n2025-03-03 01:30,1\n"
                 "2025-03-03 02:30,1\n",
        r"export_prices\.csv: column timestamp: rows 3 and 4 .* are 30 min apart but the series "
        r"is every 60 min",
    ),
    "short": (
        PRICES + "2025-03-03 00:00,1\n2025-03-03 01:00,1\n",
        r"export_prices\.csv: column timestamp: export price series covers .* but the horizon "
        r"is .*supply data for the whole horizon",
    ),
}


@pytest.mark.parametrize("name", list(PRICE_REJECTIONS))
def test_export_price_csv_rejections(tmp_path, name):
    text, pattern = PRICE_REJECTIONS[name]
    p = case(tmp_path, lambda d: _v2g(d, export_price_csv="export_prices.csv"))
    if text is not None:
        (p.parent / "export_prices.csv").write_text(text)
    with pytest.raises(InputError, match=pattern):
        load_scenario(p)


# --- the bundled example -----------------------------------------------------------------------


def test_bundled_example_loads_and_every_session_is_feasible():
    sc = load_scenario(EXAMPLE)
    assert sc.name == "portland-delivery-50"
    assert len(sc.vehicles) == 50 and len(sc.chargers) == 50
    assert {v.type.usable_kwh for v in sc.vehicles} == {60}
    assert {c.max_kw for c in sc.chargers} == {19.2}
    assert sc.horizon.start == pd.Timestamp("2025-03-01", tz=TZ)
    assert sc.horizon.end == pd.Timestamp("2025-04-01", tz=TZ)
    assert sc.horizon.n_steps == 31 * 96 - 4  # the spring-forward night has 23 hours
    arrays = sc.session_arrays()
    assert (arrays.energy_kwh <= arrays.max_energy_kwh(sc.horizon.step_hours) + 1e-9).all()
    assert sc.metadata["warnings"] == [] and len(sc.metadata["clipped_sessions"]) == 50
    readme = (EXAMPLE.parent / "README.md").read_text()
    assert "placeholder" in readme.lower()
