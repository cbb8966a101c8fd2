import pandas as pd
import pytest

from fleetcharge.timegrid import Horizon, infer_resolution_min, to_aware

TZ = "America/Los_Angeles"


def horizon(start="2025-03-03 00:00", end="2025-03-04 00:00", res=15):
    return Horizon(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), res, TZ)


def test_partial_first_and_last_step():
    h = horizon()
    first, stop, ff, lf = h.availability(
        pd.DatetimeIndex([pd.Timestamp("2025-03-03 17:40", tz=TZ)]),
        pd.DatetimeIndex([pd.Timestamp("2025-03-03 19:05", tz=TZ)]),
    )
    assert first[0] == 17 * 4 + 2  # the 17:30 step
    assert stop[0] == 19 * 4 + 1  # one past the 19:00 step
    assert ff[0] == pytest.approx(5 / 15)
    assert lf[0] == pytest.approx(5 / 15)
    m = h.availability_matrix(
        pd.DatetimeIndex([pd.Timestamp("2025-03-03 17:40", tz=TZ)]),
        pd.DatetimeIndex([pd.Timestamp("2025-03-03 19:05", tz=TZ)]),
    )
    assert m.sum() * 0.25 == pytest.approx((85) / 60)


def test_interval_inside_one_step_and_outside_horizon():
    h = horizon()
    arr = pd.DatetimeIndex([pd.Timestamp("2025-03-03 10:02", tz=TZ),
                            pd.Timestamp("2025-03-05 10:00", tz=TZ)])
    dep = pd.DatetimeIndex([pd.Timestamp("2025-03-03 10:08", tz=TZ),
                            pd.Timestamp("2025-03-05 11:00", tz=TZ)])
    first, stop, ff, lf = h.availability(arr, dep)
    assert stop[0] - first[0] == 1
    assert ff[0] == pytest.approx(6 / 15) and lf[0] == pytest.approx(6 / 15)
    assert stop[1] == first[1]  # wholly outside: no steps
    assert ff[1] == 0.0


def test_dst_spring_forward_day_has_23_hours():
    h = horizon("2025-03-09 00:00", "2025-03-10 00:00", 60)
    assert h.n_steps == 23
    assert list(h.local_hour[:4]) == [0, 1, 3, 4]


def test_to_aware_naive_and_offset():
    idx = to_aware(["2025-03-03 08:00", "2025-03-03T08:00:00-05:00", "2025-03-03T16:00:00Z"], TZ)
    assert str(idx.tz) == TZ
    assert idx[0] == pd.Timestamp("2025-03-03 08:00", tz=TZ)
    assert idx[1] == pd.Timestamp("2025-03-03 05:00", tz=TZ)
    assert idx[2] == pd.Timestamp("2025-03-03 08:00", tz=TZ)


def test_horizon_rejects_bad_resolution_and_naive():
    with pytest.raises(ValueError, match="resolution 7 min is not supported"):
        horizon(res=7)
    with pytest.raises(ValueError, match="must be timezone-aware"):
        Horizon(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-02"), 15, TZ)
    with pytest.raises(ValueError, match="not a whole number of 15-minute steps"):
        horizon(end="2025-03-03 00:20")


def test_infer_resolution_names_the_gap():
    idx = pd.date_range("2025-01-01", periods=5, freq="15min", tz="UTC")
    assert infer_resolution_min(idx) == 15
    broken = idx.delete(2)
    with pytest.raises(ValueError, match="rows 3 and 4 .* 30 min apart"):
        infer_resolution_min(broken)
