"""The worker side of the portfolio stage: the tasks of a batch's chain (docs/ARCHITECTURE.md, Dask rules).

`step_task` steps one batch over one or more consecutive time chunks, writes its equity and cash
into ``results.zarr`` by region, its orders to ``orders.parquet/part-b{b:05d}-c{c:05d}.parquet``
and the trades they close to ``trades.parquet/`` (same name; `admf_dask.portfolio.trades`), and
returns only the new state; `finish_task` finishes the batch's metrics. Module-level functions:
workers import them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from admf_dask.dasktools.fs import Loc, arrow_target, join
from admf_dask.metrics import finalize_metrics
from admf_dask.metrics.relative import finalize_relative, init_relative, update_relative
from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio._trades import TradeState, TradeTable, trade_metrics
from admf_dask.portfolio.batch import BatchState, OrderRecords, scratch, step
from admf_dask.portfolio.store import write_regions
from admf_dask.portfolio.trades import PARQUET_OPTIONS as TRADES_OPTIONS
from admf_dask.portfolio.trades import (
    ledger_step,
    part_name,
    trades_arrow,
    trades_row_groups,
    warm_trades,
)


@dataclass(frozen=True)
class BatchSpec:
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
    #: results.zarr and the ledgers' folders: paths, or `Loc` prefixes of a run on a store
    store: str | Loc
    orders_dir: str | Loc | None
    symbols: tuple[str, ...]
    #: trades.parquet/ (None: no trades), the run's bar times, the benchmark's symbol index
    trades_dir: str | Loc | None = None
    times: np.ndarray | None = None
    benchmark: int | None = None


#: a thread keeps its task buffers for the next task up to this size (page faults saved); above
#: it they go back after each task, so that the busy workers' peaks do not all stay up together
KEEP_BYTES = 256 << 20


def _cat(blocks: list[np.ndarray], axis: int = 0) -> np.ndarray:
    """The blocks as one writeable C-contiguous float64 array.

    Writeable: a block that came from another worker is read-only, and numba compiles, caches
    and loads a kernel specialization of its own for read-only arrays (a worker's first task
    loaded it: tens of milliseconds; a cold cache compiled it: seconds). A copy of a market
    block costs microseconds.
    """
    if len(blocks) == 1:
        a = np.ascontiguousarray(blocks[0], dtype=np.float64)
        return a if a.flags.writeable else a.copy()
    return np.ascontiguousarray(np.concatenate(blocks, axis=axis), dtype=np.float64)


def _orders_table(orders: OrderRecords, spec: BatchSpec, t0: int, times: np.ndarray, buffers):
    """The task's orders as an Arrow table with the columns of orders.parquet; its columns are
    views of ``buffers`` (valid until the thread's next task)."""
    import pyarrow as pa

    n = len(orders)
    i8, f8 = np.int64, np.float64
    port, time_ns = buffers.get("o_portfolio", n, i8), buffers.get("o_time", n, i8)
    sym, why = buffers.get("o_symbol", n, np.int32), buffers.get("o_reason", n, np.int8)
    qty, px = buffers.get("o_qty", n, f8), buffers.get("o_price", n, f8)
    comm = buffers.get("o_commission", n, f8)
    times = np.ascontiguousarray(times)  # datetime64[ns], or [s] past 2262: docs/TIME.md
    unit = np.datetime_data(times.dtype)[0]
    times_ns = times.view(i8)
    K.order_columns(orders.records, spec.p0, t0, times_ns, port, time_ns, sym, qty, px, comm, why)
    cols = [
        pa.array(port),
        pa.array(time_ns.view(times.dtype)),
        pa.DictionaryArray.from_arrays(pa.array(sym), pa.array(list(spec.symbols), pa.string())),
        pa.array(qty),
        pa.array(px),
        pa.array(comm),
        pa.DictionaryArray.from_arrays(pa.array(why), pa.array(list(K.REASON_NAMES), pa.string())),
    ]
    return pa.Table.from_arrays(cols, schema=orders_schema(unit))


def orders_schema(unit: str = "ns"):
    """The Arrow schema of orders.parquet. No column has nulls: declared required, the writer
    encodes no definition levels (that took 40% of the write); readers get the same dtypes."""
    import pyarrow as pa

    f8 = pa.float64()
    types = {
        "portfolio": pa.int64(),
        "time": pa.timestamp(unit),
        "symbol": pa.dictionary(pa.int32(), pa.string()),
        "qty": f8,
        "price": f8,
        "commission": f8,
        "reason": pa.dictionary(pa.int8(), pa.string()),
    }
    return pa.schema([pa.field(name, types[name], nullable=False) for name in K.ORDER_FIELDS])


_PARQUET_OPTIONS = {
    # lz4 (LZ4_RAW): as fast as snappy here and half the bytes on sorted order records; the bar
    # times (sorted runs within each portfolio) take zstd level 1: 0.077 -> 0.031 B/order at no
    # measurable write CPU. zstd on the floats saves ~10% more bytes for +30-70% write CPU, and
    # the portfolio column grows under zstd (docs/BENCHMARKS.md, orders.parquet encodings)
    "compression": {name: "zstd" if name == "time" else "lz4" for name in K.ORDER_FIELDS},
    "compression_level": {"time": 1},
    # symbols and reasons are Arrow dictionaries (written as they are); portfolios and bars come
    # in sorted runs that lz4 packs as well as a dictionary would, at a fraction of the hashing
    "use_dictionary": ["symbol", "reason"],
    "write_statistics": ["portfolio", "time"],
    # large write batches and pages cut the per-page overhead
    "write_batch_size": 1 << 16,
    "data_page_size": 1 << 22,
}


#: rows of one row group of orders.parquet (pyarrow's default): the columns are made and written
#: one row group at a time, so their buffers stay small and are reused from task to task (fresh
#: buffers for a task's whole ledger paid a page fault per 4 KB: more than making the columns)
ROW_GROUP = 1 << 20


class _Part:
    """One task's file of orders.parquet or trades.parquet (a path, or a `Loc` on a store),
    written row group by row group as the task steps its time chunks."""

    def __init__(self, where: str | Loc, options: dict[str, Any]) -> None:
        self.where, self.options, self.writer = where, options, None

    def write(self, table) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            path, fs = arrow_target(self.where)
            self.writer = pq.ParquetWriter(path, table.schema, filesystem=fs, **self.options)
        self.writer.write_table(table, row_group_size=ROW_GROUP)

    def close(self, empty) -> None:
        """Finish the file; ``empty()`` gives the table written when no rows came."""
        if self.writer is None:
            self.write(empty())
        self.writer.close()


def _write_orders(part: _Part, orders: OrderRecords, spec: BatchSpec, t0: int, times, buffers):
    """Add a chunk's orders to the task's file, one row group of columns at a time."""
    for i in range(0, len(orders), ROW_GROUP):
        part.write(_orders_table(orders[i : i + ROW_GROUP], spec, t0, times, buffers))


def step_task(
    carried: tuple[BatchState, dict[str, float]] | None,
    opens: list[np.ndarray],
    closes: list[np.ndarray],
    sigs: list[np.ndarray],
    vols: list[np.ndarray] | None,
    spec: BatchSpec,
    chunk: int,
    times: np.ndarray,
    highs: list[np.ndarray] | None = None,
    lows: list[np.ndarray] | None = None,
) -> tuple[BatchState, dict[str, float]]:
    """Step one batch over consecutive time chunks; write equity, cash and orders.

    ``highs`` / ``lows`` are given when some portfolio of the run has ``exit_on: intrabar``.
    """
    clock = time.perf_counter
    cpu = time.thread_time
    tic, tic_cpu = clock(), cpu()
    if carried is None:
        P = spec.p1 - spec.p0
        state = BatchState.new(P, spec.n_symbols, spec.capital)
        if spec.trades_dir is not None:
            state.trades = TradeState.new(P, spec.n_symbols)
        if spec.benchmark is not None:
            state.relative = init_relative(spec.capital, P)
        stats = dict.fromkeys(("kernel", "zarr", "orders", "trades", "cpu", "orders_per_step"), 0.0)
        copy = False
    else:
        state, stats = carried
        stats = dict(stats)
        copy = True
    t0 = state.n_bars
    record = spec.orders_dir is not None or spec.trades_dir is not None  # trades: from orders
    buffers = scratch()
    name = part_name(spec.index, chunk)
    o_part = _Part(join(spec.orders_dir, name), _PARQUET_OPTIONS) if spec.orders_dir else None
    t_part = _Part(join(spec.trades_dir, name), TRADES_OPTIONS) if spec.trades_dir else None
    # one time chunk at a time: the order records, their columns and the trades of one chunk at
    # once, in buffers the next chunk reuses (a task's whole ledger was fresh memory: a page
    # fault per 4 KB, and the task's peak); the kernel gives the same numbers chunk by chunk
    for i in range(len(closes)):
        tic_k = clock() if i else tic
        close = _cat([closes[i]])
        n_steps = close.size * (spec.p1 - spec.p0)
        # size the order buffer from the rate seen so far (regrowing it costs faults and copies)
        rate = stats["orders_per_step"] or buffers.orders_per_step
        hint = int(n_steps * rate * 1.1) + 1024 if record else 0
        c0 = state.n_bars
        state, equity, cash, orders = step(
            state,
            _cat([opens[i]]),
            close,
            _cat([sigs[i]]),
            _cat([vols[i]], axis=1) if vols else None,
            spec.mixes,
            spec.fparams,
            spec.iparams,
            record=record,
            copy=copy and i == 0,
            capacity=hint,
            high=_cat([highs[i]]) if highs else None,
            low=_cat([lows[i]]) if lows else None,
            buffers=buffers,
        )
        stats["orders_per_step"] = float(len(orders)) / max(n_steps, 1)
        if record:
            buffers.orders_per_step = stats["orders_per_step"]
        tac = clock()
        region = (slice(c0, state.n_bars), slice(spec.p0, spec.p1))
        write_regions(spec.store, [("equity", region, equity), ("cash", region, cash)])
        toc = clock()
        if o_part is not None:
            _write_orders(o_part, orders, spec, t0, times, buffers)
        tt = clock()
        if t_part is not None:
            n_bars = len(spec.times)
            tables = ledger_step(state.trades, orders, close, c0, n_bars, state.last_close, buffers)
            for trades in tables:
                groups = trades_row_groups(
                    trades, spec.p0, spec.times, spec.symbols, ROW_GROUP, buffers
                )
                for table in groups:
                    t_part.write(table)
        if spec.benchmark is not None:
            update_relative(state.relative, equity, close[:, spec.benchmark])
        stats["kernel"] += tac - tic_k
        stats["zarr"] += toc - tac
        stats["orders"] += tt - toc
        stats["trades"] += clock() - tt
    tic_w = clock()
    if o_part is not None:
        o_part.close(lambda: _orders_table(OrderRecords.empty(), spec, t0, times, buffers))
    tt = clock()
    if t_part is not None:
        t_part.close(lambda: trades_arrow(TradeTable.concat([]), spec.p0, spec.times, spec.symbols))
    stats["orders"] += tt - tic_w
    stats["trades"] += clock() - tt
    if buffers.nbytes > KEEP_BYTES:
        buffers.clear()  # a task of many orders: free them now, as a fresh buffer would be
    stats["cpu"] += cpu() - tic_cpu
    return state, stats


def finish_task(carried: tuple[BatchState, dict[str, float]], spec: BatchSpec) -> dict:
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
    if state.trades is not None:
        metrics.update(trade_metrics(state.trades))
    if state.relative is not None:
        metrics.update(finalize_relative(state.relative, spec.periods_per_year))
    rows = (slice(spec.p0, spec.p1),)
    writes = [(name, rows, np.asarray(metrics[name])) for name in metrics]
    write_regions(spec.store, [*writes, ("positions", (*rows, slice(None)), state.q)])
    # the chain is done: its buffers go back (between chains, and after the stage, a worker holds
    # no ledger memory; the next chain refills them once, its later tasks reuse them)
    scratch().clear()
    kinds = ("kernel", "zarr", "orders", "trades", "cpu")
    out: dict[str, Any] = {f"task_{k}": stats[k] for k in kinds}
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
    o = np.zeros(2, dtype=K.ORDER_DTYPE)
    i8, f8 = np.zeros(2, np.int64), np.zeros(2)
    K.order_columns(
        o, 0, 0, i8, i8, i8.copy(), np.zeros(2, np.int32), f8, f8, f8, np.zeros(2, np.int8)
    )
    finalize_metrics(st.perf, 252.0, traded=st.traded, gross_exposure_sum=st.gross_sum)
    warm_trades()


async def _warm_off_loop() -> None:
    """`warm_kernels` on a worker thread: `client.run` calls a plain function on the worker's
    event loop, and a cold numba compile there (tens of seconds) starves the worker's connections
    until the scheduler drops it (CommClosedError: the whole run fails)."""
    import asyncio

    await asyncio.get_running_loop().run_in_executor(None, warm_kernels)


def warm(client) -> None:
    """Load the kernels where the tasks will run: here without a cluster; on a cluster the
    workers' `admf_dask.cluster.plugin.WorkerSetup` has (a bare client that never registered it
    gets them warmed once per call, off the workers' event loops)."""
    if client is None:
        warm_kernels()
        return
    from admf_dask.dasktools import WORKER_PLUGIN

    info = client.scheduler_info()
    plugins = client.run_on_scheduler(_worker_plugin_names) if info.get("workers") else set()
    if WORKER_PLUGIN not in plugins:
        # warming is an optimization: a worker lost meanwhile must not fail the run
        client.run(_warm_off_loop, on_error="ignore")


def _worker_plugin_names(dask_scheduler=None) -> set[str]:
    return set(getattr(dask_scheduler, "worker_plugins", {}) or {})
