"""Reading ``timestamp,kw`` load CSVs: parsing, time zones and errors that name file and row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fleetcharge.errors import InputError
from fleetcharge.loadcsv import read_load_csv

TZ = "America/Los_Angeles"


def write(tmp_path: Path, text: str, name: str = "load.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_naive_timestamps_are_local_and_series_is_regular(tmp_path: Path) -> None:
    p = write(tmp_path, "timestamp,kw\n2025-01-06 00:00,10\n2025-01-06 00:15,12.5\n"
                        "2025-01-06 00:30,-3\n")
    s = read_load_csv(p, TZ)
    assert s.tolist() == [10.0, 12.5, -3.0]
    assert s.name == "kw" and s.index.name == "timestamp"
    assert str(s.index.tz) == TZ
    assert s.index[0] == pd.Timestamp("2025-01-06 00:00", tz=TZ)
    assert s.attrs["resolution_min"] == 15


def test_offset_timestamps_are_converted_and_extra_columns_ignored(tmp_path: Path) -> None:
    p = write(tmp_path, " Timestamp , KW ,note\n2025-01-06T08:00:00Z,1,a\n"
                        "2025-01-06T09:00:00+00:00,2,b\n")
    s = read_load_csv(p, TZ)
    assert s.index[0] == pd.Timestamp("2025-01-06 00:00", tz=TZ)
    assert s.attrs["resolution_min"] == 60


def test_offsets_keep_dst_fall_back_regular(tmp_path: Path) -> None:
    rows = ["2025-11-02T00:30:00-07:00", "2025-11-02T01:00:00-07:00",
            "2025-11-02T01:30:00-07:00", "2025-11-02T01:00:00-08:00",
            "2025-11-02T01:30:00-08:00", "2025-11-02T02:00:00-08:00"]
    p = write(tmp_path, "timestamp,kw\n" + "".join(f"{r},1\n" for r in rows))
    s = read_load_csv(p, TZ)
    assert len(s) == 6 and s.attrs["resolution_min"] == 30


def test_one_minute_resolution(tmp_path: Path) -> None:
    p = write(tmp_path, "timestamp,kw\n" + "".join(
        f"2025-01-06 00:{m:02d},{m}\n" for m in range(10)))
    assert read_load_csv(p, TZ).attrs["resolution_min"] == 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time,power\n2025-01-06 00:00,1\n2025-01-06 00:15,1\n",
         r"load.csv: row 1 \(header\): missing column\(s\) timestamp, kw"),
        ("timestamp,kw\n2025-01-06 00:00,1\nyesterday,2\n",
         r"load.csv: row 3, column timestamp: timestamp 'yesterday' is not ISO 8601"),
        ("timestamp,kw\n2025-01-06 00:00,1\n2025-01-06 00:15,abc\n",
         r"row 3, column kw: kW value 'abc' is not a number"),
        ("timestamp,kw\n2025-01-06 00:00,1\n2025-01-06 00:15,\n",
         r"row 3, column kw: kW value '' is not a number"),
        ("timestamp,kw\n2025-01-06 00:00,1\n,2\n", r"row 3, column timestamp: timestamp is empty"),
        ("timestamp,kw\n2025-01-06 00:00,1\n2025-01-06 00:00,2\n",
         r"row 3, column timestamp: timestamp '2025-01-06 00:00' is the same instant as row 2"),
        ("timestamp,kw\n2025-01-06 00:15,1\n2025-01-06 00:00,2\n",
         r"row 3, column timestamp: .* is earlier than row 2; sort the rows by time"),
        ("timestamp,kw\n" + "".join(f"2025-01-06 0{h}:00,1\n" for h in (0, 1, 2, 4, 5, 6)),
         r"rows 4 and 5 .* are 120 min apart but the series is every 60 min.*Fill gaps"),
        ("timestamp,kw\n2025-01-06 00:00,1\n",
         r"1 data row\(s\); a load profile needs at least two"),
        ("", r"load.csv: the file is empty"),
    ],
)
def test_errors_name_file_row_and_fix(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        read_load_csv(write(tmp_path, text), TZ)


def test_naive_fall_back_hour_explains_dst(tmp_path: Path) -> None:
    times = ["00:30", "01:00", "01:30", "01:00", "01:30"]
    p = write(tmp_path, "timestamp,kw\n" + "".join(f"2025-11-02 {t},1\n" for t in times))
    with pytest.raises(InputError, match=r"row 5, .*occurs twice in America/Los_Angeles when "
                                         r"clocks fall back \(DST\).*UTC offset"):
        read_load_csv(p, TZ)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope.csv: load CSV not found"):
        read_load_csv(tmp_path / "nope.csv", TZ)
