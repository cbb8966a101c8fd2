"""The synthetic-fleet generator: realistic, deterministic, read back by the loader."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fleetcharge.generate as gen
from fleetcharge.errors import InputError
from fleetcharge.generate import generate_scenario
from fleetcharge.scenario import load_scenario

EXAMPLE = Path(__file__).parents[1] / "examples" / "portland-delivery-50"


def _feasible(sc) -> bool:
    arrays = sc.session_arrays()
    return bool((arrays.energy_kwh <= arrays.max_energy_kwh(sc.horizon.step_hours) + 1e-9).all())


def _trips_by_weekday(sc) -> pd.Series:
    """Departures per local weekday (0 = Monday), counting only sessions that charge."""
    deps = [s.arrival for s in sc.sessions if s.energy_kwh > 0]
    return pd.Series(pd.DatetimeIndex(deps).day_of_week).value_counts().sort_index()


@pytest.mark.parametrize("kind", gen.KINDS)
def test_round_trip_every_kind(tmp_path, kind):
    path = generate_scenario(kind, vehicles=12, days=14, seed=3, out_dir=tmp_path / kind)
    assert path == tmp_path / kind / "scenario.yaml"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "building.csv", "scenario.yaml", "sessions.csv"]
    sc = load_scenario(path)
    assert len(sc.vehicles) == 12 and len(sc.chargers) == 12
    assert sc.horizon.start == pd.Timestamp("2025-03-03", tz="America/Los_Angeles")
    assert sc.metadata["warnings"] == []
    # each vehicle's last session runs to its next departure after the horizon: clipped there
    clipped = sc.metadata["clipped_sessions"]
    assert sorted(c["id"].split("/")[0] for c in clipped) == [v.id for v in sc.vehicles]
    assert all(pd.Timestamp(c["departure"]) > sc.horizon.end for c in clipped)
    assert all(c["energy_kwh_inside"] <= c["energy_kwh"] for c in clipped)
    assert sc.metadata["dropped_sessions"] == []
    assert _feasible(sc)
    # every vehicle is accounted for over the whole horizon: plugged-in time + trips = horizon
    for v in sc.vehicles:
        mine = sorted((s for s in sc.sessions if s.vehicle_id == v.id), key=lambda s: s.arrival)
        assert mine[0].arrival == sc.horizon.start and mine[-1].departure == sc.horizon.end
        assert all(a.departure < b.arrival for a, b in zip(mine, mine[1:]))
        assert all(s.charger_id == v.home_charger_id for s in mine)
        assert min(s.arrival_soc for s in mine) >= v.min_soc - 1e-9
    ports = sum(c.max_kw for c in sc.chargers)
    assert 0.6 * ports < sc.site.service_limit_kw <= 0.6 * ports + sc.building_kw().max() + 50
    assert 0 < sc.building_kw().max() < 0.2 * sc.site.service_limit_kw


def test_archetypes_are_realistic(tmp_path):
    vans = load_scenario(generate_scenario("delivery-vans", 40, 14, 1, tmp_path / "v"))
    assert {v.type.usable_kwh for v in vans.vehicles} == {68, 89}
    assert {c.max_kw for c in vans.chargers} == {19.2}
    daily = [s.energy_kwh * 0.92 for s in vans.sessions
             if s.energy_kwh > 0 and s.departure < vans.horizon.end]  # not the clipped ones
    assert 19.95 <= min(daily) and max(daily) <= 60  # energies are floored to 0.01 kWh
    back = [s.arrival.hour + s.arrival.minute / 60 for s in vans.sessions if s.energy_kwh > 0]
    assert 17 <= min(back) and max(back) <= 19
    by_day = _trips_by_weekday(vans)
    assert by_day[5] < 0.6 * by_day[2] and by_day.get(6, 0) < 0.25 * by_day[2]

    buses = load_scenario(generate_scenario("school-buses", 12, 14, 1, tmp_path / "s"))
    assert all(v.type.bidirectional for v in buses.vehicles)
    assert {c.current_type for c in buses.chargers} == {"AC", "DC"}
    assert {c.max_kw for c in buses.chargers} == {19.2, 60.0}
    assert set(_trips_by_weekday(buses).index) <= {0, 1, 2, 3, 4}  # no weekend service
    midday = [s for s in buses.sessions if s.arrival.date() == s.departure.date()
              and 8 <= s.arrival.hour <= 9 and 13 <= s.departure.hour <= 15]
    assert len(midday) == 12 * 10  # two runs a school day with a midday dwell

    transit = load_scenario(generate_scenario("transit-buses", 10, 14, 1, tmp_path / "t"))
    assert {v.type.usable_kwh for v in transit.vehicles} == {400, 590}
    assert {(c.current_type, c.max_kw) for c in transit.chargers} == {("DC", 150.0)}
    daily = [s.energy_kwh * 0.93 for s in transit.sessions
             if s.energy_kwh > 0 and s.departure < transit.horizon.end]
    assert 149.95 <= min(daily) and max(daily) <= 300
    out = [s.departure.hour + s.departure.minute / 60 for s in transit.sessions
           if s.departure != transit.horizon.end]
    assert 4.5 <= min(out) and max(out) <= 5.75


def test_school_buses_are_ready_for_a_v2g_study_and_vans_are_unchanged(tmp_path):
    import yaml

    from fleetcharge.domain import Interconnection, V2GSettings, VehicleType
    from fleetcharge.v2g.programs import ELRP_LIKE

    buses = load_scenario(generate_scenario("school-buses", 12, 7, 1, tmp_path / "s"))
    bidi_dc_kw = sum(c.max_kw for c in buses.chargers
                     if c.bidirectional and c.current_type == "DC")
    assert bidi_dc_kw == 4 * 60.0
    assert buses.site.interconnection == Interconnection("approved", 0.6 * bidi_dc_kw, True)
    assert buses.site.interconnection.export_allowed_kw == pytest.approx(144)
    assert {v.type.bidirectional_modes for v in buses.vehicles} == {("DC",)}
    assert all(v.type.bidirectional for v in buses.vehicles)
    dc = next(c for c in buses.chargers if c.current_type == "DC")
    ac = next(c for c in buses.chargers if c.current_type == "AC")
    bus = buses.vehicles[0].type
    assert bus.max_discharge_kw_on(dc) == 60 and bus.max_discharge_kw_on(ac) == 0
    program = buses.v2g.programs[0]
    assert buses.v2g.programs == (ELRP_LIKE,)
    assert (program.name, program.payment_per_kwh, program.months, program.window_start_hour,
            program.window_end_hour, program.cap_hours_per_year) == (
        "emergency-2-per-kwh", 2.0, frozenset(range(5, 11)), 16, 21, 60.0)
    assert buses.v2g.premium_per_port_usd == 3500
    assert buses.metadata["warnings"] == []
    text = (tmp_path / "s" / "scenario.yaml").read_text()
    assert "# Export limit = 60% of the bidirectional DC port ratings (240 kW)." in text

    # overriding the pack keeps the buses DC-bidirectional
    one = load_scenario(generate_scenario("school-buses", 6, 2, 1, tmp_path / "o",
                                          usable_kwh=180))
    assert {v.type.bidirectional_modes for v in one.vehicles} == {("DC",)}
    # a single bus gets an L2 port: no bidirectional DC port, so no agreement is written
    solo = load_scenario(generate_scenario("school-buses", 1, 2, 1, tmp_path / "1"))
    assert solo.site.interconnection == Interconnection()
    assert solo.v2g.programs == (ELRP_LIKE,) and solo.metadata["warnings"] == []

    vans = load_scenario(generate_scenario("delivery-vans", 6, 3, 1, tmp_path / "v"))
    assert vans.site.interconnection == Interconnection() and vans.v2g == V2GSettings()
    assert not any(v.type.bidirectional for v in vans.vehicles)
    assert {v.type.bidirectional_modes for v in vans.vehicles} == {
        VehicleType("x", 1, 1, 1).bidirectional_modes}
    doc = yaml.safe_load((tmp_path / "v" / "scenario.yaml").read_text())
    assert "v2g" not in doc and "interconnection" not in doc["site"]
    assert "bidirectional_modes" not in doc["vehicle_types"][0]


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = generate_scenario("school-buses", 8, 10, 42, tmp_path / "a").parent
    b = generate_scenario("school-buses", 8, 10, 42, tmp_path / "b").parent
    c = generate_scenario("school-buses", 8, 10, 43, tmp_path / "c").parent
    for name in ("scenario.yaml", "sessions.csv", "building.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "sessions.csv").read_bytes() != (c / "sessions.csv").read_bytes()


def test_bundled_example_is_what_the_generator_writes(tmp_path):
    out = generate_scenario("delivery-vans", vehicles=50, days=31, seed=2025,
                            out_dir=tmp_path / "ex", start="2025-03-01", usable_kwh=60,
                            max_ac_kw=19.2, name="portland-delivery-50").parent
    for name in ("scenario.yaml", "sessions.csv", "building.csv"):
        assert (out / name).read_bytes() == (EXAMPLE / name).read_bytes(), name


def test_overrides_and_existing_folder(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    p = generate_scenario("delivery-vans", 5, 3, 0, out, usable_kwh=60, max_ac_kw=19.2,
                          building_load=False, name="tiny")
    assert (out / "keep.txt").read_text() == "mine"  # only our files are replaced
    sc = load_scenario(p)
    assert sc.name == "tiny" and sc.site.building_load_kw is None
    assert {(v.type.name, v.type.usable_kwh, v.type.max_ac_kw) for v in sc.vehicles} == {
        ("van-60kwh", 60, 19.2)}
    assert sc.site.service_limit_kw == 100  # 0.6 × 5 × 19.2 = 57.6 → 100


def test_tariff_file_is_copied_next_to_the_yaml(tmp_path):
    from fleetcharge.tariff.library import library_names

    name = next(n for n in library_names() if "Sch85" in n)
    src = Path(__file__).parents[1] / "src" / "fleetcharge" / "tariff_library" / f"{name}.json"
    if not src.is_file():
        pytest.skip(f"bundled tariff file not at {src}")
    p = generate_scenario("transit-buses", 3, 2, 0, tmp_path / "t", tariff=str(src))
    assert (p.parent / "tariff.json").read_bytes() == src.read_bytes()
    assert load_scenario(p).tariff.name == load_scenario(EXAMPLE / "scenario.yaml").tariff.name


def test_failed_run_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gen, "_building", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_scenario("delivery-vans", 5, 3, 0, tmp_path / "x")
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    real_replace = gen.os.replace
    calls = []

    def fail_write(src, dst):
        calls.append(dst)
        raise OSError("read-only")

    (tmp_path / "y").mkdir()
    monkeypatch.setattr(gen.os, "replace", fail_write)
    with pytest.raises(OSError, match="read-only"):
        generate_scenario("delivery-vans", 5, 3, 0, tmp_path / "y")
    assert calls and list((tmp_path / "y").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y"]  # temp folder cleaned up
    assert real_replace is not fail_write


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"kind": "trams"}, r"^kind: unknown fleet kind 'trams'; use one of delivery-vans, "
                        r"school-buses, transit-buses$"),
    ({"kind": "delivery-trucks"}, r"^kind: unknown fleet kind 'delivery-trucks'; did you mean "
                                  r"'delivery-vans'\? use one of delivery-vans, school-buses, "
                                  r"transit-buses$"),
    ({"vehicles": 0}, r"^--vehicles: vehicles must be a whole number ≥ 1 \(got 0\); "
                      r"e\.g\. --vehicles 10$"),
    ({"vehicles": -3}, r"^--vehicles: vehicles must be a whole number ≥ 1 \(got -3\)"),
    ({"vehicles": True}, r"^--vehicles: vehicles must be a whole number ≥ 1 \(got True\)"),
    ({"days": 0}, r"^--days: days must be a whole number ≥ 1 \(got 0\); e\.g\. --days 31$"),
    ({"days": 2.5}, r"^--days: days must be a whole number ≥ 1 \(got 2\.5\)"),
    ({"timezone": "Pacific/Nowhere"}, r"^timezone: unknown timezone 'Pacific/Nowhere'"),
    ({"start": "bogus"}, r"^--start: 'bogus' is not a date; use YYYY-MM-DD \(e\.g\. 2025-03-03\)$"),
    ({"start": "03/03/2025"}, r"start: '03/03/2025' is not a date; use YYYY-MM-DD"),
    ({"usable_kwh": -1}, r"^usable_kwh: usable_kwh must be positive"),
    ({"tariff": "nosuch"}, r"^--tariff: no tariff file or bundled tariff named 'nosuch'\..*"
                           r"`fleetcharge tariffs list`"),
    ({"tariff": "PGE_Sch85_placeholder"}, r"^--tariff: .*Close matches: "
                                          r"oregon/PGE_Sch85_TEMPLATE_placeholder_demand"),
])
def test_generator_rejects_bad_arguments(tmp_path, kwargs, pattern):
    args = {"kind": "delivery-vans", "vehicles": 3, "days": 2, "seed": 0,
            "out_dir": tmp_path / "z", **kwargs}
    with pytest.raises(InputError, match=pattern):
        generate_scenario(**args)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp folder left


def test_bad_tariff_leaves_an_existing_folder_untouched(tmp_path):
    out = tmp_path / "o"
    generate_scenario("delivery-vans", 3, 2, 0, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(InputError, match=r"--tariff: no tariff file or bundled tariff"):
        generate_scenario("delivery-vans", 3, 2, 1, out, tariff="nosuch")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_broken_tariff_file_is_named_before_anything_is_written(tmp_path):
    bad = tmp_path / "rate.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"rate\.json: ") as info:
        generate_scenario("delivery-vans", 3, 2, 0, tmp_path / "z", tariff=str(bad))
    assert info.value.file == str(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rate.json"]


def test_out_path_that_is_a_file_is_refused_first(tmp_path):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    with pytest.raises(InputError, match=r"taken\.txt: --out: exists and is not a folder"):
        generate_scenario("delivery-vans", 3, 2, 0, taken)
    assert taken.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == [
        "taken.txt"]


def test_generator_prints_nothing(tmp_path, capsys):
    generate_scenario("delivery-vans", 3, 2, 0, tmp_path / "q")
    with pytest.raises(InputError):
        generate_scenario("delivery-vans", 3, 2, 0, tmp_path / "r", tariff="nosuch")
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(("args", "message"), [
    (["--tariff", "nosuch"], "--tariff: no tariff file or bundled tariff named 'nosuch'"),
    (["--start", "bogus"], "--start: 'bogus' is not a date; use YYYY-MM-DD"),
    (["--vehicles", "0"], "--vehicles: vehicles must be a whole number ≥ 1 (got 0)"),
    (["--days", "-1"], "--days: days must be a whole number ≥ 1 (got -1)"),
])
def test_cli_generate_bad_option_exits_2_and_writes_nothing(tmp_path, args, message):
    from typer.testing import CliRunner

    from fleetcharge.cli import app

    result = CliRunner().invoke(app, ["generate", "delivery-vans", "--out", str(tmp_path / "g"),
                                      *args])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split())
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_thousand_vans_for_a_month_load_quickly(tmp_path):
    t0 = time.perf_counter()
    path = generate_scenario("delivery-vans", vehicles=1000, days=31, seed=11,
                             out_dir=tmp_path / "big")
    t1 = time.perf_counter()
    sc = load_scenario(path)
    t2 = time.perf_counter()
    print(f"\n1,000 vans × 31 days: {len(sc.sessions)} sessions; generate {t1 - t0:.2f} s, "
          f"load {t2 - t1:.2f} s")
    assert len(sc.vehicles) == 1000 and len(sc.sessions) > 20_000
    assert _feasible(sc)
    assert np.isfinite(sc.building_kw()).all()
