"""The one clock of a live depot: wall time, or simulated time running ``speed`` times faster.

The central system and the depot simulator share a :class:`Clock`, so a whole night can be run in
minutes (``fleetcharge serve --speed 60`` with ``fleetcharge simulate-depot --speed 60``). Every
timestamp the operations code reads or writes comes from :meth:`Clock.now` (tz-aware, UTC).
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd


class Clock:
    """Wall time (``start=None, speed=1``) or simulated time from ``start`` at ``speed``× real time.

    Parameters
    ----------
    start : pandas.Timestamp or str, optional
        Simulated time at construction (tz-aware, or naive meaning UTC). ``None``: wall time.
    speed : float
        Simulated seconds per real second (> 0).
    start_epoch : float, optional
        Unix time at which the simulated clock reads ``start`` (default: now). Two processes
        given the same ``start``, ``speed`` and ``start_epoch`` keep the same time, however
        long each took to start (a restarted server rejoining its chargers' night).
    """

    def __init__(self, start: pd.Timestamp | str | None = None, speed: float = 1.0,
                 start_epoch: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        wall = time.time()
        self.start_epoch = wall if start_epoch is None else float(start_epoch)
        self._real0 = time.monotonic() - (wall - self.start_epoch)
        if start is None:
            start = pd.Timestamp.now(tz="UTC")
        start = pd.Timestamp(start)
        self._sim0 = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")

    def now(self) -> pd.Timestamp:
        """Current (simulated) time, tz-aware UTC."""
        elapsed_s = (time.monotonic() - self._real0) * self.speed
        return self._sim0 + pd.Timedelta(seconds=elapsed_s)

    def real_seconds(self, sim_seconds: float) -> float:
        """Real seconds that ``sim_seconds`` of simulated time take."""
        return sim_seconds / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep for ``sim_seconds`` of simulated time."""
        await asyncio.sleep(max(0.0, sim_seconds) / self.speed)

    async def sleep_until(self, when: pd.Timestamp) -> None:
        """Sleep until simulated time ``when`` (returns at once if it has passed)."""
        await self.sleep((pd.Timestamp(when) - self.now()).total_seconds())
