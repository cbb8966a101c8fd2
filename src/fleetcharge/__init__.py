"""fleetcharge: plan and control depot charging of commercial EV fleets."""

__version__ = "0.1.0"
