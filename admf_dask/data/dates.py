"""Text dates → datetime64, one format for a whole column; the market's time unit.

A time axis is datetime64[ns] when every time fits it (1677-09-22 to 2262-04-11: all data so
far, unchanged), else datetime64[s] (`time_unit`, `as_time`: docs/TIME.md). Casting a far date
to ``[ns]`` wraps around silently in numpy, so every cast of a market time goes through `as_time`.

Parsing each value on its own (``pd.to_datetime(format="mixed")``) reads ``01/03/2000`` as
3 January and ``13/03/2000`` as 13 March in the same column, so a day-first file lands half its
bars on the wrong days. Here a column gets one format: ISO 8601 when every value is ISO (the
fast path), else the single format among `CANDIDATES` that reads every distinct value. An
unambiguous value (a day above 12) decides between day-first and month-first; a column that
both read differently is an error asking for an explicit format; values that fit no common
format are reported by row. All parsing is vectorized over the column's distinct values.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from admf_dask.dasktools.zarrtime import open_zarr
from admf_dask.data.validate import NS_MAX as _NS_MAX
from admf_dask.data.validate import NS_MIN as _NS_MIN
from admf_dask.data.validate import at_unit, in_ns_range
from admf_dask.errors import DataError

ISO = "ISO8601"  # pandas' own ISO 8601 parser (dates, times, offsets)


def time_unit(values: np.ndarray) -> str:
    """The unit of a time axis: ``"ns"`` when every time fits datetime64[ns], else ``"s"``.

    Parameters
    ----------
    values : array-like of datetime64 (any unit; NaT ignored)

    Returns
    -------
    str
        ``"ns"`` or ``"s"``.
    """
    t = np.asarray(values)
    if t.size == 0 or t.dtype == np.dtype("datetime64[ns]"):
        return "ns"
    if not np.issubdtype(t.dtype, np.datetime64):
        t = t.astype("datetime64[us]")
    return "ns" if (np.isnat(t) | in_ns_range(t)).all() else "s"


def unit_of(values: np.ndarray | np.dtype) -> str:
    """The unit of a datetime64 array or dtype (``"ns"``, ``"s"``, ...)."""
    dtype = values if isinstance(values, np.dtype) else np.asarray(values).dtype
    return np.datetime_data(dtype)[0]


def as_time(
    values: np.ndarray,
    like: np.ndarray | np.dtype | str | None = None,
    *,
    where: str = "data",
) -> np.ndarray:
    """`values` as datetime64 at the market's unit, never wrapping around.

    Parameters
    ----------
    values : array-like of datetime64 (any unit)
        Times.
    like : array, dtype or unit str, optional
        Take this unit (the market's time axis); default `time_unit` of `values`.
    where : str
        The place named in errors.

    Returns
    -------
    numpy.ndarray
        datetime64[ns] or datetime64[s].

    Raises
    ------
    DataError
        A time does not fit the unit: a time with a fraction of a second where the axis is held
        in seconds (past 2262-04-11 or before 1677-09-22), or a far date on a ``[ns]`` axis.
    """
    t = np.asarray(values)
    if not np.issubdtype(t.dtype, np.datetime64):
        t = t.astype("datetime64[us]")
    if like is None:
        unit = time_unit(t)
    elif isinstance(like, str):
        unit = like
    else:
        unit = unit_of(like)
    target = np.dtype(f"datetime64[{unit}]")
    if t.dtype == target:
        return t
    if unit == "ns":
        bad = ~(np.isnat(t) | in_ns_range(t))
        if bad.any():
            raise DataError(
                where,
                f"time {t[int(np.argmax(bad))].astype('datetime64[s]')} does not fit the "
                "time axis (datetime64[ns], 1677-09-22 to 2262-04-11)",
                "keep every time of a run on the same side of 2262-04-11",
            )
        return t.astype(target)
    out = t.astype(target)
    if np.datetime_data(t.dtype)[0] in ("ms", "us", "ns", "ps", "fs", "as"):
        lost = ~np.isnat(t) & (out.astype(t.dtype) != t)
        if lost.any():
            raise DataError(
                where,
                f"time {t[int(np.argmax(lost))]} has a fraction of a second; times past "
                "2262-04-11 (or before 1677-09-22) are held in whole seconds",
                "round the bar times to whole seconds",
            )
    return out


_NS_LOWEST = np.datetime64(np.iinfo(np.int64).min + 1, "ns")  # (the lowest int64 is NaT)
_NS_HIGHEST = np.datetime64(np.iinfo(np.int64).max, "ns")


def bound_on_axis(values: np.ndarray, like: np.ndarray | np.dtype | str) -> np.ndarray:
    """Bounds (starts, exclusive stops) as times of an axis' unit, for exact comparisons.

    ``t >= b`` and ``t < b`` keep their meaning for every time ``t`` of the axis: a bound between
    two whole units rounds up, one outside datetime64[ns]'s range (on a ``[ns]`` axis) becomes
    its lowest or highest time; NaT stays NaT. Numpy would compare mixed units in the finer one,
    where a far date wraps around.

    Parameters
    ----------
    values : array-like of datetime64 (any unit)
        The bounds.
    like : array, dtype or unit str
        The axis (or its unit).

    Returns
    -------
    numpy.ndarray
        datetime64 at the axis' unit.
    """
    t = np.asarray(values)
    unit = like if isinstance(like, str) else unit_of(like)
    target = np.dtype(f"datetime64[{unit}]")
    if t.dtype == target:
        return t
    nat = np.isnat(t)
    if unit == "ns":
        sec = t.astype("datetime64[s]")
        below, above = ~nat & (sec < _NS_MIN), ~nat & (sec > _NS_MAX)
        safe = np.where(below | above, np.datetime64(0, "s").astype(t.dtype), t)
        out = safe.astype(target)
        out[below], out[above] = _NS_LOWEST, _NS_HIGHEST
        return out
    out = t.astype(target)
    up = ~nat & (out.astype(t.dtype) < t)  # (exact: the coarse unit fits any finer value here)
    out[up] += np.timedelta64(1, unit)
    return out


def _candidates() -> tuple[str, ...]:
    dates = []
    for sep in ("/", "-", ".", " "):
        dates += [f"%Y{sep}%m{sep}%d", f"%d{sep}%m{sep}%Y", f"%m{sep}%d{sep}%Y"]
        dates += [f"%d{sep}%m{sep}%y", f"%m{sep}%d{sep}%y"]
    dates += ["%Y%m%d", "%d %b %Y", "%d-%b-%Y", "%d-%b-%y", "%b %d %Y", "%b %d, %Y"]
    dates += ["%d %B %Y", "%B %d %Y", "%B %d, %Y"]
    times = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f")
    return tuple(d + t for d in dates for t in times)


# Formats tried when a column is not ISO 8601, in order of preference for equal readings.
CANDIDATES: tuple[str, ...] = _candidates()

# Distinct values a candidate must read before it is tried on all of them (cheap pre-filter).
_SAMPLE = 256


@dataclass
class ParsedDates:
    """A parsed column.

    Attributes
    ----------
    values : numpy.ndarray
        datetime64[ns] (datetime64[s] when a date does not fit it: `time_unit`); NaT where the
        cell is blank or does not match `format`.
    bad : numpy.ndarray
        bool: the cell is not blank and does not match `format` (the caller reports the first).
    format : str
        The format used: ``"ISO8601"`` or a strftime format such as ``"%d/%m/%Y"``.
    """

    values: np.ndarray
    bad: np.ndarray
    format: str


def describe(fmt: str) -> str:
    """``%d/%m/%Y`` → ``DD/MM/YYYY`` (for messages); ISO 8601 as ``YYYY-MM-DD``."""
    if fmt == ISO:
        return "YYYY-MM-DD"
    out = fmt
    for code, text in (
        ("%Y", "YYYY"),
        ("%y", "YY"),
        ("%m", "MM"),
        ("%d", "DD"),
        ("%H", "hh"),
        ("%M", "mm"),
        ("%S", "ss"),
        ("%f", "ffffff"),
        ("%b", "Mon"),
        ("%B", "Month"),
    ):
        out = out.replace(code, text)
    return out


def _text(text: pa.Array | pa.ChunkedArray | pd.Series | np.ndarray) -> pa.Array:
    """The cells as one Arrow string array, whitespace trimmed (None stays null)."""
    if isinstance(text, pa.ChunkedArray):
        arr = text.combine_chunks()
    elif isinstance(text, pa.Array):
        arr = text
    else:
        values = np.asarray(pd.Series(text).to_numpy(dtype=object), dtype=object)
        try:
            arr = pa.array(values, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):  # mixed Python types
            arr = pa.array([None if pd.isna(v) else str(v) for v in values], pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return pc.utf8_trim_whitespace(arr)


def _convert(text: pd.Series | np.ndarray, fmt: str) -> np.ndarray:
    """Vectorized parse in one format; NaT where a value does not match."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            out = pd.to_datetime(pd.Series(text, dtype=object), format=fmt, errors="coerce")
        except (ValueError, TypeError):  # mixed UTC offsets: compare them in UTC
            out = pd.to_datetime(
                pd.Series(text, dtype=object), format=fmt, errors="coerce", utc=True
            )
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    # pandas' own unit (a far date does not fit [ns]): `parse_dates` gives the market's unit
    return np.asarray(out.to_numpy())


def parse_dates(
    text: pa.Array | pa.ChunkedArray | pd.Series | np.ndarray,
    *,
    locate: Callable[[int], str],
    date_format: str | None = None,
    option: str = "data.date_format",
) -> ParsedDates:
    """Parse a column of text dates with one format for every value.

    Parameters
    ----------
    text : pyarrow array, pandas.Series or numpy.ndarray
        The cells (text, or numbers such as 20200131; None or blank for none), in row order.
    locate : callable
        Row index → place (``prices.csv row 17``), for the ambiguity error.
    date_format : str, optional
        The format to use (strftime, e.g. ``"%d/%m/%Y"``); default: inferred from all values.
    option : str
        The key that sets the format, named in messages.

    Returns
    -------
    ParsedDates
        Values, the cells that do not match, and the format used.

    Raises
    ------
    DataError
        Two formats read every value but give different dates (day-first vs month-first).
    """
    arr = _text(text)
    blank = np.asarray(pc.fill_null(pc.equal(arr, ""), True).to_numpy(zero_copy_only=False))
    if date_format is None:
        # fast path, one pass: the column is ISO 8601 when its first values are
        head = pc.drop_null(arr.slice(0, 4 * _SAMPLE)).to_numpy(zero_copy_only=False)
        head = head[head != ""][:_SAMPLE]
        if not np.isnat(_convert(head, ISO)).any():
            values = _convert(arr.to_numpy(zero_copy_only=False), ISO)
            bad = np.isnat(values) & ~blank
            if not bad.any():
                return ParsedDates(_market(values, locate), bad, ISO)
    # Distinct values once (Arrow's hash encoding); each format is tried on those only.
    encoded = pc.dictionary_encode(arr)
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
    codes[blank] = -1
    uniques = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    if date_format is not None:
        fmt, parsed = date_format, _convert(uniques, date_format)
    else:
        fmt, parsed = _infer(uniques, codes, locate, option)
    filled = codes >= 0
    values = np.full(codes.shape, np.datetime64("NaT"), dtype=parsed.dtype)
    values[filled] = parsed[codes[filled]]
    return ParsedDates(_market(values, locate), np.isnat(values) & filled, fmt)


def _market(values: np.ndarray, locate: Callable[[int], str]) -> np.ndarray:
    """Parsed times at the market's unit (`time_unit`); a lost fraction of a second is named by
    its row."""
    return at_unit(values, time_unit(values), locate)


def _infer(
    uniques: np.ndarray, codes: np.ndarray, locate: Callable[[int], str], option: str
) -> tuple[str, np.ndarray]:
    """The one format that reads every distinct value, and `uniques` parsed in it."""
    real = uniques != ""
    values = uniques[real]
    # a sample spread over the column, so that a telling value (a day above 12) is likely in it
    sample = values[np.unique(np.linspace(0, max(values.size - 1, 0), _SAMPLE).astype(int))]
    sample = sample if values.size else values
    readings: dict[str, np.ndarray] = {}
    best, best_count = ISO, -1
    for fmt in (ISO, *CANDIDATES):
        count = int((~np.isnat(_convert(sample, fmt))).sum())
        if count > best_count:
            best, best_count = fmt, count
        if count == sample.size and count:
            parsed = _convert(values, fmt)
            if not np.isnat(parsed).any():
                readings[fmt] = parsed
    fmt = best  # no common format: the best guess; the caller names the first row it misreads
    if readings:
        fmt, parsed = next(iter(readings.items()))
        for other, alt in readings.items():
            differs = parsed != alt
            if differs.any():
                _ambiguous(
                    values[int(np.argmax(differs))], uniques, codes, fmt, other, locate, option
                )
        out = np.full(uniques.shape, np.datetime64("NaT"), dtype=parsed.dtype)
        out[real] = parsed
        return fmt, out
    return fmt, _convert(uniques, fmt)


def _ambiguous(
    value: str,
    uniques: np.ndarray,
    codes: np.ndarray,
    fmt: str,
    other: str,
    locate: Callable[[int], str],
    option: str,
) -> None:
    code = int(np.flatnonzero(uniques == value)[0])
    row = int(np.argmax(codes == code))
    a, b = (pd.Timestamp(_convert(np.array([value], dtype=object), f)[0]) for f in (fmt, other))
    raise DataError(
        locate(row),
        f"dates are ambiguous: every date in the column reads as {describe(fmt)} and as "
        f"{describe(other)} ('{value}' is {a:%Y-%m-%d} or {b:%Y-%m-%d})",
        f"set {option}, e.g. '{fmt}'",
    )


__all__ = [
    "CANDIDATES",
    "ISO",
    "ParsedDates",
    "as_time",
    "bound_on_axis",
    "describe",
    "open_zarr",
    "parse_dates",
    "time_unit",
    "unit_of",
]
