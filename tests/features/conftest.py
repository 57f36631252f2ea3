"""Fixtures for the feature tests: synthetic OHLCV with gaps and late starts, real bokeh data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr


def make_market(
    n_time: int = 700,
    n_sym: int = 6,
    seed: int = 0,
    missing: float = 0.03,
    late: tuple[int, ...] = (0, 0, 150, 0, 400, 0),
    chunks: int | tuple[int, ...] = 97,
) -> xr.Dataset:
    """Random-walk OHLCV (time, symbol); symbol i lists at bar late[i]; interior bars missing
    at random (NaN in all five fields); the last symbol delists 50 bars before the end."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0002, 0.02, (n_time, n_sym))
    close = 50.0 * np.exp(np.cumsum(ret, axis=0)) * (1 + np.arange(n_sym))
    open_ = close * np.exp(rng.normal(0, 0.005, (n_time, n_sym)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, (n_time, n_sym))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, (n_time, n_sym))))
    volume = rng.integers(1_000, 100_000, (n_time, n_sym)).astype(float)
    gone = rng.random((n_time, n_sym)) < missing
    for j in range(n_sym):
        gone[: late[j % len(late)], j] = True
    gone[n_time - 50 :, n_sym - 1] = True
    fields = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    for v in fields.values():
        v[gone] = np.nan
    ds = xr.Dataset(
        {k: (("time", "symbol"), v) for k, v in fields.items()},
        coords={
            "time": pd.bdate_range("2010-01-04", periods=n_time),
            "symbol": [f"S{j:02d}" for j in range(n_sym)],
        },
        attrs={"fingerprint": f"test-market-{n_time}-{n_sym}-{seed}-{missing}", "source": "test"},
    )
    return ds.chunk({"time": chunks, "symbol": -1})


@pytest.fixture(scope="session")
def market() -> xr.Dataset:
    return make_market()


@pytest.fixture(scope="session")
def bokeh() -> xr.Dataset:
    """Real daily AAPL/FB/GOOG/IBM/MSFT (FB from 2012, GOOG from 2004: late starts)."""
    try:
        from admf_dask.data import load_market_data

        return load_market_data({"source": "bokeh_stocks", "chunks": {"time": 504}})
    except ImportError:  # data stage not there: read the CSV shipped with bokeh-sampledata
        import bokeh_sampledata

        path = bokeh_sampledata.package_path("stocks.csv.gz")
        df = pd.read_csv(path, parse_dates=["Date"])
        wide = {
            f: df.pivot(index="Date", columns="Ticker", values=f.capitalize()).sort_index()
            for f in ("open", "high", "low", "close", "volume")
        }
        ref = wide["close"]
        return xr.Dataset(
            {f: (("time", "symbol"), w.to_numpy(float)) for f, w in wide.items()},
            coords={"time": ref.index.values, "symbol": list(ref.columns)},
            attrs={"fingerprint": "bokeh-csv"},
        ).chunk({"time": 504})


@pytest.fixture(scope="session")
def market_factory():
    """`make_market` itself, for tests that need their own variant."""
    return make_market
