"""Plan → OCPP charging profiles (fleetcharge.ops.profiles; issue 5, item 4).

Independent checks: the JSON schemas bundled with the ``ocpp`` package, the library's own
serialisation, hand-computed W/A conversions, brute-force and greedy references for the period
merging, and per-second re-integration of every schedule for energy and peaks.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import re
from decimal import Decimal
from fractions import Fraction
from importlib import resources

import jsonschema
import numpy as np
import ocpp.v16.call
import ocpp.v16.call_result
import ocpp.v201.call
import ocpp.v201.call_result
import ocpp.v21.call
import ocpp.v21.call_result
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.charge_point import (camel_to_snake_case, remove_nones, serialize_as_dict,
                               snake_to_camel_case)
from ocpp.messages import Call, CallResult, validate_payload

from fleetcharge.domain import Charger
from fleetcharge.ops.profiles import (Period, clear_profile_request, composite_request,
                                      composite_to_kw, number_phases_of, rate_unit_from_allowed,
                                      schedule_periods, segment_schedule, session_power,
                                      station_max_profile, tx_default_profile, tx_profile)
from fleetcharge.plan import Plan
from tests.conftest import build_scenario

VERSIONS = ("1.6", "2.0.1", "2.1")
SQRT3 = math.sqrt(3.0)
AC1 = Charger("ac1", max_kw=7.2, min_kw=1.44, phases=1, voltage_v=240.0)  # 30 A, 6 A floor
AC3 = Charger("ac3", max_kw=22.0, min_kw=6 * SQRT3 * 400 / 1000, phases=3, voltage_v=400.0)
AC1_NO_MIN = Charger("ac1-free", max_kw=11.5, min_kw=0.0, phases=1, voltage_v=230.0)
DC = Charger("dc", max_kw=150.0, min_kw=5.0, current_type="DC")
V2G = Charger("v2g", max_kw=11.0, min_kw=6 * SQRT3 * 400 / 1000, phases=3, voltage_v=400.0,
              bidirectional=True, j3072_certified=True)
CHARGERS = (AC1, AC3, AC1_NO_MIN, DC)
START = pd.Timestamp("2025-03-04 02:15", tz="UTC")
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- references


@functools.cache
def bundled_validator(version: str, name: str) -> jsonschema.protocols.Validator:
    folder = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}[version]
    text = resources.files("ocpp").joinpath(folder, "schemas", f"{name}.json").read_text()
    schema = json.loads(text, parse_float=Decimal)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_check(payload: dict, version: str, name: str) -> None:
    """Validate against the schema file bundled with ``ocpp``, parsing floats as Decimal like the
    library does (the 1.6 ``multipleOf: 0.1`` fails on binary floats such as 30.2 / 0.1)."""
    bundled_validator(version, name).validate(json.loads(json.dumps(payload),
                                                         parse_float=Decimal))


def request_schema(version: str, action: str) -> str:
    return action if version == "1.6" else f"{action}Request"


def library_wire(payload: dict, version: str, action: str) -> dict:
    """Send ``payload`` the way the CSMS will: snake_case kwargs into the library's call class,
    then the library's own camelCase conversion, validation and JSON framing."""
    module = {"1.6": ocpp.v16.call, "2.0.1": ocpp.v201.call, "2.1": ocpp.v21.call}[version]
    request = getattr(module, action)(**camel_to_snake_case(payload))
    message = Call(unique_id="42", action=action,
                   payload=remove_nones(snake_to_camel_case(serialize_as_dict(request))))
    asyncio.run(validate_payload(message, version))
    return json.loads(message.to_json())[3]


def rate_kw(rate: float, charger: Charger, unit: str, phases: int | None = None) -> float:
    """Hand formula: W is total power; A per phase is V·I (1 phase) or √3·V_LL·I (3 phases)."""
    if unit == "W":
        return rate / 1000.0
    n = charger.phases if phases is None else phases
    v_phase = charger.voltage_v / SQRT3 if charger.phases == 3 else charger.voltage_v
    return n * v_phase * rate / 1000.0


def min_rate(charger: Charger, unit: str) -> float:
    return charger.min_kw * 1000.0 / (1.0 if unit == "W" else rate_kw(1.0, charger, "A") * 1000)


def per_second(periods: list[Period], total_s: int) -> np.ndarray:
    out = np.zeros(total_s)
    starts = [p.start_s for p in periods] + [total_s]
    for p, a, b in zip(periods, starts, starts[1:]):
        out[a:b] = p.rate
    return out


def pieces_per_second(pieces: list[tuple[int, float]], total_s: int) -> np.ndarray:
    return per_second([Period(int(s), max(v, 0.0), v if v < 0 else None) for s, v in pieces],
                      total_s)


def greedy_sse(values: np.ndarray, durations: np.ndarray, k: int) -> float:
    """Merge the neighbouring pair that adds the least squared error until ≤ k segments."""
    def cost(lo: int, hi: int) -> float:
        w, x = durations[lo:hi], values[lo:hi]
        return float((w * x * x).sum() - (w * x).sum() ** 2 / w.sum())
    segments = [(i, i + 1) for i in range(len(values))]
    while len(segments) > k:
        gains = [cost(a[0], b[1]) - cost(*a) - cost(*b) for a, b in zip(segments, segments[1:])]
        m = int(np.argmin(gains))
        segments[m:m + 2] = [(segments[m][0], segments[m + 1][1])]
    return sum(cost(*s) for s in segments)


def delivered_the_hard_way(start_s: int, duration_s: int, energy: Fraction,
                           minimum: Fraction) -> list[tuple[int, float]]:
    """The documented delivery rule for one segment, restated in exact arithmetic."""
    floor = Fraction(math.ceil(minimum * 10), 10)
    mean = energy / duration_s
    if abs(mean) < Fraction(1, 20) or abs(mean) >= min(minimum, floor - Fraction(1, 20)):
        return [(start_s, float(mean))]
    on = math.floor(abs(energy) / floor)
    return ([(start_s, 0.0)] if on == 0
            else [(start_s, float(energy / on)), (start_s + on, 0.0)])


@st.composite
def charge_plans(draw, sub_minimum: bool = True):
    charger = draw(st.sampled_from(CHARGERS))
    unit = draw(st.sampled_from(["W", "A"] if charger.current_type == "AC" else ["W"]))
    n = draw(st.integers(1, 24))
    step = draw(st.sampled_from([60, 300, 900, 1800]))
    specials = [0.0, charger.max_kw, charger.min_kw]
    low = charger.min_kw if not sub_minimum else 0.0
    level = st.one_of(st.sampled_from(specials + ([charger.min_kw / 3] if sub_minimum else [])),
                      st.floats(low, charger.max_kw, allow_nan=False))
    power = np.array(draw(st.lists(level, min_size=n, max_size=n)))
    return charger, unit, step, power


# ----------------------------------------------------------------------------- hand cases


@pytest.mark.parametrize(("charger", "unit", "plan_kw", "expected"), [
    # 1 phase 240 V: 7.2 kW = 30 A, 3.6 kW = 15 A; W is simply 1000·kW
    (AC1, "A", [7.2, 7.2, 3.6, 0.0], [(0, 30.0), (1800, 15.0), (2700, 0.0)]),
    (AC1, "W", [7.2, 7.2, 3.6, 0.0], [(0, 7200.0), (1800, 3600.0), (2700, 0.0)]),
    # 3 phase 400 V line-to-line: 11 kW / (√3·400 V) = 15.877 A → 15.9; 5 kW → 7.217 → 7.2
    (AC3, "A", [11.0, 11.0, 5.0, 0.0], [(0, 15.9), (1800, 7.2), (2700, 0.0)]),
    # rounding to 0.1: 7.25 kW / 240 V = 30.208 A → 30.2; 7.2549 kW → 7254.9 W
    (AC1, "A", [7.25], [(0, 30.2)]),
    (AC1, "W", [7.2549], [(0, 7254.9)]),
    # below the 6 A floor: 0.72 kW = 3 A for 15 min is 6 A for its first 7.5 min, in each step
    # (front-loaded within the step, so every step's average is the plan's)
    (AC1, "A", [0.72, 0.72], [(0, 6.0), (450, 0.0), (900, 6.0), (1350, 0.0)]),
    (AC1, "W", [0.72, 0.72], [(0, 1440.0), (450, 0.0), (900, 1440.0), (1350, 0.0)]),
    # 3-phase floor 6 A = 4.157 kW; 2 kW for 15 min is 4157 W for 433 s (1.8e6 J / 4157 W),
    # at 1.8e6/433 = 4157.04 → 4157.0 W, in each of the 4 steps
    (AC3, "W", [2.0] * 4, [(t + o, r) for t in (0, 900, 1800, 2700)
                           for o, r in ((0, 1800000 / 433), (433, 0.0))]),
])
def test_hand_computed_periods(charger, unit, plan_kw, expected):
    periods = schedule_periods(plan_kw, 900, charger=charger, rate_unit=unit, max_periods=10)
    assert [p.start_s for p in periods] == [s for s, _ in expected]
    assert [p.limit for p in periods] == pytest.approx([round(v, 1) for _, v in expected])
    assert all(p.setpoint is None for p in periods)


def test_merge_is_least_squares_and_respects_the_minimum():
    # [10, 10, 0, 0, 4, 4] kW in two periods. Without a floor the best cut keeps 10 kW for 30 min
    # and spreads 8 kWh·(4 steps) → 2 kW (error 4·2² = 16 kW²·steps, the next best is 66.7).
    plan = [10, 10, 0, 0, 4, 4]
    free = Charger("free", max_kw=20.0, min_kw=0.0, current_type="DC")
    got = schedule_periods(plan, 900, charger=free, rate_unit="W", max_periods=2)
    assert [(p.start_s, p.limit) for p in got] == [(0, 10000.0), (1800, 2000.0)]
    # With a 3 kW floor, 2 kW cannot be sent: the best deliverable cut is 10 kW for 15 min, then
    # 18 kWh·/5 steps = 3.6 kW (error 6.4² + 2·3.6² + 2·0.4² = 67.2; [5, 4] would be 100).
    floored = Charger("floored", max_kw=20.0, min_kw=3.0, current_type="DC")
    got = schedule_periods(plan, 900, charger=floored, rate_unit="W", max_periods=2)
    assert [(p.start_s, p.limit) for p in got] == [(0, 10000.0), (900, 3600.0)]


def test_discharge_periods_are_setpoints_and_never_merged_with_charging():
    plan = [10.0, -5.0, -5.0, 0.0, 4.5, 4.5]
    got = schedule_periods(plan, 900, charger=V2G, rate_unit="W", max_periods=4,
                           allow_discharge=True)
    assert [(p.start_s, p.limit, p.setpoint) for p in got] == [
        (0, 10000.0, None), (900, 0.0, -5000.0), (2700, 0.0, None), (3600, 4500.0, None)]
    with pytest.raises(ValueError, match="max_periods=2 cannot deliver this plan"):
        schedule_periods([5.0, -5.0, 5.0], 900, charger=V2G, rate_unit="W", max_periods=2,
                         allow_discharge=True)
    with pytest.raises(ValueError, match="allow_discharge=False"):
        schedule_periods(plan, 900, charger=V2G, rate_unit="W", max_periods=4)


def test_one_period_cannot_deliver_a_mean_below_the_floor():
    with pytest.raises(ValueError, match="max_periods=1 cannot deliver"):
        schedule_periods([1.44, 0.0, 0.0, 0.0], 900, charger=AC1, rate_unit="A", max_periods=1)
    # two periods can: 6 A for the energy's duration, then 0
    got = schedule_periods([1.44, 0.0, 1.44, 0.0], 900, charger=AC1, rate_unit="A",
                           max_periods=2)
    assert [(p.start_s, p.limit) for p in got] == [(0, 6.0), (1800, 0.0)]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rate_unit": "A", "charger": DC}, "DC: current"),
    ({"rate_unit": "kW"}, "rate_unit='kW'"),
    ({"step_s": 900.5}, "whole number of seconds"),
    ({"max_periods": 0}, "positive integer"),
    ({"power_kw": []}, "non-empty"),
    ({"power_kw": [1.0, np.nan]}, "finite"),
])
def test_schedule_periods_rejects_bad_input(kwargs, match):
    args = {"power_kw": [1.0, 2.0], "step_s": 900, "charger": AC1, "rate_unit": "W",
            "max_periods": 4} | kwargs
    with pytest.raises(ValueError, match=match):
        schedule_periods(**args)


# ----------------------------------------------------------------------------- properties


@SETTINGS
@given(charge_plans(), st.integers(2, 12))
def test_periods_fit_round_and_keep_energy(case, max_periods):
    charger, unit, step, power = case
    periods = schedule_periods(power, step, charger=charger, rate_unit=unit,
                               max_periods=max_periods)
    starts = [p.start_s for p in periods]
    assert len(periods) <= max_periods
    assert starts[0] == 0 and all(b > a for a, b in zip(starts, starts[1:]))
    assert all(isinstance(s, int) for s in starts)
    limits = np.array([p.limit for p in periods])
    assert (limits >= 0).all() and all(p.setpoint is None for p in periods)
    assert all(Decimal(repr(p.limit)) % Decimal("0.1") == 0 for p in periods)
    floor = min_rate(charger, unit)
    assert (limits[limits > 0] >= floor - 1e-9).all()
    total_s = step * len(power)
    planned_kws = float(power[np.abs(power) >= 1e-6].sum()) * step
    delivered_kws = rate_kw(per_second(periods, total_s).sum(), charger, unit)
    tolerance_kws = rate_kw(0.1 * total_s + (floor + 0.1) * len(power), charger, unit)
    assert delivered_kws == pytest.approx(planned_kws, abs=tolerance_kws + 1e-9)


@SETTINGS
@given(st.data())
def test_v2g_periods_keep_signed_energy_and_validate_on_ocpp21(data):
    unit = data.draw(st.sampled_from(["W", "A"]))
    n = data.draw(st.integers(1, 16))
    level = st.one_of(st.sampled_from([0.0, V2G.min_kw / 3, -V2G.min_kw / 3, -V2G.max_kw]),
                      st.floats(-V2G.max_kw, V2G.max_kw))
    power = np.array(data.draw(st.lists(level, min_size=n, max_size=n)))
    k = data.draw(st.integers(1, 12))
    signs = np.sign(power[np.abs(power) >= 1e-6])
    blocks = int(signs.size > 0) + int((signs[1:] != signs[:-1]).sum()) if signs.size else 0
    try:
        periods = schedule_periods(power, 900, charger=V2G, rate_unit=unit, max_periods=k,
                                   allow_discharge=True)
    except ValueError as err:
        assert "cannot deliver this plan" in str(err)
        assert 2 * blocks > k  # each sign block fits in 2 periods, so this must be feasible
        return
    assert len(periods) <= k
    floor = min_rate(V2G, unit)
    for p in periods:
        assert p.limit >= 0
        assert p.setpoint is None or (p.limit == 0 and p.setpoint <= -floor + 1e-9)
        assert p.limit == 0 or p.limit >= floor - 1e-9
    planned_kws = float(power[np.abs(power) >= 1e-6].sum()) * 900
    delivered_kws = rate_kw(per_second(periods, 900 * n).sum(), V2G, unit)
    tolerance_kws = rate_kw(0.1 * 900 * n + (floor + 0.1) * n, V2G, unit)
    assert delivered_kws == pytest.approx(planned_kws, abs=tolerance_kws + 1e-9)
    payload = tx_profile(periods, version="2.1", evse_id=1, profile_id=1, stack_level=0,
                         transaction_id="t", start=START, duration_s=900 * n, rate_unit=unit,
                         number_phases=3)
    schema_check(payload, "2.1", "SetChargingProfileRequest")


@SETTINGS
@given(charge_plans())
def test_floor_front_loads_never_lags_the_plan_nor_lifts_a_step_above_the_floor(case):
    charger, unit, step, power = case
    periods = schedule_periods(power, step, charger=charger, rate_unit=unit, max_periods=10**4)
    n = len(power)
    rate = per_second(periods, step * n)
    planned = np.where(np.abs(power) < 1e-6, 0.0, power) * 1000 / rate_kw(1000, charger, unit)
    floor = math.ceil(round(min_rate(charger, unit) * 10, 6)) / 10
    # cumulative energy at every step boundary is at least the plan's (rounding and drops aside)
    done = np.concatenate(([0.0], np.cumsum(rate.reshape(n, step).sum(axis=1))))
    due = np.concatenate(([0.0], np.cumsum(planned * step)))
    slack = 0.1 * step * np.arange(n + 1) + (floor + 0.1) * n
    assert (done >= due - slack - 1e-6).all()
    # a step's average rises at most to the floor (whole-second granularity: × (1 + 1/step))
    step_mean = rate.reshape(n, step).mean(axis=1)
    assert (step_mean <= np.maximum(planned, floor * (1 + 1 / step)) + 0.1 + 1e-9).all()
    # steps the plan leaves idle stay idle when nothing has to be merged
    assert (step_mean[planned == 0] == 0).all()
    # and every step delivers its own planned energy (front-loaded within the step): its
    # average is the plan's up to rounding (0.1) and a sub-minimum remainder under one second
    assert (np.abs(step_mean - planned) <= 0.1 + (floor + 0.1) / step + 1e-9).all()


@SETTINGS
@given(st.data())
def test_dp_segmentation_is_never_worse_than_greedy_merging(data):
    n = data.draw(st.integers(1, 14))
    values = np.array(data.draw(st.lists(st.one_of(st.integers(0, 5).map(float),
                                                   st.floats(0, 100)), min_size=n, max_size=n)))
    durations = np.array(data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)))
    k = data.draw(st.integers(1, n))
    pieces = segment_schedule(values, durations, max_periods=k)
    assert len(pieces) <= k
    exact = np.repeat(values, durations)
    got = pieces_per_second(pieces, int(durations.sum()))
    sse = float(((got - exact) ** 2).sum())
    assert sse <= greedy_sse(values, durations, k) + 1e-7 * (1 + (exact ** 2).sum())
    assert got.sum() == pytest.approx(exact.sum(), rel=1e-9, abs=1e-9)


@SETTINGS
@given(st.data())
def test_dp_with_a_floor_matches_brute_force(data):
    n = data.draw(st.integers(1, 6))
    levels = [-4.0, -1.0, -0.3, 0.0, 0.3, 1.0, 2.0, 4.0]
    values = np.array(data.draw(st.lists(st.sampled_from(levels), min_size=n, max_size=n)))
    durations = np.array(data.draw(st.lists(st.integers(1, 30), min_size=n, max_size=n)))
    k = data.draw(st.integers(1, 5))
    minimum = data.draw(st.sampled_from([2.0, 1.97, 2.03]))
    t = np.concatenate(([0], np.cumsum(durations)))
    exact = np.repeat(values, durations)
    best = math.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        edges = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        segs = list(zip(edges, edges[1:]))
        if any((values[a:b] >= 0.05).any() and (values[a:b] <= -0.05).any() for a, b in segs):
            continue
        pieces = [p for a, b in segs for p in delivered_the_hard_way(
            int(t[a]), int(t[b] - t[a]),
            sum(Fraction(str(v)) * int(w) for v, w in zip(values[a:b], durations[a:b])),
            Fraction(str(minimum)))]
        if len(pieces) <= k:
            best = min(best, float(((pieces_per_second(pieces, int(t[-1])) - exact) ** 2).sum()))
    if math.isinf(best):
        with pytest.raises(ValueError, match="cannot deliver this plan"):
            segment_schedule(values, durations, max_periods=k, min_rate=minimum)
        return
    pieces = segment_schedule(values, durations, max_periods=k, min_rate=minimum)
    got = pieces_per_second(pieces, int(t[-1]))
    assert len(pieces) <= k
    assert float(((got - exact) ** 2).sum()) == pytest.approx(best, rel=1e-9, abs=1e-9)
    floor = math.ceil(round(minimum * 10, 6)) / 10
    nonzero = np.abs(got[np.abs(got) >= 0.05])
    assert (nonzero >= min(minimum, floor - 0.05)).all()


# ----------------------------------------------------------------------------- payloads


def periods_for(version: str) -> tuple[list[Period], Charger]:
    if version == "2.1":
        plan = [11.0, 11.0, -6.0, -6.0, 0.0, 5.0]
        return schedule_periods(plan, 900, charger=V2G, rate_unit="A", max_periods=8,
                                allow_discharge=True), V2G
    return schedule_periods([11.0, 11.0, 5.0, 0.0, 4.2, 4.2], 900, charger=AC3, rate_unit="A",
                            max_periods=8), AC3


def tx_payload(version: str) -> dict:
    periods, charger = periods_for(version)
    return tx_profile(periods, version=version, evse_id=2, profile_id=7, stack_level=1,
                      transaction_id=1234 if version == "1.6" else "b7d0-1234",
                      start=pd.Timestamp("2025-03-03 18:07:30.6", tz="America/Los_Angeles"),
                      duration_s=6 * 900, rate_unit="A", number_phases=number_phases_of(charger))


def all_requests(version: str) -> list[tuple[str, dict]]:
    return [
        ("SetChargingProfile", tx_payload(version)),
        ("SetChargingProfile", tx_default_profile(version=version, charger=AC3, rate_unit="A",
                                                  profile_id=1)),
        ("SetChargingProfile", tx_default_profile(version=version, charger=DC, rate_unit="W",
                                                  profile_id=1)),
        ("SetChargingProfile", station_max_profile(50.0, version=version, charger=AC3,
                                                   rate_unit="W", profile_id=2)),
        ("GetCompositeSchedule", composite_request(version=version, evse_id=2, duration_s=3600,
                                                   rate_unit="A")),
        ("ClearChargingProfile", clear_profile_request(version=version, evse_id=2,
                                                       purpose="TxProfile")),
        ("ClearChargingProfile", clear_profile_request(version=version, profile_id=7)),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_payload_validates_against_the_bundled_schema(version):
    for action, payload in all_requests(version):
        schema_check(payload, version, request_schema(version, action))


@pytest.mark.parametrize("version", VERSIONS)
def test_payloads_survive_the_library_round_trip_unchanged(version):
    for action, payload in all_requests(version):
        assert library_wire(payload, version, action) == payload


def test_the_schema_check_is_not_vacuous():
    payload = tx_payload("1.6")
    payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 15.85
    with pytest.raises(jsonschema.ValidationError, match="multiple of"):
        schema_check(payload, "1.6", "SetChargingProfile")
    payload = tx_payload("2.1")
    payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][2][
        "dischargeLimit"] = 10.0
    with pytest.raises(jsonschema.ValidationError, match="greater than the maximum"):
        schema_check(payload, "2.1", "SetChargingProfileRequest")


def test_no_key_falls_into_the_ocpp21_casing_trap():
    # ocpp 2.1.0 turns limit_L2 into limitL2; our payloads must not carry per-phase fields.
    assert snake_to_camel_case(camel_to_snake_case({"limit_L2": 1.0})) != {"limit_L2": 1.0}
    text = json.dumps(tx_payload("2.1"))
    assert not re.search(r'_L[23]"', text)


@pytest.mark.parametrize("version", VERSIONS)
def test_tx_profile_fields_per_version(version):
    payload = tx_payload(version)
    if version == "1.6":
        assert set(payload) == {"connectorId", "csChargingProfiles"}
        profile = payload["csChargingProfiles"]
        schedule = profile["chargingSchedule"]
        assert profile["chargingProfileId"] == 7 and profile["transactionId"] == 1234
    else:
        assert set(payload) == {"evseId", "chargingProfile"}
        profile = payload["chargingProfile"]
        assert profile["id"] == 7 and profile["transactionId"] == "b7d0-1234"
        (schedule,) = profile["chargingSchedule"]
        assert schedule["id"] == 7
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["chargingProfileKind"] == "Absolute"
    assert profile["stackLevel"] == 1
    # 18:07:30.6 PST = 02:07:30 UTC (truncated to whole seconds, Z)
    assert schedule["startSchedule"] == "2025-03-04T02:07:30Z"
    assert schedule["duration"] == 5400 and schedule["chargingRateUnit"] == "A"
    periods = schedule["chargingSchedulePeriod"]
    assert all(p["numberPhases"] == 3 for p in periods)
    if version == "2.1":
        modes = [p["operationMode"] for p in periods]
        assert modes == ["ChargingOnly", "CentralSetpoint", "ChargingOnly", "ChargingOnly"]
        discharge = periods[1]
        # -6 kW / (√3·400 V) = -8.66 A
        assert discharge["setpoint"] == -8.7 and discharge["dischargeLimit"] == -8.7
        assert discharge["limit"] == 0.0
        assert all(p["limit"] >= 0 for p in periods)
    else:
        assert all(set(p) == {"startPeriod", "limit", "numberPhases"} for p in periods)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_discharge_is_refused_before_ocpp21(version):
    periods, _ = periods_for("2.1")
    with pytest.raises(ValueError, match="only OCPP 2.1 has bidirectional control"):
        tx_profile(periods, version=version, evse_id=1, profile_id=1, stack_level=0,
                   transaction_id=1 if version == "1.6" else "t", start=START,
                   duration_s=5400, rate_unit="A", number_phases=3)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"version": "1.6", "transaction_id": "12"}, "OCPP 1.6 transaction ids are integers"),
    ({"version": "2.0.1", "transaction_id": 12}, "are strings of 1–36"),
    ({"version": "2.0.1", "transaction_id": "x" * 37}, "are strings of 1–36"),
    ({"evse_id": 0}, "connector/EVSE > 0"),
    ({"version": "1.5"}, "OCPP version '1.5'"),
    ({"duration_s": 1800}, "must end after the last period start"),
    ({"periods": [Period(900, 10.0)]}, "first must start at 0"),
    ({"periods": [Period(0, 10.0), Period(0, 5.0)]}, "strictly increase"),
    ({"profile_id": 0}, "profile_id=0"),
    ({"stack_level": -1}, "stack_level=-1"),
    ({"start": pd.Timestamp("2025-03-04 02:15")}, "timezone-aware"),
])
def test_tx_profile_rejects_bad_input(kwargs, match):
    args = {"periods": [Period(0, 16.0), Period(1800, 0.0)], "version": "2.0.1", "evse_id": 1,
            "profile_id": 3, "stack_level": 0, "transaction_id": "t-1", "start": START,
            "duration_s": 3600, "rate_unit": "A", "number_phases": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        tx_profile(**args)


@pytest.mark.parametrize("version", VERSIONS)
def test_fail_safe_default_is_full_power_relative_and_timeless(version):
    payload = tx_default_profile(version=version, charger=AC3, rate_unit="A", profile_id=1)
    profile = payload["csChargingProfiles" if version == "1.6" else "chargingProfile"]
    schedule = profile["chargingSchedule"] if version == "1.6" else profile["chargingSchedule"][0]
    assert payload["connectorId" if version == "1.6" else "evseId"] == 0
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
    assert profile["chargingProfileKind"] == "Relative"
    assert "startSchedule" not in schedule and "duration" not in schedule
    # 22 kW / (√3·400 V) = 31.75 A, rounded down
    assert [(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]] == [
        (0, 31.7)]
    watts = tx_default_profile(version=version, charger=AC1, rate_unit="W", profile_id=1)
    assert "7200.0" in json.dumps(watts) and '"numberPhases": 1' in json.dumps(watts)
    dc = tx_default_profile(version=version, charger=DC, rate_unit="W", profile_id=1)
    assert "numberPhases" not in json.dumps(dc) and "150000.0" in json.dumps(dc)


@pytest.mark.parametrize("version", VERSIONS)
def test_station_max_profile(version):
    payload = station_max_profile(50.0, version=version, charger=AC3, rate_unit="A",
                                  profile_id=9, start=pd.Timestamp("2025-03-04", tz="UTC"))
    profile = payload["csChargingProfiles" if version == "1.6" else "chargingProfile"]
    schedule = profile["chargingSchedule"] if version == "1.6" else profile["chargingSchedule"][0]
    assert payload["connectorId" if version == "1.6" else "evseId"] == 0
    assert profile["chargingProfilePurpose"] == (
        "ChargePointMaxProfile" if version == "1.6" else "ChargingStationMaxProfile")
    assert profile["chargingProfileKind"] == "Absolute"
    assert schedule["startSchedule"] == "2025-03-04T00:00:00Z" and "duration" not in schedule
    # 50 kW / (√3·400 V) = 72.17 A, rounded down so the site limit holds
    assert schedule["chargingSchedulePeriod"][0]["limit"] == 72.1
    schema_check(payload, version, request_schema(version, "SetChargingProfile"))
    default_start = station_max_profile(50.0, version=version, charger=AC3, rate_unit="W",
                                        profile_id=9)
    assert "1970-01-01T00:00:00Z" in json.dumps(default_start)
    with pytest.raises(ValueError, match="finite and ≥ 0 kW"):
        station_max_profile(-1.0, version=version, charger=AC3, rate_unit="W", profile_id=9)


def test_clear_and_composite_requests():
    assert clear_profile_request(version="1.6", evse_id=0, purpose="ChargingStationMaxProfile") \
        == {"connectorId": 0, "chargingProfilePurpose": "ChargePointMaxProfile"}
    assert clear_profile_request(version="2.1", evse_id=0, purpose="ChargePointMaxProfile") == {
        "chargingProfileCriteria": {"evseId": 0, "chargingProfilePurpose":
                                    "ChargingStationMaxProfile"}}
    assert clear_profile_request(version="2.0.1", profile_id=5) == {"chargingProfileId": 5}
    with pytest.raises(ValueError, match="may not clear ChargingStationExternalConstraints"):
        clear_profile_request(version="2.0.1", purpose="ChargingStationExternalConstraints")
    assert composite_request(version="1.6", evse_id=1, duration_s=3600) == {
        "connectorId": 1, "duration": 3600}
    assert composite_request(version="2.0.1", evse_id=1, duration_s=3600, rate_unit="W") == {
        "evseId": 1, "duration": 3600, "chargingRateUnit": "W"}


@pytest.mark.parametrize(("allowed", "current_type", "expected"), [
    ("Current,Power", "AC", "A"), ("Power", "AC", "W"), ("Current", "AC", "A"),
    ("A,W", "DC", "W"), ("W", "DC", "W"), (" Power , Current ", "DC", "W"),
])
def test_rate_unit_from_allowed(allowed, current_type, expected):
    assert rate_unit_from_allowed(allowed, current_type=current_type) == expected


def test_rate_unit_from_allowed_rejects():
    with pytest.raises(ValueError, match="need an AC port"):
        rate_unit_from_allowed("Current", current_type="DC")
    with pytest.raises(ValueError, match="expected a comma-separated list"):
        rate_unit_from_allowed("Amps", current_type="AC")


# ----------------------------------------------------------------------------- composite


def charger_answer(payload: dict, version: str, schedule_start: str | None = None) -> dict:
    """The GetCompositeSchedule answer of a charger running only this TxProfile."""
    if version == "1.6":
        schedule = dict(payload["csChargingProfiles"]["chargingSchedule"])
        begin = schedule.pop("startSchedule")
        answer = {"status": "Accepted", "connectorId": payload["connectorId"],
                  "scheduleStart": schedule_start or begin, "chargingSchedule": schedule}
    else:
        (schedule,) = payload["chargingProfile"]["chargingSchedule"]
        periods = schedule["chargingSchedulePeriod"]
        if version == "2.0.1":
            periods = [{k: v for k, v in p.items() if k != "operationMode"} for p in periods]
        answer = {"status": "Accepted", "schedule": {
            "evseId": payload["evseId"], "duration": schedule["duration"],
            "scheduleStart": schedule_start or schedule["startSchedule"],
            "chargingRateUnit": schedule["chargingRateUnit"],
            "chargingSchedulePeriod": periods}}
    schema_check(answer, version, "GetCompositeScheduleResponse")
    return answer


def test_composite_to_kw_hand_case():
    periods = schedule_periods([7.2, 7.2, 3.6, 0.0], 900, charger=AC1, rate_unit="A",
                               max_periods=8)
    payload = tx_profile(periods, version="1.6", evse_id=1, profile_id=1, stack_level=0,
                         transaction_id=1, start=START, duration_s=3600, rate_unit="A",
                         number_phases=1)
    kw = composite_to_kw(charger_answer(payload, "1.6"), version="1.6", charger=AC1,
                         step_s=900, start=START, steps=4)
    assert kw.tolist() == pytest.approx([7.2, 7.2, 3.6, 0.0])
    # a charger reporting from 7.5 min into the first step; the schedule ends after 4 steps
    late = charger_answer(payload, "1.6", schedule_start="2025-03-04T02:22:30Z")
    late["chargingSchedule"]["duration"] = 3600 - 450
    kw = composite_to_kw(late, version="1.6", charger=AC1, step_s=900,
                         start=START - pd.Timedelta(minutes=15), steps=6)
    assert np.isnan(kw[0]) and np.isnan(kw[5])
    assert kw[1:5].tolist() == pytest.approx([7.2, 7.2, (7.2 + 3.6) / 2, (3.6 + 0) / 2])


def test_composite_amps_on_fewer_phases():
    # 16 A on one phase of a 400 V (line-to-line) supply: 16 · 400/√3 = 3695 W
    answer = {"status": "Accepted", "schedule": {
        "evseId": 1, "duration": 900, "scheduleStart": "2025-03-04T02:15:00Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 1}]}}
    kw = composite_to_kw(answer, version="2.0.1", charger=AC3, step_s=900, start=START, steps=1)
    assert kw[0] == pytest.approx(16 * 400 / SQRT3 / 1000)
    del answer["schedule"]["chargingSchedulePeriod"][0]["numberPhases"]
    kw = composite_to_kw(answer, version="2.0.1", charger=AC3, step_s=900, start=START, steps=1)
    assert kw[0] == pytest.approx(16 * SQRT3 * 400 / 1000)


@SETTINGS
@given(charge_plans(sub_minimum=False), st.sampled_from(VERSIONS))
def test_composite_to_kw_inverts_tx_profile(case, version):
    charger, unit, step, power = case
    periods = schedule_periods(power, step, charger=charger, rate_unit=unit, max_periods=1024)
    payload = tx_profile(periods, version=version, evse_id=1, profile_id=1, stack_level=0,
                         transaction_id=5 if version == "1.6" else "5", start=START,
                         duration_s=step * len(power), rate_unit=unit,
                         number_phases=number_phases_of(charger))
    kw = composite_to_kw(charger_answer(payload, version), version=version, charger=charger,
                         step_s=step, start=START, steps=len(power))
    assert np.abs(kw - power).max() <= rate_kw(0.1, charger, unit) + 1e-9


@pytest.mark.parametrize("version", VERSIONS)
def test_composite_through_the_library(version):
    periods, charger = periods_for(version)
    payload = tx_profile(periods, version=version, evse_id=1, profile_id=1, stack_level=0,
                         transaction_id=1 if version == "1.6" else "t", start=START,
                         duration_s=5400, rate_unit="A", number_phases=3)
    answer = charger_answer(payload, version)
    # as the CSMS gets it: validated CALLRESULT → snake_case call_result object → wire again
    message = CallResult(unique_id="1", payload=answer, action="GetCompositeSchedule")
    asyncio.run(validate_payload(message, version))
    module = {"1.6": ocpp.v16.call_result, "2.0.1": ocpp.v201.call_result,
              "2.1": ocpp.v21.call_result}[version]
    result = module.GetCompositeSchedule(**camel_to_snake_case(message.payload))
    wire = remove_nones(snake_to_camel_case(serialize_as_dict(result)))
    kw = composite_to_kw(wire, version=version, charger=charger, step_s=900, start=START,
                         steps=6)
    # at √3·400 V: 11 kW → 15.9 A, 5 kW → 7.2 A, 4.2 kW → 6.1 A; V2G -6 kW → -8.7 A
    amps = ([15.9, 15.9, -8.7, -8.7, 0.0, 7.2] if version == "2.1"
            else [15.9, 15.9, 7.2, 0.0, 6.1, 6.1])
    assert kw == pytest.approx(np.array(amps) * SQRT3 * 400 / 1000)


def test_composite_to_kw_refuses_a_rejection():
    with pytest.raises(ValueError, match="answered 'Rejected'"):
        composite_to_kw({"status": "Rejected"}, version="2.0.1", charger=AC1, step_s=900,
                        start=START, steps=4)


# ----------------------------------------------------------------------------- plan → session


def plan_for_test(discharge: bool = False) -> Plan:
    # one session 18:10–19:40 local on 15-min steps: 1/3 of the 18:00 step, 2/3 of 19:30
    scenario = build_scenario([("2025-03-03 18:10", "2025-03-03 19:40", 6.0, 10.0)],
                              charger_kw=10.0)
    availability = scenario.session_arrays().availability(scenario.horizon.n_steps)
    power_while_plugged = np.array([6.0, 6.0, 8.0, 8.0, 4.0, 4.0, 10.0])
    charge = sp.csr_array((availability.data * power_while_plugged, availability.indices,
                           availability.indptr), shape=availability.shape)
    if not discharge:
        return Plan("test", scenario, charge)
    out = sp.csr_array((availability.data * 3.0, availability.indices, availability.indptr),
                       shape=availability.shape)
    return Plan("test", scenario, charge, discharge_kw=out)


def test_session_power_is_power_while_plugged_in():
    plan = plan_for_test()
    got = session_power(plan, 0, since=pd.Timestamp("2025-03-03 18:05", tz="America/Los_Angeles"))
    assert got.start == pd.Timestamp("2025-03-04 02:00", tz="UTC")  # 18:00 PST
    assert got.step_s == 900
    assert got.power_kw.tolist() == pytest.approx([6.0, 6.0, 8.0, 8.0, 4.0, 4.0, 10.0])
    # followed while plugged in, it delivers the plan's energy: fractions 1/3 and 2/3
    fractions = np.array([1 / 3, 1, 1, 1, 1, 1, 2 / 3])
    assert (got.power_kw * fractions).sum() / 4 == pytest.approx(plan.delivered_kwh()[0])
    later = session_power(plan, 0, since=pd.Timestamp("2025-03-04 03:01", tz="UTC"))
    assert later.start == pd.Timestamp("2025-03-04 03:00", tz="UTC")
    assert later.power_kw.tolist() == pytest.approx([4.0, 4.0, 10.0])
    net = session_power(plan_for_test(discharge=True), 0,
                        since=pd.Timestamp("2025-03-04 03:01", tz="UTC"))
    assert net.power_kw.tolist() == pytest.approx([1.0, 1.0, 7.0])


def test_session_power_rejects():
    plan = plan_for_test()
    with pytest.raises(ValueError, match="not plugged in at or after"):
        session_power(plan, 0, since=pd.Timestamp("2025-03-03 19:45", tz="America/Los_Angeles"))
    with pytest.raises(ValueError, match="must be timezone-aware"):
        session_power(plan, 0, since=pd.Timestamp("2025-03-03 18:00"))


def test_plan_to_wire_end_to_end():
    plan = plan_for_test()
    got = session_power(plan, 0, since=pd.Timestamp("2025-03-04 02:20", tz="UTC"))
    periods = schedule_periods(got.power_kw, got.step_s, charger=AC1_NO_MIN, rate_unit="A",
                               max_periods=3)
    payload = tx_profile(periods, version="1.6", evse_id=1, profile_id=1, stack_level=0,
                         transaction_id=77, start=got.start,
                         duration_s=got.step_s * len(got.power_kw), rate_unit="A",
                         number_phases=1)
    assert library_wire(payload, "1.6", "SetChargingProfile") == payload
    kw = composite_to_kw(charger_answer(payload, "1.6"), version="1.6", charger=AC1_NO_MIN,
                         step_s=900, start=got.start, steps=len(got.power_kw))
    # [6, 8, 8, 4, 4, 10] kW in 3 periods: the best cut is [6, 8, 8] | [4, 4] | [10] (error
    # (4/3)² + 2·(2/3)² = 2.67 kW²·steps; [8, 8, 4, 4] would cost 16, [4, 4, 10] 24); at 230 V
    # 22/3 kW = 31.88 A, 4 kW = 17.39 A, 10 kW = 43.48 A
    assert [(p.start_s, p.limit) for p in periods] == [(0, 31.9), (2700, 17.4), (4500, 43.5)]
    assert (kw * 0.25).sum() == pytest.approx((got.power_kw * 0.25).sum(), abs=6 * 0.1 * 0.23)


def test_a_live_first_step_schedules_nothing_in_its_past():
    """A re-plan's profile arrives 300 s into its first step: 0.72 kW planned (below the
    1.44 kW floor) is delivered as 1440 W from 300 s on for the energy of the 600 s left
    (720 W × 600 s), not as a burst at the step's start, which would already be past."""
    port = Charger("P", max_kw=7.2, min_kw=1.44, voltage_v=240.0)
    periods = schedule_periods([0.72, 0.0, 0.0], 900, charger=port, rate_unit="W",
                               max_periods=24, elapsed_s=300)
    assert [(p.start_s, p.limit) for p in periods] == [(0, 0.0), (300, 1440.0), (600, 0.0)]
    # at or above the floor the rate simply holds from then on
    periods = schedule_periods([3.0, 0.0], 900, charger=port, rate_unit="W", max_periods=24,
                               elapsed_s=300)
    assert [(p.start_s, p.limit) for p in periods] == [(0, 0.0), (300, 3000.0), (900, 0.0)]
    with pytest.raises(ValueError, match="elapsed_s=900 must be in"):
        schedule_periods([3.0], 900, charger=port, rate_unit="W", max_periods=24,
                         elapsed_s=900)
