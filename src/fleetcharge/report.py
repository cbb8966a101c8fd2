"""Outputs of a planning run: terminal table, CSV/JSON files, and an HTML report with plots.

Files are written to a temporary folder first and moved into place only when all of them exist,
so a failed run leaves nothing partial; files in the output folder that are not ours are kept.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from fleetcharge.accounting import Outcome, plan_frame

BILL_LINES: tuple[tuple[str, str], ...] = (
    ("energy", "Energy"),
    ("demand_flat", "Demand (all hours)"),
    ("demand_tou", "Demand (TOU periods)"),
    ("ratchet", "Demand ratchet"),
    ("coincident", "Coincident demand"),
    ("subscription", "Subscription"),
    ("fixed", "Fixed"),
    ("minimum_adjustment", "Minimum-charge adj."),
    ("export_credit", "Export credit"),
    ("total", "Total bill"),
)


def bill_lines(outcome: Outcome) -> dict[str, float]:
    """Bill line items summed over billing months [currency]."""
    months = outcome.bill.to_dict()["months"]
    return {key: float(sum(m.get(key, 0.0) or 0.0 for m in months)) for key, _ in BILL_LINES}


def comparison_table(outcomes: list[Outcome], title: str) -> Table:
    """A rich table: bill line items, peak, energy and readiness for each strategy.

    The last column is the saving of the last strategy against the first ($ and %).
    """
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for o in outcomes:
        table.add_column(o.strategy, justify="right")
    compare = len(outcomes) > 1
    if compare:
        table.add_column(f"{outcomes[-1].strategy} vs {outcomes[0].strategy}", justify="right")
    lines = [bill_lines(o) for o in outcomes]
    for key, label in BILL_LINES:
        values = [ln[key] for ln in lines]
        if key != "total" and all(abs(v) < 0.005 for v in values):
            continue
        row = [label] + [f"${v:,.2f}" for v in values]
        if compare:
            saving = values[0] - values[-1]
            pct = f" ({saving / values[0]:+.1%})" if abs(values[0]) > 0.005 else ""
            row.append(f"${saving:,.2f}{pct}".replace("(+", "(").replace("$-", "-$"))
        table.add_row(*row, style="bold" if key == "total" else None)
    table.add_row("Peak kW", *[f"{o.peak_kw:,.1f}" for o in outcomes],
                  *([f"{outcomes[0].peak_kw - outcomes[-1].peak_kw:,.1f} lower"] if compare else []))
    table.add_row("Energy kWh", *[f"{o.energy_kwh:,.0f}" for o in outcomes],
                  *([""] if compare else []))
    table.add_row(
        "Departures meeting target",
        *[f"{o.readiness.met}/{o.readiness.departures}" for o in outcomes],
        *([""] if compare else []),
    )
    table.add_row("Shortfall kWh", *[f"{o.readiness.shortfall_kwh:,.1f}" for o in outcomes],
                  *([""] if compare else []))
    table.add_row(
        "Over service limit",
        *[
            (f"{o.overload['steps']} steps, max {o.overload['max_kw']:,.1f} kW"
             if o.overload["steps"] else "never")
            for o in outcomes
        ],
        *([""] if compare else []),
    )
    return table


def headline(outcomes: list[Outcome]) -> str | None:
    """One sentence a fleet manager reads first: what the best plan saves against unmanaged."""
    by = {o.strategy: o for o in outcomes}
    if "unmanaged" not in by or len(by) < 2:
        return None
    base = by["unmanaged"]
    best = by.get("optimal") or min(outcomes, key=lambda o: o.bill.total)
    base_total, best_total = base.bill.summary()["total"], best.bill.summary()["total"]
    saving = base_total - best_total
    pct = saving / base_total if base_total else 0.0
    return (
        f"{best.strategy.capitalize()} charging: bill ${best_total:,.2f} vs "
        f"${base_total:,.2f} unmanaged (saves ${saving:,.2f}, {pct:.1%}); peak "
        f"{base.peak_kw:,.0f} → {best.peak_kw:,.0f} kW; departures ready "
        f"{best.readiness.met}/{best.readiness.departures} "
        f"(unmanaged {base.readiness.met}/{base.readiness.departures})."
    )


def summary_json(outcomes: list[Outcome]) -> dict[str, Any]:
    """One strategy: its summary object. Several: ``{"comparison": [summary, …]}``."""
    if len(outcomes) == 1:
        return outcomes[0].summary()
    return {"comparison": [o.summary() for o in outcomes]}


def representative_week(outcomes: list[Outcome]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The 7 days starting at local midnight before the first strategy's highest peak."""
    load = outcomes[0].site_load_kw
    index = load.index
    peak_at = load.idxmax()
    start = peak_at.normalize() - pd.Timedelta(days=int(peak_at.day_of_week))
    start = max(start, index[0].normalize())
    end = start + pd.Timedelta(days=7)
    if end > index[-1]:
        end = index[-1] + (index[1] - index[0])
        start = max(index[0], end - pd.Timedelta(days=7))
    return start, end


def _peak_blocks(outcome: Outcome, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple]:
    """Contiguous spans where the energy price is above the cheapest period (for shading)."""
    scenario = outcome.plan.scenario
    rate = np.asarray(scenario.tariff.energy_rate_per_kwh(scenario.horizon))
    index = scenario.horizon.index
    mask = (index >= start) & (index < end)
    idx, r = index[mask], rate[mask]
    if len(r) == 0 or np.allclose(r, r.min()):
        return []
    high = r > r.min() + 1e-12
    blocks = []
    step = pd.Timedelta(minutes=scenario.horizon.resolution_min)
    i = 0
    while i < len(high):
        if high[i]:
            j = i
            while j + 1 < len(high) and high[j + 1]:
                j += 1
            blocks.append((idx[i], idx[j] + step, float(r[i:j + 1].max())))
            i = j + 1
        else:
            i += 1
    return blocks


def write_png(outcomes: list[Outcome], path: Path) -> None:
    """Site load of each strategy over the representative week, price periods shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start, end = representative_week(outcomes)
    tz = str(outcomes[0].site_load_kw.index.tz)
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=110)
    for a, b, _ in _peak_blocks(outcomes[0], start, end):
        ax.axvspan(a, b, color="#f4d6a0", alpha=0.45, lw=0)
    for o in outcomes:
        week = o.site_load_kw[(o.site_load_kw.index >= start) & (o.site_load_kw.index < end)]
        ax.step(week.index, week.to_numpy(), where="post", lw=1.2,
                label=f"{o.strategy} (peak {o.peak_kw:,.0f} kW)")
    limit = outcomes[0].plan.scenario.site.service_limit_kw
    ax.axhline(limit, color="crimson", ls="--", lw=1, label=f"service limit {limit:,.0f} kW")
    ax.set_ylabel("site load [kW]")
    ax.set_title(f"Site load, week of {start:%Y-%m-%d} ({tz}); shaded: higher-price periods")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %H:%M", tz=start.tz))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_html(outcomes: list[Outcome], path: Path, title: str) -> None:
    """Self-contained HTML report (plotly JS embedded, no CDN): load, SOC and bill plots."""
    import plotly.graph_objects as go

    start, end = representative_week(outcomes)
    load_fig = go.Figure()
    for a, b, _ in _peak_blocks(outcomes[0], start, end):
        load_fig.add_vrect(x0=a, x1=b, fillcolor="orange", opacity=0.15, line_width=0)
    for o in outcomes:
        week = o.site_load_kw[(o.site_load_kw.index >= start) & (o.site_load_kw.index < end)]
        load_fig.add_trace(go.Scatter(x=week.index, y=week.to_numpy(), mode="lines",
                                      line_shape="hv", name=o.strategy))
    limit = outcomes[0].plan.scenario.site.service_limit_kw
    load_fig.add_hline(y=limit, line_dash="dash", line_color="crimson",
                       annotation_text=f"service limit {limit:,.0f} kW")
    load_fig.update_layout(title=f"Site load, week of {start:%Y-%m-%d} (shaded: higher-price periods)",
                           yaxis_title="kW", height=450)

    bill_fig = go.Figure()
    lines = [bill_lines(o) for o in outcomes]
    for key, label in BILL_LINES:
        if key == "total" or all(abs(ln[key]) < 0.005 for ln in lines):
            continue
        bill_fig.add_trace(go.Bar(name=label, x=[o.strategy for o in outcomes],
                                  y=[ln[key] for ln in lines]))
    bill_fig.update_layout(barmode="relative", title="Bill by line item", yaxis_title="$",
                           height=420)

    soc_fig = go.Figure()
    for o in outcomes:
        frame = plan_frame(o.plan)
        frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
        for vid in sorted(frame["vehicle_id"].unique())[:3]:
            f = frame[frame["vehicle_id"] == vid]
            soc_fig.add_trace(go.Scatter(x=f["timestamp"], y=f["soc"], mode="markers+lines",
                                         marker_size=3, name=f"{o.strategy}: {vid}",
                                         connectgaps=False))
    soc_fig.update_layout(title="State of charge while plugged in (3 vehicles)",
                          yaxis_title="SOC", yaxis_range=[0, 1.02], height=420)

    rows = "".join(
        f"<tr><td>{o.strategy}</td><td>${o.bill.summary()['total']:,.2f}</td>"
        f"<td>{o.peak_kw:,.1f}</td><td>{o.readiness.met}/{o.readiness.departures}</td>"
        f"<td>{o.readiness.shortfall_kwh:,.1f}</td></tr>"
        for o in outcomes
    )
    parts = [
        load_fig.to_html(full_html=False, include_plotlyjs=True),
        bill_fig.to_html(full_html=False, include_plotlyjs=False),
        soc_fig.to_html(full_html=False, include_plotlyjs=False),
    ]
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;"
        "text-align:right}</style></head><body>"
        f"<h1>{title}</h1><table><tr><th>strategy</th><th>bill</th><th>peak kW</th>"
        f"<th>departures met</th><th>shortfall kWh</th></tr>{rows}</table>"
        + "".join(parts)
        + "</body></html>"
    )
    path.write_text(html, encoding="utf-8")


@contextmanager
def atomic_output_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; when the block succeeds, move every file
    in it into ``out_dir`` (created if needed). On failure nothing reaches ``out_dir``, and
    files already there that the run does not write are left alone."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fleetcharge-", dir=out_dir.parent))
    try:
        yield tmp
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_outputs(outcomes: list[Outcome], out_dir: Path, title: str) -> list[Path]:
    """Write plan CSVs, site load CSV, summary JSON, PNG and HTML report into ``out_dir``.

    Everything is produced in a temporary folder beside ``out_dir`` and moved in at the end.
    """
    with atomic_output_dir(out_dir) as tmp:
        scenario = outcomes[0].plan.scenario
        # Format each step's timestamp once (pandas formats tz-aware datetimes slowly).
        iso = np.array([t.isoformat() for t in scenario.horizon.index], dtype=object)
        for o in outcomes:
            frame = plan_frame(o.plan)
            frame["timestamp"] = iso[frame.pop("step").to_numpy()]
            frame.to_csv(tmp / f"plan_{o.strategy}.csv", index=False, float_format="%.4f")
        load = pd.DataFrame({"building_kw": scenario.building_kw()}, index=pd.Index(iso))
        for o in outcomes:
            load[f"{o.strategy}_kw"] = o.site_load_kw.to_numpy()
        load.index.name = "timestamp"
        load.to_csv(tmp / "site_load.csv", float_format="%.4f")
        for o in outcomes:
            ready = o.readiness.per_session.copy()
            for col in ("arrival", "departure"):
                ready[col] = [t.isoformat() for t in ready[col]]
            ready.to_csv(tmp / f"readiness_{o.strategy}.csv", index=False)
        (tmp / "summary.json").write_text(json.dumps(summary_json(outcomes), indent=2) + "\n")
        write_png(outcomes, tmp / "site_load.png")
        write_html(outcomes, tmp / "report.html", title)
        names = sorted(f.name for f in tmp.iterdir())
    return [Path(out_dir) / n for n in names]
