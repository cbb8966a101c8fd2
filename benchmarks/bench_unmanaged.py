"""Benchmark: unmanaged and balanced plans plus their bills on generated fleets.

Target (issue 2): a 50-vehicle × 31-day × 15-minute unmanaged plan plus bill in under 2 s.
Run: ``.venv/bin/python benchmarks/bench_unmanaged.py``. Prints a table; numbers go in README.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fleetcharge.accounting import evaluate
from fleetcharge.generate import generate_scenario
from fleetcharge.scenario import load_scenario
from fleetcharge.strategies import run_strategy

CASES = [(50, 31), (200, 31), (1000, 31)]
REPEATS = 3


def main() -> None:
    table = Table(title="unmanaged / balanced plan + bill (15-minute steps)")
    for col in ("vehicles × days", "sessions", "load s", "strategy", "plan s", "bill s",
                "plan+bill s", "bill $"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for vehicles, days in CASES:
            path = generate_scenario("delivery-vans", vehicles=vehicles, days=days, seed=1,
                                     out_dir=Path(tmp) / f"v{vehicles}")
            t0 = time.perf_counter()
            scenario = load_scenario(path)
            load_s = time.perf_counter() - t0
            for strategy in ("unmanaged", "balanced"):
                best_plan = best_bill = float("inf")
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    plan = run_strategy(scenario, strategy)
                    t1 = time.perf_counter()
                    outcome = evaluate(plan)
                    t2 = time.perf_counter()
                    best_plan, best_bill = min(best_plan, t1 - t0), min(best_bill, t2 - t1)
                table.add_row(f"{vehicles} × {days}", f"{len(scenario.sessions):,}",
                              f"{load_s:.2f}", strategy, f"{best_plan:.3f}", f"{best_bill:.3f}",
                              f"{best_plan + best_bill:.3f}",
                              f"{outcome.bill.summary()['total']:,.2f}")
    Console(width=160).print(table)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mib:,.0f} MiB; python {sys.version.split()[0]}; best of {REPEATS}")


if __name__ == "__main__":
    main()
