"""OpenADR 2.0b VEN against a real openleadr VTN (``OpenADRServer``) on 127.0.0.1.

Every test runs a VTN and a :class:`FleetVEN` in one event loop over real HTTP, the VTN asking for a
1 s poll. Besides pytest's ``filterwarnings = error``, the tests assert that neither openleadr nor
the VEN logs a warning or error on the paths they exercise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiohttp.web_exceptions import NotAppKeyWarning
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from openleadr import OpenADRServer, objects, utils

from fleetcharge.accounting import evaluate
from fleetcharge.domain import Scenario
from fleetcharge.dr.events import DREvent
from fleetcharge.dr.planning import decide_live
from fleetcharge.dr.ven import FleetVEN, UnsupportedEvent, dr_events
from fleetcharge.ops.clock import Clock
from fleetcharge.plan import Plan
from fleetcharge.strategies.rolling import LiveState, plugged_from_sessions, replan
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

VTN_ID = "FLEET-VTN"  # openleadr VENs reject all-lower-case vtnIDs (protocols.md §5.1)
POLL = timedelta(seconds=1)
LEVEL_KW = {1: 300.0, 2: 200.0, 3: 100.0}


@dataclass
class LoopbackVTN:
    """An openleadr VTN, the answers (``optIn``/``optOut``) it got and the telemetry (kW)."""

    server: OpenADRServer
    url: str = ""
    opts: list[tuple[str, str]] = field(default_factory=list)
    telemetry_kw: list[float] = field(default_factory=list)

    def record_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        self.opts.append((event_id, opt_type))

    def add(self, ven_id: str, signal_name: str, signal_type: str,
            windows: list[tuple[datetime, timedelta, float]], *,
            measurement: objects.Measurement | None = None,
            market_context: str = "oadr://fleetcharge.test/program") -> str:
        """Queue an event for ``ven_id`` with one signal of ``(start, duration, payload)``s."""
        intervals = [objects.Interval(dtstart=start, duration=duration, signal_payload=payload,
                                      uid=i)
                     for i, (start, duration, payload) in enumerate(windows)]
        event_id = utils.generate_id()
        event = objects.Event(
            event_descriptor=objects.EventDescriptor(
                event_id=event_id, modification_number=0, market_context=market_context,
                event_status="far", created_date_time=datetime.now(timezone.utc)),
            event_signals=[objects.EventSignal(intervals=intervals, signal_name=signal_name,
                                               signal_type=signal_type,
                                               signal_id=utils.generate_id(),
                                               measurement=measurement,
                                               # 0 until the event is active (2.0b
                                               # conformance rule 14, checked by openleadr)
                                               current_value=0.0)],
            targets=[{"ven_id": ven_id}],
            active_period=utils.get_active_period_from_intervals(intervals, False))
        return self.server.add_raw_event(ven_id, event, callback=self.record_opt)

    def modify(self, ven_id: str, event_id: str, payload: float) -> None:
        """Change the payload of every interval of an event (next modification number)."""
        event = utils.find_by(self.server.events[ven_id], "event_descriptor.event_id", event_id)
        for interval in event.event_signals[0].intervals:
            interval.signal_payload = payload
        utils.increment_event_modification_number(event)
        self.server.events_updated[ven_id] = True
        self.server.event_callbacks[event_id] = (event, self.record_opt)


@contextlib.asynccontextmanager
async def loopback_vtn(*, accept: bool = True, telemetry_period: timedelta | None = None,
                       pki: dict[str, str] | None = None) -> AsyncIterator[LoopbackVTN]:
    """A VTN on a free port of 127.0.0.1 (bound by the OS: port 0) with a 1 s poll.

    With ``pki`` (see :func:`make_pki`) it serves HTTPS, requires the VEN's client certificate,
    signs its messages and checks the VEN's signatures against the VEN certificate's
    fingerprint, delivered out of band as OpenADR requires.
    """
    registered: dict[str, str] = {}

    def register(payload: dict) -> tuple[str, str] | bool:
        if not accept:
            return False
        ven_id = f"VEN-{payload['ven_name']}"
        registered[ven_id] = f"REG-{payload['ven_name']}"
        return ven_id, registered[ven_id]

    def lookup(ven_id: str) -> dict:
        return {"ven_id": ven_id, "registration_id": registered.get(ven_id),
                "fingerprint": pki["ven_fingerprint"] if pki else None}

    tls = {} if pki is None else {
        "cert": pki["vtn_cert"], "key": pki["vtn_key"], "http_cert": pki["vtn_cert"],
        "http_key": pki["vtn_key"], "http_ca_file": pki["ca_cert"]}

    with warnings.catch_warnings():
        # openleadr 0.5.36 stores itself in the aiohttp app under a plain str key
        # (openleadr/server.py: ``self.app['server'] = self``); aiohttp ≥ 3.9 warns about str
        # keys. The warning is about the VTN's own (test-only) setup, not about anything the VEN
        # does, so it is ignored for the constructor only.
        warnings.filterwarnings("ignore", category=NotAppKeyWarning)
        server = OpenADRServer(vtn_id=VTN_ID, http_host="127.0.0.1", http_port=0,
                               requested_poll_freq=POLL, ven_lookup=lookup,
                               show_fingerprint=False, **tls)
    vtn = LoopbackVTN(server)
    server.add_handler("on_create_party_registration", register)

    async def on_register_report(ven_id, resource_id, measurement, unit, scale,
                                 min_sampling_interval, max_sampling_interval):
        if telemetry_period is None or measurement != "RealPower":
            return None
        assert (unit, scale) == ("W", "k")  # the VEN offers the site's kW
        return (lambda values: vtn.telemetry_kw.extend(v for _, v in values)), telemetry_period

    server.add_handler("on_register_report", on_register_report)
    await server.run()
    port = server.app_runner.addresses[0][1]
    vtn.url = f"{'https' if pki else 'http'}://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    try:
        yield vtn
    finally:
        await server.stop()


def no_warnings_logged(caplog: pytest.LogCaptureFixture) -> None:
    """No warning or error was logged, except apscheduler skipping a poll because the previous
    one is still running (a decision plus re-plan can outlast the 1 s test poll on a loaded
    machine; the skipped poll just happens a second later)."""
    bad = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING
           and "maximum number of running instances reached" not in r.getMessage()]
    assert bad == []


def accept_all(event: DREvent) -> tuple[bool, str]:
    return True, "accepted"


def no_replan(active_events: tuple[DREvent, ...]) -> None:
    """``on_events_changed`` of the tests that do not re-plan."""


def kw(value_w_scale: str) -> objects.Measurement:
    return objects.Measurement(name="powerReal", description="RealPower", unit="W",
                               scale=value_w_scale,
                               power_attributes=objects.PowerAttributes(60, 480, True))


def usd_per_kwh(currency: str = "USD") -> objects.Measurement:
    return objects.Measurement(name="currencyPerKWh", description="currencyPerKWh",
                               unit=currency, scale="none")


def make_pki(folder: Path) -> dict[str, str]:
    """A test CA with a VTN server certificate (for 127.0.0.1) and a VEN client certificate."""
    now = datetime.now(timezone.utc)

    def issue(name: str, issuer: x509.Name | None, issuer_key, *, ca: bool = False,
              ip: bool = False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer or subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ip:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return subject, key

    ca_name, ca_key = issue("ca", None, None, ca=True)
    issue("vtn", ca_name, ca_key, ip=True)
    issue("ven", ca_name, ca_key)
    files = {f"{who}_{kind}": str(folder / f"{who}.{ext}") for who in ("ca", "vtn", "ven")
             for kind, ext in (("cert", "pem"), ("key", "key"))}
    for who in ("vtn", "ven"):
        files[f"{who}_fingerprint"] = utils.certificate_fingerprint(
            Path(files[f"{who}_cert"]).read_text())
    return files


# -- registration, telemetry, configuration -------------------------------------------------------


def test_registers_and_reports_site_kw_when_the_vtn_asks(caplog):
    caplog.set_level(logging.INFO)
    site_kw = [412.5]

    async def scenario() -> None:
        async with loopback_vtn(telemetry_period=timedelta(seconds=1)) as vtn:
            ven = FleetVEN("depot-1", vtn.url, decide=accept_all, on_events_changed=no_replan,
                           program="elrp", site_kw=lambda: site_kw[0], disable_signature=True)
            async with ven:
                assert (ven.ven_id, ven.registration_id) == ("VEN-depot-1", "REG-depot-1")
                assert ven.client.poll_frequency == POLL
                await until(lambda: len(vtn.telemetry_kw) >= 1, "a telemetry report")
                site_kw[0] = 388.0
                await until(lambda: 388.0 in vtn.telemetry_kw, "the next reading")
            offered = vtn.server.registered_reports["VEN-depot-1"][0]
            assert offered["report_name"] == "TELEMETRY_USAGE"
            (description,) = offered["report_descriptions"]
            assert description["measurement"]["name"] == "powerReal"
            assert description["report_data_source"] == {"resource_id": "site"}
            assert set(vtn.telemetry_kw) <= {412.5, 388.0} and vtn.telemetry_kw[0] == 412.5

    asyncio.run(scenario())
    no_warnings_logged(caplog)


def test_rejected_registration_raises_and_stops():
    async def scenario() -> None:
        async with loopback_vtn(accept=False) as vtn:
            ven = FleetVEN("depot-1", vtn.url, decide=accept_all, on_events_changed=no_replan,
                           program="elrp", disable_signature=True)
            with pytest.raises(ConnectionError, match="did not register VEN 'depot-1'"):
                await ven.start()
            assert ven.registration_id is None and not ven.client.scheduler.running

    asyncio.run(scenario())


def test_tls_and_signed_messages(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    pki = make_pki(tmp_path)

    async def scenario() -> None:
        async with loopback_vtn(pki=pki) as vtn:
            secure = {"cert": pki["ven_cert"], "key": pki["ven_key"], "ca_file": pki["ca_cert"]}
            ven = FleetVEN("depot-1", vtn.url, decide=accept_all, on_events_changed=no_replan,
                           program="elrp", simple_level_kw=LEVEL_KW,
                           vtn_fingerprint=pki["vtn_fingerprint"], **secure)
            async with ven:
                t0 = datetime.now(timezone.utc) + timedelta(minutes=10)
                event_id = vtn.add(ven.ven_id, "SIMPLE", "level", [(t0, timedelta(hours=1), 2)])
                await until(lambda: vtn.opts == [(event_id, "optIn")], "the signed answer")
                assert [e.value for e in ven.active_events] == [200.0]
            no_warnings_logged(caplog)
            # a VTN whose certificate is not the one we were given is not believed
            impostor = FleetVEN("depot-1", vtn.url, decide=accept_all, on_events_changed=no_replan,
                                program="elrp", vtn_fingerprint=pki["ven_fingerprint"],
                                **secure)
            with pytest.raises(ConnectionError, match="did not register"):
                await impostor.start()
            assert any("fingerprint was incorrect" in r.getMessage() for r in caplog.records)

    asyncio.run(scenario())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vtn_url": "vtn.example.com/OpenADR2/Simple/2.0b"}, "must be an http:// or https:// URL"),
    ({"simple_level_kw": {0: 100.0}}, "level 0 does not ask for a reduction"),
    ({"simple_level_kw": {1: -5.0}}, r"level 1 limit must be ≥ 0 kW, got -5.0"),
    ({"simple_level_kw": {1: 100.0, 2: 200.0}}, "a higher SIMPLE level is more severe"),
])
def test_bad_configuration_is_refused(kwargs, message):
    args = {"vtn_url": "http://127.0.0.1:1/OpenADR2/Simple/2.0b", **kwargs}
    with pytest.raises(ValueError, match=message):
        FleetVEN("depot-1", args.pop("vtn_url"), decide=accept_all, on_events_changed=no_replan,
                 program="elrp", disable_signature=True, **args)


# -- signal mapping ----------------------------------------------------------------------------


def test_signals_become_dr_events_and_unusable_ones_are_opted_out(caplog):
    caplog.set_level(logging.INFO)
    changes: list[tuple[DREvent, ...]] = []
    q = timedelta(minutes=15)

    async def scenario() -> None:
        async with loopback_vtn() as vtn:
            ven = FleetVEN("depot-1", vtn.url, decide=accept_all, on_events_changed=changes.append,
                           program="elrp", market_programs={"oadr://utility/cbp": "cbp"},
                           simple_level_kw=LEVEL_KW, disable_signature=True)
            async with ven:
                t0 = (datetime.now(timezone.utc) + timedelta(minutes=10)).replace(microsecond=0)
                vid = ven.ven_id
                ids = {
                    "simple": vtn.add(vid, "SIMPLE", "level",
                                      [(t0, q, 1), (t0 + q, q, 2), (t0 + 2 * q, q, 2),
                                       (t0 + 3 * q, q, 0)]),
                    "delta": vtn.add(vid, "LOAD_DISPATCH", "delta", [(t0, 4 * q, -150_000.0)],
                                     measurement=kw("none"), market_context="oadr://utility/cbp"),
                    "setpoint": vtn.add(vid, "LOAD_DISPATCH", "setpoint", [(t0, 2 * q, 0.25)],
                                        measurement=kw("M")),
                    "price": vtn.add(vid, "ELECTRICITY_PRICE", "priceRelative",
                                     [(t0, 4 * q, 2.0)], measurement=usd_per_kwh()),
                    "euro": vtn.add(vid, "ELECTRICITY_PRICE", "price", [(t0, q, 0.5)],
                                    measurement=usd_per_kwh("EUR")),
                    "multiplier": vtn.add(vid, "LOAD_DISPATCH", "multiplier", [(t0, q, 0.5)]),
                    "load up": vtn.add(vid, "LOAD_DISPATCH", "delta", [(t0, q, 50.0)],
                                       measurement=kw("k")),
                }
                await until(lambda: len(vtn.opts) == len(ids), "answers to every event")
                opts = dict(vtn.opts)
                assert {name: opts[i] for name, i in ids.items()} == {
                    "simple": "optIn", "delta": "optIn", "setpoint": "optIn", "price": "optIn",
                    "euro": "optOut", "multiplier": "optOut", "load up": "optOut"}
                reasons = {d.event_id: d.reason for d in ven.decisions}
                assert reasons[ids["euro"]] == "declined: price in EUR, but the tariff is in USD"
                assert reasons[ids["multiplier"]].startswith(
                    "declined: signal LOAD_DISPATCH/multiplier is not supported")
                assert reasons[ids["load up"]].startswith(
                    "declined: LOAD_DISPATCH delta +50 kW asks for more load")

                got = {(e.event_id, e.program, e.kind, e.value, e.start, e.end)
                       for e in ven.active_events}
                ts = [pd.Timestamp(t0 + k * q) for k in range(5)]
                s = ids["simple"]
                assert got == {
                    (f"{s}/0", "elrp", "curtail", 300.0, ts[0], ts[1]),  # level 1
                    (f"{s}/1", "elrp", "curtail", 200.0, ts[1], ts[3]),  # level 2 ×2, merged
                    (ids["delta"], "cbp", "reduce", 150.0, ts[0], ts[4]),  # −150 000 W
                    (ids["setpoint"], "elrp", "curtail", 250.0, ts[0], ts[2]),  # 0.25 MW
                    (ids["price"], "elrp", "price", 2.0, ts[0], ts[4]),
                }
                for e in ven.active_events:  # notified now, 10 minutes before t0
                    assert 9.5 < (ts[0] - e.received_at) / pd.Timedelta(minutes=1) <= 10.0
                assert changes[-1] == ven.active_events

    asyncio.run(scenario())
    no_warnings_logged(caplog)


def _event(*intervals: tuple[str, float, float], name: str = "SIMPLE", kind: str = "level"):
    """An event dict as openleadr parses it: intervals of (UTC start, minutes, payload)."""
    return {"event_descriptor": {"event_id": "E1"},
            "event_signals": [{"signal_name": name, "signal_type": kind, "intervals": [
                {"dtstart": pd.Timestamp(t, tz="UTC").to_pydatetime(),
                 "duration": timedelta(minutes=m), "signal_payload": p}
                for t, m, p in intervals]}]}


def test_dr_events_edge_cases():
    # level 0 everywhere asks for nothing; a lone window keeps the VTN's event id
    assert dr_events(_event(("2025-07-01 23:00", 30, 0)), "elrp", simple_level_kw=LEVEL_KW) == ()
    (one,) = dr_events(_event(("2025-07-01 23:00", 30, 0), ("2025-07-01 23:30", 30, 3)), "elrp",
                       simple_level_kw=LEVEL_KW)
    assert (one.event_id, one.value, one.duration_h) == ("E1", 100.0, 0.5)
    # a gap between equal levels is two windows
    two = dr_events(_event(("2025-07-01 23:00", 15, 1), ("2025-07-01 23:30", 15, 1)), "elrp",
                    simple_level_kw=LEVEL_KW)
    assert [(e.event_id, e.start.minute) for e in two] == [("E1/0", 0), ("E1/1", 30)]
    with pytest.raises(UnsupportedEvent, match="no site kW configured for SIMPLE level 2"):
        dr_events(_event(("2025-07-01 23:00", 30, 2)), "elrp", simple_level_kw={1: 50.0})
    with pytest.raises(UnsupportedEvent, match="open-ended interval"):
        dr_events(_event(("2025-07-01 23:00", 0, 1)), "elrp", simple_level_kw=LEVEL_KW)
    with pytest.raises(UnsupportedEvent, match="asks for export"):
        dr_events(_event(("2025-07-01 23:00", 30, -5), name="LOAD_DISPATCH", kind="setpoint"),
                  "elrp", simple_level_kw=LEVEL_KW)
    with pytest.raises(UnsupportedEvent, match="negative price"):
        dr_events(_event(("2025-07-01 23:00", 30, -0.1), name="ELECTRICITY_PRICE", kind="price"),
                  "elrp", simple_level_kw=LEVEL_KW)


# -- decisions, modification, cancellation -----------------------------------------------------


def test_declined_event_is_opted_out_and_changes_nothing(caplog):
    caplog.set_level(logging.INFO)
    changes: list[tuple[DREvent, ...]] = []
    asked: list[DREvent] = []

    async def decline(event: DREvent) -> tuple[bool, str]:
        asked.append(event)
        return False, "declined: bus B07 would leave at 62 % instead of 80 %"

    async def scenario() -> None:
        async with loopback_vtn() as vtn:
            ven = FleetVEN("depot-1", vtn.url, decide=decline, on_events_changed=changes.append,
                           program="capacity-with-penalty", disable_signature=True)
            async with ven:
                t0 = datetime.now(timezone.utc) + timedelta(minutes=10)
                event_id = vtn.add(ven.ven_id, "LOAD_DISPATCH", "setpoint",
                                   [(t0, timedelta(hours=1), 40.0)], measurement=kw("k"))
                await until(lambda: vtn.opts == [(event_id, "optOut")], "the opt-out")
                assert ven.active_events == () and changes == []
                (decision,) = ven.decisions
                assert (decision.event_id, decision.opt, decision.reason) == (
                    event_id, "optOut", "declined: bus B07 would leave at 62 % instead of 80 %")
                assert [(e.kind, e.value, e.program) for e in asked] == [
                    ("curtail", 40.0, "capacity-with-penalty")]

    asyncio.run(scenario())
    no_warnings_logged(caplog)


def test_a_failing_decision_opts_out_only_that_event(caplog):
    changes: list[tuple[DREvent, ...]] = []

    def decide(event: DREvent) -> tuple[bool, str]:
        if event.kind == "price":
            raise RuntimeError("planner crashed")
        return True, "accepted"

    async def scenario() -> None:
        async with loopback_vtn() as vtn:
            ven = FleetVEN("depot-1", vtn.url, decide=decide, on_events_changed=changes.append,
                           program="elrp", disable_signature=True)
            async with ven:
                t0 = datetime.now(timezone.utc) + timedelta(minutes=10)
                hour = timedelta(hours=1)
                ok = vtn.add(ven.ven_id, "LOAD_DISPATCH", "setpoint", [(t0, hour, 40.0)])
                bad = vtn.add(ven.ven_id, "ELECTRICITY_PRICE", "price", [(t0, hour, 2.0)])
                await until(lambda: len(vtn.opts) == 2, "both answers")
                assert dict(vtn.opts) == {ok: "optIn", bad: "optOut"}
                assert [e.event_id for e in ven.active_events] == [ok]
                reason = next(d.reason for d in ven.decisions if d.event_id == bad)
                assert reason == "declined: the decision failed (RuntimeError: planner crashed)"

    asyncio.run(scenario())
    assert any(r.levelno == logging.ERROR and "decision on DR event" in r.getMessage()
               for r in caplog.records)


# -- VTN → VEN → re-plan ------------------------------------------------------------------------


def night_depot(now: pd.Timestamp) -> Scenario:
    """Six vans on 10 kW chargers, plugged in three hours ago (about 19:00) and leaving in six
    (about 04:00), each still needing 48 kWh (80 % of what its charger can give by then), on a
    flat $0.15/kWh tariff with a $0.50/kW demand charge.

    OpenADR event times are wall-clock times (openleadr checks them against its own clock), so
    the depot is built around ``now``, in the fixed-offset timezone where ``now`` is about
    22:00: the event always arrives in the middle of the night's charging. With a flat energy
    price the optimal plan only minimises the peak, so without events it is flat at the lowest
    peak that delivers the energy (the reference the event plans are compared with).
    """
    offset_h = round((pd.Timedelta(hours=22) - (now - now.normalize())) / pd.Timedelta(hours=1))
    offset_h = (offset_h + 12) % 24 - 12
    tz = "Etc/GMT" if offset_h == 0 else f"Etc/GMT{'-' if offset_h > 0 else '+'}{abs(offset_h)}"
    step = now.tz_convert(tz).floor("15min")
    arrival, departure = step - pd.Timedelta(hours=3), step + pd.Timedelta(hours=6)

    def local(t: pd.Timestamp) -> str:
        return t.tz_localize(None).isoformat()

    months = tuple((0,) * 24 for _ in range(12))
    tariff = Tariff(name="flat", energy=EnergyCharge(
        (EnergyPeriod((EnergyTier(0.15),), "flat"),), months, months),
        flat_demand=FlatDemandCharge((DemandPeriod((DemandTier(0.5),)),), (0,) * 12))
    return build_scenario([(local(arrival), local(departure), 48.0, 10.0)] * 6,
                          start=local(arrival.floor("D")),
                          end=local(arrival.floor("D") + pd.Timedelta(days=2)), timezone=tz,
                          tariff=tariff)


def window_kw(plan: Plan, event: DREvent) -> np.ndarray:
    """Planned site load in the steps the event binds [kW]."""
    return plan.site_load_kw()[event.mask(plan.scenario.horizon.index)]


def test_short_notice_event_at_night_is_taken_replanned_modified_and_cancelled(caplog):
    caplog.set_level(logging.INFO)
    clock = Clock()
    depot = night_depot(clock.now())
    plugged, expected = plugged_from_sessions(depot.sessions, clock.now())
    assert len(plugged) == 6 and expected == ()
    # (accepted events, plan honouring them, plan without events) at each change
    plans: list[tuple[tuple[DREvent, ...], Plan, Plan]] = []

    ven: FleetVEN | None = None

    def live(events: tuple[DREvent, ...] = ()) -> LiveState:
        return LiveState(depot, plugged, expected, dr_events=events)

    async def decide(event: DREvent) -> tuple[bool, str]:
        decision = await asyncio.to_thread(decide_live, live(ven.active_events), event,
                                           clock.now())
        return decision.participate, decision.reason

    async def on_events_changed(active: tuple[DREvent, ...]) -> None:
        now = clock.now()
        plan, free = await asyncio.gather(asyncio.to_thread(replan, live(active), now),
                                          asyncio.to_thread(replan, live(), now))
        plans.append((active, plan, free))

    async def scenario() -> None:
        nonlocal ven
        async with loopback_vtn() as vtn:
            ven = FleetVEN("depot-1", vtn.url, decide=decide,
                           on_events_changed=on_events_changed, program="emergency",
                           market_programs={"oadr://utility/capacity": "capacity-with-penalty"},
                           clock=clock, disable_signature=True)
            async with ven:
                vid = ven.ven_id
                t0 = datetime.now(timezone.utc) + timedelta(minutes=10)
                capacity = "oadr://utility/capacity"
                # 1. LOAD_DISPATCH: hold the site at 20 kW for an hour, 10 minutes from now
                curtail = vtn.add(vid, "LOAD_DISPATCH", "setpoint", [(t0, timedelta(hours=1),
                                                                      20.0)],
                                  measurement=kw("k"), market_context=capacity)
                await until(lambda: len(plans) == 1 and vtn.opts, "opt-in and re-plan")
                assert vtn.opts == [(curtail, "optIn")]
                (event,), plan, free = plans[0]
                assert (event.event_id, event.program, event.kind, event.value) == (
                    curtail, "capacity-with-penalty", "curtail", 20.0)
                assert 9.5 < event.notice_minutes <= 10.0
                assert ven.decisions[-1].reason.startswith("accepted")
                # without the event the night is flat at its lowest peak, well above 20 kW
                # (the step running now is partly over, so it holds less) ...
                assert window_kw(free, event)[1:] == pytest.approx(free.site_load_kw().max())
                assert free.site_load_kw().max() > 45.0
                # ... with it every step the event binds stays at or below 20 kW
                assert window_kw(plan, event).max() <= 20.0 + 1e-6
                assert window_kw(plan, event).sum() < window_kw(free, event).sum()
                outcome = evaluate(plan)
                assert outcome.readiness.met == outcome.readiness.departures == 6

                # 2. a blackout until 03:15 would strand the vans: declined, nothing re-planned
                blackout = vtn.add(vid, "LOAD_DISPATCH", "setpoint",
                                   [(t0, timedelta(hours=5), 0.0)], measurement=kw("k"),
                                   market_context=capacity)
                await until(lambda: len(vtn.opts) == 2, "the answer to the blackout")
                assert vtn.opts[-1] == (blackout, "optOut")
                assert "would leave at" in ven.decisions[-1].reason
                assert len(plans) == 1 and ven.active_events == (event,)

                # 3. the utility relaxes the first event to 30 kW (modification 1)
                vtn.modify(vid, curtail, 30.0)
                await until(lambda: len(plans) == 2 and len(vtn.opts) == 3,
                            "answer and re-plan after the modification")
                assert vtn.opts[-1] == (curtail, "optIn")
                (event,), plan, _ = plans[1]
                assert (event.event_id, event.value) == (curtail, 30.0)
                assert ven.decisions[-1].modification_number == 1
                assert window_kw(plan, event).max() <= 30.0 + 1e-6

                # 4. and cancels it: dropped, re-planned back to the plan without events
                vtn.server.cancel_event(vid, curtail)
                await until(lambda: len(plans) == 3, "the re-plan after the cancellation")
                active, plan, free = plans[2]
                assert active == () and ven.active_events == ()
                np.testing.assert_allclose(plan.site_load_kw(), free.site_load_kw(), atol=1e-6)
                assert ven.decisions[-1].status == "cancelled"

    asyncio.run(scenario())
    no_warnings_logged(caplog)


def test_stop_lets_the_event_being_decided_get_its_answer(caplog):
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        deciding = asyncio.Event()

        async def slow_decide(event: DREvent) -> tuple[bool, str]:
            deciding.set()
            await asyncio.sleep(1.0)  # a planning solve
            return True, "accepted"

        async with loopback_vtn() as vtn:
            ven = FleetVEN("depot-1", vtn.url, decide=slow_decide, on_events_changed=no_replan,
                           program="elrp", disable_signature=True)
            await ven.start()
            t0 = datetime.now(timezone.utc) + timedelta(minutes=10)
            event_id = vtn.add(ven.ven_id, "LOAD_DISPATCH", "setpoint",
                               [(t0, timedelta(hours=1), 40.0)])
            await asyncio.wait_for(deciding.wait(), 10.0)
            await ven.stop()
            assert vtn.opts == [(event_id, "optIn")]
            assert not ven.client.scheduler.running

    asyncio.run(scenario())
    no_warnings_logged(caplog)
