"""Demand-response events: the one shared event type, and a reader for events CSV files.

A :class:`DREvent` is what a utility tells the depot (in a CSV for a study, or through an
OpenADR VTN, :mod:`fleetcharge.dr.ven`): *in this window, for this program, curtail the site to
``value`` kW*, *reduce by ``value`` kW below your baseline*, or *load reduction is paid
``value`` $/kWh*. Planning (:mod:`fleetcharge.dr.planning`) decides whether to take part;
settlement (:mod:`fleetcharge.dr.settlement`) values what happened.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from fleetcharge.errors import InputError
from fleetcharge.timegrid import Horizon

if TYPE_CHECKING:
    from fleetcharge.dr.programs import DRProgram

EventKind = Literal["curtail", "reduce", "price"]
EVENT_KINDS: tuple[str, ...] = ("curtail", "reduce", "price")


@dataclass(frozen=True)
class DREvent:
    """One demand-response event.

    Parameters
    ----------
    event_id : str
        Identifier, unique within a run (the VTN's ``event_id`` for OpenADR events).
    program : str
        Name of the program that called it: a program of the scenario or a preset
        (:data:`fleetcharge.dr.programs.PRESETS`).
    start, end : pandas.Timestamp
        Event window ``[start, end)``, tz-aware, ``end > start``.
    kind : {"curtail", "reduce", "price"}
        ``curtail``: site import must stay ≤ ``value`` kW in the window (OpenADR LOAD_DISPATCH /
        SIMPLE levels mapped to a kW level); ``reduce``: import ≤ baseline − ``value`` kW;
        ``price``: no limit, load reduction (and export, if the program pays for it) below the
        baseline is paid ``value`` $/kWh (OpenADR ELECTRICITY_PRICE); the planner sees it as a
        price on import and a credit on reduction.
    value : float
        curtail: site import limit [kW], ≥ 0; reduce: kW below baseline [kW], > 0;
        price: payment on reduction [$/kWh], ≥ 0.
    received_at : pandas.Timestamp, optional
        When the event was notified (tz-aware); notice = ``start − received_at``. ``None``:
        notified well ahead (a study).
    cancelled : bool, default False
        The utility withdrew the event; a cancelled event constrains nothing and pays nothing.

    Raises
    ------
    ValueError
        A naive timestamp, ``end ≤ start``, an unknown kind or an out-of-range value; the message
        names the event and the field.
    """

    event_id: str
    program: str
    start: pd.Timestamp
    end: pd.Timestamp
    kind: EventKind
    value: float
    received_at: pd.Timestamp | None = None
    cancelled: bool = False

    def __post_init__(self) -> None:
        where = f"event {self.event_id!r}"
        for name in ("start", "end", "received_at"):
            ts = getattr(self, name)
            if ts is None and name == "received_at":
                continue
            ts = pd.Timestamp(ts)
            if ts.tzinfo is None:
                raise ValueError(f"{where}: {name} {ts} has no timezone; give an offset or UTC")
            object.__setattr__(self, name, ts)
        if self.end <= self.start:
            raise ValueError(f"{where}: end {self.end} must be after start {self.start}")
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(EVENT_KINDS)}, "
                             f"got {self.kind!r}")
        value = float(self.value)
        object.__setattr__(self, "value", value)
        if not np.isfinite(value) or value < 0 or (self.kind == "reduce" and value == 0):
            need = "> 0 kW" if self.kind == "reduce" else "≥ 0"
            raise ValueError(f"{where}: value for a {self.kind} event must be {need}, "
                             f"got {value!r}")

    @property
    def duration_h(self) -> float:
        """Length of the window [h]."""
        return (self.end - self.start) / pd.Timedelta(hours=1)

    @property
    def notice_minutes(self) -> float | None:
        """Notice given before the start [min]; ``None`` when ``received_at`` is unknown."""
        if self.received_at is None:
            return None
        return (self.start - self.received_at) / pd.Timedelta(minutes=1)

    def mask(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Steps of ``index`` that overlap the event window ``[start, end)``.

        Parameters
        ----------
        index : pandas.DatetimeIndex
            tz-aware, regular step starts.

        Returns
        -------
        numpy.ndarray of bool
            ``True`` for each step ``[t, t + Δ)`` with ``t < end`` and ``t + Δ > start``
            (all-False when cancelled). A step only partly inside still counts: the event
            binds the whole 15-minute interval the meter records.
        """
        if self.cancelled or len(index) == 0:
            return np.zeros(len(index), dtype=bool)
        step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=15)
        starts = index
        return np.asarray((starts < self.end) & (starts + step > self.start))


#: Columns of an events CSV.
EVENT_COLUMNS_REQUIRED: tuple[str, ...] = ("event_id", "program", "start", "end", "kind", "value")
EVENT_COLUMNS_OPTIONAL: tuple[str, ...] = ("received_at", "cancelled")
_TRUE = ("true", "yes", "1", "y")
_FALSE = ("false", "no", "0", "n", "")


def _did_you_mean(value: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'X'?)`` for a near miss of one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(value.strip().lower(), [c.lower() for c in choices], n=1,
                                      cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {next(c for c in choices if c.lower() == close[0])!r}?)"


def read_events_csv(
    path: str | Path,
    timezone: str,
    programs: Mapping[str, DRProgram],
    horizon: Horizon | None = None,
) -> tuple[DREvent, ...]:
    """Read an events CSV: one event per row, checked against its program.

    Columns ``event_id, program, start, end, kind, value`` and optionally ``received_at`` and
    ``cancelled`` (true/false). Timestamps are ISO 8601; naive ones are local time in
    ``timezone``. ``kind`` is ``curtail`` (value: site import limit, kW), ``reduce`` (kW below
    the baseline) or ``price`` ($/kWh paid on reduction).

    Parameters
    ----------
    path : str or Path
        The CSV.
    timezone : str
        Site timezone.
    programs : mapping of str to DRProgram
        Programs events may name (the scenario's and the presets).
    horizon : Horizon, optional
        When given, every event must lie inside it.

    Returns
    -------
    tuple of DREvent
        In file order.

    Raises
    ------
    InputError
        Naming the file, the row (header = row 1) and column, what is wrong and the fix:
        unknown program or kind, unreadable time or number, end before start, a value out of
        range, an event outside its program's season/window or longer than its events may be,
        notified after its end, outside the horizon, a duplicate id, or two events that
        overlap (the depot answers one event at a time).
    """
    from fleetcharge.scenario.tables import (  # lazy: the scenario schema imports this package
        parse_numbers,
        parse_times,
        read_table,
        require_ids,
        sheet_row,
    )

    path = Path(path)
    file = str(path)
    df = read_table(path, required=EVENT_COLUMNS_REQUIRED, optional=EVENT_COLUMNS_OPTIONAL,
                    what="events")
    if len(df) == 0:
        raise InputError("the events CSV has a header but no events; add one row per event",
                         file=file)
    ids = [str(x) for x in require_ids(df["event_id"], "event_id", file)]
    seen: dict[str, int] = {}
    for i, eid in enumerate(ids):
        if eid in seen:
            raise InputError(f"event_id {eid!r} is used twice (also row {sheet_row(seen[eid])}); "
                             "give every event its own id",
                             file=file, location=f"row {sheet_row(i)}, column event_id")
        seen[eid] = i
    names = [str(x) for x in require_ids(df["program"], "program", file)]
    for i, name in enumerate(names):
        if name not in programs:
            raise InputError(
                f"unknown program {name!r}{_did_you_mean(name, list(programs))}; known "
                f"programs are {', '.join(sorted(programs))} (define it under `dr: programs:` "
                "in the scenario)",
                file=file, location=f"row {sheet_row(i)}, column program")
    kinds = [str(x) for x in require_ids(df["kind"], "kind", file)]
    for i, kind in enumerate(kinds):
        if kind.lower() not in EVENT_KINDS:
            raise InputError(
                f"kind {kind!r} is not one of {', '.join(EVENT_KINDS)}"
                f"{_did_you_mean(kind, EVENT_KINDS)}"
                "; curtail = hold site import at or below value kW, reduce = value kW below the "
                "baseline, price = value $/kWh paid on reduction",
                file=file, location=f"row {sheet_row(i)}, column kind")
    starts = parse_times(df["start"], "start", timezone, file)
    ends = parse_times(df["end"], "end", timezone, file)
    received = parse_times(df["received_at"], "received_at", timezone, file, required=False) \
        if "received_at" in df.columns else None
    values = parse_numbers(df["value"], "value", file, required=True)
    cancelled = np.zeros(len(df), dtype=bool)
    if "cancelled" in df.columns:
        for i, text in enumerate(df["cancelled"].str.lower()):
            if text not in _TRUE + _FALSE:
                raise InputError(f"cancelled {df['cancelled'].iloc[i]!r} is not true or false; "
                                 "write true for an event the utility withdrew, else false or "
                                 "leave it empty",
                                 file=file, location=f"row {sheet_row(i)}, column cancelled")
            cancelled[i] = text in _TRUE
    events: list[DREvent] = []
    for i in range(len(df)):
        row = sheet_row(i)
        if ends[i] <= starts[i]:
            raise InputError(f"end {ends[i]} is not after start {starts[i]}; the window is "
                             "[start, end)", file=file, location=f"row {row}, column end")
        got = None if received is None or pd.isna(received[i]) else received[i]
        if got is not None and got >= ends[i]:
            raise InputError(f"received_at {got} is not before the event's end {ends[i]}; "
                             "fix the notification time or the window",
                             file=file, location=f"row {row}, column received_at")
        try:
            event = DREvent(ids[i], names[i], starts[i], ends[i], kinds[i].lower(),  # type: ignore
                            float(values[i]), got, bool(cancelled[i]))
        except ValueError as exc:
            detail = str(exc).split(": ", 1)[-1]
            raise InputError(f"{detail}; fix the value", file=file,
                             location=f"row {row}, column value") from None
        problem = programs[names[i]].check_event(event, timezone)
        if problem is not None:
            raise InputError(f"{problem}, but this event runs {starts[i]} to {ends[i]}; move it "
                             "or name a program whose season and window cover it",
                             file=file, location=f"row {row}, column start")
        if horizon is not None and (event.start < horizon.start or event.end > horizon.end):
            raise InputError(f"the event runs {event.start} to {event.end}, outside the "
                             f"scenario's horizon {horizon.start} to {horizon.end}; drop the row "
                             "or extend billing.start/end",
                             file=file, location=f"row {row}, column start")
        events.append(event)
    live = sorted((e for e in events if not e.cancelled), key=lambda e: e.start)
    for a, b in zip(live, live[1:]):
        if b.start < a.end:
            raise InputError(
                f"events {a.event_id!r} (row {sheet_row(seen[a.event_id])}) and {b.event_id!r} "
                "overlap; the depot answers one event at a time: shorten one, or mark one "
                "cancelled", file=file, location=f"row {sheet_row(seen[b.event_id])}, column start")
    return tuple(events)
