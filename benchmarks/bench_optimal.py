"""Benchmark: the optimal V1G plan on generated delivery-van fleets (issue 3 targets).

| case (15-minute steps)                     | target wall time | cost vs true optimum |
| 50 vehicles × 31 days                      | ≤ 1 s            | ≤ 0.01 %             |
| 200 vehicles × 31 days                     | ≤ 5 s            | ≤ 0.1 %              |
| 1,000 vehicles × 31 days                   | ≤ 60 s, ≤ 4 GiB  | ≤ 0.5 %              |
| rolling re-plan, 200 vehicles, 24 h horizon | ≤ 200 ms median  | —                    |

Each case runs in its own process so that its peak memory is its own. "certified gap" is the
plan's cost (bill minus fixed charges) over the event-block LP's optimum, which is a lower bound
of the per-step problem; "gap vs reference" compares with the plain per-step-SOC reference LP
(``reference_lp.py``) where that is run. Run: ``.venv/bin/python benchmarks/bench_optimal.py [--reference-max 200]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

CASES = (50, 200, 1000)
DAYS = 31
SEED = 1


def run_case(vehicles: int, reference: bool) -> dict:
    """One month of ``vehicles`` vans: build, solve, bill; optionally the reference LP."""
    from fleetcharge.accounting import evaluate
    from fleetcharge.generate import generate_scenario
    from fleetcharge.scenario import load_scenario
    from fleetcharge.strategies.optimal import lp_input
    from fleetcharge.strategies.optimal_lp import solve_v1g

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = generate_scenario("delivery-vans", vehicles=vehicles, days=DAYS, seed=SEED,
                                 out_dir=Path(tmp) / "s")
        scenario = load_scenario(path)
    t0 = time.perf_counter()
    lp, notes = lp_input(scenario)
    t1 = time.perf_counter()
    result = solve_v1g(lp)
    t2 = time.perf_counter()
    from fleetcharge.plan import Plan

    outcome = evaluate(Plan("optimal", scenario, result.charge_kw, info=result.info))
    row = {
        "case": f"{vehicles} × {DAYS} d",
        "sessions": len(scenario.sessions),
        "variables": result.info["columns"],
        "rows": result.info["rows"],
        "build_s": (t1 - t0) + result.info["build_s"],
        "solve_s": result.info["solve_s"],
        "total_s": t2 - t0,
        "bill": outcome.bill.total,
        "objective": result.objective,
        "status": result.status,
        "met": f"{outcome.readiness.met}/{outcome.readiness.departures}",
        "exact": not notes,
        # The event-block LP is a relaxation of the per-step LP, so its optimum is a lower bound;
        # the plan's own cost (bill minus fixed charges) above it certifies the gap.
        "certified_gap": (outcome.bill.total - outcome.bill.fixed
                          - outcome.bill.minimum_adjustment - result.objective) / result.objective,
        "blocks": result.info["event_blocks"],
        "rounds": result.info["refinement_rounds"],
    }
    if reference:
        from reference_lp import solve_reference

        ref = solve_reference(lp)
        row["reference_s"] = ref["build_s"] + ref["solve_s"]
        row["gap"] = (result.objective - ref["objective"]) / ref["objective"]
    row["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def run_rolling(vehicles: int = 200, replans: int = 25) -> dict:
    """Median and p95 wall time of ``replan`` at evening instants across the month."""
    import pandas as pd

    from fleetcharge.generate import generate_scenario
    from fleetcharge.scenario import load_scenario
    from fleetcharge.strategies.rolling import LiveState, plugged_from_sessions, replan

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scenario = load_scenario(generate_scenario(
            "delivery-vans", vehicles=vehicles, days=DAYS, seed=SEED, out_dir=Path(tmp) / "s"))
    rng = np.random.default_rng(SEED)
    start = scenario.horizon.start.normalize()
    times, plugged_counts, cols = [], [], []
    replan(LiveState(scenario, ()), start + pd.Timedelta(hours=1))  # warm-up (imports)
    for i in range(replans):
        now = start + pd.Timedelta(days=1 + i % 28, hours=17) + pd.Timedelta(
            minutes=int(rng.integers(0, 300)))
        plugged, expected = plugged_from_sessions(scenario.sessions, now)
        t0 = time.perf_counter()
        plan = replan(LiveState(scenario, plugged, expected), now)
        times.append(time.perf_counter() - t0)
        plugged_counts.append(len(plugged))
        cols.append(plan.info["columns"])
    return {
        "case": f"rolling re-plan {vehicles} × 24 h",
        "replans": replans,
        "plugged_median": float(np.median(plugged_counts)),
        "variables": int(np.median(cols)),
        "median_s": float(np.median(times)),
        "p95_s": float(np.percentile(times, 95)),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rolling", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference-max", type=int, default=200,
                        help="run the per-step SOC reference LP up to this many vehicles")
    parser.add_argument("--cases", type=int, nargs="*", default=list(CASES))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.reference)))
        return
    if args.rolling:
        print(json.dumps(run_rolling()))
        return

    from rich.console import Console
    from rich.table import Table

    def child(*extra: str) -> dict:
        out = subprocess.run([sys.executable, __file__, *extra], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).parent)
        return json.loads(out.stdout.strip().splitlines()[-1])

    table = Table(title="optimal V1G plan, delivery vans, 15-minute steps (each case its own "
                        "process)")
    for col in ("case", "sessions", "variables", "build s", "solve s", "total s", "peak MiB",
                "bill $", "certified gap", "reference LP s", "gap vs reference",
                "departures met"):
        table.add_column(col, justify="right")
    for n in args.cases:
        extra = ["--case", str(n)] + (["--reference"] if n <= args.reference_max else [])
        r = child(*extra)
        table.add_row(r["case"], f"{r['sessions']:,}", f"{r['variables']:,}",
                      f"{r['build_s']:.2f}", f"{r['solve_s']:.2f}", f"{r['total_s']:.2f}",
                      f"{r['peak_mib']:,.0f}", f"{r['bill']:,.2f}", f"{r['certified_gap']:+.1e}",
                      f"{r['reference_s']:.1f}" if "reference_s" in r else "not run",
                      f"{r['gap']:+.1e}" if "gap" in r else "—", r["met"])
    r = child("--rolling")
    table.add_row(r["case"], f"{r['plugged_median']:.0f} plugged", f"{r['variables']:,}", "",
                  "", f"median {r['median_s'] * 1000:.0f} ms, p95 {r['p95_s'] * 1000:.0f} ms",
                  f"{r['peak_mib']:,.0f}", "", "", "", "", "")
    Console(width=190).print(table)


if __name__ == "__main__":
    main()
