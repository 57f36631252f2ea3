"""A CSV long table converted once into a Parquet store that `admf_dask.data.parquet` reads lazily.

``admf-dask ingest prices.csv prices.store`` (and ``data.source: csv``, through the disk cache)
convert in three steps, each with bounded memory whatever the file's size:

1. stream the CSV in blocks (``pyarrow.csv.open_csv``), every cell as text: blank rows are
   dropped, each row keeps its CSV line, each block becomes one row group of a raw Parquet file;
   the distinct time texts are collected (as many as there are bar times);
2. the time format is inferred from all distinct times at once (as the eager reader does from
   the whole column) and the raw file is checked by the lazy Parquet reader's row-group tasks:
   the same messages as reading the CSV directly, naming the CSV's rows;
3. tasks write one typed part per row group (datetime64[ns] times, [s] past 2262, float64
   values, the line column) and a manifest; the folder is put in place in one rename.

A Parquet store rather than a dense Zarr grid: the blocks are written as they are read, with no
first pass for the time axis and symbol list, a long table of sparse symbols stays small, and
the lazy reader and its checks serve both.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import time as _time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from admf_dask.data.dates import as_time
from admf_dask.data.parquet import LINE_COLUMN, LazyLong, Part, Reading, open_parquet
from admf_dask.data.validate import FIELDS, check_time_range, map_columns
from admf_dask.errors import DataError, InputError

#: the manifest of a store (its leading ``_`` keeps Parquet readers from reading it)
MANIFEST = "_admf_ingest.json"
TOOL = "admf-dask ingest"
FORMAT = 1
#: bytes of CSV text per streamed block (one row group of the store)
BLOCK_BYTES = 16 << 20
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}


def ingest_csv(
    csv: str | Path,
    out: str | Path,
    *,
    label: str | None = None,
    date_format: str | None = None,
    columns: dict[str, str] | None = None,
    progress: bool | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> dict[str, Any]:
    """Convert a long CSV table into a Parquet store at `out` (atomically).

    Parameters
    ----------
    csv : path
        The CSV (``time|date, symbol|ticker, open, high, low, close, volume``; may be
        compressed: ``.csv.gz``).
    out : path
        The store's folder. An existing folder is replaced only when this tool wrote it.
    label : str, optional
        The CSV as the user named it, for messages (default: `csv` as given).
    date_format : str, optional
        ``data.date_format``: strftime format of the time column (default: inferred from all
        its values).
    columns : dict of str to str, optional
        ``data.columns``: canonical column -> the file's name for it.
    progress : bool, optional
        A progress bar on stderr; default: when stderr is a terminal.
    block_bytes : int, optional
        CSV bytes per streamed block (and row group).

    Returns
    -------
    dict
        The store's manifest (rows, symbols, first and last time, the CSV's size and mtime).

    Raises
    ------
    DataError
        A bad CSV (the first bad row, as when reading it directly) or an `out` this tool did not
        write; nothing is written then.
    """
    from admf_dask.data.sources import _csv_header

    csv, out = Path(csv), Path(out)
    label = label or str(csv)
    if not csv.is_file():
        raise DataError(label, "does not exist or is not a file", "check the path")
    _check_out(out)
    header = _csv_header(csv, label)
    time_col = map_columns(header, label, mapping=columns)["time"]
    st = csv.stat()
    show = sys.stderr.isatty() if progress is None else progress
    tmp = out.parent / f".admf-ingest-{out.name}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        store = tmp / "store"
        store.mkdir()
        raw = tmp / "raw.parquet"
        with _bar(show, f"converting {csv.name} once ({st.st_size / 1e6:,.0f} MB)") as advance:
            texts, lines, n_rows = _stream(csv, label, header, time_col, raw, block_bytes, advance)
        if n_rows == 0:
            raise DataError(label, "has no data rows", "add bars to the file")
        lookup = date_lookup(texts, lines, label, date_format)
        with _bar(show, f"checking {csv.name}") as advance:
            table = open_parquet(raw, label, columns=columns, source_label=label, date_text=lookup)
            advance(1.0)
        with _bar(show, f"writing {out.name}") as advance:
            _write_parts(table, store)
            advance(1.0)
        manifest = {
            "tool": TOOL,
            "format": FORMAT,
            "csv": {"path": str(csv.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns},
            "label": label,
            "date_format": date_format,
            "columns": columns,
            "rows": n_rows,
            "symbols": len(table.symbols),
            "times": int(table.time.size),
            "first": str(table.time[0]),
            "last": str(table.time[-1]),
            "created": _time.time(),
        }
        (store / MANIFEST).write_text(json.dumps(manifest, sort_keys=True))
        from admf_dask.dasktools.files import replace_dir

        _check_out(out)  # still ours (or absent) just before the rename
        replace_dir(store, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def read_manifest(store: str | Path) -> dict[str, Any] | None:
    """The manifest of a store this tool wrote; None for any other path."""
    try:
        m = json.loads((Path(store) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("tool") == TOOL else None


def open_store(store: str | Path, label: str) -> LazyLong:
    """Open a store written by `ingest_csv` lazily; messages name the CSV's rows as `label`."""
    return open_parquet(Path(store), str(store), source_label=label)


def _check_out(out: Path) -> None:
    if out.exists() or out.is_symlink():
        if not out.is_dir() or read_manifest(out) is None:
            raise DataError(
                str(out),
                "exists and was not written by admf-dask ingest",
                "choose another output folder, or remove it first",
            )


# ----------------------------------------------------------------------------- streaming


class _Counting:
    """A binary file that counts the bytes read (for the progress bar)."""

    def __init__(self, path: Path, advance: Callable[[float], None]) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by the stream that wraps it
        self._size = max(path.stat().st_size, 1)
        self._advance = advance
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._advance(len(data) / self._size)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._f.close()
        self.closed = True


def _stream(
    csv: Path,
    label: str,
    header: list[str],
    time_col: str,
    raw: Path,
    block_bytes: int,
    advance: Callable[[float], None],
) -> tuple[list[str], list[int], int]:
    """Pass 1: the CSV as text blocks into `raw`; distinct time texts with their first line."""
    from admf_dask.data.dates import _text
    from admf_dask.data.sources import _blank_rows

    first_line: dict[str, int] = {}
    n_rows = 0  # data rows read so far, blank ones included (line = row + 2)
    kept = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in _batches(csv, label, header, block_bytes, advance):
            table = pa.Table.from_batches([batch])
            lines = np.arange(table.num_rows, dtype=np.int64) + n_rows + 2
            n_rows += table.num_rows
            blank = _blank_rows(table)
            if blank.any():
                table, lines = table.filter(pa.array(~blank)), lines[~blank]
            if table.num_rows == 0:
                continue
            table = table.append_column(LINE_COLUMN, pa.array(lines))
            if writer is None:
                writer = pq.ParquetWriter(str(raw), table.schema)
            writer.write_table(table, row_group_size=table.num_rows)
            kept += table.num_rows
            text = _text(table.column(time_col))
            enc = pc.dictionary_encode(text.fill_null(""))
            codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)
            uniques = enc.dictionary.to_pylist()
            _, first = np.unique(codes, return_index=True)
            for code, i in zip(np.unique(codes).tolist(), first.tolist(), strict=True):
                first_line.setdefault(uniques[code], int(lines[i]))
    finally:
        if writer is not None:
            writer.close()
    texts = sorted(first_line, key=first_line.__getitem__)  # in order of first appearance
    return texts, [first_line[t] for t in texts], kept


def _batches(
    csv: Path, label: str, header: list[str], block_bytes: int, advance: Callable[[float], None]
) -> Iterator[pa.RecordBatch]:
    """The CSV's rows in blocks, every column as text; a malformed row is one `DataError`."""
    bad: list = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "error"

    def reader(threads: bool, count: Callable[[float], None]) -> Any:
        source = _Counting(csv, count)
        codec = _COMPRESSION.get(csv.suffix.lower())
        stream = pa.PythonFile(source, mode="r")
        if codec is not None:
            stream = pa.CompressedInputStream(stream, codec)
        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(use_threads=threads, block_size=block_bytes),
            # blank lines stay empty rows: row i is then line i + 2 of the file
            parse_options=pacsv.ParseOptions(
                ignore_empty_lines=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
        )

    try:
        yield from reader(True, advance)
    except (pa.ArrowInvalid, OSError) as e:
        if bad and bad[0].number is None:  # the threaded reader does not count lines
            bad.clear()
            with contextlib.suppress(pa.ArrowInvalid):
                for _ in reader(False, lambda _x: None):
                    pass
        if bad:
            row = bad[0]
            where = f"{label} row {row.number}" if row.number is not None else label
            raise DataError(
                where,
                f"has {row.actual_columns} fields, the header {row.expected_columns}",
                "check for stray or missing commas and unbalanced quotes",
            ) from e
        raise DataError(label, f"cannot parse the CSV ({e})", "check the file format") from e


def date_lookup(
    texts: list[str], lines: list[int], label: str, date_format: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the distinct time texts (in order of first appearance) with one format.

    Returns
    -------
    tuple of numpy.ndarray
        The texts sorted and their datetime64 (ns, or s past 2262: `open_parquet`'s
        ``date_text``).

    Raises
    ------
    DataError
        As the eager reader: the first row whose time is not a date in the column's format, is
        empty or out of range.
    """
    from admf_dask.data.sources import _parse_time

    locate = lambda i: f"{label} row {lines[i]}"  # noqa: E731
    col = pa.chunked_array([pa.array(texts, pa.string())])
    values = check_time_range(_parse_time(col, locate, date_format), locate)
    keys = np.asarray(texts, dtype=str)
    order = np.argsort(keys, kind="stable")
    return keys[order], values[order]


# ----------------------------------------------------------------------------- writing


def _write_part(part: Part, reading: Reading, path: Path) -> int:
    from admf_dask.data.parquet import _decode_time, _numbers, _part_locate, _read_part, _symbols

    table = _read_part(part, reading)
    where = _part_locate(part, reading, table)
    cols = reading.cols
    out = {
        # timestamp[ns], or [s] for a table past 2262 (docs/TIME.md)
        "time": pa.array(
            as_time(_decode_time(table.column(cols["time"]), reading, where), reading.unit)
        ),
        "symbol": _symbols(table, reading),
        **{f: pa.array(_numbers(table.column(cols[f]), f, where)) for f in FIELDS},
        LINE_COLUMN: table.column(LINE_COLUMN),
    }
    pq.write_table(pa.table(out), str(path))
    return table.num_rows


def _write_parts(table: LazyLong, store: Path) -> None:
    tasks = [
        dask.delayed(_write_part)(p, table.reading, store / f"part-{k:06d}.parquet")
        for k, p in enumerate(table.parts)
    ]
    dask.compute(tasks)


# ----------------------------------------------------------------------------- progress


@contextlib.contextmanager
def _bar(show: bool, text: str) -> Iterator[Callable[[float], None]]:
    """``advance(fraction)``: a rich bar on stderr (nothing when `show` is false)."""
    if not show:
        yield lambda _x: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

    with Progress(
        f"{text}…",
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as prog:
        task = prog.add_task(text, total=1.0)
        yield lambda x: prog.advance(task, x)
        prog.update(task, completed=1.0)


def parse_columns(text: str | None) -> dict[str, str] | None:
    """``time=Date,symbol=Ticker`` (the ``--columns`` option) -> ``{"time": "Date", ...}``."""
    if not text:
        return None
    from admf_dask.data.load import as_data_config

    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, name = item.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise InputError(
                "--columns", f"'{item}' is not COLUMN=NAME", "write e.g. time=Date,symbol=Ticker"
            )
        out[key.strip()] = name.strip()
    try:
        as_data_config({"source": "csv", "path": "x.csv", "columns": out})
    except InputError as e:
        raise InputError("--columns", e.what, e.fix) from None
    return out


#: the disk cache's kind for converted CSVs (`admf_dask.cache.store`)
CACHE_KIND = "market"
#: smaller CSVs are parsed on the client (converting costs more than it saves)
AUTO_MIN_BYTES = 32 << 20


def cached_csv(
    path: Path,
    label: str,
    *,
    date_format: str | None,
    columns: dict[str, str] | None,
    cache: Any,
    progress: bool | None = None,
) -> LazyLong | None:
    """``data.source: csv`` through the disk cache: converted on first use, then read lazily.

    Parameters
    ----------
    path : pathlib.Path
        The CSV.
    label : str
        ``data.path`` as written (messages name its rows).
    date_format, columns
        ``data.date_format``, ``data.columns`` (part of the cache key with the file's resolved
        path, size and modification time: a changed file converts again).
    cache : CacheConfig
        The pipeline's ``cache`` section.
    progress : bool, optional
        The note and bar on stderr (default: when stderr is a terminal).

    Returns
    -------
    LazyLong or None
        None when the CSV is to be parsed on the client as before: the cache is off
        (``cache.enabled: false``), the file is under `AUTO_MIN_BYTES`, or the cache could not be
        written (a warning is logged).
    """
    from admf_dask.dasktools.ids import identity

    st = path.stat()
    if not cache.enabled or st.st_size < AUTO_MIN_BYTES:
        return None
    token = identity(
        "csv-store", FORMAT, str(path.resolve()), st.st_size, st.st_mtime_ns, date_format, columns
    )
    meta = {"csv": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return _through_cache(token, meta, lambda: path, label, date_format, columns, cache, progress)


#: what an fsspec filesystem's ``info`` says of a file's version (S3/GCS/Azure/local/memory)
_VERSION_KEYS = (
    "ETag",
    "etag",
    "md5Hash",
    "generation",
    "LastModified",
    "last_modified",
    "mtime",
    "created",
)


def cached_csv_url(
    url: str,
    storage_options: dict[str, Any] | None,
    label: str,
    *,
    date_format: str | None,
    columns: dict[str, str] | None,
    cache: Any,
    progress: bool | None = None,
) -> LazyLong | None:
    """A CSV URL through the disk cache, like `cached_csv`: keyed by the URL, its size and its
    version on the store (ETag or modification time), so a hit reads the converted store
    without downloading the CSV; a miss downloads it once and converts it.

    Returns None (the caller downloads and parses it as before) when the cache is off, the file
    is under `AUTO_MIN_BYTES`, or the store says nothing of the file's version (a changed file
    could not be told from the cached one).
    """
    from admf_dask.dasktools.fs import check_readable, resolve, stage_input, store_error
    from admf_dask.dasktools.ids import identity

    if not cache.enabled:
        return None
    loc = resolve(url, storage_options, where="data.path")
    check_readable(loc, url)
    try:
        info = loc.fs.info(loc.path)
    except Exception as exc:  # noqa: BLE001 - every store raises its own types
        raise store_error(exc, loc, "data.path", writing=False) from None
    size = int(info.get("size") or 0)
    version = next((str(info[k]) for k in _VERSION_KEYS if info.get(k) is not None), None)
    if info.get("type") == "directory" or size < AUTO_MIN_BYTES or version is None:
        return None
    token = identity("csv-store", FORMAT, loc.url, size, version, date_format, columns)
    meta = {"csv": loc.url, "size": size, "version": version}

    def local() -> Path:  # downloaded only on a miss
        got = stage_input(url, storage_options, keep_remote=False)
        assert isinstance(got, Path)
        return got

    return _through_cache(token, meta, local, label, date_format, columns, cache, progress)


def _through_cache(
    token: str,
    meta: dict[str, Any],
    csv: Callable[[], Path],
    label: str,
    date_format: str | None,
    columns: dict[str, str] | None,
    cache: Any,
    progress: bool | None,
) -> LazyLong | None:
    """The converted store of entry `token` (converting the CSV `csv()` on a miss), read lazily;
    None when the cache could not take it."""
    from admf_dask.cache.store import DiskCache, default_cache_dir, entry_key, parse_size

    root = Path(cache.dir).expanduser().resolve() if cache.dir else default_cache_dir().resolve()
    disk = DiskCache(root, parse_size(cache.max_size))
    key = entry_key(CACHE_KIND, token)
    entry = disk.lookup(CACHE_KIND, key)
    if entry is None:
        show = sys.stderr.isatty() if progress is None else progress
        entry = disk.put(
            CACHE_KIND,
            key,
            lambda tmp: ingest_csv(
                csv(),
                tmp / "store",
                label=label,
                date_format=date_format,
                columns=columns,
                progress=show,
            ),
            meta=meta,
        )
        if entry is None:  # the cache is full or read-only: parse as before
            return None
    return open_parquet(entry.path / "store", label, source_label=label)


def ingest_command(
    csv: str, out: str, date_format: str | None = None, columns: str | None = None
) -> int:
    """``admf-dask ingest CSV OUT``: convert, then print one line about the store."""
    from admf_dask.config.models import check_format

    if date_format is not None:
        try:
            check_format(date_format)
        except ValueError as e:
            raise InputError("--date-format", str(e), None) from None
    m = ingest_csv(csv, out, date_format=date_format, columns=parse_columns(columns))
    print(
        f"ingested {csv} → {out}: {m['rows']:,} bars, {m['symbols']} symbols, "
        f"{m['times']:,} times, {m['first'][:19]} to {m['last'][:19]} "
        f"(read it with data.source: parquet, data.path: {out})"
    )
    return 0


__all__ = [
    "AUTO_MIN_BYTES",
    "CACHE_KIND",
    "MANIFEST",
    "cached_csv",
    "date_lookup",
    "ingest_command",
    "ingest_csv",
    "open_store",
    "parse_columns",
    "read_manifest",
]
