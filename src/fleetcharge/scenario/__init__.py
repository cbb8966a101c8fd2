"""The scenario input edge: YAML + CSV files in, validated, frozen :class:`~fleetcharge.domain.Scenario` out.

- :func:`load_scenario` reads a scenario YAML (fleet, chargers, site, tariff, billing period) and
  the sessions *or* trips CSV it names.
- :func:`scenario_from_sessions` is the quick path without YAML: a sessions CSV plus a tariff,
  a site limit and a period; the fleet is inferred.

Everything is checked here, once; errors name the file, the row (header = row 1) or YAML field
path (``chargers[1].max_kw``) and say how to fix it. Modules: ``schema`` (the YAML models),
``tables`` (CSV parsing, building load), ``sessions`` (SOC/energy, chargers, overlaps,
clipping), ``loader`` (putting it together).
"""

from fleetcharge.scenario.loader import load_scenario, scenario_from_sessions
from fleetcharge.scenario.schema import ScenarioModel

__all__ = ["ScenarioModel", "load_scenario", "scenario_from_sessions"]
