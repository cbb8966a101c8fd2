"""REST API of the live depot (FastAPI): health, chargers, sessions, the plan, re-plans.

Routes (all JSON, timestamps ISO 8601 UTC):

- ``GET /api/health`` — liveness plus planner counters;
- ``GET /api/chargers`` — registered charge points from the store with their live connection
  state and connector statuses;
- ``GET /api/sessions`` — open transactions: vehicle, departure, target, SoC, energy;
- ``PATCH /api/sessions/{vehicle_id}`` ``{"departure": ISO, "target_soc": 0–1}`` — a dispatcher
  changes a plugged-in vehicle's departure and/or target; triggers a re-plan;
- ``GET /api/plan`` — the last good plan: site kW per step and kW per session;
- ``POST /api/replan`` — ask for a re-plan now (202).

Invalid input gets 422 with a message naming the field, what is wrong and the fix. The routes
run on the same event loop as the central system; store reads run in worker threads.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from fleetcharge.ops.depot import DepotController, SessionView

if TYPE_CHECKING:
    from fleetcharge.ops.csms import CentralSystem


class SessionPatch(BaseModel):
    """A dispatcher's change to a plugged-in vehicle's session."""

    model_config = ConfigDict(extra="forbid")

    departure: AwareDatetime | None = Field(
        None, description="New departure, ISO 8601 with a UTC offset (e.g. 2025-03-04T06:00Z)")
    target_soc: float | None = Field(None, ge=0.0, le=1.0,
                                     description="SOC wanted at departure, a fraction 0–1")

    @model_validator(mode="after")
    def _something(self) -> SessionPatch:
        if self.departure is None and self.target_soc is None:
            raise ValueError("give departure and/or target_soc")
        return self


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else pd.Timestamp(ts).tz_convert("UTC").isoformat()


def session_json(view: SessionView) -> dict[str, Any]:
    """A :class:`SessionView` as JSON (SOC fractions, energies in kWh)."""
    return {"vehicle_id": view.vehicle_id, "charger_id": view.charger_id,
            "transaction_id": view.ocpp_tx_id, "started_at": _iso(view.started_at),
            "departure": _iso(view.departure_at), "target_soc": view.target_soc,
            "soc": view.soc, "soc_measured": view.soc_measured,
            "delivered_kwh": view.delivered_kwh, "remaining_kwh": view.remaining_kwh,
            "needs_source": view.needs_source}


def create_app(depot: DepotController, central: CentralSystem) -> FastAPI:
    """The FastAPI application serving ``depot`` and the stations of ``central``."""
    app = FastAPI(title="fleetcharge depot", version="1")
    store = depot.store

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "time": _iso(depot.clock.now()),
                "stations_connected": len(central.stations), "replans": depot.replans,
                "planner_failures": depot.failures, "last_error": depot.last_error,
                "replan_pending": depot.busy,
                "last_plan_at": _iso(depot.last.made_at) if depot.last else None}

    @app.get("/api/chargers")
    async def chargers() -> list[dict[str, Any]]:
        records = await asyncio.to_thread(store.charge_points)
        statuses = await asyncio.to_thread(store.connector_statuses)
        out = []
        for r in records:
            station = central.stations.get(r.id)
            out.append({
                "id": r.id, "in_scenario": depot.has_charger(r.id),
                "connected": station is not None,
                "ready": bool(station and station.ready),
                "ocpp_version": r.ocpp_version, "vendor": r.vendor, "model": r.model,
                "firmware": r.firmware, "last_seen_at": _iso(r.last_seen_at),
                "boot_at": _iso(r.boot_at), "rate_units": r.rate_units,
                "max_periods": r.max_periods,
                "connectors": [{"evse_id": s["evse"], "connector_id": s["connector"],
                                "status": s["status"], "error_code": s["error_code"],
                                "updated_at": _iso(s["updated_at"])}
                               for s in statuses if s["cp"] == r.id],
            })
        return out

    @app.get("/api/sessions")
    async def sessions() -> list[dict[str, Any]]:
        return [session_json(v) for v in await depot.sessions()]

    @app.patch("/api/sessions/{vehicle_id}")
    async def patch_session(vehicle_id: str, change: SessionPatch) -> dict[str, Any]:
        departure = None if change.departure is None else pd.Timestamp(change.departure)
        now = depot.clock.now()
        if departure is not None and departure <= now:
            raise HTTPException(422, f"departure {departure.isoformat()} is not after the "
                                     f"depot's current time {now.isoformat()}; give a future "
                                     "time")
        try:
            view = await depot.update_session(vehicle_id, departure_at=departure,
                                              target_soc=change.target_soc)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        return session_json(view)

    @app.get("/api/plan")
    async def plan() -> dict[str, Any]:
        summary = depot.plan_summary()
        if summary is None:
            raise HTTPException(404, "no plan yet: the first re-plan has not finished "
                                     f"({depot.last_error or 'still running'})")
        return summary

    @app.post("/api/replan", status_code=202)
    async def replan() -> dict[str, str]:
        depot.request_replan("requested via REST")
        return {"status": "queued"}

    return app
