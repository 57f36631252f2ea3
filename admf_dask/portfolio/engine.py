"""The portfolio stage on Dask: one chain of tasks per batch of portfolios (docs/ARCHITECTURE.md, Dask rules).

Portfolios are sharded, time never is. Task (b, g) of batch b takes the state after the previous
task of the chain and the open/close/signal/vol blocks of its time chunk(s) (the blocks of the
persisted collections of earlier stages, by key: nothing is computed on the client), steps every
bar in one numba call, folds its equity into the metrics accumulator of the state, writes its
equity and cash into ``results.zarr`` by region, its orders to
``orders.parquet/part-b{b:05d}-c{c:05d}.parquet`` (c: the task's first time chunk) and the trades
they close to ``trades.parquet/`` under the same name (open trades carried in the state), and returns
only the new state (a few MB per 500 portfolios × 100 symbols) with small timing counters. A last
task per batch finishes the metrics, writes them and the final positions, and returns the
batch's metrics ((batch,) arrays) to the client. Batches run in parallel; each chain is
sequential. Nothing big ever reaches the client, so memory stays flat as N grows.

A task covers one time chunk, or several consecutive ones when one chunk of a small batch is under
``TASK_STEPS`` portfolio·symbol·bar steps (tasks should run ≥ 100 ms; the scheduler costs ~1 ms
per task). None of this changes a number: the kernel's state carries everything across chunk
borders, and a portfolio's arithmetic does not depend on the other portfolios of its batch.

This module builds the graph; the tasks are in `admf_dask.portfolio.tasks`, the layout of
``results.zarr`` in `admf_dask.portfolio.store`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from admf_dask.dasktools.fs import Loc, remove_tree, zarr_target
from admf_dask.data.dates import as_time, open_zarr
from admf_dask.errors import ConfigError, DataError, did_you_mean
from admf_dask.portfolio.grid import PortfolioBook
from admf_dask.portfolio.store import create_store, metrics_dataset
from admf_dask.portfolio.tasks import BatchSpec, finish_task, step_task, warm, warm_kernels
from admf_dask.portfolio.trades import (
    RELATIVE_METRIC_DOC,
    TRADE_METRIC_DOC,
    benchmark_index,
    write_batches,
)

__all__ = ["TASK_STEPS", "PortfolioResult", "run_portfolios", "warm_kernels"]

if TYPE_CHECKING:
    import xarray as xr
    from distributed import Client

#: group time chunks into one task until it has at least this many portfolio·symbol·bar steps
TASK_STEPS = 1 << 25


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
        ``task_zarr``, ``task_orders``, ``task_trades``, ``task_metrics``) and the tasks' CPU time
        (``task_cpu``; below the wall times when the machine is shared).
    results_path : Path
        ``results.zarr``.
    trades_path : Path or None
        ``trades.parquet/`` (None when trades were not written).
    """

    equity: xr.DataArray
    metrics: xr.Dataset
    orders_path: Path | Loc | None
    n_orders: int
    timings: dict[str, float] = field(default_factory=dict)
    results_path: Path | Loc | None = None
    trades_path: Path | Loc | None = None


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
        "high": None,
        "low": None,
    }
    if book.intrabar:
        for name in ("high", "low"):
            arrays[name] = _as_dask(_bar_prices(data, name, symbols).data, chunks2)
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


def _bar_prices(data, name: str, symbols) -> xr.DataArray:
    """``data[name]`` (time, symbol) for ``exit_on: intrabar``, checked: every symbol with an
    open has a high and a low somewhere (docs/ACCOUNTING.md, exits reads the bar's open, high and low)."""
    import dask

    fix = "give the data high and low prices, or use exit_on: close"
    if name not in data.data_vars:
        raise DataError("data", f"exit_on: intrabar needs '{name}' prices, the data has none", fix)
    x = data[name].transpose("time", "symbol")
    has_open, has_x = dask.compute(
        data["open"].notnull().any("time").data, x.notnull().any("time").data
    )
    missing = [str(s) for s, a, b in zip(symbols, has_open, has_x, strict=True) if a and not b]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"data.{name}",
            f"exit_on: intrabar needs '{name}' prices, symbol '{missing[0]}'{more} has none",
            fix,
        )
    return x


def _spec_path(where: Path | Loc | None) -> str | Loc | None:
    """A task's output location: a local path as a string, a store's prefix as its `Loc`
    (plain data: it pickles, and the task rebuilds the filesystem from its options)."""
    if where is None or isinstance(where, Loc):
        return where
    return str(where)


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


def split_for_threads(batch_size: int, n_portfolios: int, n_threads: int) -> int:
    """`batch_size`, lowered so that a grid smaller than ``batch_size`` x `n_threads` gives
    every thread a batch (one batch would leave the others idle through the stage)."""
    return min(int(batch_size), max(1, math.ceil(n_portfolios / max(1, n_threads))))


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


def run_portfolios(
    data: xr.Dataset,
    signals: xr.DataArray,
    features: xr.Dataset | None,
    book: PortfolioBook,
    out_dir: str | Path | Loc,
    *,
    client: Client | None = None,
    run_id: str = "",
    write_orders: bool = True,
    write_trades: bool = True,
    benchmark: str | None = None,
    batch_size: int | None = None,
    on_submit: Callable[[list[Any]], None] | None = None,
    before_submit: Callable[[], None] | None = None,
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
    out_dir : str, Path or Loc
        Run folder: ``results.zarr`` and ``orders.parquet/`` are written there (replaced). A
        `Loc` of a URL: the tasks write straight to that prefix of the store.
    client : distributed.Client, optional
        Runs the tasks; None uses dask's current scheduler (the default distributed client if
        one is set, else the local threaded scheduler).
    run_id : str
        Stamped on results.zarr's attributes and the task keys.
    write_orders : bool
        Write the order ledger (false: only count fills).
    write_trades : bool
        Write the trade ledger ``trades.parquet/`` and the trade metrics (docs/TRADES.md).
    benchmark : str, optional
        A symbol of the data: adds alpha, beta, information_ratio and tracking_error against its
        close-to-close returns (docs/TRADES.md).
    batch_size : int, optional
        Portfolios per batch (one chain of tasks each). Default: ``book.batch_size``, lowered
        so that there are at least as many batches as threads.
    on_submit : callable, optional
        Called with the futures of the batch chains once they are submitted (a progress display).
    before_submit : callable, optional
        Called once the store is made and the graph built, before any task is submitted: a check
        that may raise (the run then stops with nothing computed).

    Returns
    -------
    PortfolioResult
    """
    import uuid

    import dask

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if client is None:
        client = _default_client()
    remote = isinstance(out_dir, Loc) and not out_dir.is_local
    out = out_dir if remote else Path(str(out_dir))
    arrays, tchunks, times, symbols = _prepare(data, signals, features, book)
    bench = benchmark_index(benchmark, [str(s) for s in symbols])
    if not remote:  # (a store has no folders to make)
        out.mkdir(parents=True, exist_ok=True)  # after the checks: bad input writes nothing
    N, S = book.n_portfolios, len(symbols)
    if batch_size is None:
        bs = split_for_threads(book.batch_size, N, _n_threads(client))
    else:
        bs = int(batch_size)
    batches = book.batches(bs)
    groups = _groups(tchunks, bs * S)
    store = out / "results.zarr"
    extra = (
        *(TRADE_METRIC_DOC if write_trades else ()),
        *(RELATIVE_METRIC_DOC if bench is not None else ()),
    )
    create_store(store, book, times, symbols, max(tchunks), bs, run_id, extra)
    orders_dir = out / "orders.parquet" if write_orders else None
    trades_dir = out / "trades.parquet" if write_trades else None
    for d in (orders_dir, trades_dir):
        if d is not None:
            remove_tree(d)
            if not remote:
                d.mkdir(parents=True)
    if trades_dir is not None:
        write_batches(trades_dir, [(sl.start, sl.stop) for sl in batches])

    # blocks of the (persisted) input collections, by key
    o_blocks = arrays["open"].to_delayed().ravel()
    c_blocks = arrays["close"].to_delayed().ravel()
    s_blocks = arrays["signals"].to_delayed().ravel()
    v_blocks = arrays["vol"].to_delayed().ravel() if arrays["vol"] is not None else None
    hl_blocks = {
        k: arrays[k].to_delayed().ravel() if arrays[k] is not None else None
        for k in ("high", "low")
    }
    edges = np.cumsum((0, *tchunks))
    time_values = as_time(times.values)  # [ns], or [s] past 2262: docs/TIME.md
    tok = uuid.uuid4().hex[:12]  # the tasks write files: never let dask reuse an earlier result
    mixes = book.mixes
    finals = []
    for b, sl in enumerate(batches):
        spec = BatchSpec(
            index=b,
            p0=sl.start,
            p1=sl.stop,
            mixes=mixes,
            fparams=book.fparams(sl),
            iparams=book.iparams(sl),
            capital=book.capital,
            periods_per_year=book.periods_per_year,
            n_symbols=S,
            store=_spec_path(store),
            orders_dir=_spec_path(orders_dir),
            symbols=tuple(str(s) for s in symbols),
            trades_dir=_spec_path(trades_dir),
            times=time_values,
            benchmark=bench,
        )
        spec_d = dask.delayed(spec, name=f"portfolio-spec-{tok}-{b}", traverse=False)
        carried = None
        for c0, c1 in groups:
            carried = dask.delayed(step_task)(
                carried,
                list(o_blocks[c0:c1]),
                list(c_blocks[c0:c1]),
                list(s_blocks[c0:c1]),
                list(v_blocks[c0:c1]) if v_blocks is not None else None,
                spec_d,
                c0,
                time_values[edges[c0] : edges[c1]],
                *(
                    list(hl_blocks[k][c0:c1]) if hl_blocks[k] is not None else None
                    for k in ("high", "low")
                ),
                dask_key_name=f"portfolio-step-{tok}-b{b}-c{c0}",
            )
        finals.append(
            dask.delayed(finish_task)(carried, spec_d, dask_key_name=f"portfolio-finish-{tok}-b{b}")
        )
    timings["prepare"] = time.perf_counter() - t_start

    if before_submit is not None:
        before_submit()
    tic = time.perf_counter()
    warm(client)
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
    ds = open_zarr(zarr_target(store, read_only=True) if remote else store)
    metrics = metrics_dataset(book, [r["metrics"] for r in results], run_id)
    n_orders = int(sum(r["n_orders"] for r in results))
    for key in (
        "task_kernel",
        "task_zarr",
        "task_orders",
        "task_trades",
        "task_metrics",
        "task_cpu",
    ):
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
        trades_path=trades_dir,
    )
