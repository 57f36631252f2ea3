"""The Dask engine: same numbers as the in-memory kernel, whatever the chunks, batches, workers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from portfolio_cases import make_high_low, make_market, make_signals, make_vol

from admf_dask.config.models import ExecutionConfig, PortfoliosConfig
from admf_dask.errors import ConfigError, DataError
from admf_dask.metrics import METRIC_NAMES, compute_metrics
from admf_dask.portfolio import _kernels as K
from admf_dask.portfolio import expand_grid, run_portfolios
from admf_dask.portfolio.batch import simulate

T, S = 230, 6
STRATS = ["trend", "mine"]


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(42)
    open_, close = make_market(rng, T, S, sigma=0.03, gap=0.1, late=0.5)
    sig = make_signals(rng, T, S, len(STRATS), change=0.15)
    sig = np.nan_to_num(sig)
    vol = make_vol(rng, T, S)
    times = pd.date_range("2015-01-01", periods=T, freq="B")
    syms = [f"SYM{i}" for i in range(S)]
    data = xr.Dataset(
        {"open": (("time", "symbol"), open_), "close": (("time", "symbol"), close)},
        coords={"time": times, "symbol": syms},
    )
    signals = xr.DataArray(
        sig,
        dims=("time", "symbol", "strategy"),
        coords={"time": times, "symbol": syms, "strategy": STRATS},
    )
    features = xr.Dataset({"vol_20": (("time", "symbol"), vol)}, coords=data.coords)
    return data, signals, features


@pytest.fixture(scope="module")
def book():
    cfg = PortfoliosConfig(
        capital=100_000,
        batch_size=5,
        vol_feature="vol_20",
        grid={
            "strategy": ["trend", {"trend": 0.5, "mine": 0.5}, "mine"],
            "sizing": ["fixed", "vol_target"],
            "stop_loss": [None, 0.05],
            "allow_short": [False, True],
            "max_drawdown": [0.3, None],
        },
    )
    return expand_grid(cfg, ExecutionConfig(commission_fixed=1.0), STRATS, S)


@pytest.fixture(scope="module")
def expected(market, book):
    data, signals, features = market
    return simulate(
        data["open"].values,
        data["close"].values,
        signals.values,
        features.vol_20.values[None],
        book.mixes,
        book.fparams(),
        book.iparams(),
        book.capital,
    )


@pytest.fixture(scope="module")
def expected_metrics(book, expected):
    equity, _, _, state = expected
    return compute_metrics(
        equity,
        book.capital,
        book.periods_per_year,
        traded=state.traded,
        gross_exposure_sum=state.gross_sum,
        n_orders=state.n_orders,
    )


def _chunk(market, time_chunk, sig_chunk=None):
    data, signals, features = market
    sig_chunk = sig_chunk or time_chunk
    return (
        data.chunk({"time": time_chunk}),
        signals.chunk({"time": sig_chunk}),
        features.chunk({"time": time_chunk}),
    )


def _orders(path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    return df.sort_values(["portfolio", "time", "symbol"], kind="stable").reset_index(drop=True)


def _run(market, book, tmp_path, name, time_chunk=50, **kw):
    data, signals, features = _chunk(market, time_chunk, kw.pop("sig_chunk", None))
    return run_portfolios(data, signals, features, book, tmp_path / name, run_id=name, **kw)


def test_engine_equals_kernel(market, book, expected, expected_metrics, tmp_path):
    equity, cash, orders, state = expected
    res = _run(market, book, tmp_path, "a", time_chunk=40, sig_chunk=64)
    ds = xr.open_zarr(tmp_path / "a" / "results.zarr")
    np.testing.assert_array_equal(res.equity.values, equity)
    np.testing.assert_array_equal(ds.cash.values, cash)
    np.testing.assert_array_equal(ds.positions.values, state.q)
    assert res.n_orders == len(orders) == int(res.metrics.n_orders.sum()) > 0
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(
            res.metrics[name].values, expected_metrics[name], err_msg=name
        )
    got = _orders(res.orders_path)
    np.testing.assert_array_equal(got.portfolio, orders.portfolio)
    np.testing.assert_array_equal(got.time, ds.time.values[orders.time])
    np.testing.assert_array_equal(got.symbol.astype(str), ds.symbol.values[orders.symbol])
    np.testing.assert_array_equal(got.qty, orders.qty)
    np.testing.assert_array_equal(got.price, orders.price)
    np.testing.assert_array_equal(got.commission, orders.commission)
    np.testing.assert_array_equal(got.reason.astype(str), np.array(K.REASON_NAMES)[orders.reason])
    assert list(got.reason.cat.categories) == list(K.REASON_NAMES)
    assert {"signal", "stop"} <= set(got.reason.astype(str))


def test_outputs_layout(market, book, tmp_path):
    res = _run(market, book, tmp_path, "b", time_chunk=100)
    ds = xr.open_zarr(tmp_path / "b" / "results.zarr")
    assert ds.equity.dims == ("time", "portfolio") and ds.cash.dims == ("time", "portfolio")
    assert ds.positions.dims == ("portfolio", "symbol")
    assert ds.equity.encoding["chunks"] == (100, 5)
    assert res.metrics.sizes == {"portfolio": 48}
    for key in book.grid_keys:
        name = "max_drawdown_limit" if key == "max_drawdown" else key
        assert ds[name].dims == ("portfolio",) and ds[name].attrs["grid_key"] == key
    assert str(ds.strategy.values[16]) == "trend:0.5+mine:0.5"
    np.testing.assert_array_equal(ds.max_drawdown_limit.values[:2], [0.3, np.nan])
    assert ds.max_drawdown.values.max() <= 0  # the metric
    assert ds.portfolio.values.tolist() == list(range(book.n_portfolios))
    for name in METRIC_NAMES:
        assert ds[name].dims == ("portfolio",) and "description" in ds[name].attrs
    assert set(res.metrics.coords) >= set(book.coords())
    files = sorted(p.name for p in res.orders_path.iterdir())
    assert files[0] == "part-b00000-c00000.parquet"
    df = pd.read_parquet(res.orders_path)
    assert df.portfolio.dtype == np.int64 and df.time.dtype.kind == "M"
    assert str(df.symbol.dtype) == "category" and str(df.reason.dtype) == "category"
    assert list(df.columns) == [
        "portfolio",
        "time",
        "symbol",
        "qty",
        "price",
        "commission",
        "reason",
    ]
    assert res.timings["total"] > 0 and res.results_path.name == "results.zarr"


def test_no_orders_written(market, book, tmp_path, expected):
    res = _run(market, book, tmp_path, "c", write_orders=False)
    assert res.orders_path is None and not (tmp_path / "c" / "orders.parquet").exists()
    assert res.n_orders == len(expected[2])
    np.testing.assert_array_equal(res.equity.values, expected[0])


@pytest.mark.parametrize(("time_chunk", "batch_size"), [(230, 1), (13, 7), (64, None), (50, 24)])
def test_invariant_to_chunks_and_batches(
    market, book, expected, expected_metrics, tmp_path, time_chunk, batch_size
):
    res = _run(market, book, tmp_path, "d", time_chunk=time_chunk, batch_size=batch_size)
    np.testing.assert_array_equal(res.equity.values, expected[0])
    got = _orders(res.orders_path)
    np.testing.assert_array_equal(got.qty, expected[2].qty)
    np.testing.assert_array_equal(got.time, res.equity.time.values[expected[2].time])
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(res.metrics[name].values, expected_metrics[name])


def test_task_grouping_keeps_numbers(market, book, expected, tmp_path, monkeypatch):
    from admf_dask.portfolio import engine

    monkeypatch.setattr(engine, "TASK_STEPS", 5 * S * 70)  # several chunks per task
    res = _run(market, book, tmp_path, "e", time_chunk=20, batch_size=5)
    np.testing.assert_array_equal(res.equity.values, expected[0])
    names = sorted(p.name for p in res.orders_path.iterdir())
    assert "part-b00000-c00004.parquet" in names and "part-b00000-c00001.parquet" not in names


def test_orders_written_row_group_by_row_group(market, book, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from admf_dask.portfolio import tasks

    whole = _run(market, book, tmp_path, "rg1", time_chunk=100)
    monkeypatch.setattr(tasks, "ROW_GROUP", 64)  # many row groups per file
    parts = _run(market, book, tmp_path, "rg2", time_chunk=100)
    names = sorted(p.name for p in whole.orders_path.iterdir())
    assert names == sorted(p.name for p in parts.orders_path.iterdir())
    for name in names:
        a = pq.ParquetFile(whole.orders_path / name)
        b = pq.ParquetFile(parts.orders_path / name)
        assert b.metadata.num_rows == a.metadata.num_rows > 64
        assert b.metadata.num_row_groups > a.metadata.num_row_groups
        assert max(b.metadata.row_group(i).num_rows for i in range(b.num_row_groups)) == 64
        assert b.schema_arrow == a.schema_arrow
        pd.testing.assert_frame_equal(b.read().to_pandas(), a.read().to_pandas())


def test_distributed_client_same_numbers(market, book, expected, tmp_path, client):
    import distributed

    # a client of its own on the session's cluster (2 worker processes), the default client
    with distributed.Client(client.cluster) as own:
        data, signals, features = _chunk(market, 37)
        data, signals, features = own.persist([data, signals, features])
        res = run_portfolios(
            data, signals, features, book, tmp_path / "f", client=own, batch_size=3
        )
        # no client given: the default client runs it
        with distributed.get_task_stream(own) as ts:
            res2 = run_portfolios(data, signals, features, book, tmp_path / "f2")
    for r in (res, res2):
        np.testing.assert_array_equal(r.equity.values, expected[0])
        np.testing.assert_array_equal(_orders(r.orders_path).qty, expected[2].qty)
    assert any(str(t["key"]).startswith("portfolio-step-") for t in ts.data)


def test_missing_inputs_are_config_errors(market, tmp_path):
    data, signals, features = _chunk(market, 50)
    cfg = PortfoliosConfig(sizing="vol_target", vol_feature="vol_60")
    book = expand_grid(cfg, ExecutionConfig(), STRATS, S)
    with pytest.raises(ConfigError, match="vol_60"):
        run_portfolios(data, signals, features, book, tmp_path / "g")
    other = expand_grid(PortfoliosConfig(), ExecutionConfig(), ["trend", "other"], S)
    with pytest.raises(ConfigError, match="other"):
        run_portfolios(data, signals, features, other, tmp_path / "h")


def _with_high_low(data, seed=3):
    high, low = make_high_low(
        np.random.default_rng(seed), data["open"].values, data["close"].values, missing=0.02
    )
    return data.assign(high=(("time", "symbol"), high), low=(("time", "symbol"), low))


def test_exit_rules_on_the_engine_equal_the_kernel(market, tmp_path):
    data, signals, features = market
    data = _with_high_low(data)
    cfg = PortfoliosConfig(
        capital=100_000,
        batch_size=4,
        allow_short=True,
        stop_loss=0.04,
        grid={
            "exit_on": ["close", "intrabar"],
            "take_profit": [None, 0.06],
            "trailing_stop": [None, 0.05],
            "max_holding": [None, 7],
            "max_positions": [None, 2],
        },
    )
    book = expand_grid(cfg, ExecutionConfig(), STRATS, S)
    assert book.intrabar
    equity, _, orders, state = simulate(
        data["open"].values,
        data["close"].values,
        signals.values,
        None,
        book.mixes,
        book.fparams(),
        book.iparams(),
        book.capital,
        high=data["high"].values,
        low=data["low"].values,
    )
    d, sg, _ = _chunk((data, signals, features), 45)
    res = run_portfolios(d, sg, None, book, tmp_path / "x", batch_size=5)
    np.testing.assert_array_equal(res.equity.values, equity)
    got = _orders(res.orders_path)
    np.testing.assert_array_equal(got.qty, orders.qty)
    np.testing.assert_array_equal(got.price, orders.price)
    np.testing.assert_array_equal(got.reason.astype(str), np.array(K.REASON_NAMES)[orders.reason])
    assert set(got.reason.astype(str)) == set(K.REASON_NAMES) - {"halt"}


def test_intrabar_needs_high_and_low(market, tmp_path):
    data, signals, features = market
    book = expand_grid(PortfoliosConfig(exit_on="intrabar"), ExecutionConfig(), STRATS, S)
    with pytest.raises(DataError, match="'high' prices, the data has none"):
        run_portfolios(data, signals, None, book, tmp_path / "i")
    bad = _with_high_low(data)
    bad["low"][:, 2] = np.nan
    with pytest.raises(DataError, match="symbol 'SYM2' has none") as err:
        run_portfolios(bad.chunk({"time": 50}), signals, None, book, tmp_path / "j")
    assert "\n" not in str(err.value) and "data.low" in str(err.value)
    assert not (tmp_path / "i").exists() and not (tmp_path / "j").exists()
