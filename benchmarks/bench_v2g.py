"""Benchmark: the optimal V2G plan against the optimal V1G plan on the same fleets (issue 4).

Target: V2G within 3× the V1G time on the same cases (wall and CPU time are both shown: on a
busy machine the CPU time of each process is the fairer comparison). Each case runs in its own process. Fleets:
the bundled ``delivery-vans-v2g`` example (50 bidirectional AC vans, one month), generated
school-bus depots (seed 1, May 2025, PG&E BEV-2-S, ELRP-like program), and issue 3's
benchmark van fleets (seed 1) with V2G switched on (bidirectional J3072 vans and ports, 250 kW
export agreement).
Run: ``.venv/bin/python benchmarks/bench_v2g.py``.
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

ROOT = Path(__file__).resolve().parents[1]
CASES = ("vans-50", "buses-50", "buses-200", "v2g-vans-50", "v2g-vans-200", "v2g-vans-1000")


def _bidirectional(scenario):
    """The same depot with bidirectional AC (SAE J3072) vans and ports and a 250 kW export
    agreement: V2G switched on for issue 3's benchmark fleets."""
    from dataclasses import replace

    from fleetcharge.domain import Interconnection

    types = {t.name: replace(t, bidirectional=True, bidirectional_modes=("AC",),
                             j3072_certified=True, max_discharge_kw=11.5)
             for t in scenario.vehicle_types}
    vehicles = tuple(replace(v, type=types[v.type.name]) for v in scenario.vehicles)
    chargers = tuple(replace(c, bidirectional=True, j3072_certified=True)
                     for c in scenario.chargers)
    site = replace(scenario.site, interconnection=Interconnection("approved", 250.0, True))
    return replace(scenario, vehicle_types=tuple(types.values()), vehicles=vehicles,
                   chargers=chargers, site=site)


def run_case(case: str) -> dict:
    from fleetcharge.generate import generate_scenario
    from fleetcharge.scenario import load_scenario
    from fleetcharge.strategies.optimal import optimal
    from fleetcharge.strategies.v2g import optimal_v2g

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case == "vans-50":
            path = ROOT / "examples" / "delivery-vans-v2g" / "scenario.yaml"
        elif case.startswith("v2g-vans"):  # issue 3's benchmark fleets, made bidirectional
            n = int(case.split("-")[2])
            path = generate_scenario("delivery-vans", vehicles=n, days=31, seed=1,
                                     out_dir=Path(tmp) / "s")
        else:
            n = int(case.split("-")[1])
            path = generate_scenario("school-buses", vehicles=n, days=31, seed=1,
                                     out_dir=Path(tmp) / "s", start="2025-05-01",
                                     tariff="california_ev/PGE_BEV-2-S_2025-09-08")
        scenario = load_scenario(path)
    if case.startswith("v2g-vans"):
        scenario = _bidirectional(scenario)
    t0, c0 = time.perf_counter(), time.process_time()
    v1g = optimal(scenario)
    t1, c1 = time.perf_counter(), time.process_time()
    v2g = optimal_v2g(scenario, baseline=v1g)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"case": case, "sessions": len(scenario.sessions),
            "eligible": v2g.info["eligible_sessions"], "v1g_s": t1 - t0, "v2g_s": t2 - t1,
            "v1g_cpu_s": c1 - c0, "v2g_cpu_s": c2 - c1,
            "v2g_formulated": v2g.info["v2g_formulated_sessions"],
            "pricing_rounds": v2g.info["pricing_rounds"],
            "v2g_columns": v2g.info["columns"], "objective_v1g": v1g.info["objective"],
            "objective_v2g": v2g.info["objective"],
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="optimal V1G vs V2G plan, one month, 15-minute steps")
    for col in ("case", "sessions", "V2G-eligible", "V2G-formulated", "pricing rounds",
                "V1G s", "V2G s", "V2G / V1G", "V1G CPU s", "V2G CPU s", "CPU ratio",
                "V2G columns", "objective V1G $", "objective V2G $", "peak MiB"):
        table.add_column(col, justify="right")
    for case in args.cases:
        out = subprocess.run([sys.executable, __file__, "--case", case], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        table.add_row(r["case"], f"{r['sessions']:,}", f"{r['eligible']:,}",
                      f"{r['v2g_formulated']:,}", str(r["pricing_rounds"]),
                      f"{r['v1g_s']:.2f}", f"{r['v2g_s']:.2f}",
                      f"{r['v2g_s'] / r['v1g_s']:.1f}×", f"{r['v1g_cpu_s']:.2f}",
                      f"{r['v2g_cpu_s']:.2f}", f"{r['v2g_cpu_s'] / r['v1g_cpu_s']:.1f}×",
                      f"{r['v2g_columns']:,}",
                      f"{r['objective_v1g']:,.2f}", f"{r['objective_v2g']:,.2f}",
                      f"{r['peak_mib']:,.0f}")
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
