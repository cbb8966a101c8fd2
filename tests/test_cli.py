"""The ``fleetcharge`` command line, driven as a user drives it.

Runs whose stdout must be nothing but JSON go through a real subprocess (the HiGHS banner is
printed by C code straight to file descriptor 1, which an in-process runner cannot see); the
rest use typer's ``CliRunner`` (stdout and stderr captured separately) to stay fast. The
example's planning runs are module-scoped and shared.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetcharge.cli import app
from fleetcharge.tariff.library import library_names

EXAMPLE = Path(__file__).parents[1] / "examples" / "portland-delivery-50"
SCENARIO = EXAMPLE / "scenario.yaml"
TARIFF = "oregon/PGE_Sch85_TEMPLATE_placeholder_demand"
STRATEGIES = ("unmanaged", "balanced", "optimal")
MONTH_KEYS = {"month", "energy", "demand_flat", "demand_tou", "fixed", "export_credit", "total"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NEGATIVE_ZERO = re.compile(r"-0\.0(?![0-9])")

_SCRIPT = Path(sys.executable).parent / "fleetcharge"
FLEETCHARGE = ([str(_SCRIPT)] if _SCRIPT.exists()
               else [sys.executable, "-c", "from fleetcharge.cli import app; app()"])


def fleetcharge(*args: Any, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script; stdout and stderr kept apart."""
    return subprocess.run([*FLEETCHARGE, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, check=False)


def invoke(*args: Any):
    """Run the CLI in-process (fast); ``result.stdout`` / ``result.stderr`` are separate."""
    return CliRunner().invoke(app, [str(a) for a in args])


def plain(text: str) -> str:
    """Terminal text without colour codes, line breaks folded to spaces."""
    return " ".join(ANSI.sub("", text).split())


def no_traceback(result) -> None:
    """A handled failure: no Python exception escaped and no traceback was printed."""
    exc = getattr(result, "exception", None)
    assert exc is None or isinstance(exc, SystemExit), repr(exc)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


SESSIONS = """
vehicle_id,arrival,departure,energy_kwh
V1,2025-03-03 18:00,2025-03-04 06:00,40
V2,2025-03-03 19:00,2025-03-04 07:00,30
V3,2025-03-03 20:00,2025-03-04 05:00,50
"""


def quick_args(sessions: Path, *extra: Any) -> list[Any]:
    return ["plan", "--sessions", sessions, "--tariff", TARIFF, "--site-limit-kw", 100,
            "--start", "2025-03-03T12:00", "--end", "2025-03-04T12:00",
            "--timezone", "America/Los_Angeles", *extra]


def check_summary(s: dict[str, Any], strategy: str) -> None:
    """The public summary contract of one strategy."""
    assert s["strategy"] == strategy
    assert {"strategy", "bill", "peak_kw", "energy_kwh", "export_kwh", "readiness"} <= s.keys()
    bill = s["bill"]
    assert {"total", "energy", "demand", "fixed", "export_credit", "months"} <= bill.keys()
    assert bill["months"], "at least one billing month"
    for m in bill["months"]:
        assert MONTH_KEYS <= m.keys()
        assert re.fullmatch(r"\d{4}-\d{2}", m["month"])
        assert m["export_credit"] <= 0
    items = [bill["energy"], bill["demand"], bill["fixed"], bill["export_credit"],
             bill.get("minimum_adjustment", 0.0)]
    # As on a utility bill, line items are rounded to the cent and the total is their sum.
    assert bill["total"] == pytest.approx(sum(items), abs=1e-6)
    assert bill["total"] == pytest.approx(sum(m["total"] for m in bill["months"]), abs=1e-6)
    for m in bill["months"]:
        line = ("energy", "demand_flat", "demand_tou", "ratchet", "coincident", "subscription",
                "fixed", "minimum_adjustment", "export_credit")
        assert m["total"] == pytest.approx(sum(m[k] for k in line), abs=1e-6)
    assert bill["export_credit"] <= 0
    assert s["peak_kw"] > 0 and s["energy_kwh"] > 0 and s["export_kwh"] >= 0
    r = s["readiness"]
    assert {"departures", "met", "shortfall_kwh"} <= r.keys()
    assert 0 <= r["met"] <= r["departures"] and r["shortfall_kwh"] >= 0


# ------------------------------------------------------------------- the bundled example
@pytest.fixture(scope="module")
def unmanaged_run() -> subprocess.CompletedProcess[str]:
    return fleetcharge("plan", SCENARIO, "--strategy", "unmanaged", "--json")


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """All three strategies with ``--json --out DIR``; DIR already holds a user's files."""
    out = tmp_path_factory.mktemp("compare") / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    (out / "old").mkdir()
    (out / "old" / "keep.csv").write_text("a,b\n1,2\n")
    return fleetcharge("plan", SCENARIO, "--json", "--out", out), out


def test_plan_one_strategy_json_contract(unmanaged_run) -> None:
    assert unmanaged_run.returncode == 0, unmanaged_run.stderr
    assert unmanaged_run.stdout.lstrip().startswith("{")
    data = json.loads(unmanaged_run.stdout)  # stdout is JSON and nothing else
    check_summary(data, "unmanaged")
    assert data["readiness"]["met"] == data["readiness"]["departures"] > 1000
    assert not NEGATIVE_ZERO.search(unmanaged_run.stdout)
    assert "Traceback" not in unmanaged_run.stderr


def test_plan_comparison_json(compare_run) -> None:
    run, _ = compare_run
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert list(data) == ["comparison"]
    assert [s["strategy"] for s in data["comparison"]] == list(STRATEGIES)
    for s in data["comparison"]:
        check_summary(s, s["strategy"])
        assert s["readiness"]["met"] == s["readiness"]["departures"]
    total = {s["strategy"]: s["bill"]["total"] for s in data["comparison"]}
    assert total["optimal"] < total["balanced"] < total["unmanaged"]
    assert not NEGATIVE_ZERO.search(run.stdout)
    assert "Running HiGHS" not in run.stdout and "Copyright" not in run.stdout  # no banner


def test_plan_unmanaged_matches_comparison(unmanaged_run, compare_run) -> None:
    alone = json.loads(unmanaged_run.stdout)
    first = json.loads(compare_run[0].stdout)["comparison"][0]
    assert alone["bill"]["total"] == first["bill"]["total"]


def test_plan_out_writes_all_files_and_keeps_others(compare_run) -> None:
    run, out = compare_run
    assert run.returncode == 0, run.stderr
    names = {p.name for p in out.iterdir()}
    expected = {"site_load.csv", "summary.json", "site_load.png", "report.html"}
    expected |= {f"plan_{s}.csv" for s in STRATEGIES}
    expected |= {f"readiness_{s}.csv" for s in STRATEGIES}
    assert expected <= names
    assert names - expected == {"notes.txt", "old"}  # no temporary folders left behind
    assert (out / "notes.txt").read_text() == "mine\n"
    assert (out / "old" / "keep.csv").read_text() == "a,b\n1,2\n"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".fleetcharge-")]

    assert (out / "site_load.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script src=\"http" not in html and "<script src='http" not in html
    assert "plotly.js" in html and len(html) > 1_000_000  # the plotly library is embedded
    assert not NEGATIVE_ZERO.search((out / "summary.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(run.stdout)
    header = (out / "plan_optimal.csv").read_text().splitlines()[0].split(",")
    assert {"timestamp", "vehicle_id", "session_id", "power_kw", "soc"} <= set(header)
    load_header = (out / "site_load.csv").read_text().splitlines()[0].split(",")
    assert load_header[0] == "timestamp"
    assert {f"{s}_kw" for s in STRATEGIES} <= set(load_header)
    assert f"report: {out / 'report.html'}" in run.stderr  # the path, never broken


# --------------------------------------------------------------------------- quick path
def test_quick_path_plans_a_sessions_csv(tmp_path) -> None:
    sessions = write(tmp_path / "sessions.csv", SESSIONS)
    result = invoke(*quick_args(sessions, "--json"))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["strategy"] for s in data["comparison"]] == list(STRATEGIES)
    for s in data["comparison"]:
        check_summary(s, s["strategy"])
        assert s["readiness"]["departures"] == 3
        assert s["readiness"]["met"] == 3
        assert s["energy_kwh"] == pytest.approx(120.0, abs=0.01)
        assert s["peak_kw"] <= 100.0 + 1e-6 or s["strategy"] == "unmanaged"


def test_quick_path_human_table(tmp_path) -> None:
    sessions = write(tmp_path / "sessions.csv", SESSIONS)
    result = invoke(*quick_args(sessions, "--strategy", "balanced"))
    assert result.exit_code == 0, result.stderr
    text = plain(result.stdout)
    assert "balanced" in text and "Total bill" in text and "3/3" in text


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ((), ["--sessions", "--tariff", "--site-limit-kw", "--start", "--end"]),
        (("--sessions", "s.csv", "--tariff", TARIFF), ["--site-limit-kw", "--start", "--end"]),
        (("--sessions", "s.csv", "--site-limit-kw", "50", "--start", "2025-03-03",
          "--end", "2025-03-04"), ["--tariff"]),
    ],
)
def test_quick_path_missing_options(given, missing) -> None:
    result = invoke("plan", *given)
    assert result.exit_code == 2
    no_traceback(result)
    err = plain(result.stderr)
    named = re.search(r"needs (.*?) \(see", err)
    assert named, err
    assert named.group(1).split(", ") == missing
    assert result.stdout == ""


def test_scenario_and_quick_path_together_is_refused(tmp_path) -> None:
    result = invoke("plan", SCENARIO, "--tariff", TARIFF)
    assert result.exit_code == 2
    no_traceback(result)
    assert "not both" in plain(result.stderr)


# --------------------------------------------------------------------------------- bill
Z = [[0] * 24 for _ in range(12)]


def tiny_tariff(path: Path, sell: float | None = None) -> Path:
    """$0.10/kWh all hours, $10/kW monthly peak, $100/month fixed (optional export price)."""
    tier: dict[str, Any] = {"rate": 0.10, "unit": "kWh"}
    if sell is not None:
        tier["sell"] = sell
    urdb = {
        "name": "tiny flat test",
        "energyratestructure": [[tier]],
        "energyweekdayschedule": Z,
        "energyweekendschedule": Z,
        "flatdemandstructure": [[{"rate": 10.0}]],
        "flatdemandmonths": [0] * 12,
        "fixedchargefirstmeter": 100.0,
        "fixedchargeunits": "$/month",
    }
    path.write_text(json.dumps(urdb))
    return path


def january_load(path: Path, overrides: dict[int, float]) -> Path:
    """Hourly January 2018 (UTC, 744 h) at 10 kW, with some hours overridden."""
    rows = ["timestamp,kw"]
    for h in range(744):
        day, hour = divmod(h, 24)
        rows.append(f"2018-01-{day + 1:02d}T{hour:02d}:00,{overrides.get(h, 10.0):g}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_bill_json_hand_computed(tmp_path) -> None:
    tariff = tiny_tariff(tmp_path / "tiny.json")
    load = january_load(tmp_path / "load.csv", {100: 50.0})
    result = invoke("bill", "--tariff", tariff, "--load", load, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [m["month"] for m in data["months"]] == ["2018-01"]
    m = data["months"][0]
    assert MONTH_KEYS <= m.keys()
    # 743 h × 10 kW + 1 h × 50 kW = 7480 kWh at $0.10; peak 50 kW at $10/kW; $100 fixed
    assert m["energy"] == pytest.approx(748.0, abs=0.005)
    assert m["demand_flat"] == pytest.approx(500.0, abs=0.005)
    assert m["demand_tou"] == 0.0
    assert m["fixed"] == pytest.approx(100.0, abs=0.005)
    assert m["export_credit"] == 0.0
    assert m["total"] == pytest.approx(1348.0, abs=0.005)
    assert data["total"] == pytest.approx(1348.0, abs=0.005)
    assert not NEGATIVE_ZERO.search(result.stdout), "a zero export credit printed as -0.0"


def test_bill_export_credit_is_negative(tmp_path) -> None:
    tariff = tiny_tariff(tmp_path / "tiny_sell.json", sell=0.04)
    load = january_load(tmp_path / "load.csv", {100: 50.0, 200: -20.0, 201: -20.0})
    result = invoke("bill", "--tariff", tariff, "--load", load, "--json")
    assert result.exit_code == 0, result.stderr
    m = json.loads(result.stdout)["months"][0]
    # import 7460 kWh; export 2 h × 20 kW = 40 kWh credited at $0.04
    assert m["energy"] == pytest.approx(746.0, abs=0.005)
    assert m["export_credit"] == pytest.approx(-1.60, abs=0.005)
    assert m["total"] == pytest.approx(746.0 + 500.0 + 100.0 - 1.60, abs=0.005)

    table = invoke("bill", "--tariff", tariff, "--load", load)
    assert table.exit_code == 0, table.stderr
    text = plain(table.stdout)
    assert "-$1.60" in text and "$1,344.40" in text and "$-" not in text


def test_bill_with_a_library_tariff_name(tmp_path) -> None:
    load = january_load(tmp_path / "load.csv", {})
    for name in (TARIFF, "PGE_Sch85_TEMPLATE_placeholder_demand"):  # full name, unique suffix
        result = invoke("bill", "--tariff", name, "--load", load, "--timezone",
                        "America/Los_Angeles", "--json")
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["total"] > 0 and data["months"][0]["fixed"] > 0


def test_bill_missing_option_is_a_usage_error(tmp_path) -> None:
    result = invoke("bill", "--load", january_load(tmp_path / "load.csv", {}))
    assert result.exit_code == 2
    no_traceback(result)
    assert "--tariff" in plain(result.stderr)


# ------------------------------------------------------------------------------ tariffs
def test_tariffs_list_shows_every_bundled_tariff() -> None:
    names = library_names()
    assert len(names) >= 19
    result = invoke("tariffs", "list")
    assert result.exit_code == 0, result.stderr
    text = ANSI.sub("", result.stdout)
    listed = set(text.split())
    missing = [n for n in names if n not in listed]  # each name whole, never cut to "…"
    assert not missing

    as_json = invoke("tariffs", "list", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    infos = json.loads(as_json.stdout)
    assert [i["name"] for i in infos] == names
    for i in infos:
        assert {"name", "utility", "rate_name", "features"} <= i.keys()
    assert TARIFF in names


# ----------------------------------------------------------------------------- generate
def test_generate_is_deterministic_and_plannable(tmp_path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        result = invoke("generate", "delivery-vans", "--vehicles", 5, "--days", 3, "--seed", 1,
                        "--out", d)
        assert result.exit_code == 0, result.stderr
        assert f"{d / 'scenario.yaml'}" in result.stderr  # the path, never broken
    files = sorted(p.name for p in dirs[0].iterdir())
    assert "scenario.yaml" in files and files == sorted(p.name for p in dirs[1].iterdir())
    for name in files:
        assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes(), name

    other = invoke("generate", "delivery-vans", "--vehicles", 5, "--days", 3, "--seed", 2,
                   "--out", tmp_path / "c")
    assert other.exit_code == 0, other.stderr
    assert (tmp_path / "c" / "sessions.csv").read_bytes() != (dirs[0] / "sessions.csv").read_bytes()

    result = invoke("plan", dirs[0] / "scenario.yaml", "--strategy", "balanced", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    check_summary(data, "balanced")
    assert data["readiness"]["departures"] > 0


def test_generate_unknown_kind(tmp_path) -> None:
    result = invoke("generate", "delivery-trucks", "--out", tmp_path / "g")
    assert result.exit_code == 2
    no_traceback(result)
    assert "delivery-vans" in plain(result.stderr)
    assert not (tmp_path / "g").exists()


# ---------------------------------------------------------------------------- bad input
def _typo_scenario(tmp: Path) -> list[Any]:
    for name in ("sessions.csv", "building.csv"):
        shutil.copy(EXAMPLE / name, tmp / name)
    text = SCENARIO.read_text().replace("service_limit_kw:", "service_limt_kw:")
    return ["plan", write(tmp / "scenario.yaml", text)]


def _backwards_sessions(tmp: Path) -> list[Any]:
    bad = SESSIONS.replace("V2,2025-03-03 19:00,2025-03-04 07:00",
                           "V2,2025-03-04 07:00,2025-03-03 19:00")
    return quick_args(write(tmp / "sessions.csv", bad))


def _overlapping_sessions(tmp: Path) -> list[Any]:
    bad = SESSIONS + "V1,2025-03-04 05:00,2025-03-04 09:00,10\n"
    return quick_args(write(tmp / "sessions.csv", bad))


def _unknown_tariff(tmp: Path) -> list[Any]:
    args = quick_args(write(tmp / "sessions.csv", SESSIONS))
    args[args.index(TARIFF)] = "oregon/No_Such_Tariff"
    return args


def _bad_load_value(tmp: Path) -> list[Any]:
    rows = ["timestamp,kw"] + [f"2025-03-03T{h:02d}:00,{12.5 if h != 3 else 'n/a'}"
                               for h in range(24)]
    load = write(tmp / "building.csv", "\n".join(rows) + "\n")
    return quick_args(write(tmp / "sessions.csv", SESSIONS), "--building-load", load)


def _unknown_strategy(tmp: Path) -> list[Any]:
    return ["plan", SCENARIO, "--strategy", "fastest"]


BAD_INPUT = {
    # case: (arguments, patterns stderr must match: file, row/field, what to do)
    "typo-key": (_typo_scenario, [r"scenario\.yaml", r"site\.service_limt_kw",
                                  r"unknown field", r"typo"]),
    "departure-before-arrival": (_backwards_sessions, [r"sessions\.csv", r"row 3",
                                                       r"departure .* is not after arrival",
                                                       r"fix the times"]),
    "overlap": (_overlapping_sessions, [r"sessions\.csv", r"rows 2 and 5", r"vehicle 'V1'",
                                        r"two sessions at once", r"fix the times"]),
    "unknown-tariff": (_unknown_tariff, [r"tariff", r"'oregon/No_Such_Tariff'",
                                         r"fleetcharge tariffs list", r"path of a URDB JSON"]),
    "bad-kw": (_bad_load_value, [r"building\.csv", r"row 5, column kw", r"'n/a' is not a number"]),
    "unknown-strategy": (_unknown_strategy, [r"--strategy", r"'fastest'",
                                             r"choose one of unmanaged, balanced, optimal"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(tmp_path, case) -> None:
    build, patterns = BAD_INPUT[case]
    out = tmp_path / "out"
    args = build(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke(*args, "--out", out)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    no_traceback(result)
    err = plain(result.stderr)
    assert err.startswith("error:"), err
    for pattern in patterns:
        assert re.search(pattern, err), f"{pattern!r} not in: {err}"
    assert result.stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no stray temp folders


def test_bad_load_csv_in_bill(tmp_path) -> None:
    load = january_load(tmp_path / "load.csv", {})
    lines = load.read_text().splitlines()
    lines[3] = lines[3].split(",")[0] + ",twelve"
    load.write_text("\n".join(lines) + "\n")
    result = invoke("bill", "--tariff", tiny_tariff(tmp_path / "t.json"), "--load", load,
                    "--json")
    assert result.exit_code == 2
    no_traceback(result)
    err = plain(result.stderr)
    assert "load.csv" in err and "row 4, column kw" in err and "'twelve' is not a number" in err
    assert result.stdout == ""


def test_bill_unknown_timezone_names_the_option(tmp_path) -> None:
    load = january_load(tmp_path / "load.csv", {})
    result = invoke("bill", "--tariff", TARIFF, "--load", load, "--timezone", "Mars/Olympus")
    assert result.exit_code == 2
    no_traceback(result)
    assert "--timezone" in plain(result.stderr) and "'Mars/Olympus'" in plain(result.stderr)


def test_out_path_that_is_a_file_is_refused_before_planning(tmp_path) -> None:
    sessions = write(tmp_path / "sessions.csv", SESSIONS)
    target = write(tmp_path / "taken.txt", "not a folder\n")
    result = invoke(*quick_args(sessions, "--strategy", "unmanaged", "--out", target))
    assert result.exit_code == 2
    no_traceback(result)
    assert "taken.txt" in plain(result.stderr) and "not a folder" in plain(result.stderr)
    assert target.read_text() == "not a folder\n"


def test_bad_input_end_to_end_no_traceback(tmp_path) -> None:
    """The real console script: exit code 2, one message on stderr, empty stdout."""
    out = tmp_path / "out"
    run = fleetcharge(*_overlapping_sessions(tmp_path), "--out", out)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert plain(run.stderr).startswith("error:")
    assert "sessions.csv" in run.stderr and "rows 2 and 5" in plain(run.stderr)
    assert not out.exists()
