"""``fleetcharge serve`` with demand response: a real openleadr VTN sends an event, the depot's
VEN accepts it (the planner's decision on the live state), and the next re-plan — whose
TxProfiles the stations get — keeps the site under the event's limit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from fleetcharge.ops.clock import Clock
from fleetcharge.ops.serve import DepotServer, VENSettings
from fleetcharge.ops.store import Store
from fleetcharge.tariff import (
    DemandPeriod,
    DemandTier,
    EnergyCharge,
    EnergyPeriod,
    EnergyTier,
    FlatDemandCharge,
    Tariff,
)
from tests.conftest import build_scenario, until
from tests.test_dr_ven import kw, loopback_vtn


def evening_depot(now: pd.Timestamp):
    """Six vans on 10 kW ports arriving now (about 22:00 in a fixed-offset zone, so OpenADR's
    wall-clock event times fall in the night) and leaving in nine hours with 48 kWh to take."""
    offset_h = round((pd.Timedelta(hours=22) - (now - now.normalize())) / pd.Timedelta(hours=1))
    offset_h = (offset_h + 12) % 24 - 12
    tz = "Etc/GMT" if offset_h == 0 else f"Etc/GMT{'-' if offset_h > 0 else '+'}{abs(offset_h)}"
    step = now.tz_convert(tz).floor("15min")

    def local(t: pd.Timestamp) -> str:
        return t.tz_localize(None).isoformat()

    return build_scenario([(local(step), local(step + pd.Timedelta(hours=9)), 48.0, 10.0)] * 6,
                          start=local(step.floor("D")),
                          end=local(step.floor("D") + pd.Timedelta(days=2)), timezone=tz,
                          tariff=flat_tariff())


def flat_tariff() -> Tariff:
    """$0.15/kWh and $0.50/kW of monthly peak (as in tests/test_dr_ven.py's night depot)."""
    months = tuple((0,) * 24 for _ in range(12))
    return Tariff(name="flat", energy=EnergyCharge(
        (EnergyPeriod((EnergyTier(0.15),), "flat"),), months, months),
        flat_demand=FlatDemandCharge((DemandPeriod((DemandTier(0.5),)),), (0,) * 12))


def test_vtn_event_reaches_the_depot_plan(tmp_path: Path) -> None:
    clock = Clock()
    scenario = evening_depot(clock.now())
    store = Store.open(f"sqlite:///{tmp_path / 'depot.db'}")

    async def run() -> None:
        async with loopback_vtn() as vtn:
            settings = VENSettings(vtn.url, "depot-1", "capacity-with-penalty")
            async with DepotServer(scenario, store, clock, ocpp_host="127.0.0.1", ocpp_port=0,
                                   http_host="127.0.0.1", http_port=0, debounce_s=0.05,
                                   ven=settings) as server:
                await until(lambda: server.depot.last is not None, "the first plan")
                free = server.depot.last.plan.site_load_kw()
                t0 = datetime.now(timezone.utc) + timedelta(minutes=10)
                event_id = vtn.add(server.ven.ven_id, "LOAD_DISPATCH", "setpoint",
                                   [(t0, timedelta(hours=1), 20.0)], measurement=kw("k"))
                await until(lambda: bool(server.depot.dr_events) and vtn.opts, "opt-in",
                            timeout_s=30.0)
                assert vtn.opts == [(event_id, "optIn")]
                replans = server.depot.replans
                await until(lambda: server.depot.replans > replans, "the re-plan")
                (event,) = server.depot.dr_events
                plan = server.depot.last.plan
                window = event.mask(plan.scenario.horizon.index)
                assert plan.site_load_kw()[window].max() <= 20.0 + 1e-6
                assert free.max() > 25.0  # without the event the vans would draw more

    try:
        asyncio.run(run())
    finally:
        store.close()
