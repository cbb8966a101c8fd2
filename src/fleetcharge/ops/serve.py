"""``fleetcharge serve``: the central system, the depot controller and the REST API in one loop.

:class:`DepotServer` starts the OCPP websocket server (:mod:`fleetcharge.ops.csms`), the
:class:`~fleetcharge.ops.depot.DepotController` and a ``uvicorn.Server`` for the REST API
(:mod:`fleetcharge.ops.api`) on one asyncio event loop; :func:`run_serve` is what the CLI calls.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pandas as pd
import uvicorn
from websockets.asyncio.server import Server

from fleetcharge.domain import Scenario
from fleetcharge.dr.events import DREvent
from fleetcharge.dr.planning import decide_live
from fleetcharge.dr.ven import FleetVEN
from fleetcharge.errors import InputError
from fleetcharge.ops.api import create_app
from fleetcharge.ops.clock import Clock
from fleetcharge.ops.csms import CentralSystem, server_ssl_context
from fleetcharge.ops.depot import DEPARTURE_GUARD, DepotController, Planner
from fleetcharge.ops.store import Store
from fleetcharge.scenario import load_scenario
from fleetcharge.strategies.rolling import replan

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class VENSettings:
    """How ``serve`` takes part in a utility's demand response over OpenADR 2.0b.

    ``program`` names the DR program events are judged under (a preset or one of the
    scenario's ``dr`` programs); ``simple_level_kw`` maps SIMPLE signal levels 1–3 to the site
    import limit they ask for [kW]. Without ``cert``/``key`` messages are not signed (plain
    loopback or a VTN that does not ask for signatures).
    """

    vtn_url: str
    ven_name: str
    program: str
    simple_level_kw: Mapping[int, float] = field(default_factory=dict)
    cert: str | None = None
    key: str | None = None
    vtn_fingerprint: str | None = None
    ca_file: str | None = None


class DepotServer:
    """Everything ``fleetcharge serve`` runs, as an async context manager.

    Parameters
    ----------
    scenario : Scenario
        The depot.
    store : Store
        Open store (the caller closes it).
    clock : Clock
        Shared time source.
    ocpp_host, ocpp_port : str, int
        Websocket listen address (port 0: any free port, see :attr:`ocpp_port` after start).
    http_host, http_port : str, int
        REST listen address (port 0 allowed).
    ssl_context : ssl.SSLContext, optional
        TLS for the websocket server (security profile 2).
    planner : callable
        Re-plan function (default ``rolling.replan``).
    replan_timeout_s, debounce_s : float
        See :class:`~fleetcharge.ops.depot.DepotController`.
    departure_guard : pandas.Timedelta
        Plans finish each vehicle this much before its departure (default
        :data:`~fleetcharge.ops.depot.DEPARTURE_GUARD`, 5 minutes).
    ven : VENSettings, optional
        Join a VTN: events are decided by :func:`fleetcharge.dr.planning.decide_live` on the
        live state (never at the cost of a departure), accepted ones enter every re-plan and
        so the stations' profiles.
    **central_options
        Passed to :class:`~fleetcharge.ops.csms.CentralSystem` (heartbeat, limits, throttling).
    """

    def __init__(self, scenario: Scenario, store: Store, clock: Clock, *,
                 ocpp_host: str = "0.0.0.0", ocpp_port: int = 9000,
                 http_host: str = "127.0.0.1", http_port: int = 8000,
                 ssl_context: ssl.SSLContext | None = None, planner: Planner = replan,
                 replan_timeout_s: float = 60.0, debounce_s: float = 1.0,
                 departure_guard: pd.Timedelta = DEPARTURE_GUARD,
                 ven: VENSettings | None = None, **central_options: Any) -> None:
        self.depot = DepotController(scenario, store, clock, planner=planner,
                                     replan_timeout_s=replan_timeout_s, debounce_s=debounce_s,
                                     departure_guard=departure_guard)
        self.central = CentralSystem(store, self.depot, clock, **central_options)
        self.app = create_app(self.depot, self.central)
        self._ocpp_address = (ocpp_host, ocpp_port)
        self._http_address = (http_host, http_port)
        self._ssl = ssl_context
        self._ws: Server | None = None
        self._http: uvicorn.Server | None = None
        self._http_task: asyncio.Task | None = None
        self.ocpp_port = ocpp_port
        self.http_port = http_port
        self.clock = clock
        self.ven: FleetVEN | None = None
        self._ven_settings = ven

    async def __aenter__(self) -> Self:
        await self.depot.start()
        self._ws = await self.central.start(*self._ocpp_address, ssl_context=self._ssl)
        self.ocpp_port = self._ws.sockets[0].getsockname()[1]
        config = uvicorn.Config(self.app, host=self._http_address[0],
                                port=self._http_address[1], lifespan="off",
                                log_level="warning")
        self._http = uvicorn.Server(config)
        self._http_task = asyncio.create_task(self._http.serve())
        while not self._http.started:
            if self._http_task.done():
                await self._http_task
                raise OSError(f"the REST API could not listen on "
                              f"{self._http_address[0]}:{self._http_address[1]}")
            await asyncio.sleep(0.01)
        self.http_port = self._http.servers[0].sockets[0].getsockname()[1]
        LOG.info("OCPP on %s://%s:%d, REST on http://%s:%d", "wss" if self._ssl else "ws",
                 self._ocpp_address[0], self.ocpp_port, self._http_address[0], self.http_port)
        if self._ven_settings is not None:
            await self._start_ven(self._ven_settings)
        return self

    async def _start_ven(self, v: VENSettings) -> None:
        async def decide(event: DREvent) -> tuple[bool, str]:
            state, now = await asyncio.to_thread(self.depot.live_state)
            decision = await asyncio.to_thread(decide_live, state, event, now)
            LOG.info("demand response %s: %s", event.event_id, decision.reason)
            return decision.participate, decision.reason

        self.ven = FleetVEN(v.ven_name, v.vtn_url, decide=decide,
                            on_events_changed=self.depot.set_dr_events, program=v.program,
                            simple_level_kw=v.simple_level_kw, site_kw=self.depot.site_kw,
                            clock=self.clock, cert=v.cert,
                            key=v.key, vtn_fingerprint=v.vtn_fingerprint, ca_file=v.ca_file,
                            disable_signature=v.cert is None)
        await self.ven.start()
        LOG.info("OpenADR VEN %s registered with %s", v.ven_name, v.vtn_url)

    async def wait(self) -> None:
        """Run until the REST server stops (SIGINT/SIGTERM, handled by uvicorn)."""
        assert self._http_task is not None
        await self._http_task

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.ven is not None:
            await self.ven.stop()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        await self.depot.stop()


async def serve(scenario: Scenario, store: Store, clock: Clock, **options: Any) -> None:
    """Run the live depot until interrupted (see :class:`DepotServer` for ``options``)."""
    async with DepotServer(scenario, store, clock, **options) as server:
        await server.wait()


def run_serve(scenario_path: str | Path, *, db_url: str, ocpp_host: str = "0.0.0.0",
              ocpp_port: int = 9000, http_host: str = "127.0.0.1", http_port: int = 8000,
              tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
              speed: float = 1.0, start: str | None = None,
              replan_timeout_s: float = 60.0, ven: VENSettings | None = None,
              start_epoch: float | None = None) -> None:
    """What ``fleetcharge serve SCENARIO.yaml`` does: load, open the store, serve until Ctrl+C.

    Parameters
    ----------
    scenario_path : str or Path
        Scenario YAML (chargers = OCPP identities, fleet, expected sessions, tariff).
    db_url : str
        Store URL (``sqlite:///fleetcharge.db`` or ``postgresql+psycopg://…``).
    ocpp_host, ocpp_port, http_host, http_port
        Listen addresses of the OCPP websocket server and the REST API.
    tls_cert, tls_key : path, optional
        PEM certificate and key: serve ``wss://`` (OCPP security profile 2). Both or neither.
    speed : float
        Simulated seconds per real second (share it with ``fleetcharge simulate-depot``).
    start : str, optional
        Simulated start time (ISO 8601); default: now.
    start_epoch : float, optional
        Unix time at which the clock reads ``start`` (default: when this starts); give the
        simulator the same to keep both clocks in step.
    replan_timeout_s : float
        Wall seconds a re-plan may take before the last good plan is kept.
    ven : VENSettings, optional
        Take part in demand response through this OpenADR 2.0b VTN.

    Raises
    ------
    InputError
        A bad scenario, database URL, TLS file pair or clock setting.
    """
    if (tls_cert is None) != (tls_key is None):
        raise InputError("give both --tls-cert and --tls-key (PEM files) or neither",
                         location="--tls-cert/--tls-key")
    try:
        clock = Clock(None if start is None else pd.Timestamp(start), speed, start_epoch)
    except ValueError as exc:
        raise InputError(f"{exc}; give --speed > 0 and --start as ISO 8601, e.g. "
                         "2025-03-03T17:00-08:00", location="--speed/--start") from None
    context = None
    if tls_cert is not None and tls_key is not None:
        try:
            context = server_ssl_context(str(tls_cert), str(tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise InputError(f"cannot load the TLS certificate/key: {exc}; give PEM files",
                             file=str(tls_cert), location="--tls-cert/--tls-key") from None
    scenario = load_scenario(scenario_path)
    store = Store.open(db_url)
    logging.getLogger("ocpp").setLevel(logging.WARNING)  # it logs every frame at INFO
    try:
        asyncio.run(serve(scenario, store, clock, ocpp_host=ocpp_host, ocpp_port=ocpp_port,
                          http_host=http_host, http_port=http_port, ssl_context=context,
                          replan_timeout_s=replan_timeout_s, ven=ven))
    except KeyboardInterrupt:
        LOG.info("stopped")
    finally:
        store.close()
