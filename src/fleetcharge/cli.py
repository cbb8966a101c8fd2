"""The ``fleetcharge`` command line: plan, v2g, dr, bill, serve, simulate-depot, chargers,
tariffs, generate.

Bad input prints one clear message (file, row/field, fix) and exits with code 2; nothing is
written. Machine-readable output (``--json``) goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from fleetcharge.dr.cli import dr
from fleetcharge.errors import InputError
from fleetcharge.ops.cli_chargers import DEFAULT_DB_URL, chargers_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Plan and control depot charging of commercial EV fleets.",
)
tariffs_app = typer.Typer(no_args_is_help=True, help="The bundled tariff library.")
app.add_typer(tariffs_app, name="tariffs")
app.add_typer(chargers_app, name="chargers")
app.command()(dr)

err = Console(stderr=True)
out = Console()

EXIT_INPUT = 2


def _fail(exc: Exception) -> NoReturn:
    # soft_wrap: never hard-break a message (paths, commands) at the terminal width
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def _no_negative_zero(obj: Any) -> Any:
    """``obj`` with every ``-0.0`` replaced by ``0.0`` (rounding tiny credits gives ``-0.0``)."""
    if isinstance(obj, float):
        return obj + 0.0  # -0.0 + 0.0 == 0.0; every other value is unchanged
    if isinstance(obj, dict):
        return {k: _no_negative_zero(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_negative_zero(v) for v in obj]
    return obj


def _print_json(obj: Any) -> None:
    """Machine-readable output: JSON only, on stdout."""
    print(json.dumps(_no_negative_zero(obj), indent=2))


def _money(x: float) -> str:
    """``-$1.60`` rather than ``$-1.60``, and never ``$-0.00``."""
    return f"-${-x:,.2f}" if round(x, 2) < 0 else f"${abs(x):,.2f}"


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an ``--out`` path that cannot become a folder, before any work is done."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a folder; choose another --out path",
                         file=str(out_dir), location="--out")


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            err.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


@app.command()
def plan(
    scenario_file: Annotated[Optional[Path], typer.Argument(
        metavar="SCENARIO.yaml", help="Scenario file (omit to use --sessions/--tariff).")] = None,
    strategy: Annotated[Optional[str], typer.Option(
        help="unmanaged | balanced | optimal | v2g (default: compare the first three).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Write plan CSVs, site load, summary JSON and the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary JSON.")] = False,
    sessions: Annotated[Optional[Path], typer.Option(help="Quick path: sessions CSV.")] = None,
    tariff: Annotated[Optional[str], typer.Option(
        help="Quick path: tariff JSON path or library name.")] = None,
    site_limit_kw: Annotated[Optional[float], typer.Option(
        help="Quick path: service (import) limit, kW.")] = None,
    start: Annotated[Optional[str], typer.Option(help="Quick path: horizon start (ISO).")] = None,
    end: Annotated[Optional[str], typer.Option(help="Quick path: horizon end (ISO).")] = None,
    timezone: Annotated[str, typer.Option(help="Quick path: site timezone.")] = "UTC",
    resolution: Annotated[int, typer.Option(help="Quick path: step length in minutes (5, 15, 30 or 60).")] = 15,
    building_load: Annotated[Optional[Path], typer.Option(
        help="Quick path: building load CSV (timestamp,kw).")] = None,
    default_max_kw: Annotated[float, typer.Option(
        help="Quick path: charger power where the CSV has no max_kw, kW.")] = 19.2,
) -> None:
    """Plan a depot's charging with one or all strategies and compare bills and readiness."""
    from fleetcharge.accounting import evaluate
    from fleetcharge.report import comparison_table, headline, summary_json, write_outputs
    from fleetcharge.scenario import load_scenario, scenario_from_sessions
    from fleetcharge.strategies import DEFAULT_STRATEGIES, STRATEGIES, run_strategy

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if strategy is not None and strategy.strip().lower() not in STRATEGIES:
                raise InputError(
                    f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)} "
                    "(or omit --strategy to run all and compare)",
                    location="--strategy",
                )
            if out_dir is not None:
                _check_out_dir(out_dir)
            if scenario_file is not None:
                if sessions is not None or tariff is not None:
                    raise InputError(
                        "give either SCENARIO.yaml or --sessions/--tariff, not both",
                        location="arguments",
                    )
                scenario = load_scenario(scenario_file)
            else:
                missing = [n for n, v in (("--sessions", sessions), ("--tariff", tariff),
                                          ("--site-limit-kw", site_limit_kw), ("--start", start),
                                          ("--end", end)) if v is None]
                if missing:
                    raise InputError(
                        "without SCENARIO.yaml the quick path needs "
                        + ", ".join(missing) + " (see `fleetcharge plan --help`)",
                        location="arguments",
                    )
                scenario = scenario_from_sessions(
                    sessions, tariff, site_limit_kw, start, end, timezone=timezone,
                    resolution_min=resolution, building_load_csv=building_load,
                    default_max_kw=default_max_kw,
                )
            names = [strategy] if strategy else list(DEFAULT_STRATEGIES)
            outcomes = [evaluate(run_strategy(scenario, n)) for n in names]
        except InputError as exc:
            _show_warnings(caught)
            _fail(exc)
    _show_warnings(caught)
    elapsed = time.perf_counter() - t0
    title = f"{scenario.name}: {len(scenario.vehicles)} vehicles, {len(scenario.sessions)} sessions, " \
            f"{scenario.horizon.start:%Y-%m-%d} to {scenario.horizon.end:%Y-%m-%d}"
    if as_json:
        _print_json(summary_json(outcomes))
    else:
        line = headline(outcomes)
        if line:
            out.print(f"[bold green]{escape(line)}[/]", soft_wrap=True)
            out.print()
        out.print(comparison_table(outcomes, title))
        out.print(f"[dim]tariff: {escape(scenario.tariff.name)} · planned in {elapsed:.2f} s[/]")
    if out_dir is not None:
        try:
            written = write_outputs(outcomes, out_dir, title)
        except OSError as exc:
            _fail(InputError(f"cannot write the outputs: {exc.strerror or exc}; choose another "
                             "--out folder or check its permissions", file=str(out_dir),
                             location="--out"))
        report = next(p for p in written if p.name == "report.html")
        err.print(escape(f"report: {report}  ({len(written)} files in {out_dir})"),
                  soft_wrap=True)


@app.command()
def v2g(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO.yaml",
                                                  help="Scenario file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the study as JSON.")] = False,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Write summary.json, stack/envelope/firm-capacity CSVs, the V2G plan "
                      "and report.html here.")] = None,
    samples: Annotated[int, typer.Option(help="Monte Carlo samples for readiness risk.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed of the Monte Carlo.")] = 7,
) -> None:
    """Is V2G an opportunity or a distraction for this fleet? The verdict, with the numbers."""
    from fleetcharge.scenario import load_scenario
    from fleetcharge.v2g.report import verdict_screen, write_study
    from fleetcharge.v2g.study import run_study, study_json

    if out_dir is not None:
        try:
            _check_out_dir(out_dir)
        except InputError as exc:
            _fail(exc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if samples < 1:
                raise InputError(f"--samples must be at least 1, got {samples}",
                                 location="--samples")
            study = run_study(load_scenario(scenario_file), samples=samples, seed=seed)
        except InputError as exc:
            _show_warnings(caught)
            _fail(exc)
    _show_warnings(caught)
    if as_json:
        _print_json(study_json(study))
    else:
        out.print(verdict_screen(study))
    if out_dir is not None:
        written = write_study(study, out_dir)
        err.print(escape(f"report: {out_dir / 'report.html'}  ({len(written)} files in "
                         f"{out_dir})"), soft_wrap=True)


@app.command()
def bill(
    tariff: Annotated[str, typer.Option(help="Tariff JSON path or library name.")],
    load: Annotated[Path, typer.Option(help="CSV with columns timestamp,kw (import +, export −).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the bill as JSON.")] = False,
    timezone: Annotated[str, typer.Option(
        help="Timezone of naive timestamps and of the tariff's hours.")] = "UTC",
    billing_cycle_day: Annotated[int, typer.Option(
        help="Meter-read day of the month (1 = calendar months).")] = 1,
    export_price: Annotated[Optional[float], typer.Option(
        help="Flat export credit [$/kWh], overriding the tariff's sell rates.")] = None,
) -> None:
    """Compute a utility bill, month by month and line by line, for a metered load."""
    from fleetcharge.billing import compute_bill
    from fleetcharge.loadcsv import read_load_csv
    from fleetcharge.scenario.schema import check_timezone
    from fleetcharge.tariff.library import load_tariff

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                check_timezone(timezone)
            except ValueError as exc:
                raise InputError(str(exc), location="--timezone") from None
            tariff_obj = load_tariff(tariff)
            load_kw = read_load_csv(load, timezone)
            result = compute_bill(tariff_obj, load_kw, billing_cycle_day=billing_cycle_day,
                                  export_price_per_kwh=export_price)
        except InputError as exc:
            _show_warnings(caught)
            _fail(exc)
    _show_warnings(caught)
    if as_json:
        _print_json(result.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"{tariff_obj.name}", title_justify="left")
    cols = ["month", "energy", "demand_flat", "demand_tou", "fixed", "export_credit", "total"]
    for c in cols:
        # spaces let a narrow terminal wrap a header instead of cutting it to "demand_f…"
        table.add_column(c.replace("_", " "), justify="right")
    data = result.to_dict()
    for m in data["months"]:
        table.add_row(m["month"], *[_money(m[c]) for c in cols[1:]])
    table.add_row("total", *[""] * (len(cols) - 2), _money(data["total"]), style="bold")
    out.print(table)


@app.command()
def serve(
    scenario_file: Annotated[Path, typer.Argument(
        metavar="SCENARIO.yaml", help="The depot: chargers (= OCPP identities), fleet, tariff.")],
    db: Annotated[str, typer.Option("--db", help="Database URL: sqlite:///file.db or "
                                    "postgresql+psycopg://user@host/db.")] = DEFAULT_DB_URL,
    ocpp_host: Annotated[str, typer.Option(help="OCPP websocket listen address.")] = "0.0.0.0",
    ocpp_port: Annotated[int, typer.Option(help="OCPP websocket port.")] = 9000,
    http_host: Annotated[str, typer.Option(help="REST API listen address.")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(help="REST API port.")] = 8000,
    tls_cert: Annotated[Optional[Path], typer.Option(
        help="PEM certificate: serve wss:// (OCPP security profile 2).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="PEM private key for --tls-cert.")] = None,
    speed: Annotated[float, typer.Option(
        help="Simulated seconds per real second (give simulate-depot the same).")] = 1.0,
    start: Annotated[Optional[str], typer.Option(
        help="Simulated start time, ISO 8601 (default: now).")] = None,
    replan_timeout: Annotated[float, typer.Option(
        help="Seconds a re-plan may take before the last good plan is kept.")] = 60.0,
    start_epoch: Annotated[Optional[float], typer.Option(
        help="Unix time at which the clock reads --start (give simulate-depot the same).")
    ] = None,
    vtn_url: Annotated[Optional[str], typer.Option(
        help="Join demand response: the utility's OpenADR 2.0b VTN URL.")] = None,
    ven_name: Annotated[str, typer.Option(help="This depot's VEN name at the VTN.")
                        ] = "fleetcharge",
    dr_program: Annotated[str, typer.Option(
        help="DR program events are judged under (preset or scenario program).")
    ] = "capacity-with-penalty",
    simple_levels_kw: Annotated[str, typer.Option(
        help="Site import limit (kW) for SIMPLE levels 1,2,3, e.g. 300,200,100.")] = "",
    ven_cert: Annotated[Optional[Path], typer.Option(help="VEN certificate (PEM) for signed "
                                                          "OpenADR messages.")] = None,
    ven_key: Annotated[Optional[Path], typer.Option(help="VEN private key (PEM).")] = None,
    vtn_fingerprint: Annotated[Optional[str], typer.Option(
        help="The VTN certificate's fingerprint.")] = None,
) -> None:
    """Run the depot live: OCPP 1.6J/2.0.1/2.1 central system, re-plans, profiles, REST API."""
    import logging

    from fleetcharge.ops.serve import VENSettings, run_serve

    ven = None
    if vtn_url is not None:
        try:
            levels = [float(x) for x in simple_levels_kw.split(",") if x.strip()]
        except ValueError:
            _fail(InputError(f"give kW numbers separated by commas, e.g. 300,200,100; got "
                             f"{simple_levels_kw!r}", location="--simple-levels-kw"))
        ven = VENSettings(vtn_url, ven_name, dr_program,
                          {i + 1: kw for i, kw in enumerate(levels)},
                          cert=None if ven_cert is None else str(ven_cert),
                          key=None if ven_key is None else str(ven_key),
                          vtn_fingerprint=vtn_fingerprint)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    try:
        run_serve(scenario_file, db_url=db, ocpp_host=ocpp_host, ocpp_port=ocpp_port,
                  http_host=http_host, http_port=http_port, tls_cert=tls_cert, tls_key=tls_key,
                  speed=speed, start=start, replan_timeout_s=replan_timeout, ven=ven,
                  start_epoch=start_epoch)
    except InputError as exc:
        _fail(exc)


@app.command("simulate-depot")
def simulate_depot(
    scenario_file: Annotated[Path, typer.Argument(
        metavar="SCENARIO.yaml", help="One simulated charge point per charger, driven by the "
                                      "scenario's sessions.")],
    url: Annotated[str, typer.Option(help="Central system, ws://HOST:PORT or wss://HOST:PORT.")],
    password: Annotated[Optional[str], typer.Option(
        envvar="FLEETCHARGE_CP_PASSWORD",
        help="Basic auth password of every charge point (or set FLEETCHARGE_CP_PASSWORD).")
    ] = None,
    speed: Annotated[float, typer.Option(
        help="Simulated seconds per real second (give serve the same).")] = 60.0,
    start: Annotated[Optional[str], typer.Option(
        help="Simulated start, ISO 8601 (default: the first arrival; give serve the same).")
    ] = None,
    until: Annotated[Optional[str], typer.Option(
        help="Simulated end, ISO 8601 (default: the last departure).")] = None,
    versions: Annotated[str, typer.Option(
        help="OCPP versions, assigned round-robin over the chargers.")] = "1.6,2.0.1,2.1",
    meter_interval: Annotated[float, typer.Option(
        help="Simulated seconds between meter values.")] = 60.0,
    cafile: Annotated[Optional[Path], typer.Option(
        help="CA bundle (PEM) to verify a wss:// server.")] = None,
    start_epoch: Annotated[Optional[float], typer.Option(
        help="Unix time at which the clock reads --start (give serve the same).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Simulated OCPP 1.6J/2.0.1/2.1 charge points that charge the scenario's vehicles."""
    import pandas as pd

    from fleetcharge.ops.simulator import run_simulate_depot, summary_table

    try:
        if not password:
            raise InputError("give the charge points' password with --password or the "
                             "FLEETCHARGE_CP_PASSWORD environment variable (the one registered "
                             "with `fleetcharge chargers add ID --password-stdin`)",
                             location="--password")
        result = run_simulate_depot(
            scenario_file, url, password=password, speed=speed, start=start, until=until,
            versions=[v.strip() for v in versions.split(",") if v.strip()],
            meter_interval_s=meter_interval, cafile=cafile, start_epoch=start_epoch)
    except InputError as exc:
        _fail(exc)
    if as_json:
        stats = result.stats
        _print_json({
            "all_met": result.all_met,
            "peak_kw": round(result.peak_kw, 3),
            "sessions": [{k: (v.isoformat() if isinstance(v, pd.Timestamp) else v)
                          for k, v in dataclasses.asdict(r).items()} for r in result.sessions],
            "site_kw": {t.isoformat(): round(float(v), 3) for t, v in result.site_kw.items()},
            "messages": {"sent": stats.sent, "answered": stats.answered,
                         "errors": stats.errors, "timeouts": stats.timeouts,
                         "undelivered": stats.undelivered,
                         "latency_ms": stats.latency_percentiles_ms()},
            "versions": result.versions,
        })
    else:
        out.print(summary_table(result))
    if not result.all_met:
        raise typer.Exit(1)


@tariffs_app.command("list")
def tariffs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the bundled tariffs (use a name wherever a tariff path is accepted)."""
    from fleetcharge.tariff.library import list_tariffs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        infos = list_tariffs()
    if as_json:
        _print_json([i.to_dict() for i in infos])
        return
    # A list, not a table: a table column cuts long names to "…" on a normal terminal, and the
    # name is exactly what users need to copy.
    from rich.padding import Padding
    from rich.text import Text

    out.print(Text.assemble((f"{len(infos)} bundled tariffs", "bold"),
                            " (use a name wherever a tariff path is accepted):"))
    for i in infos:
        d = i.to_dict()
        about = " — ".join(str(x) for x in (d.get("utility"), d.get("rate_name")) if x)
        features = ", ".join(d.get("features") or [])
        out.print()
        out.print(Text(d["name"], style="bold cyan"), soft_wrap=True)
        detail = Text(about)
        if features:
            detail.append(f"  [{features}]", style="dim")
        out.print(Padding(detail, (0, 0, 0, 2), expand=False))


@app.command()
def generate(
    kind: Annotated[str, typer.Argument(help="delivery-vans | school-buses | transit-buses")],
    vehicles: Annotated[int, typer.Option(help="Number of vehicles.")] = 50,
    days: Annotated[int, typer.Option(help="Days to generate.")] = 31,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same scenario).")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the scenario to.")] = Path(
        "scenario"),
    start: Annotated[str, typer.Option(help="First day (local date).")] = "2025-03-03",
    tariff: Annotated[str, typer.Option(help="Tariff path or library name.")] = (
        "oregon/PGE_Sch85_TEMPLATE_placeholder_demand"),
) -> None:
    """Write a synthetic but realistic fleet scenario (YAML + CSV), deterministic per seed."""
    from fleetcharge.generate import generate_scenario

    try:
        path = generate_scenario(kind, vehicles=vehicles, days=days, seed=seed, out_dir=out_dir,
                                 start=start, tariff=tariff)
    except InputError as exc:
        _fail(exc)
    err.print(escape(f"scenario written: {path}"), soft_wrap=True)


def main() -> None:  # pragma: no cover - console entry point convenience
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
