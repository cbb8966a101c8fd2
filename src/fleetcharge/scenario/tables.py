"""Reading the scenario's CSV files with errors that name the file, the row and the column.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
Parsing is vectorised; the per-value loops below only run to find *which* row is bad once a
column has already failed to parse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fleetcharge.errors import InputError
from fleetcharge.loadcsv import read_load_csv
from fleetcharge.timegrid import Horizon, infer_resolution_min, to_aware

FIRST_DATA_ROW = 2  # header is row 1


def sheet_row(i: int | np.integer) -> int:
    """Spreadsheet row of the ``i``-th (0-based) data row."""
    return int(i) + FIRST_DATA_ROW


def read_table(
    path: Path,
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    what: str,
) -> pd.DataFrame:
    """Read a CSV as strings (empty cell = ``""``), check its columns, return it.

    Column names are matched after stripping blanks and lower-casing. Unknown columns are an
    error (they are usually typos of a known one, which would otherwise be ignored silently).
    """
    file = str(path)
    if not path.is_file():
        raise InputError(f"{what} file not found; check the path", file=file)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} file is empty; it needs a header row and data rows",
                         file=file) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} CSV ({exc}); save it as UTF-8 CSV with a "
                         "header row", file=file) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise InputError(f"column(s) {dupes} appear more than once; keep one of each",
                         file=file, location="row 1")
    missing = [c for c in required if c not in df.columns]
    if missing:
        may = f" and may have {list(optional)}" if optional else ""
        raise InputError(
            f"missing column(s) {missing}; the {what} CSV needs {list(required)}{may} "
            f"(found {list(df.columns)})",
            file=file, location="row 1",
        )
    unknown = [c for c in df.columns if c not in required and c not in optional]
    if unknown:
        raise InputError(
            f"unknown column(s) {unknown}; allowed are {list(required) + list(optional)} "
            "(rename a misspelt column or delete it)",
            file=file, location="row 1",
        )
    for c in df.columns:
        df[c] = df[c].str.strip()
    return df


def column_or_empty(df: pd.DataFrame, col: str) -> pd.Series:
    """The column, or an all-empty column of the right length when it is absent."""
    if col in df.columns:
        return df[col]
    return pd.Series([""] * len(df), index=df.index, dtype=object)


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(mask)
    return int(idx[0]), len(idx)


def _and_more(n: int) -> str:
    return f" ({n - 1} more row{'s' if n > 2 else ''} like it)" if n > 1 else ""


def parse_times(
    values: pd.Series, col: str, timezone: str, file: str, required: bool = True
) -> pd.DatetimeIndex:
    """Parse a column of ISO 8601 timestamps into a tz-aware (ns) index in ``timezone``.

    Naive values are wall-clock time in the site timezone; values with an offset (``Z``,
    ``-08:00``) are converted. Empty cells are an error when ``required``, else ``NaT``.
    """
    empty = (values == "").to_numpy()
    if required and empty.any():
        i, n = _first_bad(empty)
        raise InputError(f"missing {col} value{_and_more(n)}; every row needs one",
                         file=file, location=f"row {sheet_row(i)}, column {col}")
    out = pd.Series(pd.NaT, index=range(len(values)), dtype=f"datetime64[ns, {timezone}]")
    ok = np.flatnonzero(~empty)
    if ok.size:
        try:
            parsed = to_aware(values.iloc[ok], timezone)
        except (ValueError, TypeError, OverflowError):
            parsed = None
        if parsed is None or parsed.isna().any():
            for j in ok:
                try:
                    t = to_aware([values.iloc[j]], timezone)
                    if t.isna().any():
                        raise ValueError
                except (ValueError, TypeError, OverflowError):
                    raise InputError(
                        f"cannot read {col} {values.iloc[j]!r} as a timestamp; write ISO 8601 "
                        "like 2025-03-03 17:40 (site local time) or 2025-03-04T01:40:00Z",
                        file=file, location=f"row {sheet_row(j)}, column {col}",
                    ) from None
        out.iloc[ok] = parsed.as_unit("ns")
    return pd.DatetimeIndex(out).as_unit("ns")


def parse_numbers(values: pd.Series, col: str, file: str, required: bool = False) -> np.ndarray:
    """Parse a numeric column; empty cells become NaN (an error when ``required``)."""
    empty = (values == "").to_numpy()
    if required and empty.any():
        i, n = _first_bad(empty)
        raise InputError(f"missing {col} value{_and_more(n)}; every row needs a number",
                         file=file, location=f"row {sheet_row(i)}, column {col}")
    num = pd.to_numeric(values.where(~empty, None), errors="coerce").to_numpy(dtype=float)
    bad = (~empty) & ~np.isfinite(num)
    if bad.any():
        i, n = _first_bad(bad)
        raise InputError(
            f"cannot read {col} {values.iloc[i]!r} as a number{_and_more(n)}; write a plain "
            "decimal number such as 42.5 (no units)",
            file=file, location=f"row {sheet_row(i)}, column {col}",
        )
    return num


def require_ids(values: pd.Series, col: str, file: str) -> np.ndarray:
    """A required text column as a numpy array of str; empty cells are an error."""
    empty = (values == "").to_numpy()
    if empty.any():
        i, n = _first_bad(empty)
        raise InputError(f"missing {col}{_and_more(n)}; every row needs one",
                         file=file, location=f"row {sheet_row(i)}, column {col}")
    return values.to_numpy(dtype=object).astype(str)


def read_price_csv(path: Path, timezone: str) -> pd.Series:
    """Read a ``timestamp,price_per_kwh`` CSV (export prices [$/kWh]) into a regular series.

    Columns, values and row count are checked here (errors name the row and column); the
    timestamps are checked as a load profile's are (:func:`fleetcharge.loadcsv.read_load_csv`:
    sorted, regular, no duplicates, DST hints). Negative prices are allowed.
    """
    file = str(path)
    df = read_table(path, required=("timestamp", "price_per_kwh"), optional=(),
                    what="export price")
    if len(df) < 2:
        raise InputError(f"{len(df)} data row(s); an export price series needs at least two "
                         "to set its resolution, and must cover the horizon", file=file)
    parse_numbers(df["price_per_kwh"], "price_per_kwh", file, required=True)
    series = read_load_csv(path, timezone, kw_column="price_per_kwh")
    return series.rename("price_per_kwh")


def reindex_load(load_kw: pd.Series, horizon: Horizon, file: str, *,
                 what: str = "building load", name: str = "building_kw") -> pd.Series:
    """Put an interval-average series (kW, or a price) on the horizon's steps.

    Finer data is averaged over each step; coarser data is repeated within its interval. Both
    follow from integrating the piecewise-constant power: with cumulative energy ``C(t)``
    (linear inside each input interval), a step's average is ``(C(t+Δ) − C(t)) / Δ``.
    The series must cover ``[horizon.start, horizon.end)``; ``what`` names it in that error and
    ``name`` is the result's name.
    """
    when = load_kw.index
    res_s = infer_resolution_min(when) * 60
    t_s = when.tz_convert("UTC").as_unit("ns").asi8 / 1e9
    bounds = np.append(t_s, t_s[-1] + res_s)
    start_s = horizon.start.value / 1e9
    end_s = horizon.end.value / 1e9
    if bounds[0] > start_s or bounds[-1] < end_s:
        first = when[0]
        last_end = when[-1] + pd.Timedelta(seconds=res_s)
        raise InputError(
            f"{what} covers {first} to {last_end} but the horizon is "
            f"{horizon.start} to {horizon.end}; supply data for the whole horizon",
            file=file, location="column timestamp",
        )
    energy = np.concatenate(([0.0], np.cumsum(load_kw.to_numpy(dtype=float) * res_s)))
    step_s = horizon.resolution_min * 60
    h = start_s + np.arange(horizon.n_steps + 1) * step_s
    c = np.interp(h, bounds, energy)
    return pd.Series(np.diff(c) / step_s, index=horizon.index, name=name)
