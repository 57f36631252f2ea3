"""The ``signals`` kind: replay a long table ``time, symbol, signal`` from Parquet or CSV.

Column names are case-insensitive; ``date``/``datetime``/``timestamp`` are accepted for
``time`` and ``ticker`` for ``symbol``. Rows are aligned to the data's bars; (bar, symbol)
pairs without a row are 0, an empty signal cell is 0. Row numbers in messages count data rows
from 1 (the header is not a row). Errors are one-line `DataError`s naming the file and row:
a missing column, an unparseable time, an unknown symbol, a signal that is not a number or is
outside [-1, 1], two rows for the same (time, symbol). Rows whose time is not a bar of the data
are ignored: outside the data's span silently (the data may be a filtered window), inside it
with a warning in ``ctx.warnings`` (an error when ``ctx.strict``).

The kind reads the file in tasks (`signal_array`: one check task per Parquet row group or CSV
block, one task per time chunk; the graph holds no signal values, docs/ARCHITECTURE.md
"Replayed signals"). `read_signal_table` reads it whole on the client: the reference the tests
hold the tasks to, value for value and error for error.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from dask.base import tokenize

from admf_dask.data.dates import describe, parse_dates
from admf_dask.errors import ConfigError, DataError, did_you_mean

_ALIASES = {
    "time": ("time", "date", "datetime", "timestamp"),
    "symbol": ("symbol", "ticker"),
    "signal": ("signal",),
}
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".txt", ".tsv")


def resolve_path(
    path: str, base_dir: Path | None, where: str, storage_options: dict[str, Any] | None = None
) -> Path | Any:
    """Resolve ``path`` against ``base_dir``; ConfigError if it does not exist.

    An fsspec URL (``s3://bucket/sig.parquet``) is returned as an
    `admf_dask.dasktools.fs.Loc` with its ``storage_options``; a local path as a `Path`.
    """
    from admf_dask.dasktools.fs import is_url, local_path, resolve, store_error

    if is_url(path):
        loc = resolve(path, storage_options, where=where)
        try:
            found = loc.exists()
        except Exception as exc:  # noqa: BLE001 - every store raises its own types
            raise store_error(exc, loc, where, writing=False) from None
        if not found:
            raise ConfigError(
                where, f"signal file {path} not found (looked at {loc.url})", "check the URL"
            )
        return loc
    p = Path(local_path(path)).expanduser()  # file:// included
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if not p.exists():
        raise ConfigError(
            where,
            f"signal file {path} not found (looked at {p})",
            "check the path; relative paths are relative to the pipeline file",
        )
    return p


def file_hash(path: Path | Any) -> str:
    """sha256 of a file's bytes (of every file, in order, for a directory); a URL's too."""
    from admf_dask.dasktools.fs import Loc

    h = hashlib.sha256()
    if isinstance(path, Loc) and not path.is_local:  # the same bytes hash the same anywhere
        fs, root = path.fs, path.path.rstrip("/")
        is_dir = path.is_dir()
        files = sorted(fs.find(root)) if is_dir else [root]
        for f in sorted(files, key=lambda f: Path(f[len(root) + 1 :]).parts if is_dir else ()):
            h.update((f[len(root) + 1 :] if is_dir else f.rsplit("/", 1)[-1]).encode())
            with fs.open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()
    files = sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
    for q in files:
        h.update(str(q.relative_to(path) if path.is_dir() else q.name).encode())
        with open(q, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _read_table(path: Path, label: str) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if path.is_dir() or name.endswith(_PARQUET):
            return pd.read_parquet(path)
        if name.endswith(_CSV):
            return pd.read_csv(
                path, sep="\t" if name.endswith(".tsv") else ",", dtype=str, keep_default_na=False
            )
    except Exception as exc:  # any reader failure is the file's fault
        raise DataError(
            label,
            f"cannot read the file: {type(exc).__name__}: {exc}",
            "write a Parquet or CSV table with columns time, symbol, signal",
        ) from exc
    raise DataError(label, f"unsupported file type '{path.suffix}'", "use .parquet or .csv")


def _row(label: str, i: int) -> str:
    return f"{label} row {i + 1}"


def _parse_times(
    raw: pd.Series, label: str, date_format: str | None = None, option: str = "date_format"
) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(raw):
        times = pd.DatetimeIndex(raw)
        if times.tz is not None:
            times = times.tz_convert("UTC").tz_localize(None)
    else:
        # one format for the whole column, as for market data (admf_dask.data.dates)
        text = raw.astype(object).where(raw.notna(), None)
        parsed = parse_dates(
            text, locate=lambda i: _row(label, i), date_format=date_format, option=option
        )
        times = pd.DatetimeIndex(parsed.values)
        i = int(np.argmax(parsed.bad)) if len(parsed.bad) else 0  # a file without rows
        if parsed.bad.any() and date_format is not None:
            raise DataError(
                _row(label, i),
                f"time {raw.iloc[i]!r} does not match {option} '{date_format}'",
                f"fix the time or {option}",
            )
        if parsed.bad.any() and not parsed.bad.all():
            raise DataError(
                _row(label, i),
                f"unparseable time {raw.iloc[i]!r}: the other rows are {describe(parsed.format)}",
                f"write every time in one format (e.g. 2020-01-31), or set {option}",
            )
    bad = np.flatnonzero(times.isna())
    if len(bad):
        i = int(bad[0])
        raise DataError(
            _row(label, i),
            f"unparseable time {raw.iloc[i]!r}",
            "write times as ISO dates, e.g. 2020-01-31",
        )
    return times


def read_signal_table(
    path: Path,
    label: str,
    times: pd.DatetimeIndex,
    symbols: list[str],
    warnings: list[str] | None = None,
    strict: bool = False,
    date_format: str | None = None,
    option: str = "date_format",
) -> np.ndarray:
    """Read a signal file and align it to ``(times, symbols)``.

    Parameters
    ----------
    path : Path
        Parquet file or dataset folder, or CSV file.
    label : str
        How messages name the file (the path as the user wrote it).
    times, symbols
        The data's bars and symbols.
    warnings : list of str, optional
        Receives a line about rows at times that are not bars.
    strict : bool
        Rows at non-bar times inside the data's span are an error instead of a warning.
    date_format : str, optional
        strftime format of text times (default: one format inferred from all values).
    option : str
        The key that sets ``date_format``, named in messages.

    Returns
    -------
    np.ndarray
        float64 ``(time, symbol)`` signals in [-1, 1], 0 where the file has no row.

    Raises
    ------
    DataError
        One line naming the file and row.
    """
    df = _read_table(path, label)
    cols = _columns(list(df.columns), label)
    n = len(df)
    when = _parse_times(df[cols["time"]].reset_index(drop=True), label, date_format, option)

    sym = df[cols["symbol"]].reset_index(drop=True).astype("string").str.strip()
    known = pd.Index([str(s) for s in symbols])
    s_idx = known.get_indexer(sym.fillna(""))
    bad = np.flatnonzero(s_idx < 0)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            _row(label, i),
            f"unknown symbol {sym.iloc[i]!r}{did_you_mean(str(sym.iloc[i]), list(known))}",
            "symbols in the data are: "
            + ", ".join(known[:20])
            + (" ..." if len(known) > 20 else ""),
        )

    raw = df[cols["signal"]].reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        sig = raw.astype("float64").to_numpy()
        text_bad = np.zeros(n, dtype=bool)
    else:
        text = raw.astype("string").str.strip()
        sig = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()
        text_bad = np.isnan(sig) & (text.fillna("") != "").to_numpy()
    bad = np.flatnonzero(text_bad)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            _row(label, i),
            f"signal {raw.iloc[i]!r} is not a number",
            "signals are numbers in [-1, 1]",
        )
    with np.errstate(invalid="ignore"):
        out_of_range = np.flatnonzero(~np.isnan(sig) & ~((sig >= -1.0) & (sig <= 1.0)))
    if len(out_of_range):
        i = int(out_of_range[0])
        raise DataError(
            _row(label, i),
            f"signal {float(sig[i])!r} is outside [-1, 1]",
            "scale signals to [-1, 1] (sign = direction, size = conviction)",
        )

    keys = pd.DataFrame({"t": when.asi8, "s": s_idx})
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = int(rows[0])
        same = rows[
            (keys["t"].to_numpy()[rows] == keys["t"].iloc[first])
            & (keys["s"].to_numpy()[rows] == keys["s"].iloc[first])
        ]
        second = int(same[1])
        raise DataError(
            f"{label} rows {first + 1} and {second + 1}",
            f"two signals for {sym.iloc[first]} at {when[first]}",
            "keep one row per (time, symbol)",
        )

    t_idx = times.get_indexer(when)
    miss = np.flatnonzero(t_idx < 0)
    if len(miss) and len(times):
        inside = miss[(when[miss] >= times[0]) & (when[miss] <= times[-1])]
        if len(inside):
            i = int(inside[0])
            what = (
                f"{len(inside)} row(s) at times that are not bars of the data, "
                f"first {when[i]} (row {i + 1}); they are ignored"
            )
            if strict:
                raise DataError(
                    _row(label, i),
                    f"time {when[i]} is not a bar of the data",
                    "align the signal times to the data's bars",
                )
            if warnings is not None and (t_idx >= 0).any():  # none at all: the stage's check says
                warnings.append(f"{label}: {what}")
    ok = t_idx >= 0
    out = np.zeros((len(times), len(symbols)))
    out[t_idx[ok], s_idx[ok]] = np.nan_to_num(sig[ok], nan=0.0)
    return out


# ----------------------------------------------------------------------------- lazy
# `signal_array` reads the file in tasks: the client learns the table's coordinates (its row
# groups or blocks, the bars each one touches) and the graph carries no signal values
# (docs/ARCHITECTURE.md, "Replayed signals"). `read_signal_table` above is the eager reference.

#: rows per block of a CSV (a Parquet file keeps its own row groups)
CSV_BLOCK_ROWS = 500_000

# the order of `read_signal_table`'s checks: the first failing check over the whole table is
# reported, and within a check the first row
_TIME, _SYMBOL, _NUMBER, _RANGE = range(4)


@dataclass(frozen=True)
class Part:
    """One row group of a Parquet table, or one block of a CSV's rows."""

    start: int  # whole-table row (0-based) of its first row
    rows: int


@dataclass(frozen=True)
class Reading:
    """What a task needs to read a part: the columns, the schema and how times decode."""

    label: str  # the file as the user wrote it (messages)
    cols: tuple[str, str, str]  # the table's columns for time, symbol, signal
    schema: Any  # pyarrow schema of a Parquet dataset; None for CSV blocks (DataFrames)
    text: bool  # times are decoded by the client's parse of the whole column (a lookup)


def _columns(names: list[Any], label: str) -> dict[str, Any]:
    """Canonical key -> the table's column (case-insensitive, aliases), as the eager reader."""
    lower = {str(c).strip().lower(): c for c in names}
    cols: dict[str, Any] = {}
    for key, aliases in _ALIASES.items():
        found = next((lower[n] for n in aliases if n in lower), None)
        if found is None:
            raise DataError(
                label,
                f"no '{key}' column (columns: {', '.join(map(str, names)) or 'none'})",
                "the table needs columns time, symbol, signal (signal in [-1, 1])",
            )
        cols[key] = found
    return cols


def _cannot_read(label: str, exc: BaseException) -> DataError:
    return DataError(
        label,
        f"cannot read the file: {type(exc).__name__}: {exc}",
        "write a Parquet or CSV table with columns time, symbol, signal",
    )


def _frame(source: Any, reading: Reading) -> pd.DataFrame:
    """A part's three columns: a CSV block as scattered, or a row group read now."""
    if isinstance(source, pd.DataFrame):
        return source
    import pyarrow as pa

    try:
        table = source.to_table(schema=reading.schema, columns=list(reading.cols))
    except (OSError, pa.ArrowException) as exc:
        raise _cannot_read(reading.label, exc) from exc
    return table.to_pandas().reset_index(drop=True)


def _decode(
    raw: pd.Series, reading: Reading, lookup: tuple[np.ndarray, np.ndarray] | None
) -> pd.DatetimeIndex:
    """A part's times: timestamps as the eager reader takes them, text through `lookup`.

    A text cell absent from `lookup` is NaT (a chunk's lookup holds its own bars' times only).
    """
    if not reading.text:
        times = pd.DatetimeIndex(raw)
        if times.tz is not None:
            times = times.tz_convert("UTC").tz_localize(None)
        return times
    keys, values = lookup if lookup is not None else ((), np.empty(0, "M8[ns]"))
    idx = pd.Index(keys, dtype=object).get_indexer(raw.astype(object))
    out = np.full(len(idx), np.datetime64("NaT"), dtype=values.dtype)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return pd.DatetimeIndex(out)


def _stripped(raw: pd.Series) -> pd.Series:
    return raw.reset_index(drop=True).astype("string").str.strip()


def _numbers(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 signals and the cells that are text but not numbers (as the eager reader)."""
    raw = raw.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64").to_numpy(), np.zeros(len(raw), dtype=bool)
    text = raw.astype("string").str.strip()
    sig = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy()
    return sig, np.isnan(sig) & (text.fillna("") != "").to_numpy()


def _first_duplicate(t: np.ndarray, s: np.ndarray) -> tuple[int, int] | None:
    """(first, second): the first row repeating a key and its next twin (as the eager reader)."""
    keys = pd.DataFrame({"t": t, "s": s})
    dup = keys.duplicated(keep=False).to_numpy()
    if not dup.any():
        return None
    rows = np.flatnonzero(dup)
    first = int(rows[0])
    same = rows[(t[rows] == t[first]) & (s[rows] == s[first])]
    return first, int(same[1])


def _check_part(
    source: Any,
    part: Part,
    reading: Reading,
    lookup: tuple[np.ndarray, np.ndarray] | None,
    symbols: np.ndarray,
    bars: np.ndarray,
) -> dict[str, Any]:
    """Check one part as `read_signal_table` checks the table; its coordinates.

    Returns the first failing check as ``error: ((check, row), where, what, fix)``, else the
    part's distinct times and symbol columns, the bars it touches, its first duplicate and its
    rows at times inside the bars' span that are not bars.
    """
    try:
        df = _frame(source, reading)
    except DataError as e:  # returned, not raised: a task failing on a worker logs it there
        return {"error": ((-1, part.start), e.where, e.what, e.fix)}
    label = reading.label
    tcol, scol, vcol = reading.cols

    def fail(check: int, i: int, what: str, fix: str) -> dict[str, Any]:
        row = part.start + i
        return {"error": ((check, row), _row(label, row), what, fix)}

    raw_t = df[tcol].reset_index(drop=True)
    when = _decode(raw_t, reading, lookup)
    bad = np.flatnonzero(when.isna())
    if len(bad):  # text times were all parsed on the client: only a timestamp can be NaT
        i = int(bad[0])
        return fail(
            _TIME,
            i,
            f"unparseable time {raw_t.iloc[i]!r}",
            "write times as ISO dates, e.g. 2020-01-31",
        )
    sym = _stripped(df[scol])
    known = pd.Index([str(s) for s in symbols])
    s_idx = known.get_indexer(sym.fillna(""))
    bad = np.flatnonzero(s_idx < 0)
    if len(bad):
        i = int(bad[0])
        return fail(
            _SYMBOL,
            i,
            f"unknown symbol {sym.iloc[i]!r}{did_you_mean(str(sym.iloc[i]), list(known))}",
            "symbols in the data are: "
            + ", ".join(known[:20])
            + (" ..." if len(known) > 20 else ""),
        )
    raw = df[vcol].reset_index(drop=True)
    sig, text_bad = _numbers(raw)
    bad = np.flatnonzero(text_bad)
    if len(bad):
        i = int(bad[0])
        return fail(
            _NUMBER, i, f"signal {raw.iloc[i]!r} is not a number", "signals are numbers in [-1, 1]"
        )
    with np.errstate(invalid="ignore"):
        out_of_range = np.flatnonzero(~np.isnan(sig) & ~((sig >= -1.0) & (sig <= 1.0)))
    if len(out_of_range):
        i = int(out_of_range[0])
        return fail(
            _RANGE,
            i,
            f"signal {float(sig[i])!r} is outside [-1, 1]",
            "scale signals to [-1, 1] (sign = direction, size = conviction)",
        )
    t = when.asi8
    dup = _first_duplicate(t, s_idx)
    bar_index = pd.DatetimeIndex(bars)
    t_idx = bar_index.get_indexer(when)
    miss = np.flatnonzero(t_idx < 0)
    inside = None
    if len(miss) and len(bar_index):
        hit = miss[(when[miss] >= bar_index[0]) & (when[miss] <= bar_index[-1])]
        if len(hit):
            i = int(hit[0])
            inside = (len(hit), part.start + i, str(when[i]))
    return {
        "error": None,
        "times": np.unique(t),
        "symbols": np.unique(s_idx),
        "bars": np.unique(t_idx[t_idx >= 0]),
        "dup": None if dup is None else _dup_info(dup, part, sym, when),
        "inside": inside,
    }


def _dup_info(dup: tuple[int, int], part: Part, sym: pd.Series, when: pd.DatetimeIndex) -> tuple:
    first, second = dup
    return (part.start + first, part.start + second, str(sym.iloc[first]), str(when[first]))


def _cross_duplicate(
    sources: list[Any],
    parts: list[Part],
    reading: Reading,
    lookup: tuple[np.ndarray, np.ndarray] | None,
    symbols: np.ndarray,
    shared: np.ndarray,
) -> tuple | None:
    """The first duplicate among several parts' rows at the times they share."""
    tcol, scol, _ = reading.cols
    known = pd.Index([str(s) for s in symbols])
    t, s, row, sym, when = [], [], [], [], []
    for source, part in zip(sources, parts, strict=True):
        df = _frame(source, reading)
        w = _decode(df[tcol].reset_index(drop=True), reading, lookup)
        keep = np.flatnonzero(np.isin(w.asi8, shared))
        name = _stripped(df[scol]).iloc[keep].reset_index(drop=True)
        t.append(w.asi8[keep])
        s.append(known.get_indexer(name.fillna("")))
        row.append(keep + part.start)
        sym.extend(name.tolist())
        when.extend(str(x) for x in w[keep])
    rows = np.concatenate(row)
    order = np.argsort(rows, kind="stable")  # whole-table row order
    dup = _first_duplicate(np.concatenate(t)[order], np.concatenate(s)[order])
    if dup is None:
        return None
    first, second = int(order[dup[0]]), int(order[dup[1]])
    return (int(rows[first]), int(rows[second]), sym[first], when[first])


def _read_chunk(
    sources: list[Any],
    reading: Reading,
    lookup: tuple[np.ndarray, np.ndarray] | None,
    times: np.ndarray,
    symbols: np.ndarray,
) -> np.ndarray:
    """The dense float64 ``(times, symbols)`` block from the parts that touch its bars."""
    tcol, scol, vcol = reading.cols
    out = np.zeros((len(times), len(symbols)))
    index = pd.DatetimeIndex(times)
    known = pd.Index([str(s) for s in symbols])
    for source in sources:
        df = _frame(source, reading)
        t_idx = index.get_indexer(_decode(df[tcol].reset_index(drop=True), reading, lookup))
        ok = np.flatnonzero(t_idx >= 0)
        if not len(ok):
            continue
        s_idx = known.get_indexer(_stripped(df[scol]).iloc[ok].fillna(""))
        sig, _ = _numbers(df[vcol].iloc[ok])
        out[t_idx[ok], s_idx] = np.nan_to_num(sig, nan=0.0)
    return out


def _default_client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _run(func: Any, calls: list[tuple], shared: dict[str, Any], client: Any) -> list[Any]:
    """``func(*call, **shared)`` for every call, as tasks (`shared` sent once)."""
    import dask

    if not calls:
        return []
    if client is None:
        tag = secrets.token_hex(8)
        held = {k: dask.delayed(v, name=f"replay-{k}-{tag}") for k, v in shared.items()}
        tasks = [dask.delayed(func, pure=False)(*call, **held) for call in calls]
        return list(dask.compute(*tasks))
    held = {k: v if v is None else client.scatter(v, hash=False) for k, v in shared.items()}
    return client.gather([client.submit(func, *call, **held, pure=False) for call in calls])


def _is_parquet(path: Path | Any) -> bool:
    name = path.name.lower()
    return path.is_dir() or name.endswith(_PARQUET)


def _open_parquet(path: Path | Any, label: str) -> tuple[Any, list[Any], list[Part], list[Any]]:
    """The dataset, the table's columns as pandas sees them, its row groups and their parts."""
    import pyarrow.dataset as pds

    from admf_dask.dasktools.fs import Loc

    remote = isinstance(path, Loc) and not path.is_local
    root = path.path if remote else str(path)
    try:
        dataset = pds.dataset(
            root, format="parquet", partitioning="hive", filesystem=path.fs if remote else None
        )
        groups = [g for frag in dataset.get_fragments() for g in frag.split_by_row_group()]
        sizes = [g.row_groups[0].num_rows for g in groups]
    except Exception as exc:  # any reader failure is the file's fault
        raise _cannot_read(label, exc) from exc
    meta = dataset.schema.pandas_metadata or {}
    index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    names = [c for c in dataset.schema.names if c not in index]  # an index is no column
    parts, sources, start = [], [], 0
    for g, n in zip(groups, sizes, strict=True):
        if n:
            parts.append(Part(start, n))
            sources.append(g)
        start += n
    return dataset, names, parts, sources


def _read_csv(path: Path | Any, label: str) -> pd.DataFrame:
    from admf_dask.dasktools.fs import Loc

    name = path.name.lower()
    if not name.endswith(_CSV):
        raise DataError(
            label, f"unsupported file type '{Path(name).suffix}'", "use .parquet or .csv"
        )
    remote = isinstance(path, Loc) and not path.is_local
    try:
        return pd.read_csv(
            path.url if remote else path,
            sep="\t" if name.endswith(".tsv") else ",",
            dtype=str,
            keep_default_na=False,
            storage_options=(path.storage_options or None) if remote else None,
        )
    except Exception as exc:  # any reader failure is the file's fault
        raise _cannot_read(label, exc) from exc


def _time_column(dataset: Any, label: str, col: str) -> pd.Series:
    """A Parquet table's time column, read on the client as the tasks read their parts."""
    import pyarrow as pa

    try:
        table = dataset.to_table(columns=[col])
    except (OSError, pa.ArrowException) as exc:
        raise _cannot_read(label, exc) from exc
    return table.to_pandas().reset_index(drop=True)[col]


def _lookup(raw: pd.Series, when: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Distinct time cells and their parsed times (the parse of the whole column)."""
    codes, uniques = pd.factorize(raw.astype(object))
    first = np.full(len(uniques), -1, np.int64)
    ok = codes >= 0
    first[codes[ok][::-1]] = np.flatnonzero(ok)[::-1]
    return np.asarray(uniques, dtype=object), np.asarray(when.values)[first]


def signal_array(
    path: Path | Any,
    label: str,
    times: pd.DatetimeIndex,
    symbols: list[str],
    time_chunks: tuple[int, ...],
    warnings: list[str] | None = None,
    strict: bool = False,
    date_format: str | None = None,
    option: str = "date_format",
    client: Any = None,
    block_rows: int = CSV_BLOCK_ROWS,
) -> da.Array:
    """A signal file aligned to ``(times, symbols)`` as a dask array read in tasks.

    Equal bit for bit to `read_signal_table`, with the same errors and warnings, raised here
    (the checks run in one task per part before the array is built).

    A Parquet table (file or folder, local or an fsspec URL) is read by its row groups: one
    task per row group checks it and returns its coordinates, and each time chunk's task reads
    the row groups holding its bars. A CSV is parsed on the client once, as the eager reader
    does, and its blocks of `block_rows` rows go to the workers by scatter (with a distributed
    client; otherwise the in-process scheduler holds them).

    Parameters
    ----------
    path : Path or Loc
        The file (`resolve_path`).
    label, times, symbols, warnings, strict, date_format, option
        As `read_signal_table`.
    time_chunks : tuple of int
        The data's time chunks (the array has one symbol chunk).
    client : distributed.Client, optional
        Runs the checks and holds a CSV's blocks; default: the current client, if any.
    block_rows : int
        Rows per block of a CSV.

    Returns
    -------
    dask.array.Array
        float64 ``(time, symbol)``.

    Raises
    ------
    DataError
        One line naming the file and row (the first bad row, as `read_signal_table`).
    """
    client = _default_client(client)
    bars = np.asarray(pd.DatetimeIndex(times).values)
    names = np.asarray([str(s) for s in symbols], dtype=object)
    if _is_parquet(path):
        dataset, columns, parts, sources = _open_parquet(path, label)
        cols = _columns(columns, label)
        key = (cols["time"], cols["symbol"], cols["signal"])
        reading = Reading(label, key, dataset.schema, False)
        lookup = None
        import pyarrow as pa

        if not pa.types.is_timestamp(dataset.schema.field(cols["time"]).type):
            raw = _time_column(dataset, label, cols["time"])
            when = _parse_times(raw, label, date_format, option)
            reading, lookup = Reading(label, key, dataset.schema, True), _lookup(raw, when)
        ident = _identity(path)
    else:
        df = _read_csv(path, label)
        cols = _columns(list(df.columns), label)
        key = (cols["time"], cols["symbol"], cols["signal"])
        df = df[list(key)].reset_index(drop=True)
        raw = df[cols["time"]]
        when = _parse_times(raw, label, date_format, option)
        reading, lookup = Reading(label, key, None, True), _lookup(raw, when)
        parts = [Part(a, min(block_rows, len(df) - a)) for a in range(0, len(df), block_rows)]
        blocks = [df.iloc[p.start : p.start + p.rows].reset_index(drop=True) for p in parts]
        sources = client.scatter(blocks, hash=True) if client is not None and blocks else blocks
        ident = tokenize(blocks)
    results = _run(
        _check_part,
        [(s, p) for s, p in zip(sources, parts, strict=True)],
        {"reading": reading, "lookup": lookup, "symbols": names, "bars": bars},
        client,
    )
    errors = [r["error"] for r in results if r["error"] is not None]
    if errors:
        _, where, what, fix = min(errors, key=lambda e: e[0])
        raise DataError(where, what, fix)
    _check_duplicates(sources, parts, reading, lookup, names, results, client)
    inside = [r["inside"] for r in results if r["inside"] is not None]
    if inside:
        count = sum(c for c, _, _ in inside)
        _, i, stamp = min(inside, key=lambda x: x[1])
        if strict:
            raise DataError(
                _row(label, i),
                f"time {stamp} is not a bar of the data",
                "align the signal times to the data's bars",
            )
        matched = any(len(r["bars"]) for r in results)
        if warnings is not None and matched:  # none at all: the stage's check says
            warnings.append(
                f"{label}: {count} row(s) at times that are not bars of the data, "
                f"first {stamp} (row {i + 1}); they are ignored"
            )
    return _chunk_array(sources, parts, reading, lookup, results, bars, names, time_chunks, ident)


def _check_duplicates(
    sources: list[Any],
    parts: list[Part],
    reading: Reading,
    lookup: tuple[np.ndarray, np.ndarray] | None,
    names: np.ndarray,
    results: list[dict[str, Any]],
    client: Any,
) -> None:
    """Raise on the table's first duplicate (time, symbol), as `read_signal_table` would.

    A part's task found its own; across parts a key can repeat only where parts share a time
    and a symbol: those parts are grouped (union-find) and one task per group reads their rows
    at the shared times.
    """
    from admf_dask.data.parquet import overlap_groups

    found = [r["dup"] for r in results if r["dup"] is not None]
    calls = [
        ([sources[i] for i in members], [parts[i] for i in members], shared)
        for members, shared in overlap_groups(
            [r["times"] for r in results],
            lambda i, j: bool(
                np.intersect1d(
                    results[i]["symbols"], results[j]["symbols"], assume_unique=True
                ).size
            ),
        )
    ]
    found += [
        d
        for d in _run(
            _cross_duplicate_call,
            calls,
            {"reading": reading, "lookup": lookup, "symbols": names},
            client,
        )
        if d is not None
    ]
    if found:
        first, second, sym, stamp = min(found, key=lambda d: d[0])
        raise DataError(
            f"{reading.label} rows {first + 1} and {second + 1}",
            f"two signals for {sym} at {stamp}",
            "keep one row per (time, symbol)",
        )


def _cross_duplicate_call(
    sources: list[Any],
    parts: list[Part],
    shared: np.ndarray,
    reading: Reading,
    lookup: tuple[np.ndarray, np.ndarray] | None,
    symbols: np.ndarray,
) -> tuple | None:
    return _cross_duplicate(sources, parts, reading, lookup, symbols, shared)


def _identity(path: Path | Any) -> Any:
    """The files read, by path, size and modification time (names the chunk tasks)."""
    from admf_dask.dasktools.fs import Loc

    if isinstance(path, Loc) and not path.is_local:
        fs = path.fs
        files = sorted(fs.find(path.path)) if path.is_dir() else [path.path]
        out = []
        for f in files:
            info = fs.info(f)
            out.append((f, info.get("size"), str(info.get("ETag") or info.get("mtime") or "")))
        return out
    p = Path(str(path))
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    return [(str(q), q.stat().st_size, q.stat().st_mtime_ns) for q in files]


def _chunk_array(
    sources: list[Any],
    parts: list[Part],
    reading: Reading,
    lookup: tuple[np.ndarray, np.ndarray] | None,
    results: list[dict[str, Any]],
    bars: np.ndarray,
    names: np.ndarray,
    time_chunks: tuple[int, ...],
    ident: Any,
) -> da.Array:
    """One task per time chunk, reading the parts that touch its bars; no values in the graph."""
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    bounds = np.concatenate([[0], np.cumsum(time_chunks)]).astype(int).tolist()
    name = "replay-" + tokenize(ident, reading, lookup, bars, names, bounds)
    sym_key = (f"{name}-symbols",)
    layer: dict[Any, Any] = {sym_key: names}
    touched = [r["bars"] for r in results]
    key_rows = None
    if lookup is not None:  # the bar row of each distinct time cell (-1: no bar)
        key_rows = pd.DatetimeIndex(bars).get_indexer(pd.DatetimeIndex(lookup[1]))
    for i in range(len(bounds) - 1):
        a, b = bounds[i], bounds[i + 1]
        use = [
            k
            for k, rows in enumerate(touched)
            if len(rows)
            and int(np.searchsorted(rows, a)) < len(rows)
            and rows[np.searchsorted(rows, a)] < b
        ]
        mine = None
        if lookup is not None:  # the cells of this chunk's bars only
            sel = (key_rows >= a) & (key_rows < b)
            mine = (lookup[0][sel], lookup[1][sel])
        layer[(name, i, 0)] = (
            _read_chunk,
            [sources[k] for k in use],
            reading,
            mine,
            bars[a:b],
            sym_key,
        )
    graph = HighLevelGraph({name: MaterializedLayer(layer)}, {name: set()})
    chunks = (tuple(int(c) for c in time_chunks), (len(names),))
    return da.Array(graph, name, chunks, dtype=np.float64, meta=np.empty((0, 0), np.float64))


def signal_times(path: Path | Any, label: str, date_format: str | None = None) -> pd.DatetimeIndex:
    """Every row's time, read from the time column only (the signal check's diagnosis).

    Parameters
    ----------
    path : Path or Loc
        The file (`resolve_path`), already read once by `signal_array`.
    label : str
        How messages name the file.
    date_format : str, optional
        strftime format of text times (default: inferred).

    Returns
    -------
    pandas.DatetimeIndex
        In row order (the eager reader's parse).
    """
    if _is_parquet(path):
        dataset, columns, _, _ = _open_parquet(path, label)
        col = _columns(columns, label)["time"]
        raw = _time_column(dataset, label, col)
    else:
        df = _read_csv(path, label)
        raw = df[_columns(list(df.columns), label)["time"]]
    raw = raw.reset_index(drop=True)
    return _parse_times(raw, label, date_format) if date_format else _parse_times(raw, label)
