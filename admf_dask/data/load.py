"""The data stage: a `DataConfig` in, a dask-chunked (time, symbol) OHLCV Dataset out.

Lazy sources (synthetic, Zarr; `admf_dask.data.lazy.LazySource` for new ones) give dask arrays
whose tasks generate or read the values on the workers; CSV, Parquet and the bundled stocks are
read on the client (`sources.Dense`, `_chunk`).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from pydantic import BaseModel, ValidationError

from admf_dask.config.models import DataConfig
from admf_dask.data import lazy, sources
from admf_dask.data._synthetic import symbol_names
from admf_dask.data.dates import as_time, bound_on_axis
from admf_dask.data.lazy import LazySource
from admf_dask.data.sources import Dense, LongTable
from admf_dask.data.validate import FIELDS, in_ns_range
from admf_dask.errors import ConfigError, DataError, did_you_mean

# attrs key of a lazily read file's bar checks, pending until its fingerprint is computed
_CHECK = "bar_checks"
# Bumped when the meaning of the data changes without its values changing.
_FINGERPRINT_VERSION = "admf-dask market data v2"


def load_market_data(
    spec: DataConfig | dict[str, Any],
    *,
    base_dir: str | Path | None = None,
    compute_fingerprint: bool = True,
    cache: Any = None,
) -> xr.Dataset:
    """Load market data as an OHLCV Dataset over (time, symbol).

    Synthetic and Zarr data are lazy: the values are generated or read inside the tasks
    (docs/ARCHITECTURE.md, data stage); the client holds the coordinates only.

    Parameters
    ----------
    spec : DataConfig or dict
        The pipeline's ``data`` section; a dict is validated first (a bad key or value raises
        `ConfigError` naming ``data.<key>``).
    base_dir : str or Path, optional
        Folder that relative ``path`` values resolve against (the pipeline file's folder);
        default: the working directory.
    compute_fingerprint : bool, optional
        Compute ``attrs["fingerprint"]`` now, with the current dask scheduler (default). False
        leaves it to `finish_fingerprint` (the runner calls it on the cluster once the data is
        persisted there). The bars of a Zarr store are checked by the same tasks: until then
        its values are not checked.
    cache : CacheConfig, optional
        The pipeline's ``cache`` section: a CSV of `admf_dask.data.ingest.AUTO_MIN_BYTES` or more
        is converted once into the disk cache and read lazily (`admf_dask.data.ingest.cached_csv`).
        None (default) or ``enabled: false``: parsed on the client.

    Returns
    -------
    xarray.Dataset
        float64 ``open, high, low, close, volume`` over ``(time, symbol)``: ``time``
        datetime64[ns] ([s] past 2262: docs/TIME.md) sorted and unique, ``symbol`` str; a
        missing bar is NaN in all five.
        Dask-chunked ``{time: spec.chunks.time, symbol: -1}``. ``attrs``: ``source``,
        ``fingerprint`` (see `fingerprint`) and, for files, ``path``. With ``data.universe``
        also a bool ``universe`` variable (True: in the universe; `admf_dask.data.universe`),
        chunked like the others, part of the fingerprint.

    Raises
    ------
    ConfigError
        A bad ``data`` key or value (``start`` after ``end``, an unparseable date, ...).
    DataError
        A bad data file (names the file and row), an unknown symbol, an empty selection.
    """
    cfg = as_data_config(spec)
    start, stop = _window(cfg)
    attrs: dict[str, str] = {"source": cfg.source}
    size = cfg.chunks.time
    if cfg.source == "synthetic":
        ds = _from_source(_synthetic_source(cfg), None, start, stop, size, attrs)
    else:
        if isinstance(cfg.symbols, int):
            raise ConfigError(
                "data.symbols",
                f"a number of symbols ({cfg.symbols}) only applies to source synthetic",
                "give a list of symbol names to select, or remove data.symbols",
            )
        wanted = _check_names(cfg.symbols) if cfg.symbols is not None else None
        table = None  # a long table read by tasks (data.parquet)
        if cfg.source == "bokeh_stocks":
            data: LongTable | Dense = sources.read_bokeh_stocks(cfg.adjust)
        else:
            from admf_dask.dasktools.fs import is_url

            if cfg.source == "csv" and cache is not None and cfg.path and is_url(cfg.path):
                # a big CSV on a store: its converted copy in the disk cache, not downloaded
                # again while the file is unchanged (data.ingest.cached_csv_url)
                from admf_dask.data.ingest import cached_csv_url

                table = cached_csv_url(
                    cfg.path,
                    cfg.storage_options,
                    str(cfg.path),
                    date_format=cfg.date_format,
                    columns=cfg.columns,
                    cache=cache,
                )
            path = (
                cfg.path
                if table is not None
                else _resolve(cfg.path, base_dir, cfg.storage_options, cfg.source)
            )
            attrs["path"] = str(path)
            if cfg.source == "zarr":
                store = sources.read_zarr(path, str(cfg.path))
                data = None  # type: ignore[assignment]
            elif cfg.source == "parquet":  # read per row group in tasks (data.parquet)
                from admf_dask.data.parquet import open_parquet

                table = open_parquet(
                    path, str(cfg.path), date_format=cfg.date_format, columns=cfg.columns
                )
                data = None  # type: ignore[assignment]
            elif table is None:
                if cfg.source == "csv" and cache is not None:  # a big one: converted once
                    from admf_dask.data.ingest import cached_csv

                    table = cached_csv(
                        path,
                        str(cfg.path),
                        date_format=cfg.date_format,
                        columns=cfg.columns,
                        cache=cache,
                    )
                if table is None:
                    reader = sources.read_csv if cfg.source == "csv" else sources.read_parquet
                    data = reader(
                        path, str(cfg.path), date_format=cfg.date_format, columns=cfg.columns
                    )
        if cfg.source == "zarr":
            ds = _from_zarr(store, wanted, start, stop, size, attrs)
        elif table is not None:
            ds = _from_source(table.source(wanted, start, stop), None, start, stop, size, attrs)
        else:
            dense = (
                _pivot(data, wanted, start, stop)
                if isinstance(data, LongTable)
                else _select_dense(data, wanted, start, stop)
            )
            plain = _dataset(dense, attrs)
            plain.attrs["fingerprint"] = fingerprint(plain)
            ds = _chunk(plain, size)
    from admf_dask.data.calendar import time_attrs  # frequency, session (docs/TIME.md)

    ds.attrs.update(time_attrs(cfg, ds["time"].values, str(cfg.path or cfg.source)))
    if cfg.universe is not None:
        _add_universe(ds, cfg.universe, base_dir)
        ds.attrs.pop("fingerprint", None)  # the universe is part of it
    if compute_fingerprint:
        finish_fingerprint(ds)
    return ds


def finish_fingerprint(ds: xr.Dataset, client: Any = None) -> str:
    """Set ``ds.attrs["fingerprint"]`` (unless set) from per-chunk digests computed in tasks.

    Parameters
    ----------
    ds : xarray.Dataset
        From ``load_market_data(..., compute_fingerprint=False)``, best once persisted (the
        digests are then computed where the chunks live).
    client : distributed.Client, optional
        Computes the digests; default: the current dask scheduler.

    Returns
    -------
    str
        The fingerprint.

    Raises
    ------
    DataError
        A bad bar of a lazily read file (its check runs in the chunk's task).
    """
    if not ds.attrs.get("fingerprint"):
        ds.attrs["fingerprint"] = fingerprint(ds, client=client)
    return str(ds.attrs["fingerprint"])


def _synthetic_source(cfg: DataConfig) -> LazySource:
    from admf_dask.data.calendar import bar_vol_scale, synthetic_times

    symbols = cfg.symbols
    if isinstance(symbols, list):
        _check_names(symbols)
    if symbols is None:
        symbols = sources.DEFAULT_SYNTHETIC_SYMBOLS
    names = symbol_names(symbols) if isinstance(symbols, int) else [str(s) for s in symbols]
    if cfg.seed < 0:
        raise ConfigError("data.seed", f"seed {cfg.seed} is negative", "use a seed >= 0")
    return lazy.synthetic_source(
        cfg.bars,
        names,
        cfg.seed,
        synthetic_times(cfg),
        missing=cfg.missing,
        late_listed=cfg.late_listed,
        delisted=cfg.delisted,
        vol_scale=bar_vol_scale(cfg),
    )


def _bounds(a: int, b: int, size: int) -> list[int]:
    return [*range(a, b, size), b]


def _from_source(
    src: LazySource,
    wanted: list[str] | None,
    start: np.datetime64 | None,
    stop: np.datetime64 | None,
    size: int,
    attrs: dict[str, str],
) -> xr.Dataset:
    """The Dataset of a lazy source's rows in ``[start, stop)`` (whole chunks of `size` bars)."""
    i0, i1 = _window_rows(src.time, start, stop)
    cols, names = _selection(src.symbols, wanted)
    arrays = src.build(_bounds(i0, i1, size))
    if cols is not None and not np.array_equal(cols, np.arange(len(src.symbols))):
        arrays = {f: a[:, cols] for f, a in arrays.items()}
    return _lazy_dataset(src.time[i0:i1], names, arrays, attrs)


def _window_rows(
    time: np.ndarray, start: np.datetime64 | None, stop: np.datetime64 | None
) -> tuple[int, int]:
    """The rows ``[i0, i1)`` of the sorted `time` in ``[start, stop)`` (one run of rows); a
    window without a bar raises."""
    rows = _in_window(time, start, stop)
    if not rows.any():
        raise _no_bars(time, start, stop)
    i0 = int(np.argmax(rows))
    return i0, i0 + int(rows.sum())


def _selection(symbols: Any, wanted: list[str] | None) -> tuple[np.ndarray | None, Any]:
    """The columns of `wanted` among `symbols` (None: all) and the selection's names; an
    unknown symbol raises."""
    if wanted is None:
        return None, symbols
    index = pd.Index(symbols)
    missing = [s for s in wanted if s not in index]
    if missing:
        raise _unknown(missing, sorted(symbols))
    return index.get_indexer(wanted), list(wanted)


def _lazy_dataset(
    time: np.ndarray, names: list[str], arrays: dict[str, da.Array], attrs: dict[str, str]
) -> xr.Dataset:
    if time.size == 0 or not names:
        raise DataError("data", "no bars", "check the data source")
    coords = {"time": as_time(time), "symbol": np.array(names, dtype=object)}
    data_vars = {f: (("time", "symbol"), arrays[f]) for f in FIELDS}
    return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs))


def _from_zarr(
    store: sources.ZarrStore,
    wanted: list[str] | None,
    start: np.datetime64 | None,
    stop: np.datetime64 | None,
    size: int,
    attrs: dict[str, str],
) -> xr.Dataset:
    """The selection of a lazily opened store, rechunked; its bars are checked with the digests."""
    i0, i1 = _window_rows(store.time, start, stop)
    rows: slice | np.ndarray = slice(i0, i1) if store.order is None else store.order[i0:i1]
    cols, names = _selection(store.symbols, wanted)
    arrays = {}
    for f, a in store.arrays.items():
        a = a[rows]
        if cols is not None:
            a = a[:, cols]
        arrays[f] = a.rechunk({0: tuple(np.diff(_bounds(0, i1 - i0, size)).tolist()), 1: -1})
    ds = _lazy_dataset(store.time[i0:i1], names, arrays, attrs)
    # the bars are checked by the fingerprint's tasks (`finish_fingerprint`)
    ds.attrs[_CHECK] = lazy.ZarrLocator(
        store.path, store.label, rows, list(names), store.storage_options
    )
    return ds


def _add_universe(ds: xr.Dataset, path: str, base_dir: str | Path | None) -> None:
    """The ``universe`` mask variable (and ``attrs["universe_warning"]`` for unknown symbols).

    Built per chunk in tasks from each symbol's rows in the universe (the table is small).
    """
    from admf_dask.data.universe import read_universe, universe_rows, unknown_warning

    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(base_dir or Path.cwd()) / p
    table = read_universe(p, path)
    lo, hi, unknown = universe_rows(table, ds["time"].values, [str(s) for s in ds["symbol"].values])
    chunks = ds[FIELDS[0]].chunks[0]
    token = tokenize(lo, hi, chunks)
    ds["universe"] = (("time", "symbol"), lazy.universe_array(lo, hi, chunks, token))
    ds.attrs["universe"] = str(p)
    if unknown:
        ds.attrs["universe_warning"] = unknown_warning(unknown, path)


def fingerprint(ds: xr.Dataset, client: Any = None) -> str:
    """Deterministic hex token of a market Dataset's values, coordinates and source.

    Parameters
    ----------
    ds : xarray.Dataset
        Market data as returned by `load_market_data` (dask-backed data is hashed in tasks,
        one per chunk, `admf_dask.data.lazy.row_digests`; only the digests reach the client).
    client : distributed.Client, optional
        Computes the digests of dask-backed data; default: the current dask scheduler.

    Returns
    -------
    str
        ``dask.base.tokenize`` of the per-bar digests of the five variables' values (and the
        ``universe`` mask when there is one), ``time``, ``symbol`` and ``attrs["source"]``:
        equal data gives an equal token in any process and whatever the chunking; any changed
        value, date, symbol or source changes it.
    """
    time = as_time(ds["time"].values)
    # Fixed-width unicode: object arrays would be pickled, which is not guaranteed stable.
    symbols = np.asarray([str(s) for s in np.asarray(ds["symbol"].values).tolist()], dtype=str)
    variables = [*FIELDS, *(["universe"] if "universe" in ds.data_vars else [])]
    values = []
    for f in variables:
        v = ds[f].transpose("time", "symbol").data
        values.append(v if f == "universe" or v.dtype == np.float64 else v.astype(np.float64))
    check = ds.attrs.get(_CHECK)
    digests = lazy.row_digests(values, check=check, client=client)
    if check is not None:
        ds.attrs.pop(_CHECK)  # checked: every bar is good
    with dask.config.set({"tokenize.ensure-deterministic": True}):
        return tokenize(
            _FINGERPRINT_VERSION, str(ds.attrs.get("source")), time, symbols, variables, digests
        )


def as_data_config(spec: DataConfig | dict[str, Any]) -> DataConfig:
    """Validate a ``data`` section, turning pydantic's errors into one-line `ConfigError`.

    Parameters
    ----------
    spec : DataConfig or dict
        The section.

    Returns
    -------
    DataConfig
        The validated model.
    """
    if isinstance(spec, DataConfig):
        return spec
    if not isinstance(spec, dict):
        raise ConfigError(
            "data",
            f"must be a mapping, got {type(spec).__name__}",
            "write e.g. data: {source: synthetic, symbols: 20}",
        )
    try:
        return DataConfig.model_validate(spec)
    except ValidationError as e:
        raise _config_error(e, "data", DataConfig) from None


def _config_error(exc: ValidationError, prefix: str, model: type[BaseModel]) -> ConfigError:
    errors = exc.errors()
    first = _field_path(errors[0]["loc"], model)
    # A union (symbols: int | list[str]) fails once per member: prefer the deepest failure
    # (a bad list item), else name the accepted types.
    same = [e for e in errors if _field_path(e["loc"], model) == first or e is errors[0]]
    err = max(same, key=lambda e: len(e["loc"]))
    tags = [str(e["loc"][len(first)]) for e in same if len(e["loc"]) > len(first)]
    where = ".".join([prefix, *first]) + "".join(
        f"[{i}]" for i in err["loc"][len(first) :] if isinstance(i, int)
    )
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and err["loc"]:
        key = str(err["loc"][-1])
        parent: type[BaseModel] = model
        for item in first:
            ann = parent.model_fields[item].annotation
            parent = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else parent
        keys = list(parent.model_fields)
        return ConfigError(
            ".".join([prefix, *first, key]),
            f"unknown key '{key}'{did_you_mean(key, keys)}",
            "keys are " + ", ".join(keys),
        )
    if len(same) > 1 and len(err["loc"]) == len(first) + 1 and len(tags) == len(same):
        msg = "expected " + " or ".join(tags)
    if not first and err["type"] == "value_error":
        # a model-level check: its message starts with, or names, the key it is about
        keys = list(model.model_fields)
        named = [k for k in keys if f"{prefix}.{k}" in msg] or [
            k for k in keys if msg.startswith(f"{k} ")
        ]
        if named:
            where = f"{prefix}.{named[0]}"
    if "input" in err and err["type"] not in ("value_error", "missing"):
        msg += f", got {err['input']!r}"
    return ConfigError(where, msg, None)


def _field_path(loc: tuple[int | str, ...], model: type[BaseModel]) -> list[str]:
    """The field names in a pydantic error location (union member tags and indices dropped)."""
    parts: list[str] = []
    current: type[BaseModel] | None = model
    for item in loc:
        if current is None or not isinstance(item, str) or item not in current.model_fields:
            break
        parts.append(item)
        ann = current.model_fields[item].annotation
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return parts


def _check_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    for s in names:
        if not str(s).strip():
            raise ConfigError("data.symbols", "a symbol name is empty", "remove it")
        if s in seen:
            raise ConfigError("data.symbols", f"'{s}' is listed twice", "list each symbol once")
        seen.add(s)
    return list(names)


def _parse_date(text: str | None, key: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            key, f"'{text}' is not a date", "write an ISO date such as 2012-01-31"
        ) from e
    if pd.isna(ts):
        raise ConfigError(key, f"'{text}' is not a date", "write an ISO date such as 2012-01-31")
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _window(cfg: DataConfig) -> tuple[np.datetime64 | None, np.datetime64 | None]:
    """``[start, stop)`` as datetime64 (`_bound`); an end at midnight (a date) keeps that whole
    day."""
    start = _parse_date(cfg.start, "data.start")
    end = _parse_date(cfg.end, "data.end")
    if start is not None and end is not None and start > end:
        raise ConfigError(
            "data.start",
            f"start {cfg.start} is after end {cfg.end}",
            "swap them or correct one",
        )
    stop = None
    if end is not None:
        if end == end.normalize():
            stop = end + pd.Timedelta(days=1)
        else:  # just after `end`: its own finest step where ns cannot hold it (far dates)
            stop = end + pd.Timedelta(1, "ns" if _fits_ns(end) else end.unit)
    return _bound(start), _bound(stop)


def _fits_ns(t: pd.Timestamp) -> bool:
    return bool(in_ns_range(np.array([t.to_datetime64()]))[0])


def _bound(t: pd.Timestamp | None) -> np.datetime64 | None:
    """datetime64[ns] as always; a date past 2262-04-11 keeps its own unit (docs/TIME.md)."""
    if t is None:
        return None
    if _fits_ns(t):
        return np.datetime64(t.as_unit("ns").to_datetime64(), "ns")
    return t.to_datetime64()


def _in_window(
    time: np.ndarray, start: np.datetime64 | None, stop: np.datetime64 | None
) -> np.ndarray:
    keep = np.ones(time.shape, dtype=bool)
    if start is not None:
        keep &= time >= bound_on_axis(start, time)
    if stop is not None:
        keep &= time < bound_on_axis(stop, time)
    return keep


def _no_bars(
    time: np.ndarray, start: np.datetime64 | None, stop: np.datetime64 | None
) -> DataError:
    span = f"{str(time.min())[:10]} to {str(time.max())[:10]}" if time.size else "nothing"
    return DataError(
        "data.start" if start is not None else "data.end",
        f"no bars in the selected window (the data covers {span})",
        "widen data.start / data.end",
    )


def _unknown(missing: list[str], available: list[str]) -> DataError:
    shown = ", ".join(available[:20]) + (
        f", ... ({len(available)} in all)" if len(available) > 20 else ""
    )
    return DataError(
        "data.symbols",
        f"unknown symbol(s) {', '.join(repr(m) for m in missing)}"
        f"{did_you_mean(missing[0], available)}; available: {shown}",
        "pick symbols from the data",
    )


def _pivot(
    table: LongTable,
    wanted: list[str] | None,
    start: np.datetime64 | None,
    stop: np.datetime64 | None,
) -> Dense:
    """Long rows -> (time, symbol) grid; the calendar is the union of the kept rows' times."""
    symbol = table.symbol
    available = sorted(set(symbol.tolist()))
    if wanted is not None:
        known = set(available)
        missing = [s for s in wanted if s not in known]
        if missing:
            raise _unknown(missing, available)
        names = wanted
    else:
        names = available
    keep = _in_window(table.time, start, stop)
    if wanted is not None:
        keep &= pd.Index(symbol).isin(wanted)
    if not keep.any():
        raise _no_bars(table.time, start, stop)
    time = table.time[keep]
    times, ti = np.unique(time, return_inverse=True)  # sorted: unsorted input is fine
    si = pd.Index(names).get_indexer(symbol[keep])
    values = {}
    for f in FIELDS:
        grid = np.full((times.size, len(names)), np.nan)
        grid[ti, si] = table.values[f][keep]
        values[f] = grid
    return Dense(times, list(names), values)


def _select_dense(
    dense: Dense,
    wanted: list[str] | None,
    start: np.datetime64 | None,
    stop: np.datetime64 | None,
) -> Dense:
    cols = slice(None)
    names = dense.symbols
    if wanted is not None:
        index = pd.Index(dense.symbols)
        missing = [s for s in wanted if s not in index]
        if missing:
            raise _unknown(missing, sorted(dense.symbols))
        cols = index.get_indexer(wanted)
        names = list(wanted)
    rows = _in_window(dense.time, start, stop)
    if not rows.any():
        raise _no_bars(dense.time, start, stop)
    if rows.all() and wanted is None:
        return dense
    values = {f: v[rows][:, cols] for f, v in dense.values.items()}
    return Dense(dense.time[rows], names, values)


def _dataset(dense: Dense, attrs: dict[str, str]) -> xr.Dataset:
    if dense.time.size == 0 or not dense.symbols:
        raise DataError("data", "no bars", "check the data source")
    coords = {
        "time": as_time(dense.time),
        "symbol": np.array(dense.symbols, dtype=object),
    }
    data_vars = {f: (("time", "symbol"), np.asarray(dense.values[f], np.float64)) for f in FIELDS}
    return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs))


def _chunk(ds: xr.Dataset, size: int) -> xr.Dataset:
    """Dask arrays over views of the loaded arrays, ``{time: size, symbol: -1}``.

    ``Dataset.chunk`` would copy every array once more (dask's ``from_array`` guards against
    later mutation) and hash it again; these arrays are private to this call, so the chunks are
    read-only views (mutation raises instead of corrupting the graph) and the keys are named
    after the fingerprint (deterministic across runs).
    """
    n_time, n_sym = ds.sizes["time"], ds.sizes["symbol"]
    bounds = list(range(0, n_time, size)) + [n_time]
    chunks = (tuple(np.diff(bounds).tolist()), (n_sym,))
    out = ds.copy()
    for f in [*FIELDS, *(["universe"] if "universe" in ds.data_vars else [])]:
        arr = ds[f].values
        arr.flags.writeable = False
        name = f"market-{f}-{tokenize(ds.attrs['fingerprint'], f, chunks)}"
        graph = {(name, i, 0): arr[a:b] for i, (a, b) in enumerate(itertools.pairwise(bounds))}
        out[f] = (
            ("time", "symbol"),
            da.Array(graph, name, chunks, dtype=arr.dtype, meta=arr[:0, :0]),
        )
    return out


def _resolve(
    path: str | None, base_dir: str | Path | None, storage_options: Any = None, source: str = ""
) -> Any:
    if not path:
        raise ConfigError("data.path", "this source needs a path", "add data.path")
    from admf_dask.dasktools.fs import is_url, local_path, stage_input

    if is_url(path):  # Zarr and Parquet URLs are read lazily by the tasks; a CSV is copied here
        return stage_input(path, storage_options, keep_remote=source in ("zarr", "parquet"))
    p = Path(local_path(path)).expanduser()  # file:// included
    if not p.is_absolute():
        p = Path(base_dir or Path.cwd()) / p
    if not p.exists():
        raise DataError(
            "data.path",
            f"'{path}' does not exist (looked for {p})",
            "check the path; relative paths start at the pipeline file's folder",
        )
    return p
