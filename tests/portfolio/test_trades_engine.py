"""Trades and benchmark metrics on the Dask engine: trades.parquet re-derived from orders.parquet,
Σ pnl = final equity - capital, metrics in results.zarr, chunk borders and batches change nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _oracles import require_module
from portfolio_cases import make_high_low, make_market, make_signals
from trades_reference import reference_trade_metrics, reference_trades

from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
from admf_dask.errors import ConfigError
from admf_dask.metrics.relative import RELATIVE_METRIC_NAMES
from admf_dask.portfolio import expand_grid, run_portfolios
from admf_dask.portfolio._trades import TRADE_METRIC_NAMES
from admf_dask.portfolio.trades import TRADE_COLUMNS, read_trades

T, S = 180, 5
STRATS = ["trend", "mine"]
CAPITAL = 100_000.0


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(11)
    open_, close = make_market(rng, T, S, sigma=0.03, gap=0.1, late=0.4)
    close[:, 0] = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, T)))  # the benchmark: always priced
    close[[5, 60], 0] = np.nan
    open_[:, 0] = close[:, 0]
    high, low = make_high_low(rng, open_, close)
    sig = np.nan_to_num(make_signals(rng, T, S, len(STRATS), change=0.2))
    times = pd.date_range("2016-01-01", periods=T, freq="B")
    syms = [f"SYM{i}" for i in range(S)]
    bars = {"open": open_, "high": high, "low": low, "close": close}
    data = xr.Dataset(
        {k: (("time", "symbol"), v) for k, v in bars.items()},
        coords={"time": times, "symbol": syms},
    )
    signals = xr.DataArray(
        sig,
        dims=("time", "symbol", "strategy"),
        coords={"time": times, "symbol": syms, "strategy": STRATS},
    )
    return data, signals


@pytest.fixture(scope="module")
def book():
    cfg = PortfoliosConfig(
        capital=CAPITAL,
        batch_size=4,
        grid={
            "strategy": ["trend", {"trend": 0.5, "mine": 0.5}],
            "allow_short": [False, True],
            "stop_loss": [None, 0.04],
            "exit_on": ["close", "intrabar"],
            "take_profit": [None, 0.05],
        },
    )
    return expand_grid(cfg, ExecutionConfig(commission_fixed=1.0), STRATS, S)


@pytest.fixture(scope="module")
def run(market, book, client, tmp_path_factory):
    data, signals = market
    out = tmp_path_factory.mktemp("trades") / "run"
    res = run_portfolios(
        data.chunk({"time": 50}), signals.chunk({"time": 50}), None, book, out,
        client=client, benchmark="SYM0",
    )  # fmt: skip
    return res, out


def test_trades_file_is_the_orders_re_derived(market, book, run):
    data, _ = market
    res, out = run
    orders = pd.read_parquet(out / "orders.parquet")
    files = sorted(p.name for p in (out / "trades.parquet").glob("part-*.parquet"))
    assert files == sorted(p.name for p in (out / "orders.parquet").glob("part-*.parquet"))
    mine = read_trades(out / "trades.parquet")
    assert tuple(mine.columns) == TRADE_COLUMNS and len(mine) > 20
    closes = data["close"].to_pandas()
    ledger = orders.sort_values(["portfolio", "time", "symbol"], kind="stable")
    ref = reference_trades(ledger, closes)
    ref = ref.sort_values(["portfolio", "symbol", "entry_time"], kind="stable")
    ref = ref.reset_index(drop=True)
    mine["symbol"] = mine["symbol"].astype(str)
    assert len(mine) == len(ref)
    for c in ("portfolio", "symbol", "side", "entry_time", "n_fills", "bars"):
        assert mine[c].tolist() == ref[c].tolist(), c
    assert mine["exit_time"].isna().tolist() == ref["exit_time"].isna().tolist()
    closed = mine["exit_time"].notna()
    assert (mine["exit_time"][closed] == pd.to_datetime(ref["exit_time"][closed])).all()
    for c in ("entry_price", "exit_price", "pnl", "cost", "return", "mfe", "mae"):
        np.testing.assert_allclose(mine[c], ref[c], rtol=1e-9, atol=1e-9, err_msg=c)

    # every fill belongs to one trade: Σ pnl = final equity - capital, per portfolio
    pnl = mine.groupby("portfolio")["pnl"].sum().reindex(range(book.n_portfolios), fill_value=0)
    final = res.equity.isel(time=-1).values
    np.testing.assert_allclose(pnl.to_numpy(), final - CAPITAL, rtol=1e-9, atol=1e-6)

    got = res.metrics
    want = reference_trade_metrics(ref, list(range(book.n_portfolios)))
    for k in TRADE_METRIC_NAMES:
        np.testing.assert_allclose(got[k].values, want[k], rtol=1e-9, err_msg=k)
    stored = xr.open_zarr(out / "results.zarr")
    for k in (*TRADE_METRIC_NAMES, *RELATIVE_METRIC_NAMES):
        np.testing.assert_array_equal(stored[k].values, got[k].values)


def test_benchmark_metrics_against_empyrical(market, book, run):
    empyrical = require_module("empyrical")
    data, _ = market
    res, _ = run
    equity = res.equity.values
    r = np.diff(np.vstack([np.full((1, equity.shape[1]), CAPITAL), equity]), axis=0)
    r /= np.vstack([np.full((1, equity.shape[1]), CAPITAL), equity[:-1]])
    c = data["close"].values[:, 0]
    b = np.concatenate([[np.nan], c[1:] / c[:-1] - 1.0])
    for p in range(book.n_portfolios):
        alpha, beta = empyrical.alpha_beta(r[:, p], b, annualization=252)
        np.testing.assert_allclose(res.metrics["alpha"].values[p], alpha, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(res.metrics["beta"].values[p], beta, rtol=1e-8, atol=1e-12)
        d = (r[:, p] - b)[np.isfinite(b)]
        te = np.std(d, ddof=1) * np.sqrt(252)
        np.testing.assert_allclose(res.metrics["tracking_error"].values[p], te, rtol=1e-9)
        ir = np.mean(d) / np.std(d, ddof=1) * np.sqrt(252)
        np.testing.assert_allclose(res.metrics["information_ratio"].values[p], ir, rtol=1e-9)


def test_batches_and_chunks_change_no_trade(market, book, run, client, tmp_path):
    data, signals = market
    _, out = run
    res = run_portfolios(
        data, signals, None, book, tmp_path / "one", client=client, batch_size=16,
        write_orders=False,
    )  # fmt: skip
    a = read_trades(out / "trades.parquet")
    b = read_trades(res.trades_path)
    pd.testing.assert_frame_equal(a, b)
    assert not (tmp_path / "one" / "orders.parquet").exists()
    assert not set(RELATIVE_METRIC_NAMES) & set(res.metrics.data_vars)


def test_trades_off_and_bad_benchmark(market, book, client, tmp_path):
    data, signals = market
    res = run_portfolios(
        data, signals, None, book, tmp_path / "off", client=client, write_trades=False
    )
    assert res.trades_path is None and not (tmp_path / "off" / "trades.parquet").exists()
    assert not set(TRADE_METRIC_NAMES) & set(res.metrics.data_vars)
    with pytest.raises(ConfigError, match="'SPY' is not a symbol of the data"):
        run_portfolios(data, signals, None, book, tmp_path / "bad", client=client, benchmark="SPY")
    assert not (tmp_path / "bad").exists()
