"""The V2G stack check: can this vehicle on this charger discharge, and may the site export?

Every link of the chain must hold for a vehicle × charger pair to send energy back (DESIGN.md §6):

1. **vehicle** — the vehicle can discharge on this kind of port (AC through its on-board
   inverter, DC through the charger);
2. **charger** — the charger is bidirectional;
3. **J3072** — AC discharge needs an on-board inverter certified to SAE J3072 and a charger
   that supports it (the EVSE–vehicle interlock for parallel operation); DC needs neither, the
   charger is the UL 1741 inverter;
4. **interconnection** — an approved agreement with a non-zero export limit. Without it the pair
   can still discharge *behind the meter* (lower the site's own import, never export);
5. **value stream** — something pays: an export credit, a program, or behind-the-meter peak or
   TOU savings (which need no agreement).

A missing link among 1–3 (or 5) means no discharge at all from that pair; a missing link 4 means
behind-the-meter only. The report says which link is missing, pair by pair and in fleet totals.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleetcharge.domain import Charger, Scenario, Vehicle

LINKS = ("vehicle", "charger", "j3072", "interconnection", "value_stream")


@dataclass(frozen=True)
class PairCheck:
    """The stack check of one vehicle × charger pair."""

    vehicle_id: str
    charger_id: str
    current_type: str
    missing: tuple[str, ...]  # links from LINKS that fail
    discharge_kw: float  # discharge limit if it may discharge at all [kW]

    @property
    def can_discharge(self) -> bool:
        """Discharge behind the meter is possible (links 1–3 and 5 hold)."""
        return not (set(self.missing) - {"interconnection"})

    @property
    def can_export(self) -> bool:
        """Export to the grid is possible (every link holds)."""
        return not self.missing


def value_streams(scenario: Scenario, has_program: bool = False,
                  has_export_price: bool = False) -> list[str]:
    """What could pay for discharge at this site: export credit, program, behind-the-meter."""
    tariff = scenario.tariff
    streams = []
    if scenario.site.interconnection.export_allowed_kw > 0 and (
            has_export_price or tariff.has_export_rate):
        streams.append("export credit")
    if has_program:
        streams.append("program payments")
    prices = np.asarray(tariff.energy_rate_per_kwh(scenario.horizon))
    demand = (tariff.flat_demand is not None or tariff.tou_demand is not None
              or tariff.coincident is not None or tariff.subscription is not None)
    if demand or (prices.size and prices.max() - prices.min() > 1e-9):
        streams.append("behind-the-meter peak/TOU savings")
    return streams


def check_pair(vehicle: Vehicle, charger: Charger, export_allowed_kw: float,
               has_value_stream: bool) -> PairCheck:
    """Which links of the V2G stack hold for ``vehicle`` on ``charger`` (module docstring)."""
    vt = vehicle.type
    missing = []
    if not (vt.bidirectional and charger.current_type in vt.bidirectional_modes):
        missing.append("vehicle")
    if not charger.bidirectional:
        missing.append("charger")
    if charger.current_type == "AC" and not (vt.j3072_certified and charger.j3072_certified):
        missing.append("j3072")
    if export_allowed_kw <= 0:
        missing.append("interconnection")
    if not has_value_stream:
        missing.append("value_stream")
    discharge_kw = vt.max_discharge_kw_on(charger) if not (
        set(missing) & {"vehicle", "charger", "j3072", "value_stream"}) else 0.0
    return PairCheck(vehicle.id, charger.id, charger.current_type, tuple(missing), discharge_kw)


def check_stack(scenario: Scenario, has_program: bool = False,
                has_export_price: bool = False) -> list[PairCheck]:
    """Stack check of every vehicle × charger pair that occurs in the scenario's sessions
    (and each vehicle's home charger)."""
    pairs = {(s.vehicle_id, s.charger_id) for s in scenario.sessions}
    pairs |= {(v.id, v.home_charger_id) for v in scenario.vehicles if v.home_charger_id}
    streams = value_streams(scenario, has_program, has_export_price)
    export_kw = scenario.site.interconnection.export_allowed_kw
    return [check_pair(scenario.vehicle(v), scenario.charger(c), export_kw, bool(streams))
            for v, c in sorted(pairs)]


def stack_table(checks: list[PairCheck]) -> pd.DataFrame:
    """One row per pair: each link ok or missing, and what the pair can do."""
    rows = []
    for p in checks:
        row = {"vehicle_id": p.vehicle_id, "charger_id": p.charger_id, "port": p.current_type}
        row.update({link: link not in p.missing for link in LINKS})
        row["can"] = "export" if p.can_export else (
            "behind the meter" if p.can_discharge else "nothing")
        row["discharge_kw"] = p.discharge_kw
        rows.append(row)
    return pd.DataFrame(rows)


def fleet_summary(checks: list[PairCheck]) -> dict:
    """Totals: pairs, how many can export / discharge, and missing links by count."""
    missing = Counter(link for p in checks for link in p.missing)
    n = len(checks)
    export = sum(p.can_export for p in checks)
    discharge = sum(p.can_discharge for p in checks)
    parts = [f"{export} of {n} pairs can export", f"{discharge} can discharge behind the meter"]
    for link in LINKS:
        if missing[link]:
            parts.append(f"{missing[link]} miss {_LINK_WORDS[link]}")
    return {
        "pairs": n,
        "eligible_pairs": discharge,
        "export_pairs": export,
        "missing_links": {link: int(missing[link]) for link in LINKS if missing[link]},
        "sentence": "; ".join(parts) + ".",
    }


_LINK_WORDS = {
    "vehicle": "a bidirectional vehicle for that port",
    "charger": "a bidirectional charger",
    "j3072": "SAE J3072 certification for AC discharge",
    "interconnection": "an approved interconnection agreement with an export limit",
    "value_stream": "a value stream that pays",
}
