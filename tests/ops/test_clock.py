"""The shared simulated clock."""

import time

import pandas as pd
import pytest

from fleetcharge.ops.clock import Clock


def test_clocks_with_one_epoch_agree_however_late_they_start():
    first = Clock("2025-03-03T16:30:00Z", speed=600.0)
    time.sleep(0.2)  # a second process starting 0.2 s later (120 simulated seconds)
    late = Clock("2025-03-03T16:30:00Z", speed=600.0, start_epoch=first.start_epoch)
    naive = Clock("2025-03-03T16:30:00Z", speed=600.0)
    gap_s = (first.now() - late.now()).total_seconds()
    assert abs(gap_s) < 600.0 * 0.02  # within 20 ms of real time
    assert (first.now() - naive.now()).total_seconds() > 100.0  # without it: 2 min behind


def test_speed_and_start():
    clock = Clock("2025-03-03T16:30:00", speed=3600.0)
    assert clock.now().tz is not None and clock.now() >= pd.Timestamp("2025-03-03T16:30Z")
    assert clock.real_seconds(3600.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="clock speed must be > 0"):
        Clock(speed=0.0)
