"""Checks of market data: column names, bar values, duplicate bars, date ranges.

Plain ndarrays in; a failed check raises `admf_dask.errors.DataError` whose ``where`` names the
file and row (through a ``locate(index) -> str`` callable supplied by the reader, so each source
words rows the way its user sees them: ``prices.csv row 17`` counts the header as line 1).
The first offending row in file order is reported, whatever check it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from admf_dask.errors import DataError, did_you_mean

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICES: tuple[str, ...] = ("open", "high", "low", "close")
# Canonical column -> accepted spellings (compared case-insensitively).
ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "date"),
    "symbol": ("symbol", "ticker"),
    **{f: (f,) for f in FIELDS},
}
COLUMNS_HELP = "time (or date), symbol (or ticker), open, high, low, close, volume"

# datetime64[ns] can hold these days only. Compare other units against these in seconds:
# numpy compares mixed units in the finer one, where a far date silently wraps around.
NS_MIN = np.datetime64("1677-09-22", "s")
NS_MAX = np.datetime64("2262-04-11", "s")


def in_ns_range(time: np.ndarray) -> np.ndarray:
    """Whether each datetime64 (any unit) fits datetime64[ns]."""
    sec = np.asarray(time).astype("datetime64[s]")
    return (sec >= NS_MIN) & (sec <= NS_MAX)


Locate = Callable[[int], str]


def _quote(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def map_columns(
    names: Sequence[str],
    where: str,
    *,
    ignore: Callable[[str], bool] | None = None,
    mapping: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map the canonical columns to the table's own column names.

    Parameters
    ----------
    names : sequence of str
        Column names as found (any case, surrounding spaces allowed).
    where : str
        The file, for messages.
    ignore : callable, optional
        Columns for which it returns true are skipped (e.g. a pandas index column).
    mapping : mapping of str to str, optional
        ``data.columns``: canonical column -> the file's name for it (exact, else compared
        case-insensitively); the canonical columns it leaves out are found by their aliases.

    Returns
    -------
    dict of str to str
        ``{"time": "Date", "symbol": "Ticker", "open": "Open", ...}``.

    Raises
    ------
    DataError
        When a required column is missing, given twice (``time`` and ``date``) or unknown, or a
        column named in ``mapping`` is not in the file.
    """
    spelling = {alias: canon for canon, aliases in ALIASES.items() for alias in aliases}
    found: dict[str, str] = {}
    unknown: list[str] = []
    taken: set[str] = set()
    for canon, given in (mapping or {}).items():
        name = _find_column(names, given)
        if name is None:
            shown = _quote(n for n in names if not (ignore is not None and ignore(n)))
            raise DataError(
                where,
                f"no column '{given}' (data.columns.{canon}); found {shown or 'no columns'}",
                "fix data.columns to name the file's columns",
            )
        found[canon] = name
        taken.add(name)
    for name in names:
        if (ignore is not None and ignore(name)) or name in taken:
            continue
        key = str(name).strip().lower()
        canon = spelling.get(key)
        if canon is None:
            unknown.append(str(name))
        elif canon in found:
            raise DataError(
                where,
                f"columns '{found[canon]}' and '{name}' both give {canon}",
                "keep one of them",
            )
        else:
            found[canon] = str(name)
    missing = [c for c in ALIASES if c not in found]
    if missing:
        raise DataError(
            where,
            f"missing column(s) {', '.join(missing)}; found {_quote(names) or 'no columns'}",
            f"the table needs columns {COLUMNS_HELP}, or name yours in data.columns",
        )
    if unknown:
        hint = did_you_mean(unknown[0].strip().lower(), list(spelling))
        raise DataError(
            where,
            f"unknown column(s) {_quote(unknown)}{hint}",
            f"remove them; the columns are {COLUMNS_HELP} (other names: data.columns)",
        )
    return found


def _find_column(names: Sequence[str], given: str) -> str | None:
    """The column called `given`: the exact name, else the only case-insensitive match."""
    if given in names:
        return given
    key = given.strip().lower()
    close = [str(n) for n in names if str(n).strip().lower() == key]
    return close[0] if len(close) == 1 else None


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def check_bars(
    values: dict[str, np.ndarray], locate: Locate, *, allow_missing: bool = False
) -> None:
    """Check open/high/low/close/volume bar by bar.

    Parameters
    ----------
    values : dict of str to numpy.ndarray
        The five fields, float64 arrays of one shape (flattened in C order for ``locate``).
    locate : callable
        Flat index -> place (``prices.csv row 17``).
    allow_missing : bool, optional
        Whether a bar may be NaN; it must then be NaN in all five fields (a dense store's
        missing bar). Long tables leave a missing bar out instead, so NaN is an error there.

    Raises
    ------
    DataError
        Empty or partial values, infinities, prices <= 0, high < low, high below the open or
        close, low above them, or negative volume; the first such bar is reported.
    """
    o, h, lo, c, v = (np.ravel(values[f]) for f in FIELDS)
    nan = {f: np.isnan(np.ravel(values[f])) for f in FIELDS}
    n_nan = sum(m.astype(np.int8) for m in nan.values())
    bad_nan = (n_nan > 0) & (n_nan < 5) if allow_missing else n_nan > 0
    with np.errstate(invalid="ignore"):
        nonfinite = np.zeros(o.shape, bool)
        for f in FIELDS:
            nonfinite |= np.isinf(np.ravel(values[f]))
        nonpos = (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)
        order = (h < lo) | (h < np.maximum(o, c)) | (lo > np.minimum(o, c))
        negvol = v < 0
    bad = bad_nan | nonfinite | nonpos | order | negvol
    if not bad.any():
        return
    i = int(np.argmax(bad))
    where = locate(i)
    row = {f: float(np.ravel(values[f])[i]) for f in FIELDS}
    if bad_nan[i]:
        empty = [f for f in FIELDS if nan[f][i]]
        if allow_missing:
            raise DataError(
                where,
                f"{', '.join(empty)} missing (NaN) but not the other fields",
                "a missing bar must be NaN in all of open, high, low, close and volume",
            )
        raise DataError(
            where,
            f"{', '.join(empty)} empty or not a number",
            "fill in the value, or drop the row (a missing bar is simply an absent row)",
        )
    if nonfinite[i]:
        f = next(f for f in FIELDS if np.isinf(row[f]))
        raise DataError(where, f"{f} is {row[f]}", "prices and volume must be finite numbers")
    if nonpos[i]:
        f = next(f for f in PRICES if row[f] <= 0)
        raise DataError(where, f"{f} price {_fmt(row[f])} is not positive", "prices must be > 0")
    if row["high"] < row["low"]:
        raise DataError(
            where,
            f"high {_fmt(row['high'])} is below low {_fmt(row['low'])}",
            "high must be >= low: check for swapped columns",
        )
    if order[i]:
        if row["high"] < max(row["open"], row["close"]):
            f = "open" if row["open"] > row["close"] else "close"
            raise DataError(
                where,
                f"high {_fmt(row['high'])} is below {f} {_fmt(row[f])}",
                "high must be >= open and close",
            )
        f = "open" if row["open"] < row["close"] else "close"
        raise DataError(
            where,
            f"low {_fmt(row['low'])} is above {f} {_fmt(row[f])}",
            "low must be <= open and close",
        )
    raise DataError(where, f"volume {_fmt(row['volume'])} is negative", "volume must be >= 0")


def check_unique_bars(
    time_ns: np.ndarray, symbol_codes: np.ndarray, symbols: Sequence[str], locate: Locate
) -> None:
    """Raise on the first duplicate ``(time, symbol)`` bar in row order, naming both rows.

    Parameters
    ----------
    time_ns : numpy.ndarray
        datetime64 per row (or int64 nanoseconds).
    symbol_codes : numpy.ndarray
        Integer code of each row's symbol (``symbols[code]`` is its name).
    symbols : sequence of str
        Names for the codes.
    locate : callable
        Row index -> place; called as ``locate(i)`` for both rows.
    """
    stamps = np.asarray(time_ns)
    t = stamps.view(np.int64)
    if t.size < 2:
        return
    order = np.lexsort((t, symbol_codes))  # stable: equal keys stay in row order
    ts, cs = t[order], np.asarray(symbol_codes)[order]
    same = (ts[1:] == ts[:-1]) & (cs[1:] == cs[:-1])
    if not same.any():
        return
    pairs = np.flatnonzero(same)
    k = pairs[np.argmin(order[pairs + 1])]  # the pair whose later row comes first in the file
    first, second = int(order[k]), int(order[k + 1])
    unit = np.datetime_data(stamps.dtype)[0] if stamps.dtype.kind == "M" else "ns"
    stamp = np.datetime64(int(ts[k]), unit)
    raise DataError(
        _pair(locate(first), locate(second)),
        f"duplicate bar for ({_day(stamp)}, {symbols[int(cs[k])]})",
        "keep one row per time and symbol",
    )


def _pair(a: str, b: str) -> str:
    """``f.csv row 3`` and ``f.csv row 7`` -> ``f.csv rows 3 and 7``."""
    file_a, sep, row_a = a.rpartition(" row ")
    file_b, _, row_b = b.rpartition(" row ")
    if sep and file_a == file_b:
        return f"{file_a} rows {row_a} and {row_b}"
    return f"{a} and {b}"


def _day(t: np.datetime64) -> str:
    text = str(t.astype("datetime64[s]"))
    return text[:10] if text.endswith("T00:00:00") else text


def check_time_range(time: np.ndarray, locate: Locate, unit: str | None = None) -> np.ndarray:
    """Return ``time`` as the market's datetime64, raising on empty or unrepresentable dates.

    Parameters
    ----------
    time : numpy.ndarray
        datetime64 of any unit (NaT for an empty cell).
    locate : callable
        Row index -> place.
    unit : str, optional
        ``"s"``: the table's unit, decided elsewhere (a part of a table past 2262); default:
        `admf_dask.data.dates.time_unit` of `time`.

    Returns
    -------
    numpy.ndarray
        datetime64[ns] values, or datetime64[s] when they do not all fit datetime64[ns]
        (`admf_dask.data.dates.time_unit`).
    """
    time = np.asarray(time)
    nat = np.isnat(time)
    if nat.any():
        i = int(np.argmax(nat))
        raise DataError(locate(i), "time is empty", "give every row a date")
    from admf_dask.data.dates import time_unit

    # ns as always; s when a date does not fit it (docs/TIME.md)
    return at_unit(time, unit or time_unit(time), locate)


def at_unit(time: np.ndarray, unit: str, locate: Locate) -> np.ndarray:
    """``time`` as datetime64[``unit``]; on a seconds axis a time with a fraction of a second is
    an error named by its row (`locate`)."""
    out = time.astype(f"datetime64[{unit}]")
    if unit == "s" and np.datetime_data(time.dtype)[0] in ("ms", "us", "ns"):
        lost = ~np.isnat(time) & (out.astype(time.dtype) != time)
        if lost.any():
            i = int(np.argmax(lost))
            raise DataError(
                locate(i),
                f"time {time[i]} has a fraction of a second: times past 2262-04-11 (or before "
                "1677-09-22) are held in whole seconds",
                "round the bar times to whole seconds",
            )
    return out
