"""The REST API on a real uvicorn server (port 0) next to the central system, with httpx."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from fleetcharge.errors import InputError
from fleetcharge.ops.serve import run_serve
from tests.ops.test_csms import TZ, depot_server, one_van, station, tx_periods, until

MINI = Path(__file__).resolve().parents[1] / "data" / "mini" / "scenario.yaml"


def test_rest_api(tmp_path):
    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van(),
                                ids=("C0", "C1")) as server, station(server, "2.0.1") as cp:
            depot = server.depot
            base = f"http://127.0.0.1:{server.http_port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                health = (await http.get("/api/health")).json()
                assert health["status"] == "ok" and health["stations_connected"] == 1

                await cp.boot()
                await cp.status("Occupied")
                await cp.start_tx("V0", meter_wh=0)
                await cp.meter(energy_wh=0, power_w=0, soc_percent=75)
                await until(lambda: cp.tx_profiles(), "a TxProfile")

                chargers = {c["id"]: c for c in (await http.get("/api/chargers")).json()}
                assert chargers["C0"]["connected"] and chargers["C0"]["ready"]
                assert (chargers["C0"]["ocpp_version"], chargers["C0"]["rate_units"],
                        chargers["C0"]["max_periods"]) == ("2.0.1", "A,W", 24)
                assert chargers["C0"]["connectors"][0]["status"] == "Occupied"
                assert chargers["C0"]["in_scenario"] and not chargers["C1"]["in_scenario"]
                assert not chargers["C1"]["connected"] and chargers["C1"]["ocpp_version"] is None

                [session] = (await http.get("/api/sessions")).json()
                assert session["vehicle_id"] == "V0" and session["charger_id"] == "C0"
                assert session["departure"] == "2025-03-04T14:00:00+00:00"  # 06:00 PST
                # a whole-percent reading of 75 is planned from 74.5 % (depot.soc_lower_bound)
                assert session["soc"] == pytest.approx(0.745) and session["soc_measured"]
                assert session["target_soc"] == pytest.approx(0.895)
                assert session["remaining_kwh"] == pytest.approx(10.0)

                plan = (await http.get("/api/plan")).json()
                assert plan["status"] == "ok" and plan["step_minutes"] == 15
                kw = {s["session_id"]: np.array(s["kw"]) for s in plan["sessions"]}
                # V0 plugged in: 10/9 kW over the 36 off-peak steps 21:00–06:00
                np.testing.assert_allclose(kw["V0@C0"][12:48], 10 / 9, atol=1e-3)
                assert kw["V0@C0"][:12].max() == pytest.approx(0, abs=1e-6)
                # the site load is the building (none here) plus the vehicle
                assert list(kw) == ["V0@C0"]
                np.testing.assert_allclose(plan["site_kw"], kw["V0@C0"], atol=1e-9)
                assert plan["steps"][12] == "2025-03-04T05:00:00+00:00"  # 21:00 PST

                # the dispatcher moves the departure to 05:00: 10 kWh over 8 h = 1.25 kW
                done = depot.replans
                answer = await http.patch("/api/sessions/V0",
                                          json={"departure": "2025-03-04T05:00:00-08:00"})
                assert answer.status_code == 200, answer.text
                assert answer.json()["departure"] == "2025-03-04T13:00:00+00:00"
                assert answer.json()["needs_source"] == "dispatcher"
                await until(lambda: depot.replans > done and tx_periods(cp.tx_profiles()[-1])
                            == [(0, 0.0), (10_800, 1250.0)], "the re-plan for 05:00")
                assert "dispatcher changed V0" in depot.last.reason

                # a higher target: (0.95 − 0.745) · 60 / 0.9 = 13.67 kWh by 05:00 → 1708.3 W
                answer = await http.patch("/api/sessions/V0", json={"target_soc": 0.95})
                assert answer.json()["remaining_kwh"] == pytest.approx(41 / 3)
                await until(lambda: tx_periods(cp.tx_profiles()[-1])
                            == [(0, 0.0), (10_800, 1708.3)], "the re-plan for 95 %")

                await until(lambda: not depot.busy, "the depot to settle")
                done = depot.replans
                assert (await http.post("/api/replan")).status_code == 202
                await until(lambda: depot.replans > done, "the requested re-plan")
                assert depot.last.reason == "requested via REST"

    asyncio.run(scenario())


@pytest.mark.parametrize(("body", "message"), [
    ({"target_soc": 1.5}, "less than or equal to 1"),
    ({}, "give departure and/or target_soc"),
    ({"departure": "2025-03-04T05:00:00"}, "timezone"),
    ({"departure": "2025-03-03T17:00:00-08:00"}, "is not after the depot's current time"),
    ({"target_soc": 0.9, "deadline": "x"}, "Extra inputs are not permitted"),
])
def test_invalid_session_changes_get_422(tmp_path, body, message):
    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van()) as server, \
                station(server, "1.6") as cp:
            await cp.boot()
            await cp.start_tx("V0", meter_wh=0)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
                answer = await http.patch("/api/sessions/V0", json=body)
                assert answer.status_code == 422
                assert message in answer.text

    asyncio.run(scenario())


def test_unknown_vehicle_and_no_plan(tmp_path):
    def never(state, now, **kwargs):
        raise RuntimeError("no solver today")

    async def scenario() -> None:
        async with depot_server(f"sqlite:///{tmp_path / 'd.db'}", one_van(),
                                planner=never) as server:
            await until(lambda: server.depot.failures >= 1, "the failed startup plan")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
                answer = await http.patch("/api/sessions/V9", json={"target_soc": 0.8})
                assert answer.status_code == 404 and "V9" in answer.json()["detail"]
                answer = await http.get("/api/plan")
                assert answer.status_code == 404
                assert "no solver today" in answer.json()["detail"]
                health = (await http.get("/api/health")).json()
                assert health["planner_failures"] >= 1 and health["last_plan_at"] is None
                assert pd.Timestamp(health["time"]).tz_convert(TZ) >= pd.Timestamp(
                    "2025-03-03 18:00", tz=TZ)

    asyncio.run(scenario())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_serve_serves_until_interrupted(tmp_path):
    # what `fleetcharge serve` runs, in its own process: up, healthy, Ctrl+C → clean exit
    http_port, ocpp_port = _free_port(), _free_port()
    db_url = f"sqlite:///{tmp_path / 'd.db'}"
    code = ("from fleetcharge.ops.serve import run_serve; "
            f"run_serve({str(MINI)!r}, db_url={db_url!r}, "
            f"ocpp_host='127.0.0.1', ocpp_port={ocpp_port}, http_port={http_port}, "
            "start='2025-03-03T18:00:00-08:00', speed=60)")
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{http_port}/api/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert health["status"] == "ok"
        assert pd.Timestamp(health["time"]) >= pd.Timestamp("2025-03-03T18:00:00-08:00")
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()


@pytest.mark.parametrize(("options", "message"), [
    ({"tls_cert": "cert.pem"}, "give both --tls-cert and --tls-key"),
    ({"speed": 0}, "clock speed must be > 0"),
    ({"start": "yesterday-ish"}, "--start as ISO 8601"),
])
def test_run_serve_rejects_bad_options(tmp_path, options, message):
    with pytest.raises(InputError, match=message):
        run_serve(MINI, db_url=f"sqlite:///{tmp_path / 'd.db'}", **options)
