"""orders.parquet and results.zarr as readers get them, whatever the writer's encodings and caches.

orders.parquet: the columns, Arrow / pandas dtypes, values and row order of the tables the tasks
make (`_orders_table`), read back with pandas and pyarrow. results.zarr: arrays a worker keeps
open between tasks stay right when the store is made again at the same path.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr

from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio import tasks
from admf_dask.portfolio.batch import OrderRecords, scratch
from admf_dask.portfolio.store import create_store, open_array
from admf_dask.portfolio.tasks import (
    _PARQUET_OPTIONS,
    BatchSpec,
    _orders_table,
    _Part,
    _write_orders,
    orders_schema,
)

COLUMNS = ["portfolio", "time", "symbol", "qty", "price", "commission", "reason"]


def _spec(p0: int, n_portfolios: int, symbols: tuple[str, ...]) -> BatchSpec:
    z = np.zeros((n_portfolios, 1))
    return BatchSpec(
        index=0,
        p0=p0,
        p1=p0 + n_portfolios,
        mixes=np.ones((1, 1)),
        fparams=z,
        iparams=z.astype(np.int64),
        capital=1.0,
        periods_per_year=252.0,
        n_symbols=len(symbols),
        store="",
        orders_dir=None,
        symbols=symbols,
    )


def _records(rng, n: int, n_portfolios: int, n_bars: int, n_symbols: int) -> np.ndarray:
    """Order records sorted like the kernel's (portfolio, bar, symbol), with repeats across
    portfolios (what the codecs see on a grid) and awkward floats (-0.0, subnormal, huge)."""
    rec = np.zeros(n, dtype=K.ORDER_DTYPE)
    rec["portfolio"] = np.sort(rng.integers(0, n_portfolios, n))
    rec["time"] = rng.integers(0, n_bars, n)
    rec["symbol"] = rng.integers(0, n_symbols, n)
    rec.sort(order=["portfolio", "time", "symbol"], kind="stable")
    rec["qty"] = rng.normal(0, 300, n)
    rec["qty"][: n // 2] = rec["qty"][n // 2 : 2 * (n // 2)]  # repeated values
    rec["price"] = np.exp(rng.normal(3, 1, n))
    rec["commission"] = np.abs(rec["qty"] * rec["price"]) * 5e-4
    rec["qty"][:3] = [-0.0, 5e-324, 1e300]
    rec["reason"] = rng.integers(0, len(K.REASON_NAMES), n)
    return rec


@pytest.mark.parametrize(("unit", "row_group"), [("ns", 1 << 20), ("ns", 1000), ("s", 1 << 20)])
def test_orders_file_reads_back_as_the_tables(tmp_path, monkeypatch, unit, row_group):
    monkeypatch.setattr(tasks, "ROW_GROUP", row_group)  # row groups split inside a chunk too
    rng = np.random.default_rng(3)
    symbols = tuple(f"S{i:02d}" for i in range(13))
    n_bars, n_portfolios, p0, t0 = 300, 40, 1000, 50
    if unit == "ns":
        times = pd.date_range("2011-01-03", periods=t0 + n_bars, freq="B").values[t0:]
        times = times.astype("datetime64[ns]")
    else:  # past 2262: second resolution (docs/TIME.md)
        times = np.arange(t0, t0 + n_bars).astype("datetime64[D]").astype("datetime64[s]")
        times = times + np.timedelta64(300 * 365, "D")
    spec = _spec(p0, n_portfolios, symbols)
    rec = _records(rng, 5000, n_portfolios, n_bars, len(symbols))
    rec["time"] += t0
    buffers = scratch()
    chunks = [rec[:1700], rec[1700:1700], rec[1700:]]  # the chunks of one task, one empty
    # copies: a table's columns are views of the thread's reused buffers
    copy = lambda t: pickle.loads(pickle.dumps(t))  # noqa: E731
    expected = pa.concat_tables(
        [copy(_orders_table(OrderRecords(c), spec, t0, times, buffers)) for c in chunks]
    )
    path = tmp_path / "part-b00000-c00000.parquet"
    part = _Part(str(path), _PARQUET_OPTIONS)
    for c in chunks:
        _write_orders(part, OrderRecords(c), spec, t0, times, buffers)
    part.close(lambda: _orders_table(OrderRecords.empty(), spec, t0, times, buffers))

    got = pq.read_table(path)
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-1700 // row_group) + -(
        -3300 // row_group
    )
    # Parquet has no second unit: timestamp[s] columns come back as [ms] (the same instants)
    back = "ms" if unit == "s" else unit
    assert got.schema.equals(orders_schema(back))
    expected = expected.cast(orders_schema(back))
    assert got.equals(expected)  # values and row order, bit for bit (-0.0 too)
    for name in ("qty", "price", "commission"):
        a = got[name].to_numpy().view(np.int64)
        np.testing.assert_array_equal(a, expected[name].to_numpy().view(np.int64))

    df = pd.read_parquet(tmp_path)
    assert list(df.columns) == COLUMNS
    assert df.portfolio.dtype == np.int64
    assert df.time.dtype == np.dtype(f"datetime64[{back}]")
    for name in ("qty", "price", "commission"):
        assert df[name].dtype == np.float64
    assert list(df.symbol.cat.categories) == list(symbols)
    assert list(df.reason.cat.categories) == list(K.REASON_NAMES)
    np.testing.assert_array_equal(df.portfolio, rec["portfolio"] + p0)
    np.testing.assert_array_equal(df.time.values, times[rec["time"] - t0])
    np.testing.assert_array_equal(df.symbol.astype(str), np.array(symbols)[rec["symbol"]])
    np.testing.assert_array_equal(df.qty.values.view(np.int64), rec["qty"].view(np.int64))
    np.testing.assert_array_equal(df.price, rec["price"])
    np.testing.assert_array_equal(df.commission, rec["commission"])
    np.testing.assert_array_equal(df.reason.astype(str), np.array(K.REASON_NAMES)[rec["reason"]])


def test_orders_file_without_orders(tmp_path):
    spec = _spec(0, 3, ("A", "B"))
    times = pd.date_range("2020-01-01", periods=4).values.astype("datetime64[ns]")
    path = tmp_path / "part.parquet"
    part = _Part(str(path), _PARQUET_OPTIONS)
    _write_orders(part, OrderRecords.empty(), spec, 0, times, scratch())
    part.close(lambda: _orders_table(OrderRecords.empty(), spec, 0, times, scratch()))
    df = pd.read_parquet(path)
    assert len(df) == 0 and list(df.columns) == COLUMNS
    assert df.portfolio.dtype == np.int64 and df.time.dtype == np.dtype("datetime64[ns]")


class _Book:
    """The part of a `PortfolioBook` that create_store reads."""

    def __init__(self, n: int) -> None:
        self.n_portfolios, self.grid_keys, self.capital = n, (), 1.0
        self.periods_per_year, self.strategy_names = 252.0, ("s",)


def test_store_arrays_kept_open_follow_a_new_store(tmp_path):
    store = str(tmp_path / "results.zarr")
    times = pd.date_range("2020-01-01", periods=6)
    create_store(store, _Book(4), times, ["A"], 3, 2, "r1")
    a = open_array(store, "equity")
    assert open_array(store, "equity") is a  # kept: the same metadata
    a[0:3, 0:2] = 1.0
    # made again at the same path, other shape and chunks: a fresh array, the old one not used
    create_store(store, _Book(6), times[:4], ["A"], 2, 3, "r2")
    b = open_array(store, "equity")
    assert b is not a and b.shape == (4, 6) and b.chunks == (2, 3)
    b[0:2, 3:6] = 2.0
    open_array(store, "sharpe")[0:3] = np.arange(3.0)
    ds = xr.open_zarr(store)
    assert ds.attrs["run_id"] == "r2" and ds.equity.shape == (4, 6)
    expected = np.full((4, 6), np.nan)
    expected[0:2, 3:6] = 2.0
    np.testing.assert_array_equal(ds.equity.values[:, 3:], expected[:, 3:])
    np.testing.assert_array_equal(ds.sharpe.values[:3], np.arange(3.0))
    # the same metadata again (a new run of the same shape): the kept array writes the new store
    create_store(store, _Book(6), times[:4], ["A"], 2, 3, "r3")
    assert open_array(store, "equity") is b
    b[2:4, 0:3] = 3.0
    got = xr.open_zarr(store).equity.values
    assert np.isnan(got[0:2, 3:6]).all() and (got[2:4, 0:3] == 3.0).all()
