"""The trade ledger on disk: ``trades.parquet/`` of a run folder (docs/TRADES.md, docs/TRADES.md).

Each task of a batch's chain writes the trades closed in its time chunk(s) to
``trades.parquet/part-b{b:05d}-c{c:05d}.parquet`` (the last task of a chain adds the trades still
open at the last bar, ``exit_time`` null), next to its orders. Before any task runs, the client
writes ``trades.parquet/_batches.json``: the portfolio range of each batch, so a reader asked for
some portfolios opens only the files of their batches (Parquet readers skip ``_`` files).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from admf_dask.dasktools.fs import Loc, arrow_target
from admf_dask.errors import ConfigError, did_you_mean
from admf_dask.portfolio._trades import (
    N_TFL,
    N_TI,
    TFL_COST,
    TFL_ENTRY_PRICE,
    TFL_EXIT_PRICE,
    TFL_MAE,
    TFL_MFE,
    TFL_PNL,
    TFL_RETURN,
    TI_BARS,
    TI_EXIT,
    TI_FILLS,
    TI_SYMBOL,
    TradeState,
    TradeTable,
    arrow_columns,
    finalize_trades,
    step_trades,
    table_levels,
)

#: the columns of trades.parquet, in order
TRADE_COLUMNS: tuple[str, ...] = (
    "portfolio",
    "symbol",
    "side",
    "entry_time",
    "exit_time",
    "n_fills",
    "entry_price",
    "exit_price",
    "pnl",
    "cost",
    "return",
    "bars",
    "mfe",
    "mae",
)
#: descriptions of the per-portfolio metrics of the trades and of the benchmark (results.zarr)
TRADE_METRIC_DOC = {
    "n_trades": "trades, closed and still open at the last bar",
    "win_rate": "share of closed trades with pnl > 0 (nan: no closed trade)",
    "profit_factor": "sum of positive / |sum of negative| closed-trade pnl (inf: no loss)",
    "expectancy": "mean pnl of the closed trades",
    "avg_bars": "mean bars from entry to exit of the closed trades",
}
RELATIVE_METRIC_DOC = {
    "alpha": "annualized alpha against the benchmark (empyrical alpha_beta)",
    "beta": "beta against the benchmark (empyrical alpha_beta)",
    "information_ratio": "mean(r - b) / std(r - b, ddof=1) * sqrt(periods_per_year)",
    "tracking_error": "std(r - b, ddof=1) * sqrt(periods_per_year)",
}
BATCHES_FILE = "_batches.json"
_PART = re.compile(r"part-b(\d+)-c(\d+)\.parquet$")

# Every column but exit_time / exit_price is required (no definition levels to encode), floats
# are not worth a dictionary, and large write batches and pages cut the per-page overhead: with
# these the ledger costs about half of pyarrow's defaults to encode (benchmarks/portfolio_scaling.py).
PARQUET_OPTIONS: dict[str, Any] = {
    # pnl, cost and return are noise to lz4 on random flips (same bytes, -10% write CPU
    # uncompressed); prices, excursions and the integer columns repeat and pack. lz4 on all of
    # them cuts portfolio_scaling.py's 10,000-portfolio trades 1,033 -> 120 MB (a grid's
    # portfolios trade alike) but cost ~+2 task CPU-s of ~20 there, twice in a row: not kept
    "compression": {
        **dict.fromkeys(TRADE_COLUMNS, "lz4"),
        **dict.fromkeys(("pnl", "cost", "return"), "none"),
    },
    "use_dictionary": ["symbol"],
    "write_statistics": ["portfolio"],
    "write_batch_size": 1 << 16,
    "data_page_size": 1 << 22,
}
#: rows of one row group of trades.parquet (`write_trades`)
ROW_GROUP = 1 << 20


def trades_schema(unit: str = "ns"):
    """The Arrow schema of trades.parquet (times in the market's `unit`: docs/TIME.md)."""
    import pyarrow as pa

    f8 = pa.float64()
    ts = pa.timestamp(unit)
    return pa.schema(
        [
            pa.field("portfolio", pa.int64(), nullable=False),
            pa.field("symbol", pa.dictionary(pa.int32(), pa.string()), nullable=False),
            pa.field("side", pa.int8(), nullable=False),
            pa.field("entry_time", ts, nullable=False),
            pa.field("exit_time", ts),
            pa.field("n_fills", pa.int32(), nullable=False),
            pa.field("entry_price", f8, nullable=False),
            pa.field("exit_price", f8),
            pa.field("pnl", f8, nullable=False),
            pa.field("cost", f8, nullable=False),
            pa.field("return", f8, nullable=False),
            pa.field("bars", pa.int32(), nullable=False),
            pa.field("mfe", f8, nullable=False),
            pa.field("mae", f8, nullable=False),
        ]
    )


def trades_arrow(
    table: TradeTable, p0: int, times: np.ndarray, symbols: Sequence[str], buffers: Any = None
):
    """A `TradeTable` of one batch as an Arrow table with the columns of trades.parquet.

    Parameters
    ----------
    table : TradeTable
        Trades with batch-local portfolios and global bar indices.
    p0 : int
        Global index of the batch's first portfolio.
    times : ndarray datetime64[ns] or datetime64[s] (T,)
        Bar times of the whole run (indexed by global bar); the columns keep their unit.
    symbols : sequence of str
        The symbols (indexed by symbol index).
    buffers : Scratch, optional
        Reused buffers for the columns that are not rows of ``table``
        (`admf_dask.portfolio.batch.Scratch`; the Arrow table is valid until the thread's next
        call with them). The other columns are ``table``'s rows, not copied.
    """
    import pyarrow as pa

    ints, floats = table.ints, table.floats
    n = len(table)
    i8 = np.int64
    if buffers is None:
        port, entry, exit_ = np.empty(n, i8), np.empty(n, i8), np.empty(n, i8)
        side = np.empty(n, np.int8)
    else:
        port, entry = buffers.get("t_portfolio", n, i8), buffers.get("t_entry", n, i8)
        exit_, side = buffers.get("t_exit", n, i8), buffers.get("t_side", n, np.int8)
    times = np.ascontiguousarray(times)  # datetime64[ns], or [s] past 2262: docs/TIME.md
    n_open = arrow_columns(ints, int(p0), times.view(i8), port, side, entry, exit_)
    unit = times.dtype
    if n_open:
        exit_time = pa.array(exit_.view(unit), mask=ints[TI_EXIT] < 0)
    else:
        exit_time = pa.array(exit_.view(unit))
    sym = pa.DictionaryArray.from_arrays(
        pa.array(ints[TI_SYMBOL]), pa.array(list(symbols), type=pa.string())
    )
    cols = [
        pa.array(port),
        sym,
        pa.array(side),
        pa.array(entry.view(unit)),
        exit_time,
        pa.array(ints[TI_FILLS]),
        pa.array(floats[TFL_ENTRY_PRICE]),
        pa.array(floats[TFL_EXIT_PRICE]),
        pa.array(floats[TFL_PNL]),
        pa.array(floats[TFL_COST]),
        pa.array(floats[TFL_RETURN]),
        pa.array(ints[TI_BARS]),
        pa.array(floats[TFL_MFE]),
        pa.array(floats[TFL_MAE]),
    ]
    return pa.Table.from_arrays(cols, schema=trades_schema(np.datetime_data(unit)[0]))


def part_name(batch: int, chunk: int) -> str:
    """File name of the trades of batch ``batch`` from its time chunk ``chunk`` on."""
    return f"part-b{batch:05d}-c{chunk:05d}.parquet"


def write_trades(
    table: TradeTable,
    path: str | os.PathLike | Loc,
    p0: int,
    times: np.ndarray,
    symbols: Sequence[str],
) -> None:
    """Write one batch × time chunk file of trades.parquet (a path, or a `Loc` on a store), one
    row group (`ROW_GROUP` rows, pyarrow's default) at a time: the Arrow columns of a slice are
    small buffers the allocator reuses (those of a task's whole ledger were fresh memory, a page
    fault per 4 KB)."""
    import pyarrow.parquet as pq

    where, fs = arrow_target(path)
    writer = None
    try:
        for arrow in trades_row_groups(table, p0, times, symbols, ROW_GROUP):
            if writer is None:
                writer = pq.ParquetWriter(where, arrow.schema, filesystem=fs, **PARQUET_OPTIONS)
            writer.write_table(arrow, row_group_size=ROW_GROUP)
        if writer is None:  # no trades: a file of the schema
            arrow = trades_arrow(table, p0, times, symbols)
            pq.write_table(arrow, where, filesystem=fs, **PARQUET_OPTIONS)
    finally:
        if writer is not None:
            writer.close()


def trades_row_groups(
    table: TradeTable,
    p0: int,
    times: np.ndarray,
    symbols: Sequence[str],
    rows: int,
    buffers: Any = None,
) -> Iterator[Any]:
    """`trades_arrow` of ``table``, ``rows`` trades at a time (each valid until the next)."""
    for i in range(0, len(table), rows):
        part = TradeTable(table.ints[:, i : i + rows], table.floats[:, i : i + rows])
        yield trades_arrow(part, p0, times, symbols, buffers)


def write_batches(trades_dir: str | os.PathLike | Loc, bounds: Iterable[tuple[int, int]]) -> None:
    """Write ``_batches.json``: ``[p0, p1)`` of batch b at index b."""
    text = json.dumps({"batches": [[int(a), int(b)] for a, b in bounds]})
    if isinstance(trades_dir, Loc):
        (trades_dir / BATCHES_FILE).write_bytes(text.encode())
        return
    path = Path(trades_dir) / BATCHES_FILE
    path.write_text(text)


def _wanted(values: Any) -> list | None:
    if values is None:
        return None
    if isinstance(values, str | int | np.integer):
        return [values]
    return list(values)


def part_files(
    trades_dir: str | os.PathLike, portfolios: Iterable[int] | None = None
) -> list[Path]:
    """The files of trades.parquet that can hold trades of ``portfolios`` (None: all), in
    (batch, chunk) order."""
    d = Path(trades_dir)
    parts = sorted(
        (int(m.group(1)), int(m.group(2)), p)
        for p in d.glob("part-*.parquet")
        if (m := _PART.search(p.name))
    )
    if portfolios is None:
        return [p for _, _, p in parts]
    bounds = json.loads((d / BATCHES_FILE).read_text())["batches"]
    wanted = np.asarray(sorted({int(p) for p in portfolios}), dtype=np.int64)
    keep = set()
    for b, (a, z) in enumerate(bounds):
        i = np.searchsorted(wanted, a)
        if i < wanted.size and wanted[i] < z:
            keep.add(b)
    return [p for b, _, p in parts if b in keep]


def read_trades(
    trades_dir: str | os.PathLike,
    portfolio: int | Iterable[int] | None = None,
    symbol: str | Iterable[str] | None = None,
):
    """The trades of a run as a pandas DataFrame, optionally for some portfolios / symbols.

    Only the files of the batches that hold the requested portfolios are opened; the symbol
    filter is applied while scanning them. Rows are sorted by (portfolio, symbol, entry_time).

    Parameters
    ----------
    trades_dir : path
        ``trades.parquet/`` of a run folder.
    portfolio : int or iterable of int, optional
    symbol : str or iterable of str, optional

    Returns
    -------
    pandas.DataFrame
        The columns of `TRADE_COLUMNS`; ``symbol`` categorical, ``exit_time`` NaT while open.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    ports = _wanted(portfolio)
    syms = _wanted(symbol)
    files = part_files(trades_dir, ports)
    schema = trades_schema(_time_unit(files))
    cond = None
    if ports is not None:
        cond = pc.field("portfolio").isin(pa.array([int(p) for p in ports], pa.int64()))
    if syms is not None:
        c = pc.field("symbol").isin(pa.array([str(s) for s in syms], pa.string()))
        cond = c if cond is None else cond & c
    if files:
        ds = pads.dataset([os.fspath(f) for f in files], format="parquet", schema=schema)
        tab = ds.to_table(filter=cond)
    else:
        tab = schema.empty_table()
    df = tab.to_pandas()
    df = df.sort_values(["portfolio", "symbol", "entry_time"], kind="stable")
    return df.reset_index(drop=True)


def _time_unit(files: Sequence[Any]) -> str:
    """The unit of the files' times: ns, or ms for a market past 2262-04-11 held in seconds
    (Parquet has no seconds unit: docs/TIME.md)."""
    if not files:
        return "ns"
    import pyarrow.parquet as pq

    return pq.read_schema(os.fspath(files[0])).field("entry_time").type.unit


def ledger_step(
    state: TradeState,
    orders: Any,
    close: np.ndarray,
    t0: int,
    n_bars: int,
    last_close: np.ndarray,
    buffers: Any = None,
) -> list[TradeTable]:
    """The trades of one task: those its fills close, plus the open ones when it ends the run.

    Parameters
    ----------
    state : TradeState
        The batch's open trades after the previous task (updated in place).
    orders : OrderRecords
        The task's fills (`admf_dask.portfolio.batch.OrderRecords`).
    close : ndarray (T, S)
        The task's closes.
    t0 : int
        Global index of the task's first bar.
    n_bars : int
        Bars of the whole run.
    last_close : ndarray (S,)
        Last finite close per symbol after this task (the batch state's ``last_close``).
    buffers : Scratch, optional
        Reused buffers for the closed trades (`admf_dask.portfolio.batch.Scratch`; the table is
        valid until the thread's next task).

    Returns
    -------
    list of TradeTable
        The closed trades, then (in the run's last task) the open ones: two tables, written one
        after the other (joining them copied every closed trade of the chunk).
    """
    out = tables = None
    if buffers is not None:
        n = len(orders)
        out = (
            buffers.get("t_ints", N_TI * n, np.int32).reshape(N_TI, n),
            buffers.get("t_floats", N_TFL * n, np.float64).reshape(N_TFL, n),
        )
        shape = (table_levels(close.shape[0]), *close.shape)
        size = int(np.prod(shape))
        tables = (
            buffers.get("t_high", size, np.float64).reshape(shape),
            buffers.get("t_low", size, np.float64).reshape(shape),
        )
    table = step_trades(
        state,
        orders.portfolio,
        orders.time,
        orders.symbol,
        orders.qty,
        orders.price,
        orders.commission,
        close,
        t0,
        out,
        tables,
    )
    if t0 + close.shape[0] >= n_bars:
        opened, _ = finalize_trades(state, last_close, n_bars - 1)
        return [table, opened]
    return [table]


def benchmark_index(benchmark: str | None, symbols: Sequence[str]) -> int | None:
    """Index of ``portfolios.benchmark`` among the data's symbols (None: no benchmark).

    Raises
    ------
    ConfigError
        The symbol is not in the data, or the data has a single symbol (a portfolio of it
        measured against itself says nothing).
    """
    if benchmark is None:
        return None
    names = [str(s) for s in symbols]
    where = "portfolios.benchmark"
    if benchmark not in names:
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise ConfigError(
            where,
            f"'{benchmark}' is not a symbol of the data{did_you_mean(benchmark, names)} "
            f"(symbols: {shown})",
            "name one of the data's symbols, or remove the key",
        )
    if len(names) == 1:
        raise ConfigError(
            where,
            f"the data has one symbol ({names[0]}): the portfolios trade the benchmark itself",
            "add the symbols to trade (data.symbols), or remove portfolios.benchmark",
        )
    return names.index(benchmark)


def warm_trades() -> None:
    """Compile (or load from numba's cache) the trade kernels for the engine's argument types:
    order-record fields are strided views of an `ORDER_DTYPE` array (numba's 'A' layout, which
    a record array of fewer than 2 rows does not give)."""
    from admf_dask.metrics.relative import finalize_relative, init_relative, update_relative
    from admf_dask.portfolio._trades import trade_metrics
    from admf_dask.portfolio.batch import OrderRecords
    from admf_dask.portfolio.enums import ORDER_DTYPE

    rec = np.zeros(4, dtype=ORDER_DTYPE)
    rec["time"] = [0, 1, 2, 2]
    rec["qty"] = [1.0, 1.0, -3.0, 1.0]
    rec["price"] = 10.0
    close = np.full((3, 1), 10.0)
    state = TradeState.new(1, 1)
    (closed,) = ledger_step(state, OrderRecords(rec), close, 0, 4, close[-1])
    times = np.arange(3).astype("datetime64[ns]")
    trades_arrow(closed, 0, times, ["A"])  # the closed trades: slices of buffers ('A' layout)
    trades_arrow(TradeTable.concat([closed]), 0, times, ["A"])  # open ones: fresh ('C' layout)
    trade_metrics(state)
    acc = init_relative(100.0, 1)
    update_relative(acc, np.ones((3, 1)), close[:, 0])
    finalize_relative(acc)
