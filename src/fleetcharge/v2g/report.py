"""Outputs of a V2G study: the one-screen verdict, CSV/JSON files and an HTML report.

The report has three plots: exportable headroom and firm capacity by hour of day, the SOC band of
the eligible vehicles with and without V2G, and the value waterfall. Written to a temporary
folder and moved into place, like the planning report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fleetcharge.accounting import plan_frame
from fleetcharge.report import atomic_output_dir
from fleetcharge.v2g.study import V2GStudy, _usd, stack_frame, study_json

_VERDICT_STYLE = {"opportunity": "bold green", "distraction": "bold yellow",
                  "not-ready": "bold red"}


def verdict_screen(study: V2GStudy) -> Group:
    """The verdict in one screen: conclusion, stack gaps, envelope, risk, value."""
    data = study_json(study)["v2g"]
    title = Text.assemble(("V2G verdict: ", "bold"),
                          (data["verdict"].upper(), _VERDICT_STYLE[data["verdict"]]),
                          f"  ({study.scenario.name})")
    reasons = Text("\n".join(f"• {r}" for r in data["reasons"]))
    numbers = Table(show_header=False, box=None, pad_edge=False)
    numbers.add_column(style="dim")
    numbers.add_column(justify="right")
    rows = [
        ("pairs that can discharge / export",
         f"{data['eligible_pairs']} / {data['export_pairs']} of {data['pairs']}"),
        ("export limit (agreement)", f"{data['export_limit_kw']:,.0f} kW"),
        ("energy discharged / exported", f"{data['discharged_kwh']:,.0f} / "
                                         f"{data['export_kwh']:,.0f} kWh"),
        ("added cycles per vehicle-year", f"{data['added_cycles_per_vehicle_year']:.1f}"),
        ("P(departure below target) V1G → V2G",
         f"{data['readiness_risk']['v1g']:.1%} → {data['readiness_risk']['v2g']:.1%}"),
        ("bill V1G → V2G (horizon)", f"${data['v1g_bill']['total']:,.2f} → "
                                     f"${data['bill']['total']:,.2f}"),
        ("annual value of V2G over V1G", f"{_usd(data['annual_value'])}/yr"),
        ("bidirectional premium", _usd(data["premium_usd"])),
        ("NPV", _usd(data["npv"])),
    ]
    if data["option_value"] is not None:
        rows.append(("option value of buying now (lattice / LSMC)",
                     f"{_usd(data['option_value'])} / {_usd(data['option_value_lsmc'])} "
                     "per port"))
    for label, value in rows:
        numbers.add_row(label, value)
    return Group(Panel(reasons, title=title, title_align="left"), numbers)


def _headroom_figure(study: V2GStudy):
    import plotly.graph_objects as go

    firm = study.firm
    fig = go.Figure()
    fig.add_bar(x=firm.index, y=firm["mean_kw"], name="mean discharge kW available")
    fig.add_bar(x=firm.index, y=firm["firm_kw"], name="firm kW (90 % of days)")
    fig.add_scatter(x=firm.index, y=firm["firm_kwh"], name="firm exportable kWh",
                    yaxis="y2", mode="lines+markers")
    fig.update_layout(title="Exportable headroom by hour of day", barmode="overlay",
                      xaxis_title="local hour", yaxis_title="kW",
                      yaxis2={"title": "kWh", "overlaying": "y", "side": "right"}, height=420)
    return fig


def _soc_band_figure(study: V2GStudy):
    import plotly.graph_objects as go

    fig = go.Figure()
    eligible = set(study.envelope.loc[study.envelope["discharge_kw"] > 0, "session_id"])
    for outcome, color in ((study.v1g, "0,114,178"), (study.v2g, "213,94,0")):
        frame = plan_frame(outcome.plan)
        frame = frame[frame["session_id"].isin(eligible)] if eligible else frame
        if frame.empty:
            continue
        hour = frame["timestamp"].dt.hour + frame["timestamp"].dt.minute / 60
        q = frame.groupby(hour)["soc"].quantile([0.1, 0.5, 0.9]).unstack()
        name = outcome.strategy.upper() if outcome.strategy == "v2g" else "V1G"
        fig.add_scatter(x=q.index, y=q[0.9], line={"width": 0}, showlegend=False,
                        mode="lines")
        fig.add_scatter(x=q.index, y=q[0.1], fill="tonexty", line={"width": 0},
                        fillcolor=f"rgba({color},0.2)", name=f"{name} 10–90 %", mode="lines")
        fig.add_scatter(x=q.index, y=q[0.5], line={"color": f"rgb({color})"},
                        name=f"{name} median", mode="lines")
    fig.update_layout(title="SOC of eligible vehicles while plugged in, by hour of day",
                      xaxis_title="local hour", yaxis_title="SOC", yaxis_range=[0, 1.02],
                      height=420)
    return fig


def _waterfall_figure(study: V2GStudy):
    import plotly.graph_objects as go

    labels = [k for k, _ in study.annual.waterfall] + ["V2G value"]
    values = [v for _, v in study.annual.waterfall] + [study.annual.total_usd]
    fig = go.Figure(go.Waterfall(x=labels, y=values,
                                 measure=["relative"] * (len(labels) - 1) + ["total"]))
    fig.update_layout(title="Annual value of V2G over smart charging ($/yr)", height=420)
    return fig


def write_study(study: V2GStudy, out_dir: Path) -> list[Path]:
    """Write summary.json, stack.csv, envelope.csv, firm_capacity.csv, plan_v2g.csv and
    report.html into ``out_dir`` (temporary folder first, then moved in)."""
    with atomic_output_dir(out_dir) as tmp:
        data = study_json(study)
        (tmp / "summary.json").write_text(json.dumps(data, indent=2) + "\n")
        stack_frame(study).to_csv(tmp / "stack.csv", index=False)
        env = study.envelope.copy()
        for col in ("arrival", "departure"):
            env[col] = [t.isoformat() for t in env[col]]
        env.to_csv(tmp / "envelope.csv", index=False, float_format="%.3f")
        study.firm.to_csv(tmp / "firm_capacity.csv", float_format="%.3f")
        frame = plan_frame(study.v2g.plan)
        iso = np.array([t.isoformat() for t in study.scenario.horizon.index], dtype=object)
        frame["timestamp"] = iso[frame.pop("step").to_numpy()]
        frame.to_csv(tmp / "plan_v2g.csv", index=False, float_format="%.4f")
        parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0))
                 for i, fig in enumerate((_headroom_figure(study), _soc_band_figure(study),
                                          _waterfall_figure(study)))]
        v = data["v2g"]
        reasons = "".join(f"<li>{r}</li>" for r in v["reasons"])
        stack_html = stack_frame(study).to_html(index=False, max_rows=60)
        html = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>V2G study: {study.scenario.name}</title><style>body{{font-family:"
            "system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>"
            f"<h1>V2G study: {study.scenario.name}</h1>"
            f"<h2>Verdict: {v['verdict']}</h2><ul>{reasons}</ul>"
            f"<p>Annual value {_usd(v['annual_value'])}/yr · NPV {_usd(v['npv'])} · readiness "
            f"risk {v['readiness_risk']['v1g']:.1%} (V1G) → {v['readiness_risk']['v2g']:.1%} "
            f"(V2G) · {v['added_cycles_per_vehicle_year']:.1f} added cycles per vehicle-year"
            "</p>" + "".join(parts) + "<h2>Stack check</h2>" + stack_html + "</body></html>")
        (tmp / "report.html").write_text(html, encoding="utf-8")
        names = sorted(f.name for f in tmp.iterdir())
    return [Path(out_dir) / n for n in names]

