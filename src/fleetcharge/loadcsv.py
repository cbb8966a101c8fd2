"""Read a metered load profile CSV (``timestamp,kw``) into a regular tz-aware series.

The file has a header row with the columns ``timestamp`` and ``kw`` (other columns are ignored);
``kw`` is the interval-average power at the meter over ``[timestamp, timestamp + Δ)``, import
positive, export negative [kW]. Timestamps are ISO 8601; naive ones are wall-clock time in the
site timezone, ones with a UTC offset are converted (:func:`fleetcharge.timegrid.to_aware`).
Rows must be sorted and evenly spaced (any whole number of minutes).

Every error is an :class:`~fleetcharge.errors.InputError` naming the file, the row (counting the
header as row 1, as a spreadsheet does) and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fleetcharge.errors import InputError
from fleetcharge.timegrid import infer_resolution_min, to_aware

__all__ = ["read_load_csv"]


def _dst_hint(value: str, timezone: str) -> str:
    """Explain a repeated or backward naive local time that falls in a DST fall-back hour."""
    try:
        naive = pd.Timestamp(value)
        if naive.tzinfo is not None:
            return ""
        naive.tz_localize(timezone, ambiguous="raise")
    except (ValueError, TypeError) as exc:  # AmbiguousTimeError is a ValueError
        if "ambiguous" in str(exc).lower() or "Cannot infer dst" in str(exc):
            return (
                f"; {value!r} occurs twice in {timezone} when clocks fall back (DST), so naive "
                "local times cannot order it: give timestamps with a UTC offset "
                "(e.g. 2025-11-02T01:00:00-08:00)"
            )
    return ""


def read_load_csv(
    path: str | Path,
    timezone: str,
    *,
    timestamp_column: str = "timestamp",
    kw_column: str = "kw",
) -> pd.Series:
    """Read a ``timestamp,kw`` CSV.

    Parameters
    ----------
    path : str or Path
        CSV file.
    timezone : str
        IANA zone of the site; naive timestamps are read as wall-clock time there.
    timestamp_column, kw_column : str
        Column names (matched ignoring case and surrounding spaces).

    Returns
    -------
    pandas.Series
        Float kW named ``"kw"`` on a regular tz-aware ``DatetimeIndex`` named ``"timestamp"``;
        ``series.attrs["resolution_min"]`` holds the step [min].

    Raises
    ------
    InputError
        Missing file or columns, an unparseable timestamp or kW value, duplicate, unsorted or
        unevenly spaced timestamps, fewer than two rows.
    """
    p = Path(path)
    name = str(p)
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError("load CSV not found", name) from None
    except pd.errors.EmptyDataError:
        raise InputError(
            f"the file is empty; expected a header '{timestamp_column},{kw_column}' and rows",
            name,
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot parse the CSV: {exc}", name) from None

    cols = {str(c).strip().lower(): c for c in raw.columns}
    missing = [c for c in (timestamp_column, kw_column) if c.lower() not in cols]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; the header is "
            f"{', '.join(map(str, raw.columns))} but must include "
            f"'{timestamp_column}' and '{kw_column}'",
            name,
            "row 1 (header)",
        )
    ts_raw = raw[cols[timestamp_column.lower()]].str.strip()
    kw_raw = raw[cols[kw_column.lower()]].str.strip()
    if len(raw) < 2:
        raise InputError(
            f"{len(raw)} data row(s); a load profile needs at least two to set its resolution",
            name,
        )

    empty_ts = np.flatnonzero((ts_raw == "").to_numpy())
    if empty_ts.size:
        raise InputError("timestamp is empty", name, f"row {empty_ts[0] + 2}, column timestamp")
    kw = pd.to_numeric(kw_raw, errors="coerce").to_numpy(dtype=float)
    bad_kw = np.flatnonzero(~np.isfinite(kw))
    if bad_kw.size:
        i = int(bad_kw[0])
        raise InputError(
            f"kW value {kw_raw.iloc[i]!r} is not a number; give interval-average kW "
            "(negative for export)",
            name,
            f"row {i + 2}, column {kw_column}",
        )

    try:
        index = to_aware(ts_raw, timezone)
    except Exception:
        index = None
    if index is None or index.isna().any():
        # find the first row that does not parse, to name it
        for i, value in enumerate(ts_raw):
            try:
                to_aware([value], timezone)
            except Exception:
                raise InputError(
                    f"timestamp {value!r} is not ISO 8601 (e.g. 2025-01-06T17:30:00 or "
                    "2025-01-06 17:30:00-08:00)",
                    name,
                    f"row {i + 2}, column timestamp",
                ) from None
        raise InputError("timestamps could not be parsed", name)  # pragma: no cover

    asi8 = index.asi8
    diffs = np.diff(asi8)
    dup = np.flatnonzero(diffs == 0)
    if dup.size:
        i = int(dup[0])
        hint = _dst_hint(ts_raw.iloc[i + 1], timezone)
        raise InputError(
            f"timestamp {ts_raw.iloc[i + 1]!r} is the same instant as row {i + 2} "
            f"({index[i]}); remove duplicates{hint}",
            name,
            f"row {i + 3}, column timestamp",
        )
    back = np.flatnonzero(diffs < 0)
    if back.size:
        i = int(back[0])
        hint = _dst_hint(ts_raw.iloc[i + 1], timezone)
        raise InputError(
            f"timestamp {ts_raw.iloc[i + 1]!r} is earlier than row {i + 2}"
            + (hint if hint else "; sort the rows by time"),
            name,
            f"row {i + 3}, column timestamp",
        )
    try:
        res = infer_resolution_min(index)
    except ValueError as exc:
        raise InputError(
            f"{exc}. Fill gaps (e.g. with 0 kW or interpolated values) or resample; naive local "
            "timestamps skip an hour when clocks spring forward, so give UTC offsets",
            name,
            "column timestamp",
        ) from None

    index.name = "timestamp"
    series = pd.Series(kw, index=index, name="kw")
    series.attrs["resolution_min"] = res
    return series
