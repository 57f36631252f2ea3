"""Fixtures for the strategy tests: a small synthetic market with gaps and late starts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr


def make_market(
    n_time: int = 400, n_sym: int = 5, seed: int = 1, missing: float = 0.02, chunks: int = 64
) -> xr.Dataset:
    """Random-walk OHLCV (time, symbol); symbol 2 lists at bar 90; random missing bars."""
    rng = np.random.default_rng(seed)
    close = 40.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_time, n_sym)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, (n_time, n_sym)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, (n_time, n_sym))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, (n_time, n_sym))))
    volume = rng.integers(1_000, 100_000, (n_time, n_sym)).astype(float)
    gone = rng.random((n_time, n_sym)) < missing
    gone[:90, 2 % n_sym] = True
    fields = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    for v in fields.values():
        v[gone] = np.nan
    return xr.Dataset(
        {k: (("time", "symbol"), v) for k, v in fields.items()},
        coords={
            "time": pd.bdate_range("2015-01-01", periods=n_time),
            "symbol": [f"T{j}" for j in range(n_sym)],
        },
        attrs={"fingerprint": f"strat-market-{n_time}-{n_sym}-{seed}-{missing}"},
    ).chunk({"time": chunks, "symbol": -1})


FEATURES = {
    "sma_5": {"kind": "sma", "window": 5},
    "sma_20": {"kind": "sma", "window": 20},
    "ema_8": {"kind": "ema", "window": 8},
    "roc_5": {"kind": "roc", "window": 5},
    "ret": {"kind": "returns"},
    "rsi_14": {"kind": "rsi", "window": 14},
    "bb": {"kind": "bbands", "window": 20, "k": 1.5},
    "dc": {"kind": "donchian", "window": 15},
    "mac": {"kind": "macd", "fast": 5, "slow": 13, "signal": 4},
    "z": {"kind": "zscore", "window": 10},
}

STRATEGIES = {
    "trend": {"kind": "ma_crossover", "fast": "sma_5", "slow": "sma_20"},
    "trend_ema": {"kind": "ma_crossover", "fast": "ema_8", "slow": "sma_20"},
    "mom": {"kind": "momentum", "feature": "roc_5", "threshold": 0.01},
    "mom_macd": {"kind": "momentum", "feature": "mac_hist"},
    "rsi": {"kind": "rsi_reversion", "rsi": "rsi_14", "low": 35, "high": 65},
    "bol": {"kind": "bollinger_reversion", "bands": "bb"},
    "brk": {"kind": "breakout", "channel": "dc"},
}


@pytest.fixture
def market() -> xr.Dataset:
    return make_market()


@pytest.fixture(scope="session")
def market_factory():
    """`make_market` itself, for tests that need their own variant."""
    return make_market


@pytest.fixture
def feature_specs() -> dict:
    return {k: dict(v) for k, v in FEATURES.items()}


@pytest.fixture
def strategy_specs() -> dict:
    return {k: dict(v) for k, v in STRATEGIES.items()}
