"""The OCPP central system: websocket server, handshake security and per-version handlers.

One scenario charger (port) is one OCPP charge point; it connects to ``ws[s]://HOST:PORT/<id>``
offering one of the subprotocols :data:`SUBPROTOCOLS` and is served by the ``ocpp`` library's
``ChargePoint`` class of the negotiated version (:class:`Station16`, :class:`Station201`,
:class:`Station21`). Handlers stay a few lines long: they translate the message, persist it with
:class:`fleetcharge.ops.store.Store` (in a worker thread, and the reply is sent only after the
write returned, so an acknowledged message is never lost), and tell the
:class:`fleetcharge.ops.depot.DepotController` what happened.

Security (OCPP 1.6 Security Whitepaper ed. 2 / OCPP 2.0.1 Part 2 A00, security profiles 1 and 2):

- HTTP Basic auth on the upgrade request, username = the charge point id in the URL, checked
  against the stored scrypt hash; unknown ids and wrong passwords get 401, ids that are not a
  charger of the scenario 403, and all of them are written to the security log;
- repeated failures from one remote address or for one id are throttled: ``auth_failures``
  failures within ``auth_window_s`` answer 429 to every attempt for ``auth_backoff_s`` (wall
  seconds: this protects against real attackers, whatever speed the simulated clock runs at).
  Throttling by id also locks the real station out for the back-off: the price of stopping
  password guessing spread over many addresses;
- a request offering none of our subprotocols is refused with 400 and logged;
- frames above ``max_frame_bytes`` close the connection with 1009 (RFC 6455 §7.4.1) and are
  logged; schema-invalid messages are answered with a CALLERROR by the library (OCPP-J §4.2.3)
  and logged;
- TLS (profile 2) when a certificate and key are configured: :func:`server_ssl_context`.

After a BootNotification (in a task, never inside the handler: ``call()`` inside an ``@on``
handler deadlocks) the server reads the station's rate units and period limit (1.6
``GetConfiguration`` / 2.x ``GetVariables``; W is preferred when allowed, per the depot wire
conventions), then sets a TxDefaultProfile at full power and the station max profile at
min(charger max, site service limit) (DESIGN §7, issue 5 "fail safe"), recording each profile
and its answer. Every station-initiated action gets an answer: the handled ones, an empty
confirmation for notifications (:data:`_ACK_16`, :data:`_ACK_201`, :data:`_ACK_21`), else a
NotSupported / NotImplemented CALLERROR (the library leaves unhandled 2.1 actions unanswered).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import unquote

import pandas as pd
from ocpp import v16, v21, v201
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import NotImplementedError as OCPPNotImplemented
from ocpp.exceptions import NotSupportedError as OCPPNotSupported
from ocpp.exceptions import OCPPError
from ocpp.messages import unpack
from ocpp.routing import after, on
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHeader
from websockets.frames import CloseCode
from websockets.headers import parse_authorization_basic, parse_subprotocol
from websockets.http11 import Request, Response

from fleetcharge.domain import Charger
from fleetcharge.ops import profiles
from fleetcharge.ops.clock import Clock
from fleetcharge.ops.depot import DepotController, ProfileAnswer
from fleetcharge.ops.store import MeterSample, Store, TransactionRecord

LOG = logging.getLogger(__name__)
T = TypeVar("T")

SUBPROTOCOLS = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")
"""Subprotocols the server offers, in preference order (OCPP-J 1.6 §3.1.2 / 2.x Part 4 §3.1)."""
VERSION_OF_SUBPROTOCOL = {"ocpp2.1": "2.1", "ocpp2.0.1": "2.0.1", "ocpp1.6": "1.6"}
MAX_FRAME_BYTES = 64 * 1024
"""Largest websocket message accepted [bytes]; an OCPP message of a depot station is < 8 KiB."""
HEARTBEAT_S = 300
"""Heartbeat interval given in the BootNotification reply [s]."""
TX_DEFAULT_PROFILE_ID = 1
STATION_MAX_PROFILE_ID = 2
DEFAULT_MAX_PERIODS = 24
"""Periods per schedule assumed when a station does not report ChargingScheduleMaxPeriods /
PeriodsPerSchedule (both are required by the specs, so this is only a fallback)."""

# Station-initiated notifications that need no more than an empty confirmation. The library
# answers unhandled 1.6/2.0.1 actions with NotImplemented but leaves unhandled 2.1 actions
# unanswered (protocols.md §3.4 #2), so every station may send these and get a reply.
_ACK_16 = frozenset({"DiagnosticsStatusNotification", "FirmwareStatusNotification",
                     "LogStatusNotification", "SecurityEventNotification",
                     "SignedFirmwareStatusNotification"})
_ACK_201 = frozenset({"ClearedChargingLimit", "FirmwareStatusNotification", "LogStatusNotification",
                      "NotifyChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages",
                      "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
                      "PublishFirmwareStatusNotification", "ReportChargingProfiles",
                      "ReservationStatusUpdate", "SecurityEventNotification"})
_ACK_21 = _ACK_201 | {"NotifyDERAlarm", "NotifyDERStartStop", "NotifyPriorityCharging",
                      "NotifySettlement", "ReportDERControl", "BatterySwap",
                      "ClosePeriodicEventStream"}


def iso_utc(ts: pd.Timestamp) -> str:
    """OCPP dateTime: UTC with millisecond precision and a ``Z`` suffix (RFC 3339)."""
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str) -> pd.Timestamp:
    """An OCPP dateTime as a tz-aware UTC timestamp (a value without offset is read as UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS server context for OCPP security profile 2 (TLS 1.2 or newer, server certificate).

    Parameters
    ----------
    cert_file, key_file : str
        PEM certificate (chain) and private key of the central system.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


# --- meter values ---------------------------------------------------------------------------

_UNIT_SCALE = {"Wh": ("Wh", 1.0), "kWh": ("Wh", 1e3), "W": ("W", 1.0), "kW": ("W", 1e3),
               "varh": ("varh", 1.0), "kvarh": ("varh", 1e3), "var": ("var", 1.0),
               "kvar": ("var", 1e3), "VA": ("VA", 1.0), "kVA": ("VA", 1e3)}


def _default_unit(measurand: str) -> str:
    if measurand.startswith("Energy"):
        return "Wh"
    if measurand.startswith("Power"):
        return "W"
    if measurand == "SoC":
        return "Percent"
    if measurand.startswith("Current"):
        return "A"
    return "V" if measurand == "Voltage" else ""


def meter_samples(meter_value: list[dict], *, evse_id: int, ocpp_tx_id: str | None
                  ) -> list[MeterSample]:
    """Sampled values of 1.6 / 2.x ``meterValue`` lists (snake_case) as normalised samples.

    The measurand defaults to ``Energy.Active.Import.Register`` (OCPP 1.6 §7.31, 2.x
    SampledValueType). Energy is converted to Wh and power to W (kWh/kW, and 2.x
    ``unitOfMeasure.multiplier`` as a power of ten); 1.6 values are strings. Values that are
    not numbers (1.6 ``format`` SignedData) are skipped.
    """
    out = []
    for mv in meter_value:
        at = parse_time(mv["timestamp"])
        for sv in mv.get("sampled_value", []):
            measurand = sv.get("measurand", "Energy.Active.Import.Register")
            if sv.get("format") == "SignedData":
                continue
            try:
                value = float(sv["value"])
            except (TypeError, ValueError):
                LOG.warning("skipping a non-numeric meter value %r", sv.get("value"))
                continue
            uom = sv.get("unit_of_measure") or {}
            unit = sv.get("unit") or uom.get("unit") or _default_unit(measurand)
            value *= 10.0 ** uom.get("multiplier", 0)
            unit, scale = _UNIT_SCALE.get(unit, (unit, 1.0))
            out.append(MeterSample(at, evse_id, ocpp_tx_id, measurand, value * scale, unit,
                                   sv.get("phase"), sv.get("context")))
    return out


def _register_wh(samples: list[MeterSample]) -> float | None:
    """The last total ``Energy.Active.Import.Register`` of ``samples`` [Wh], if any."""
    values = [s.value for s in samples
              if s.measurand == "Energy.Active.Import.Register" and s.phase is None]
    return values[-1] if values else None


def _plain(data: Any) -> Any:
    """A response payload with Decimals (1.6 charging schedules) turned into floats, for JSON."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return float(data) if isinstance(data, Decimal) else data


def _wire(result: Any) -> dict:
    """A library call-result dataclass as the camelCase payload that was on the wire."""
    return _plain(snake_to_camel_case(remove_nones(serialize_as_dict(result))))


# --- handshake security ---------------------------------------------------------------------


class AuthThrottle:
    """Counts authentication failures per key (remote address or charge point id).

    ``limit`` failures within ``window_s`` block the key for ``backoff_s`` (wall seconds).
    """

    def __init__(self, limit: int = 5, window_s: float = 60.0, backoff_s: float = 300.0
                 ) -> None:
        self.limit, self.window_s, self.backoff_s = limit, window_s, backoff_s
        self._failures: dict[str, collections.deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def blocked(self, key: str) -> bool:
        """Whether ``key`` is in its back-off period."""
        until = self._blocked_until.get(key)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._blocked_until[key]
            return False
        return True

    def failure(self, key: str) -> None:
        """Count a failure; the ``limit``-th within the window starts the back-off."""
        now = time.monotonic()
        window = self._failures.setdefault(key, collections.deque())
        window.append(now)
        while window and window[0] <= now - self.window_s:
            window.popleft()
        if len(window) >= self.limit:
            self._blocked_until[key] = now + self.backoff_s
            window.clear()

    def success(self, key: str) -> None:
        """Forget the failures of ``key`` after a successful login."""
        self._failures.pop(key, None)


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [p for value in headers.get_all("Sec-WebSocket-Protocol")
            for p in parse_subprotocol(value)]


def _charge_point_id(path: str) -> str:
    """The charge point identity: the last segment of the URL path (OCPP-J 1.6 §3.1.1)."""
    return unquote(path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])


# --- the central system ---------------------------------------------------------------------


class CentralSystem:
    """The websocket server and the registry of connected stations.

    Parameters
    ----------
    store : Store
        Persistence; every station message is written before it is answered.
    depot : DepotController
        Receives the live events and drives the stations with profiles.
    clock : Clock
        Source of every timestamp (shared with the depot).
    heartbeat_s : int
        Heartbeat interval sent in the BootNotification reply [s].
    max_frame_bytes : int
        Largest message accepted [bytes].
    auth_failures, auth_window_s, auth_backoff_s
        Throttling of repeated authentication failures (see :class:`AuthThrottle`).
    call_timeout_s : float
        How long a call to a station waits for its answer [wall s].
    """

    def __init__(self, store: Store, depot: DepotController, clock: Clock, *,
                 heartbeat_s: int = HEARTBEAT_S, max_frame_bytes: int = MAX_FRAME_BYTES,
                 auth_failures: int = 5, auth_window_s: float = 60.0,
                 auth_backoff_s: float = 300.0, call_timeout_s: float = 30.0) -> None:
        self.store, self.depot, self.clock = store, depot, clock
        self.heartbeat_s = heartbeat_s
        self.max_frame_bytes = max_frame_bytes
        self.call_timeout_s = call_timeout_s
        self.throttle = AuthThrottle(auth_failures, auth_window_s, auth_backoff_s)
        self.stations: dict[str, Station] = {}
        # Password checks (scrypt: tens of ms and 16 MiB each) get a thread of their own: in a
        # login storm of hundreds of chargers they would otherwise fill the default pool and
        # hold up the store writes the connected chargers' replies wait for.
        self._auth_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="auth")

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None
                    ) -> Server:
        """Listen on ``host:port`` (port 0: any free port; see ``Server.sockets``)."""
        return await serve(self._handler, host, port, subprotocols=list(SUBPROTOCOLS),
                           process_request=self._process_request, max_size=self.max_frame_bytes,
                           compression=None, ssl=ssl_context)

    async def security_event(self, kind: str, detail: str, *, cp_id: str | None,
                             remote: str | None) -> None:
        """Write one entry of the security log (and the Python log)."""
        LOG.warning("security: %s cp=%s remote=%s: %s", kind, cp_id, remote, detail)
        await asyncio.to_thread(self.store.log_security_event, cp_id=cp_id, remote=remote,
                                kind=kind, detail=detail, at=self.clock.now())

    async def _reject(self, connection: ServerConnection, status: int, kind: str, detail: str,
                      *, cp_id: str, remote: str) -> Response:
        await self.security_event(kind, detail, cp_id=cp_id, remote=remote)
        response = connection.respond(status, f"{detail}\n")
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="fleetcharge", charset="UTF-8"'
        if status == 429:
            response.headers["Retry-After"] = str(int(self.throttle.backoff_s))
        return response

    async def _process_request(self, connection: ServerConnection, request: Request
                               ) -> Response | None:
        """Check auth, throttling, the charger id and the subprotocol before the upgrade."""
        cp_id = _charge_point_id(request.path)
        remote = str(connection.remote_address[0]) if connection.remote_address else "?"
        if self.throttle.blocked(remote) or self.throttle.blocked(cp_id):
            return await self._reject(connection, 429, "auth_throttled",
                                      "too many failed logins; retry later",
                                      cp_id=cp_id, remote=remote)
        try:
            username, password = parse_authorization_basic(request.headers["Authorization"])
        except (KeyError, InvalidHeader):
            username, password = None, None
        if username is None or username != cp_id or password is None or not (
                await asyncio.get_running_loop().run_in_executor(
                    self._auth_pool, self.store.verify_password, cp_id, password)):
            self.throttle.failure(remote)
            self.throttle.failure(cp_id)
            what = ("missing or malformed Basic credentials" if username is None else
                    "username does not match the URL" if username != cp_id else
                    "unknown charge point or wrong password")
            return await self._reject(connection, 401, "auth_failed", what,
                                      cp_id=cp_id, remote=remote)
        self.throttle.success(remote)
        self.throttle.success(cp_id)
        if not self.depot.has_charger(cp_id):
            return await self._reject(connection, 403, "unknown_charger",
                                      f"{cp_id} is not a charger of the depot scenario",
                                      cp_id=cp_id, remote=remote)
        offered = _offered_subprotocols(request.headers)
        if not set(offered) & set(SUBPROTOCOLS):
            return await self._reject(connection, 400, "bad_subprotocol",
                                      f"offered {offered or 'no subprotocol'}; expected one of "
                                      f"{', '.join(SUBPROTOCOLS)}", cp_id=cp_id, remote=remote)
        return None

    async def _handler(self, connection: ServerConnection) -> None:
        cp_id = _charge_point_id(connection.request.path)
        remote = str(connection.remote_address[0]) if connection.remote_address else "?"
        version = VERSION_OF_SUBPROTOCOL[connection.subprotocol]
        station = STATION_CLASSES[version](cp_id, connection, central=self)
        previous = self.stations.get(cp_id)
        if previous is not None:
            await previous.close("replaced by a new connection")
        self.stations[cp_id] = station
        try:
            await station.connected()
            await station.start()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                await self.security_event("oversize_frame",
                                          f"message over {self.max_frame_bytes} bytes refused",
                                          cp_id=cp_id, remote=remote)
        finally:
            station.cancel_tasks()
            if self.stations.get(cp_id) is station:
                del self.stations[cp_id]
                self.depot.station_offline(cp_id)


# --- stations: one class per OCPP version ---------------------------------------------------


@dataclass
class _OpenTx:
    ocpp_tx_id: str
    max_schedule_tuples: int | None = None


class Station:
    """Version-neutral half of a connected station (mixed into the library's ChargePoint).

    The depot drives it through :meth:`push_profile` and :meth:`composite_schedule`; it is
    ``ready`` once its rate unit and period limit are known.
    """

    version: str
    _ack_actions: frozenset[str] = frozenset()
    _known_actions: frozenset[str] = frozenset()
    # provided by the ocpp ChargePoint base class
    id: str
    route_map: dict
    _call: Any
    _call_result: Any
    _ocpp_version: str

    def __init__(self, cp_id: str, connection: ServerConnection, *, central: CentralSystem
                 ) -> None:
        timeout_s = central.call_timeout_s
        super().__init__(cp_id, connection, response_timeout=timeout_s)  # type: ignore[call-arg]
        self.central = central
        self.store, self.depot, self.clock = central.store, central.depot, central.clock
        self.charger: Charger = self.depot.charger(cp_id)
        self.connection = connection
        self.rate_unit = "W" if self.charger.current_type == "DC" else "A"
        self.max_periods = DEFAULT_MAX_PERIODS
        self.ready = False
        self._open: dict[int, _OpenTx] = {}
        self._tasks: set[asyncio.Task] = set()
        for action in self._ack_actions:
            self.route_map.setdefault(action, {"_on_action": self._acknowledge(action)})

    # -- plumbing --

    def _acknowledge(self, action: str) -> Callable[..., Any]:
        result = getattr(self._call_result, action)
        return lambda **_: result()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Log frames that are not OCPP-J messages (the library drops them silently: without
        a message id there is nothing to answer, OCPP-J 1.6 §4.2.3), then route the rest."""
        try:
            unpack(raw_msg)
        except OCPPError as error:
            await self._security_event("malformed_frame",
                                       f"{type(error).__name__}: {error.description}")
            return
        await super().route_message(raw_msg)  # type: ignore[misc]

    async def _security_event(self, kind: str, detail: str) -> None:
        remote = self.connection.remote_address
        await self.central.security_event(kind, detail, cp_id=self.id,
                                          remote=str(remote[0]) if remote else None)

    async def _handle_call(self, msg: Any) -> Any:
        if msg.action not in self.route_map:  # OCPP-J 1.6 §4.2.3 / 2.x Part 4 §4.3
            if msg.action in self._known_actions:
                raise OCPPNotSupported(details={"cause": f"{msg.action} is not handled"})
            raise OCPPNotImplemented(details={"cause": f"{msg.action} is not an OCPP "
                                                       f"{self.version} action"})
        try:
            return await super()._handle_call(msg)  # type: ignore[misc]
        except OCPPError as error:
            await self._security_event(
                "invalid_message", f"{msg.action}: {type(error).__name__}: {error.description}")
            raise

    async def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call in a worker thread (the event loop never blocks)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_tasks(self) -> None:
        """Cancel the calls this station still has in flight (it disconnected)."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self, reason: str) -> None:
        """Close the websocket (another connection took over the identity)."""
        self.cancel_tasks()
        await self.connection.close(CloseCode.POLICY_VIOLATION, reason)

    def now(self) -> pd.Timestamp:
        """Current (simulated) time from the shared clock."""
        return self.clock.now()

    async def connected(self) -> None:
        """Restore what the store knows about a (re)connecting station."""
        at = self.now()
        record = await self._write(self.store.charge_point, self.id)
        await self._write(self.store.record_seen, self.id, at)
        open_txs = await self._write(self.store.open_transactions)
        for tx in open_txs:
            if tx.charge_point_id == self.id:
                self._open[tx.evse_id] = _OpenTx(tx.ocpp_tx_id)
        if record is not None and record.rate_units:
            self._set_capabilities(record.rate_units, record.max_periods)
            self.ready = True
            self.depot.station_ready(self)

    def _set_capabilities(self, rate_units: str, max_periods: int | None) -> None:
        units = set(rate_units.split(","))
        self.rate_unit = "W" if "W" in units else "A"  # the server prefers W when allowed
        self.max_periods = max_periods or DEFAULT_MAX_PERIODS

    def max_periods_for(self, ocpp_tx_id: str) -> int:
        """Periods allowed in this transaction's TxProfile: the station limit and the EV's
        ``maxScheduleTuples`` (NotifyEVChargingNeeds, 2.x K15)."""
        tuples = [o.max_schedule_tuples for o in self._open.values()
                  if o.ocpp_tx_id == ocpp_tx_id and o.max_schedule_tuples]
        return min([self.max_periods, *tuples])

    def has_transaction(self, ocpp_tx_id: str) -> bool:
        """Whether ``ocpp_tx_id`` is running on this station (as far as it told us)."""
        return any(o.ocpp_tx_id == ocpp_tx_id for o in self._open.values())

    # -- calls to the station --

    async def _request(self, action: str, payload: dict) -> Any:
        """Send a wire-format (camelCase) request; raise on CALLERROR or timeout."""
        message = getattr(self._call, action)(**camel_to_snake_case(payload))
        return await self.call(message, suppress=False)  # type: ignore[attr-defined]

    async def push_profile(self, payload: dict, *, purpose: str, evse_id: int,
                           ocpp_tx_id: str | None = None,
                           composite_duration_s: int | None = None) -> ProfileAnswer:
        """Send a SetChargingProfile payload, recording it and its answer in the store.

        With ``composite_duration_s`` an accepted profile is verified with GetCompositeSchedule
        (1.6 §5.7 / 2.x K08) and the station's composite is stored with the answer. The
        exchange is a task of this station, so it ends when the station disconnects.
        """
        row = await self._write(self.store.record_profile_sent, self.id, evse_id=evse_id,
                                ocpp_tx_id=ocpp_tx_id, purpose=purpose, profile=payload,
                                sent_at=self.now())
        exchange = self._spawn(self._exchange(payload, evse_id, composite_duration_s))
        try:
            answer = await exchange
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves
            answer = ProfileAnswer("no answer: disconnected")
        if answer.status != "Accepted":
            LOG.warning("%s for %s not accepted: %s", purpose, self.id, answer.status)
        await self._write(self.store.record_profile_answer, row, status=answer.status,
                          answered_at=self.now(), composite=answer.composite)
        return answer

    async def _exchange(self, payload: dict, evse_id: int, composite_duration_s: int | None
                        ) -> ProfileAnswer:
        try:
            status = str((await self._request("SetChargingProfile", payload)).status)
        except OCPPError as exc:
            return ProfileAnswer(f"CallError {exc.code}"[:32])
        except (TimeoutError, ConnectionClosed) as exc:
            return ProfileAnswer(f"no answer: {type(exc).__name__}"[:32])
        composite = None
        if status == "Accepted" and composite_duration_s:
            try:
                composite = await self.composite_schedule(evse_id, composite_duration_s)
            except (OCPPError, TimeoutError, ConnectionClosed) as exc:
                LOG.warning("GetCompositeSchedule of %s failed: %r", self.id, exc)
        return ProfileAnswer(status, composite)

    async def composite_schedule(self, evse_id: int, duration_s: int) -> dict | None:
        """The station's composite schedule (wire format), or None if it is not Accepted."""
        request = profiles.composite_request(version=self.version, evse_id=evse_id,
                                             duration_s=duration_s, rate_unit=self.rate_unit)
        result = await self._request("GetCompositeSchedule", request)
        return _wire(result) if str(result.status) == "Accepted" else None

    async def _configure(self) -> None:
        """After boot: read capabilities, then set the TxDefault and station max profiles."""
        try:
            rate_units, max_periods = await self._read_capabilities()
            await self._write(self.store.set_capabilities, self.id, rate_units=rate_units,
                              max_periods=max_periods)
            self._set_capabilities(rate_units, max_periods)
            site_kw = self.depot.scenario.site.service_limit_kw
            default = profiles.tx_default_profile(
                version=self.version, charger=self.charger, rate_unit=self.rate_unit,
                profile_id=TX_DEFAULT_PROFILE_ID, stack_level=0)
            await self.push_profile(default, purpose="TxDefaultProfile", evse_id=0)
            maximum = profiles.station_max_profile(
                min(self.charger.max_kw, site_kw), version=self.version, charger=self.charger,
                rate_unit=self.rate_unit, profile_id=STATION_MAX_PROFILE_ID)
            purpose = "ChargePointMaxProfile" if self.version == "1.6" else (
                "ChargingStationMaxProfile")
            await self.push_profile(maximum, purpose=purpose, evse_id=0)
        except (OCPPError, TimeoutError, ConnectionClosed) as exc:
            LOG.error("configuring %s after boot failed: %r", self.id, exc)
            return
        self.ready = True
        self.depot.station_ready(self)

    async def _read_capabilities(self) -> tuple[str, int | None]:
        raise NotImplementedError  # each version reads its own keys

    # -- shared handler bodies --

    async def _boot(self, vendor: str, model: str, firmware: str | None) -> Any:
        await self._write(self.store.record_boot, self.id, ocpp_version=self.version,
                          vendor=vendor, model=model, firmware=firmware, at=self.now())
        return self._call_result.BootNotification(
            current_time=iso_utc(self.now()), interval=self.central.heartbeat_s,
            status="Accepted")

    async def _heartbeat(self) -> Any:
        await self._write(self.store.record_seen, self.id, self.now())
        return self._call_result.Heartbeat(current_time=iso_utc(self.now()))

    async def _status(self, evse_id: int, connector_id: int, status: str,
                      error_code: str | None, at: pd.Timestamp) -> Any:
        await self._write(self.store.set_connector_status, self.id, evse_id, connector_id,
                          str(status), error_code, at=at)
        self.depot.connector_status(self.id, evse_id, str(status))
        return self._call_result.StatusNotification()

    def _start_records(self, *, evse_id: int, connector_id: int, ocpp_tx_id: str | None,
                       id_tag: str | None, meter_start_wh: float | None,
                       started_at: pd.Timestamp, samples: list[MeterSample]
                       ) -> TransactionRecord:
        """Blocking: a transaction with its vehicle, needs and first meter samples.

        ``meter_start_wh`` is 1.6's meterStart (also stored as a Transaction.Begin sample); a
        2.x Started event carries the register in its ``samples``, if at all.
        """
        vehicle = id_tag if id_tag is not None and self.depot.knows_vehicle(id_tag) else None
        start_wh = meter_start_wh if meter_start_wh is not None else _register_wh(samples)
        tx = self.store.start_transaction(
            self.id, evse_id=evse_id, connector_id=connector_id, ocpp_tx_id=ocpp_tx_id,
            id_tag=id_tag, meter_start_wh=start_wh or 0.0, started_at=started_at,
            vehicle_id=vehicle)
        if vehicle is not None and tx.needs_source is None:
            needs = self.depot.needs_at_start(vehicle, started_at)
            self.store.set_needs(self.id, tx.ocpp_tx_id, vehicle_id=vehicle,
                                 departure_at=needs.departure_at,
                                 energy_needed_kwh=needs.energy_kwh, source=needs.source)
        begin = [] if meter_start_wh is None else [MeterSample(
            started_at, evse_id, tx.ocpp_tx_id, "Energy.Active.Import.Register", meter_start_wh,
            "Wh", None, "Transaction.Begin")]
        self.store.add_meter_values(self.id, begin + [
            MeterSample(s.timestamp, s.evse_id, tx.ocpp_tx_id, s.measurand, s.value, s.unit,
                        s.phase, s.context) for s in samples])
        return self.store.transaction(self.id, tx.ocpp_tx_id) or tx

    def _stop_records(self, ocpp_tx_id: str, *, meter_stop_wh: float | None,
                      stopped_at: pd.Timestamp, reason: str | None, evse_id: int,
                      samples: list[MeterSample]) -> TransactionRecord | None:
        """Blocking: the last meter samples and the end of a transaction.

        ``meter_stop_wh`` is 1.6's meterStop (also stored as a Transaction.End sample); for a
        2.x Ended event it is the register in ``samples``, else the last one stored.
        """
        end = [] if meter_stop_wh is None else [MeterSample(
            stopped_at, evse_id, ocpp_tx_id, "Energy.Active.Import.Register", meter_stop_wh,
            "Wh", None, "Transaction.End")]
        self.store.add_meter_values(self.id, samples + end)
        tx = self.store.transaction(self.id, ocpp_tx_id)
        if tx is None:
            return None
        stop_wh = meter_stop_wh if meter_stop_wh is not None else _register_wh(samples)
        if stop_wh is None:
            registers = self.store.meter_values(self.id, since=tx.started_at,
                                                measurand="Energy.Active.Import.Register")
            mine = registers[(registers["ocpp_tx_id"] == ocpp_tx_id) & registers["phase"].isna()]
            stop_wh = float(mine["value"].iloc[-1]) if len(mine) else tx.meter_start_wh
        return self.store.stop_transaction(self.id, ocpp_tx_id, meter_stop_wh=stop_wh,
                                           stopped_at=stopped_at, reason=reason)

    async def _meter(self, samples: list[MeterSample]) -> None:
        if samples:
            await self._write(self.store.add_meter_values, self.id, samples)
            self.depot.meter_reading(self.id, samples)

    def _id_status(self, id_tag: str | None) -> str:
        """Authorisation of a vehicle id (conventions: the scenario's vehicle ids)."""
        return "Accepted" if id_tag is not None and self.depot.knows_vehicle(id_tag) else "Invalid"

    def _tx_of_evse(self, evse_id: int) -> str | None:
        open_tx = self._open.get(evse_id)
        return open_tx.ocpp_tx_id if open_tx else None


class Station16(Station, v16.ChargePoint):
    """OCPP 1.6J station (handlers per OCPP 1.6 edition 2 chapter 4)."""

    version = "1.6"
    _ack_actions = _ACK_16
    _known_actions = frozenset(a.value for a in v16.enums.Action)

    async def _read_capabilities(self) -> tuple[str, int | None]:
        keys = ["ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods"]
        result = await self._request("GetConfiguration", {"key": keys})
        values = {k["key"]: k.get("value") for k in result.configuration_key or []}
        allowed = (values.get(keys[0]) or "").replace(" ", "").split(",")
        units = [u for name, u in (("Current", "A"), ("Power", "W")) if name in allowed]
        if not units:
            units = ["W" if self.charger.current_type == "DC" else "A"]
        periods = values.get(keys[1])
        return ",".join(units), int(periods) if periods else None

    @on("BootNotification")
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str,
                      firmware_version: str | None = None, **_: Any) -> Any:
        return await self._boot(charge_point_vendor, charge_point_model, firmware_version)

    @after("BootNotification")
    def after_boot(self, **_: Any) -> None:
        self._spawn(self._configure())

    @on("Heartbeat")
    async def on_heartbeat(self, **_: Any) -> Any:
        return await self._heartbeat()

    @on("StatusNotification")
    async def on_status(self, connector_id: int, error_code: str, status: str,
                        timestamp: str | None = None, **_: Any) -> Any:
        at = parse_time(timestamp) if timestamp else self.now()
        return await self._status(connector_id, connector_id, status, error_code, at)

    @on("Authorize")
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return v16.call_result.Authorize(id_tag_info={"status": self._id_status(id_tag)})

    @on("StartTransaction")
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                       **_: Any) -> Any:
        tx = await self._write(self._start_records, evse_id=connector_id,
                               connector_id=connector_id, ocpp_tx_id=None, id_tag=id_tag,
                               meter_start_wh=float(meter_start), started_at=parse_time(timestamp),
                               samples=[])
        self._open[connector_id] = _OpenTx(tx.ocpp_tx_id)
        self.depot.transaction_started(self.id, tx)
        return v16.call_result.StartTransaction(
            transaction_id=int(tx.ocpp_tx_id), id_tag_info={"status": self._id_status(id_tag)})

    @on("StopTransaction")
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int,
                      reason: str | None = None, id_tag: str | None = None,
                      transaction_data: list | None = None, **_: Any) -> Any:
        tx_id = str(transaction_id)
        evse_id = next((e for e, o in self._open.items() if o.ocpp_tx_id == tx_id), 1)
        samples = meter_samples(transaction_data or [], evse_id=evse_id, ocpp_tx_id=tx_id)
        tx = await self._write(self._stop_records, tx_id, meter_stop_wh=float(meter_stop),
                               stopped_at=parse_time(timestamp), reason=reason, evse_id=evse_id,
                               samples=samples)
        self._open.pop(evse_id, None)
        if tx is None:
            LOG.warning("%s stopped unknown transaction %s", self.id, tx_id)
        else:
            self.depot.transaction_stopped(self.id, tx)
        if id_tag is None:
            return v16.call_result.StopTransaction()
        return v16.call_result.StopTransaction(id_tag_info={"status": self._id_status(id_tag)})

    @on("MeterValues")
    async def on_meter_values(self, connector_id: int, meter_value: list,
                              transaction_id: int | None = None, **_: Any) -> Any:
        tx_id = str(transaction_id) if transaction_id is not None else self._tx_of_evse(
            connector_id)
        await self._meter(meter_samples(meter_value, evse_id=connector_id, ocpp_tx_id=tx_id))
        return v16.call_result.MeterValues()

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return v16.call_result.DataTransfer(status="UnknownVendorId")


class _Station2x(Station):
    """Handlers shared by OCPP 2.0.1 and 2.1 (2.0.1 Part 2 use cases B, E, G, J, K)."""

    async def _read_capabilities(self) -> tuple[str, int | None]:
        names = ["RateUnit", "PeriodsPerSchedule"]
        result = await self._request("GetVariables", {"getVariableData": [
            {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": n}}
            for n in names]})
        values = {r["variable"]["name"]: r.get("attribute_value")
                  for r in result.get_variable_result if r["attribute_status"] == "Accepted"}
        units = [u for u in ("A", "W") if u in (values.get("RateUnit") or "").split(",")]
        if not units:
            units = ["W" if self.charger.current_type == "DC" else "A"]
        periods = values.get("PeriodsPerSchedule")
        return ",".join(units), int(periods) if periods else None

    @on("BootNotification")
    async def on_boot(self, charging_station: dict, reason: str, **_: Any) -> Any:
        return await self._boot(charging_station["vendor_name"], charging_station["model"],
                                charging_station.get("firmware_version"))

    @after("BootNotification")
    def after_boot(self, **_: Any) -> None:
        self._spawn(self._configure())

    @on("Heartbeat")
    async def on_heartbeat(self, **_: Any) -> Any:
        return await self._heartbeat()

    @on("StatusNotification")
    async def on_status(self, timestamp: str, connector_status: str, evse_id: int,
                        connector_id: int, **_: Any) -> Any:
        return await self._status(evse_id, connector_id, connector_status, None,
                                  parse_time(timestamp))

    @on("Authorize")
    def on_authorize(self, id_token: dict, **_: Any) -> Any:
        status = self._id_status(id_token["id_token"])
        return self._call_result.Authorize(id_token_info={"status": status})

    @on("TransactionEvent")
    async def on_transaction_event(self, event_type: str, timestamp: str, transaction_info: dict,
                                   evse: dict | None = None, id_token: dict | None = None,
                                   meter_value: list | None = None, **_: Any) -> Any:
        tx_id = str(transaction_info["transaction_id"])
        at = parse_time(timestamp)
        known_evse = next((e for e, o in self._open.items() if o.ocpp_tx_id == tx_id), None)
        evse_id = evse["id"] if evse else (known_evse or 1)
        connector_id = evse.get("connector_id", 1) if evse else 1
        id_tag = id_token["id_token"] if id_token else None
        samples = meter_samples(meter_value or [], evse_id=evse_id, ocpp_tx_id=tx_id)
        if known_evse is None and str(event_type) in ("Started", "Updated"):
            tx = await self._write(self._start_records, evse_id=evse_id,
                                   connector_id=connector_id, ocpp_tx_id=tx_id, id_tag=id_tag,
                                   meter_start_wh=None, started_at=at, samples=samples)
            self._open[evse_id] = _OpenTx(tx_id)
            self.depot.transaction_started(self.id, tx)
        elif str(event_type) == "Ended":
            tx = await self._write(self._stop_records, tx_id, meter_stop_wh=None, stopped_at=at,
                                   reason=transaction_info.get("stopped_reason"),
                                   evse_id=evse_id, samples=samples)
            self._open.pop(evse_id, None)
            if tx is not None:
                self.depot.transaction_stopped(self.id, tx)
        else:
            if id_tag is not None and await self._write(self._identify, tx_id, id_tag):
                self.depot.needs_changed(self.id, tx_id)  # authorised after the start (E03)
            await self._meter(samples)
        if id_tag is None:
            return self._call_result.TransactionEvent()
        return self._call_result.TransactionEvent(
            id_token_info={"status": self._id_status(id_tag)})

    def _identify(self, ocpp_tx_id: str, id_tag: str) -> bool:
        """Blocking: attach a vehicle to a running transaction that had none (True if done)."""
        tx = self.store.transaction(self.id, ocpp_tx_id)
        if tx is None or tx.vehicle_id is not None or not self.depot.knows_vehicle(id_tag):
            return False
        needs = self.depot.needs_at_start(id_tag, tx.started_at)
        self.store.set_needs(self.id, ocpp_tx_id, vehicle_id=id_tag,
                             departure_at=needs.departure_at, energy_needed_kwh=needs.energy_kwh,
                             source=needs.source)
        return True

    @on("MeterValues")
    async def on_meter_values(self, evse_id: int, meter_value: list, **_: Any) -> Any:
        samples = meter_samples(meter_value, evse_id=evse_id, ocpp_tx_id=self._tx_of_evse(evse_id))
        await self._meter(samples)
        return self._call_result.MeterValues()

    @on("NotifyEVChargingNeeds")
    async def on_charging_needs(self, evse_id: int, charging_needs: dict,
                                max_schedule_tuples: int | None = None, **_: Any) -> Any:
        """Departure time and energy of the EV become the session's target (2.x K15)."""
        open_tx = self._open.get(evse_id)
        if open_tx is None:
            return self._call_result.NotifyEVChargingNeeds(status="Rejected")
        params = (charging_needs.get("ac_charging_parameters")
                  or charging_needs.get("dc_charging_parameters") or {})
        energy_wh = params.get("energy_amount")
        if energy_wh is None:
            energy_wh = (charging_needs.get("v2x_charging_parameters") or {}).get(
                "ev_target_energy_request")
        departure = charging_needs.get("departure_time")
        await self._write(self.store.set_needs, self.id, open_tx.ocpp_tx_id,
                          departure_at=parse_time(departure) if departure else None,
                          energy_needed_kwh=None if energy_wh is None else energy_wh / 1000.0,
                          source="NotifyEVChargingNeeds")
        open_tx.max_schedule_tuples = max_schedule_tuples
        self.depot.needs_changed(self.id, open_tx.ocpp_tx_id)
        return self._call_result.NotifyEVChargingNeeds(status="Accepted")

    @on("NotifyEVChargingSchedule")
    def on_ev_schedule(self, **_: Any) -> Any:
        return self._call_result.NotifyEVChargingSchedule(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return self._call_result.DataTransfer(status="UnknownVendorId")


class Station201(_Station2x, v201.ChargePoint):
    """OCPP 2.0.1 station."""

    version = "2.0.1"
    _ack_actions = _ACK_201
    _known_actions = frozenset(a.value for a in v201.enums.Action)


class Station21(_Station2x, v21.ChargePoint):
    """OCPP 2.1 station (unhandled actions get a NotSupported CALLERROR, not silence)."""

    version = "2.1"
    _ack_actions = _ACK_21
    _known_actions = frozenset(a.value for a in v21.enums.Action)


STATION_CLASSES: dict[str, type[Station]] = {"1.6": Station16, "2.0.1": Station201,
                                             "2.1": Station21}
