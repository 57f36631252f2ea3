"""Point-in-time universes: a table of listing intervals turned into a (time, symbol) mask.

The table (CSV or Parquet) has one row per symbol: ``symbol``, ``start`` (first bar in the
universe, inclusive) and ``end`` (last bar in the universe, inclusive: a date without a time keeps that whole day's bars,
as ``data.end``; empty or the column left out: still listed). Column names are matched case-insensitively. A symbol of the data without a
row is never in the universe; a row naming a symbol the data does not have is reported (a
warning), not an error. The mask is the market data's ``universe`` variable (README, pipeline file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from admf_dask.data.dates import as_time, bound_on_axis, time_unit, unit_of
from admf_dask.errors import DataError

__all__ = ["UniverseTable", "read_universe", "universe_mask", "universe_rows"]

_FIX = "the universe table has columns symbol, start, end (one row per symbol, ISO dates)"


class UniverseTable:
    """Listing intervals: ``symbols`` (str), ``start`` and ``end`` (datetime64[ns], or [s] past
    2262; NaT end = still listed)."""

    def __init__(self, symbols: list[str], start: np.ndarray, end: np.ndarray) -> None:
        self.symbols = symbols
        self.start = start
        self.end = end


def _column(df: pd.DataFrame, name: str, where: str, required: bool) -> pd.Series | None:
    by_lower = {str(c).strip().lower(): c for c in df.columns}
    if name in by_lower:
        return df[by_lower[name]]
    if required:
        found = ", ".join(map(str, df.columns)) or "none"
        raise DataError(where, f"has no '{name}' column (columns: {found})", _FIX)
    return None


def _dates(col: pd.Series, name: str, where: str, optional: bool) -> np.ndarray:
    stamps: list[pd.Timestamp | None] = []
    for i, v in enumerate(col.tolist()):
        empty = v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT
        empty = empty or (isinstance(v, str) and not v.strip())
        if empty:
            if not optional:
                raise DataError(where, f"row {i + 1}: empty {name}", f"give a {name} date")
            stamps.append(None)
            continue
        try:
            ts = pd.Timestamp(v.strip() if isinstance(v, str) else v)
        except (ValueError, TypeError, OverflowError):
            ts = None
        if ts is None or ts is pd.NaT:
            raise DataError(
                where,
                f"row {i + 1}: {name} '{v}' is not a date",
                "write ISO dates, e.g. 2012-05-18",
            )
        if ts.tz is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        stamps.append(ts)
    # datetime64[ns], or [s] when a date does not fit it (docs/TIME.md)
    micro = np.array(
        [
            np.datetime64("NaT", "us") if t is None else t.as_unit("us").to_datetime64()
            for t in stamps
        ],
        dtype="datetime64[us]",
    )
    if time_unit(micro) == "s":
        return as_time(micro, "s", where=where)
    out = np.empty(len(stamps), dtype="datetime64[ns]")
    for i, t in enumerate(stamps):
        out[i] = np.datetime64("NaT") if t is None else np.datetime64(t.to_datetime64(), "ns")
    return out


def read_universe(path: Path, display: str, where: str = "data.universe") -> UniverseTable:
    """Read and check a universe table.

    Parameters
    ----------
    path : Path
        The CSV or Parquet file (Parquet by its ``.parquet``/``.pq`` suffix).
    display : str
        The path as the user wrote it (for errors).
    where : str
        Config key named by errors.

    Returns
    -------
    UniverseTable

    Raises
    ------
    DataError
        A missing or unreadable file, no ``symbol`` or ``start`` column, an empty or
        unparseable date, a start after its end, a symbol listed twice.
    """
    if not path.exists():
        raise DataError(
            where,
            f"'{display}' does not exist (looked for {path})",
            "check the path; relative paths start at the pipeline file's folder",
        )
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # noqa: BLE001  (any reader failure is a bad file)
        raise DataError(where, f"cannot read '{display}': {exc}".replace("\n", " "), _FIX) from exc
    sym = _column(df, "symbol", where, True)
    start_col = _column(df, "start", where, True)
    end_col = _column(df, "end", where, False)
    symbols = [str(s).strip() for s in sym.tolist()]  # type: ignore[union-attr]
    for i, s in enumerate(symbols):
        if not s:
            raise DataError(where, f"row {i + 1}: empty symbol", "give every row a symbol")
    dup = pd.Index(symbols)[pd.Index(symbols).duplicated()].unique().tolist()
    if dup:
        raise DataError(
            where,
            f"symbol(s) listed more than once: {', '.join(map(repr, dup[:10]))}",
            "one row per symbol: its first and last bar in the universe",
        )
    start = _dates(start_col, "start", where, optional=False)  # type: ignore[arg-type]
    if end_col is None:
        end = np.full(len(symbols), np.datetime64("NaT"), dtype="datetime64[ns]")
    else:
        end = _dates(end_col, "end", where, optional=True)
    bad = np.flatnonzero(~np.isnat(end) & (start >= bound_on_axis(_stops(end), start)))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            where,
            f"row {i + 1} ({symbols[i]}): start {str(start[i])[:10]} is after end "
            f"{str(end[i])[:10]}",
            "swap them or fix the dates",
        )
    return UniverseTable(symbols, start, end)


def _stops(end: np.ndarray) -> np.ndarray:
    """Exclusive upper bounds of inclusive ``end`` times: an end at midnight (a date) keeps that
    whole day's intraday bars, as ``data.end`` does (`admf_dask.data.load`); NaT stays NaT."""
    end = np.asarray(end)
    unit = unit_of(end)  # ns, or s for far dates (docs/TIME.md)
    day = end.astype("datetime64[D]").astype(end.dtype)
    return np.where(end == day, day + np.timedelta64(1, "D"), end + np.timedelta64(1, unit))


def universe_mask(
    table: UniverseTable, time: np.ndarray, symbols: list[str]
) -> tuple[np.ndarray, list[str]]:
    """The (time, symbol) membership mask of the data's bars.

    Parameters
    ----------
    table : UniverseTable
        Listing intervals.
    time : ndarray of datetime64 (ns, or s past 2262)
        The data's bars.
    symbols : list of str
        The data's symbols.

    Returns
    -------
    (ndarray of bool, list of str)
        The mask (True: in the universe, ``start <= t <= end``, a date ``end`` its whole day) and the table's symbols the
        data does not have.
    """
    t = as_time(time)
    starts, stops = bound_on_axis(table.start, t), bound_on_axis(_stops(table.end), t)
    mask = np.zeros((t.size, len(symbols)), dtype=bool)
    col = {s: j for j, s in enumerate(symbols)}
    unknown = []
    for s, a, b in zip(table.symbols, starts, stops, strict=True):
        j = col.get(s)
        if j is None:
            unknown.append(s)
            continue
        inside = t >= a
        if not np.isnat(b):
            inside &= t < b
        mask[:, j] = inside
    return mask, unknown


def universe_rows(
    table: UniverseTable, time: np.ndarray, symbols: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each symbol's rows in the universe, ``[lo, hi)`` of the sorted time axis.

    The mask of `universe_mask` is ``lo[j] <= row < hi[j]``; built per chunk from these two
    small arrays (`admf_dask.data.lazy.universe_array`), it never exists whole on the client.

    Parameters
    ----------
    table : UniverseTable
        Listing intervals.
    time : ndarray of datetime64 (ns, or s past 2262)
        The data's bars, sorted.
    symbols : list of str
        The data's symbols.

    Returns
    -------
    (ndarray of int64, ndarray of int64, list of str)
        ``lo``, ``hi`` per symbol (``lo == hi``: never in) and the table's symbols the data does
        not have.
    """
    t = as_time(time)
    starts, stops = bound_on_axis(table.start, t), bound_on_axis(_stops(table.end), t)
    lo = np.zeros(len(symbols), dtype=np.int64)
    hi = np.zeros(len(symbols), dtype=np.int64)
    col = {s: j for j, s in enumerate(symbols)}
    unknown = []
    for s, a, b in zip(table.symbols, starts, stops, strict=True):
        j = col.get(s)
        if j is None:
            unknown.append(s)
            continue
        lo[j] = np.searchsorted(t, a, side="left")  # first bar >= start
        hi[j] = t.size if np.isnat(b) else np.searchsorted(t, b, side="left")  # bars <= end
        hi[j] = max(hi[j], lo[j])
    return lo, hi, unknown


def unknown_warning(unknown: list[str], display: str) -> str:
    """The warning for universe rows naming symbols the data does not have."""
    shown = ", ".join(unknown[:10]) + (
        f", ... ({len(unknown)} in all)" if len(unknown) > 10 else ""
    )
    return f"data.universe: '{display}' lists symbol(s) the data does not have: {shown} (ignored)"
