"""The portfolio stage on Dask: one chain of tasks per batch of portfolios (DESIGN §4).

Portfolios are sharded, time never is. Task (b, g) of batch b takes the state after the previous
task of the chain and the open/close/signal/vol blocks of its time chunk(s) (the blocks of the
persisted collections of earlier stages, by key: nothing is computed on the client), steps every
bar in one numba call, folds its equity into the metrics accumulator of the state, writes its
equity and cash into ``results.zarr`` by region and its orders to
``orders.parquet/part-b{b:05d}-c{c:05d}.parquet`` (c: the task's first time chunk), and returns
only the new state (a few MB per 500 portfolios × 100 symbols) with small timing counters. A last
task per batch finishes the metrics, writes them and the final positions, and returns the
batch's metrics ((batch,) arrays) to the client. Batches run in parallel; each chain is
sequential. Nothing big ever reaches the client, so memory stays flat as N grows.

A task covers one time chunk, or several consecutive ones when one chunk of a small batch is under
``TASK_STEPS`` portfolio·symbol·bar steps (tasks should run ≥ 100 ms; the scheduler costs ~1 ms
per task). None of this changes a number: the kernel's state carries everything across chunk
borders, and a portfolio's arithmetic does not depend on the other portfolios of its batch.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.metrics import METRIC_NAMES, finalize_metrics
from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio.batch import BatchState, OrderRecords, step
from admf_dask.portfolio.grid import PortfolioBook, grid_coord_name

if TYPE_CHECKING:
    import xarray as xr
    from distributed import Client

#: group time chunks into one task until it has at least this many portfolio·symbol·bar steps
TASK_STEPS = 1 << 25

_METRIC_DOC = {
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


@dataclass
class PortfolioResult:
    """What `run_portfolios` returns (the data itself stays on disk).

    Attributes
    ----------
    equity : xr.DataArray
        Equity (time, portfolio), lazily opened from ``results.zarr``.
    metrics : xr.Dataset
        One variable per metric (portfolio), grid parameters as coordinates; loaded.
    orders_path : Path or None
        ``orders.parquet/`` (None when orders were not written).
    n_orders : int
        Number of fills over all portfolios.
    timings : dict of str to float
        Seconds: wall time per phase (``prepare``, ``warm``, ``compute``, ``finalize``,
        ``total``), wall time summed over tasks per kind of work (``task_kernel``,
        ``task_zarr``, ``task_orders``, ``task_metrics``) and the tasks' CPU time
        (``task_cpu``; below the wall times when the machine is shared).
    results_path : Path
        ``results.zarr``.
    """

    equity: xr.DataArray
    metrics: xr.Dataset
    orders_path: Path | None
    n_orders: int
    timings: dict[str, float] = field(default_factory=dict)
    results_path: Path | None = None


@dataclass(frozen=True)
class _BatchSpec:
    """Everything a task of one batch needs besides the data blocks and the state."""

    index: int
    p0: int
    p1: int
    mixes: np.ndarray
    fparams: np.ndarray
    iparams: np.ndarray
    capital: float
    periods_per_year: float
    n_symbols: int
    store: str
    orders_dir: str | None
    symbols: tuple[str, ...]


@contextlib.contextmanager
def _zarr_quiet() -> Iterator[None]:
    # zarr 3 warns that consolidated metadata is not in the v3 spec; xarray reads it fine
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        yield


# -- tasks (module-level: workers import them) --------------------------------------------------


def _cat(blocks: list[np.ndarray], axis: int = 0) -> np.ndarray:
    if len(blocks) == 1:
        return np.ascontiguousarray(blocks[0], dtype=np.float64)
    return np.ascontiguousarray(np.concatenate(blocks, axis=axis), dtype=np.float64)


def _open_array(store: str, name: str):
    import zarr

    return zarr.open_array(store=store, path=name, mode="r+")


def _orders_table(orders: OrderRecords, spec: _BatchSpec, t0: int, times: np.ndarray):
    import pyarrow as pa

    sym = pa.DictionaryArray.from_arrays(
        pa.array(orders.symbol, type=pa.int32()), pa.array(list(spec.symbols), type=pa.string())
    )
    reason = pa.DictionaryArray.from_arrays(
        pa.array(orders.reason, type=pa.int8()), pa.array(list(K.REASON_NAMES), type=pa.string())
    )
    return pa.table(
        {
            "portfolio": pa.array(orders.portfolio.astype(np.int64) + spec.p0),
            "time": pa.array(times[orders.time - t0]),
            "symbol": sym,
            "qty": pa.array(orders.qty),
            "price": pa.array(orders.price),
            "commission": pa.array(orders.commission),
            "reason": reason,
        }
    )


_PARQUET_OPTIONS = {
    # lz4 (LZ4_RAW): as fast as snappy here and half the bytes on sorted order records
    "compression": "lz4",
    # floats are not worth a dictionary (nor statistics); ids, bars and labels repeat a lot
    "use_dictionary": ["portfolio", "time", "symbol", "reason"],
    "write_statistics": ["portfolio", "time"],
}


def _step_task(
    carried: tuple[BatchState, dict[str, float]] | None,
    opens: list[np.ndarray],
    closes: list[np.ndarray],
    sigs: list[np.ndarray],
    vols: list[np.ndarray] | None,
    spec: _BatchSpec,
    chunk: int,
    times: np.ndarray,
) -> tuple[BatchState, dict[str, float]]:
    """Step one batch over consecutive time chunks; write equity, cash and orders."""
    clock = time.perf_counter
    cpu = time.thread_time
    tic, tic_cpu = clock(), cpu()
    if carried is None:
        state = BatchState.new(spec.p1 - spec.p0, spec.n_symbols, spec.capital)
        stats = dict.fromkeys(("kernel", "zarr", "orders", "cpu", "orders_per_step"), 0.0)
        copy = False
    else:
        state, stats = carried
        stats = dict(stats)
        copy = True
    t0 = state.n_bars
    open_, close, sig = _cat(opens), _cat(closes), _cat(sigs)
    vol = _cat(vols, axis=1) if vols else None
    record = spec.orders_dir is not None
    n_steps = close.size * (spec.p1 - spec.p0)
    # size the order buffer from the rate seen so far (regrowing it costs page faults and copies)
    hint = int(n_steps * stats["orders_per_step"] * 1.1) + 1024 if record else 0
    state, equity, cash, orders = step(
        state,
        open_,
        close,
        sig,
        vol,
        spec.mixes,
        spec.fparams,
        spec.iparams,
        record=record,
        copy=copy,
        capacity=hint,
    )
    stats["orders_per_step"] = float(len(orders)) / max(n_steps, 1)
    tac = clock()
    t1 = state.n_bars
    _open_array(spec.store, "equity")[t0:t1, spec.p0 : spec.p1] = equity
    _open_array(spec.store, "cash")[t0:t1, spec.p0 : spec.p1] = cash
    toc = clock()
    if record:
        import pyarrow.parquet as pq

        name = f"part-b{spec.index:05d}-c{chunk:05d}.parquet"
        table = _orders_table(orders, spec, t0, times)
        pq.write_table(table, os.path.join(spec.orders_dir, name), **_PARQUET_OPTIONS)
    stats["kernel"] += tac - tic
    stats["zarr"] += toc - tac
    stats["orders"] += clock() - toc
    stats["cpu"] += cpu() - tic_cpu
    return state, stats


def _finish_task(carried: tuple[BatchState, dict[str, float]], spec: _BatchSpec) -> dict:
    """Finish the batch's metrics (folded along the chain); write them and the positions."""
    tic, tic_cpu = time.perf_counter(), time.thread_time()
    state, stats = carried
    metrics = finalize_metrics(
        state.perf,
        spec.periods_per_year,
        traded=state.traded,
        gross_exposure_sum=state.gross_sum,
        n_orders=state.n_orders,
    )
    for name in METRIC_NAMES:
        _open_array(spec.store, name)[spec.p0 : spec.p1] = metrics[name]
    _open_array(spec.store, "positions")[spec.p0 : spec.p1, :] = state.q
    out: dict[str, Any] = {f"task_{k}": stats[k] for k in ("kernel", "zarr", "orders", "cpu")}
    out["task_metrics"] = time.perf_counter() - tic
    out["task_cpu"] += time.thread_time() - tic_cpu
    out["n_orders"] = int(state.n_orders.sum())
    out["metrics"] = metrics  # (batch,) arrays: small
    return out


def warm_kernels() -> None:
    """Compile (or load from numba's cache) every kernel the engine calls, for these types."""
    S, T = 2, 3
    st = BatchState.new(2, S, 100.0)
    px = np.full((T, S), 10.0)
    sig = np.ones((T, S, 1))
    fp = np.zeros((2, K.N_FPARAMS))
    fp[:, K.F_POSITION_WEIGHT] = fp[:, K.F_MAX_POSITION] = fp[:, K.F_MAX_GROSS] = 0.5
    ip = np.zeros((2, K.N_IPARAMS), dtype=np.int64)
    ip[1, K.I_VOL] = 0
    ip[0, K.I_VOL] = -1
    for record in (True, False):
        step(st, px, px, sig, np.ones((1, T, S)), np.ones((1, 1)), fp, ip, record=record)
        st, *_ = step(st, px, px, sig, None, np.ones((1, 1)), fp, ip, record=record)
    finalize_metrics(st.perf, 252.0, traded=st.traded, gross_exposure_sum=st.gross_sum)


# -- client side ---------------------------------------------------------------------------------


def _as_dask(x, chunks):
    import dask.array as da

    if isinstance(x, da.Array):
        return x.rechunk(chunks) if x.chunks != chunks else x
    return da.from_array(np.asarray(x), chunks=chunks)


def _prepare(data, signals, features, book: PortfolioBook):
    """Dask arrays (T, S) open/close, (T, S, K) signals, (V, T, S) vol, aligned on data's chunks."""
    import dask.array as da

    open_da = data["open"].transpose("time", "symbol")
    close_da = data["close"].transpose("time", "symbol")
    T, S = open_da.shape
    if open_da.chunks is not None:
        tchunks = open_da.chunks[0]
    elif close_da.chunks is not None:
        tchunks = close_da.chunks[0]
    else:
        tchunks = (T,)
    times = data.indexes["time"]
    symbols = data.indexes["symbol"]

    names = list(book.strategy_names)
    sig = signals.transpose("time", "symbol", "strategy")
    have = [str(s) for s in sig.indexes["strategy"]]
    for n in names:
        if n not in have:
            raise ConfigError(
                "portfolios.strategy",
                f"no signals for strategy '{n}'{did_you_mean(n, have)}",
                "the book's strategies must be the signals' strategies",
            )
    sig = sig.sel(strategy=names)
    if not sig.indexes["time"].equals(times) or not sig.indexes["symbol"].equals(symbols):
        raise ValueError("signals are not on the time/symbol grid of the market data")

    chunks2 = (tchunks, (S,))
    arrays = {
        "open": _as_dask(open_da.data, chunks2),
        "close": _as_dask(close_da.data, chunks2),
        "signals": _as_dask(sig.data, (tchunks, (S,), (len(names),))),
        "vol": None,
    }
    if book.vol_features:
        if features is None:
            raise ConfigError(
                "portfolios.vol_feature",
                "vol_target sizing needs features, but none were given",
                "compute the volatility feature and pass the features",
            )
        vols = []
        for vf in book.vol_features:
            if vf not in features.data_vars:
                raise ConfigError(
                    "portfolios.vol_feature",
                    f"unknown feature '{vf}'{did_you_mean(vf, list(features.data_vars))}",
                    "use a feature defined under features",
                )
            v = features[vf].transpose("time", "symbol")
            if not v.indexes["time"].equals(times) or not v.indexes["symbol"].equals(symbols):
                raise ValueError(f"feature {vf} is not on the time/symbol grid of the market data")
            vols.append(_as_dask(v.data, chunks2))
        arrays["vol"] = da.stack(vols).rechunk(((len(vols),), tchunks, (S,)))
    return arrays, tchunks, times, symbols


def _default_client():
    """The distributed client dask.compute would use, if any (None: local scheduler)."""
    import dask

    if dask.config.get("scheduler", None) != "dask.distributed":
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _n_threads(client) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return max(1, os.cpu_count() or 1)


def _groups(tchunks: tuple[int, ...], steps_per_bar: int) -> list[tuple[int, int]]:
    """Consecutive runs of time chunks [c0, c1) of at least TASK_STEPS steps (the last: less)."""
    groups, c0, acc = [], 0, 0
    for c, n in enumerate(tchunks):
        acc += n * steps_per_bar
        if acc >= TASK_STEPS:
            groups.append((c0, c + 1))
            c0, acc = c + 1, 0
    if c0 < len(tchunks):
        groups.append((c0, len(tchunks)))
    return groups


def _portfolio_coords(book: PortfolioBook) -> dict[str, Any]:
    coords: dict[str, Any] = {"portfolio": np.arange(book.n_portfolios, dtype=np.int64)}
    for key in book.grid_keys:
        v = np.asarray(book.param(key))
        v = v.astype(object) if v.dtype.kind == "U" else v
        coords[grid_coord_name(key)] = ("portfolio", v, {"grid_key": key})
    return coords


def _metrics_dataset(book: PortfolioBook, parts: list[dict[str, np.ndarray]], run_id: str):
    """The metrics of all batches (in batch order) as a Dataset like the one in results.zarr."""
    import xarray as xr

    data = {
        name: ("portfolio", np.concatenate([p[name] for p in parts]), {"description": doc})
        for name, doc in _METRIC_DOC.items()
    }
    attrs = {"run_id": run_id, "capital": book.capital, "periods_per_year": book.periods_per_year}
    return xr.Dataset(data, coords=_portfolio_coords(book), attrs=attrs)


def _create_store(path: Path, book: PortfolioBook, times, symbols, tchunk: int, bs: int, run_id):
    """Write results.zarr's metadata and coordinates; the tasks fill the arrays by region."""
    import dask.array as da
    import xarray as xr

    N, T, S = book.n_portfolios, len(times), len(symbols)
    f8 = np.float64

    def lazy(shape, chunks, dtype=f8):
        return da.empty(shape, chunks=chunks, dtype=dtype)

    data_vars: dict[str, Any] = {
        "equity": (("time", "portfolio"), lazy((T, N), (tchunk, bs))),
        "cash": (("time", "portfolio"), lazy((T, N), (tchunk, bs))),
        "positions": (("portfolio", "symbol"), lazy((N, S), (bs, S))),
    }
    for name in METRIC_NAMES:
        dtype = np.int64 if name == "n_orders" else f8
        data_vars[name] = (("portfolio",), lazy((N,), (bs,), dtype))
    coords: dict[str, Any] = {
        "time": np.asarray(times),
        "symbol": np.asarray([str(s) for s in symbols], dtype=object),
        **_portfolio_coords(book),
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
    for name in METRIC_NAMES:
        ds[name].attrs["description"] = _METRIC_DOC[name]
    from zarr.codecs import BloscCodec

    # equity floats barely compress: byte-shuffled LZ4 costs little CPU (zstd cost ~3x a raw write)
    fast = [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")]
    encoding = {
        name: {"chunks": ds[name].data.chunksize, "compressors": fast} for name in data_vars
    }
    for name in METRIC_NAMES:
        if name != "n_orders":
            encoding[name]["fill_value"] = np.nan
    with _zarr_quiet():
        ds.to_zarr(path, mode="w", compute=False, consolidated=True, encoding=encoding)


async def _warm_off_loop() -> None:
    """`warm_kernels` on a worker thread: `client.run` calls a plain function on the worker's
    event loop, and a cold numba compile there (tens of seconds) starves the worker's connections
    until the scheduler drops it (CommClosedError: the whole run fails)."""
    import asyncio

    await asyncio.get_running_loop().run_in_executor(None, warm_kernels)


def _warm(client) -> None:
    if client is not None:
        # warming is an optimization: a worker lost meanwhile must not fail the run
        client.run(_warm_off_loop, on_error="ignore")
    else:
        warm_kernels()


def run_portfolios(
    data: xr.Dataset,
    signals: xr.DataArray,
    features: xr.Dataset | None,
    book: PortfolioBook,
    out_dir: str | Path,
    *,
    client: Client | None = None,
    run_id: str = "",
    write_orders: bool = True,
    batch_size: int | None = None,
    on_submit: Callable[[list[Any]], None] | None = None,
) -> PortfolioResult:
    """Run every portfolio of ``book`` over the data; write results.zarr and orders.parquet.

    Parameters
    ----------
    data : xr.Dataset
        Market data with ``open`` and ``close`` (time, symbol), dask-chunked along time (the
        chunks become the engine's time chunks; numpy-backed data is one chunk).
    signals : xr.DataArray
        Signals (time, symbol, strategy) in [-1, 1]; must hold ``book.strategy_names``.
    features : xr.Dataset or None
        Features; needed when a portfolio uses vol_target sizing (its ``vol_feature``).
    book : PortfolioBook
        The portfolios, from `expand_grid`.
    out_dir : str or Path
        Run folder: ``results.zarr`` and ``orders.parquet/`` are written there (replaced).
    client : distributed.Client, optional
        Runs the tasks; None uses dask's current scheduler (the default distributed client if
        one is set, else the local threaded scheduler).
    run_id : str
        Stamped on results.zarr's attributes and the task keys.
    write_orders : bool
        Write the order ledger (false: only count fills).
    batch_size : int, optional
        Portfolios per batch (one chain of tasks each). Default: ``book.batch_size``, lowered
        so that there are at least as many batches as threads.

    Returns
    -------
    PortfolioResult
    """
    import uuid

    import dask
    import xarray as xr

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if client is None:
        client = _default_client()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays, tchunks, times, symbols = _prepare(data, signals, features, book)
    N, S = book.n_portfolios, len(symbols)
    if batch_size is None:
        bs = min(book.batch_size, max(1, math.ceil(N / _n_threads(client))))
    else:
        bs = int(batch_size)
    batches = book.batches(bs)
    groups = _groups(tchunks, bs * S)
    store = out / "results.zarr"
    _create_store(store, book, times, symbols, max(tchunks), bs, run_id)
    orders_dir = out / "orders.parquet" if write_orders else None
    if orders_dir is not None:
        import shutil

        shutil.rmtree(orders_dir, ignore_errors=True)
        orders_dir.mkdir(parents=True)

    # blocks of the (persisted) input collections, by key
    o_blocks = arrays["open"].to_delayed().ravel()
    c_blocks = arrays["close"].to_delayed().ravel()
    s_blocks = arrays["signals"].to_delayed().ravel()
    v_blocks = arrays["vol"].to_delayed().ravel() if arrays["vol"] is not None else None
    edges = np.cumsum((0, *tchunks))
    time_values = np.asarray(times.values, dtype="datetime64[ns]")
    tok = uuid.uuid4().hex[:12]  # the tasks write files: never let dask reuse an earlier result
    mixes = book.mixes
    finals = []
    for b, sl in enumerate(batches):
        spec = _BatchSpec(
            index=b,
            p0=sl.start,
            p1=sl.stop,
            mixes=mixes,
            fparams=book.fparams(sl),
            iparams=book.iparams(sl),
            capital=book.capital,
            periods_per_year=book.periods_per_year,
            n_symbols=S,
            store=str(store),
            orders_dir=str(orders_dir) if orders_dir is not None else None,
            symbols=tuple(str(s) for s in symbols),
        )
        spec_d = dask.delayed(spec, name=f"portfolio-spec-{tok}-{b}", traverse=False)
        carried = None
        for c0, c1 in groups:
            carried = dask.delayed(_step_task)(
                carried,
                list(o_blocks[c0:c1]),
                list(c_blocks[c0:c1]),
                list(s_blocks[c0:c1]),
                list(v_blocks[c0:c1]) if v_blocks is not None else None,
                spec_d,
                c0,
                time_values[edges[c0] : edges[c1]],
                dask_key_name=f"portfolio-step-{tok}-b{b}-c{c0}",
            )
        finals.append(
            dask.delayed(_finish_task)(
                carried, spec_d, dask_key_name=f"portfolio-finish-{tok}-b{b}"
            )
        )
    timings["prepare"] = time.perf_counter() - t_start

    tic = time.perf_counter()
    _warm(client)
    timings["warm"] = time.perf_counter() - tic

    tic = time.perf_counter()
    if client is not None:
        futures = client.compute(finals)
        if on_submit is not None:  # progress display: one future per batch chain
            on_submit(futures)
        results = client.gather(futures)
    else:
        results = dask.compute(*finals)
    timings["compute"] = time.perf_counter() - tic

    tic = time.perf_counter()
    # the metadata was consolidated when the store was made (the tasks only write chunks)
    ds = xr.open_zarr(store)
    metrics = _metrics_dataset(book, [r["metrics"] for r in results], run_id)
    n_orders = int(sum(r["n_orders"] for r in results))
    for key in ("task_kernel", "task_zarr", "task_orders", "task_metrics", "task_cpu"):
        timings[key] = float(sum(r[key] for r in results))
    timings["finalize"] = time.perf_counter() - tic
    timings["total"] = time.perf_counter() - t_start
    return PortfolioResult(
        equity=ds["equity"],
        metrics=metrics,
        orders_path=orders_dir,
        n_orders=n_orders,
        timings={k: round(v, 6) for k, v in timings.items()},
        results_path=store,
    )
