"""Benchmark: OCPP load on the central system (issue 5, "Reliability and load").

500 simulated charge points (:mod:`fleetcharge.ops.simulator`, OCPP 1.6 / 2.0.1 / 2.1 in turn)
connect over loopback to the real central system (``fleetcharge serve``'s ``run_serve`` in its
own process, SQLite or PostgreSQL store), every one with a van plugged in, and send meter values
every 10 s for 5 minutes of real time (clock speed 1) while the depot re-plans: on the arrivals,
on deviating readings and on ``POST /api/replan`` every ``--replan-every`` seconds. Counted at
the stations: calls sent and calls answered (must be equal: nothing lost or unanswered),
timeouts, CALLERRORs, messages still queued at the end; and the round-trip latency of each
call, from the frame leaving the station to its answer arriving, which includes the CSMS
handler and the store write it makes before answering.

Run: ``.venv/bin/python benchmarks/bench_ocpp_load.py [--stations 500] [--seconds 300]
[--db postgresql+psycopg://postgres@127.0.0.1:5432/test]`` (exit code 1 if any call was lost,
unanswered or answered with an error). The server's log goes to ``--server-log``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from fleetcharge.ops.clock import Clock
from fleetcharge.ops.simulator import MessageStats, simulate_depot
from fleetcharge.ops.store import Store
from fleetcharge.scenario import load_scenario

PASSWORD = "bench-password"
#: 20:00 local on the generated day: every van is back (17:00 to 19:00) and stays to midnight
START_LOCAL = pd.Timedelta(hours=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(scenario: Path, db_url: str, start: pd.Timestamp, ocpp_port: int,
                 http_port: int, log: Path) -> subprocess.Popen:
    """``run_serve`` (what ``fleetcharge serve`` runs) in its own process, at clock speed 1."""
    code = ("import logging; logging.basicConfig(level=logging.WARNING); "
            "from fleetcharge.ops.serve import run_serve; "
            f"run_serve({str(scenario)!r}, db_url={db_url!r}, ocpp_host='127.0.0.1', "
            f"ocpp_port={ocpp_port}, http_host='127.0.0.1', http_port={http_port}, "
            f"speed=1.0, start={start.isoformat()!r})")
    return subprocess.Popen([sys.executable, "-c", code], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


async def replan_while(api: httpx.AsyncClient, every_s: float, stop: asyncio.Event) -> None:
    """``POST /api/replan`` every ``every_s`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            (await api.post("/api/replan")).raise_for_status()


async def loop_lag(samples_s: list[float], stop: asyncio.Event, period_s: float = 0.05) -> None:
    """How late this process's event loop wakes up (so that the station-side share of the
    latency is known): one overshoot of a ``period_s`` sleep per sample [s]."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(period_s)
        samples_s.append(loop.time() - t - period_s)


async def wait_ready(api: httpx.AsyncClient, server: subprocess.Popen, log: Path) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise RuntimeError(f"the server exited; see {log}")
        try:
            if (await api.get("/api/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not come up in 60 s; see {log}")


async def run(args: argparse.Namespace, folder: Path) -> tuple[MessageStats, dict]:
    from fleetcharge.generate import generate_scenario

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = generate_scenario("delivery-vans", vehicles=args.stations, days=1, seed=5,
                                 out_dir=folder / "scenario", building_load=False)
        scenario = load_scenario(path)
    db_url = args.db or f"sqlite:///{folder / 'bench.db'}"
    t0 = time.perf_counter()
    store = Store.open(db_url)
    for c in scenario.chargers:
        store.add_charge_point(c.id, PASSWORD, replace=True)
    store.close()
    register_s = time.perf_counter() - t0
    start = scenario.horizon.start + START_LOCAL
    ocpp_port, http_port = free_port(), free_port()
    server = start_server(path, db_url, start, ocpp_port, http_port, args.server_log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                     timeout=30.0) as api:
            await wait_ready(api, server, args.server_log)
            clock = Clock(start, speed=1.0)
            stop = asyncio.Event()
            replans = asyncio.create_task(replan_while(api, args.replan_every, stop))
            lags: list[float] = []
            lag = asyncio.create_task(loop_lag(lags, stop))
            t1 = time.perf_counter()
            result = await simulate_depot(
                scenario, f"ws://127.0.0.1:{ocpp_port}", clock=clock, passwords=PASSWORD,
                meter_interval_s=args.meter_interval,
                until=start + pd.Timedelta(seconds=args.seconds))
            run_s = time.perf_counter() - t1
            stop.set()
            await asyncio.gather(replans, lag)
            health = (await api.get("/api/health")).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    info = {"stations": args.stations, "seconds": args.seconds,
            "meter_interval_s": args.meter_interval, "db": db_url.split(":", 1)[0],
            "register_s": round(register_s, 1), "run_s": round(run_s, 1),
            "replans": health["replans"], "replan_failures": health["planner_failures"],
            "station_loop_lag_p99_ms": round(float(np.percentile(lags, 99)) * 1000, 1)}
    return result.stats, info


def report(stats: MessageStats, info: dict) -> bool:
    """Print the table and a JSON line; whether nothing was lost, unanswered or refused."""
    table = Table(title=f"OCPP load: {info['stations']} stations, {info['seconds']} s, "
                        f"meter values every {info['meter_interval_s']:g} s ({info['db']})")
    for col in ("action", "sent", "answered", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "action" else "right")
    rows = {}
    for action in sorted(stats.sent_by_action):
        p = stats.latency_percentiles_ms(action)
        rows[action] = {"sent": stats.sent_by_action[action],
                        "answered": stats.answered_by_action.get(action, 0), **p}
        table.add_row(action, str(rows[action]["sent"]), str(rows[action]["answered"]),
                      *(f"{p[k]:.1f}" for k in ("p50", "p95", "p99")))
    total = stats.latency_percentiles_ms()
    table.add_row("all", str(stats.sent), str(stats.answered),
                  *(f"{total[k]:.1f}" for k in ("p50", "p95", "p99")), style="bold")
    Console().print(table)
    print(f"replans during the run: {info['replans']} ({info['replan_failures']} failed); "
          f"station-side event-loop lag p99 {info['station_loop_lag_p99_ms']} ms")
    ok = (stats.sent == stats.answered and stats.timeouts == stats.errors == 0
          and stats.undelivered == stats.dropped == 0)
    summary = {**info, "sent": stats.sent, "answered": stats.answered,
               "timeouts": stats.timeouts, "errors": stats.errors,
               "undelivered": stats.undelivered, "connects": stats.connects,
               "connect_failures": stats.connect_failures, "latency_ms": total,
               "by_action": rows, "ok": ok}
    print(json.dumps(summary))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=300.0, help="real seconds of load")
    parser.add_argument("--meter-interval", type=float, default=10.0,
                        help="seconds between meter values of a station")
    parser.add_argument("--replan-every", type=float, default=30.0,
                        help="seconds between extra re-plan requests")
    parser.add_argument("--server-log", type=Path,
                        default=Path(tempfile.gettempdir()) / "bench_ocpp_server.log",
                        help="where the server process writes its log")
    parser.add_argument("--db", default=None,
                        help="store URL (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)  # it logs every frame (and tracebacks)
    with tempfile.TemporaryDirectory() as tmp:
        stats, info = asyncio.run(run(args, Path(tmp)))
    sys.exit(0 if report(stats, info) else 1)


if __name__ == "__main__":
    main()
