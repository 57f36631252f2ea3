"""Layout of ``results.zarr``: metadata and coordinates written up front, filled by region.

The client writes the store's metadata (`create_store`) before any task runs; each task of a
batch's chain then writes its (time chunk, batch) region of ``equity`` / ``cash`` and, at the
end, the batch's metrics and final positions (`admf_dask.portfolio.tasks`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from admf_dask.dasktools.fs import Loc, zarr_target
from admf_dask.metrics import METRIC_NAMES
from admf_dask.portfolio.grid import PortfolioBook, grid_coord_name
from admf_dask.portfolio.trades import RELATIVE_METRIC_DOC, TRADE_METRIC_DOC

METRIC_DOC = {
    "total_return": "total return (empyrical cum_returns_final)",
    "annual_return": "compound annual growth rate (empyrical annual_return)",
    "annual_volatility": "annualized std of returns, ddof=1 (empyrical annual_volatility)",
    "sharpe": "annualized Sharpe ratio, risk-free 0 (empyrical sharpe_ratio)",
    "sortino": "annualized Sortino ratio, required return 0 (empyrical sortino_ratio)",
    "max_drawdown": "maximum drawdown, <= 0 (empyrical max_drawdown)",
    "calmar": "annual_return / |max_drawdown| (empyrical calmar_ratio)",
    "n_orders": "number of fills",
    "turnover": "sum |qty * fill price| / mean equity over the run (not annualized)",
    "exposure": "mean over bars of sum |position value| / equity (mean gross exposure)",
}


@contextlib.contextmanager
def zarr_quiet() -> Iterator[None]:
    # zarr 3 warns that consolidated metadata is not in the v3 spec; xarray reads it fine
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        yield


#: arrays of local stores opened by this process: (store, name) -> (their zarr.json bytes, array)
_OPENED: dict[tuple[str, str], tuple[bytes, Any]] = {}
_OPENED_LOCK = threading.Lock()
_OPENED_MAX = 256


def open_array(store: str | Loc, name: str):
    """An array of results.zarr for region writes (`store`: a path, or a URL's `Loc`).

    A local store's array is opened once per process and kept while its ``zarr.json`` holds the
    same bytes (zarr's open reads and parses the metadata through its event loop, ~2 ms: as much
    as writing an equity region); a store made again at the same path with other metadata is
    opened afresh.
    """
    import zarr

    target = zarr_target(store)
    if not isinstance(target, str | os.PathLike):
        return zarr.open_array(store=target, path=name, mode="r+")
    key = (os.fspath(target), name)
    try:
        with open(os.path.join(key[0], name, "zarr.json"), "rb") as f:
            meta = f.read()
    except OSError:
        meta = None  # not there (or not zarr 3): zarr's own open says why
    with _OPENED_LOCK:
        hit = _OPENED.get(key)
    if meta is not None and hit is not None and hit[0] == meta:
        return hit[1]
    array = zarr.open_array(store=target, path=name, mode="r+")
    if meta is not None:
        with _OPENED_LOCK:
            _OPENED.pop(key, None)
            _OPENED[key] = (meta, array)
            while len(_OPENED) > _OPENED_MAX:  # runs of a long-lived worker: the oldest go
                del _OPENED[next(iter(_OPENED))]
    return array


def write_regions(
    store: str | Loc, writes: list[tuple[str, tuple[slice, ...], np.ndarray]]
) -> None:
    """Region writes ``(name, selection, values)`` into several arrays of results.zarr at once.

    Each write of a zarr array is a trip through zarr's event loop (a millisecond or two, most
    of a small region's cost); issued together, the writes run concurrently in one trip (a
    batch's twenty metric arrays: 35-43 -> 24 ms; the store's task time at 10,000 portfolios
    -20%, docs/BENCHMARKS.md).
    """
    import asyncio

    from zarr.core.sync import sync

    arrays = [open_array(store, name) for name, _, _ in writes]

    async def write_all() -> None:
        await asyncio.gather(
            *(a.async_array.setitem(sel, v) for a, (_, sel, v) in zip(arrays, writes, strict=True))
        )

    sync(write_all())


def portfolio_coords(book: PortfolioBook) -> dict[str, Any]:
    coords: dict[str, Any] = {"portfolio": np.arange(book.n_portfolios, dtype=np.int64)}
    for key in book.grid_keys:
        v = np.asarray(book.param(key))
        v = v.astype(object) if v.dtype.kind == "U" else v
        coords[grid_coord_name(key)] = ("portfolio", v, {"grid_key": key})
    return coords


def metrics_dataset(book: PortfolioBook, parts: list[dict[str, np.ndarray]], run_id: str):
    """The metrics of all batches (in batch order) as a Dataset like the one in results.zarr."""
    import xarray as xr

    docs = {**METRIC_DOC, **TRADE_METRIC_DOC, **RELATIVE_METRIC_DOC}
    names = [n for n in docs if n in METRIC_DOC or (parts and n in parts[0])]
    data = {
        name: ("portfolio", np.concatenate([p[name] for p in parts]), {"description": docs[name]})
        for name in names
    }
    attrs = {"run_id": run_id, "capital": book.capital, "periods_per_year": book.periods_per_year}
    return xr.Dataset(data, coords=portfolio_coords(book), attrs=attrs)


#: bytes of equity + cash + positions below which `create_store` builds them as arrays of their
#: fill value rather than as dask placeholders (their store graph, built and thrown away, was
#: ~40 ms of a 32-portfolio store's ~170; above the size, allocating the arrays costs more)
_SMALL_STORE = 8 << 20


def create_store(
    path: Path | Loc,
    book: PortfolioBook,
    times,
    symbols,
    tchunk: int,
    bs: int,
    run_id,
    extra_metrics: tuple[str, ...] = (),
):
    """Write results.zarr's metadata and coordinates; the tasks fill the arrays by region.

    ``extra_metrics``: names in `TRADE_METRIC_DOC` / `RELATIVE_METRIC_DOC` the run also computes.
    """
    import dask.array as da
    import xarray as xr

    N, T, S = book.n_portfolios, len(times), len(symbols)
    f8 = np.float64

    dims = {"time": T, "portfolio": N, "symbol": S}
    zchunks = {"time": tchunk, "portfolio": bs, "symbol": S}
    #: zarr chunks per variable: aligned with the tasks' (time chunk, batch) regions
    chunks: dict[str, tuple[int, ...]] = {}

    small = (T + S) * N * 8 <= _SMALL_STORE

    def lazy(name, dim_names, dtype=f8):
        shape = tuple(dims[d] for d in dim_names)
        chunks[name] = tuple(min(zchunks[d], dims[d]) for d in dim_names)
        if small:
            # the fill value itself, which zarr does not write (empty chunks are skipped):
            # cheaper than the dask graph that the store of a lazy array builds and discards
            return dim_names, np.full(shape, np.nan if dtype == f8 else 0, dtype=dtype)
        # one dask chunk: only the metadata is written (compute=False), and a graph of a dask
        # chunk per zarr chunk, built and thrown away, was ~20% of this function's CPU
        return dim_names, da.empty(shape, chunks=shape, dtype=dtype)

    data_vars: dict[str, Any] = {
        "equity": lazy("equity", ("time", "portfolio")),
        "cash": lazy("cash", ("time", "portfolio")),
        "positions": lazy("positions", ("portfolio", "symbol")),
    }
    docs = {**METRIC_DOC, **TRADE_METRIC_DOC, **RELATIVE_METRIC_DOC}
    names = (*METRIC_NAMES, *extra_metrics)
    for name in names:
        dtype = np.int64 if name in ("n_orders", "n_trades") else f8
        data_vars[name] = lazy(name, ("portfolio",), dtype)
    coords: dict[str, Any] = {
        "time": np.asarray(times),
        "symbol": np.asarray([str(s) for s in symbols], dtype=object),
        **portfolio_coords(book),
    }
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update(
        run_id=run_id,
        capital=book.capital,
        periods_per_year=book.periods_per_year,
        strategies=list(book.strategy_names),
    )
    ds["equity"].attrs["description"] = "cash + sum(shares * last finite close) at each close"
    ds["cash"].attrs["description"] = "cash at each close"
    ds["positions"].attrs["description"] = "shares held after the last bar"
    for name in names:
        ds[name].attrs["description"] = docs[name]
    from zarr.codecs import BloscCodec

    # equity floats barely compress: byte-shuffled LZ4 costs little CPU (zstd cost ~3x a raw write)
    fast = [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")]
    encoding = {name: {"chunks": chunks[name], "compressors": fast} for name in data_vars}
    for name in names:
        if name not in ("n_orders", "n_trades"):
            encoding[name]["fill_value"] = np.nan
    with zarr_quiet():
        ds.to_zarr(zarr_target(path), mode="w", compute=False, consolidated=True, encoding=encoding)
