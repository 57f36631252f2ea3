"""The report reads close prices block by block of bars (`_load.Closes`) and reduces the
Portfolio tab's series as they come (`_load.DisplaySink`): the same values as the whole series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from report_runs import make_run, market_path

from admf_dask.report import _aggregate as agg
from admf_dask.report import _load
from admf_dask.report.context import build_context
from admf_dask.report.tabs.portfolio_data import portfolio_data


def _market(n: int, chunk: int | None) -> xr.Dataset:
    rng = np.random.default_rng(3)
    close = 100 + rng.standard_normal((n, 3)).cumsum(axis=0)
    close[rng.random(close.shape) < 0.1] = np.nan
    close[:, 2] = np.nan  # a symbol without a close
    time = pd.date_range("2021-01-04 09:30", periods=n, freq="min")
    ds = xr.Dataset(
        {"close": (("time", "symbol"), close)}, coords={"time": time, "symbol": ["A", "B", "C"]}
    )
    return ds.chunk({"time": chunk}) if chunk else ds


@pytest.mark.parametrize("chunk", [None, 97])
@pytest.mark.parametrize("shift", [0, 1500])
def test_closes_blocks_are_the_reindexed_closes(chunk: int | None, shift: int) -> None:
    """Blocks of a few chunks, a run whose bars are a slice of the data's or partly outside it."""
    ds = _market(1000, chunk)
    t = pd.DatetimeIndex(ds["time"].values)
    run_time = (t[150:900] if shift == 0 else t[::3].append(t[-1:] + pd.Timedelta(1, "h"))).values
    close = ds["close"].sel(symbol=["B", "C"])
    closes = _load.Closes.of(close, run_time, block_bytes=16 * 100)
    expected = close.to_pandas().reindex(pd.DatetimeIndex(run_time)).to_numpy()
    blocks = list(closes.blocks())
    assert len(blocks) > 3 and all(b - a <= closes.step for a, b, _ in blocks)
    got = np.concatenate([v for _, _, v in blocks])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(closes.finite_any(), np.isfinite(expected).any(axis=0))
    np.testing.assert_array_equal(closes.column("B"), expected[:, 0])
    assert "B" in closes and "A" not in closes


@pytest.mark.parametrize("n", [50, 4000, 9001])
def test_display_sink_is_display_columns_of_the_whole_series(n: int) -> None:
    rng = np.random.default_rng(n)
    data = {
        "time": pd.date_range("2020", periods=n, freq="min").values,
        "eq": rng.integers(-4, 4, n).astype(np.float32),  # ties: the first extreme is kept
        "bench": rng.standard_normal(n),
    }
    data["eq"][rng.random(n) < 0.2] = np.nan
    sink = _load.DisplaySink(n)
    cuts = np.unique(np.r_[0, rng.integers(0, n, 7), n])
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        for k in ("eq", "bench"):
            sink.add(k, int(a), data[k][a:b])
    got, want = sink.columns(data["time"]), _load.display_columns(data)
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype
        np.testing.assert_array_equal(got[k], want[k])


def test_portfolio_series_in_blocks_are_those_of_the_whole_series(tmp_path) -> None:
    """Equity, drawdown, exposure (marked at the close) and close lines of a 9,000-bar run read
    in blocks of 250 bars: the display points of the whole series, computed at once."""
    run = make_run(
        tmp_path / "run", n_bars=9000, n_symbols=4, grid={"stop_loss": [None, 0.05]}, ml=False
    )
    market = xr.open_zarr(market_path(run))
    ds = _load.open_results(run)
    ctx = build_context(run, ds, None, market, top=2)
    assert ctx.prices is not None and ctx.orders is not None and len(ctx.orders)
    small = _load.Closes.of(
        ctx.prices.close, ctx.run.time.values, block_bytes=250 * 8 * len(ctx.prices.symbols)
    )
    assert small.step == 250
    d = portfolio_data(ctx.run, ds, ctx.choices, ctx.orders, small)

    # the reference: whole (time × symbol) closes and whole series, then `display_columns`
    times = ctx.run.time.values
    symbols = list(ctx.run.symbols)
    prices = market["close"].sel(symbol=ctx.prices.symbols).to_pandas()
    price_mat = prices.reindex(index=pd.DatetimeIndex(times), columns=symbols).to_numpy()
    eq = _load.equity_columns(ds["equity"], [c.pid for c in ctx.choices])
    pdata: dict = {"time": times}
    for k, c in enumerate(ctx.choices):
        pdata[f"eq_{k}"] = eq[:, k].astype(np.float32)
        pdata[f"dd_{k}"] = agg.drawdown(eq[:, k]).astype(np.float32)
        sub = ctx.orders[ctx.orders["portfolio"] == c.pid]
        if len(sub):
            t_idx = np.searchsorted(times, sub["time"].values, side="right") - 1
            s_idx = sub["symbol"].map({s: i for i, s in enumerate(symbols)}).to_numpy()
            g, n = agg.exposure_from_orders(
                t_idx,
                s_idx,
                sub["qty"].values,
                sub["price"].values,
                len(symbols),
                eq[:, k],
                price_mat,
            )
            pdata[f"gross_{k}"], pdata[f"net_{k}"] = g.astype(np.float32), n.astype(np.float32)
    want = _load.display_columns(pdata)
    assert list(d.series) == list(want) and any(k.startswith("gross_") for k in want)
    for k in want:
        np.testing.assert_array_equal(d.series[k], want[k])
    assert len(d.prices) > 1
    for s in list(d.prices)[1:]:
        col = price_mat[:, symbols.index(s)].astype(np.float32)
        np.testing.assert_array_equal(
            d.prices[s], _load.display_columns({"time": times, s: col})[s]
        )
