"""The depot simulator: its station-side composite schedule (fleetcharge.ops.composite) against
hand-computed cases, and simulated stations of every OCPP version against a real central system.

Every expected number is worked out by hand in the comment next to it (OCPP 1.6 §3.13, 2.x K08);
wire payloads are validated with the ``ocpp`` package's own JSON schemas.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import warnings
from decimal import Decimal
from importlib import resources

import jsonschema
import pandas as pd
import pytest
import websockets
from ocpp import v16, v21, v201
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from rich.console import Console
from websockets.asyncio.server import serve

from fleetcharge.domain import Charger, Scenario, Session, Site, Vehicle, VehicleType
from fleetcharge.errors import InputError
from fleetcharge.generate import generate_scenario
from fleetcharge.ops.clock import Clock
from fleetcharge.ops.composite import (
    ActiveTransaction,
    ProfileRejected,
    ProfileStore,
    parse_profile,
)
from fleetcharge.ops.simulator import (
    MessageStats,
    SessionResult,
    SimulationResult,
    StationOptions,
    run_simulate_depot,
    simulate_depot,
    summary_table,
)
from fleetcharge.timegrid import Horizon

T0 = pd.Timestamp("2025-03-04T02:00:00Z")
L2 = Charger("L2-01", max_kw=19.2, min_kw=1.44, phases=1, voltage_v=240.0)
AC3 = Charger("AC3", max_kw=22.0, min_kw=4.16, phases=3, voltage_v=400.0)
DC = Charger("DC-01", max_kw=60.0, current_type="DC", bidirectional=True)


def iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def profile(version: str, *, purpose: str, periods: list[tuple[int, float]], evse: int = 1,
            pid: int = 1, stack: int = 0, kind: str = "Absolute", unit: str = "W",
            start: pd.Timestamp | None = T0, duration: int | None = None,
            tx: str | int | None = None, valid_to: pd.Timestamp | None = None,
            valid_from: pd.Timestamp | None = None, recurrency: str | None = None,
            extra_period: dict | None = None) -> dict:
    """A SetChargingProfile request payload in wire camelCase for ``version``."""
    schedule: dict = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": s, "limit": v, **(extra_period or {})} for s, v in periods]}
    if start is not None:
        schedule["startSchedule"] = iso(start)
    if duration is not None:
        schedule["duration"] = duration
    body: dict = {"stackLevel": stack, "chargingProfileKind": kind}
    if recurrency:
        body["recurrencyKind"] = recurrency
    if valid_to is not None:
        body["validTo"] = iso(valid_to)
    if valid_from is not None:
        body["validFrom"] = iso(valid_from)
    if version == "1.6":
        body.update(chargingProfileId=pid, chargingProfilePurpose=(
            "ChargePointMaxProfile" if purpose == "max" else purpose), chargingSchedule=schedule)
        if tx is not None:
            body["transactionId"] = int(tx)
        return {"connectorId": evse, "csChargingProfiles": body}
    body.update(id=pid, chargingProfilePurpose=(
        "ChargingStationMaxProfile" if purpose == "max" else purpose),
        chargingSchedule=[{"id": 1, **schedule}])
    if tx is not None:
        body["transactionId"] = str(tx)
    return {"evseId": evse, "chargingProfile": body}


def kw(store: ProfileStore, start: pd.Timestamp, end: pd.Timestamp,
       tx: ActiveTransaction | None = None) -> list[tuple[float, float | None]]:
    """Composite as (minutes after T0, limit kW rounded to 1e-9)."""
    return [((s.start_s - T0.value / 1e9) / 60, None if s.limit_kw is None else round(s.limit_kw, 9))
            for s in store.segments(start, end, transaction=tx)]


def schema(version: str, action: str) -> dict:
    """The ``ocpp`` package's JSON schema of ``action``'s response (floats as Decimal so that
    1.6's ``multipleOf: 0.1`` is checked exactly, as the library does)."""
    folder = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}[version]
    text = (resources.files("ocpp") / folder / "schemas" / f"{action}Response.json").read_text()
    return json.loads(text, parse_float=Decimal)


TX = ActiveTransaction("77", T0 - pd.Timedelta(minutes=10))


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_tx_profile_over_tx_default_then_station_max(version: str) -> None:
    store = ProfileStore(L2, version=version)
    store.set(profile(version, purpose="TxDefaultProfile", evse=0, pid=1, kind="Relative",
                      start=None, periods=[(0, 19200)]), transaction=TX)
    store.set(profile(version, purpose="TxProfile", pid=2, stack=1, tx="77", duration=7200,
                      periods=[(0, 7000), (3600, 3000)]), transaction=TX)
    store.set(profile(version, purpose="max", evse=0, pid=3, periods=[(0, 11000)]), transaction=TX)
    # [0,60) min: TxProfile 7 kW (< max 11); [60,120): 3 kW; from 120 the TxProfile's duration is
    # over, so TxDefault 19.2 kW applies, capped by the max at 11 kW.
    assert kw(store, T0, T0 + pd.Timedelta(hours=3), TX) == [(0, 7.0), (60, 3.0), (120, 11.0)]
    # Without the transaction the TxProfile does not apply: TxDefault 19.2 min 11 = 11 kW.
    assert kw(store, T0, T0 + pd.Timedelta(hours=1)) == [(0, 11.0)]


def test_station_max_starting_later_and_unconstrained_before() -> None:
    store = ProfileStore(L2, version="2.0.1")
    store.set(profile("2.0.1", purpose="max", evse=0, start=T0 + pd.Timedelta(minutes=30),
                      periods=[(0, 5000)]), transaction=None)
    # No Tx/TxDefault and no max before 30 min: unconstrained (None); then 5 kW.
    assert kw(store, T0, T0 + pd.Timedelta(hours=1)) == [(0, None), (30, 5.0)]
    wire = store.composite_schedule(start=T0, duration_s=3600, evse_id=1, unit="W",
                                    transaction=None)
    # unconstrained reports the charger rating, 19.2 kW = 19200 W
    assert wire["schedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 19200.0}, {"startPeriod": 1800, "limit": 5000.0}]


def test_relative_starts_at_transaction_start_absolute_at_start_schedule() -> None:
    rel, ab = ProfileStore(L2, version="2.0.1"), ProfileStore(L2, version="2.0.1")
    periods = [(0, 16.0), (1800, 8.0)]
    rel.set(profile("2.0.1", purpose="TxProfile", kind="Relative", start=None, unit="A", tx="77",
                    periods=periods), transaction=TX)
    ab.set(profile("2.0.1", purpose="TxProfile", unit="A", tx="77", periods=periods),
           transaction=TX)
    # 16 A × 240 V = 3.84 kW, 8 A × 240 V = 1.92 kW. The transaction started 10 min before T0, so
    # the Relative profile switches at T0 + 20 min; the Absolute one at T0 + 30 min.
    assert kw(rel, T0, T0 + pd.Timedelta(hours=1), TX) == [(0, 3.84), (20, 1.92)]
    assert kw(ab, T0, T0 + pd.Timedelta(hours=1), TX) == [(0, 3.84), (30, 1.92)]


def test_amps_and_watts_convert_both_ways() -> None:
    store = ProfileStore(L2, version="1.6")
    store.set(profile("1.6", purpose="TxDefaultProfile", evse=0, unit="W",
                      periods=[(0, 7000)]), transaction=None)
    store.set(profile("1.6", purpose="max", evse=0, pid=2, unit="A",
                      periods=[(0, 32.0), (600, 20.0)]), transaction=None)
    # W profile 7 kW; A max 32 A × 240 V = 7.68 kW, then 20 A = 4.8 kW.
    # In A: 7000 / 240 = 29.17 → 29.2; 20 A stays 20. In W: 7000; 20 A → 4800 W.
    amps = store.composite_schedule(start=T0, duration_s=1200, evse_id=1, unit="A",
                                    transaction=None)
    watts = store.composite_schedule(start=T0, duration_s=1200, evse_id=1, unit="W",
                                     transaction=None)
    assert amps["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 29.2, "numberPhases": 1},
        {"startPeriod": 600, "limit": 20.0, "numberPhases": 1}]
    assert watts["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 7000.0}, {"startPeriod": 600, "limit": 4800.0}]
    # three phase, 400 V line to line: 16 A → √3 · 400 · 16 = 11 085.1 W; one phase in use:
    # a third of it, 3 695.0 W
    ac3 = ProfileStore(AC3, version="1.6")
    ac3.set(profile("1.6", purpose="TxDefaultProfile", evse=0, unit="A", periods=[(0, 16.0)]),
            transaction=None)
    out = ac3.composite_schedule(start=T0, duration_s=60, evse_id=0, unit="W", transaction=None)
    assert out["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0,
                                                                  "limit": 11085.1}]
    ac3.set(profile("1.6", purpose="TxDefaultProfile", evse=0, unit="A", periods=[(0, 16.0)],
                    extra_period={"numberPhases": 1}), transaction=None)
    out = ac3.composite_schedule(start=T0, duration_s=60, evse_id=0, unit="W", transaction=None)
    assert out["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0,
                                                                  "limit": 3695.0}]


def test_expiry_valid_to_and_duration_fall_back_to_lower_stack_level() -> None:
    store = ProfileStore(L2, version="2.0.1")
    store.set(profile("2.0.1", purpose="TxDefaultProfile", evse=0, pid=1, stack=0,
                      periods=[(0, 10000)]), transaction=None)
    store.set(profile("2.0.1", purpose="TxDefaultProfile", evse=0, pid=2, stack=1,
                      valid_to=T0 + pd.Timedelta(minutes=40), periods=[(0, 4000)]),
              transaction=None)
    store.set(profile("2.0.1", purpose="TxDefaultProfile", evse=0, pid=3, stack=2,
                      start=T0 + pd.Timedelta(minutes=10), duration=600, periods=[(0, 2000)]),
              transaction=None)
    # stack 2 only over [10, 20) min; stack 1 until validTo 40 min; then stack 0.
    assert kw(store, T0, T0 + pd.Timedelta(hours=1)) == [(0, 4.0), (10, 2.0), (20, 4.0),
                                                          (40, 10.0)]
    # a profile that expired before the window has no effect
    store.set(profile("2.0.1", purpose="TxDefaultProfile", evse=1, pid=4, stack=5,
                      valid_to=T0 - pd.Timedelta(minutes=1), periods=[(0, 1500)]),
              transaction=None)
    assert kw(store, T0 + pd.Timedelta(minutes=45), T0 + pd.Timedelta(hours=1)) == [(45, 10.0)]


def test_recurring_daily_profile_repeats() -> None:
    # 1.6 §3.13.7 style: 32 A, 10 A from 08:00 to 20:00, then 32 A, every day from a past day
    store = ProfileStore(L2, version="1.6")
    store.set(profile("1.6", purpose="TxDefaultProfile", evse=0, kind="Recurring",
                      recurrency="Daily", unit="A", start=pd.Timestamp("2025-01-01T00:00Z"),
                      periods=[(0, 32.0), (8 * 3600, 10.0), (20 * 3600, 32.0)]),
              transaction=None)
    day = pd.Timestamp("2025-03-04T00:00Z")
    segs = store.segments(day + pd.Timedelta(hours=6), day + pd.Timedelta(hours=30))
    got = [((s.start_s - day.value / 1e9) / 3600, round(s.limit_kw, 9)) for s in segs]
    # 32 A × 240 V = 7.68 kW; 10 A = 2.4 kW; the next day's 08:00 is hour 32, outside the window
    assert got == [(6, 7.68), (8, 2.4), (20, 7.68)]


def test_central_setpoint_discharge_on_2_1() -> None:
    store = ProfileStore(DC, version="2.1")
    payload = profile("2.1", purpose="TxProfile", tx="77", periods=[(0, 50000)],
                      extra_period={"operationMode": "CentralSetpoint", "setpoint": -20000,
                                    "dischargeLimit": -30000})
    store.set(payload, transaction=TX)
    (seg,) = store.segments(T0, T0 + pd.Timedelta(minutes=5), transaction=TX)
    assert (seg.limit_kw, seg.setpoint_kw, seg.discharge_limit_kw) == (50.0, -20.0, -30.0)
    wire = store.composite_schedule(start=T0, duration_s=300, evse_id=1, unit="W",
                                    transaction=TX)
    assert wire["schedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 50000.0, "operationMode": "CentralSetpoint",
         "setpoint": -20000.0, "dischargeLimit": -30000.0}]
    jsonschema.Draft4Validator(schema("2.1", "GetCompositeSchedule")).validate(
        json.loads(json.dumps(wire), parse_float=Decimal))
    # the same on a unidirectional charger is refused
    with pytest.raises(ProfileRejected, match="unidirectional"):
        ProfileStore(L2, version="2.1").set(payload, transaction=TX)


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_composite_schedule_payload_validates_against_ocpp_schema(version: str) -> None:
    store = ProfileStore(L2, version=version)
    store.set(profile(version, purpose="TxDefaultProfile", evse=0, unit="A",
                      periods=[(0, 32.0), (900, 7.5)]), transaction=None)
    for unit in ("A", "W"):
        wire = store.composite_schedule(start=T0 + pd.Timedelta(seconds=0.4), duration_s=1800,
                                        evse_id=1, unit=unit, transaction=None)
        jsonschema.Draft4Validator(schema(version, "GetCompositeSchedule")).validate(
            json.loads(json.dumps(wire), parse_float=Decimal))
    assert wire["status"] == "Accepted"
    rejected = ProfileStore(L2, version=version, rate_units=("A",)).composite_schedule(
        start=T0, duration_s=60, evse_id=1, unit="W", transaction=None)
    assert rejected["status"] == "Rejected"


@pytest.mark.parametrize(("version", "payload", "transaction", "match"), [
    ("2.0.1", profile("2.0.1", purpose="TxDefaultProfile", periods=[(10, 1000)]), None,
     "FirstStartScheduleIsNotZero"),
    ("1.6", profile("1.6", purpose="TxDefaultProfile", periods=[(0, 1000), (0, 2000)]), None,
     "OutOfOrder"),
    ("2.0.1", profile("2.0.1", purpose="TxDefaultProfile", start=None, periods=[(0, 1000)]),
     None, "MissingRequiredStartSchedule"),
    ("2.1", profile("2.1", purpose="TxDefaultProfile", kind="Relative", periods=[(0, 1000)]),
     None, "ExtraneousStartSchedule"),
    ("1.6", profile("1.6", purpose="TxProfile", tx=77, periods=[(0, 1000)]), None,
     "HasNoActiveTransaction"),
    ("2.0.1", profile("2.0.1", purpose="TxProfile", tx="other", periods=[(0, 1000)]), TX,
     "TransactionNotOnEvse"),
    ("2.0.1", profile("2.0.1", purpose="TxProfile", periods=[(0, 1000)]), TX,
     "MissingTransactionId"),
    ("1.6", profile("1.6", purpose="max", evse=1, periods=[(0, 1000)]), None,
     "EvseIdGreaterThanZero"),
    ("2.0.1", profile("2.0.1", purpose="max", evse=0, kind="Relative", start=None,
                      periods=[(0, 1000)]), None, "CannotBeRelative"),
    ("2.0.1", profile("2.0.1", purpose="ChargingStationExternalConstraints", evse=0,
                      periods=[(0, 1000)]), None, "ExternalConstraints"),
    ("2.0.1", profile("2.0.1", purpose="TxDefaultProfile", evse=2, periods=[(0, 1000)]), None,
     "EvseDoesNotExist"),
    ("2.0.1", profile("2.0.1", purpose="TxDefaultProfile", periods=[(0, 1000)],
                      extra_period={"numberPhases": 3}), None, "UnsupportedNumberPhases"),
    ("2.1", profile("2.1", purpose="TxDefaultProfile", periods=[(0, 1000)],
                    extra_period={"operationMode": "LocalFrequency"}), None,
     "LocalFrequency not supported"),
    ("2.1", profile("2.1", purpose="max", evse=0, periods=[(0, 1000)],
                    extra_period={"operationMode": "CentralSetpoint", "setpoint": 500}), None,
     "allows only ChargingOnly"),
    ("1.6", profile("1.6", purpose="TxDefaultProfile", periods=[(0, -5)]), None,
     "negative limit"),
    ("2.0.1", profile("2.0.1", purpose="TxDefaultProfile", stack=9, periods=[(0, 1000)]), None,
     "stackLevel 9 outside"),
])
def test_invalid_profiles_are_rejected(version: str, payload: dict,
                                       transaction: ActiveTransaction | None, match: str) -> None:
    store = ProfileStore(L2, version=version)
    with pytest.raises(ProfileRejected, match=match):
        store.set(payload, transaction=transaction)
    assert store.profiles == ()


def test_unit_and_period_count_limits() -> None:
    too_many = profile("1.6", purpose="TxDefaultProfile", periods=[(i * 60, 1000) for i in range(5)])
    with pytest.raises(ProfileRejected, match="5 periods > 4 allowed"):
        parse_profile(too_many, version="1.6", charger=L2, max_periods=4)
    with pytest.raises(ProfileRejected, match="rate unit W not in"):
        parse_profile(profile("1.6", purpose="TxDefaultProfile", periods=[(0, 1000)]),
                      version="1.6", charger=L2, rate_units=("A",))
    dc = profile("2.0.1", purpose="TxDefaultProfile", periods=[(0, 1000)],
                 extra_period={"numberPhases": 1})
    with pytest.raises(ProfileRejected, match="ExtraneousPhaseValues"):
        parse_profile(dc, version="2.0.1", charger=DC)


def test_replacement_rules_differ_between_1_6_and_2_x() -> None:
    first = {"purpose": "TxDefaultProfile", "evse": 0, "stack": 0, "periods": [(0, 1000)]}
    # 1.6 §5.16.3: same stackLevel + purpose replaces the installed profile, whatever its id
    v16 = ProfileStore(L2, version="1.6")
    v16.set(profile("1.6", pid=1, **first), transaction=None)
    v16.set(profile("1.6", pid=2, **{**first, "periods": [(0, 2000)]}), transaction=None)
    assert [p.id for p in v16.profiles] == [2]
    # 2.x K01.FR.05 replaces by id; K01.FR.06 refuses another id at that stack level
    v2 = ProfileStore(L2, version="2.0.1")
    v2.set(profile("2.0.1", pid=1, **first), transaction=None)
    v2.set(profile("2.0.1", pid=1, **{**first, "periods": [(0, 3000)]}), transaction=None)
    assert [(p.id, p.periods[0].limit) for p in v2.profiles] == [(1, 3000.0)]
    with pytest.raises(ProfileRejected, match="DuplicateProfileValidityPeriod"):
        v2.set(profile("2.0.1", pid=2, **first), transaction=None)
    # K01.FR.52: the same stack level on the other scope (EVSE 1) with another id
    with pytest.raises(ProfileRejected, match="DuplicateTxDefaultProfileFound"):
        v2.set(profile("2.0.1", pid=3, **{**first, "evse": 1}), transaction=None)
    # K01.FR.39: two TxProfiles of one transaction at one stack level
    v2.set(profile("2.0.1", purpose="TxProfile", pid=10, stack=1, tx="77", periods=[(0, 1)]),
           transaction=TX)
    with pytest.raises(ProfileRejected, match="ConflictingStackLevel"):
        v2.set(profile("2.0.1", purpose="TxProfile", pid=11, stack=1, tx="77",
                       periods=[(0, 1)]), transaction=TX)


def test_clear_and_end_of_transaction() -> None:
    store = ProfileStore(L2, version="1.6")
    store.set(profile("1.6", purpose="TxDefaultProfile", evse=0, pid=1, periods=[(0, 1000)]),
              transaction=None)
    store.set(profile("1.6", purpose="max", evse=0, pid=2, periods=[(0, 5000)]), transaction=None)
    # a 1.6 TxProfile without transactionId is bound to the running transaction (§5.16.2)
    tx = store.set(profile("1.6", purpose="TxProfile", pid=3, stack=1, periods=[(0, 2000)]),
                   transaction=TX)
    assert tx.transaction_id == "77"
    assert store.clear(profile_id=42) is False
    assert store.clear(purpose="ChargePointMaxProfile") is True
    assert [p.id for p in store.profiles] == [1, 3]
    store.end_transaction("77")
    assert [p.id for p in store.profiles] == [1]
    assert store.clear() is True
    assert store.profiles == ()


def test_snake_case_payload_reads_like_camel_case() -> None:
    wire = profile("2.1", purpose="TxDefaultProfile", evse=0, periods=[(0, 1000)])
    snake = {"evse_id": 0, "charging_profile": {
        "id": 1, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute", "charging_schedule": [{
            "id": 1, "start_schedule": iso(T0), "charging_rate_unit": "W",
            "charging_schedule_period": [{"start_period": 0, "limit": 1000}]}]}}
    assert parse_profile(wire, version="2.1", charger=L2) == parse_profile(
        snake, version="2.1", charger=L2)


# ---------------------------------------------------------------------------------------------
# Simulated stations against a real OCPP central system (websockets on 127.0.0.1, port 0)
# ---------------------------------------------------------------------------------------------

PASSWORD = "s3cret-pw"
ARRIVAL = pd.Timestamp("2025-03-04T02:00:00Z")  # T0: every vehicle arrives, 15-min aligned
HOUR = pd.Timedelta(hours=1)
SPEED = 2700.0  # 3 h of simulated time in 4 s
#: The CSMS below sets, on every station, this hand-made design (kW):
#: TxDefault (Absolute from T0):  7.2 until +60 min, then 3.0
#: station max (Absolute from T0): 19.2, 4.8 over [+30, +60) min, then 19.2
#: TxProfile (Absolute from T0 + 2 h, stack 1): 0.96 (below the 1.44 kW floor) for 30 min, 2.04
#: Composite over the 30-min blocks from T0: 7.2, 4.8, 3.0, 3.0, 0.96 (drawn: 0), 2.04, so per
#: 15-min bin 7.2 7.2 4.8 4.8 3 3 3 3 0 0 2.04 2.04 kW: 10.02 kWh in 3 h.
TX_DEFAULT_KW = [(0, 7.2), (3600, 3.0)]
MAX_KW = [(0, 19.2), (1800, 4.8), (3600, 19.2)]
TX_KW = [(0, 0.96), (1800, 2.04)]
TX_START = ARRIVAL + 2 * HOUR


def _limits(version_unit: str, pairs: list[tuple[int, float]]) -> list[tuple[int, float]]:
    # 240 V single phase: 7.2 kW = 30 A, 3.0 = 12.5, 19.2 = 80, 4.8 = 20, 0.96 = 4, 2.04 = 8.5
    return [(s, round(k * 1000 / 240, 1) if version_unit == "A" else round(k * 1000, 1))
            for s, k in pairs]


def depot(energies_kwh: list[float]) -> Scenario:
    """One 19.2 kW L2 port and one van (60 kWh, η 0.9, 11.3 kW AC) per session; every session
    from T0 to T0 + 3 h with arrival SOC 0.5."""
    vtype = VehicleType("van", 60.0, max_ac_kw=11.3, max_dc_kw=50.0, charge_efficiency=0.9)
    chargers, vehicles, sessions = [], [], []
    for i, e in enumerate(energies_kwh, start=1):
        chargers.append(Charger(f"CP{i}", max_kw=19.2, min_kw=1.44, phases=1, voltage_v=240.0))
        vehicles.append(Vehicle(f"V{i}", vtype, home_charger_id=f"CP{i}"))
        sessions.append(Session(f"S{i}", f"V{i}", f"CP{i}", ARRIVAL, ARRIVAL + 3 * HOUR, e,
                                0.5, 0.5 + 0.9 * e / 60.0, 11.3))
    horizon = Horizon(ARRIVAL - 2 * HOUR, ARRIVAL + 6 * HOUR, 15, "UTC")
    return Scenario("sim-test", Site("UTC", 1000.0), tuple(chargers), (vtype,),
                    tuple(vehicles), tuple(sessions), tariff=None, horizon=horizon)


class Hub:
    """A small central system: records every frame, sets the profiles above, and can drop a
    frame unanswered, close all sockets and refuse reconnections (HTTP 503)."""

    def __init__(self, clock: Clock, units: dict[str, str]) -> None:
        self.clock = clock
        self.units = units  # rate unit the CSMS uses per station
        self.frames: list[tuple[str, str, str, dict]] = []  # (cp, action, message id, payload)
        self.answers: dict[tuple[str, str], object] = {}
        self.configured_at: dict[str, pd.Timestamp] = {}
        self.connections: dict[str, object] = {}
        self.drop: set[tuple[str, str]] = set()  # (cp, action) whose next call goes unanswered
        self.refuse = False
        self.tasks: set[asyncio.Task] = set()
        self.next_tx = 4711

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)

    def calls(self, cp: str, action: str) -> list[dict]:
        return [p for c, a, _, p in self.frames if c == cp and a == action]

    async def process_request(self, connection, request):
        token = base64.b64encode(f"{request.path.strip('/')}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {token}":
            return connection.respond(401, "bad credentials\n")
        if self.refuse:
            return connection.respond(503, "restarting\n")
        return None

    async def handler(self, ws) -> None:
        cp_id = ws.request.path.strip("/")
        cls = {"ocpp1.6": Csms16, "ocpp2.0.1": Csms201, "ocpp2.1": Csms21}[ws.subprotocol]
        self.connections[cp_id] = ws
        try:
            await cls(cp_id, ws, self).start()
        except websockets.exceptions.ConnectionClosed:
            pass

    async def cut_all(self) -> None:
        """Drop every socket (no close handshake) and refuse reconnections until released."""
        self.refuse = True
        for ws in self.connections.values():
            ws.transport.abort()


class _Recording:
    hub: Hub
    id: str

    async def route_message(self, raw: str) -> None:
        msg = json.loads(raw)
        if msg[0] == 2:
            self.hub.frames.append((self.id, msg[2], msg[1], msg[3]))
            if (self.id, msg[2]) in self.hub.drop:  # leave this call unanswered once
                self.hub.drop.discard((self.id, msg[2]))
                return
        await super().route_message(raw)  # type: ignore[misc]

    async def send_profiles(self, tx_id: str | int | None) -> None:
        """TxDefault + max after boot; with ``tx_id`` a wrong and a right TxProfile, the
        composite, and two requests the station has no handler for."""
        unit = self.hub.units[self.id]
        version = self._ocpp_version
        if tx_id is None:
            for payload in (
                profile(version, purpose="TxDefaultProfile", evse=0, pid=1, unit=unit,
                        start=ARRIVAL, periods=_limits(unit, TX_DEFAULT_KW)),
                profile(version, purpose="max", evse=0, pid=2, unit=unit, start=ARRIVAL,
                        periods=_limits(unit, MAX_KW)),
            ):
                self.record("profile", await self.request("SetChargingProfile", payload))
            self.hub.configured_at[self.id] = self.hub.clock.now()
            return
        wrong = profile(version, purpose="TxProfile", pid=8, stack=1, unit=unit, start=TX_START,
                        tx=int(tx_id) + 1 if version == "1.6" else "not-mine",
                        periods=_limits(unit, TX_KW))
        self.record("wrong tx", await self.request("SetChargingProfile", wrong))
        right = profile(version, purpose="TxProfile", pid=9, stack=1, unit=unit, start=TX_START,
                        tx=tx_id, periods=_limits(unit, TX_KW))
        self.record("tx", await self.request("SetChargingProfile", right))
        request = ({"connectorId": 1, "duration": 4 * 3600, "chargingRateUnit": unit}
                   if version == "1.6" else
                   {"evseId": 1, "duration": 4 * 3600, "chargingRateUnit": unit})
        self.record("composite", await self.request("GetCompositeSchedule", request))
        other = {"connectorId": 1, "duration": 60, "chargingRateUnit": "W"}
        if version == "1.6" and unit == "A":  # a unit the station does not support
            self.record("composite W", await self.request("GetCompositeSchedule", other))
        for action, payload in (("Reset", {"type": "Soft" if version == "1.6" else "OnIdle"}),
                                ("AFRRSignal", {"timestamp": iso(ARRIVAL), "signal": 1})):
            if action == "AFRRSignal" and version != "2.1":
                continue
            try:
                await self.request(action, payload)
                self.record(action, "answered")
            except OCPPError as exc:
                self.record(action, type(exc).__name__)
        # other requests a CSMS may send get their specified answers
        self.record("trigger", await self.request("TriggerMessage", {
            "requestedMessage": "MeterValues"}))
        self.record("data transfer", await self.request("DataTransfer", {"vendorId": "acme"}))
        if version == "1.6":
            self.record("clear", await self.request("ClearChargingProfile", {"id": 99}))
            self.record("set config", await self.request("ChangeConfiguration", {
                "key": "ChargingScheduleMaxPeriods", "value": "5"}))
        else:
            self.record("clear", await self.request("ClearChargingProfile", {
                "chargingProfileId": 99}))
            self.record("set config", await self.request("SetVariables", {"setVariableData": [
                {"attributeValue": "5", "component": {"name": "SmartChargingCtrlr"},
                 "variable": {"name": "PeriodsPerSchedule"}}]}))

    def record(self, what: str, value: object) -> None:
        self.hub.answers.setdefault((self.id, what), value)

    async def request(self, action: str, payload: dict) -> object:
        message = getattr(self._call, action)(**camel_to_snake_case(payload))
        return await self.call(message, suppress=False)  # type: ignore[attr-defined]


class Csms16(_Recording, v16.ChargePoint):
    def __init__(self, cp_id: str, ws, hub: Hub) -> None:
        super().__init__(cp_id, ws, response_timeout=10)
        self.hub = hub

    @on("BootNotification")
    def on_boot(self, **_):
        return v16.call_result.BootNotification(current_time=iso(self.hub.clock.now()),
                                                interval=600, status="Accepted")

    @after("BootNotification")
    def after_boot(self, **_):
        async def configure():
            conf = await self.request("GetConfiguration", {"key": [
                "ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods", "Nope"]})
            self.record("configuration", conf)
            await self.send_profiles(None)
        self.hub.spawn(configure())

    @on("Heartbeat")
    def on_heartbeat(self, **_):
        return v16.call_result.Heartbeat(current_time=iso(self.hub.clock.now()))

    @on("StatusNotification")
    def on_status(self, **_):
        return v16.call_result.StatusNotification()

    @on("StartTransaction")
    def on_start(self, id_tag, **_):
        self.tx_id = self.hub.next_tx
        self.hub.next_tx += 1
        return v16.call_result.StartTransaction(transaction_id=self.tx_id,
                                                id_tag_info={"status": "Accepted"})

    @after("StartTransaction")
    def after_start(self, **_):
        self.hub.spawn(self.send_profiles(self.tx_id))

    @on("MeterValues")
    def on_meter(self, **_):
        return v16.call_result.MeterValues()

    @on("StopTransaction")
    def on_stop(self, **_):
        return v16.call_result.StopTransaction()


class _Csms2x(_Recording):
    @on("BootNotification")
    def on_boot(self, **_):
        return self._call_result.BootNotification(current_time=iso(self.hub.clock.now()),
                                                  interval=600, status="Accepted")

    @after("BootNotification")
    def after_boot(self, **_):
        async def configure():
            got = await self.request("GetVariables", {"getVariableData": [
                {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": n}}
                for n in ("RateUnit", "PeriodsPerSchedule", "Nope")]})
            self.record("configuration", got)
            await self.send_profiles(None)
        self.hub.spawn(configure())

    @on("Heartbeat")
    def on_heartbeat(self, **_):
        return self._call_result.Heartbeat(current_time=iso(self.hub.clock.now()))

    @on("StatusNotification")
    def on_status(self, **_):
        return self._call_result.StatusNotification()

    @on("TransactionEvent")
    def on_event(self, **_):
        return self._call_result.TransactionEvent(id_token_info={"status": "Accepted"})

    @after("TransactionEvent")
    def after_event(self, event_type, transaction_info, **_):
        if event_type == "Started":
            self.hub.spawn(self.send_profiles(transaction_info["transaction_id"]))

    @on("NotifyEVChargingNeeds")
    def on_needs(self, **_):
        return self._call_result.NotifyEVChargingNeeds(status="Accepted")

    @on("MeterValues")
    def on_meter(self, **_):
        return self._call_result.MeterValues()


class Csms201(_Csms2x, v201.ChargePoint):
    def __init__(self, cp_id: str, ws, hub: Hub) -> None:
        super().__init__(cp_id, ws, response_timeout=10)
        self.hub = hub


class Csms21(_Csms2x, v21.ChargePoint):
    def __init__(self, cp_id: str, ws, hub: Hub) -> None:
        super().__init__(cp_id, ws, response_timeout=10)
        self.hub = hub


async def run_against_hub(scenario: Scenario, units: dict[str, str], *,
                          during=None, **options) -> tuple[SimulationResult, Hub]:
    """Serve a Hub on a free port and simulate ``scenario`` against it from T0 − 1 h (boot and
    configuration have 1.3 s of real time before the vehicles arrive)."""
    clock = Clock(ARRIVAL - HOUR, speed=SPEED)
    hub = Hub(clock, units)
    async with serve(hub.handler, "127.0.0.1", 0, subprotocols=["ocpp2.1", "ocpp2.0.1", "ocpp1.6"],
                     process_request=hub.process_request) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        side = asyncio.create_task(during(hub)) if during is not None else None
        options.setdefault("passwords", PASSWORD)
        result = await simulate_depot(scenario, url, clock=clock, meter_interval_s=300,
                                      **options)
        if side is not None:
            await side
        for task in hub.tasks:
            task.cancel()
        await asyncio.gather(*hub.tasks, return_exceptions=True)
    return result, hub


def registers_wh(hub: Hub, cp: str) -> list[tuple[str, float]]:
    """(timestamp, Energy.Active.Import.Register) of every periodic sample, in receipt order."""
    out = []
    for action in ("MeterValues", "TransactionEvent"):
        for payload in hub.calls(cp, action):
            for mv in payload.get("meterValue", []):
                for sv in mv["sampledValue"]:
                    if (sv.get("measurand") == "Energy.Active.Import.Register"
                            and sv.get("context") == "Sample.Periodic"):
                        out.append((mv["timestamp"], float(sv["value"])))
    return out


def test_stations_of_every_version_follow_their_composite_schedule() -> None:
    scenario = depot([20.0, 5.0, 20.0])
    units = {"CP1": "A", "CP2": "W", "CP3": "W"}
    result, hub = asyncio.run(run_against_hub(
        scenario, units, versions=("1.6", "2.0.1", "2.1"),
        station_options={"CP1": StationOptions(rate_units=("A",))}))
    assert result.versions == {"CP1": "1.6", "CP2": "2.0.1", "CP3": "2.1"}
    assert all(hub.configured_at[cp] < ARRIVAL for cp in units), hub.configured_at
    assert result.stats.errors == result.stats.timeouts == result.stats.undelivered == 0

    # capabilities: 1.6 GetConfiguration, 2.x GetVariables
    conf = hub.answers[("CP1", "configuration")]
    assert {k["key"]: k["value"] for k in conf.configuration_key} == {
        "ChargingScheduleAllowedChargingRateUnit": "Current", "ChargingScheduleMaxPeriods": "24"}
    assert conf.unknown_key == ["Nope"]
    got = hub.answers[("CP2", "configuration")].get_variable_result
    assert [(r["attribute_status"], r.get("attribute_value")) for r in got] == [
        ("Accepted", "A,W"), ("Accepted", "24"), ("UnknownVariable", None)]

    # profiles: accepted; a TxProfile for another transaction rejected (2.x: TxNotFound)
    for cp in units:
        assert hub.answers[(cp, "profile")].status == "Accepted"
        assert hub.answers[(cp, "tx")].status == "Accepted"
        assert hub.answers[(cp, "wrong tx")].status == "Rejected"
        assert hub.answers[(cp, "Reset")] == "NotImplementedError"
    assert hub.answers[("CP2", "wrong tx")].status_info["reason_code"] == "TxNotFound"
    for cp in units:
        assert hub.answers[(cp, "trigger")].status == "Accepted"
        assert hub.answers[(cp, "data transfer")].status == "UnknownVendorId"
        assert hub.answers[(cp, "clear")].status == "Unknown"  # no profile 99
    assert hub.answers[("CP1", "set config")].status == "Rejected"  # read-only key
    assert hub.answers[("CP2", "set config")].set_variable_result[0][
        "attribute_status"] == "Rejected"
    # the triggered meter value (context Trigger) came, on 2.x as a MeterValuesRequest
    for cp, action in (("CP1", "MeterValues"), ("CP2", "MeterValues"), ("CP3", "MeterValues")):
        triggered = [mv for p in hub.calls(cp, action) for mv in p["meterValue"]
                     if mv["sampledValue"][0]["context"] == "Trigger"]
        assert len(triggered) == 1
    assert hub.answers[("CP3", "AFRRSignal")] == "NotImplementedError"  # 2.1: answered at all

    # composite from the station in its unit: the hand-made design from the moment it was asked
    # (until +4 h: the TxProfile has no duration, so 2.04 kW = 8.5 A stays)
    for cp, unit in units.items():
        answer = hub.answers[(cp, "composite")]
        schedule = answer.charging_schedule if cp == "CP1" else answer.schedule
        start = pd.Timestamp(answer.schedule_start if cp == "CP1" else schedule["schedule_start"])
        design = [(ARRIVAL + pd.Timedelta(minutes=m), w) for m, w in
                  _limits(unit, [(0, 7.2), (30, 4.8), (60, 3.0), (120, 0.96), (150, 2.04)])]
        expected = [(t, w) for t, w in design if t > start]
        expected.insert(0, (start, [w for t, w in design if t <= start][-1]))
        got = [(start + pd.Timedelta(seconds=p["start_period"]), float(p["limit"]))
               for p in schedule["charging_schedule_period"]]
        assert got == expected
        assert schedule["charging_rate_unit"] == unit
    assert hub.answers[("CP1", "composite W")].status == "Rejected"

    # energy: 10.02 kWh where the target is out of reach, 5 kWh (met at +47.5 min) on CP2
    by_cp = {r.charger_id: r for r in result.sessions}
    assert by_cp["CP1"].delivered_kwh == pytest.approx(10.02, abs=1e-9)
    assert by_cp["CP3"].delivered_kwh == pytest.approx(10.02, abs=1e-9)
    assert by_cp["CP2"].delivered_kwh == pytest.approx(5.0, abs=1e-9)
    assert [r.met for r in (by_cp["CP1"], by_cp["CP2"], by_cp["CP3"])] == [False, True, False]
    assert by_cp["CP1"].final_soc == pytest.approx(0.5 + 0.9 * 10.02 / 60, abs=1e-12)
    # 30 min at 0.96 kW < 1.44 kW floor: nothing drawn, reported; CP2 was full by then
    assert [by_cp[c].below_floor_s for c in ("CP1", "CP2", "CP3")] == pytest.approx(
        [1800.0, 0.0, 1800.0])

    # site meter, 15-min averages (kW): CP1 + CP3 = 2 × (7.2 7.2 4.8 4.8 3 3 3 3 0 0 2.04 2.04),
    # CP2 = 7.2 7.2 4.8 and 0.8 (2.5 min at 4.8 kW), then 0
    site = result.site_kw[ARRIVAL - HOUR:]
    expected_kw = [0.0] * 4 + [21.6, 21.6, 14.4, 10.4, 6, 6, 6, 6, 0, 0, 4.08, 4.08]
    assert site.to_numpy() == pytest.approx(expected_kw, abs=1e-9)
    assert result.peak_kw == pytest.approx(21.6)

    # what the CSMS received: start, needs (2.x), meter values, stop with the final register
    assert hub.calls("CP1", "StartTransaction")[0]["idTag"] == "V1"
    assert hub.calls("CP1", "StopTransaction")[0]["meterStop"] == 10020
    assert hub.calls("CP1", "StopTransaction")[0]["transactionId"] == 4711
    needs = hub.calls("CP2", "NotifyEVChargingNeeds")[0]["chargingNeeds"]
    assert needs["departureTime"] == "2025-03-04T05:00:00.000Z"
    assert needs["acChargingParameters"]["energyAmount"] == 5000
    events = hub.calls("CP3", "TransactionEvent")
    assert [e["eventType"] for e in (events[0], events[-1])] == ["Started", "Ended"]
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert events[0]["idToken"] == {"idToken": "V3", "type": "Central"}
    end = {sv["measurand"]: sv["value"] for sv in events[-1]["meterValue"][0]["sampledValue"]}
    assert end["Energy.Active.Import.Register"] == pytest.approx(10020.0)
    assert end["SoC"] == pytest.approx(100 * (0.5 + 0.9 * 10.02 / 60), abs=0.05)
    # one periodic sample every 5 simulated minutes on the clock: 35 inside (T0, T0 + 3 h)
    samples = registers_wh(hub, "CP1")
    assert len(samples) == 35
    assert samples[0] == ("2025-03-04T02:05:00.000Z", pytest.approx(600.0))  # 5 min × 7.2 kW
    statuses = [p["status"] for p in hub.calls("CP1", "StatusNotification")]
    assert statuses[:3] == ["Available", "Preparing", "Charging"]
    assert statuses[-2:] == ["Finishing", "Available"]
    assert "SuspendedEVSE" in statuses  # the 0.96 kW period below the floor


def energy_wh_at(t: pd.Timestamp) -> float:
    """Hand integral of the design above for a vehicle that never fills [Wh]."""
    blocks = [(30, 7.2), (30, 4.8), (60, 3.0), (30, 0.0), (30, 2.04)]
    minutes, wh = (t - ARRIVAL).total_seconds() / 60, 0.0
    for length, kw_ in blocks:
        wh += kw_ * min(max(minutes, 0), length) * 1000 / 60
        minutes -= length
    return wh


def test_queued_messages_survive_a_dropped_socket_and_unanswered_calls_are_resent() -> None:
    scenario = depot([20.0, 20.0, 20.0])
    units = {"CP1": "W", "CP2": "W", "CP3": "W"}
    dropped = {"CP1": "MeterValues", "CP2": "TransactionEvent", "CP3": "TransactionEvent"}

    async def trouble(hub: Hub) -> None:
        await hub.clock.sleep_until(ARRIVAL + pd.Timedelta(minutes=20))
        hub.drop.update(dropped.items())  # the next one goes unanswered
        await hub.clock.sleep_until(ARRIVAL + pd.Timedelta(minutes=70))
        await hub.cut_all()  # every socket dies; reconnections refused for 0.6 s (27 sim min)
        await asyncio.sleep(0.6)
        hub.refuse = False

    result, hub = asyncio.run(run_against_hub(
        scenario, units, during=trouble, versions=("1.6", "2.0.1", "2.1"),
        response_timeout_s=0.5, reconnect_backoff_s=(0.05, 0.2)))
    stats = result.stats
    assert stats.connects == 6 and stats.connect_failures >= 3
    assert stats.timeouts >= 3 and stats.errors == 0
    assert stats.undelivered == stats.dropped == 0
    # the physics does not depend on the network: 10.02 kWh each, as without trouble
    assert [r.delivered_kwh for r in result.sessions] == pytest.approx([10.02] * 3, abs=1e-9)
    expected_times = [ARRIVAL + pd.Timedelta(minutes=5 * k) for k in range(1, 36)]
    for cp, action in dropped.items():
        frames = [(a, mid, p) for c, a, mid, p in hub.frames if c == cp]
        # the call left unanswered was sent again with the same message id and payload
        ids = [mid for a, mid, _ in frames if a == action]
        repeated = {mid for mid in ids if ids.count(mid) > 1}
        assert repeated, f"{cp}: no {action} was sent twice"
        for mid in repeated:
            assert len({json.dumps(p) for a, m, p in frames if m == mid}) == 1
        # every clock-aligned sample arrived, first receipts in time order, values exact
        samples = registers_wh(hub, cp)
        first = list(dict.fromkeys(t for t, _ in samples))
        assert [pd.Timestamp(t) for t in first] == expected_times
        for t, wh in samples:
            assert wh == pytest.approx(energy_wh_at(pd.Timestamp(t)), abs=1e-3)
        # a second boot after the reconnection, before the queued transaction messages
        boots = [i for i, (a, _, _) in enumerate(frames) if a == "BootNotification"]
        assert len(boots) == 2
        tx_actions = ("MeterValues", "TransactionEvent", "StopTransaction")
        after_cut = [p for a, _, p in frames[boots[1]:] if a in tx_actions]
        cut = ARRIVAL + pd.Timedelta(minutes=70)
        assert any(pd.Timestamp((p.get("meterValue") or [{}])[0].get("timestamp", p.get(
            "timestamp"))) < cut + pd.Timedelta(minutes=20) for p in after_cut)
    assert hub.calls("CP1", "StopTransaction")[-1]["meterStop"] == 10020
    for cp in ("CP2", "CP3"):
        events = hub.calls(cp, "TransactionEvent")
        seqs = list(dict.fromkeys(e["seqNo"] for e in events))
        assert seqs == list(range(len(seqs)))  # E04: in order, none lost
        assert any(e.get("offline") for e in events)  # those that waited for the reconnection
        assert events[-1]["eventType"] == "Ended"


def test_wrong_password_never_gets_through() -> None:
    result, hub = asyncio.run(run_against_hub(
        depot([5.0]), {"CP1": "W"}, passwords={"CP1": "not-the-password"},
        until=ARRIVAL - pd.Timedelta(minutes=55), reconnect_backoff_s=(0.01, 0.02)))
    assert result.stats.connects == 0 and result.stats.connect_failures >= 2
    assert hub.frames == [] and result.sessions == ()


def test_tls_security_profile_2(tmp_path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))

    async def scenario() -> tuple[SimulationResult, Hub]:
        # 5 simulated minutes take 5 s here: time enough for the TLS handshake and the boot
        # on a busy machine (at SPEED they took 0.1 s and the test was flaky)
        clock = Clock(ARRIVAL - HOUR, speed=60.0)
        hub = Hub(clock, {"CP1": "W"})
        async with serve(hub.handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"],
                         process_request=hub.process_request, ssl=server_tls) as server:
            url = f"wss://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            result = await simulate_depot(depot([5.0]), url, clock=clock, passwords=PASSWORD,
                                          versions=("2.0.1",), ssl=client_tls,
                                          until=ARRIVAL - pd.Timedelta(minutes=55))
            for task in hub.tasks:
                task.cancel()
            await asyncio.gather(*hub.tasks, return_exceptions=True)
        return result, hub

    result, hub = asyncio.run(scenario())
    assert result.stats.connects == 1
    assert [a for _, a, _, _ in hub.frames][:1] == ["BootNotification"]


def test_cli_entry_point_names_the_bad_option(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = generate_scenario("delivery-vans", vehicles=2, days=1, seed=1,
                                 out_dir=tmp_path / "s")
    with pytest.raises(InputError, match="--url: 'http://x' is not a websocket URL"):
        run_simulate_depot(path, "http://x", password="pw")
    with pytest.raises(InputError, match=r"--versions: unknown OCPP version\(s\) \['1.5'\]"):
        run_simulate_depot(path, "ws://x", password="pw", versions=("1.5",))
    with pytest.raises(InputError, match="--speed/--start/--until: clock speed must be > 0"):
        run_simulate_depot(path, "ws://x", password="pw", speed=0)


def test_summary_table_shows_sessions_peak_and_messages() -> None:
    result = SimulationResult(
        sessions=(SessionResult("S1", "V1", "CP1", "2.1", ARRIVAL, ARRIVAL + HOUR, 5.0, 4.0,
                                0.0, 0.5, 0.56, 0.575, False, True, 600.0, "tx", True),
                  SessionResult("S2", "V2", "CP2", "1.6", ARRIVAL, ARRIVAL + 9 * HOUR, 5.0,
                                1.0, 0.0, 0.5, 0.52, 0.575, False, False, 0.0, "7", True)),
        site_kw=pd.Series([4.0, 12.5]), stats=MessageStats(sent=7, answered=7),
        versions={"CP1": "2.1"})
    assert not result.all_met  # S1 left short; S2, still plugged in, does not count yet
    assert result.sessions_frame().loc[0, "delivered_kwh"] == 4.0
    console = Console(record=True, width=140)
    console.print(summary_table(result))
    text = console.export_text()
    assert "S1" in text and "4.00" in text and "no" in text and "plugged in" in text
    assert "site peak 12.5 kW" in text and "calls sent 7, answered 7" in text


def test_2_1_features_the_station_lacks_are_rejected() -> None:
    for extra, match in (({"useLocalTime": True}, "UnsupportedLocalTime"),
                         ({"randomizedDelay": 60}, "UnsupportedRandomizedDelay"),
                         ({"limitAtSoC": {"soc": 80, "limit": 1000}}, "UnsupportedLimitAtSoC")):
        payload = profile("2.1", purpose="TxDefaultProfile", periods=[(0, 1000)])
        payload["chargingProfile"]["chargingSchedule"][0].update(extra)
        with pytest.raises(ProfileRejected, match=match):
            parse_profile(payload, version="2.1", charger=L2)
    sleepy = profile("2.1", purpose="TxDefaultProfile", periods=[(0, 1000)],
                     extra_period={"evseSleep": True})
    with pytest.raises(ProfileRejected, match="UnsupportedEvseSleep"):
        parse_profile(sleepy, version="2.1", charger=L2)
    # 1.6 has no K01.FR.38: a Relative ChargePointMaxProfile is accepted there
    store = ProfileStore(L2, version="1.6")
    store.set(profile("1.6", purpose="max", evse=0, kind="Relative", start=None,
                      periods=[(0, 5000)]), transaction=None)
    assert kw(store, T0, T0 + HOUR) == [(0, 5.0)]
