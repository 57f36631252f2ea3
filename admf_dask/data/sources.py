"""Readers of each data source, down to plain arrays (no xarray Dataset yet).

File sources give a `LongTable` (one row per bar, with a ``locate`` that words row numbers the way
the user sees them); `read_synthetic` gives the eager `Dense` grid (time x symbol); Zarr stores
open lazily (`ZarrStore`: checked coordinates, dask arrays; the data stage checks the values per
chunk in the tasks). `admf_dask.data.load` selects, pivots and wraps them into the Dataset.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from admf_dask.config.models import DataConfig
from admf_dask.data._synthetic import symbol_names, synthetic_ohlcv
from admf_dask.data.calendar import synthetic_times
from admf_dask.data.dates import as_time, describe, open_zarr, parse_dates
from admf_dask.data.validate import (
    FIELDS,
    Locate,
    check_bars,
    check_time_range,
    check_unique_bars,
    map_columns,
)
from admf_dask.errors import ConfigError, DataError

# Symbols the synthetic market makes when data.symbols is not given.
DEFAULT_SYNTHETIC_SYMBOLS = 20


@dataclass
class LongTable:
    """Bars as rows: parallel arrays, checked (values, dates, no duplicate bars)."""

    time: np.ndarray  # datetime64[ns] ([s] past 2262: docs/TIME.md)
    symbol: np.ndarray  # object array of str
    values: dict[str, np.ndarray]  # float64 per field
    locate: Locate  # row index -> "prices.csv row 17"


@dataclass
class Dense:
    """Bars on a (time, symbol) grid; a missing bar is NaN in all five fields."""

    time: np.ndarray  # datetime64[ns] ([s] past 2262), sorted, unique
    symbols: list[str]
    values: dict[str, np.ndarray]  # float64 (time, symbol) per field


# ----------------------------------------------------------------------------- long tables


def _to_long(
    table: pa.Table,
    cols: dict[str, str],
    locate: Locate,
    label: str,
    date_format: str | None = None,
) -> LongTable:
    """Parse and check the canonical columns of an Arrow table."""
    if table.num_rows == 0:
        raise DataError(label, "has no data rows", "add bars to the file")
    time = _parse_time(table.column(cols["time"]), locate, date_format)
    time = check_time_range(time, locate)
    sym = table.column(cols["symbol"])
    if not pa.types.is_string(sym.type):
        sym = pc.cast(sym, pa.string())
    sym = pc.utf8_trim_whitespace(sym).fill_null("")
    empty = np.asarray(pc.equal(sym, "").to_numpy(zero_copy_only=False))
    if empty.any():
        raise DataError(locate(int(np.argmax(empty))), "symbol is empty", "name the symbol")
    values = {f: _parse_number(table.column(cols[f]), f, locate) for f in FIELDS}
    check_bars(values, locate)
    symbol = np.asarray(sym.to_numpy(zero_copy_only=False), dtype=object)
    codes, names = pd.factorize(symbol)
    check_unique_bars(time, codes, [str(n) for n in names], locate)
    return LongTable(time, symbol, values, locate)


def _parse_time(col: pa.ChunkedArray, locate: Locate, date_format: str | None = None) -> np.ndarray:
    """Dates of any Arrow type -> datetime64 (NaT for empty); tz-aware times become UTC.

    Text dates get one format for the whole column (`admf_dask.data.dates`): ``date_format``,
    or the one inferred from all values.
    """
    typ = col.type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        # Arrow keeps tz-aware timestamps in UTC: to_numpy gives naive UTC.
        return np.asarray(col.to_numpy(zero_copy_only=False))
    if pa.types.is_integer(typ) or pa.types.is_dictionary(typ) or pa.types.is_large_string(typ):
        col = pc.cast(col, pa.string())  # e.g. 20200131 read as a number
    elif not pa.types.is_string(typ):
        raise DataError(
            locate(0),
            f"time column has type {typ}, not dates",
            "write dates such as 2020-01-31",
        )
    parsed = parse_dates(col, locate=locate, date_format=date_format)
    if parsed.bad.any():
        i = int(np.argmax(parsed.bad))
        value = str(col[i].as_py()).strip()
        if date_format is not None:
            raise DataError(
                locate(i),
                f"time '{value}' does not match data.date_format '{date_format}'",
                "fix the date or data.date_format",
            )
        shape = "" if parsed.bad.all() else f" in the column's format {describe(parsed.format)}"
        raise DataError(
            locate(i),
            f"time '{value}' is not a date{shape}",
            "write every date of the column in one format (e.g. 2020-01-31), "
            "or set data.date_format",
        )
    return parsed.values


def _parse_number(col: pa.ChunkedArray, field: str, locate: Locate) -> np.ndarray:
    """Numbers of any Arrow type -> float64 (NaN for empty); text that is no number is an error."""
    typ = col.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if pa.types.is_null(typ):
        return np.full(len(col), np.nan)
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise DataError(locate(0), f"{field} column has type {typ}, not numbers", "store numbers")
    text = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    blank = text.isna() | text.str.strip().str.lower().isin(_NULLS)
    failed = np.isnan(num) & ~blank.to_numpy()
    if failed.any():
        i = int(np.argmax(failed))
        raise DataError(locate(i), f"{field} '{text.iloc[i]}' is not a number", "write a number")
    return num


# What Arrow's CSV reader reads as an empty number (so the slow path agrees with the fast one).
_NULLS = {"", "nan", "-nan", "na", "n/a", "null", "none", "#n/a", "#na", "1.#ind", "1.#qnan"}


# ----------------------------------------------------------------------------- csv


def _csv_header(path: Path, label: str) -> list[str]:
    """Column names from the first line (the file may be compressed: .gz, .bz2, ...)."""
    try:
        with pa.input_stream(str(path), compression="detect") as f:
            head = f.read(1 << 16).decode("utf-8-sig", errors="replace")
    except (OSError, pa.ArrowException) as e:
        raise DataError(label, f"cannot read the file ({e})", "check the path and format") from e
    line = head.splitlines()[0] if head.strip() else ""
    if not line.strip():
        raise DataError(label, "is empty (no header line)", "add a header and bars")
    return next(csv.reader(io.StringIO(line)))


def _read_csv_table(path: Path, label: str, types: dict[str, pa.DataType]) -> pa.Table:
    bad: list = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "error"

    def read(threads: bool) -> pa.Table:
        return pacsv.read_csv(
            str(path),
            read_options=pacsv.ReadOptions(use_threads=threads),
            # keep blank lines as empty rows: row i is then line i + 2 of the file
            parse_options=pacsv.ParseOptions(
                ignore_empty_lines=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )

    try:
        return read(True)
    except pa.ArrowInvalid as e:
        if bad:
            if bad[0].number is None:  # the threaded reader does not count lines
                bad.clear()
                try:
                    read(False)
                except pa.ArrowInvalid:
                    pass
            row = bad[0]
            where = f"{label} row {row.number}" if row.number is not None else label
            raise DataError(
                where,
                f"has {row.actual_columns} fields, the header {row.expected_columns}",
                "check for stray or missing commas and unbalanced quotes",
            ) from e
        if "conversion error" in str(e):
            raise  # a bad value: the caller re-reads as text to find its row
        raise DataError(label, f"cannot parse the CSV ({e})", "check the file format") from e


def read_csv(
    path: Path,
    label: str,
    *,
    date_format: str | None = None,
    columns: dict[str, str] | None = None,
) -> LongTable:
    """Read a long CSV table (columns time|date, symbol|ticker, open, high, low, close, volume).

    Parameters
    ----------
    path : pathlib.Path
        The file (may be compressed: ``.csv.gz``).
    label : str
        The file as the user wrote it, for messages (``prices.csv row 17``).
    date_format : str, optional
        ``data.date_format``: strftime format of the time column (default: inferred).
    columns : dict of str to str, optional
        ``data.columns``: canonical column -> the file's name for it.

    Returns
    -------
    LongTable
        Checked rows, in file order.
    """
    header = _csv_header(path, label)
    cols = map_columns(header, label, mapping=columns)
    fast = {cols["symbol"]: pa.string(), **{cols[f]: pa.float64() for f in FIELDS}}
    if date_format is not None:  # Arrow would read ISO-looking text as dates on its own
        fast[cols["time"]] = pa.string()
    try:
        table = _read_csv_table(path, label, fast)
    except pa.ArrowInvalid:
        # A value that is no number: read everything as text so the bad row can be named.
        table = _read_csv_table(path, label, dict.fromkeys(header, pa.string()))
    lines = np.arange(table.num_rows) + 2  # the header is line 1
    blank = _blank_rows(table)
    if blank.any():
        table, lines = table.filter(pa.array(~blank)), lines[~blank]
    return _to_long(table, cols, lambda i: f"{label} row {lines[i]}", label, date_format)


def _blank_rows(table: pa.Table) -> np.ndarray:
    blank = np.ones(table.num_rows, dtype=bool)
    for col in table.columns:
        empty = pc.is_null(col)
        if pa.types.is_string(col.type):
            empty = pc.or_(empty, pc.equal(pc.utf8_trim_whitespace(col), ""))
        blank &= np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)
    return blank


# ----------------------------------------------------------------------------- parquet

_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")


def read_parquet(
    path: Path,
    label: str,
    *,
    date_format: str | None = None,
    columns: dict[str, str] | None = None,
) -> LongTable:
    """Read a long Parquet table: one file, or a folder dataset (hive partitions allowed).

    Parameters
    ----------
    path : pathlib.Path
        A ``.parquet`` file or a folder of them (``symbol=AAPL/part-0.parquet`` works too).
    label : str
        The path as the user wrote it, for messages (``prices.parquet row 17``, 1-based; in a
        folder, ``prices/part-1.parquet row 17``).
    date_format : str, optional
        ``data.date_format``: strftime format of a text time column (default: inferred; a
        timestamp column needs none).
    columns : dict of str to str, optional
        ``data.columns``: canonical column -> the file's name for it.

    Returns
    -------
    LongTable
        Checked rows, in file order.
    """
    import pyarrow.dataset as pds

    try:
        dataset = pds.dataset(str(path), format="parquet", partitioning="hive")
        fragments = list(dataset.get_fragments())
    except (OSError, pa.ArrowException) as e:
        raise DataError(label, f"cannot read Parquet ({e})", "check the path and format") from e
    if not fragments:
        raise DataError(label, "holds no Parquet files", "write the table into the folder")
    not_index = lambda name: bool(_PANDAS_INDEX.match(name))  # noqa: E731
    cols = map_columns(dataset.schema.names, label, ignore=not_index, mapping=columns)
    names, tables, starts, n = [], [], [], 0
    for frag in fragments:
        name = label
        if path.is_dir():
            name = f"{label.rstrip('/')}/{Path(frag.path).relative_to(path).as_posix()}"
            partition_keys = set(dataset.schema.names) - set(frag.physical_schema.names)
            map_columns(
                frag.physical_schema.names + sorted(partition_keys),
                name,
                ignore=not_index,
                mapping=columns,
            )
        try:
            t = frag.to_table(schema=dataset.schema, columns=list(cols.values()))
        except (OSError, pa.ArrowException) as e:
            raise DataError(name, f"cannot read Parquet ({e})", "check the file") from e
        names.append(name)
        tables.append(t)
        starts.append(n)
        n += t.num_rows
    table = pa.concat_tables(tables)
    first = np.asarray(starts)

    def locate(i: int) -> str:
        k = int(np.searchsorted(first, i, side="right")) - 1
        return f"{names[k]} row {i - first[k] + 1}"

    return _to_long(table, cols, locate, label, date_format)


# ----------------------------------------------------------------------------- bokeh stocks


def bokeh_stocks_file() -> Path:
    """The ``stocks.csv.gz`` shipped by the installed ``bokeh-sampledata`` package (no network)."""
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "data.source",
            "bokeh_stocks needs the bokeh-sampledata package, which is not installed",
            "pip install bokeh-sampledata",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "_data" / "stocks.csv.gz"
    if not path.is_file():
        raise DataError("data.source", f"bokeh-sampledata has no {path.name}", "update it")
    return path


def read_bokeh_stocks(adjust: bool = True) -> LongTable:
    """Daily AAPL, FB, GOOG, IBM, MSFT 2000-2013 from bokeh-sampledata (public domain).

    Parameters
    ----------
    adjust : bool, optional
        Split- (and dividend-) adjust with the file's ``Adj Close``: ``f = adj_close / close``
        multiplies open, high, low and close and divides volume, so prices are continuous across
        splits. False keeps the raw prices.

    Returns
    -------
    LongTable
        The bars; GOOG starts 2004-08-19 and FB 2012-05-18.
    """
    path = bokeh_stocks_file()
    label = f"bokeh-sampledata {path.name}"
    table = pacsv.read_csv(str(path))
    table = table.rename_columns([c.strip().lower().replace(" ", "_") for c in table.column_names])
    if "adj_close" not in table.column_names:
        raise DataError(label, "has no Adj Close column", "update bokeh-sampledata")
    adj = np.asarray(pc.cast(table.column("adj_close"), pa.float64()), np.float64)
    table = table.drop_columns(["adj_close"])
    cols = map_columns(table.column_names, label)
    long = _to_long(table, cols, lambda i: f"{label} row {i + 2}", label)
    if adjust:
        factor = adj / long.values["close"]
        for f in ("open", "high", "low", "close"):
            long.values[f] = long.values[f] * factor
        long.values["volume"] = long.values["volume"] / factor
    return long


# ----------------------------------------------------------------------------- zarr


@dataclass
class ZarrStore:
    """A Zarr store opened lazily: checked coordinates on the client, values in dask arrays."""

    path: str
    label: str
    time: np.ndarray  # datetime64[ns] ([s] past 2262), sorted, unique
    symbols: list[str]
    order: np.ndarray | None  # the store's rows in time order (None: already sorted)
    arrays: dict[str, da.Array]  # float64 (time, symbol) per field, in the store's row order
    storage_options: dict | None = None  # of a URL, for reading the store again in tasks


def read_zarr(path: Path | str, label: str) -> ZarrStore:
    """Open a Zarr store of open/high/low/close/volume over (time, symbol), lazily.

    Coordinates and variables are checked here (they are metadata); the bar values are checked
    per chunk inside the tasks (`admf_dask.data.lazy.checked`, done by the data stage).

    Parameters
    ----------
    path : pathlib.Path or str
        The store.
    label : str
        The store as the user wrote it, for messages.

    Returns
    -------
    ZarrStore
        Sorted times (unsorted stores are sorted through ``order``), symbols, dask arrays.
    """

    try:
        opts = getattr(path, "storage_options", None) or None  # a URL (dasktools.fs.Loc)
        ds = open_zarr(str(path), storage_options=opts)  # far dates in seconds: docs/TIME.md
    except Exception as e:  # zarr raises many types for "not a store"
        raise DataError(
            label, f"is not a readable Zarr store ({e})", "write it with xarray's to_zarr"
        ) from e
    by_lower = {str(k).lower(): k for k in ds.data_vars}
    missing = [f for f in FIELDS if f not in by_lower]
    if missing:
        raise DataError(
            label,
            f"missing variable(s) {', '.join(missing)}; found {', '.join(map(str, ds.data_vars)) or 'none'}",
            "the store needs open, high, low, close, volume over (time, symbol)",
        )
    extra = [str(by_lower[k]) for k in by_lower if k not in FIELDS]
    if extra:
        raise DataError(
            label, f"unknown variable(s) {', '.join(extra)}", "drop them before writing the store"
        )
    for f in FIELDS:
        dims = set(ds[by_lower[f]].dims)
        if dims != {"time", "symbol"}:
            raise DataError(
                label,
                f"variable {by_lower[f]} has dims {tuple(ds[by_lower[f]].dims)}",
                "store each variable over dims (time, symbol)",
            )
    if not np.issubdtype(ds["time"].dtype, np.datetime64):
        raise DataError(
            label,
            f"time coordinate has type {ds['time'].dtype}, not dates",
            "store datetime64 times",
        )
    time = np.asarray(ds["time"].values)
    symbols = [str(s) for s in np.asarray(ds["symbol"].values).tolist()]
    dup = pd.Index(symbols).duplicated()
    if dup.any():
        raise DataError(label, f"symbol '{symbols[int(np.argmax(dup))]}' appears twice", "keep one")
    if np.isnat(time).any():
        raise DataError(label, "time coordinate has empty values (NaT)", "give every bar a date")
    time = as_time(time, where=label)
    order: np.ndarray | None = None
    if time.size > 1 and not (time[1:] >= time[:-1]).all():
        order = np.argsort(time, kind="stable")  # unsorted input is sorted, not refused
        time = time[order]
    dup = time[1:] == time[:-1]
    if dup.any():
        raise DataError(
            label, f"time {time[int(np.argmax(dup))]} appears twice", "keep one bar per time"
        )
    arrays = {}
    for f in FIELDS:
        var = ds[by_lower[f]].transpose("time", "symbol").data
        arrays[f] = da.asarray(var).astype(np.float64)
    return ZarrStore(str(path), label, time, symbols, order, arrays, opts)


# ----------------------------------------------------------------------------- synthetic


def read_synthetic(
    symbols: int | list[str] | None,
    bars: int,
    seed: int,
    calendar_start: str,
    *,
    missing: float = 0.0,
    late_listed: float = 0.0,
    delisted: float = 0.0,
    frequency: str | None = None,
    session: str | None = None,
) -> Dense:
    """The embedded seeded market on a business-day calendar.

    Parameters
    ----------
    symbols : int or list of str or None
        How many (names ``S000``...), or the names; None gives `DEFAULT_SYNTHETIC_SYMBOLS`.
    bars : int
        Number of business days.
    seed : int
        Non-negative random seed.
    calendar_start : str
        First business day (ISO date; a weekend rolls forward).
    missing, late_listed, delisted : float, optional
        See `admf_dask.data._synthetic.synthetic_ohlcv`.
    frequency, session : str, optional
        ``data.frequency`` / ``data.session`` (`admf_dask.data.calendar.synthetic_times`).

    Returns
    -------
    Dense
        The market.
    """
    if symbols is None:
        symbols = DEFAULT_SYNTHETIC_SYMBOLS
    names = symbol_names(symbols) if isinstance(symbols, int) else [str(s) for s in symbols]
    if seed < 0:
        raise ConfigError("data.seed", f"seed {seed} is negative", "use a seed >= 0")
    time = synthetic_times(
        DataConfig(
            source="synthetic",
            bars=bars,
            calendar_start=calendar_start,
            frequency=frequency,
            session=session,
        )
    )
    values = synthetic_ohlcv(
        bars, len(names), seed, missing=missing, late_listed=late_listed, delisted=delisted
    )
    return Dense(time, names, values)


__all__: list[str] = [
    "DEFAULT_SYNTHETIC_SYMBOLS",
    "Dense",
    "LongTable",
    "ZarrStore",
    "bokeh_stocks_file",
    "read_bokeh_stocks",
    "read_csv",
    "read_parquet",
    "read_synthetic",
    "read_zarr",
]
