"""Outputs of a DR study: terminal tables, CSV/JSON files, a PNG and an HTML report.

The plots show, per event, the baseline and the site load in the event window (with two hours
either side for context), the curtailment level, and for a declined event the load it would have
had. Files are written to a temporary folder and moved into place only when all exist
(:func:`fleetcharge.report.atomic_output_dir`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from fleetcharge.dr.planning import DRStudy, EventDecision
from fleetcharge.report import atomic_output_dir

#: Context shown either side of an event in the plots [h].
CONTEXT_HOURS = 2.0


def _usd(x: float | None) -> str:
    if x is None:
        return ""
    return f"-${-x:,.2f}" if round(x, 2) < 0 else f"${abs(x):,.2f}"


def _window(d: EventDecision, tz: str) -> str:
    a, b = d.event.start.tz_convert(tz), d.event.end.tz_convert(tz)
    return f"{a:%m-%d %H:%M}-{b:%H:%M}"


def ask(d: EventDecision) -> str:
    """What the event asks: ``curtail 40 kW`` (import at most 40 kW), ``reduce 50 kW``,
    ``price $0.50/kWh``."""
    e = d.event
    if e.kind == "curtail":
        return f"curtail {e.value:g} kW"
    if e.kind == "reduce":
        return f"reduce {e.value:g} kW"
    return f"price ${e.value:,.2f}/kWh"


def decision_word(d: EventDecision) -> str:
    """``accepted``, ``declined``, ``cancelled`` or ``settled``."""
    if d.event.cancelled:
        return "cancelled"
    if d.reason == "settled from metered data":
        return "settled"
    return "accepted" if d.participate else "declined"


def headline(study: DRStudy) -> str:
    """One sentence: events taken, declined, and what the program paid net."""
    t = study.to_dict()["totals"]
    called = len(study.decisions) - t["cancelled"]
    readiness = sum(bool(d.at_risk) for d in study.decisions)
    why = f" ({readiness} to keep departures on target)" if readiness else ""
    extra = "" if study.metered else f", extra bill {_usd(t['extra_bill_usd'])}"
    return (f"{t['accepted']} of {called} events taken part in, {t['declined']} declined{why}"
            f"; earnings {_usd(t['payment_usd'])}, penalties {_usd(t['penalty_usd'])}, capacity "
            f"payments {_usd(t['capacity_payment_usd'])}{extra}: net {_usd(t['net_usd'])}.")


_STYLES = {"accepted": "green", "declined": "yellow", "cancelled": "dim", "settled": "green"}


def events_table(study: DRStudy) -> Table:
    """One row per event: window, ask, decision, baseline and actual kW (averages over the
    window), kWh delivered, payment, penalty, extra bill (taking part) and net; a totals row
    (net without capacity payments, which are per season). The reasons are :func:`reasons`."""
    tz = study.scenario.horizon.timezone
    table = Table(title=f"{study.scenario.name}: demand-response events ({tz})",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    for name, justify in (("event", "left"), ("window", "left"), ("ask", "left"),
                          ("decision", "left"), ("base→act kW", "right"),
                          ("kWh", "right"), ("payment", "right"), ("penalty", "right"),
                          ("bill +", "right"), ("net", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for d in study.decisions:
        s = d.settlement
        word = decision_word(d)
        table.add_row(
            d.event.event_id, _window(d, tz), ask(d), f"[{_STYLES[word]}]{word}[/]",
            f"{s.baseline_avg_kw:.1f} → {s.actual_avg_kw:.1f}" if s else "",
            f"{s.delivered_kwh:.1f}" if s else "", _usd(s.payment_usd) if s else "",
            _usd(s.penalty_usd) if s else "",
            _usd(d.extra_bill_usd) if d.participate and d.extra_bill_usd is not None else "",
            _usd(d.net_usd))
    t = study.to_dict()["totals"]
    table.add_row("total", "", "", "", "", f"{t['delivered_kwh']:.1f}",
                  _usd(t["payment_usd"]), _usd(t["penalty_usd"]),
                  "" if study.metered else _usd(t["extra_bill_usd"]),
                  _usd(t["net_usd"] - t["capacity_payment_usd"]), style="bold")
    return table


def reasons(study: DRStudy) -> Text:
    """Each event's decision in one plain sentence, by event id."""
    text = Text()
    for d in study.decisions:
        word = decision_word(d)
        text.append(f"{d.event.event_id} ", style="bold")
        text.append(f"({d.event.program}) ", style="dim")
        text.append(d.reason + "\n", style=_STYLES[word] if word != "accepted" else None)
    text.rstrip()
    return text


def seasons_table(study: DRStudy) -> Table:
    """Per program and season: events and hours called and taken against the caps, and money."""
    table = Table(title="Program seasons (against the caps)", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for name in ("program", "season", "events / cap", "hours / cap", "taken", "capacity",
                 "energy", "penalties", "net"):
        table.add_column(name, justify="left" if name in ("program", "season") else "right",
                         no_wrap=True)
    for s in study.seasons:
        cap_e = f" / {s.cap_events}" if s.cap_events is not None else ""
        cap_h = f" / {s.cap_hours:g}" if s.cap_hours is not None else ""
        over = f" ({len(s.over_cap)} over cap)" if s.over_cap else ""
        table.add_row(s.program, s.season, f"{s.events_called}{cap_e}{over}",
                      f"{s.hours_called:g}{cap_h}", f"{s.events_taken} ({s.hours_taken:g} h)",
                      _usd(s.capacity_payment_usd), _usd(s.energy_payment_usd),
                      _usd(s.penalty_usd), _usd(s.net_usd))
    return table


def events_frame(study: DRStudy) -> pd.DataFrame:
    """The events table as data (``events.csv``)."""
    rows = []
    for d in study.decisions:
        e, s = d.event, d.settlement
        rows.append({
            "event_id": e.event_id, "program": e.program, "start": e.start.isoformat(),
            "end": e.end.isoformat(), "kind": e.kind, "value": e.value,
            "notice_minutes": e.notice_minutes, "decision": decision_word(d), "reason": d.reason,
            "baseline_method": s.baseline.describe() if s else "",
            "baseline_kw": s.baseline_avg_kw if s else np.nan,
            "actual_kw": s.actual_avg_kw if s else np.nan,
            "delivered_kwh": s.delivered_kwh if s else np.nan,
            "short_kwh": s.short_kwh if s else np.nan,
            "payment_usd": s.payment_usd if s else 0.0,
            "penalty_usd": s.penalty_usd if s else 0.0,
            "extra_bill_usd": d.extra_bill_usd if d.participate else np.nan,
            "net_usd": d.net_usd,
        })
    return pd.DataFrame(rows)


def _curves(study: DRStudy, d: EventDecision) -> dict[str, pd.Series]:
    """The series plotted for one event (local time index)."""
    tz = study.scenario.horizon.timezone
    shown = d.settlement if d.settlement is not None else d.if_taken
    out: dict[str, pd.Series] = {}
    load = study.site_load_kw
    if load is not None:
        pad = pd.Timedelta(hours=CONTEXT_HOURS)
        around = load[(load.index >= d.event.start - pad) & (load.index < d.event.end + pad)]
        out["site load"] = around
    elif shown is not None:
        out["site load"] = shown.actual_kw
    if shown is not None:
        out["baseline"] = shown.baseline.kw
        if not d.participate and d.if_taken is not None:
            out["if taken"] = d.if_taken.actual_kw
    return {k: _closed(v).tz_convert(tz) for k, v in out.items()}


def _closed(series: pd.Series) -> pd.Series:
    """``series`` with its last value repeated at the end of its last step, so a step plot
    covers ``[first, last + Δ)``."""
    if len(series) < 2:
        return series
    end = series.index[-1] + (series.index[-1] - series.index[-2])
    return pd.concat([series, pd.Series([series.iloc[-1]], index=[end])])


def _plotted(study: DRStudy) -> list[EventDecision]:
    return [d for d in study.decisions if not d.event.cancelled]


def write_png(study: DRStudy, path: Path) -> None:
    """Baseline vs actual for each event, one panel per event."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    shown = _plotted(study)
    n = max(len(shown), 1)
    cols = 2 if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.2 * rows), dpi=100,
                             squeeze=False)
    tz = study.scenario.horizon.timezone
    styles = {"site load": dict(color="#1f77b4", lw=1.4),
              "baseline": dict(color="#444444", lw=1.4, ls="--"),
              "if taken": dict(color="#d62728", lw=1.2, ls=":")}
    for ax, d in zip(axes.ravel(), shown):
        ax.axvspan(d.event.start.tz_convert(tz), d.event.end.tz_convert(tz), color="#f4d6a0",
                   alpha=0.45, lw=0)
        for label, series in _curves(study, d).items():
            ax.step(series.index, series.to_numpy(), where="post", label=label, **styles[label])
        if d.event.kind == "curtail":
            ax.hlines(d.event.value, d.event.start.tz_convert(tz), d.event.end.tz_convert(tz),
                      colors="crimson", lw=1, label=f"limit {d.event.value:g} kW")
        ax.set_title(f"{d.event.event_id} {d.event.start.tz_convert(tz):%a %b %d} "
                     f"({ask(d)}): {decision_word(d)}", fontsize=9)
        ax.set_ylabel("kW")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(mdates.HourLocator(interval=2, tz=tz))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=7, loc="best")
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    fig.suptitle(f"{study.scenario.name}: baseline vs actual per event (shaded: event window)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_html(study: DRStudy, path: Path) -> None:
    """Self-contained HTML (plotly JS embedded, no CDN): headline, events, seasons, one plot per
    event of baseline vs actual."""
    import plotly.graph_objects as go

    tz = study.scenario.horizon.timezone
    figures = []
    for d in _plotted(study):
        fig = go.Figure()
        fig.add_vrect(x0=d.event.start.tz_convert(tz), x1=d.event.end.tz_convert(tz),
                      fillcolor="orange", opacity=0.15, line_width=0)
        dash = {"site load": None, "baseline": "dash", "if taken": "dot"}
        for label, series in _curves(study, d).items():
            fig.add_trace(go.Scatter(x=series.index, y=series.to_numpy(), mode="lines",
                                     line_shape="hv", line_dash=dash[label], name=label))
        if d.event.kind == "curtail":
            fig.add_trace(go.Scatter(x=[d.event.start.tz_convert(tz), d.event.end.tz_convert(tz)],
                                     y=[d.event.value] * 2, mode="lines", name="limit",
                                     line=dict(color="crimson", width=1)))
        fig.update_layout(title=f"{d.event.event_id} ({ask(d)}): {html.escape(d.reason)}",
                          yaxis_title="kW", height=340, margin=dict(t=60, b=40))
        figures.append(fig)
    frame = events_frame(study)
    cells = ["event_id", "program", "start", "kind", "value", "decision", "reason",
             "baseline_kw", "actual_kw", "delivered_kwh", "payment_usd", "penalty_usd",
             "extra_bill_usd", "net_usd"]

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:,.2f}"
        return html.escape(str(v))

    rows = "".join("<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in cells) + "</tr>"
                   for _, r in frame.iterrows())
    seasons = "".join(
        f"<tr><td>{html.escape(s.program)}</td><td>{html.escape(s.season)}</td>"
        f"<td>{s.events_called}{'' if s.cap_events is None else f' / {s.cap_events}'}</td>"
        f"<td>{s.hours_called:g}{'' if s.cap_hours is None else f' / {s.cap_hours:g}'}</td>"
        f"<td>{_usd(s.capacity_payment_usd)}</td><td>{_usd(s.energy_payment_usd)}</td>"
        f"<td>{_usd(s.penalty_usd)}</td><td>{_usd(s.net_usd)}</td></tr>"
        for s in study.seasons)
    plots = "".join(f.to_html(full_html=False, include_plotlyjs=(i == 0))
                    for i, f in enumerate(figures))
    title = html.escape(f"{study.scenario.name}: demand response")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}"
        "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:nth-child(7){text-align:left}</style></head><body>"
        f"<h1>{title}</h1><p>{html.escape(headline(study))}</p>"
        "<table><tr>" + "".join(f"<th>{c}</th>" for c in cells) + f"</tr>{rows}</table>"
        "<h2>Program seasons</h2><table><tr><th>program</th><th>season</th><th>events / cap"
        "</th><th>hours / cap</th><th>capacity</th><th>energy</th><th>penalties</th>"
        f"<th>net</th></tr>{seasons}</table><h2>Baseline vs actual</h2>{plots}</body></html>"
    )
    path.write_text(page, encoding="utf-8")


def write_dr_outputs(study: DRStudy, out_dir: Path) -> list[Path]:
    """Write ``events.csv``, ``seasons.csv``, ``summary.json``, ``events.png`` and
    ``report.html`` into ``out_dir``, atomically; returns the paths."""
    with atomic_output_dir(out_dir) as tmp:
        events_frame(study).to_csv(tmp / "events.csv", index=False, float_format="%.4f")
        pd.DataFrame([s.to_dict() for s in study.seasons]).to_csv(tmp / "seasons.csv",
                                                                   index=False)
        (tmp / "summary.json").write_text(json.dumps(study.to_dict(), indent=2) + "\n",
                                          encoding="utf-8")
        write_png(study, tmp / "events.png")
        write_html(study, tmp / "report.html")
        names = sorted(f.name for f in tmp.iterdir())
    return [Path(out_dir) / n for n in names]
