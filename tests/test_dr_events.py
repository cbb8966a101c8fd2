"""DR events, programs and their inputs: the DREvent type, the events CSV reader (errors name
file, row, column and fix) and the scenario YAML's ``dr: programs:``."""

from pathlib import Path

import pandas as pd
import pytest

from fleetcharge.dr.events import DREvent, read_events_csv
from fleetcharge.dr.programs import (
    CAPACITY_WITH_PENALTY,
    EMERGENCY_2_PER_KWH,
    PRESETS,
    DRProgram,
    program_months,
    with_presets,
)
from fleetcharge.errors import InputError
from fleetcharge.scenario import load_scenario
from fleetcharge.timegrid import Horizon
from fleetcharge.v2g.programs import ELRP_LIKE

TZ = "America/Los_Angeles"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portland-delivery-50"
HEADER = "event_id,program,start,end,kind,value,received_at,cancelled\n"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def write(tmp_path: Path, rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


def read(path: Path, horizon: Horizon | None = None):
    return read_events_csv(path, TZ, with_presets(None), horizon)


def test_event_type_validates_and_measures():
    e = DREvent("e1", "p", ts("2025-07-01 16:00"), ts("2025-07-01 21:00"), "curtail", 50,
                received_at=ts("2025-07-01 15:50"))
    assert e.duration_h == 5.0 and e.notice_minutes == 10.0
    index = pd.date_range("2025-07-01 15:30", periods=24, freq="15min", tz=TZ)
    assert e.mask(index).sum() == 20  # 16:00 … 20:45
    with pytest.raises(ValueError, match="event 'x': end .* must be after start"):
        DREvent("x", "p", ts("2025-07-01 17:00"), ts("2025-07-01 16:00"), "curtail", 1)
    with pytest.raises(ValueError, match="start .* has no timezone"):
        DREvent("x", "p", pd.Timestamp("2025-07-01 16:00"), ts("2025-07-01 17:00"), "price", 1)
    with pytest.raises(ValueError, match="kind must be one of curtail, reduce, price"):
        DREvent("x", "p", ts("2025-07-01 16:00"), ts("2025-07-01 17:00"), "shed", 1)
    with pytest.raises(ValueError, match="value for a reduce event must be > 0 kW"):
        DREvent("x", "p", ts("2025-07-01 16:00"), ts("2025-07-01 17:00"), "reduce", 0)
    cancelled = DREvent("c", "p", ts("2025-07-01 16:00"), ts("2025-07-01 17:00"), "price", 1,
                        cancelled=True)
    assert not cancelled.mask(index).any()


def test_emergency_preset_is_the_v2g_programs_elrp():
    assert EMERGENCY_2_PER_KWH.name == ELRP_LIKE.name
    assert EMERGENCY_2_PER_KWH.to_program() == ELRP_LIKE
    assert (EMERGENCY_2_PER_KWH.payment_per_kwh, EMERGENCY_2_PER_KWH.cap_hours_per_year,
            EMERGENCY_2_PER_KWH.penalty_per_kwh, EMERGENCY_2_PER_KWH.opt_out) == (
        2.0, 60.0, 0.0, "free")
    assert EMERGENCY_2_PER_KWH.season_label == "May–Oct"
    assert CAPACITY_WITH_PENALTY.opt_out == "penalty" and CAPACITY_WITH_PENALTY.penalty_per_kwh > 0
    assert set(PRESETS) == {"emergency-2-per-kwh", "capacity-with-penalty"}


def test_program_checks_season_window_weekdays_and_length():
    p = EMERGENCY_2_PER_KWH

    def ev(a, b):
        return DREvent("e", p.name, ts(a), ts(b), "price", 2.0)

    assert p.check_event(ev("2025-07-01 16:00", "2025-07-01 21:00"), TZ) is None
    assert "only in May–Oct" in p.check_event(ev("2025-03-04 16:00", "2025-03-04 18:00"), TZ)
    assert "weekdays only" in p.check_event(ev("2025-07-05 16:00", "2025-07-05 18:00"), TZ)
    assert "16:00–21:00" in p.check_event(ev("2025-07-01 15:00", "2025-07-01 18:00"), TZ)
    cap = CAPACITY_WITH_PENALTY  # any hour, across midnight, ≤ 4 h
    assert cap.check_event(DREvent("e", cap.name, ts("2025-03-25 22:00"),
                                   ts("2025-03-26 02:00"), "curtail", 1), TZ) is None
    assert "at most 4 h" in cap.check_event(DREvent(
        "e", cap.name, ts("2025-03-25 22:00"), ts("2025-03-26 03:00"), "curtail", 1), TZ)
    with pytest.raises(ValueError, match="program 'bad': opt_out must be one of free, penalty"):
        DRProgram("bad", frozenset({1}), 0, 24, opt_out="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="program 'bad': penalty_per_kwh must be ≥ 0"):
        DRProgram("bad", frozenset({1}), 0, 24, penalty_per_kwh=-1)


def test_program_months_counts_capacity_months():
    index = pd.date_range("2025-04-20", "2025-06-10", freq="1h", tz=TZ)
    assert program_months(EMERGENCY_2_PER_KWH, index) == 2  # May and June, not April
    assert program_months(CAPACITY_WITH_PENALTY, index) == 3


def test_read_events_csv(tmp_path):
    path = write(tmp_path,
                 "A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 21:00,Reduce,50,"
                 "2025-03-11 15:00,false\n"
                 "B,capacity-with-penalty,2025-03-13T05:00:00Z,2025-03-13T07:00:00Z,price,0.5,,\n"
                 "C,capacity-with-penalty,2025-03-14 17:00,2025-03-14 18:00,curtail,0,,TRUE\n")
    a, b, c = read(path)
    assert (a.kind, a.value, a.start, a.notice_minutes) == ("reduce", 50.0, ts("2025-03-12 17:00"),
                                                            26 * 60)
    assert b.start == ts("2025-03-12 22:00") and b.received_at is None and not b.cancelled
    assert c.cancelled and c.value == 0.0


@pytest.mark.parametrize("rows, match", [
    ("A,capacity-with-penalti,2025-03-12 17:00,2025-03-12 18:00,curtail,5,,\n",
     r"events.csv: row 2, column program: unknown program 'capacity-with-penalti' "
     r"\(did you mean 'capacity-with-penalty'\?\)"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,curtial,5,,\n",
     r"row 2, column kind: kind 'curtial' is not one of curtail, reduce, price "
     r"\(did you mean 'curtail'\?\)"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,curtail,5,,\n"
     "B,capacity-with-penalty,12/03/2025 19:00,2025-03-12 20:00,curtail,5,,\n",
     r"row 3, column start: cannot read start '12/03/2025 19:00' as a timestamp; write ISO 8601"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 16:00,curtail,5,,\n",
     r"row 2, column end: end .* is not after start"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,curtail,-5,,\n",
     r"row 2, column value: value for a curtail event must be ≥ 0, got -5.0; fix the value"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,curtail,5 kW,,\n",
     r"row 2, column value: cannot read value '5 kW' as a number"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,curtail,5,,\n"
     "A,capacity-with-penalty,2025-03-13 17:00,2025-03-13 18:00,curtail,5,,\n",
     r"row 3, column event_id: event_id 'A' is used twice \(also row 2\)"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 19:00,curtail,5,,\n"
     "B,capacity-with-penalty,2025-03-12 18:00,2025-03-12 20:00,curtail,5,,\n",
     r"row 3, column start: events 'A' \(row 2\) and 'B' overlap; the depot answers one event "
     r"at a time"),
    ("A,emergency-2-per-kwh,2025-03-12 17:00,2025-03-12 18:00,price,2,,\n",
     r"row 2, column start: program 'emergency-2-per-kwh' calls events only in May–Oct, but "
     r"this event runs .*; move it or name a program whose season and window cover it"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,curtail,5,"
     "2025-03-12 18:30,\n",
     r"row 2, column received_at: received_at .* is not before the event's end"),
    ("A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,curtail,5,,maybe\n",
     r"row 2, column cancelled: cancelled 'maybe' is not true or false"),
    ("", r"events.csv: the events CSV has a header but no events"),
])
def test_events_csv_errors_name_row_column_and_fix(tmp_path, rows, match):
    with pytest.raises(InputError, match=match):
        read(write(tmp_path, rows))


def test_events_csv_column_errors_and_horizon(tmp_path):
    with pytest.raises(InputError, match=r"row 1: missing column\(s\) \['kind'\]"):
        read(write(tmp_path, "A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,5\n",
                   header="event_id,program,start,end,value\n"))
    with pytest.raises(InputError, match=r"row 1: unknown column\(s\) \['notes'\]"):
        read(write(tmp_path, "A,capacity-with-penalty,2025-03-12 17:00,2025-03-12 18:00,"
                             "curtail,5,x\n",
                   header="event_id,program,start,end,kind,value,notes\n"))
    horizon = Horizon(ts("2025-03-01"), ts("2025-04-01"), 15, TZ)
    with pytest.raises(InputError, match=r"row 2, column start: the event runs .* outside the "
                                         r"scenario's horizon"):
        read(write(tmp_path, "A,capacity-with-penalty,2025-04-02 17:00,2025-04-02 18:00,"
                             "curtail,5,,\n"), horizon)


SCENARIO_DR = """\
dr:
  programs:
    - emergency-2-per-kwh
    - preset: capacity-with-penalty
      committed_kw: 120
    - name: night-curtail
      months: [1, 2, 3]
      window_start_hour: 0
      window_end_hour: 6
      weekdays_only: false
      payment_per_kwh: 0.25
      opt_out: free
"""


def scenario_with(tmp_path: Path, dr_text: str) -> Path:
    text = (EXAMPLE / "scenario.yaml").read_text(encoding="utf-8")
    for name in ("sessions.csv", "building.csv"):
        (tmp_path / name).write_text((EXAMPLE / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    path = tmp_path / "scenario.yaml"
    path.write_text(text + dr_text, encoding="utf-8")
    return path


def test_scenario_yaml_lists_dr_programs(tmp_path):
    sc = load_scenario(scenario_with(tmp_path, SCENARIO_DR))
    programs = sc.metadata["dr_programs"]
    assert list(programs) == ["emergency-2-per-kwh", "capacity-with-penalty", "night-curtail"]
    assert programs["capacity-with-penalty"].committed_kw == 120.0
    assert programs["capacity-with-penalty"].opt_out == CAPACITY_WITH_PENALTY.opt_out
    night = programs["night-curtail"]
    assert night.months == frozenset({1, 2, 3}) and night.opt_out == "free"
    no_dr = load_scenario(EXAMPLE / "scenario.yaml")
    assert no_dr.metadata["dr_programs"] == {}


def test_scenario_yaml_dr_errors_have_line_numbers(tmp_path):
    n = len((EXAMPLE / "scenario.yaml").read_text(encoding="utf-8").splitlines())
    bad = SCENARIO_DR.replace("opt_out: free", "opt_out: sometimes")
    with pytest.raises(InputError, match=rf"dr.programs\[2\].opt_out \(line {n + 12}\): Input "
                                         r"should be 'free' or 'penalty'"):
        load_scenario(scenario_with(tmp_path, bad))
    typo = SCENARIO_DR.replace("preset: capacity-with-penalty", "preset: capacity")
    with pytest.raises(InputError, match=rf"dr.programs\[1\] \(line {n + 4}\): unknown DR "
                                         r"program preset 'capacity'"):
        load_scenario(scenario_with(tmp_path, typo))
    months = SCENARIO_DR.replace("months: [1, 2, 3]", "months: [13]")
    with pytest.raises(InputError, match=r"dr.programs\[2\] .*program 'night-curtail': months "
                                         r"must be a non-empty set of 1–12"):
        load_scenario(scenario_with(tmp_path, months))
