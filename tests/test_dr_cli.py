"""``fleetcharge dr`` through typer's CliRunner on a tiny app (the lead registers the command
in the real one), on the bundled example and the example events."""

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from fleetcharge.dr.baseline import event_baseline
from fleetcharge.dr.cli import dr
from fleetcharge.dr.events import read_events_csv
from fleetcharge.dr.planning import event_days, run_dr_study
from fleetcharge.dr.programs import with_presets
from fleetcharge.dr.settlement import settle_event
from fleetcharge.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "examples" / "portland-delivery-50" / "scenario.yaml"
EVENTS = ROOT / "examples" / "dr-events" / "events.csv"

app = typer.Typer()
app.command()(dr)


@app.command()
def other() -> None:
    """A second command, so ``dr`` is a sub-command as in the real app."""


runner = CliRunner()


@pytest.fixture(scope="module")
def study_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("dr") / "out"
    result = runner.invoke(app, ["dr", str(SCENARIO), "--events", str(EVENTS), "--json",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def test_study_on_the_bundled_example(study_json):
    data, _ = study_json
    by_id = {e["event_id"]: e for e in data["events"]}
    assert [e["decision"] for e in data["events"]] == [
        "accepted", "declined", "accepted", "accepted", "cancelled"]
    late = by_id["EV-0320"]  # 10 minutes' notice just before the vans leave
    assert late["notice_minutes"] == 10.0 and late["at_risk"]
    assert late["reason"].startswith("declined: ") and " would leave at " in late["reason"]
    assert late["settlement"]["penalty_usd"] > 0  # the capacity program settles it anyway
    night = by_id["EV-0325"]
    assert night["decision"] == "accepted" and night["settlement"]["actual_kw"] <= 100.0
    assert by_id["EV-0328"]["cancelled"] and by_id["EV-0328"]["settlement"] is None
    totals = data["totals"]
    assert (totals["accepted"], totals["declined"], totals["cancelled"]) == (3, 1, 1)
    assert totals["capacity_payment_usd"] == 400.0  # 50 kW × $8 × 1 month (March)
    assert totals["net_usd"] == pytest.approx(
        sum(e["net_usd"] for e in data["events"]) + totals["capacity_payment_usd"], abs=0.011)
    (season,) = data["seasons"]
    assert (season["events_called"], season["hours_called"], season["cap_events"],
            season["cap_hours"]) == (4, 14.0, 15, 40.0)
    assert data["readiness"]["with_accepted_events"]["met"] == data["readiness"][
        "without_events"]["met"]


def test_out_folder_has_every_file(study_json):
    data, out = study_json
    assert sorted(p.name for p in out.iterdir()) == [
        "events.csv", "events.png", "report.html", "seasons.csv", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["totals"] == data["totals"]
    frame = pd.read_csv(out / "events.csv")
    assert list(frame["event_id"]) == [e["event_id"] for e in data["events"]]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "plotly.js" in html and len(html) > 1_000_000  # the plotly library is embedded
    assert '<script src="http' not in html and "Baseline vs actual" in html
    assert html.count("plotly-graph-div") >= 4  # one plot per event not cancelled
    assert (out / "events.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_output(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("event_id,program,start,end,kind,value\n"
                      "A,capacity-with-penalty,2025-03-25 22:00,2025-03-26 02:00,curtail,100\n",
                      encoding="utf-8")
    result = runner.invoke(app, ["dr", str(SCENARIO), "--events", str(events)],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "1 of 1 events taken part in" in result.stdout
    assert "curtail 100 kW" in result.stdout and "accepted" in result.stdout
    assert "A (capacity-with-penalty) accepted: declining would cost $" in result.stdout
    assert "2025 all year" in result.stdout


def test_bad_events_csv_exits_2_and_writes_nothing(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("event_id,program,start,end,kind,value\n"
                      "A,capacity,2025-03-25 22:00,2025-03-26 02:00,curtail,100\n",
                      encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["dr", str(SCENARIO), "--events", str(events), "--out", str(out)])
    assert result.exit_code == 2
    assert "row 2, column program: unknown program 'capacity'" in result.output
    assert not out.exists()


def test_metered_settlement(tmp_path):
    # Meter data = the plan without events; every event that was not cancelled is settled
    # against it with the program's 10-of-10 baseline.
    sc = load_scenario(SCENARIO)
    events = read_events_csv(EVENTS, sc.horizon.timezone, with_presets(None), sc.horizon)
    planned = run_dr_study(sc, events[:1])
    meter = planned.base.site_load_kw
    path = tmp_path / "meter.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in meter.index], "kw": meter.to_numpy()}
                 ).to_csv(path, index=False)
    result = runner.invoke(app, ["dr", str(SCENARIO), "--events", str(EVENTS), "--metered",
                                 str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "metered"
    assert [e["decision"] for e in data["events"]] == ["accepted"] * 4 + ["cancelled"]
    first = data["events"][0]
    program = with_presets(None)["capacity-with-penalty"]
    baseline = event_baseline(program, events[0], meter, sc.horizon.timezone,
                              exclude_days=event_days(events, sc.horizon.timezone))
    direct = settle_event(events[0], program, meter, baseline)
    assert first["settlement"]["payment_usd"] == round(direct.payment_usd, 2)
    assert first["settlement"]["penalty_usd"] == round(direct.penalty_usd, 2)
    missing = runner.invoke(app, ["dr", str(SCENARIO), "--events", str(EVENTS), "--metered",
                                  str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "metered load CSV not found" in missing.output
