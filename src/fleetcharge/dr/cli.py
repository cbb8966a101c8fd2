"""``fleetcharge dr``: plan a depot around demand-response events, or settle metered ones.

The function :func:`dr` is a typer command; the main app registers it
(``app.command()(dr)``). Bad input prints one message (file, row/field, fix) and exits with
code 2 before anything is written.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from fleetcharge.errors import InputError


def dr(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO.yaml",
                                                  help="Scenario file.")],
    events_file: Annotated[Path, typer.Option(
        "--events", metavar="EVENTS.csv",
        help="Events CSV: event_id, program, start, end, kind (curtail | reduce | price), "
             "value [, received_at, cancelled].")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the study as JSON.")] = False,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Write events.csv, seasons.csv, summary.json, events.png and "
                      "report.html here.")] = None,
    metered: Annotated[Optional[Path], typer.Option(
        "--metered", metavar="LOAD.csv",
        help="Metered site load (timestamp,kw): settle the events against it instead of "
             "planning (after-the-fact analysis).")] = None,
) -> None:
    """Demand response: decide each event (readiness first, then money) and settle it."""
    from fleetcharge.cli import _check_out_dir, _fail, _print_json, _show_warnings
    from fleetcharge.dr.events import read_events_csv
    from fleetcharge.dr.planning import run_dr_study
    from fleetcharge.dr.programs import with_presets
    from fleetcharge.dr.report import (
        events_table,
        headline,
        reasons,
        seasons_table,
        write_dr_outputs,
    )
    from fleetcharge.loadcsv import read_load_csv
    from fleetcharge.scenario import load_scenario

    err, out = Console(stderr=True), Console()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if out_dir is not None:
                _check_out_dir(out_dir)
            scenario = load_scenario(scenario_file)
            tz = scenario.horizon.timezone
            programs = with_presets(scenario.metadata.get("dr_programs"))
            events = read_events_csv(events_file, tz, programs,
                                     None if metered is not None else scenario.horizon)
            metered_kw = None
            if metered is not None:
                if not metered.is_file():
                    raise InputError("metered load CSV not found; check the path",
                                     file=str(metered), location="--metered")
                metered_kw = read_load_csv(metered, tz)
            study = run_dr_study(scenario, events, programs, metered_kw=metered_kw)
        except InputError as exc:
            _show_warnings(caught)
            _fail(exc)
    _show_warnings(caught)
    if as_json:
        _print_json(study.to_dict())
    else:
        out.print(f"[bold green]{escape(headline(study))}[/]", soft_wrap=True)
        out.print()
        out.print(events_table(study))
        out.print(reasons(study), soft_wrap=True)
        out.print()
        out.print(seasons_table(study))
    if out_dir is not None:
        try:
            written = write_dr_outputs(study, out_dir)
        except OSError as exc:
            _fail(InputError(f"cannot write the outputs: {exc.strerror or exc}; choose another "
                             "--out folder or check its permissions", file=str(out_dir),
                             location="--out"))
        err.print(escape(f"report: {out_dir / 'report.html'}  ({len(written)} files in "
                         f"{out_dir})"), soft_wrap=True)
