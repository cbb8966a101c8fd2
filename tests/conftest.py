"""Shared test helpers: small hand-made scenarios built straight from domain objects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from fleetcharge.domain import Charger, Scenario, Session, Site, Vehicle, VehicleType
from fleetcharge.timegrid import Horizon


def build_scenario(
    sessions: Sequence[tuple[str, str, float, float]],
    *,
    start: str = "2025-03-03 12:00",
    end: str = "2025-03-04 12:00",
    timezone: str = "America/Los_Angeles",
    resolution_min: int = 15,
    charger_kw: float | Sequence[float] = 10.0,
    min_kw: float = 0.0,
    service_limit_kw: float = 1e9,
    building_kw: float | np.ndarray = 0.0,
    usable_kwh: float = 60.0,
    efficiency: float = 0.9,
    tariff=None,
) -> Scenario:
    """A scenario with one vehicle and one charger per session tuple.

    Each tuple is ``(arrival, departure, energy_kwh, max_kw)`` with naive local timestamps.
    """
    tz = timezone
    horizon = Horizon(pd.Timestamp(start, tz=tz), pd.Timestamp(end, tz=tz), resolution_min, tz)
    kws = [charger_kw] * len(sessions) if np.isscalar(charger_kw) else list(charger_kw)
    vtype = VehicleType("van", usable_kwh, max_ac_kw=1e3, max_dc_kw=1e3,
                        charge_efficiency=efficiency)
    chargers, vehicles, out = [], [], []
    for i, (arr, dep, energy, cap) in enumerate(sessions):
        chargers.append(Charger(f"C{i}", max_kw=kws[i], min_kw=min_kw))
        vehicles.append(Vehicle(f"V{i}", vtype, home_charger_id=f"C{i}"))
        target = 0.9
        out.append(Session(
            id=f"S{i}", vehicle_id=f"V{i}", charger_id=f"C{i}",
            arrival=pd.Timestamp(arr, tz=tz), departure=pd.Timestamp(dep, tz=tz),
            energy_kwh=energy, arrival_soc=target - efficiency * energy / usable_kwh,
            target_soc=target, max_kw=min(cap, kws[i]),
        ))
    building = None
    if np.ndim(building_kw) or building_kw:
        building = pd.Series(np.broadcast_to(np.asarray(building_kw, float), horizon.n_steps),
                             index=horizon.index)
    return Scenario(
        name="test", site=Site(tz, service_limit_kw, building), chargers=tuple(chargers),
        vehicle_types=(vtype,), vehicles=tuple(vehicles), sessions=tuple(out), tariff=tariff,
        horizon=horizon,
    )


@pytest.fixture
def scenario_builder():
    return build_scenario


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` until true, or fail after ``timeout_s`` wall seconds (async tests of
    servers and clients on loopback)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
