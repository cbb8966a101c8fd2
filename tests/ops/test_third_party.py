"""A charge point that is not our code against the central system (issue 5, "third-party").

``tests/ops/third_party/charge_point.js`` is a station built on the npm package ``ocpp-rpc``
(pinned in ``third_party/package.json``) in strict mode: every message in both directions is
validated against the official OCA schemas bundled with that package, so any schema violation
by our server fails the exchange. Node and its ``node_modules`` come from ``make test``
(``npm ci --prefix tests/ops/third_party``); without them these tests are skipped.

Reference numbers (independent of the server code): one van V0 on one 10 kW, 240 V
single-phase port C0 from 18:00 to 06:00 (PST, UTC−8) needs 10 kWh. With the two-period test
tariff (on-peak 16–21 h) the optimal plan charges nothing before 21:00, then 10 kWh / 9 h =
1111.1 W until 06:00 (worked out by hand in
``tests/test_optimal_strategy.py::test_hand_computed_single_vehicle``). Its TxProfile starts at
the 18:00 step (02:00Z) and lasts 12 h: periods (0 s, 0.0) and (10 800 s, 1111.1) in W, or in
amps per phase (OCPP 1.6 §7.12: I = P / (V × phases)) 1111.1 / 240 = 4.63 → 4.6 A. The
full-power TxDefaultProfile and the station max profile (site limit ≥ port) are 10 000.0 W, or
10 000 / 240 = 41.67 A rounded down to 0.1 (a limit must not exceed the port) = 41.6 A. The EV
reports SoC 75 % = 0.9 − 0.9 × 10 kWh / 60 kWh, the session's arrival SoC, and the 2.x EV asks
for the session's own 10 kWh by 06:00, so every re-plan yields the same TxProfile.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fleetcharge.ops.clock import Clock
from fleetcharge.ops.serve import DepotServer
from fleetcharge.ops.store import Store
from tests.conftest import build_scenario, until
from tests.test_optimal_strategy import two_period_tariff

NODE_DIR = Path(__file__).parent / "third_party"
SCRIPT = NODE_DIR / "charge_point.js"
INSTALL_HINT = ("run `make test`, which installs them with `npm ci --prefix tests/ops/third_party` "
                "(Node.js ≥ 20 and npm needed)")
START = pd.Timestamp("2025-03-03 18:00", tz="America/Los_Angeles")
DEPARTURE = pd.Timestamp("2025-03-04 06:00", tz="America/Los_Angeles")
PASSWORD = "third-party-station-password"
METER_START_WH = 12_345
SOC_PERCENT = 75
TX_START_SCHEDULE = "2025-03-04T02:00:00Z"
TX_DURATION_S = 12 * 3600
OFF_PEAK_START_S = 3 * 3600
TX_RATE = {"W": 1111.1, "A": 4.6}
FULL_RATE = {"W": 10_000.0, "A": 41.6}
MAX_PURPOSE = {"1.6": "ChargePointMaxProfile", "2.0.1": "ChargingStationMaxProfile",
               "2.1": "ChargingStationMaxProfile"}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
"""An OCPP dateTime: the OCA schemas' ``format: date-time``, i.e. RFC 3339 §5.6, whose
``time-offset`` is required. Checked here because ocpp-rpc's strict mode (ajv-formats 2.1.1)
accepts a date-time without an offset, which a station would read in its own local time."""
CASES = [  # (OCPP version, units the station accepts, unit the server must pick)
    ("1.6", "A", "A"),        # 1.6 answers "Current": amps, with 1.6's multipleOf 0.1 limits
    ("2.0.1", "A,W", "W"),    # both allowed: the server prefers W (depot wire conventions)
    ("2.1", "W", "W"),
]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"Node.js is not installed; {INSTALL_HINT}")
    if not (NODE_DIR / "node_modules" / "ocpp-rpc" / "package.json").is_file():
        pytest.skip(f"tests/ops/third_party/node_modules is missing; {INSTALL_HINT}")
    return node


async def _run_station(node: str, store: Store, version: str, rate_units: str) -> dict[str, Any]:
    """Serve the depot, run the Node station to completion and return its JSON report."""
    scenario = build_scenario([("2025-03-03 18:00", "2025-03-04 06:00", 10.0, 10.0)],
                              tariff=two_period_tariff())
    await asyncio.to_thread(store.add_charge_point, "C0", PASSWORD)
    async with DepotServer(scenario, store, Clock(START), ocpp_host="127.0.0.1", ocpp_port=0,
                           http_host="127.0.0.1", http_port=0, debounce_s=0.05,
                           departure_guard=pd.Timedelta(0)) as server:  # hand-computed profiles
        process = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), f"ws://127.0.0.1:{server.ocpp_port}", "C0", PASSWORD, version,
            "V0", "--rate-units", rate_units, "--meter-start-wh", str(METER_START_WH),
            "--soc", str(SOC_PERCENT), "--departure", DEPARTURE.tz_convert("UTC").isoformat(),
            "--energy-wh", "10000", "--voltage", "240", "--timeout-s", "20",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError("the Node charge point did not finish within 30 s") from None
        lines = out.decode().strip().splitlines()
        report = json.loads(lines[-1]) if lines else {}
        assert process.returncode == 0, (
            f"node exited {process.returncode}\nstderr: {err.decode()}\n"
            f"report: {json.dumps(report, indent=1)[:8000]}")
        await until(lambda: not server.depot.busy, "the depot to finish its re-plans")
    return report


def _profile(version: str, payload: dict) -> dict:
    return payload["csChargingProfiles"] if version == "1.6" else payload["chargingProfile"]


def _schedule(version: str, payload: dict) -> dict:
    schedule = _profile(version, payload)["chargingSchedule"]
    return schedule if version == "1.6" else schedule[0]


def _periods(schedule: dict) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]]


def _dates(value: Any) -> list[str]:
    """Every string in ``value`` (nested dicts/lists) that starts like a date (YYYY-MM-DD)."""
    if isinstance(value, dict):
        return [d for v in value.values() for d in _dates(v)]
    if isinstance(value, list):
        return [d for v in value for d in _dates(v)]
    return [value] if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d", value) else []


def _expected_composite(schedule_start: str, unit: str) -> list[tuple[int, float]]:
    """The composite over the verified 12 h from ``schedule_start`` (1.6 §3.13.4 / 2.x K08):
    the TxProfile while it runs (it lies below the max profile), then the TxDefaultProfile
    (full power) once its 12 h are over, i.e. for the last ``x`` seconds of the window."""
    x = int((pd.Timestamp(schedule_start) - pd.Timestamp(TX_START_SCHEDULE)).total_seconds())
    assert 0 <= x < OFF_PEAK_START_S, f"composite asked at {schedule_start}, long after 18:00"
    periods = [(0, 0.0), (OFF_PEAK_START_S - x, TX_RATE[unit])]
    return periods + ([(TX_DURATION_S - x, FULL_RATE[unit])] if x else [])


@pytest.mark.parametrize(("version", "rate_units", "unit"), CASES)
def test_ocpp_rpc_strict_station_boots_transacts_and_gets_profiles(version, rate_units, unit,
                                                                    tmp_path):
    node = _node()
    store = Store.open(f"sqlite:///{tmp_path / 'depot.db'}")
    try:
        report = asyncio.run(_run_station(node, store, version, rate_units))
        _check(version, unit, report, store)
    finally:
        store.close()


def _check(version: str, unit: str, report: dict, store: Store) -> None:
    assert report["ok"] and report["subprotocol"] == f"ocpp{version}"
    assert report["callErrors"] == [] and report["strictValidationFailures"] == []
    assert report["badMessages"] == []
    received = report["received"]
    assert not [r for r in received if r["answer"] == "NotImplemented"]
    tx_id = str(report["transactionId"])
    from_server = [r["payload"] for r in received] + [r["response"] for r in report["sent"]]
    dates = _dates(from_server)
    assert dates and [d for d in dates if not RFC3339.fullmatch(d)] == []

    # boot: capabilities read, then TxDefault at full power (stack 0) and the station max
    profiles = [r for r in received if r["action"] == "SetChargingProfile"]
    purposes = [_profile(version, r["payload"])["chargingProfilePurpose"] for r in profiles]
    assert purposes[:2] == ["TxDefaultProfile", MAX_PURPOSE[version]]
    default, maximum = (r["payload"] for r in profiles[:2])
    assert _profile(version, default)["stackLevel"] == 0
    for payload in (default, maximum):
        assert _schedule(version, payload)["chargingRateUnit"] == unit
        assert _periods(_schedule(version, payload)) == [(0, FULL_RATE[unit])]
    assert received[0]["action"] == ("GetConfiguration" if version == "1.6" else "GetVariables")

    # the transaction's TxProfile: the hand-computed plan, accepted by the station
    tx_profiles = [r for r in profiles
                   if _profile(version, r["payload"])["chargingProfilePurpose"] == "TxProfile"]
    accepted = [r for r in tx_profiles if r["answer"]["status"] == "Accepted"]
    assert accepted, f"no TxProfile accepted: {tx_profiles}"
    # a re-plan racing the stop may reach the station after it: rejected, no transaction
    assert all(r["answer"]["status"] == "Accepted"
               or r["reason"].startswith("no active transaction") for r in tx_profiles)
    for r in accepted:
        body, schedule = _profile(version, r["payload"]), _schedule(version, r["payload"])
        assert str(body["transactionId"]) == tx_id
        assert (body["stackLevel"], body["chargingProfileKind"]) == (1, "Absolute")
        assert schedule["chargingRateUnit"] == unit
        assert schedule["startSchedule"] == TX_START_SCHEDULE
        assert schedule["duration"] == TX_DURATION_S
        assert _periods(schedule) == [(0, 0.0), (OFF_PEAK_START_S, TX_RATE[unit])]

    # GetCompositeSchedule: what the station computed, and the server stored the same
    composites = [r for r in received if r["action"] == "GetCompositeSchedule"]
    assert composites and all(r["answer"]["status"] == "Accepted" for r in composites)
    answer = composites[0]["answer"]
    schedule = answer["chargingSchedule"] if version == "1.6" else answer["schedule"]
    start = answer["scheduleStart"] if version == "1.6" else schedule["scheduleStart"]
    assert schedule["chargingRateUnit"] == unit
    assert _periods(schedule) == _expected_composite(start, unit)
    rows = store.profiles("C0")
    assert [r["purpose"] for r in rows[:2]] == ["TxDefaultProfile", MAX_PURPOSE[version]]
    assert all(r["status"] == "Accepted" for r in rows[:2])
    stored = [r["composite"] for r in rows if r["purpose"] == "TxProfile"
              and r["status"] == "Accepted" and r["composite"] is not None]
    assert answer in stored

    # the transaction, its needs and its meter values are in the store
    tx = store.transaction("C0", tx_id)
    assert tx is not None and tx.vehicle_id == "V0"
    assert (tx.meter_start_wh, tx.meter_stop_wh) == (METER_START_WH, METER_START_WH)
    assert tx.stopped_at is not None and store.open_transactions() == []
    assert tx.departure_at == DEPARTURE and tx.energy_needed_kwh == 10.0
    assert tx.needs_source == ("scenario" if version == "1.6" else "NotifyEVChargingNeeds")
    meter = store.meter_values("C0")
    periodic = meter[meter["context"] == "Sample.Periodic"]
    assert dict(zip(periodic["measurand"], periodic["value"])) == {
        "Energy.Active.Import.Register": METER_START_WH, "Power.Active.Import": 0.0,
        "SoC": SOC_PERCENT}
    assert (meter["ocpp_tx_id"] == tx_id).all()
    assert not [e for e in store.security_events() if e["kind"] == "invalid_message"]
