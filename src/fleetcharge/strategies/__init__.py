"""Charging strategies. Each takes a Scenario and returns a :class:`fleetcharge.plan.Plan`."""

from __future__ import annotations

from collections.abc import Callable

from fleetcharge.domain import Scenario
from fleetcharge.errors import InputError
from fleetcharge.plan import Plan
from fleetcharge.strategies.baseline import balanced, unmanaged
from fleetcharge.strategies.optimal import optimal
from fleetcharge.strategies.v2g import optimal_v2g

STRATEGIES: dict[str, Callable[[Scenario], Plan]] = {
    "unmanaged": unmanaged,
    "balanced": balanced,
    "optimal": optimal,
    "v2g": optimal_v2g,
}

#: What ``fleetcharge plan`` compares when no strategy is named (V1G: every fleet can do it).
DEFAULT_STRATEGIES: tuple[str, ...] = ("unmanaged", "balanced", "optimal")


def run_strategy(scenario: Scenario, name: str) -> Plan:
    """Plan ``scenario`` with the strategy called ``name`` (case-insensitive)."""
    key = name.strip().lower()
    if key not in STRATEGIES:
        raise InputError(
            f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}",
            location="--strategy",
        )
    return STRATEGIES[key](scenario)
