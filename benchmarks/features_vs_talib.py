"""Indicator kernels vs TA-Lib, per core, and the feature stage's scaling through dask threads.

Run: ``.venv/bin/python benchmarks/features_vs_talib.py`` (``--quick`` for a smoke run).

Table 1, per indicator and shape: our numba kernel on the whole (time, symbol) array, one core,
against TA-Lib called once per symbol on contiguous columns (its best case), in million values
per second; ratio > 1 means we are faster. Twins without a TA-Lib function (volatility,
zscore, returns) are timed against pandas on the whole frame. Table 2: every indicator at once
through `compute_features` on dask's threaded scheduler, 1 thread vs all cores.
Kernels are warmed (compiled) before anything is timed; each time is the best of --repeat,
ours and the twin measured alternately; big arrays come from glibc's reusable heap for both
(see `warm_heap`).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import dask
import numpy as np
import pandas as pd
import xarray as xr

from admf_dask.features import INDICATORS, compute_features, validate_feature_spec

try:
    import talib
except ImportError:  # pragma: no cover
    talib = None

SPECS = {
    "sma": {"kind": "sma", "window": 20},
    "ema": {"kind": "ema", "window": 20},
    "rsi": {"kind": "rsi", "window": 14},
    "atr": {"kind": "atr", "window": 14},
    "macd": {"kind": "macd"},
    "bbands": {"kind": "bbands", "window": 20, "k": 2.0},
    "roc": {"kind": "roc", "window": 10},
    "volatility": {"kind": "volatility", "window": 20},
    "zscore": {"kind": "zscore", "window": 20},
    "donchian": {"kind": "donchian", "window": 20},
    "returns": {"kind": "returns", "window": 1},
}


def market(n_time: int, n_sym: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_time, n_sym)), axis=0))
    high = close * (1 + np.abs(rng.normal(0, 0.01, close.shape)))
    low = close * (1 - np.abs(rng.normal(0, 0.01, close.shape)))
    return {"open": close, "high": high, "low": low, "close": close, "volume": close}


def ours(kind: str, cols: dict[str, np.ndarray]) -> Callable[[], object]:
    ind = INDICATORS[kind]
    spec = validate_feature_spec(kind, SPECS[kind])
    inputs = [cols[f] for f in ind.fields(spec)]
    params = ind.kernel_params(spec)
    if ind.recursive:
        return lambda: ind.func(*inputs, state=None, **params)
    return lambda: ind.func(*inputs, offset=0, **params)


def twin(kind: str, cols: dict[str, np.ndarray]) -> tuple[str, Callable[[], object]]:
    """The twin on the same values: TA-Lib once per symbol (contiguous columns) or pandas."""
    t = {k: np.ascontiguousarray(v.T) for k, v in cols.items()}  # symbol-major columns
    c, h, lo = t["close"], t["high"], t["low"]
    n = c.shape[0]
    calls: dict[str, Callable[[int], object]] = {
        "sma": lambda j: talib.SMA(c[j], 20),
        "ema": lambda j: talib.EMA(c[j], 20),
        "rsi": lambda j: talib.RSI(c[j], 14),
        "atr": lambda j: talib.ATR(h[j], lo[j], c[j], 14),
        "macd": lambda j: talib.MACD(c[j], 12, 26, 9),
        "bbands": lambda j: talib.BBANDS(c[j], 20, 2.0, 2.0, 0),
        "roc": lambda j: talib.ROCP(c[j], 10),
        "donchian": lambda j: (talib.MAX(h[j], 20), talib.MIN(lo[j], 20)),
    }
    if talib is not None and kind in calls:
        fn = calls[kind]
        return "TA-Lib", lambda: [fn(j) for j in range(n)]
    df = pd.DataFrame(cols["close"])
    pandas_calls: dict[str, Callable[[], object]] = {
        "volatility": lambda: np.log(df / df.shift(1)).rolling(20).std() * np.sqrt(252),
        "zscore": lambda: (df - df.rolling(20).mean()) / df.rolling(20).std(),
        "returns": lambda: df.pct_change(1),
    }
    return "pandas", pandas_calls[kind]


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_pair(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best times of a and b, measured alternately (shared machines drift)."""
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(best(a, 1))
        tb.append(best(b, 1))
    return min(ta), min(tb)


def warm_heap() -> str:
    """Let glibc serve big arrays from its reusable heap instead of fresh mmap pages.

    Without this, every 40 MB output of a whole-array kernel is page-faulted in again on each
    call, while TA-Lib's per-symbol 0.8 MB outputs are recycled by malloc: the comparison would
    time the allocator, not the kernels. It applies to both sides.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-3, 1 << 30) and libc.mallopt(-1, 1 << 31)  # M_MMAP_/M_TRIM_THRESHOLD
        return "glibc heap reuse on" if ok else "glibc mallopt refused"
    except OSError:
        return "default allocator"


def warm() -> None:
    cols = market(64, 3)
    for kind in SPECS:
        ours(kind, cols)()


def kernel_table(shapes: list[tuple[int, int]], repeat: int) -> None:
    print("\n## Kernels, one core (million values/s = bars x symbols / s; best of", repeat, ")\n")
    print(
        f"| {'indicator':<10} | {'shape (sym x bars)':>18} | {'ours':>8} | {'twin':>8} "
        f"| {'twin is':<6} | {'ours/twin':>9} |"
    )
    print(f"|{'-' * 12}|{'-' * 20}:|{'-' * 9}:|{'-' * 9}:|{'-' * 8}|{'-' * 10}:|")
    for n_time, n_sym in shapes:
        cols = market(n_time, n_sym)
        values = n_time * n_sym / 1e6
        for kind in SPECS:
            label, fn = twin(kind, cols)
            t_ours, t_twin = best_pair(ours(kind, cols), fn, repeat)
            print(
                f"| {kind:<10} | {f'{n_sym} x {n_time:,}':>18} | {values / t_ours:8.1f} "
                f"| {values / t_twin:8.1f} | {label:<6} | {t_twin / t_ours:9.2f} |"
            )


def stage_table(shapes: list[tuple[int, int, int]], repeat: int, cores: int) -> None:
    print(
        f"\n## Feature stage: all {len(SPECS)} indicators through dask threads "
        f"(compute_features + compute; best of {repeat})\n"
    )
    print(
        "| shape (sym x bars) | time chunk | tasks | 1 thread (s) "
        f"| {cores} threads (s) | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n_time, n_sym, chunk in shapes:
        cols = market(n_time, n_sym)
        data = xr.Dataset(
            {k: (("time", "symbol"), v) for k, v in cols.items()},
            coords={
                "time": pd.bdate_range("2000-01-03", periods=n_time),
                "symbol": [f"S{j}" for j in range(n_sym)],
            },
        ).chunk({"time": chunk, "symbol": -1})
        feats = compute_features(data, SPECS)
        n_tasks = len(dict(feats.__dask_graph__()))
        res = {}
        for threads in (1, cores):
            with dask.config.set(scheduler="threads", num_workers=threads):
                res[threads] = best(lambda d=data: compute_features(d, SPECS).compute(), repeat)
        print(
            f"| {f'{n_sym} x {n_time:,}':>18} | {chunk:,} | {n_tasks:,} | {res[1]:.3f} "
            f"| {res[cores]:.3f} | {res[1] / res[cores]:.2f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, one repeat")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    if args.quick:
        shapes = [(504, 50), (10_000, 5)]
        stage = [(504, 50, 126), (10_000, 5, 2_500)]
    else:
        shapes = [(2_520, 500), (100_000, 50)]
        stage = [(2_520, 500, 504), (100_000, 50, 10_000)]
    heap = warm_heap()
    print(
        f"{heap}; cores: {os.cpu_count()}, TA-Lib: {getattr(talib, '__version__', 'missing')}, "
        f"numpy {np.__version__}, dask {dask.__version__}"
    )
    warm()
    kernel_table(shapes, repeat)
    stage_table(stage, repeat, args.threads)


if __name__ == "__main__":
    main()
