"""Text dates → datetime64[ns], one format for a whole column.

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

from admf_dask.config.models import check_format
from admf_dask.errors import DataError

ISO = "ISO8601"  # pandas' own ISO 8601 parser (dates, times, offsets)


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
        datetime64[ns]; NaT where the cell is blank or does not match `format`.
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
    return np.asarray(out.to_numpy(dtype="datetime64[ns]"))


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
                return ParsedDates(values, bad, ISO)
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
    values = np.full(codes.shape, np.datetime64("NaT", "ns"))
    values[filled] = parsed[codes[filled]]
    return ParsedDates(values, np.isnat(values) & filled, fmt)


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
        out = np.full(uniques.shape, np.datetime64("NaT", "ns"))
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


__all__ = ["CANDIDATES", "ISO", "ParsedDates", "check_format", "describe", "parse_dates"]
