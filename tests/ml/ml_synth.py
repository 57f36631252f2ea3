"""Synthetic market + causal features for the ML tests (no dependency on the data/features stages)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import xarray as xr


def make_market(n_bars: int = 400, n_sym: int = 4, seed: int = 0, chunk: int | None = 100):
    """Random-walk closes whose daily returns carry a persistent (predictable) drift regime."""
    rng = np.random.default_rng(seed)
    regime = np.sign(np.sin(np.arange(n_bars)[:, None] / 15.0 + rng.uniform(0, 6, n_sym)))
    ret = 0.004 * regime + 0.01 * rng.standard_normal((n_bars, n_sym))
    close = 100.0 * np.exp(np.cumsum(ret, axis=0))
    return market_from_close(close, chunk)


def market_from_close(close: np.ndarray, chunk: int | None = 100) -> xr.Dataset:
    n_bars, n_sym = close.shape
    time = pd.bdate_range("2015-01-02", periods=n_bars)
    symbols = [f"S{i:02d}" for i in range(n_sym)]
    ds = xr.Dataset(
        {k: (("time", "symbol"), close.copy()) for k in ("open", "high", "low", "close")}
        | {"volume": (("time", "symbol"), np.ones_like(close))},
        coords={"time": time, "symbol": symbols},
    )
    ds.attrs["fingerprint"] = str(abs(hash(close.tobytes())))
    return ds.chunk({"time": chunk, "symbol": -1}) if chunk else ds


def make_features(data: xr.Dataset) -> xr.Dataset:
    """Causal features: past 1/5/20-bar log returns (value at t uses closes <= t only)."""
    c = np.asarray(data["close"].values, dtype=float)
    lc = np.log(c)
    out = {}
    for w in (1, 5, 20):
        f = np.full_like(lc, np.nan)
        f[w:] = lc[w:] - lc[:-w]
        out[f"ret_{w}"] = (("time", "symbol"), f)
    ds = xr.Dataset(out, coords={"time": data.time, "symbol": data.symbol})
    chunks = data["close"].chunks
    return ds.chunk({"time": chunks[0], "symbol": -1}) if chunks else ds


def make_ctx(client=None, run_dir=None, strict: bool = False, run_id: str = "test-run"):
    """A StrategyContext stand-in with the attributes the ML kinds use."""
    return SimpleNamespace(
        client=client,
        run_id=run_id,
        base_dir=None,
        run_dir=run_dir,
        trace=[],
        warnings=[],
        strict=strict,
        quality={},
    )
