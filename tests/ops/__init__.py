"""Tests of the operations layer (OCPP central system, persistence, simulator)."""
