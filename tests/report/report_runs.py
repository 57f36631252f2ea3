"""A realistic run folder built with xarray/pandas alone (the report tests' input).

`make_run` writes what the pipeline writes (docs/ARCHITECTURE.md, run folder): run.json,
results.zarr (equity, cash, metrics, grid coords, positions), orders.parquet/ (one file per batch),
signals.zarr. Equity curves are random walks whose drift depends on the grid parameters, so the
heatmap has structure to show.
"""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

CAPITAL = 1_000_000.0
GRID: dict[str, list[Any]] = {
    "strategy": ["trend", "momentum", "trend+ml"],
    "stop_loss": [None, 0.02, 0.05, 0.1],
}


def _metrics(logret: np.ndarray) -> dict[str, np.ndarray]:
    """Rough empyrical-style metrics from (time, portfolio) float32 log returns (only plausibility
    matters here; float32 keeps the 10,000-portfolio fixture fast)."""
    r = np.expm1(logret)
    mu, sd = r.mean(0).astype(np.float64), r.std(0, ddof=1).astype(np.float64)
    np.minimum(r, 0, out=r)
    down = np.sqrt((r * r).mean(0)).astype(np.float64)
    del r
    cum = np.cumsum(logret, axis=0)
    peak = np.maximum.accumulate(cum, axis=0)
    peak -= cum
    mdd = np.expm1(-peak.max(0)).astype(np.float64)
    del peak
    total = np.expm1(cum[-1].astype(np.float64))
    ann = (1 + total) ** (252 / logret.shape[0]) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "total_return": total,
            "annual_return": ann,
            "annual_volatility": sd * np.sqrt(252),
            "sharpe": mu / sd * np.sqrt(252),
            "sortino": mu / down * np.sqrt(252),
            "max_drawdown": mdd,
            "calmar": ann / -mdd,
        }


def market_path(run: Path) -> Path:
    """Where `make_run` keeps the fixture's close prices (beside the run folder)."""
    return run.parent / f"{run.name}-market.zarr"


def make_run(
    path: Path,
    *,
    grid: dict[str, list[Any]] | None = None,
    n_bars: int = 504,
    n_symbols: int = 8,
    orders: bool = True,
    orders_per_portfolio: int = 60,
    ml: bool = True,
    signals: bool = True,
    manifest: bool = True,
    cash: bool = True,
    compress: bool = True,
    name: str = "fixture run",
    chunks: tuple[int, int] = (252, 500),
    batch_size: int = 500,
    seed: int = 0,
) -> Path:
    """Write a run folder at ``path`` and return it."""
    grid = GRID if grid is None else grid
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    time = pd.bdate_range("2015-01-02", periods=n_bars)
    symbols = [f"S{i:02d}" for i in range(n_symbols)]
    combos = list(itertools.product(*grid.values()))
    n = len(combos)

    # market: random-walk closes, the fills' reference prices
    close = 100 * np.exp(np.cumsum(rng.normal(2e-4, 0.015, (n_bars, n_symbols)), axis=0))

    # equity: drift and volatility depend on the parameters (rank of each value in its list)
    drift = np.full(n, 1e-4)
    vol = np.full(n, 0.008)
    for j, values in enumerate(grid.values()):
        rank = np.array([values.index(c[j]) for c in combos], dtype=float)
        drift += (rank - (len(values) - 1) / 2) * 6e-5 * (1 if j % 2 == 0 else -1)
        vol += rank * 4e-4 * (j + 1) / len(grid)
    eps = rng.standard_normal((n_bars, n), dtype=np.float32)
    eps *= vol.astype(np.float32)
    eps += drift.astype(np.float32)
    np.log1p(eps, out=eps)
    met = _metrics(eps)
    np.cumsum(eps, axis=0, out=eps)  # float32 in place: 20x faster than a float64 cumsum
    np.exp(eps, out=eps)
    equity = eps.astype(np.float64)  # stored as float64, like the pipeline
    del eps
    equity *= CAPITAL

    coords: dict[str, Any] = {"time": time, "portfolio": np.arange(n), "symbol": symbols}
    for j, key in enumerate(grid):
        vals = [c[j] for c in combos]
        if all(v is None or isinstance(v, int | float) for v in vals) and not all(
            isinstance(v, bool) for v in vals
        ):
            coords[key] = ("portfolio", np.array([np.nan if v is None else v for v in vals], float))
        else:
            coords[key] = ("portfolio", np.array([str(v) for v in vals]))
    data_vars: dict[str, Any] = {
        "equity": (("time", "portfolio"), equity),
        "positions": (("portfolio", "symbol"), rng.integers(-50, 50, (n, n_symbols)).astype(float)),
    }
    for k, v in met.items():
        data_vars[k] = ("portfolio", v)
    data_vars["n_orders"] = ("portfolio", np.full(n, orders_per_portfolio if orders else 0, float))
    data_vars["turnover"] = ("portfolio", rng.uniform(1, 20, n))
    data_vars["exposure"] = ("portfolio", rng.uniform(0.3, 1.0, n))
    tc, pc = chunks
    if cash:
        data_vars["cash"] = (("time", "portfolio"), equity * rng.uniform(0.0, 0.3, n))
    ds = xr.Dataset(data_vars, coords=coords)
    extra = {} if compress else {"compressors": None}  # random walks barely compress anyway
    enc = {
        v: {"chunks": (min(tc, n_bars), min(pc, n)), **extra} for v in ("equity", "cash") if v in ds
    }
    with warnings.catch_warnings():  # zarr v3: fixed-width strings have no spec yet
        warnings.simplefilter("ignore")
        ds.to_zarr(path / "results.zarr", mode="w", encoding=enc)
    del equity, ds

    # the market the fills came from, beside the run folder (runs keep no prices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xr.Dataset(
            {"close": (("time", "symbol"), close)}, coords={"time": time, "symbol": symbols}
        ).to_zarr(market_path(path), mode="w")

    if orders:
        (path / "orders.parquet").mkdir()
        k = orders_per_portfolio
        for b0 in range(0, n, batch_size):
            ids = np.arange(b0, min(n, b0 + batch_size))
            port = np.repeat(ids, k)
            t_idx = np.sort(rng.integers(1, n_bars, (len(ids), k)), axis=1).ravel()
            s_idx = rng.integers(0, n_symbols, port.size)
            qty = np.round(rng.normal(0, 300, port.size), 2)
            price = close[t_idx, s_idx] * (1 + np.sign(qty) * 2e-4)
            reason = np.where(rng.random(port.size) < 0.05, "stop", "signal")
            pd.DataFrame(
                {
                    "portfolio": port.astype(np.int64),
                    "time": time.values[t_idx],
                    "symbol": np.array(symbols)[s_idx],
                    "qty": qty,
                    "price": price,
                    "commission": np.abs(qty * price) * 5e-4,
                    "reason": reason,
                }
            ).to_parquet(path / "orders.parquet" / f"batch-{b0 // batch_size:05d}-0.parquet")

    if signals:
        strategies = [str(s) for s in grid.get("strategy", ["trend"])]
        sig = np.clip(rng.normal(0, 0.6, (n_bars, n_symbols, len(strategies))), -1, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xr.Dataset(
                {"signals": (("time", "symbol", "strategy"), sig)},
                coords={"time": time, "symbol": symbols, "strategy": strategies},
            ).to_zarr(path / "signals.zarr", mode="w")

    if manifest:
        run_id = f"20260101T000000-{seed:04d}"
        doc: dict[str, Any] = {
            "run_id": run_id,
            "name": name,
            "config": {
                "name": name,
                "data": {"source": "synthetic", "symbols": n_symbols, "bars": n_bars, "seed": 7},
                "strategies": {
                    "trend": {"kind": "ma_crossover", "fast": "sma_10", "slow": "sma_50"},
                    "momentum": {"kind": "momentum", "feature": "roc_20", "threshold": 0.0},
                    **(
                        {"ml": {"kind": "xgboost", "features": ["roc_20"], "horizon": 5}}
                        if ml
                        else {}
                    ),
                },
                "portfolios": {"capital": CAPITAL, "batch_size": batch_size, "grid": grid},
            },
            "config_hash": "3f2a9c1be0d47a5581c2e0f9d6b3a1c4e5f60718",
            "data": {
                "source": "synthetic",
                "fingerprint": "a1b2c3d4e5f6a7b8c9d0",
                "symbols": symbols,
                "start": str(time[0].date()),
                "end": str(time[-1].date()),
                "bars": n_bars,
            },
            "versions": {"admf_dask": "0.1.0", "dask": "2026.8.0", "numpy": np.__version__},
            "cluster": {
                "scheduler": "tcp://127.0.0.1:40123",
                "dashboard": "http://127.0.0.1:8787/status",
                "workers": [
                    {
                        "address": f"tcp://127.0.0.1:4{i}001",
                        "name": f"worker-{i}",
                        "nthreads": 1,
                        "memory_limit": 4 * 2**30,
                        "resources": {"ML": 1} if i == 0 else {},
                    }
                    for i in range(2)
                ],
            },
            "timings": {
                "data": 0.41,
                "features": 1.92,
                "signals": 3.05,
                "portfolio": 7.8,
                "write": 0.66,
                "total": 14.1,
            },
            "cache": {"features": "miss", "signals": "hit"},
            "trace": [],
            "ml": {},
            "warnings": ["symbol S03 has 12 missing bars <filled as NaN>"],
        }
        if ml:
            folds, trace = [], []
            t0 = 1_767_225_600.0
            for f in range(4):
                a, b = 100 + 80 * f, 180 + 80 * f
                folds.append(
                    {
                        "fold": f,
                        "train_start": str(time[a - 100].date()),
                        "train_end": str(time[a].date()),
                        "predict_start": str(time[a].date()),
                        "predict_end": str(time[min(b, n_bars - 1)].date()),
                        "n_train": 800 + 10 * f,
                        "ic": float(rng.normal(0.03, 0.02)),
                        "rank_ic": float(rng.normal(0.025, 0.02)),
                        "accuracy": float(rng.uniform(0.5, 0.56)),
                        "auc": float(rng.uniform(0.5, 0.58)),
                    }
                )
                for stage, dur, off in (("train", 1.2, 0.0), ("inference", 0.3, 1.3)):
                    trace.append(
                        {
                            "run_id": run_id,
                            "stage": stage,
                            "key": f"('ml-{stage}-abc', {f})",
                            "model_id": f"ml-fold{f}",
                            "feature_hash": "ffee00",
                            "fold": f,
                            "worker": "tcp://127.0.0.1:40001",
                            "start": t0 + 1.7 * f + off,
                            "stop": t0 + 1.7 * f + off + dur,
                        }
                    )
            doc["ml"] = {"ml": folds}
            doc["trace"] = trace
        (path / "run.json").write_text(json.dumps(doc, indent=2))
    return path
