"""Lazy Parquet long tables: the client keeps coordinates, tasks read row groups.

`open_parquet` reads the footer of every file (row groups, row counts), then runs one task per
row group that reads it, checks it exactly as `admf_dask.data.sources.read_parquet` would (same
messages, same file and row) and returns only its distinct times and symbols. The client unions
those into the time axis and symbol list; `LazyLong.source` (an `admf_dask.data.lazy.LazySource`)
builds dask arrays whose chunk tasks read the row groups overlapping their times and pivot them
into a dense block (NaN where a bar is absent). No array of values passes through the client or the graph.

The first error in file order wins as in the eager reader: each row-group task stops at its
first failing check, keyed ``(check, field, row)``; the client raises the smallest key. Duplicate
``(time, symbol)`` bars within a row group are found by its task; across row groups they can
only occur where two groups share times and symbols, and those groups' shared times are checked
by one more task each (see docs/ARCHITECTURE.md, "Lazy Parquet").
"""

from __future__ import annotations

import contextlib
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from admf_dask.dasktools.fs import Loc
from admf_dask.data.dates import as_time, unit_of
from admf_dask.data.validate import FIELDS, check_bars, check_time_range, map_columns
from admf_dask.errors import DataError

_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")
#: column of an ingested store holding each row's line in the source CSV (for messages)
LINE_COLUMN = "__line__"
#: file of an ingested store keeping its passed check (`_Checked`; "_": not a Parquet part)
CHECKED = "_admf_checked.npz"

# The order of the checks of `sources._to_long`: the first failing check over the whole table
# is reported, and within a check the first row.
_TIME, _RANGE, _SYMBOL, _NUMBER, _BARS = range(5)


@dataclass(frozen=True)
class Part:
    """One row group of one file."""

    fragment: Any  # pyarrow.dataset.ParquetFileFragment restricted to the row group
    name: str  # the file as the user sees it (``prices/part-0.parquet``)
    first: int  # 0-based row of the group's first row within its file
    start: int  # 0-based row of the group's first row within the whole dataset
    rows: int


@dataclass(frozen=True)
class Reading:
    """What a task needs to read a part: the schema, column names and time decoding."""

    schema: pa.Schema
    cols: dict[str, str]  # canonical -> the table's column
    label: str  # messages of an ingested store name the CSV (``prices.csv row 17``)
    lines: bool  # the parts carry `LINE_COLUMN`
    date_text: tuple[np.ndarray, np.ndarray] | None  # text dates: trimmed text -> time, sorted
    unit: str = "ns"  # of the table's times: s when one is past 2262 (docs/TIME.md)

    def columns(self) -> list[str]:
        return list(self.cols.values()) + ([LINE_COLUMN] if self.lines else [])


@dataclass
class LazyLong:
    """A checked long table known by its coordinates; values are read by tasks.

    Attributes
    ----------
    time : numpy.ndarray
        datetime64[ns] ([s] past 2262: docs/TIME.md), sorted, unique: every bar time.
    symbols : list of str
        Every symbol, sorted.
    token : str
        Identity of the files read and the read options (paths, sizes, modification times).
    """

    time: np.ndarray
    symbols: list[str]
    token: str
    parts: list[Part]
    reading: Reading
    part_times: list[np.ndarray] = field(repr=False)  # int64 distinct times per part
    part_symbols: list[set[str]] = field(repr=False)

    def symbol_times(self, names: Sequence[str]) -> np.ndarray:
        """The times at which any of `names` has a bar (a selection's calendar)."""
        wanted = set(names)
        found, mixed = [], []
        for p, t, s in zip(self.parts, self.part_times, self.part_symbols, strict=True):
            if s <= wanted:
                found.append(t)
            elif s & wanted:  # other symbols too: only a read tells which times are wanted
                mixed.append(dask.delayed(_symbol_times)(p, self.reading, sorted(wanted)))
        if mixed:
            found += list(dask.compute(mixed)[0])
        if not found:
            return self.time[:0]
        return np.unique(np.concatenate(found)).view(self.time.dtype)

    def source(
        self,
        wanted: list[str] | None,
        start: np.datetime64 | None = None,
        stop: np.datetime64 | None = None,
    ) -> Any:
        """The selected symbols as an `admf_dask.data.lazy.LazySource` (tasks read the values).

        Its time axis is the calendar of the selected symbols' bars (the eager reader's, see
        `admf_dask.data.load._pivot`); unknown symbols and an empty window raise its errors.
        """
        from admf_dask.data.lazy import LazySource
        from admf_dask.data.load import _in_window, _no_bars, _unknown

        names = self.symbols
        if wanted is not None:
            known = set(names)
            missing = [s for s in wanted if s not in known]
            if missing:
                raise _unknown(missing, names)
            names = [str(s) for s in wanted]
        times = self.time if wanted is None else self.symbol_times(names)
        if not _in_window(times, start, stop).any():
            raise _no_bars(self.time, start, stop)
        token = tokenize(self.token, times, names)

        def build(bounds: Sequence[int]) -> dict[str, da.Array]:
            return self.arrays(times, names, bounds)

        return LazySource(times, names, token, build)

    def arrays(
        self, time: np.ndarray, names: Sequence[str], bounds: int | Sequence[int]
    ) -> dict[str, da.Array]:
        """Dask arrays of the five fields over (`time`, `names`).

        Parameters
        ----------
        time : numpy.ndarray
            Sorted, a subset of `LazyLong.time`.
        names : sequence of str
            The symbols, in column order.
        bounds : int or sequence of int
            Bars per time chunk, or the chunks' row bounds in `time` (``bounds[0]`` to
            ``bounds[-1]`` are the rows returned).

        Returns
        -------
        dict of str to dask.array.Array
            float64 (time, symbol) per field; a bar absent from the table is NaN in all five.
        """
        t = as_time(time, self.reading.unit).view(np.int64)
        if isinstance(bounds, int):
            bounds = list(range(0, t.size, bounds)) + [t.size]
        bounds = [int(b) for b in bounds]
        chunks = (tuple(np.diff(bounds).tolist()), (len(names),))
        names = [str(n) for n in names]
        wanted = set(names)
        block = "parquet-block-" + tokenize(self.token, t, names, bounds)
        layer: dict[Any, Any] = {}
        for i in range(len(bounds) - 1):
            lo, hi = t[bounds[i]], t[bounds[i + 1] - 1]
            parts = [
                p
                for p, pt, ps in zip(self.parts, self.part_times, self.part_symbols, strict=True)
                if ps & wanted and pt.size and pt[0] <= hi and pt[-1] >= lo and _any_in(pt, lo, hi)
            ]
            layer[(block, i)] = (
                _read_block,
                parts,
                self.reading,
                t[bounds[i] : bounds[i + 1]],
                names,
            )
        graph_layers: dict[str, Any] = {block: layer}
        deps: dict[str, set[str]] = {block: set()}
        out = {}
        meta = np.empty((0, 0), np.float64)
        for f in FIELDS:
            name = f"market-{f}-" + tokenize(block, f)
            graph_layers[name] = {
                (name, i, 0): (operator.getitem, (block, i), f) for i in range(len(bounds) - 1)
            }
            deps[name] = {block}
            out[f] = name
        hlg = HighLevelGraph(graph_layers, deps)
        return {
            f: da.Array(hlg, name, chunks, dtype=np.float64, meta=meta) for f, name in out.items()
        }


def _any_in(sorted_times: np.ndarray, lo: int, hi: int) -> bool:
    i = int(np.searchsorted(sorted_times, lo, side="left"))
    return i < sorted_times.size and sorted_times[i] <= hi


# ----------------------------------------------------------------------------- open


def open_parquet(
    path: Path | Loc,
    label: str,
    *,
    date_format: str | None = None,
    columns: dict[str, str] | None = None,
    source_label: str | None = None,
    date_text: tuple[np.ndarray, np.ndarray] | None = None,
) -> LazyLong:
    """Check a long Parquet table (one file or a folder dataset) and learn its coordinates.

    Parameters
    ----------
    path : pathlib.Path or Loc
        A ``.parquet`` file or a folder of them (hive partitions such as ``symbol=AAPL/``), or
        one at a URL (the tasks read it through fsspec).
    label : str
        The path as the user wrote it, for messages (``prices.parquet row 17``).
    date_format : str, optional
        ``data.date_format`` for a text time column (default: inferred from all its values, which
        the client then reads; a timestamp column is read by the tasks only).
    columns : dict of str to str, optional
        ``data.columns``: canonical column -> the file's name for it.
    source_label : str, optional
        For a store written by `admf_dask.data.ingest`: the CSV as the user named it; messages
        then name its rows (the store keeps each row's CSV line).
    date_text : tuple of numpy.ndarray, optional
        For a text time column already parsed as a whole (`admf_dask.data.ingest`): the sorted
        distinct trimmed texts and their datetime64 values (one unit: `time_unit`).

    Returns
    -------
    LazyLong
        The coordinates and what the tasks need to read the values.

    Raises
    ------
    DataError
        Exactly as `admf_dask.data.sources.read_parquet`: the first bad row of the table.
    """
    import pyarrow.dataset as pds

    # a URL (`Loc`): the tasks read its row groups from the store through fsspec (nothing is
    # copied to the client, and workers on other machines reach it too)
    remote = isinstance(path, Loc) and not path.is_local
    fs = path.fs if remote else None
    root = path.path.rstrip("/") if remote else str(path)
    is_dir = path.is_dir()
    ingested = False  # a store of `admf-dask ingest`: its check is kept with it (`_Checked`)
    if is_dir and not remote:
        from admf_dask.data.ingest import read_manifest

        manifest = read_manifest(path)
        ingested = manifest is not None
        if ingested and source_label is None:  # name the CSV's rows
            source_label = str(manifest.get("label") or label)
    try:
        dataset = pds.dataset(root, format="parquet", partitioning="hive", filesystem=fs)
        fragments = list(dataset.get_fragments())
    except (OSError, pa.ArrowException) as e:
        raise DataError(label, f"cannot read Parquet ({e})", "check the path and format") from e
    if not fragments:
        raise DataError(label, "holds no Parquet files", "write the table into the folder")
    lines = source_label is not None
    hidden = lambda name: bool(_PANDAS_INDEX.match(name)) or (lines and name == LINE_COLUMN)  # noqa: E731
    cols = map_columns(dataset.schema.names, label, ignore=hidden, mapping=columns)
    parts: list[Part] = []
    ident: list[Any] = []
    store_ident: list[Any] = []
    n = 0
    for frag in fragments:
        name = label
        if is_dir:
            rel = frag.path[len(root) + 1 :] if remote else Path(frag.path).relative_to(path)
            name = f"{label.rstrip('/')}/{Path(rel).as_posix()}"
            partition_keys = set(dataset.schema.names) - set(frag.physical_schema.names)
            map_columns(
                frag.physical_schema.names + sorted(partition_keys),
                name,
                ignore=hidden,
                mapping=columns,
            )
        try:
            groups = frag.split_by_row_group()
            if remote:  # the object's size and version (ETag, else its modification time)
                info = fs.info(frag.path)
                version = info.get("ETag") or info.get("LastModified") or info.get("mtime")
                ident.append((frag.path, info.get("size"), str(version)))
            else:
                st = Path(frag.path).stat()
                ident.append((frag.path, st.st_size, st.st_mtime_ns))
                if ingested:  # the store as it is, wherever it lies (a cache entry is renamed)
                    store_ident.append((str(rel), st.st_size, st.st_mtime_ns, len(groups)))
        except (OSError, pa.ArrowException) as e:
            raise DataError(name, f"cannot read Parquet ({e})", "check the file") from e
        first = 0
        for g in groups:
            rows = g.row_groups[0].num_rows
            if rows:
                parts.append(Part(g, name, first, n, rows))
            first += rows
            n += rows
    if n == 0:
        raise DataError(label, "has no data rows", "add bars to the file")
    schema = dataset.schema
    reading = Reading(schema, cols, source_label or label, lines, None)
    time_type = schema.field(cols["time"]).type
    if date_text is None and not (pa.types.is_timestamp(time_type) or pa.types.is_date(time_type)):
        date_text = _text_dates(dataset, parts, reading, date_format)
    if date_text is not None:
        reading = Reading(schema, cols, reading.label, lines, date_text, unit_of(date_text[1]))
    checked = None
    if ingested:
        checked = _Checked(path, tokenize(_Checked.VERSION, store_ident, cols, date_text))
    found = checked.read(len(parts)) if checked is not None else None
    if found is None:
        reading, part_times, part_symbols = _check_all(parts, reading)
        if checked is not None:
            checked.write(reading.unit, part_times, part_symbols)
    else:  # the store's check, kept with it: the same files, sizes and modification times
        unit, part_times, part_symbols = found
        reading = replace(reading, unit=unit)
    time = np.unique(np.concatenate(part_times)).view(f"datetime64[{reading.unit}]")
    symbols = sorted(set().union(*part_symbols))
    token = tokenize("admf-dask lazy parquet v1", ident, cols, date_format, reading.label)
    return LazyLong(time, symbols, token, parts, reading, part_times, part_symbols)


def _check_all(
    parts: list[Part], reading: Reading
) -> tuple[Reading, list[np.ndarray], list[set[str]]]:
    """Check every row group (one task each) and the duplicates across them; raise the first
    error of the table. The reading (in seconds for a table past 2262), the distinct times and
    the symbols of each part."""
    results = dask.compute([dask.delayed(_check_part)(p, reading) for p in parts])[0]
    if any(r.get("far") for r in results):  # a time past 2262: the whole table in seconds
        reading = replace(reading, unit="s")
        results = dask.compute([dask.delayed(_check_part)(p, reading) for p in parts])[0]
    errors = [r["error"] for r in results if r["error"] is not None]
    if errors:
        _, where, what, fix = min(errors, key=lambda e: e[0])
        raise DataError(where, what, fix)
    part_times = [r["times"] for r in results]
    part_symbols = [set(r["symbols"]) for r in results]
    _check_duplicates(parts, reading, results, part_times, part_symbols)
    return reading, part_times, part_symbols


@dataclass(frozen=True)
class _Checked:
    """The passed check of an ingested store, kept in it (`CHECKED`): each part's distinct times
    and symbols and the time unit, under the key of the store's files (relative paths, sizes,
    modification times, row groups) and read options. A later read with the same key skips the
    check tasks; a changed store has another key and is checked again. Only a passed check is
    kept (a bad store raises its error on every read). Not written where the store is read-only.
    """

    store: Path
    key: str
    VERSION = "admf-dask parquet check v1"

    @property
    def path(self) -> Path:
        return self.store / CHECKED

    def read(self, n_parts: int) -> tuple[str, list[np.ndarray], list[set[str]]] | None:
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["key"]) != self.key or z["counts"].size != n_parts:
                    return None
                times = np.split(z["times"], np.cumsum(z["counts"])[:-1])
                names = z["names"].tolist()
                codes = np.split(z["codes"], np.cumsum(z["scounts"])[:-1])
                unit = str(z["unit"])
        except (OSError, ValueError, KeyError):
            return None
        return unit, times, [{names[c] for c in cs.tolist()} for cs in codes]

    def write(self, unit: str, times: list[np.ndarray], symbols: list[set[str]]) -> None:
        import os
        import secrets

        names = sorted(set().union(*symbols))
        index = {s: i for i, s in enumerate(names)}
        codes = [np.array(sorted(index[s] for s in ss), np.int64) for ss in symbols]
        tmp = self.store / f".admf-checked-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    key=np.array(self.key),
                    unit=np.array(unit),
                    counts=np.array([t.size for t in times], np.int64),
                    times=np.concatenate(times).astype(np.int64),
                    names=np.array(names, dtype=str),
                    scounts=np.array([c.size for c in codes], np.int64),
                    codes=np.concatenate(codes),
                )
            os.replace(tmp, self.path)  # a concurrent reader sees the old file or the new one
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _text_dates(
    dataset: Any, parts: list[Part], reading: Reading, date_format: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a text time column on the client (one format inferred from all of it).

    Returns the distinct trimmed texts, sorted, and their times: the tasks look their cells up
    there, so they decode exactly as the whole column did.
    """
    from admf_dask.data.dates import _text
    from admf_dask.data.sources import _parse_time

    col = dataset.to_table(columns=[reading.cols["time"]]).column(0)
    locate = _locator(parts, reading, col_lines=_lines(dataset, reading))
    time = _parse_time(col, locate, date_format)
    time = check_time_range(time, locate)
    text = _text(col)
    enc = pc.dictionary_encode(text)
    codes = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
    uniques = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    first = np.full(uniques.size, -1, np.int64)
    ok = codes >= 0
    first[codes[ok][::-1]] = np.flatnonzero(ok)[::-1]
    order = np.argsort(uniques.astype(str), kind="stable")
    keys = uniques[order].astype(str)
    values = time[first[order]]
    return keys, values


def _lines(dataset: Any, reading: Reading) -> np.ndarray | None:
    if not reading.lines:
        return None
    return np.asarray(dataset.to_table(columns=[LINE_COLUMN]).column(0).to_numpy(), np.int64)


def _locator(
    parts: list[Part], reading: Reading, col_lines: np.ndarray | None = None
) -> Callable[[int], str]:
    """Whole-table row index -> ``prices/part-0.parquet row 3`` (or the CSV's row)."""
    if col_lines is not None:
        return lambda i: f"{reading.label} row {col_lines[i]}"
    starts = np.asarray([p.start for p in parts])

    def locate(i: int) -> str:
        k = int(np.searchsorted(starts, i, side="right")) - 1
        p = parts[k]
        return f"{p.name} row {p.first + i - p.start + 1}"

    return locate


# ----------------------------------------------------------------------------- tasks


def _read_part(part: Part, reading: Reading) -> pa.Table:
    try:
        return part.fragment.to_table(schema=reading.schema, columns=reading.columns())
    except (OSError, pa.ArrowException) as e:
        raise DataError(part.name, f"cannot read Parquet ({e})", "check the file") from e


def _part_locate(part: Part, reading: Reading, table: pa.Table) -> Callable[[int], str]:
    if reading.lines:
        lines = np.asarray(table.column(LINE_COLUMN).to_numpy(), np.int64)
        return lambda i: f"{reading.label} row {lines[i]}"
    return lambda i: f"{part.name} row {part.first + i + 1}"


def _decode_time(
    col: pa.ChunkedArray, reading: Reading, locate: Callable[[int], str]
) -> np.ndarray:
    if reading.date_text is None:
        from admf_dask.data.sources import _parse_time

        return _parse_time(col, locate)
    from admf_dask.data.dates import _text

    keys, values = reading.date_text
    text = _text(col).fill_null("")
    # every cell is known: the client parsed them all
    idx = pc.index_in(text, value_set=pa.array(keys.tolist(), pa.string()))
    return values[np.asarray(idx.fill_null(0).to_numpy(zero_copy_only=False))]


def _numbers(col: pa.ChunkedArray, field: str, locate: Callable[[int], str]) -> np.ndarray:
    """`sources._parse_number`, with Arrow's cast first for text that is all numbers."""
    from admf_dask.data.sources import _parse_number

    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
        except pa.ArrowInvalid:  # blanks, "NA", a typo: the reader's own rules name the row
            pass
    return _parse_number(col, field, locate)


def _symbols(table: pa.Table, reading: Reading) -> pa.ChunkedArray:
    sym = table.column(reading.cols["symbol"])
    if not pa.types.is_string(sym.type):
        sym = pc.cast(sym, pa.string())
    return pc.utf8_trim_whitespace(sym).fill_null("")


def _check_part(part: Part, reading: Reading) -> dict[str, Any]:
    """Check one row group like `sources._to_long`; its distinct times and symbols."""

    table = _read_part(part, reading)
    where = _part_locate(part, reading, table)
    seen = [0]

    def locate(i: int) -> str:
        seen[0] = i
        return where(i)

    def failed(check: int, sub: int, e: DataError) -> dict[str, Any]:
        return {"error": ((check, sub, part.start + seen[0]), e.where, e.what, e.fix)}

    cols = reading.cols
    try:
        time = _decode_time(table.column(cols["time"]), reading, locate)
    except DataError as e:
        return failed(_TIME, 0, e)
    try:
        time = check_time_range(time, locate, None if reading.unit == "ns" else reading.unit)
    except DataError as e:
        return failed(_RANGE, 0, e)
    if unit_of(time) != reading.unit:  # past 2262: the table is checked again in seconds
        return {"error": None, "far": True}
    sym = _symbols(table, reading)
    empty = np.asarray(pc.equal(sym, "").to_numpy(zero_copy_only=False))
    if empty.any():
        i = int(np.argmax(empty))
        return failed(_SYMBOL, 0, DataError(locate(i), "symbol is empty", "name the symbol"))
    values = {}
    for k, f in enumerate(FIELDS):
        try:
            values[f] = _numbers(table.column(cols[f]), f, locate)
        except DataError as e:
            return failed(_NUMBER, k, e)
    try:
        check_bars(values, locate)
    except DataError as e:
        return failed(_BARS, 0, e)
    symbol = np.asarray(sym.to_numpy(zero_copy_only=False), dtype=object)
    codes, names = pd.factorize(symbol)
    t = time.view(np.int64)
    dup = _first_duplicate(t, codes)
    return {
        "error": None,
        "times": np.unique(t),
        "symbols": [str(s) for s in names],
        "dup": None if dup is None else _dup_info(dup, part, t, symbol, where),
    }


def _first_duplicate(t: np.ndarray, codes: np.ndarray) -> tuple[int, int] | None:
    """(later, earlier) rows of the first repeated key in row order (as `check_unique_bars`)."""
    if t.size < 2:
        return None
    order = np.lexsort((t, codes))
    ts, cs = t[order], np.asarray(codes)[order]
    same = (ts[1:] == ts[:-1]) & (cs[1:] == cs[:-1])
    if not same.any():
        return None
    pairs = np.flatnonzero(same)
    k = pairs[np.argmin(order[pairs + 1])]
    return int(order[k + 1]), int(order[k])


def _dup_info(
    dup: tuple[int, int], part: Part, t: np.ndarray, symbol: np.ndarray, where: Callable
) -> tuple:
    later, earlier = dup
    return (
        part.start + later,
        part.start + earlier,
        where(later),
        where(earlier),
        int(t[later]),
        str(symbol[later]),
    )


def _keys(
    part: Part, reading: Reading, times: np.ndarray | None, places: bool = True
) -> dict[str, Any]:
    """Rows of a part at `times` (all when None): their time, symbol, row and place."""
    table = _read_part(part, reading)
    where = _part_locate(part, reading, table)
    t = _decode_time(table.column(reading.cols["time"]), reading, where)
    t = as_time(t, reading.unit).view(np.int64)
    rows = np.arange(t.size) if times is None else np.flatnonzero(np.isin(t, times))
    sym = np.asarray(_symbols(table, reading).to_numpy(zero_copy_only=False), dtype=object)
    return {
        "t": t[rows],
        "s": sym[rows],
        "row": rows + part.start,
        "where": [where(int(i)) for i in rows] if places and rows.size <= 100_000 else None,
        "local": rows,
        "part": part,
    }


def _cross_duplicate(group: list[Part], reading: Reading, times: np.ndarray) -> tuple | None:
    """The first duplicate among several row groups' rows at their shared `times`."""
    got = [_keys(p, reading, times) for p in group]
    t = np.concatenate([g["t"] for g in got])
    s = np.concatenate([g["s"] for g in got])
    row = np.concatenate([g["row"] for g in got])
    order = np.argsort(row, kind="stable")  # whole-table row order
    t, s, row = t[order], s[order], row[order]
    codes, _ = pd.factorize(s)
    dup = _first_duplicate(t, codes)
    if dup is None:
        return None
    later, earlier = dup

    def place(i: int) -> str:
        r = int(row[i])
        for g in got:
            p = g["part"]
            if p.start <= r < p.start + p.rows:
                k = int(np.flatnonzero(g["row"] == r)[0])
                if g["where"] is not None:
                    return g["where"][k]
                table = _read_part(p, reading)
                return _part_locate(p, reading, table)(int(g["local"][k]))
        raise AssertionError(r)

    return (
        int(row[later]),
        int(row[earlier]),
        place(later),
        place(earlier),
        int(t[later]),
        str(s[later]),
    )


def overlap_groups(
    times: list[np.ndarray], share_symbols: Callable[[int, int], bool]
) -> list[tuple[list[int], np.ndarray]]:
    """Groups of table parts in which a (time, symbol) key can repeat across parts.

    Parts ``i`` and ``j`` are joined (union-find) when `share_symbols` ``(i, j)`` and their
    sorted unique `times` intersect; a sweep over the parts' time spans compares only parts
    whose spans overlap.

    Returns
    -------
    list of (members, shared times)
        Each group of two or more parts, with the times found in more than one of them.
    """
    parent = list(range(len(times)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    spans = sorted((int(t[0]), int(t[-1]), i) for i, t in enumerate(times) if t.size)
    active: list[tuple[int, int]] = []  # (end, index)
    for lo, hi, i in spans:
        active = [(e, j) for e, j in active if e >= lo]
        for _, j in active:
            if share_symbols(i, j) and np.intersect1d(times[i], times[j], assume_unique=True).size:
                parent[root(i)] = root(j)
        active.append((hi, i))
    groups: dict[int, list[int]] = {}
    for i in range(len(times)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        u, counts = np.unique(np.concatenate([times[i] for i in members]), return_counts=True)
        out.append((members, u[counts > 1]))
    return out


def _check_duplicates(
    parts: list[Part],
    reading: Reading,
    results: list[dict[str, Any]],
    part_times: list[np.ndarray],
    part_symbols: list[set[str]],
) -> None:
    """Raise on the first duplicate bar of the whole table, as `check_unique_bars` would."""
    from admf_dask.data.validate import _day, _pair

    found = [r["dup"] for r in results if r["dup"] is not None]
    tasks = [
        dask.delayed(_cross_duplicate)([parts[i] for i in members], reading, shared)
        for members, shared in overlap_groups(
            part_times, lambda i, j: bool(part_symbols[i] & part_symbols[j])
        )
    ]
    if tasks:
        found += [d for d in dask.compute(tasks)[0] if d is not None]
    if not found:
        return
    # the duplicate whose later row comes first; its nearest earlier twin
    later, earlier, w_later, w_earlier, stamp, symbol = min(found, key=lambda d: (d[0], -d[1]))
    raise DataError(
        _pair(w_earlier, w_later),
        f"duplicate bar for ({_day(np.datetime64(stamp, reading.unit))}, {symbol})",
        "keep one row per time and symbol",
    )


def _symbol_times(part: Part, reading: Reading, wanted: list[str]) -> np.ndarray:
    got = _keys(part, reading, None, places=False)
    return np.unique(got["t"][pd.Index(got["s"]).isin(wanted)])


def _read_block(
    parts: list[Part], reading: Reading, times: np.ndarray, names: list[str]
) -> dict[str, np.ndarray]:
    """The dense (time, symbol) block of `times` x `names` from the row groups holding them."""

    out = {f: np.full((times.size, len(names)), np.nan) for f in FIELDS}
    index = pd.Index(names)
    lo, hi = times[0], times[-1]
    for part in parts:
        table = _read_part(part, reading)
        where = _part_locate(part, reading, table)
        t = _decode_time(table.column(reading.cols["time"]), reading, where)
        t = as_time(t, reading.unit).view(np.int64)
        si = index.get_indexer(
            np.asarray(_symbols(table, reading).to_numpy(zero_copy_only=False), dtype=object)
        )
        keep = (t >= lo) & (t <= hi) & (si >= 0)
        ti = np.searchsorted(times, t[keep])
        hit = times[np.minimum(ti, times.size - 1)] == t[keep]
        rows = np.flatnonzero(keep)[hit]
        ti, sj = ti[hit], si[rows]
        for f in FIELDS:
            out[f][ti, sj] = _numbers(table.column(reading.cols[f]), f, where)[rows]
    return out


__all__ = ["LINE_COLUMN", "LazyLong", "Part", "open_parquet"]
