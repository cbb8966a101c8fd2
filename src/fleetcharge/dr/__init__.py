"""Demand response: programs, events, event-aware planning, settlement and the ``dr`` report.

- :mod:`~fleetcharge.dr.events` — :class:`DREvent`, the event type shared with the OpenADR VEN,
  and the events CSV reader;
- :mod:`~fleetcharge.dr.programs` — :class:`DRProgram` (season, window, payments, penalty,
  baseline, notice, caps, opt-out rule) and the presets;
- :mod:`~fleetcharge.dr.baseline` — the 10-of-10 baseline with a day-of adjustment, and the
  plan-without-the-event counterfactual;
- :mod:`~fleetcharge.dr.planning` — events as LP inputs, the opt-in decision (readiness first,
  then money), studies (:func:`run_dr_study`) and the live entry points
  (:func:`decide_live`, :func:`plan_with_events` behind ``rolling.replan``);
- :mod:`~fleetcharge.dr.settlement` — per event and per season;
- :mod:`~fleetcharge.dr.ven` — the OpenADR 2.0b client (VEN) that receives events live;
- :mod:`~fleetcharge.dr.report`, :mod:`~fleetcharge.dr.cli` — tables, files and ``fleetcharge dr``.
"""
