"""OpenADR 2.0b VEN of the depot: a utility's events become :class:`DREvent` s the planner honours.

:class:`FleetVEN` wraps ``openleadr.OpenADRClient`` (OpenADR 2.0b, HTTP pull). It registers with
the utility's VTN, polls at the frequency the VTN asks for, converts each event it receives with
:func:`dr_events`, asks a decision callback ``decide(event) -> (opt_in, reason)`` (in production
the planner's :mod:`fleetcharge.dr.planning` decision), answers the VTN ``optIn``/``optOut``
(``oadrCreatedEvent``), keeps the set of accepted events up to date through modifications and
cancellations and calls ``on_events_changed(active_events)`` whenever that set changes, so the
central system re-plans (``DepotController.request_replan`` when ``fleetcharge serve`` runs). It
knows nothing of OCPP: everything goes through the two callbacks. If the VTN asks for telemetry
(report registration) it reports the site's import from a ``site_kw()`` callable.

Signal mapping (OpenADR 2.0b Profile Specification, EiEvent service; signal names, types and the
quoted definitions from the schema ``oadr_ei_20b.xsd``, ``SignalNameEnumeratedType`` and
``SignalTypeEnumeratedType``):

- ``SIMPLE`` (or ``simple``) / ``level``: levels 1, 2, 3 → ``curtail`` to ``simple_level_kw[level]``
  kW, the program's contracted site limit per level; level 0 ("normal operation") asks nothing.
- ``LOAD_DISPATCH`` / ``setpoint`` ("a target amount of units") → ``curtail``: site import ≤ the
  payload [kW].
- ``LOAD_DISPATCH`` / ``delta`` ("the amount to change from what one would have used without the
  signal") → payload < 0: ``reduce`` by −payload kW below the baseline; 0 asks nothing; > 0 (load
  up) is not modelled → opt out.
- ``ELECTRICITY_PRICE`` / ``price`` or ``priceRelative`` → ``price``: each kWh reduced below the
  baseline is worth the payload [currency/kWh], the event's incentive (the tariff's own energy
  price still applies in the bill); 0 asks nothing, < 0 (pay to consume) → opt out.

Units come from the signal's ``itemBase``: LOAD_DISPATCH must be ``powerReal`` in W with an SI
scale (``k`` → kW; no scale → W), ELECTRICITY_PRICE ``currencyPerKWh`` in ``currency`` (scale
applied). A signal without an ``itemBase`` is read in kW / currency per kWh. Each interval of a
signal is one window; consecutive intervals with the same value are merged, so an event becomes
one :class:`DREvent` per window (``event_id`` for a single window, ``event_id/0``,
``event_id/1`` … otherwise). Anything else (other signal names or types, open-ended intervals of
duration 0, another currency) is answered ``optOut`` with the reason
in :attr:`FleetVEN.decisions`; an event with several parts is opted in only if every part is.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from openleadr import OpenADRClient, enums, objects

from fleetcharge.dr.events import DREvent, EventKind
from fleetcharge.ops.clock import Clock

LOG = logging.getLogger(__name__)

Decision = tuple[bool, str]
"""``(opt_in, reason)``: the answer of a decision callback."""
DecideFn = Callable[[DREvent], Decision | Awaitable[Decision]]
EventsChangedFn = Callable[[tuple[DREvent, ...]], None | Awaitable[None]]
SiteKwFn = Callable[[], float | Awaitable[float]]
Opt = Literal["optIn", "optOut"]

SI_SCALE = {"p": 1e-12, "n": 1e-9, "micro": 1e-6, "m": 1e-3, "c": 1e-2, "d": 1e-1, "none": 1.0,
            "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
"""Multipliers of the OpenADR SI scale codes (schema ``oadr_siscale_20b.xsd``)."""
SIMPLE_LEVELS = (1, 2, 3)
"""SIMPLE signal levels that ask for a load reduction (0 is normal operation; OpenADR 2.0a/b
"Simple levels" 0–3, 3 the most severe)."""
TELEMETRY_MIN_PERIOD = timedelta(seconds=1)
TELEMETRY_MAX_PERIOD = timedelta(hours=1)
"""Sampling periods offered for the site-kW telemetry report; the VTN picks one in between."""
TELEMETRY_BUFFER = timedelta(hours=1)
"""``report_duration`` announced for the telemetry report: how much data can be buffered."""
STOP_GRACE_S = 15.0
"""Longest wait in :meth:`FleetVEN.stop` for a poll in flight (its decision and its answer to
the VTN) to finish [s]: openleadr's HTTP read timeout (10 s) plus a re-plan."""


class UnsupportedEvent(ValueError):
    """An OpenADR event fleetcharge cannot act on; the message is the opt-out reason."""


def _scale(measurement: Mapping[str, Any]) -> float:
    code = measurement.get("scale") or "none"
    if code not in SI_SCALE:
        raise UnsupportedEvent(f"unknown SI scale {code!r}")
    return SI_SCALE[code]


def _kw_per_unit(measurement: Mapping[str, Any] | None) -> float:
    """kW per unit of a LOAD_DISPATCH payload, from the signal's itemBase."""
    if not measurement:
        return 1.0
    if measurement.get("name") != "powerReal" or measurement.get("unit") != "W":
        raise UnsupportedEvent(
            f"LOAD_DISPATCH in {measurement.get('name')} [{measurement.get('unit')}] is not real "
            "power; the depot can only follow a powerReal (W) dispatch")
    return _scale(measurement) / 1e3


def _price_per_unit(measurement: Mapping[str, Any] | None, currency: str) -> float:
    """Currency per kWh per unit of an ELECTRICITY_PRICE payload, from the signal's itemBase."""
    if not measurement:
        return 1.0
    if measurement.get("name") != "currencyPerKWh":
        raise UnsupportedEvent(f"ELECTRICITY_PRICE in {measurement.get('name')} is not an energy "
                               "price; only currencyPerKWh is understood")
    if measurement.get("unit") != currency:
        raise UnsupportedEvent(f"price in {measurement.get('unit')}, but the tariff is in "
                               f"{currency}")
    return _scale(measurement)


def _window_value(signal: Mapping[str, Any], payload: float, simple_level_kw: Mapping[int, float],
                  currency: str) -> tuple[EventKind, float] | None:
    """What one interval of one signal asks for, ``None`` when it asks for nothing."""
    name, kind = signal["signal_name"], signal["signal_type"]
    measurement = signal.get("measurement")
    if name.upper() == "SIMPLE" and kind == "level":
        level = int(round(payload))
        if level == 0:
            return None
        if level not in simple_level_kw:
            raise UnsupportedEvent(f"no site kW configured for SIMPLE level {level}")
        return "curtail", simple_level_kw[level]
    if name == "LOAD_DISPATCH" and kind == "setpoint":
        kw = payload * _kw_per_unit(measurement)
        if kw < 0:
            raise UnsupportedEvent(f"LOAD_DISPATCH setpoint {kw:g} kW asks for export")
        return "curtail", kw
    if name == "LOAD_DISPATCH" and kind == "delta":
        kw = payload * _kw_per_unit(measurement)
        if kw > 0:
            raise UnsupportedEvent(f"LOAD_DISPATCH delta +{kw:g} kW asks for more load (load "
                                   "up), which is not modelled")
        return ("reduce", -kw) if kw < 0 else None
    if name == "ELECTRICITY_PRICE" and kind in ("price", "priceRelative"):
        price = payload * _price_per_unit(measurement, currency)
        if price < 0:
            raise UnsupportedEvent(f"negative price {price:g} {currency}/kWh (an incentive to "
                                   "consume) is not modelled")
        return ("price", price) if price > 0 else None
    raise UnsupportedEvent(f"signal {name}/{kind} is not supported (SIMPLE/level, "
                           "LOAD_DISPATCH/setpoint|delta, ELECTRICITY_PRICE/price|priceRelative)")


def dr_events(event: Mapping[str, Any], program: str, *, simple_level_kw: Mapping[int, float],
              currency: str = "USD", received_at: pd.Timestamp | None = None
              ) -> tuple[DREvent, ...]:
    """The :class:`DREvent` s an OpenADR 2.0b event asks for (mapping in the module docstring).

    Parameters
    ----------
    event : Mapping
        An event as ``openleadr`` parses it (``event_descriptor``, ``event_signals`` with
        ``intervals`` of ``dtstart``/``duration``/``signal_payload`` and an optional
        ``measurement``).
    program : str
        Program the event belongs to (see :class:`FleetVEN` ``market_programs``).
    simple_level_kw : Mapping[int, float]
        Site import limit for each SIMPLE level 1–3 [kW].
    currency : str
        ISO 4217 code prices must be in (the tariff's currency).
    received_at : pandas.Timestamp, optional
        When the event was notified (tz-aware).

    Returns
    -------
    tuple of DREvent
        One per window (consecutive intervals of equal value merged), sorted by start; empty
        when the event asks for nothing (SIMPLE level 0, zero delta or price).

    Raises
    ------
    UnsupportedEvent
        A signal, unit, currency or interval the depot cannot act on; the message says which.
    """
    event_id = event["event_descriptor"]["event_id"]
    windows: list[tuple[pd.Timestamp, pd.Timestamp, EventKind, float]] = []
    for signal in event["event_signals"]:
        merged: list[tuple[pd.Timestamp, pd.Timestamp, EventKind, float]] = []
        for interval in signal["intervals"]:
            duration = pd.Timedelta(interval["duration"])
            if duration <= pd.Timedelta(0):
                raise UnsupportedEvent("an open-ended interval (duration 0, until cancelled) "
                                       "cannot be planned; fleetcharge needs an end time")
            start = pd.Timestamp(interval["dtstart"]).tz_convert("UTC")
            payload = float(interval["signal_payload"])
            if not np.isfinite(payload):
                raise UnsupportedEvent(f"signal payload {payload!r} is not a number")
            asked = _window_value(signal, payload, simple_level_kw, currency)
            if asked is None:
                continue
            if merged and merged[-1][1] == start and merged[-1][2:] == asked:
                merged[-1] = (merged[-1][0], start + duration, *asked)
            else:
                merged.append((start, start + duration, *asked))
        windows.extend(merged)
    windows.sort(key=lambda w: (w[0], w[2]))
    return tuple(
        DREvent(event_id if len(windows) == 1 else f"{event_id}/{i}", program, start, end, kind,
                value, received_at=received_at)
        for i, (start, end, kind, value) in enumerate(windows))


@dataclass(frozen=True)
class VENDecision:
    """What the VEN answered the VTN for one event (or one modification of it).

    Attributes
    ----------
    event_id : str
        The VTN's event id.
    modification_number : int
        Modification of the event this answer is for.
    status : str
        The VTN's ``event_status`` (``far``/``near``/``active``/``completed``/``cancelled``).
    opt : {"optIn", "optOut"}
        The answer sent in ``oadrCreatedEvent``.
    reason : str
        Plain-language reason (from the decision callback, or why the event was not usable).
    events : tuple of DREvent
        The event's windows as fleetcharge reads them (empty when unusable or withdrawn).
    decided_at : pandas.Timestamp
        When the answer was made (the VEN's clock, UTC).
    """

    event_id: str
    modification_number: int
    status: str
    opt: Opt
    reason: str
    events: tuple[DREvent, ...]
    decided_at: pd.Timestamp


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class FleetVEN:
    """An OpenADR 2.0b VEN that turns a utility's events into planner constraints.

    Parameters
    ----------
    ven_name : str
        Name this VEN registers with.
    vtn_url : str
        The VTN's 2.0b base URL (``https://host/OpenADR2/Simple/2.0b``).
    decide : callable
        ``decide(event) -> (opt_in, reason)`` for each :class:`DREvent`, plain or ``async``. A
        slow decision (a planning solve) should be ``async`` and run the solve off the event
        loop, e.g. with :func:`asyncio.to_thread`.
    on_events_changed : callable
        ``on_events_changed(active_events)``, plain or ``async``, called whenever the set of
        accepted events changes (accepted, modified, cancelled or completed). The VTN gets the
        answer after it returns, so it should return quickly
        (``DepotController.request_replan`` queues a re-plan).
    program : str
        Program of events whose market context is not in ``market_programs``.
    market_programs : Mapping[str, str], optional
        Market context URI → program name, for a VTN running several programs.
    simple_level_kw : Mapping[int, float], optional
        Site import limit for SIMPLE levels 1, 2, 3 [kW] (the program's contract), non-increasing
        with the level. SIMPLE events for a level without a limit are opted out.
    currency : str
        ISO 4217 currency of the tariff; prices in another currency are opted out.
    site_kw : callable, optional
        ``site_kw() -> float`` (plain or ``async``): the site's import now [kW]. When given, a
        TELEMETRY_USAGE report (``powerReal``, kW) is offered to the VTN and sent at the period
        it asks for.
    telemetry_resource_id : str
        Resource id of the site meter in the telemetry report.
    grid_hz, grid_voltage_v : int
        Nominal frequency [Hz] and voltage [V] of the metered service (report power attributes).
    clock : Clock, optional
        Time source for ``received_at`` and for dropping ended events (wall time by default;
        OpenADR event times are absolute, so a live VEN runs on wall time).
    ven_id : str, optional
        A VEN id assigned out of band (otherwise the VTN assigns one at registration).
    cert, key, passphrase : str, optional
        PEM certificate and private key (paths) to sign messages and for TLS client auth.
    vtn_fingerprint : str, optional
        Fingerprint of the VTN's certificate; messages not signed by it are ignored.
    ca_file : str, optional
        CA bundle to check the VTN's TLS certificate.
    disable_signature : bool
        Send unsigned messages (loopback tests; production VTNs require signatures).
    check_hostname : bool
        Check the VTN's TLS host name.

    Raises
    ------
    ValueError
        A bad ``vtn_url`` or ``simple_level_kw``.
    """

    def __init__(self, ven_name: str, vtn_url: str, *, decide: DecideFn,
                 on_events_changed: EventsChangedFn, program: str,
                 market_programs: Mapping[str, str] | None = None,
                 simple_level_kw: Mapping[int, float] | None = None, currency: str = "USD",
                 site_kw: SiteKwFn | None = None, telemetry_resource_id: str = "site",
                 grid_hz: int = 60, grid_voltage_v: int = 480, clock: Clock | None = None,
                 ven_id: str | None = None, cert: str | None = None, key: str | None = None,
                 passphrase: str | None = None, vtn_fingerprint: str | None = None,
                 ca_file: str | None = None, disable_signature: bool = False,
                 check_hostname: bool = True) -> None:
        if not vtn_url.startswith(("http://", "https://")):
            raise ValueError(f"vtn_url {vtn_url!r} must be an http:// or https:// URL, e.g. "
                             "https://vtn.example.com/OpenADR2/Simple/2.0b")
        self.simple_level_kw = _check_levels(simple_level_kw or {})
        self.vtn_url = vtn_url
        self.decide = decide
        self.on_events_changed = on_events_changed
        self.program = program
        self.market_programs = dict(market_programs or {})
        self.currency = currency
        self.clock = clock or Clock()
        self.decisions: list[VENDecision] = []
        self._accepted: dict[str, tuple[DREvent, ...]] = {}
        self._opts: dict[str, Opt] = {}
        self.client = OpenADRClient(
            ven_name, vtn_url, cert=cert, key=key, passphrase=passphrase,
            vtn_fingerprint=vtn_fingerprint, show_fingerprint=False, ca_file=ca_file,
            ven_id=ven_id, disable_signature=disable_signature, check_hostname=check_hostname)
        self.client.add_handler("on_event", self._on_event)
        self.client.add_handler("on_update_event", self._on_event)
        self._jobs_running = 0
        self.client.scheduler.add_listener(
            self._count_jobs,
            EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        if site_kw is not None:
            self._site_kw = site_kw
            measurement = objects.Measurement(
                name="powerReal", description="RealPower", unit="W", scale="k",
                power_attributes=objects.PowerAttributes(hertz=grid_hz, voltage=grid_voltage_v,
                                                         ac=True))
            self.client.add_report(
                self._report_site_kw, telemetry_resource_id, measurement=measurement,
                scale="k", report_name=enums.REPORT_NAME.TELEMETRY_USAGE,
                report_type=enums.REPORT_TYPE.USAGE, reading_type=enums.READING_TYPE.DIRECT_READ,
                report_duration=TELEMETRY_BUFFER,
                sampling_rate=objects.SamplingRate(min_period=TELEMETRY_MIN_PERIOD,
                                                   max_period=TELEMETRY_MAX_PERIOD,
                                                   on_change=False))

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register with the VTN, offer telemetry, fetch pending events and start polling.

        Raises
        ------
        ConnectionError
            The VTN could not be reached or did not register this VEN (openleadr logs the
            details); nothing keeps running.
        """
        await self.client.run()
        if self.client.registration_id is None:
            raise ConnectionError(
                f"VTN {self.vtn_url} did not register VEN {self.client.ven_name!r}: check the URL, "
                "that the VTN knows this VEN, and the certificate/fingerprint settings")
        LOG.info("VEN %s registered with %s as venID %s (poll every %s)", self.client.ven_name,
                 self.vtn_url, self.client.ven_id, self.client.poll_frequency)

    async def stop(self) -> None:
        """Stop polling and reporting and close the HTTP session.

        A poll in flight is let finish (up to :data:`STOP_GRACE_S`), so an event being decided
        still gets its answer and the scheduler does not log a cancelled job as an error.
        """
        scheduler = self.client.scheduler
        if scheduler.running:
            scheduler.pause()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STOP_GRACE_S
            while self._jobs_running > 0 and loop.time() < deadline:
                await asyncio.sleep(0.05)
        await self.client.stop()

    async def __aenter__(self) -> FleetVEN:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ven_id(self) -> str | None:
        """The venID the VTN assigned (``None`` before registration)."""
        return self.client.ven_id

    @property
    def registration_id(self) -> str | None:
        """The registrationID of the current registration (``None`` when not registered)."""
        return self.client.registration_id

    @property
    def active_events(self) -> tuple[DREvent, ...]:
        """Accepted events not cancelled and not yet over, sorted by start."""
        now = self.clock.now()
        return tuple(sorted((e for parts in self._accepted.values() for e in parts if e.end > now),
                            key=lambda e: (e.start, e.event_id)))

    # -- event handling --------------------------------------------------------------------------

    async def _on_event(self, event: dict[str, Any]) -> Opt:
        """openleadr's ``on_event``/``on_update_event`` handler: decide, answer, notify.

        Never raises: openleadr answers ``optOut`` to *every* event of a message when a handler
        raises, which would withdraw events accepted earlier; failures are logged and this one
        event is opted out.
        """
        descriptor = event["event_descriptor"]
        event_id, status = descriptor["event_id"], descriptor["event_status"]
        before = self.active_events
        if status in (enums.EVENT_STATUS.CANCELLED, enums.EVENT_STATUS.COMPLETED):
            self._accepted.pop(event_id, None)
            opt = self._opts.get(event_id, "optOut")
            parts: tuple[DREvent, ...] = ()
            reason = f"{status} by the VTN"
        else:
            parts, opt, reason = await self._answer(event)
            if opt == "optIn" and parts:
                self._accepted[event_id] = parts
            else:
                self._accepted.pop(event_id, None)
        self._opts[event_id] = opt
        self.decisions.append(VENDecision(event_id, int(descriptor["modification_number"]),
                                          status, opt, reason, parts, self.clock.now()))
        LOG.info("OpenADR event %s (modification %s, %s): %s, %s", event_id,
                 descriptor["modification_number"], status, opt, reason)
        after = self.active_events
        if after != before:
            try:
                await _maybe_await(self.on_events_changed(after))
            except Exception:
                LOG.exception("on_events_changed failed after OpenADR event %s", event_id)
        return opt

    async def _answer(self, event: Mapping[str, Any]) -> tuple[tuple[DREvent, ...], Opt, str]:
        """The event's windows, the answer and its reason."""
        market_context = event["event_descriptor"].get("market_context")
        program = self.market_programs.get(market_context, self.program)
        now = self.clock.now()
        try:
            parts = dr_events(event, program, simple_level_kw=self.simple_level_kw,
                              currency=self.currency, received_at=now)
        except UnsupportedEvent as exc:
            return (), "optOut", f"declined: {exc}"
        parts = tuple(p for p in parts if p.end > now)  # windows already over ask nothing
        if not parts:
            return (), "optIn", "nothing to change (normal level, zero payload or already over)"
        reasons: list[str] = []
        opt_in = True
        for part in parts:
            try:
                accepted, reason = await _maybe_await(self.decide(part))
            except Exception as exc:
                LOG.exception("decision on DR event %s failed", part.event_id)
                accepted = False
                reason = f"declined: the decision failed ({type(exc).__name__}: {exc})"
            opt_in = opt_in and bool(accepted)
            reasons.append(reason if len(parts) == 1 else f"{part.event_id}: {reason}")
        return parts, "optIn" if opt_in else "optOut", "; ".join(reasons)

    def _count_jobs(self, event: JobEvent) -> None:
        """apscheduler listener: polls and report jobs submitted and not yet finished (with
        coalescing, the scheduler's default, a submission runs once)."""
        self._jobs_running += 1 if event.code == EVENT_JOB_SUBMITTED else -1

    async def _report_site_kw(self) -> float:
        return float(await _maybe_await(self._site_kw()))


def _check_levels(simple_level_kw: Mapping[int, float]) -> dict[int, float]:
    levels = {int(k): float(v) for k, v in simple_level_kw.items()}
    for level, kw in levels.items():
        if level not in SIMPLE_LEVELS:
            raise ValueError(f"simple_level_kw: SIMPLE level {level} does not ask for a reduction; "
                             "give limits for levels 1, 2 and/or 3")
        if not np.isfinite(kw) or kw < 0:
            raise ValueError(f"simple_level_kw: level {level} limit must be ≥ 0 kW, got {kw!r}")
    ordered = [levels[k] for k in sorted(levels)]
    if any(b > a for a, b in zip(ordered, ordered[1:])):
        raise ValueError(f"simple_level_kw {levels}: a higher SIMPLE level is more severe, so its "
                         "site limit must not be higher than a lower level's")
    return levels
